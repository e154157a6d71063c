-- The request path of the read and write listeners: `?apiKey=` authenticates as the
-- x-api-key header does (the reference accepts both), so it becomes that header and
-- leaves the query, where the transcoder would reject it as an unknown parameter. A
-- client's own x-api-key header wins over the query.

-- Header values must be visible ASCII: anything else (a CR/LF smuggled in as %0d%0a)
-- is dropped, and the api then answers as for a request without a key.
local function header_value(text)
  local decoded = string.gsub(text, "%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end)
  if string.find(decoded, "^[\33-\126]+$") then return decoded end
  return nil
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local path = headers:get(":path") or ""
  local mark = string.find(path, "?", 1, true)
  if not mark or not string.find(path, "apiKey", mark, true) then return end
  local kept, key, found = {}, nil, false
  for pair in string.gmatch(string.sub(path, mark + 1), "[^&]+") do
    local name, value = string.match(pair, "^([^=]*)=?(.*)$")
    if name == "apiKey" then
      found = true
      key = key or header_value(value)
    else
      kept[#kept + 1] = pair
    end
  end
  if not found then return end
  local rest = #kept > 0 and ("?" .. table.concat(kept, "&")) or ""
  headers:replace(":path", string.sub(path, 1, mark - 1) .. rest)
  if key and not headers:get("x-api-key") then headers:add("x-api-key", key) end
end
