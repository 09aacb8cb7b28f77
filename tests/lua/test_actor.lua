-- test_actor: actor.start and actor.start_spec (gleam_otp's actor): the
-- loop, stop reasons, the link to the caller, init in the new process,
-- init failures and timeouts, and a loop that returns garbage.
local lib = require "testlib"
local process = require "process"
local actor = require "actor"
local core = require "arbor.core"

lib.quiet()

local send, receive, self = process.send, process.receive, process.self
local trapped_exit = lib.trapped_exit

-- A counter: {"add", n} adds, {"get", reply} replies with the count,
-- {"stop", reason} stops, {"garbage", v} makes the loop return v.
local function counter(msg, n)
  if msg[1] == "add" then return actor.continue(n + msg[2]) end
  if msg[1] == "get" then
    send(msg[2], n)
    return actor.continue(n)
  end
  if msg[1] == "stop" then return actor.stop(msg[2]) end
  if msg[1] == "garbage" then return msg[2] end
  return actor.continue(n)
end

local function get(a)
  return process.call(a, function(reply) return { "get", reply } end, 1000)
end

lib.test("actor.start: a loop over messages with state", function()
  local a = assert(actor.start(0, counter))
  lib.ok(core.is_subject(a), "a subject")
  local pid = process.subject_owner(a)
  lib.ok(pid ~= self(), "its own process")
  send(a, { "add", 2 })
  send(a, { "add", 40 })
  lib.eq(get(a), 42, "state carried from message to message")
  local m = process.monitor(pid)
  send(a, { "stop" })
  local d = process.select(process.new_selector():selecting_process_down(m),
                           2000)
  lib.eq(d.reason, "normal", "actor.stop() ends it normally")
  lib.no_leftovers()
end)

lib.test("actor.stop(reason) ends the actor with that reason", function()
  for _, reason in ipairs { "shutdown", "custom", { why = "table" } } do
    process.trap_exits(true)
    local a = assert(actor.start(0, counter))
    local pid = process.subject_owner(a)
    local m = process.monitor(pid)
    send(a, { "stop", reason })
    local d = process.select(process.new_selector():selecting_process_down(m),
                             2000)
    lib.copy_of(d.reason, reason, "DOWN reason")
    -- It was linked to us: we, trapping, get its exit.
    local e = trapped_exit()
    process.trap_exits(false)
    lib.ok(e and e.pid == pid, "the exit of the linked actor")
    lib.copy_of(e.reason, reason, "exit reason")
  end
  lib.no_leftovers()
end)

lib.test("actor.start links the actor to the caller", function()
  local report = process.new_subject()
  -- A caller that does not trap dies with its actor.
  local caller = process.spawn(function()
    send(report, assert(actor.start(0, counter)))
    process.sleep_forever()
  end)
  local a = receive(report, 1000)
  local cm = process.monitor(caller)
  send(a, { "stop", "boom" })
  local d = process.select(process.new_selector():selecting_process_down(cm),
                           2000)
  lib.eq(d.reason, "boom", "the caller went down with the actor")
  -- And the actor dies with its caller.
  process.spawn(function()
    local go = process.new_subject()
    send(report, { assert(actor.start(0, counter)), go })
    receive(go)
    error("caller crashed", 0)
  end)
  local r = receive(report, 1000)
  a = r[1]
  local go = r[2]
  local am = process.monitor(process.subject_owner(a))
  send(go, true)
  d = process.select(process.new_selector():selecting_process_down(am), 2000)
  lib.eq(d.reason, "caller crashed", "the actor went down with the caller")
  lib.no_leftovers()
end)

lib.test("actor.start_spec: init runs in the new process", function()
  local report = process.new_subject()
  local a = assert(actor.start_spec {
    init = function()
      send(report, self())
      return 10
    end,
    loop = counter,
  })
  local init_pid = receive(report, 0)
  lib.ok(init_pid ~= nil, "init ran before start_spec returned")
  lib.ok(init_pid ~= self(), "not in the caller")
  lib.ok(init_pid == process.subject_owner(a), "in the actor's process")
  lib.eq(get(a), 10, "init's state")
  send(a, { "stop" })
  lib.await_down(process.subject_owner(a), 2000)
  lib.no_leftovers()
end)

lib.test("actor.start_spec: init raising gives nil, init_failed", function()
  local a, err = actor.start_spec {
    init = function() error("init exploded", 0) end,
    loop = counter,
  }
  lib.eq(a, nil, "no actor")
  lib.eq(err.kind, "init_failed", "kind")
  lib.ok(tostring(err):find("init exploded", 1, true), "the reason: "
         .. tostring(err))
  lib.eq(err.reason, "init exploded", "err.reason")
  -- A table raised.
  local boom = { code = 3 }
  a, err = actor.start_spec { init = function() error(boom) end, loop = counter }
  lib.eq(a, nil, "no actor")
  lib.eq(err.kind, "init_failed", "kind")
  lib.copy_of(err.reason, boom, "a copy of the raised value")
  lib.no_leftovers("the caller survived")
end)

lib.test("actor.start_spec: init returning nil, err gives init_failed",
         function()
  local a, err = actor.start_spec {
    init = function() return nil, "not today" end,
    loop = counter,
  }
  lib.eq(a, nil, "no actor")
  lib.eq(err.kind, "init_failed", "kind")
  lib.ok(tostring(err):find("not today", 1, true), "the reason: "
         .. tostring(err))
  lib.no_leftovers()
end)

lib.test("actor.start_spec: init ending its process gives init_failed",
         function()
  local a, err = actor.start_spec {
    init = function() core.exit_self("went away") end,
    loop = counter,
  }
  lib.eq(a, nil, "no actor")
  lib.eq(err.kind, "init_failed", "kind")
  lib.ok(tostring(err):find("went away", 1, true), "the reason: "
         .. tostring(err))
  lib.no_leftovers()
end)

lib.test("actor.start_spec: init timeout gives nil, init_timeout", function()
  local report = process.new_subject()
  process.trap_exits(true)
  local a, err = actor.start_spec {
    init = function()
      send(report, self())
      process.sleep_forever()
    end,
    loop = counter,
    init_timeout = 50,
  }
  lib.eq(a, nil, "no actor")
  lib.eq(err.kind, "init_timeout", "kind")
  lib.ok(tostring(err):find("50", 1, true), "says how long: " .. tostring(err))
  local pid = receive(report, 0)
  lib.ok(pid ~= nil, "init had started")
  lib.eq(process.is_alive(pid), false, "the actor is gone")
  lib.eq(trapped_exit(0), nil, "and no exit reached the caller")
  process.trap_exits(false)
  lib.no_leftovers()
  -- An init that sleeps past the timeout.
  a, err = actor.start_spec {
    init = function() process.sleep(100) return 1 end,
    loop = counter,
    init_timeout = 10,
  }
  lib.eq(a, nil, "slow init")
  lib.eq(err.kind, "init_timeout", "kind")
  lib.no_leftovers()
end)

lib.test("a loop returning garbage crashes the actor with a clear reason",
         function()
  for _, garbage in ipairs { 42, "continue", { state = 1 } } do
    process.trap_exits(true)
    local a = assert(actor.start(0, counter))
    local pid = process.subject_owner(a)
    send(a, { "garbage", garbage })
    local e = trapped_exit()
    process.trap_exits(false)
    lib.ok(e and e.pid == pid, "the actor's exit")
    lib.ok(type(e.reason) == "string"
           and e.reason:find("actor.continue", 1, true)
           and e.reason:find("actor.stop", 1, true),
           "the reason says what a loop must return: " .. tostring(e.reason))
  end
  -- nil too (a loop that forgot to return).
  process.trap_exits(true)
  local a = assert(actor.start(0, function() end))
  send(a, "anything")
  local e = trapped_exit()
  process.trap_exits(false)
  lib.ok(e and tostring(e.reason):find("nil", 1, true), "names nil: "
         .. tostring(e and e.reason))
  lib.no_leftovers()
end)

lib.test("an actor as a supervised child", function()
  local supervisor = require "supervisor"
  local function start(n) return actor.start(n, counter) end
  local sup = assert(supervisor.start_spec {
    argument = 5, strategy = "one_for_one", max_frequency = 5,
    init = function(children)
      return children
        :add(supervisor.worker(start):id("p"))
        :add(supervisor.worker(start):id("t"):restart("transient"))
    end,
  })
  local function stop_and_wait(subject, reason)
    local m = process.monitor(process.subject_owner(subject))
    send(subject, { "stop", reason })
    return process.select(process.new_selector():selecting_process_down(m),
                          2000).reason
  end
  -- terminate_child + restart_child hand us the actors' subjects.
  local m = process.monitor(supervisor.which_children(sup)[1].pid)
  lib.eq(supervisor.terminate_child(sup, "p"), true, "terminate_child")
  lib.eq(process.select(process.new_selector():selecting_process_down(m),
                        2000).reason, "shutdown", "the actor got shutdown")
  local p = assert(supervisor.restart_child(sup, "p"))
  lib.eq(get(p), 5, "started from the tree's argument")
  supervisor.terminate_child(sup, "t")
  local t = assert(supervisor.restart_child(sup, "t"))
  -- actor.stop(reason) is an abnormal exit: restarted.
  lib.eq(stop_and_wait(p, "boom"), "boom", "p's reason")
  local list = supervisor.which_children(sup)
  lib.eq(list[1].status, "running", "p restarted")
  lib.eq(list[1].restarts, 1, "once")
  -- actor.stop() is normal: a transient actor stays stopped.
  lib.eq(stop_and_wait(t), "normal", "t's reason")
  lib.eq(supervisor.which_children(sup)[2].status, "stopped", "t stopped")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("actor arguments are checked", function()
  lib.raises(function() actor.start(0, 42) end, "loop", "start without loop")
  lib.raises(function() actor.start_spec(42) end, "table", "start_spec(42)")
  lib.raises(function() actor.start_spec { loop = counter } end, "init",
             "no init")
  lib.raises(function() actor.start_spec { init = print } end, "loop",
             "no loop")
  lib.raises(function()
    actor.start_spec { init = print, loop = counter, init_timeout = -1 }
  end, "init_timeout", "negative timeout")
  lib.no_leftovers()
end)
