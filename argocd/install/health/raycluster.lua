-- Health of a KubeRay RayCluster from its status conditions (KubeRay >= 1.3 sets them), falling
-- back to the older status.state field. Argo CD opens only Lua's base and table libraries: no
-- string.* functions here.
local hs = { status = "Progressing", message = "waiting for the Ray head pod" }
if obj.status == nil then
  return hs
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end
local function isTrue(name)
  return conditions[name] ~= nil and conditions[name].status == "True"
end
local function messageOf(name, fallback)
  if conditions[name] ~= nil and conditions[name].message ~= nil and conditions[name].message ~= "" then
    return conditions[name].message
  end
  return fallback
end
if isTrue("ReplicaFailure") then
  return { status = "Degraded", message = messageOf("ReplicaFailure", "a Ray pod could not be created or deleted") }
end
if isTrue("RayClusterSuspended") or obj.status.state == "suspended" then
  return { status = "Suspended", message = "RayCluster is suspended" }
end
if isTrue("RayClusterSuspending") then
  return { status = "Progressing", message = "RayCluster is suspending" }
end
if obj.status.state == "failed" then
  return { status = "Degraded", message = obj.status.reason or "RayCluster failed" }
end
if conditions["HeadPodReady"] ~= nil then
  if isTrue("HeadPodReady") then
    local ready = obj.status.readyWorkerReplicas or 0
    local desired = obj.status.desiredWorkerReplicas or 0
    return { status = "Healthy", message = "head ready, " .. ready .. "/" .. desired .. " workers ready" }
  end
  return { status = "Progressing", message = messageOf("HeadPodReady", "Ray head pod is not ready") }
end
if obj.status.state == "ready" then
  return { status = "Healthy", message = "RayCluster is ready" }
end
return hs
