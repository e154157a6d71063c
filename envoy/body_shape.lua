-- The request path of the REST routes whose body holds lists or maps (the route names this
-- source in its per-route config; other routes run no code here). The launcher puts
-- json.lua in front of this file: decode, NULL and is_array come from there.
--
-- Envoy's transcoder is lenient where the contract is not: `"scopes": "AAA"` becomes
-- ["AAA"]; `[null]` becomes an empty list (for an API key that meant every scope); an
-- object where a map<string, string> value belongs becomes a corrupt message the api
-- cannot read. So before the transcoder sees the JSON, this checks those places against
-- the route's bodyShape (gen/envoy/routes.json, from the contracts: see
-- scripts/envoy_descriptor.py) and refuses what the contract does not describe with a 400
-- naming the field as the client wrote it. Anything else (syntax errors, unknown fields,
-- a string where a number belongs) is the transcoder's to judge, as before.
--
-- It runs after the buffer filter, so the body is whole and at most 1 MiB.

local find, format, concat = string.find, string.format, table.concat

-- Read by problem.lua (as request_guard.lua's header issues are).
local NAMESPACE = "ampmesh.request_guard"

local function is_scalar(value)
  local kind = type(value)
  return kind == "string" or kind == "number" or kind == "boolean"
end

local function json_kind(value)
  if value == NULL then return "null" end
  if type(value) == "table" then return is_array(value) and "a list" or "an object" end
  return "a " .. type(value)
end

local function member(path, name)
  if path == "" then return name end
  return path .. "." .. name
end

local check_object

-- Why one element of a list, or value of a map, breaks `items` (nil: it does not).
local function check_item(value, items, path)
  if items == "any" then return nil end
  if value == NULL then return path, "must not be null" end
  if items == "scalar" then
    if is_scalar(value) then return nil end
    return path, "must be a string, a number or true/false, not " .. json_kind(value)
  end
  if type(value) ~= "table" or is_array(value) then
    return path, "must be an object, not " .. json_kind(value)
  end
  return check_object(value, items, path)
end

-- The first place where `value` (a decoded JSON object) breaks `shape`: path, reason.
check_object = function(value, shape, path)
  for name, field in pairs(shape) do
    local given = value[name]
    local written = name
    if given == nil and field.proto then
      given, written = value[field.proto], field.proto
    end
    if given ~= nil and given ~= NULL then
      local here = member(path, written)
      local kind = field.kind
      if kind == "list" then
        if type(given) ~= "table" or not is_array(given) then
          return here, "must be a list, not " .. json_kind(given)
        end
        for i, item in ipairs(given) do
          local where, why = check_item(item, field.items, format("%s[%d]", here, i - 1))
          if where then return where, why end
        end
      elseif kind == "map" then
        if type(given) ~= "table" or is_array(given) then
          return here, "must be an object, not " .. json_kind(given)
        end
        for key, item in pairs(given) do
          local where, why = check_item(item, field.items, member(here, key))
          if where then return where, why end
        end
      elseif type(given) == "table" and not is_array(given) then -- "object"
        local where, why = check_object(given, field.items, here)
        if where then return where, why end
      end
    end
  end
  return nil
end

function envoy_on_request(handle)
  local shape = handle:metadata():get("bodyShape")
  if shape == nil then return end
  local body = handle:body()
  if body == nil or body:length() == 0 then return end
  local ok, value = pcall(decode, body:getBytes(0, body:length()))
  -- Not JSON, or not an object: the transcoder says what is wrong with it.
  if not ok or type(value) ~= "table" or is_array(value) then return end
  local where, why = check_object(value, shape, "")
  if not where then return end
  handle:streamInfo():dynamicMetadata():set(NAMESPACE, "issues",
    { { ["in"] = "body", name = where, detail = why } })
  handle:respond({ [":status"] = "400" },
    concat({ "the request body does not match the API: ", where, ": ", why }))
end
