-- The request path of every public listener, first: a client's own x-request-id is kept
-- when it is sane, so the id a client chose (to find its call in our logs, or to tie a
-- retry to the first try) is the one the api logs, the response header echoes and a
-- problem's requestId names.
--
-- The connection manager cannot judge an id: it either keeps any value a client sends
-- (preserve_external_request_id) or replaces every one. So its early header mutation
-- (services/launcher/edge.py, CLIENT_REQUEST_ID) moves the client's value aside, into
-- x-ampmesh-client-request-id, before the manager makes a fresh UUID for the request;
-- here the client's value replaces that UUID when it is sane, and the aside header goes.
--
-- Sane is what services/runtime/request_id.py accepts: 1 to 128 of A-Z a-z 0-9 . _ : -.
-- Anything longer would bloat every log line and every call the api makes on the
-- request's behalf; anything else (spaces, quotes, braces, non-ASCII) could forge or break
-- a log line. Such an id is not refused (the request is fine, only its label is not):
-- the request keeps the edge's fresh UUID, which the response header reports, so the
-- client can still quote the id its call was logged under. Two x-request-id headers
-- arrive joined by a comma, which is not sane either.

local ASIDE = "x-ampmesh-client-request-id"
local MAX_LENGTH = 128

function envoy_on_request(handle)
  local headers = handle:headers()
  local id = headers:get(ASIDE)
  if id == nil then return end
  headers:remove(ASIDE)
  if #id <= MAX_LENGTH and string.find(id, "^[A-Za-z0-9%._:%-]+$") then
    headers:replace("x-request-id", id)
  end
end
