-- The live half of tests/cli/test_dashboard_browser.sh: drives a
-- headless Chromium that has the dashboard open, through the DevTools
-- protocol (a WebSocket client on arbor's own net), and checks on that
-- one page, without reloading it:
--   1. the rendered tree lists every child given;
--   2. after the victim is crashed on purpose (a datagram to the port in
--      CRASH_PORT_FILE), its restart count on the page goes up, pushed
--      by the event stream.
--
--   arbor cdp.lua DEVTOOLS_PORT DASHBOARD_PORT CRASH_PORT_FILE PATH...
--
-- Waits poll the page with deadlines; each check prints ok or raises.
local net = require "net"
local fs = require "fs"
local process = require "process"
local json = require "arbor.json"
local core = require "arbor.core"

local DT_PORT = assert(math.tointeger(tonumber(arg[1])))
local DASH_PORT = assert(math.tointeger(tonumber(arg[2])))
local CRASH_PORT_FILE = assert(arg[3])
local expected = table.move(arg, 4, #arg, 1, {})

-- {=====================================================================
-- HTTP GET and a WebSocket client (RFC 6455, client side: masked frames)
-- ======================================================================

local function http_get(path)
  local s = assert(net.connect { host = "127.0.0.1", port = DT_PORT,
                                 timeout = 3000 })
  s:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. DT_PORT
         .. "\r\nConnection: close\r\n\r\n")
  local buf = ""
  while true do
    local data = s:receive(5000)
    if data == nil then break end
    buf = buf .. data
  end
  s:close()
  return buf:match("\r\n\r\n(.*)$")
end

local WS = {}
WS.__index = WS

local function ws_connect(url)
  local port, path = url:match("^ws://127%.0%.0%.1:(%d+)(/.*)$")
  local s = assert(net.connect { host = "127.0.0.1", port = tonumber(port),
                                 timeout = 3000 })
  local key = ""
  for _ = 1, 16 do key = key .. string.char(math.random(0, 255)) end
  local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local enc = (key:gsub(".", function(c)
    local b = c:byte()
    local bits = ""
    for i = 7, 0, -1 do bits = bits .. ((b >> i) & 1) end
    return bits
  end) .. "0000"):gsub("%d%d%d%d%d%d", function(six)
    local v = tonumber(six, 2)
    return b64:sub(v + 1, v + 1)
  end)
  enc = enc:sub(1, 22) .. "=="
  s:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. port
         .. "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         .. "Sec-WebSocket-Key: " .. enc .. "\r\nSec-WebSocket-Version: 13\r\n\r\n")
  local buf = ""
  while not buf:find("\r\n\r\n", 1, true) do
    buf = buf .. assert(s:receive(5000))
  end
  local head, rest = buf:match("^(.-)\r\n\r\n(.*)$")
  assert(head:match("^HTTP/1%.1 101"), "websocket handshake: " .. head)
  return setmetatable({ s = s, buf = rest, next_id = 0 }, WS)
end

function WS:send_text(text)
  local mask = string.pack("I4", math.random(0, 0xFFFFFFFF))
  local len = #text
  local head
  if len < 126 then
    head = string.pack("BB", 0x81, 0x80 | len)
  elseif len < 65536 then
    head = string.pack(">BBI2", 0x81, 0x80 | 126, len)
  else
    head = string.pack(">BBI8", 0x81, 0x80 | 127, len)
  end
  local out = {}
  for i = 1, len do
    out[i] = string.char(text:byte(i) ~ mask:byte((i - 1) % 4 + 1))
  end
  assert(self.s:send(head .. mask .. table.concat(out)))
end

function WS:need(n, deadline)
  while #self.buf < n do
    local data, err = self.s:receive(math.max(1, deadline - core.now()))
    assert(data, "websocket: " .. tostring(err))
    self.buf = self.buf .. data
  end
end

-- The next whole text message.
function WS:receive_text(deadline)
  local parts = {}
  while true do
    self:need(2, deadline)
    local b1, b2 = self.buf:byte(1, 2)
    local len, at = b2 & 0x7F, 3
    if len == 126 then
      self:need(4, deadline)
      len, at = string.unpack(">I2", self.buf, 3), 5
    elseif len == 127 then
      self:need(10, deadline)
      len, at = string.unpack(">I8", self.buf, 3), 11
    end
    self:need(at - 1 + len, deadline)
    local payload = self.buf:sub(at, at + len - 1)
    self.buf = self.buf:sub(at + len)
    local op = b1 & 0x0F
    if op == 1 or op == 0 then
      parts[#parts + 1] = payload
      if b1 & 0x80 ~= 0 then return table.concat(parts) end
    elseif op == 8 then
      error("websocket closed by the browser")
    end -- pings and pongs: ignored
  end
end

-- Runtime.evaluate: the expression's value (returned by value).
function WS:eval(expr)
  self.next_id = self.next_id + 1
  local id = self.next_id
  self:send_text(json.encode { id = id, method = "Runtime.evaluate",
                               params = { expression = expr,
                                          returnByValue = true } })
  local deadline = core.now() + 10000
  while true do
    local msg = json.decode(self:receive_text(deadline))
    if msg and msg.id == id then
      assert(msg.result and msg.result.result, "evaluate: " .. json.encode(msg))
      return msg.result.result.value
    end
  end
end

-- }=====================================================================

local function poll(what, timeout, fn)
  local deadline = core.now() + timeout
  while true do
    local ok, value = pcall(fn)
    if ok and value then return value end
    if core.now() >= deadline then
      error(what .. ": not within " .. timeout .. " ms (last: "
            .. tostring(value) .. ")", 2)
    end
    process.sleep(100)
  end
end

-- The page target showing the dashboard.
local target = poll("the dashboard page in the browser", 20000, function()
  local list = json.decode(http_get("/json/list") or "")
  for _, t in ipairs(list or {}) do
    if t.type == "page" and t.url:find("http://127.0.0.1:" .. DASH_PORT .. "/", 1, true) then
      return t
    end
  end
end)
local ws = ws_connect(target.webSocketDebuggerUrl)

local ROWS = [[JSON.stringify(Array.from(document.querySelectorAll("tr.child"))
  .map(r => [r.dataset.path, Number(r.dataset.restarts), r.dataset.status]))]]

local function rows()
  local list = json.decode(ws:eval(ROWS))
  local by = {}
  for _, r in ipairs(list) do by[r[1]] = { restarts = r[2], status = r[3] } end
  return by
end

-- 1. Every child is listed.
poll("every child on the page", 20000, function()
  local by = rows()
  for _, path in ipairs(expected) do
    if not by[path] or by[path].status ~= "running" then
      return nil, "missing " .. path
    end
  end
  return true
end)
local before = rows()
print(string.format("ok - the page lists all %d children, running", #expected))

-- 2. A crash on purpose: the same page (no reload) shows the restart.
ws:eval("window.__arborProbe = 42")
local victim_before = before.victim.restarts
local port = assert(math.tointeger(tonumber(assert(fs.read(CRASH_PORT_FILE)))))
local u = assert(net.udp { host = "127.0.0.1", port = 0 })
assert(u:send_to("127.0.0.1", port, "crash from the browser test"))
local started = core.now()
poll("the victim's restart count going up on the page", 15000, function()
  local by = rows()
  return by.victim and by.victim.restarts > victim_before
end)
local took = core.now() - started
assert(ws:eval("window.__arborProbe") == 42, "the page was reloaded")
assert(ws:eval([[document.getElementById("conn").textContent]]) == "live",
       "the event stream is not live")
local after = rows()
for _, path in ipairs(expected) do
  if path ~= "victim" then
    assert(after[path].restarts == before[path].restarts,
           path .. "'s restart count changed")
  end
end
print(string.format("ok - restart count of victim went %d -> %d on the live page (%d ms)",
                    victim_before, after.victim.restarts, took))
