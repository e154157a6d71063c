-- The response path of every public REST listener, just before Envoy's cors filter in the
-- chain (so just after it on the way out; no envoy_on_request, so requests never wait).
--
-- The cors filter answers every preflight itself (OPTIONS with Origin and
-- Access-Control-Request-Method; forward_not_matching_preflights is off, so one from an
-- origin not allowed is answered too, without Access-Control-Allow-Origin, which the
-- browser then refuses) with a 200 and no body, and has no setting for the status. The
-- answer has no content, and the reference answers preflights 204 No Content: this
-- rewrites the status. Only that answer carries Access-Control-Allow-Methods with no
-- content-type (the api never sets the header, and the proxy's provider answers that
-- might are typed), so the response alone says what it is; looking at the request
-- instead would cost every request a Lua call. Envoy writes the answer without the
-- route's response headers, so Vary: Origin (the answer depends on it) is added here.

function envoy_on_response(handle)
  local headers = handle:headers()
  if headers:get(":status") ~= "200" then return end
  if headers:get("access-control-allow-methods") == nil then return end
  if headers:get("content-type") ~= nil then return end
  headers:replace(":status", "204")
  headers:remove("content-length") -- a 204 has no body to measure (RFC 9110 8.6)
  headers:add("vary", "Origin")
end
