--[[
arbor.json: JSON text from Lua values and back, for `arbor status
--json`, the dashboard and tests.  Pure Lua; depends on nothing (values
it cannot show as JSON are described with arbor.core.describe when that
module is there).

  json.encode(value [, opts]) -> string
  json.decode(text) -> value | nil, err
  json.null              a value that encodes as null (decode gives it back)
  json.array(t) -> t     marks t to encode as an array even when empty

encode never raises for a value it is given, whatever it holds, and never
runs the value's code:
- Tables are read raw (rawget/next): metatables are ignored, so no
  __index, __pairs or __tostring of a user's value runs.
- A table whose keys are exactly 1..n (n >= 1) is an array; any other is
  an object whose keys are sorted (strings before numbers' texts, then
  by text), so the output of the same value is always the same.  Number
  keys become their text ("1", "2.5"); a key of another type (a table, a
  boolean, a pid) becomes "<type>" text made by describe, suffixed when
  two keys would collide.
- A table met again inside itself (a cycle) encodes as the string
  "(cycle)"; nesting deeper than opts.max_depth (default 32) as
  "(too deep)".  A table shared by two branches (no cycle) is written
  in both places.
- Strings are escaped as RFC 8259 asks (", \, control bytes as \u00XX);
  bytes that are not valid UTF-8 become U+FFFD, so the output is always
  valid UTF-8 and valid JSON.  "/" is left as it is, but "</" is written
  "<\/" so the text can sit inside an HTML <script>.
- Integers are written exactly; floats with 17 significant digits (%.17g,
  which round-trips) and NaN or infinities as null (JSON has none).
- Functions, userdata (pids, subjects) and threads are strings: a pid is
  its text "<0.12.1>", anything else what describe says.
- opts.indent (a string, e.g. "  ") pretty-prints; default compact.

decode accepts RFC 8259 JSON (one value, surrounding whitespace), with
\u escapes and surrogate pairs, and gives nil, "json: <what> at byte N"
for anything else.  Objects become tables, arrays tables with 1..n
(json.null in holes), numbers integers when they are written without a
fraction or exponent and fit, else floats.  Nesting is limited to 512.
]]
local M = {}

local ok_core, core = pcall(require, "arbor.core")
local describe_value = ok_core and core.describe or nil

local null = setmetatable({}, { __tostring = function() return "null" end })
M.null = null

local ARRAY = setmetatable({}, { __mode = "k" }) -- tables marked by array()

function M.array(t)
  ARRAY[t] = true
  return t
end

local DEFAULT_MAX_DEPTH = 32

-- {=====================================================================
-- Strings
-- ======================================================================

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for c = 0, 31 do
  local ch = string.char(c)
  if not ESCAPES[ch] then ESCAPES[ch] = string.format("\\u%04x", c) end
end
ESCAPES["\127"] = "\\u007f"

-- Replaces every byte sequence that is not valid UTF-8 by U+FFFD.
local function valid_utf8(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len = utf8.len(s, i, i) -- nil when the sequence at i is bad
    local ok_seq = false
    if len then
      local c = s:byte(i)
      local size = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
      local piece = s:sub(i, i + size - 1)
      if #piece == size and utf8.len(piece) == 1 then
        out[#out + 1] = piece
        i = i + size
        ok_seq = true
      end
    end
    if not ok_seq then
      out[#out + 1] = "\u{FFFD}"
      i = i + 1
    end
  end
  return table.concat(out)
end

local function quote(s)
  s = valid_utf8(s)
  s = s:gsub('[%c"\\]', ESCAPES):gsub("</", "<\\/")
  return '"' .. s .. '"'
end

-- }=====================================================================

-- {=====================================================================
-- encode
-- ======================================================================

local function describe(v)
  if describe_value then
    local ok, text = pcall(describe_value, v)
    if ok and type(text) == "string" then return text end
  end
  return "(" .. type(v) .. ")"
end

local function number_text(n)
  if math.type(n) == "integer" then return string.format("%d", n) end
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then
    return string.format("%.1f", n) -- 3.0 stays a float: "3.0"
  end
  return string.format("%.17g", n)
end

local function key_text(k)
  local t = type(k)
  if t == "string" then return k end
  if t == "number" then
    if math.type(k) == "integer" then return string.format("%d", k) end
    return string.format("%.17g", k)
  end
  return describe(k)
end

-- Is t (read raw) an array 1..n with n >= 1?  Returns n or nil.
local function array_length(t)
  local n = 0
  for k in next, t do
    if math.type(k) ~= "integer" or k < 1 then return nil end
    n = n + 1
  end
  if n == 0 then return nil end
  for i = 1, n do
    if rawget(t, i) == nil then return nil end
  end
  return n
end

local function sorted_keys(t)
  local keys, texts, used = {}, {}, {}
  for k in next, t do keys[#keys + 1] = k end
  -- String keys keep their text: they claim it before any other key
  -- (whichever next() gives first), so a number key 1 beside a string
  -- key "1" is the one suffixed, and no object has a key twice.
  for _, k in ipairs(keys) do
    if type(k) == "string" then used[k] = true; texts[k] = k end
  end
  for _, k in ipairs(keys) do
    if type(k) ~= "string" then
      local text = key_text(k)
      if used[text] then
        local i = 2
        while used[text .. "#" .. i] do i = i + 1 end
        text = text .. "#" .. i
      end
      used[text] = true
      texts[k] = text
    end
  end
  table.sort(keys, function(a, b)
    local sa, sb = type(a) == "string", type(b) == "string"
    if sa ~= sb then return sa end
    return texts[a] < texts[b]
  end)
  return keys, texts
end

local encode_value

local function encode_table(t, out, depth, opts, open)
  if open[t] then
    out[#out + 1] = '"(cycle)"'
    return
  end
  if depth > opts.max_depth then
    out[#out + 1] = '"(too deep)"'
    return
  end
  open[t] = true
  local indent = opts.indent
  local nl, pad, inner = "", "", ""
  if indent then
    nl = "\n"
    pad = string.rep(indent, depth - 1)
    inner = pad .. indent
  end
  local n = array_length(t)
  if n or (ARRAY[t] and next(t) == nil) then
    if not n or n == 0 then
      out[#out + 1] = "[]"
    else
      out[#out + 1] = "[" .. nl
      for i = 1, n do
        out[#out + 1] = inner
        encode_value(rawget(t, i), out, depth + 1, opts, open)
        out[#out + 1] = (i < n and "," or "") .. nl
      end
      out[#out + 1] = pad .. "]"
    end
  elseif next(t) == nil then
    out[#out + 1] = "{}"
  else
    local keys, texts = sorted_keys(t)
    out[#out + 1] = "{" .. nl
    local sep = indent and ": " or ":"
    for i, k in ipairs(keys) do
      out[#out + 1] = inner .. quote(texts[k]) .. sep
      encode_value(rawget(t, k), out, depth + 1, opts, open)
      out[#out + 1] = (i < #keys and "," or "") .. nl
    end
    out[#out + 1] = pad .. "}"
  end
  open[t] = nil
end

function encode_value(v, out, depth, opts, open)
  local t = type(v)
  if v == nil or v == null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    out[#out + 1] = number_text(v)
  elseif t == "string" then
    out[#out + 1] = quote(v)
  elseif t == "table" then
    encode_table(v, out, depth, opts, open)
  else
    out[#out + 1] = quote(describe(v))
  end
end

function M.encode(value, opts)
  local o = { max_depth = DEFAULT_MAX_DEPTH }
  if type(opts) == "table" then
    if math.type(rawget(opts, "max_depth")) == "integer" then
      o.max_depth = rawget(opts, "max_depth")
    end
    if type(rawget(opts, "indent")) == "string" then
      o.indent = rawget(opts, "indent")
    end
  end
  local out = {}
  encode_value(value, out, 1, o, {})
  return table.concat(out)
end

-- }=====================================================================

-- {=====================================================================
-- decode
-- ======================================================================

local MAX_NESTING = 512

local function decode_error(what, at)
  error({ json_error = string.format("json: %s at byte %d", what, at) }, 0)
end

local UNESCAPES = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t",
}

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local decode_at

local function decode_string(s, i) -- s:sub(i, i) == '"'
  local out, at = {}, i + 1
  while true do
    local j = s:find('["\\%c]', at)
    if j == nil then decode_error("unterminated string", i) end
    out[#out + 1] = s:sub(at, j - 1)
    local c = s:sub(j, j)
    if c == '"' then
      local text = table.concat(out)
      if not utf8.len(text) then decode_error("invalid UTF-8 in string", i) end
      return text, j + 1
    elseif c == "\\" then
      local e = s:sub(j + 1, j + 1)
      if UNESCAPES[e] then
        out[#out + 1] = UNESCAPES[e]
        at = j + 2
      elseif e == "u" then
        local hex = s:match("^%x%x%x%x", j + 2)
        if not hex then decode_error("bad \\u escape", j) end
        local code = tonumber(hex, 16)
        at = j + 6
        if code >= 0xD800 and code <= 0xDBFF then
          local low = s:match("^\\u(%x%x%x%x)", at)
          local lo = low and tonumber(low, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then
            decode_error("lone surrogate in \\u escape", j)
          end
          code = 0x10000 + (code - 0xD800) * 0x400 + (lo - 0xDC00)
          at = at + 6
        elseif code >= 0xDC00 and code <= 0xDFFF then
          decode_error("lone surrogate in \\u escape", j)
        end
        out[#out + 1] = utf8.char(code)
      else
        decode_error("bad escape", j)
      end
    else
      decode_error("control byte in string", j)
    end
  end
end

local function decode_number(s, i)
  local j = i
  if s:sub(j, j) == "-" then j = j + 1 end
  local int = s:match("^0", j) or s:match("^[1-9]%d*", j)
  if not int then decode_error("bad number", i) end
  j = j + #int
  local frac = s:match("^%.%d+", j)
  if frac then j = j + #frac
  elseif s:sub(j, j) == "." then decode_error("bad number", i) end
  local exp = s:match("^[eE][-+]?%d+", j)
  if exp then j = j + #exp
  elseif s:find("^[eE]", j) then decode_error("bad number", i) end
  local text = s:sub(i, j - 1)
  local n = tonumber(text)
  if frac or exp then return n + 0.0, j end
  return math.tointeger(n) or n + 0.0, j
end

local LITERALS = { t = { "true", true }, f = { "false", false },
                   n = { "null", null } }

function decode_at(s, i, depth)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "" then decode_error("unexpected end", i) end
  if c == "{" or c == "[" then
    if depth >= MAX_NESTING then decode_error("nesting too deep", i) end
  end
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then decode_error("expected a string key", i) end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then decode_error("expected ':'", i) end
      local v
      v, i = decode_at(s, i + 1, depth + 1)
      t[k] = v
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then decode_error("expected ',' or '}'", i) end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local t, n = M.array({}), 0
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      local v
      v, i = decode_at(s, i, depth + 1)
      n = n + 1
      t[n] = v
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then decode_error("expected ',' or ']'", i) end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "-" or c:match("%d") then
    return decode_number(s, i)
  elseif LITERALS[c] then
    local word, value = LITERALS[c][1], LITERALS[c][2]
    if s:sub(i, i + #word - 1) ~= word then decode_error("bad literal", i) end
    return value, i + #word
  end
  decode_error("unexpected character", i)
end

function M.decode(text)
  if type(text) ~= "string" then
    return nil, "json: text expected, got " .. type(text)
  end
  local ok, value, at = pcall(decode_at, text, 1, 0)
  if not ok then
    if type(value) == "table" and value.json_error then
      return nil, value.json_error
    end
    error(value, 0) -- not ours: out of memory
  end
  at = skip(text, at)
  if at <= #text then
    return nil, string.format("json: trailing characters at byte %d", at)
  end
  return value
end

-- }=====================================================================

return M
