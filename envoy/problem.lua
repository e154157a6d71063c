-- The response path of every public REST listener (this filter is first in the chain, so
-- it runs last on responses; it has no envoy_on_request, so requests never wait for it).
--
-- Errors become RFC 9457 application/problem+json {type, title, status, detail, requestId,
-- issues?}. Envoy's own replies arrive here already as problem+json (local_reply_config);
-- this only adds `issues` to the transcoder's 400s it recognises. Upstream gRPC errors
-- arrive as the transcoder's google.rpc.Status JSON and are rewritten here, because they
-- are not local replies (notes/problem-json.md).
--
-- Successes lose the gRPC headers, and routes with metadata under envoy.filters.http.lua
-- (from gen/envoy/routes.json) get the reference's REST shape: `unwrap` replaces the body
-- by the JSON value of that member (lists the reference returns as a bare array),
-- `successStatus` sets the status (201, or 204 without a body), `omitEmpty` leaves out the
-- members it names wherever their value is "" (the reference omits them; proto3 strings
-- cannot). An answer that is a page, not a resource (google.api.HttpBody, e.g. the OAuth
-- callback's), chooses its own status with the response header x-ampmesh-http-status
-- (gRPC initial metadata), removed here.
--
-- A 500 from upstream (INTERNAL, UNKNOWN, DATA_LOSS) keeps its message only when it is the
-- runtime's own "internal error (request id ...)" (services/runtime/errors.py); any other
-- text may be an exception's, so clients get that form instead and the original goes to
-- Envoy's log at warn, with the request id. Other statuses keep their messages: a 501 names
-- the unbuilt method, a 503 says what is unavailable, 4xx say what was wrong.
--
-- A 400 that request_guard.lua or body_shape.lua made lists what they refused (stream
-- dynamic metadata, namespace ampmesh.request_guard) as `issues`.
--
-- JSON comes from json.lua. Unwrapping copies the member's bytes exactly as the transcoder
-- printed them, so key order, numbers and escapes survive untouched; the decoder only
-- finds where the value ends.

-- json.lua comes first (the launcher puts it there): decode, decode_string, decode_value,
-- skip_space and quote are its locals, and so are byte, char, find, sub, format, concat
-- and floor, which this file uses too.

-- The response header an HttpBody answer sets to choose its HTTP status.
local CHOSEN_STATUS = "x-ampmesh-http-status"

local TITLES = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [412] = "Precondition Failed", [413] = "Content Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Content", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [499] = "Client Closed Request",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- The exact text of member `name` of the JSON object s, or nil when s has no such member.
local function member_text(s, name)
  local i = skip_space(s, 1)
  if sub(s, i, i) ~= "{" then error("not a JSON object") end
  i = skip_space(s, i + 1)
  if sub(s, i, i) == "}" then return nil end
  while true do
    if sub(s, i, i) ~= '"' then error("expected a member name") end
    local key
    key, i = decode_string(s, i)
    i = skip_space(s, i)
    if sub(s, i, i) ~= ":" then error("expected ':'") end
    local start = skip_space(s, i + 1)
    local _, after = decode_value(s, start)
    if key == name then return sub(s, start, after - 1) end
    i = skip_space(s, after)
    local c = sub(s, i, i)
    if c == "}" then return nil end
    if c ~= "," then error("expected ',' or '}'") end
    i = skip_space(s, i + 1)
  end
end

local function problem(status, detail, request_id, issues)
  local title = TITLES[status] or "Error"
  if detail == nil or detail == "" then detail = title end
  local out = {
    '{"type":"about:blank","title":', quote(title), ',"status":', format("%d", status),
    ',"detail":', quote(detail), ',"requestId":', request_id and quote(request_id) or "null",
  }
  if issues and #issues > 0 then
    local items = {}
    for n, issue in ipairs(issues) do
      items[n] = '{"in":' .. quote(issue["in"]) .. ',"name":' .. quote(issue.name) ..
        ',"detail":' .. quote(issue.detail) .. "}"
    end
    out[#out + 1] = ',"issues":[' .. concat(items, ",") .. "]"
  end
  out[#out + 1] = "}"
  return concat(out)
end

-- Turning errors into problems ------------------------------------------------------------

local LOCATIONS = { path = true, query = true, body = true, header = true }

-- google.rpc.BadRequest violations name `<in>.<name>` (path.project_id, body.size); other
-- field paths are taken to be in the body.
local function issues_of(status)
  local issues = {}
  if type(status.details) ~= "table" then return issues end
  for _, detail in ipairs(status.details) do
    if type(detail) == "table" and detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        and type(detail.fieldViolations) == "table" then
      for _, violation in ipairs(detail.fieldViolations) do
        local field = type(violation.field) == "string" and violation.field or ""
        local where, name = string.match(field, "^(%a+)%.(.+)$")
        if not (where and LOCATIONS[where]) then where, name = "body", field end
        local description = violation.description
        issues[#issues + 1] = {
          ["in"] = where, name = name,
          detail = type(description) == "string" and description or "invalid value",
        }
      end
    end
  end
  return issues
end

-- The transcoder's 400s say which input was wrong only in their text (not an API: the
-- edge tests pin these texts, so an Envoy upgrade that changes them fails there).
-- The transcoder names a body field by its proto path from the request message
-- (`project.app_name`); the client wrote JSON names relative to the body it sent. Drop the
-- field the body is bound to (route metadata `bodyField`) and camel-case what is left.
local function json_path(path, body_field)
  if body_field and sub(path, 1, #body_field + 1) == body_field .. "." then
    path = sub(path, #body_field + 2)
  end
  return (string.gsub(path, "_(%l)", string.upper))
end

local function local_issues(detail, body_field)
  local field = string.match(detail, '^Could not find field "([^"]+)" in the type')
  if field then
    return { { ["in"] = "query", name = field, detail = "unknown query parameter" } }
  end
  local path, why = string.match(detail, "^([%w_%.%[%]]+): (invalid value.*)$")
  if path then return { { ["in"] = "body", name = json_path(path, body_field), detail = why } } end
  return nil
end

local function percent_decode(text)
  return (string.gsub(text, "%%(%x%x)", function(hex) return char(tonumber(hex, 16)) end))
end

-- What request_guard.lua (headers) or body_shape.lua (body fields) refused, as issues.
local function guard_issues(refused)
  local issues = {}
  for n, item in ipairs(refused) do
    issues[n] = {
      ["in"] = tostring(item["in"] or "header"), name = tostring(item.name),
      detail = tostring(item.detail),
    }
  end
  return issues
end

-- services/runtime/errors.py internal_error_message(): the one text a 500 may carry.
local function internal_error(request_id)
  return "internal error (request id " .. (request_id or "none") .. ")"
end

-- A 500's detail and issues as clients may see them, and the text withheld from them (nil
-- when nothing was).
local function upstream_detail(status, detail, issues, request_id)
  if status ~= 500 or detail == nil or find(detail, "^internal error %(request id [%w%-]+%)$") then
    return detail, issues, nil
  end
  return internal_error(request_id), nil, detail
end

-- The problem+json to send (nil: leave the response as it is), and any upstream text
-- withheld from it.
local function error_body(status, content_type, raw, request_id, grpc_message, body_field,
    refused)
  if find(content_type, "application/problem+json", 1, true) then
    if status ~= 400 then return nil end -- Envoy's own reply, already complete
    local reply = decode(raw)
    local issues
    if refused then
      issues = guard_issues(refused)
    else
      issues = type(reply.detail) == "string" and local_issues(reply.detail, body_field)
    end
    if not issues then return nil end
    -- Some replies are made before the response carries x-request-id: keep Envoy's.
    if type(reply.requestId) == "string" then request_id = reply.requestId end
    return problem(status, reply.detail, request_id, issues)
  end
  local detail, issues, withheld
  if find(content_type, "application/json", 1, true) and raw ~= "" then
    local ok, st = pcall(decode, raw)
    if ok and type(st) == "table" and type(st.message) == "string" then
      detail, issues, withheld = upstream_detail(status, st.message, issues_of(st), request_id)
      return problem(status, detail, request_id, issues), withheld
    end
  end
  -- The transcoder could not read the status (e.g. a detail type missing from its
  -- descriptor set): grpc-message is what is left. Never quote a binary body.
  detail = grpc_message and percent_decode(grpc_message)
  if not detail and find(content_type, "^text/") then detail = raw end
  detail, issues, withheld = upstream_detail(status, detail, nil, request_id)
  return problem(status, detail, request_id, issues), withheld
end

local function on_error(handle, status, content_type)
  local headers = handle:headers()
  local request_id = headers:get("x-request-id")
  local grpc_message = headers:get("grpc-message")
  local body = handle:body(true)
  local raw = body:length() > 0 and body:getBytes(0, body:length()) or ""
  local body_field = handle:metadata():get("bodyField")
  local refused
  if status == 400 then
    local guard = handle:streamInfo():dynamicMetadata():get("ampmesh.request_guard")
    refused = guard and guard.issues
  end
  local ok, out, withheld =
    pcall(error_body, status, content_type, raw, request_id, grpc_message, body_field, refused)
  if not ok then
    handle:logWarn("problem+json: could not rewrite an error body: " .. tostring(out))
    out = problem(status, nil, request_id)
  end
  if withheld then
    -- Quoted, so a multi-line traceback stays one log line; cut, so a huge one stays short.
    handle:logWarn(format("upstream 500 (request id %s) withheld from the client: %s",
      request_id or "none", quote(sub(withheld, 1, 300))))
  end
  if out == nil then return end
  body:setBytes(out)
  headers = handle:headers() -- the wrapper taken before body() is stale after it
  headers:replace("content-type", "application/problem+json")
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-status-details-bin")
end

-- Shaping successes -------------------------------------------------------------------------

-- The JSON text s with every object member whose name is in `names` (a set) and whose value
-- is "" left out, at any depth; everything else is copied byte for byte. Strings are
-- walked by the decoder, so a name or value merely containing the text is never touched.
local function without_empty(s, names)
  local out = {}
  local copy_value
  local function copy_object(i)
    out[#out + 1] = "{"
    i = skip_space(s, i + 1)
    if sub(s, i, i) == "}" then
      out[#out + 1] = "}"
      return i + 1
    end
    local first = true
    while true do
      if sub(s, i, i) ~= '"' then error("expected a member name") end
      local key, after_key = decode_string(s, i)
      local key_text = sub(s, i, after_key - 1)
      i = skip_space(s, after_key)
      if sub(s, i, i) ~= ":" then error("expected ':'") end
      i = skip_space(s, i + 1)
      if names[key] and sub(s, i, i + 1) == '""' then
        i = i + 2
      else
        if not first then out[#out + 1] = "," end
        first = false
        out[#out + 1] = key_text .. ":"
        i = copy_value(i)
      end
      i = skip_space(s, i)
      local c = sub(s, i, i)
      if c == "}" then
        out[#out + 1] = "}"
        return i + 1
      end
      if c ~= "," then error("expected ',' or '}'") end
      i = skip_space(s, i + 1)
    end
  end
  local function copy_array(i)
    out[#out + 1] = "["
    i = skip_space(s, i + 1)
    if sub(s, i, i) == "]" then
      out[#out + 1] = "]"
      return i + 1
    end
    while true do
      i = skip_space(s, copy_value(i))
      local c = sub(s, i, i)
      if c == "]" then
        out[#out + 1] = "]"
        return i + 1
      end
      if c ~= "," then error("expected ',' or ']'") end
      out[#out + 1] = ","
      i = skip_space(s, i + 1)
    end
  end
  copy_value = function(i)
    local c = sub(s, i, i)
    if c == "{" then return copy_object(i) end
    if c == "[" then return copy_array(i) end
    local _, after = decode_value(s, i)
    out[#out + 1] = sub(s, i, after - 1)
    return after
  end
  copy_value(skip_space(s, 1))
  return concat(out)
end

local function on_success(handle, status)
  local metadata = handle:metadata()
  local unwrap = metadata:get("unwrap")
  local success = metadata:get("successStatus")
  local omit = metadata:get("omitEmpty")
  if status == 200 and (unwrap or success or omit) then
    local body = handle:body(true)
    local raw = body:length() > 0 and body:getBytes(0, body:length()) or ""
    if omit and raw ~= "" then
      local names = {}
      for _, name in ipairs(omit) do names[name] = true end
      local ok, text = pcall(without_empty, raw, names)
      if ok then
        raw = text
        body:setBytes(raw)
      else
        handle:logWarn("omitEmpty: the response is not JSON: " .. tostring(text))
      end
    end
    if success == 204 then
      body:setBytes("")
    elseif unwrap then
      local ok, text = pcall(member_text, raw, unwrap)
      if ok then
        -- A repeated field left out of the JSON is an empty list.
        body:setBytes(text or "[]")
      else
        handle:logWarn("unwrap: the response is not a JSON object: " .. tostring(text))
      end
    end
  end
  local headers = handle:headers()
  local chosen = headers:get(CHOSEN_STATUS)
  if chosen then
    headers:remove(CHOSEN_STATUS)
    if status == 200 and find(chosen, "^[2-5]%d%d$") then
      headers:replace(":status", chosen)
    end
  end
  if success and status == 200 then
    headers:replace(":status", format("%d", success))
    if success == 204 then
      headers:remove("content-type")
      headers:remove("content-length") -- a 204 has no body to measure (RFC 9110 8.6)
    end
  end
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-accept-encoding")
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = tonumber(headers:get(":status")) or 0
  local content_type = headers:get("content-type") or ""
  if status < 400 then
    -- Native gRPC (an error is a 200 with grpc-status): not ours to touch.
    if find(content_type, "application/grpc", 1, true) == 1 then return end
    on_success(handle, status)
  else
    on_error(handle, status, content_type)
  end
end
