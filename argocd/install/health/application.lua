-- Health of a child Application, as the app-of-apps sees it: the child's own health, so a sync
-- wave of the root app waits until the Applications of the previous wave are Healthy.
local hs = { status = "Progressing", message = "waiting for the Application to report health" }
if obj.status ~= nil and obj.status.health ~= nil and obj.status.health.status ~= nil then
  hs.status = obj.status.health.status
  hs.message = obj.status.health.message or ""
end
return hs
