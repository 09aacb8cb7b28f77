-- test_slow: a slow or dead node never stalls the host: a node that
-- takes the TCP connection but never answers the handshake, and a node
-- that stops reading (SIGSTOP) while arbor sends it 100 MiB.
package.path = "./?.lua;" .. package.path
local D = require "distlib"
local lib, A = D.lib, D.A
local process = require "process"
local net = require "net"
local dist = require "dist"
local test = lib.test

lib.quiet()
-- a short handshake timeout, so the stuck handshake ends within the test
assert(dist.start{ name = D.name, cookie = D.cookie, handshake_timeout = 1500 })
assert(dist.connect(D.peer, 20000))
for _ = 1, 10 do if D.try_eval("ok.", 2000) ~= nil then break end end
local host = dist.node():match("@(.*)$")

-- Registers name with epmd for port (ALIVE2_REQ) and keeps the epmd
-- connection (the registration lives as long as it).
local function epmd_register(name, port)
  local s = assert(net.connect{ host = "127.0.0.1", port = 4369 })
  local body = string.pack(">BI2BBI2I2s2s2", 120, port, 72, 0, 6, 5, name, "")
  assert(s:send(string.pack(">s2", body)))
  local reply = assert(s:receive(5000))
  assert(reply:byte(1) == 121 or reply:byte(1) == 118, "epmd answered")
  assert(reply:byte(2) == 0, "epmd accepted the name")
  return s
end

test("a node that never answers the handshake: connect times out, the host runs on", function()
  local l = assert(net.listen{ host = "0.0.0.0", port = 0 })
  local _, port = l:address()
  local reg = epmd_register("mute_" .. D.name, port)
  local mute = "mute_" .. D.name .. "@" .. host
  -- the handshake job is stuck on a pool thread; the caller gives up
  local ok, err = dist.connect(mute, 300)
  lib.eq(ok, nil); lib.eq(err.kind, "timeout")
  -- meanwhile the real peer is served as usual
  lib.eq(D.eval("1 + 1."), 2, "the peer still answers")
  lib.eq(D.echo("x"), "x")
  -- the listener did get the connection (nothing answers on it)
  local c = assert(net.accept(l, 5000))
  -- the handshake gives up at its own timeout; then connect says why
  ok, err = dist.connect(mute, 300)
  lib.eq(ok, nil)
  lib.ok(err.kind == "timeout" or err.kind == "noconnection", tostring(err))
  c:close(); l:close(); reg:close()
end)

test("a node that stops reading: sends never block, and past 64 MiB it is dropped", function()
  local events = process.new_subject()
  dist.monitor_nodes(events)
  local os_pid = D.eval("list_to_integer(os:getpid()).")
  assert(os.execute("kill -STOP " .. os_pid))
  local ticks = 0
  local ticker = process.spawn(function()
    -- a process that keeps running while main sends (ticks is shared:
    -- a function travels as the same object)
    while true do ticks = ticks + 1; process.sleep(1) end
  end)
  local chunk = string.rep("z", 1 << 20)
  local sent = 0
  for i = 1, 100 do
    dist.send({ "echo", D.peer }, { i, chunk })
    sent = i
    if #dist.nodes() == 0 then break end -- dropped: the queue overflowed
    process.sleep(0) -- let the loop write and the ticker run
  end
  lib.ok(sent < 100, "the connection was dropped before 100 MiB: " .. sent)
  local ev = D.await(events)
  lib.eq(ev.event, "down")
  lib.ok(ev.reason:find("output queue overflow"), ev.reason)
  process.kill(ticker)
  lib.ok(ticks > 0, "other processes ran while the node did not read")
  assert(os.execute("kill -CONT " .. os_pid))
  -- the peer is alive again and reachable afresh
  lib.eq(dist.connect(D.peer, 10000), true)
  lib.eq(D.eval("ok."), A.ok)
  dist.monitor_nodes(events, false)
end)

dist.stop()
