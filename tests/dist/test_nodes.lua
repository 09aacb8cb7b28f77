-- test_nodes: connections, names, messages both ways, gen_server calls
-- and monitors between arbor and a real Erlang node.
package.path = "./?.lua;" .. package.path
local D = require "distlib"
local lib, A = D.lib, D.A
local process = require "process"
local actor = require "actor"
local dist = require "dist"
local test = lib.test

local tuple, atom = dist.tuple, dist.atom
lib.quiet()

test("before start: no node, and misuse is named", function()
  lib.eq(dist.node(), nil)
  lib.same(dist.nodes(), {})
  lib.raises(function() dist.connect("x@y") end, "no node is running")
  lib.raises(function() dist.register("x", process.new_subject()) end,
             "no node is running")
end)

local me = D.start()

test("start: the node's name, a second start, the peer in nodes()", function()
  lib.eq(dist.node(), me)
  lib.ok(me:find("^" .. D.name .. "@"), me)
  local v, err = dist.start{ name = "other", cookie = "x" }
  lib.eq(v, nil); lib.eq(err.kind, "already_started")
  lib.same(dist.nodes(), { D.peer })
  -- the peer sees arbor as a hidden node
  lib.same(D.eval("nodes(hidden)."), { atom(me) })
  lib.same(D.eval("nodes()."), {}, "not a visible node")
end)

test("a node that does not exist: nil, err naming it", function()
  local host = me:match("@(.*)$")
  local v, err = dist.connect("nosuch_" .. D.name .. "@" .. host, 1000)
  lib.eq(v, nil); lib.eq(err.kind, "noconnection")
  lib.ok(tostring(err):find("nosuch_"), tostring(err))
  lib.raises(function() dist.connect("no-at-sign") end, "alive@host")
end)

test("registered names: {Name, Node} ! Msg lands in the subject", function()
  local inbox = process.new_subject()
  lib.eq(dist.register("inbox", inbox), true)
  lib.eq(dist.whereis("inbox"), inbox)
  local v, err = dist.register("inbox", process.new_subject())
  lib.eq(v, nil); lib.eq(err.kind, "name_taken")
  D.eval("{inbox, Arbor} ! {hello, self(), <<\"text\">>}, ok.")
  local m = D.await(inbox)
  lib.eq(m[1], A.hello); lib.ok(dist.is_pid(m[2])); lib.eq(m[3], "text")
  -- an unknown name drops the message; later ones still arrive
  local other = process.new_subject()
  dist.register("other", other)
  dist.unregister("inbox")
  lib.eq(dist.whereis("inbox"), nil)
  D.eval("{inbox, Arbor} ! lost, {other, Arbor} ! kept, ok.")
  lib.eq(D.await(other), A.kept)
  lib.no_message(inbox)
  -- a name whose owner ended is free again
  local held = process.new_subject()
  local p = process.spawn(function() dist.register("mine", process.new_subject()) end)
  lib.await_down(p)
  lib.eq(dist.register("mine", held), true)
  dist.unregister("mine"); dist.unregister("other")
end)

test("round trips: arbor -> BEAM pid and {name, node}, BEAM -> subject", function()
  local reply = D.eval_async([[
    register(catcher, self()), ReplyTo ! {ready, self()},
    A = receive X -> X end,
    B = receive Y -> Y end,
    ReplyTo ! {got, A, B}, done.]])
  local ready = D.await(reply)
  lib.eq(ready[1], A.ready)
  dist.send({ "catcher", D.peer }, "by name")
  dist.send(ready[2], tuple(atom("by_pid"), reply))
  local got = D.await(reply)
  lib.eq(got[2], "by name")
  lib.eq(got[3][1], A.by_pid); lib.eq(got[3][2], reply, "our subject came back")
  lib.eq(D.await(reply)[2], A.done)
  -- BEAM asks, an arbor process answers the BEAM pid
  local up = process.new_subject()
  local server = process.spawn(function()
    local inbox = process.new_subject()
    dist.register("pinger", inbox)
    process.send(up, true)
    for _ = 1, 100 do
      local m = process.receive(inbox)
      dist.send(m[2], tuple(A.pong, m[3] * 2))
    end
  end)
  D.await(up)
  lib.eq(D.eval([[
    lists:sum([begin {pinger, Arbor} ! {ping, self(), I},
                     receive {pong, R} -> R end end || I <- lists:seq(1, 100)]).]]),
         10100)
  lib.await_down(server)
  dist.unregister("pinger")
end)

test("gen_server:call to a registered arbor actor gets its reply", function()
  lib.trapping(function() -- the actor is linked and will crash
  local counter = assert(actor.start(0, function(msg, n)
    if msg.call then
      local req = msg.call
      if req == A.crash then error("boom") end
      n = n + req[2]
      process.send(msg.reply, n)
    end
    return actor.continue(n)
  end))
  dist.register("counter", counter)
  local r = D.eval([[
    {gen_server:call({counter, Arbor}, {add, 2}),
     gen_server:call({counter, Arbor}, {add, 3}, 5000),
     catch gen_server:call({nosuch, Arbor}, x, 5000)}.]])
  lib.eq(r[1], 2); lib.eq(r[2], 5)
  lib.eq(r[3][1], A.EXIT); lib.eq(r[3][2][1], A.noproc, "no such name")
  -- the callee crashing during the call: the caller sees it end
  local crash = D.eval([[
    catch gen_server:call({counter, Arbor}, crash, 5000).]])
  lib.eq(crash[1], A.EXIT)
  lib.ok(type(crash[2][1]) == "string" and crash[2][1]:find("boom"),
         "the reason is the error text: " .. D.show(crash[2]))
  dist.unregister("counter")
  end)
end)

test("process.monitor on a BEAM pid: DOWN with its reason; noproc; killed", function()
  local p = D.eval("spawn(fun() -> receive stop -> exit(bye) end end).")
  local m = process.monitor(p)
  dist.send(p, A.stop)
  local d = lib.down(m, 5000)
  lib.eq(d.reason, "bye"); lib.ok(d.pid == p, "DOWN names the BEAM pid")
  -- already dead
  local m2 = process.monitor(p)
  lib.eq(lib.down(m2, 5000).reason, "noproc")
  -- killed from Erlang
  local q = D.eval("spawn(fun() -> receive _ -> ok end end).")
  local m3 = process.monitor(q)
  D.eval("exit(list_to_pid(\"" .. tostring(q):gsub("^<[^.]*", "<0") .. "\"), kill), ok.")
  lib.eq(lib.down(m3, 5000).reason, "killed")
  -- an exit reason that is a term
  local r = D.eval("spawn(fun() -> receive go -> exit({shutdown, 42}) end end).")
  local m4 = process.monitor(r)
  dist.send(r, A.go)
  local reason = lib.down(m4, 5000).reason
  lib.ok(dist.is_tuple(reason) and reason[1] == A.shutdown and reason[2] == 42,
         D.show(reason))
end)

test("dist.subject: a subject for a BEAM pid; process.call through it", function()
  local p = D.eval([[
    spawn(fun Loop() -> receive {call, R, X} -> R ! {X, X}, Loop() end end).]])
  local s = dist.subject(p)
  lib.ok(process.subject_owner(s) == p, "its owner is the BEAM pid")
  lib.eq(dist.subject(p), s, "one proxy per pid")
  local v = process.call(s, function(reply) return tuple(A.call, reply, 21) end, 5000)
  lib.ok(dist.is_tuple(v) and v[1] == 21 and v[2] == 21, D.show(v))
  D.eval("exit(list_to_pid(\"" .. tostring(p):gsub("^<[^.]*", "<0") .. "\"), kill), ok.")
  local _, err = process.try_call(s, function(reply) return tuple(A.call, reply, 1) end, 5000)
  lib.eq(err.kind, "callee_down")
end)

test("disconnect: node events, and monitors on BEAM pids see noconnection", function()
  local events = process.new_subject()
  dist.monitor_nodes(events)
  local p = D.eval("spawn(fun() -> receive _ -> ok end end).")
  local m = process.monitor(p)
  lib.eq(dist.disconnect(D.peer), true)
  local d = lib.down(m, 5000)
  lib.eq(d.reason, "noconnection")
  local ev = D.await(events)
  lib.eq(ev.node, D.peer); lib.eq(ev.event, "down")
  lib.same(dist.nodes(), {})
  lib.eq(dist.connect(D.peer, 5000), true)
  ev = D.await(events)
  lib.eq(ev.event, "up"); lib.eq(ev.node, D.peer)
  -- the peer dials us (our accept side): it waits for the nodedown,
  -- then sends to our subject, which makes its node connect to ours
  local reply = D.eval_async([[
    monitor_node(Arbor, true), ReplyTo ! ready,
    receive {nodedown, _} -> ok end,
    ReplyTo ! dialled_back, done.]])
  lib.eq(D.await(reply), A.ready)
  dist.disconnect(D.peer)
  lib.eq(D.await(events).event, "down")
  lib.eq(D.await(reply), A.dialled_back, "the peer connected to us")
  ev = D.await(events)
  lib.eq(ev.event, "up"); lib.eq(ev.node, D.peer)
  lib.eq(D.await(reply)[2], A.done)
  lib.same(dist.nodes(), { D.peer })
  dist.monitor_nodes(events, false)
end)

test("dist.stop: monitors on BEAM pids end with noconnection", function()
  local p = D.eval("spawn(fun() -> receive _ -> ok end end).")
  local m = process.monitor(p)
  dist.stop()
  lib.eq(lib.down(m, 5000).reason, "noconnection")
  lib.eq(dist.node(), nil)
  lib.same(dist.nodes(), {})
end)
