-- test_down: the Erlang node is killed (SIGKILL): monitors on its
-- processes fire with "noconnection", a node-down event arrives, and its
-- pg members leave chip at once.
package.path = "./?.lua;" .. package.path
local D = require "distlib"
local lib, A = D.lib, D.A
local process = require "process"
local chip = require "chip"
local dist = require "dist"
local test = lib.test

lib.quiet()
D.start()

test("a killed node: DOWN noconnection, node down, its pg members leave", function()
  local reg = assert(chip.start())
  assert(dist.pg(reg))
  local w = D.eval([[
    W = spawn(fun() -> receive _ -> ok end end),
    ok = pg:join(workers, W), W.]])
  assert(dist.pg_sync(reg))
  lib.eq(#chip.members(reg, "workers"), 1, "the BEAM worker is a member")
  local m = process.monitor(w)
  local events = process.new_subject()
  dist.monitor_nodes(events)
  local os_pid = D.eval("list_to_integer(os:getpid()).")
  lib.ok(math.type(os_pid) == "integer", "the peer's OS pid")
  -- SIGKILL: no goodbye on the connection, only its end
  assert(os.execute("kill -9 " .. os_pid))
  local d = lib.down(m, 10000)
  lib.eq(d.reason, "noconnection"); lib.ok(d.pid == w, "names the BEAM pid")
  local ev = D.await(events)
  lib.eq(ev.event, "down"); lib.eq(ev.node, D.peer)
  lib.same(chip.members(reg, "workers"), {}, "delisted")
  lib.same(dist.nodes(), {})
  -- and a node that is gone cannot be reached
  local ok, err = dist.connect(D.peer, 1000)
  lib.eq(ok, nil); lib.eq(err.kind, "noconnection")
  chip.stop(reg)
end)

dist.stop()
