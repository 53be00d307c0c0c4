-- Argo CD resource health check for kubepim.io kinds. The same rules as
-- kstatus (Flux, kpt): Degraded while kubepim is stalled on something only a
-- person can fix (condition Stalled=True), Progressing until kubepim has
-- observed the latest generation and while Ready is not True, Healthy when
-- Ready is True. AuditEvents (no status) are always Healthy; Notifications
-- (kubepim's outbox) follow status.phase. Tested by test/argocd.
local hs = { status = "Progressing", message = "Waiting for kubepim to reconcile" }

if obj.kind == "AuditEvent" then
  hs.status = "Healthy"
  hs.message = "Audit record"
  return hs
end

if obj.status == nil then
  return hs
end

if obj.kind == "Notification" then
  if obj.status.phase == "Delivered" then
    hs.status = "Healthy"
    hs.message = "Delivered"
  elseif obj.status.phase == "Failed" then
    hs.status = "Degraded"
    hs.message = obj.status.lastError or "Delivery failed"
  else
    hs.message = "Delivery pending"
  end
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.message = "Waiting for kubepim to observe generation " .. tostring(generation)
  return hs
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Stalled" and c.status == "True" then
      hs.status = "Degraded"
      hs.message = c.message or c.reason
      return hs
    end
    if c.type == "Ready" then
      ready = c
    end
  end
end

if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
else
  hs.status = "Progressing"
end
hs.message = ready.message or ready.reason
return hs
