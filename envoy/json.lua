-- JSON for the edge's Lua filters. Lua in Envoy has no JSON library, so this is a small
-- decoder (enough for google.rpc.Status, request bodies of at most 1 MiB, and locating a
-- member) and a string quoter for what the filters emit. It is not loaded on its own: the
-- launcher (services/launcher/edge.py, write_lua) puts it in front of each filter that
-- uses it, so the filters share one copy of the code and still load as one chunk.
--
-- Decoded values: objects and arrays are Lua tables (is_array tells them apart, an empty
-- one included), JSON null is NULL, numbers are Lua numbers.

local byte, char, find, sub, format = string.byte, string.char, string.find, string.sub, string.format
local concat, floor = table.concat, math.floor

-- JSON decoding --------------------------------------------------------------------------

local NULL = setmetatable({}, { __tostring = function() return "null" end })
local SIMPLE_ESCAPES = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

local function skip_space(s, i)
  local _, last = find(s, "^[ \t\r\n]*", i)
  return last + 1
end

local function utf8_char(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- s:sub(i, i) is the opening quote; returns the string and the index after the closing one.
local function decode_string(s, i)
  local parts, j = {}, i + 1
  while true do
    local k = find(s, '["\\%z\1-\31]', j)
    if not k then error("unterminated string") end
    parts[#parts + 1] = sub(s, j, k - 1)
    local c = sub(s, k, k)
    if c == '"' then return concat(parts), k + 1 end
    if c ~= "\\" then error("control character in a string") end
    local e = sub(s, k + 1, k + 1)
    if e == "u" then
      local hex = sub(s, k + 2, k + 5)
      if not find(hex, "^%x%x%x%x$") then error("bad \\u escape") end
      local cp = tonumber(hex, 16)
      j = k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local low = sub(s, j, j + 5)
        if find(low, "^\\u[dD][c-fC-F]%x%x$") then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(sub(low, 3), 16) - 0xDC00)
          j = j + 6
        else
          cp = 0xFFFD -- a lone high surrogate
        end
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        cp = 0xFFFD -- a lone low surrogate
      end
      parts[#parts + 1] = utf8_char(cp)
    else
      local plain = SIMPLE_ESCAPES[e]
      if not plain then error("bad escape") end
      parts[#parts + 1] = plain
      j = k + 2
    end
  end
end

local decode_value

local function decode_object(s, i)
  local object = {}
  i = skip_space(s, i + 1)
  if sub(s, i, i) == "}" then return object, i + 1 end
  while true do
    if sub(s, i, i) ~= '"' then error("expected a member name") end
    local key
    key, i = decode_string(s, i)
    i = skip_space(s, i)
    if sub(s, i, i) ~= ":" then error("expected ':'") end
    object[key], i = decode_value(s, skip_space(s, i + 1))
    i = skip_space(s, i)
    local c = sub(s, i, i)
    if c == "}" then return object, i + 1 end
    if c ~= "," then error("expected ',' or '}'") end
    i = skip_space(s, i + 1)
  end
end

local ARRAY = {}

local function is_array(value)
  return getmetatable(value) == ARRAY
end

local function decode_array(s, i)
  local array = setmetatable({}, ARRAY)
  i = skip_space(s, i + 1)
  if sub(s, i, i) == "]" then return array, i + 1 end
  while true do
    array[#array + 1], i = decode_value(s, i)
    i = skip_space(s, i)
    local c = sub(s, i, i)
    if c == "]" then return array, i + 1 end
    if c ~= "," then error("expected ',' or ']'") end
    i = skip_space(s, i + 1)
  end
end

local LITERALS = { t = { "true", true }, f = { "false", false }, n = { "null", NULL } }

-- The value starting at s:sub(i, i) (no leading space) and the index just after it.
decode_value = function(s, i)
  local c = sub(s, i, i)
  if c == "{" then return decode_object(s, i) end
  if c == "[" then return decode_array(s, i) end
  if c == '"' then return decode_string(s, i) end
  local literal = LITERALS[c]
  if literal then
    local word = literal[1]
    if sub(s, i, i + #word - 1) ~= word then error("bad literal") end
    return literal[2], i + #word
  end
  local _, last = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not last then error("unexpected character") end
  local number = tonumber(sub(s, i, last))
  if not number then error("bad number") end
  return number, last + 1
end

local function decode(s)
  local value, i = decode_value(s, skip_space(s, 1))
  if skip_space(s, i) <= #s then error("trailing characters") end
  return value
end

-- JSON encoding of what we emit -------------------------------------------------------

local QUOTED = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(text)
  local escaped = string.gsub(text, '[%z\1-\31"\\\127]', function(c)
    return QUOTED[c] or format("\\u%04x", byte(c))
  end)
  return '"' .. escaped .. '"'
end

