-- The request path of every public listener (the REST ones and the native gRPC one), before
-- anything else reads the request: headers that gRPC metadata cannot carry are refused
-- here, naming each one, so the request never reaches the api. Without this the api's
-- gRPC core refuses them after the edge has sent the request on, and a REST client gets a
-- 500 quoting the core's text ("Illegal header key: x~y").
--
-- Every kind is refused, none dropped:
-- - a name with characters outside gRPC's [0-9a-z_.-] (HTTP also allows ~ ! $ * ^ | & ' +
--   # % and `): legal HTTP, so a client that sends one presumably means it (the proxy
--   surface exists to pass requests on as written); dropping it would change the request
--   behind the client's back, while a 400 naming the header costs the client a rename.
--   Nothing ampmesh reads has such a name.
-- - on a REST request, a `grpc-` name: reserved for gRPC's own transport (grpc-timeout
--   sets the deadline, grpc-encoding says how the message is compressed); a REST client
--   has no business steering the upstream call, and should hear so rather than have it
--   ignored. A native gRPC call (content-type application/grpc, on the gRPC listener or
--   passed through a REST one) sends some legitimately: there the ones gRPC clients send
--   pass when gRPC can parse their values, and any other grpc- name is refused.
-- - a `-bin` name whose value is not base64: gRPC carries such values as bytes it must
--   decode first; there is no value to pass on. One that is base64 passes.
--
-- A REST request is answered 400 (Envoy's local reply, made problem+json by the listener's
-- local_reply_config); the headers go into the stream's dynamic metadata, where
-- problem.lua (first on the way out) lists them as the problem's `issues`. A gRPC call is
-- answered as gRPC: trailers only, INVALID_ARGUMENT.
--
-- Cost: one pass over the headers, no body. Measured on one core (a REST listener in front
-- of a direct 200, 14 ordinary headers): 11 to 14 us of Envoy CPU a request, of which 7 us
-- is a Lua hook walking the headers at all (1.6 us for an empty hook); against the 0.3 to
-- 0.4 ms Envoy spends on a transcoded request, and the api's own 0.35 to 0.45 ms.

local byte, find, sub, gsub, format, concat = string.byte, string.find, string.sub,
  string.gsub, string.format, table.concat
local COLON, DASH, G = byte(":"), byte("-"), byte("g")

-- Read by problem.lua.
local NAMESPACE = "ampmesh.request_guard"

local BAD_NAME = "its name has characters gRPC metadata cannot carry (only a-z, 0-9, '-', " ..
  "'_' and '.')"
local RESERVED = "names starting with 'grpc-' are reserved for the gRPC protocol"
local UNKNOWN_GRPC = "not a gRPC request header (names starting with 'grpc-' are reserved)"
local NOT_BASE64 = "a header whose name ends in '-bin' must have a base64 value"
local INVALID_ARGUMENT = "3"

-- Base64 as gRPC decodes it (its HPACK parser's Unbase64Loop): the standard alphabet,
-- padding optional, no 4n+1 characters, and the bits left over by a last partial group
-- zero (canonical), so "QQ" passes and "QR" does not. Stricter than gRPC on stray padding,
-- which refuses nothing a real encoder writes.
local LAST_OF_2 = "AQgw" -- the characters whose low 4 bits are zero
local LAST_OF_3 = "AEIMQUYcgkosw048" -- low 2 bits zero
local function is_base64(value)
  local data = gsub(value, "==?$", "", 1)
  if find(data, "[^A-Za-z0-9+/]") then return false end
  if #data ~= #value and #value % 4 ~= 0 then return false end
  local rest = #data % 4
  if rest == 0 then return true end
  if rest == 1 then return false end
  return find(rest == 2 and LAST_OF_2 or LAST_OF_3, sub(data, -1), 1, true) ~= nil
end

-- The grpc- headers a gRPC client sends, and why a value is wrong (nil: it is not). gRPC
-- fails the call on a value it cannot parse; worse, its HPACK table remembers the failure
-- against the header's name on that upstream connection, so later calls from other
-- clients naming the same header fail too.
local GRPC_HEADERS = {
  ["grpc-timeout"] = function(value)
    if find(value, "^%d%d?%d?%d?%d?%d?%d?%d?[HMSmun]$") then return nil end
    return "must be 1 to 8 digits and a unit (H, M, S, m, u or n)"
  end,
  ["grpc-encoding"] = function(value)
    if value == "identity" or value == "gzip" or value == "deflate" then return nil end
    return "must be identity, gzip or deflate"
  end,
  -- gRPC ignores what it does not know in this one; the -bin ones are checked as bytes.
  ["grpc-accept-encoding"] = function() return nil end,
  ["grpc-trace-bin"] = function() return nil end,
  ["grpc-tags-bin"] = function() return nil end,
  ["grpc-previous-rpc-attempts"] = function(value)
    if find(value, "^%d%d?%d?%d?%d?%d?%d?%d?%d?$") then return nil end
    return "must be a number"
  end,
}

-- The bytes gRPC allows in a metadata key, as a lookup table: a loop over it is several
-- times cheaper than a pattern with a character class.
local LEGAL = {}
for c in string.gmatch("0123456789abcdefghijklmnopqrstuvwxyz_.-", ".") do LEGAL[byte(c)] = true end

-- Why a header cannot travel as gRPC metadata, or nil when it can. The common case (a plain
-- name) costs one find and two byte reads: this runs for every header of every request.
local function refusal(name, value, grpc)
  for i = 1, #name do
    if not LEGAL[byte(name, i)] then return BAD_NAME end
  end
  if byte(name) == G and find(name, "^grpc%-") then
    if not grpc then return RESERVED end
    local check = GRPC_HEADERS[name]
    if not check then return UNKNOWN_GRPC end
    local why = check(value)
    if why then return name .. " " .. why end
  end
  if byte(name, -4) == DASH and sub(name, -3) == "bin" and not is_base64(value) then
    return NOT_BASE64
  end
  return nil
end

-- gRPC's percent-encoding of grpc-message.
local function percent_encode(text)
  return (gsub(text, "[^\32-\36\38-\126]", function(c) return format("%%%02X", c:byte()) end))
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local grpc = find(headers:get("content-type") or "", "application/grpc", 1, true) == 1
  local issues
  for name, value in pairs(headers) do
    -- Pseudo-headers (:path, :authority, ...) are HTTP/2's own, never metadata.
    if byte(name) ~= COLON then
      local why = refusal(name, value, grpc)
      if why then
        issues = issues or {}
        -- The codecs let through only visible ASCII names; keep the reply so regardless.
        issues[#issues + 1] = { name = (gsub(name, "[^\33-\126]", "?")), detail = why }
      end
    end
  end
  if not issues then return end
  local names = {}
  for n, issue in ipairs(issues) do names[n] = issue.name end
  if grpc then
    local parts = {}
    for n, issue in ipairs(issues) do parts[n] = "header " .. issue.name .. ": " .. issue.detail end
    handle:respond({
      [":status"] = "200",
      ["content-type"] = "application/grpc",
      ["grpc-status"] = INVALID_ARGUMENT,
      ["grpc-message"] = percent_encode(concat(parts, "; ")),
    }, "")
    return
  end
  handle:streamInfo():dynamicMetadata():set(NAMESPACE, "issues", issues)
  handle:respond({ [":status"] = "400" }, format("the request has %s the API cannot accept: %s",
    #issues == 1 and "a header" or "headers", concat(names, ", ")))
end
