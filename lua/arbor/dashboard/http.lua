--[[
arbor.dashboard.http: the small, strict HTTP/1.1 the dashboard speaks,
over a `net` socket in raw packet mode.

It owns reading one request off a connection with every bound a hostile
client could push against: the request head may take at most
limits.header_bytes (else 431) and must arrive within limits.header_ms of
its first byte (else 408: slowloris); a body needs a Content-Length (else
411) of at most limits.body_bytes (else 413) and must arrive within
limits.body_ms; chunked bodies are refused (501); a request line or a
header that does not parse is a 400 naming what was wrong.  Between
requests a keep-alive connection may idle for limits.idle_ms, then it is
closed without a word.  Memory per connection is bounded by these limits
(plus what `net` reads in one go, 64 KiB).

It also owns writing responses, with the headers every answer carries.

Depends on `net` sockets' receive/send only (and arbor.core's clock);
knows nothing of routes, tokens or the tree.
]]
local core = require "arbor.core"

local M = {}

M.LIMITS = {
  header_bytes = 8192, -- request line and headers
  header_count = 64,
  header_ms = 10000,   -- from the request's first byte to its empty line
  idle_ms = 30000,     -- a keep-alive connection waiting for a request
  body_bytes = 65536,
  body_ms = 10000,
}

local REASONS = {
  [200] = "OK", [204] = "No Content", [400] = "Bad Request",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [409] = "Conflict", [411] = "Length Required",
  [413] = "Content Too Large", [415] = "Unsupported Media Type",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [503] = "Service Unavailable",
  [505] = "HTTP Version Not Supported",
}
M.REASONS = REASONS

-- An HTTP error to answer with: status and a one-line message.
local function http_error(status, message)
  return { status = status, message = message }
end

-- Header names are tokens (RFC 9110 5.6.2).
local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"

-- s without the spaces and tabs around it (RFC 9110's OWS).  A loop,
-- not a pattern: "(.-)[ \t]*$" backtracks over every run of blanks and
-- cost a quarter of a second of the host's one thread for a crafted 8 KiB
-- field ("a", 4,000 " \t", "b"), from a client without a token.
local function trim_ows(s)
  local i, j = 1, #s
  while i <= j do
    local c = s:byte(i)
    if c ~= 32 and c ~= 9 then break end
    i = i + 1
  end
  while j >= i do
    local c = s:byte(j)
    if c ~= 32 and c ~= 9 then break end
    j = j - 1
  end
  return s:sub(i, j)
end

-- Parses a request head (without its empty line).  Returns the request
-- {method, target, path, query, version, headers = {lowercase name ->
-- value}} or nil and an http_error.
function M.parse_head(head)
  local lines = {}
  for line in (head .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local method, target, major, minor =
    lines[1]:match("^(%u+) (%S+) HTTP/(%d)%.(%d)$")
  if method == nil then
    local shown = lines[1]:sub(1, 80):gsub("[^\32-\126]", "?")
    return nil, http_error(400, "malformed request line: '" .. shown .. "'")
  end
  if major ~= "1" then
    return nil, http_error(505, "HTTP/" .. major .. "." .. minor
                                .. " is not supported (HTTP/1.x only)")
  end
  if #lines - 1 > M.LIMITS.header_count then
    return nil, http_error(431, string.format(
      "more than %d header fields", M.LIMITS.header_count))
  end
  local headers = {}
  for i = 2, #lines do
    local line = lines[i]
    local name, value = line:match("^([^:]*):(.*)$")
    if name then value = trim_ows(value) end
    if name == nil or not name:match(TOKEN) then
      local shown = line:sub(1, 80):gsub("[^\32-\126]", "?")
      return nil, http_error(400, string.format(
        "malformed header field on line %d: '%s'", i, shown))
    end
    if value:find("[%z\1-\8\10-\31\127]") then
      return nil, http_error(400, "control character in header field '"
                                  .. name .. "'")
    end
    name = name:lower()
    if headers[name] and name == "content-length"
       and headers[name] ~= value then
      return nil, http_error(400, "conflicting Content-Length fields")
    end
    if name == "host" and headers.host then
      return nil, http_error(400, "more than one Host field")
    end
    headers[name] = headers[name] and name ~= "content-length"
                    and headers[name] .. ", " .. value or value
  end
  if minor ~= "0" and headers.host == nil then
    return nil, http_error(400, "HTTP/1.1 request without a Host field")
  end
  local path, query = target:match("^(/[^?#]*)%??([^#]*)")
  if path == nil then
    return nil, http_error(400, "request target must be a path starting "
                                .. "with '/'")
  end
  return { method = method, target = target, path = path, query = query,
           version = "1." .. minor, headers = headers }
end

-- Decodes %XX and '+' in a query component.
local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The query string as a table (the last value of a repeated name wins).
function M.query_params(query)
  local params = {}
  for pair in (query or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    params[unescape(k)] = unescape(v)
  end
  return params
end

-- Reads one request from sock (raw mode), starting with the bytes in
-- `pending` (what followed the previous request).  Returns request,
-- pending; or nil and an http_error (answer it, then close); or nil and
-- "closed" (the peer left, or idled out between requests: just close).
function M.read_request(sock, pending)
  local L = M.LIMITS
  local buf = pending or ""
  local started = core.now()
  -- Until the first byte: the idle deadline; from it: the head's own.
  local head_started = #buf > 0 and started or nil
  local deadline = head_started and started + L.header_ms
                   or started + L.idle_ms
  local head_at, head_end
  while true do
    -- Empty lines before a request are allowed (RFC 9112 2.2).
    buf = buf:gsub("^[\r\n]+", "")
    local s, e = buf:find("\r?\n\r?\n")
    if s then
      if s - 1 > L.header_bytes then
        return nil, http_error(431, string.format(
          "request head larger than %d bytes", L.header_bytes))
      end
      head_at, head_end = s, e
      break
    end
    if #buf > L.header_bytes then
      return nil, http_error(431, string.format(
        "request head larger than %d bytes", L.header_bytes))
    end
    if #buf > 0 and head_started == nil then
      head_started = core.now()
      deadline = head_started + L.header_ms
    end
    local left = deadline - core.now()
    if left <= 0 then
      if buf:find("%S") == nil then return nil, "closed" end
      return nil, http_error(408, string.format(
        "request head not complete within %d ms", L.header_ms))
    end
    local data, err = sock:receive(left)
    if data == nil then
      if err.kind == "timeout" then
        if buf:find("%S") == nil then return nil, "closed" end
        return nil, http_error(408, string.format(
          "request head not complete within %d ms", L.header_ms))
      end
      return nil, "closed"
    end
    buf = buf .. data
  end
  local head = buf:sub(1, head_at - 1)
  local rest = buf:sub(head_end + 1)
  local req, err = M.parse_head(head)
  if req == nil then return nil, err end
  local h = req.headers
  if h["transfer-encoding"] then
    return nil, http_error(501, "Transfer-Encoding is not supported; "
                                .. "send a Content-Length")
  end
  local length = 0
  if h["content-length"] then
    length = h["content-length"]:match("^%d+$") and
             tonumber(h["content-length"])
    if length == nil then
      return nil, http_error(400, "Content-Length is not a number: '"
                                  .. h["content-length"]:sub(1, 40) .. "'")
    end
  elseif req.method == "POST" or req.method == "PUT" then
    return nil, http_error(411, req.method .. " needs a Content-Length")
  end
  if length > L.body_bytes then
    -- The field's text, not the number: a length past 2^63 is a float,
    -- which %d cannot show.
    return nil, http_error(413, string.format(
      "body of %s bytes; at most %d", h["content-length"]:sub(1, 40),
      L.body_bytes))
  end
  local body_deadline = core.now() + L.body_ms
  while #rest < length do
    local left = body_deadline - core.now()
    local data, rerr
    if left > 0 then data, rerr = sock:receive(left) end
    if data == nil then
      if left <= 0 or rerr.kind == "timeout" then
        return nil, http_error(408, string.format(
          "body not complete within %d ms", L.body_ms))
      end
      return nil, "closed"
    end
    rest = rest .. data
  end
  req.body = rest:sub(1, length)
  req.keep_alive = req.version ~= "1.0"
  local conn = (h.connection or ""):lower()
  if conn:find("close", 1, true) then req.keep_alive = false end
  if conn:find("keep-alive", 1, true) then req.keep_alive = true end
  return req, rest:sub(length + 1)
end

-- Closes sock after an error answer without losing the answer: closing
-- with unread input would reset the connection, and the client could
-- lose the answer.  So: no more sending, then what the client still
-- sends is read and dropped, up to 1 MiB or 1 s, until it closes.
function M.linger_close(sock)
  sock:shutdown()
  local deadline, dropped = core.now() + 1000, 0
  while dropped < (1 << 20) do
    local left = deadline - core.now()
    if left <= 0 then break end
    local data = sock:receive(left)
    if data == nil then break end
    dropped = dropped + #data
  end
  sock:close()
end

-- The bytes of a response.  headers: extra "Name: value" lines.
function M.response(status, content_type, body, headers, close)
  local out = {
    string.format("HTTP/1.1 %d %s\r\n", status, REASONS[status] or "Status"),
    "Content-Type: ", content_type, "\r\n",
    "Content-Length: ", tostring(#body), "\r\n",
    "Cache-Control: no-store\r\n",
    "X-Content-Type-Options: nosniff\r\n",
    "X-Frame-Options: DENY\r\n",
    "Referrer-Policy: no-referrer\r\n",
  }
  for _, line in ipairs(headers or {}) do
    out[#out + 1] = line
    out[#out + 1] = "\r\n"
  end
  if close then out[#out + 1] = "Connection: close\r\n" end
  out[#out + 1] = "\r\n"
  out[#out + 1] = body
  return table.concat(out)
end

return M
