-- echo: TCP echo throughput on 127.0.0.1, server and clients in one
-- host: CONNS client processes each send TOTAL_MB / CONNS of data in 16
-- KiB blocks, each block waited for until it has come back whole; the
-- server runs a process per connection that sends back what it receives.
-- Same scheme in echo.erl.  Prints the rate in MB/s (both directions'
-- payload counted once).
--
--   arbor tests/bench/echo.lua [CONNS] [TOTAL_MB]    (default 1, 64)
local net = require "net"
local process = require "process"
local core = require "arbor.core"

local conns = math.tointeger(tonumber(arg[1])) or 1
local total_mb = math.tointeger(tonumber(arg[2])) or 64
local BLOCK = 16 * 1024
local blocks = (total_mb * 1024 * 1024) // BLOCK // conns

local listener = assert(net.listen {host = "127.0.0.1", port = 0, backlog = 1024})
local _, port = listener:address()

local function session(s)
  while true do
    local data = s:receive()
    if not data then break end
    s:send(data)
  end
  s:close()
end

local server = process.spawn(function()
  while true do
    local s = assert(net.accept(listener))
    s:give_to(process.spawn(session, s))
  end
end)
listener:give_to(server)

local block = string.rep("e", BLOCK)
local done = process.new_subject()
local t0 = core.now()
for _ = 1, conns do
  process.spawn(function()
    local c = assert(net.connect {host = "127.0.0.1", port = port})
    for _ = 1, blocks do
      c:send(block)
      local got = 0
      while got < BLOCK do got = got + #assert(c:receive()) end
    end
    c:close()
    process.send(done, true)
  end)
end
for _ = 1, conns do process.receive(done) end
local ms = core.now() - t0
local mb = blocks * conns * BLOCK / (1024 * 1024)
print(string.format("RESULT echo_rate %.1f MB/s", mb / (ms / 1000)))
process.kill(server)
os.exit(0)
