-- idle_conn: N idle TCP connections and the memory each costs the
-- server: a process per accepted connection waiting to receive, after
-- one short line has gone each way (each connection has read once, as a
-- live one has).  The clients are another OS process
-- (idle_conn_client.py, the same for idle_conn.erl), so only the
-- server's side is measured: its resident set (VmRSS) once all N have
-- answered, minus before, divided by N.  Needs N + a few descriptors.
--
--   arbor tests/bench/idle_conn.lua [N] [CLIENT]    (default 10000)
local net = require "net"
local process = require "process"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 10000
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

local function rss()
  collectgarbage()
  collectgarbage()
  core.compact()
  local f = assert(io.open("/proc/self/status"))
  local kb = f:read("a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb) * 1024
end

local listener = assert(net.listen {host = "127.0.0.1", port = 0, backlog = 4096,
                                    packet = "line"})
local _, port = listener:address()
local answered = process.new_subject()

local function session(s)
  s:receive()
  s:send("hello\n")
  process.send(answered, true)
  s:receive() -- idle until the client closes
end

local server = process.spawn(function()
  while true do
    local s = assert(net.accept(listener))
    s:give_to(process.spawn(session, s))
  end
end)
listener:give_to(server)

local before = rss()
local t0 = core.now()
local client = arg[2] or (here .. "idle_conn_client.py")
os.execute(string.format("python3 %s %d %d >/dev/null 2>&1 &", client, port, n))
for _ = 1, n do process.receive(answered) end
local ms = core.now() - t0
local after = rss()
print(string.format("RESULT idle_conn_setup %.1f ms", ms))
print(string.format("RESULT idle_conn_memory %.0f bytes/conn", (after - before) / n))
os.exit(0)
