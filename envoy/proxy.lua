-- The proxy host's data path: each call is sent on to the provider of an installation,
-- with the connection's credentials, by Envoy itself (the dynamic forward proxy), so the
-- provider's bytes stream through without any Python process buffering them.
--
-- What to do with a call is decided by the api (ProxyAuthorizationService.Authorize,
-- services/api/proxy), from the caller's proxy headers alone, and kept in this worker's
-- memory for the decision's cache_seconds (at most `calls` calls when it has a lease of
-- the connection's rate limit): most calls are decided here without leaving Envoy. In
-- the last quarter of a decision's life one call asks for the next while the others go
-- on with it, so a decision's end never stalls a busy worker's calls; a little jitter
-- keeps workers from asking at the same moment. A decision is never reused for calls in
-- throttle mode, because a hold recorded through another edge process must stop them;
-- those ask every time.
--
-- The api is reached through the edge's loopback listener proxy-authz, which transcodes
-- JSON to gRPC and turns the api's errors into problem+json (envoy/problem.lua): a refusal
-- is handed to the caller as it comes, with its Retry-After headers.
--
-- Applying a decision: the caller's credential and every x-amp-* header are removed, the
-- connection's credential headers set, its credential query parameters replace any of
-- the same name, the path is put under the base URL's path, and the host is the
-- catalog's. The route to the provider matches only on this filter's dynamic metadata
-- (namespace ampmesh.proxy, key `route`), which no caller can set: a call this filter
-- did not decide never leaves the edge.
--
-- On the way back: a provider 401 ends the decision (the next call asks again, and the
-- api refreshes the token once); a 429 to a throttled call is recorded as a hold
-- (RecordHold) before the caller sees it, which answers X-Amp-Retry-After and
-- X-Amp-Retryable. Every answer says who made it: x-amp-proxy-origin is "provider" for
-- the provider's own answers, "ampmesh" for ampmesh's (problem+json).
--
-- json.lua comes first (the launcher puts it there).

local AUTHZ_CLUSTER = "proxy_authz"
local AUTHORIZE = "/ampmesh.edge.v1.ProxyAuthorizationService/Authorize"
local RECORD_HOLD = "/ampmesh.edge.v1.ProxyAuthorizationService/RecordHold"
local AUTHZ_TIMEOUT_MS = 15000
local NAMESPACE = "ampmesh.proxy"
local ORIGIN = "x-amp-proxy-origin"
-- The caller's headers a decision depends on (and the api reads); none reaches the provider.
local CALLER = {
  "x-api-key", "authorization", "x-amp-proxy-version", "x-amp-project-id",
  "x-amp-installation-id", "x-amp-integration-name", "x-amp-group-ref",
  "x-amp-rate-limiter-mode",
}
-- Answers of the api passed on to the caller with a refusal.
local REFUSAL_HEADERS = { "retry-after", "x-amp-retry-after", "x-amp-retryable", "x-request-id" }
local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true,
  DELETE = true, OPTIONS = true }
local MAX_ENTRIES = 10000
local MAX_HEADER = 4096

-- Decisions by caller-header key, in this worker's memory: {decision fields, expires,
-- calls (nil: no limit), caller (the headers, for RecordHold), key, id}. The response
-- path finds a call's decision by its id (in the stream's dynamic metadata, which access
-- logs carry: the key holds the caller's credential, so it never goes there).
local decisions = {}
local by_id = {}
local entries = 0
local last_id = 0
-- Keys whose last decision met a provider 401: the next Authorize refreshes the token.
local rejected = {}

-- Answers the call itself (marked, so the listener's local_reply_config leaves it as it is).
local function answer(handle, headers, body)
  handle:streamInfo():dynamicMetadata():set(NAMESPACE, "answered", "1")
  handle:respond(headers, body)
end

local function problem(handle, status, title, detail, extra)
  local id = handle:headers():get("x-request-id") or ""
  local headers = {
    [":status"] = tostring(status),
    ["content-type"] = "application/problem+json",
    [ORIGIN] = "ampmesh",
  }
  for name, value in pairs(extra or {}) do headers[name] = value end
  local body = "{\"type\":\"about:blank\",\"title\":" .. quote(title) .. ",\"status\":" ..
    status .. ",\"detail\":" .. quote(detail) .. ",\"requestId\":" .. quote(id) .. "}"
  answer(handle, headers, body)
end

-- Whether a path (without its query) stays under the base URL's path: no dot segments
-- (also percent-encoded) and no backslashes, which some servers read as slashes.
local function contained(path)
  if find(path, "\\", 1, true) or find(string.lower(path), "%5c", 1, true) then
    return false
  end
  for segment in string.gmatch(path, "[^/]+") do
    local decoded = string.gsub(segment, "%%2[eE]", ".")
    if decoded == "." or decoded == ".." then return false end
  end
  return true
end

-- Keeps a fresh decision for key and returns the entry to use. A key's entry stays the
-- same table (and id) through refreshes, so calls in flight find it on their way back and
-- the tables grow with the keys, not with the calls.
local function store(key, fresh)
  local kept = decisions[key]
  if kept ~= nil then
    for name in pairs(kept) do
      if name ~= "id" then kept[name] = nil end
    end
    for name, value in pairs(fresh) do kept[name] = value end
    kept.key = key
    return kept
  end
  entries = entries + 1
  if entries > MAX_ENTRIES then
    -- Forget everything rather than track recency: decisions are cheap to make again.
    decisions = {}
    by_id = {}
    entries = 1
  end
  last_id = last_id + 1
  fresh.id = tostring(last_id)
  fresh.key = key
  decisions[key] = fresh
  by_id[fresh.id] = fresh
  return fresh
end

local function query_names(query)
  local names = {}
  for pair in string.gmatch(query, "[^&]+") do
    names[string.match(pair, "^[^=]*")] = true
  end
  return names
end

-- A decision for the caller's headers from the api; or nil and a refusal to answer with
-- ({status, headers, body}: the api's own problem+json, or a 503 when it could not be
-- reached).
local function authorize(handle, caller, key)
  local request = {
    [":method"] = "POST", [":path"] = AUTHORIZE, [":authority"] = "proxy-authz",
    ["content-type"] = "application/json",
  }
  for name, value in pairs(caller) do request[name] = value end
  request["x-request-id"] = handle:headers():get("x-request-id")
  local body = "{}"
  if rejected[key] then
    body = "{\"tokenRejected\":true}"
    rejected[key] = nil
  end
  local headers, reply = handle:httpCall(AUTHZ_CLUSTER, request, body, AUTHZ_TIMEOUT_MS)
  local status = tonumber(headers[":status"]) or 503
  if status ~= 200 then
    if reply == nil or reply == "" or headers["content-type"] ~= "application/problem+json" then
      return nil, { status = 503 }
    end
    local extra = { ["content-type"] = "application/problem+json", [":status"] = tostring(status),
      [ORIGIN] = "ampmesh" }
    for _, name in ipairs(REFUSAL_HEADERS) do extra[name] = headers[name] end
    return nil, { status = status, headers = extra, body = reply }
  end
  local decision = decode(reply)
  local entry = {
    scheme = decision.scheme or "https",
    authority = decision.authority,
    prefix = decision.pathPrefix or "",
    headers = decision.headers or {},
    query = decision.query or "",
    names = query_names(decision.query or ""),
    installation = decision.installationId or "",
    connection = decision.connectionId or "",
    project = decision.projectId or "",
    provider = decision.provider or "",
    throttle = decision.throttle == true,
    caller = caller,
  }
  -- Milliseconds, jittered down by up to a tenth; the refresh starts a quarter before.
  local life = (tonumber(decision.cacheSeconds) or 0) * 1000 * (0.9 + 0.1 * math.random())
  local now = handle:timestamp()
  entry.expires = now + life
  entry.refresh_at = now + life * 0.75
  local calls = tonumber(decision.calls) or 0
  if calls > 0 then entry.calls = calls end
  return entry
end

local function on_request(handle)
  local headers = handle:headers()
  local method = headers:get(":method")
  if not METHODS[method] then
    problem(handle, 405, "Method Not Allowed", "the proxy does not send " .. method .. " requests")
    return
  end
  local full = headers:get(":path")
  local path, query = string.match(full, "^([^?]*)%??(.*)$")
  if not contained(path) then
    problem(handle, 400, "Bad Request",
      "the path must stay under the provider's base URL: no '.' or '..' segments and no backslashes")
    return
  end
  local caller, parts = {}, {}
  for i, name in ipairs(CALLER) do
    local value = headers:get(name)
    if value ~= nil and (#value > MAX_HEADER or string.find(value, "[^\32-\126]")) then
      -- They travel on as gRPC metadata (to the api), which holds printable ASCII only.
      problem(handle, 400, "Bad Request",
        name .. " must be printable ASCII of at most " .. MAX_HEADER .. " bytes")
      return
    end
    caller[name] = value
    parts[i] = value or ""
  end
  local key = table.concat(parts, "\n")
  local throttled = caller["x-amp-rate-limiter-mode"] == "throttle"
  local entry = decisions[key]
  local now = handle:timestamp()
  local current = nil  -- a decision still good while this call asks for the next
  if entry ~= nil and (throttled or entry.expires <= now
      or (entry.calls ~= nil and entry.calls <= 0)) then
    entry = nil
  elseif entry ~= nil and now >= entry.refresh_at and not entry.refreshing then
    -- This call asks for the next decision; the others keep this one meanwhile.
    entry.refreshing = true
    current, entry = entry, nil
  end
  if entry == nil then
    local refusal
    entry, refusal = authorize(handle, caller, key)
    if entry == nil then
      if current ~= nil and refusal.status >= 500 then
        -- The api could not answer in time: the decision in hand is still good, and a
        -- later call asks again.
        current.refreshing = false
        entry = current
      else
        -- Refused (a key revoked, an installation gone): nothing of it is kept.
        local kept = decisions[key]
        if kept ~= nil then kept.expires = 0 end
        if refusal.status >= 500 and refusal.body == nil then
          problem(handle, 503, "Service Unavailable",
            "the proxy could not reach its authorization service; try again")
        else
          answer(handle, refusal.headers, refusal.body)
        end
        return
      end
    else
      entry = store(key, entry)
    end
    headers = handle:headers() -- the call above yielded: the old handle is stale
  end
  if entry.calls ~= nil then entry.calls = entry.calls - 1 end

  -- What the caller sent that the provider must not see. x-forwarded-proto stays until
  -- the route is chosen (without it the router finds none); the route removes it, and
  -- x-forwarded-for, which Envoy sets after this filter.
  local removed = {}
  for name, _ in pairs(headers) do
    if string.sub(name, 1, 6) == "x-amp-" or string.sub(name, 1, 12) == "x-forwarded-" and name ~= "x-forwarded-proto"
        or string.sub(name, 1, 8) == "x-envoy-" or name == "cookie" then
      removed[#removed + 1] = name
    end
  end
  for _, name in ipairs(removed) do headers:remove(name) end
  for name, _ in pairs(caller) do headers:remove(name) end
  for name, value in pairs(entry.headers) do headers:replace(name, value) end

  local kept = {}
  for pair in string.gmatch(query, "[^&]+") do
    if not entry.names[string.match(pair, "^[^=]*")] then kept[#kept + 1] = pair end
  end
  if entry.query ~= "" then kept[#kept + 1] = entry.query end
  local target = entry.prefix .. path
  if #kept > 0 then target = target .. "?" .. table.concat(kept, "&") end
  headers:replace(":path", target)
  headers:replace(":authority", entry.authority)

  local metadata = handle:streamInfo():dynamicMetadata()
  metadata:set(NAMESPACE, "route", entry.scheme)
  metadata:set(NAMESPACE, "decision", entry.id)
  metadata:set(NAMESPACE, "path", path)
  metadata:set(NAMESPACE, "project", entry.project)
  metadata:set(NAMESPACE, "provider", entry.provider)
  metadata:set(NAMESPACE, "installation", entry.installation)
  metadata:set(NAMESPACE, "connection", entry.connection)
  if throttled then metadata:set(NAMESPACE, "throttle", "1") end
  handle:clearRouteCache()
end

-- Records a hold for a throttled call the provider answered 429, and says until when.
local function hold(handle, headers, meta)
  local entry = by_id[meta.decision]
  if entry == nil then return end
  local request = {
    [":method"] = "POST", [":path"] = RECORD_HOLD, [":authority"] = "proxy-authz",
    ["content-type"] = "application/json",
  }
  for name, value in pairs(entry.caller) do request[name] = value end
  local body = "{\"connectionId\":" .. quote(meta.connection) .. ",\"retryAfter\":" ..
    quote(headers:get("retry-after") or "") .. "}"
  local reply_headers, reply = handle:httpCall(AUTHZ_CLUSTER, request, body, AUTHZ_TIMEOUT_MS)
  headers = handle:headers()
  if reply_headers[":status"] ~= "200" then
    handle:logWarn("proxy.lua: RecordHold answered " .. tostring(reply_headers[":status"]))
    return
  end
  local recorded = decode(reply)
  headers:replace("x-amp-retry-after", recorded.retryAt or "")
  headers:replace("x-amp-retryable", recorded.retryable and "true" or "false")
end

function envoy_on_request(handle)
  local ok, err = pcall(on_request, handle)
  if not ok then
    handle:logErr("proxy.lua: " .. tostring(err))
    problem(handle, 500, "Internal Server Error", "the proxy could not handle this call")
  end
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local meta = handle:streamInfo():dynamicMetadata():get(NAMESPACE)
  if meta == nil or meta.route == nil or headers:get(ORIGIN) == "ampmesh" then
    -- Not forwarded, or forwarded and failed at the edge: ampmesh's own answer.
    headers:replace(ORIGIN, "ampmesh")
    return
  end
  headers:replace(ORIGIN, "provider")
  handle:streamInfo():dynamicMetadata():set(NAMESPACE, "origin", "provider")
  local status = headers:get(":status")
  if status == "401" then
    local entry = by_id[meta.decision]
    if entry ~= nil then
      entry.expires = 0
      rejected[entry.key] = true
    end
  elseif status == "429" and meta.throttle == "1" then
    local ok, err = pcall(hold, handle, headers, meta)
    if not ok then handle:logErr("proxy.lua: " .. tostring(err)) end
  end
end
