-- Health of a KubeRay RayJob from status.jobDeploymentStatus (the operator's view) and
-- status.jobStatus (the Ray job's own state). Argo CD applies it only to RayJobs an app tracks,
-- such as one committed by hand; the submitter's RayJobs belong to no app (docs/gitops.md).
local hs = { status = "Progressing", message = "RayJob is being initialized" }
if obj.status == nil then
  return hs
end
local deployment = obj.status.jobDeploymentStatus or ""
local job = obj.status.jobStatus or ""
local message = obj.status.message or ""
if deployment == "Complete" then
  if job == "SUCCEEDED" then
    return { status = "Healthy", message = "Ray job succeeded" }
  end
  return { status = "Degraded", message = "Ray job finished as " .. job .. " " .. message }
end
if deployment == "Failed" or deployment == "ValidationFailed" then
  local reason = obj.status.reason or deployment
  return { status = "Degraded", message = reason .. ": " .. message }
end
if deployment == "Suspended" then
  return { status = "Suspended", message = "RayJob is suspended" }
end
if deployment ~= "" then
  hs.message = "RayJob is " .. deployment .. (job ~= "" and (", Ray job " .. job) or "")
end
return hs
