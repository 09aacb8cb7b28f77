-- test_supervisor_shutdown: how a supervisor stops its children (shutdown
-- timeouts, brutal_kill, infinity), supervisor.stop, the parent's exit,
-- "shutdown" from others, never an old child beside its replacement, and
-- children that unlinked themselves.
local lib = require "testlib"
local suplib = require "suplib"
local process = require "process"
local supervisor = require "supervisor"

lib.quiet()

local send, receive = process.send, process.receive
local worker, take, no_events = suplib.worker, suplib.take, suplib.no_events
local trapped_exit = lib.trapped_exit

-- {=== Helpers
local function down_of(m, timeout_ms)
  return process.select(process.new_selector():selecting_process_down(m),
                        timeout_ms or 2000)
end

-- Runs fn(...) in a new process; returns a function that waits for (and
-- returns) its results, or returns nothing if they do not come in time.
local function async(fn, ...)
  local reply = process.new_subject()
  local args = table.pack(...)
  process.spawn(function()
    send(reply, table.pack(fn(table.unpack(args, 1, args.n))))
  end)
  return function(timeout_ms)
    local r = receive(reply, timeout_ms or 2000)
    if r == nil then return end
    return true, table.unpack(r, 1, r.n)
  end
end
-- }===

lib.test("a child that ignores shutdown is killed after its shutdown time",
         function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")))
        :add(supervisor.worker(worker(ev, "s", { stubborn = true }))
               :id("s"):shutdown(50))
        :add(supervisor.worker(worker(ev, "b")))
    end,
  })
  local st = {}
  take(ev, 3, st)
  -- terminate_child waits for the kill.
  local m = process.monitor(st.s.pid)
  lib.eq(supervisor.terminate_child(sup, "s"), true, "terminate_child")
  lib.same(take(ev, 1), { "ignore s" }, "it got shutdown and ignored it")
  local d = down_of(m, 0)
  lib.ok(d ~= nil, "dead when terminate_child returned")
  lib.eq(d.reason, "killed", "killed")
  lib.eq(supervisor.which_children(sup)[2].last_reason, "killed",
         "last_reason")
  -- The same in an orderly stop, in reverse order.
  supervisor.restart_child(sup, "s")
  take(ev, 1, st)
  m = process.monitor(st.s.pid)
  supervisor.stop(sup)
  lib.same(take(ev, 3), { "stop b", "ignore s", "stop a" }, "stop order")
  lib.eq(down_of(m, 0).reason, "killed", "killed during stop")
  lib.no_leftovers()
end)

lib.test("shutdown 0 kills a stubborn child at once after asking", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children:add(supervisor.worker(worker(ev, "s", { stubborn = true }))
                            :shutdown(0))
    end,
  })
  local st = {}
  take(ev, 1, st)
  local m = process.monitor(st.s.pid)
  supervisor.stop(sup)
  lib.eq(down_of(m, 0).reason, "killed", "killed")
  lib.no_leftovers()
end)

-- A wait of math.maxinteger ms is clamped to "practically forever", never
-- added to the clock with a wrap (the sanitizer build traps an overflow):
-- a child's shutdown time, and the receive, select, call and sleep that
-- supervisor functions build on.
lib.test("timeouts of math.maxinteger are clamped, not overflowed", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):shutdown(math.maxinteger))
    end,
  })
  take(ev, 1)
  supervisor.stop(sup)
  lib.same(take(ev, 1), { "stop a" }, "asked, and it stopped in time")
  local inbox = process.new_subject()
  local function later(msg)
    process.spawn(function() send(inbox, msg) end)
  end
  later("r")
  lib.eq(receive(inbox, math.maxinteger), "r", "receive")
  later("s")
  lib.eq(process.select(process.new_selector():selecting(inbox),
                        math.maxinteger), "s", "select")
  local echo = process.spawn(function()
    local own = process.new_subject()
    send(inbox, own)
    local req = receive(own)
    send(req.reply, "pong")
  end)
  local own = receive(inbox, 1000)
  lib.eq(process.call(own, function(reply) return { reply = reply } end,
                      math.maxinteger), "pong", "call")
  lib.await_down(echo)
  local sleeper = process.spawn(process.sleep, math.maxinteger)
  local m = process.monitor(sleeper)
  process.kill(sleeper)
  lib.eq(down_of(m).reason, "killed", "a sleeper of math.maxinteger ms")
  lib.no_leftovers()
end)

lib.test("brutal_kill kills without asking", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")))
        :add(supervisor.worker(worker(ev, "k")):id("k")
               :shutdown("brutal_kill"))
    end,
  })
  local st = {}
  take(ev, 2, st)
  local m = process.monitor(st.k.pid)
  lib.eq(supervisor.terminate_child(sup, "k"), true, "terminate_child")
  lib.eq(down_of(m, 0).reason, "killed", "killed")
  no_events(ev, "the trapping child never saw a shutdown")
  supervisor.restart_child(sup, "k")
  take(ev, 1, st)
  m = process.monitor(st.k.pid)
  supervisor.stop(sup)
  lib.same(take(ev, 1), { "stop a" }, "only a got a shutdown")
  lib.eq(down_of(m, 0).reason, "killed", "k killed")
  lib.no_leftovers()
end)

lib.test("infinity waits for the child however long it takes", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "l", { linger = true })):id("l")
               :shutdown("infinity"))
    end,
  })
  local st = {}
  take(ev, 1, st)
  local m = process.monitor(st.l.pid)
  local wait = async(supervisor.terminate_child, sup, "l")
  lib.same(take(ev, 1), { "linger l" }, "asked to shut down")
  -- Longer than any default; the supervisor is still waiting.
  lib.eq(wait(150), nil, "terminate_child has not returned")
  lib.eq(process.is_alive(st.l.pid), true, "not killed")
  send(st.l.subject, { "go" })
  local done, result = wait()
  lib.ok(done, "terminate_child returned")
  lib.eq(result, true, "its result")
  lib.eq(down_of(m).reason, "shutdown", "the child's own exit")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("a nested tree (default infinity) is waited for", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children:add(supervisor.supervisor(supervisor.spec {
        init = function(c)
          -- 400 ms: longer than the test waits.
          return c:add(supervisor.worker(worker(ev, "l", { linger = true }))
                         :shutdown(400))
        end,
      }):id("inner"))
    end,
  })
  local st = {}
  take(ev, 1, st)
  local inner = supervisor.which_children(sup)[1].pid
  local m = process.monitor(inner)
  local wait = async(supervisor.stop, sup)
  lib.same(take(ev, 1), { "linger l" }, "asked to shut down")
  lib.eq(wait(100), nil, "still waiting for the inner tree")
  send(st.l.subject, { "go" })
  lib.ok(wait(), "stop returned")
  lib.eq(down_of(m, 0).reason, "shutdown", "the inner tree ended in order")
  lib.no_leftovers()
end)

lib.test("stop: reverse order, waits until gone, exits normal", function()
  local ev = process.new_subject()
  process.trap_exits(true)
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")))
        :add(supervisor.worker(worker(ev, "b")))
        :add(supervisor.worker(worker(ev, "s", { stubborn = true }))
               :shutdown(30))
        :add(supervisor.worker(worker(ev, "c")))
    end,
  })
  local st = {}
  take(ev, 4, st)
  local pid = process.subject_owner(sup)
  local m = process.monitor(pid)
  supervisor.stop(sup)
  local d = down_of(m, 0)
  lib.ok(d ~= nil, "gone when stop returns")
  lib.eq(d.reason, "normal", "exit reason")
  for _, name in ipairs { "a", "b", "s", "c" } do
    lib.eq(process.is_alive(st[name].pid), false, name .. " is dead")
  end
  lib.same(take(ev, 4), { "stop c", "ignore s", "stop b", "stop a" },
           "reverse start order")
  lib.eq(trapped_exit(0), nil, "the linked caller got no exit")
  process.trap_exits(false)
  lib.no_leftovers()
end)

lib.test("stop from a process that is not the parent", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")))
        :add(supervisor.worker(worker(ev, "b")))
    end,
  })
  take(ev, 2)
  local wait = async(supervisor.stop, sup)
  lib.ok(wait(), "stop returned")
  lib.same(take(ev, 2), { "stop b", "stop a" }, "order")
  lib.eq(process.is_alive(process.subject_owner(sup)), false, "gone")
  lib.no_leftovers()
end)

lib.test("the parent's exit stops the tree in order", function()
  -- The parent raises, is killed, or returns (OTP: any parent exit).
  for _, case in ipairs { { "crash", "boom" }, { "kill", "killed" },
                          { "return", "normal" } } do
    local how, expected = case[1], case[2]
    local ev, hand = process.new_subject(), process.new_subject()
    local parent = process.spawn(function()
      local sup = assert(supervisor.start_spec {
        init = function(children)
          return children
            :add(supervisor.worker(worker(ev, "a")))
            :add(supervisor.worker(worker(ev, "b")))
            :add(supervisor.worker(worker(ev, "c")))
        end,
      })
      local cmd = process.new_subject()
      send(hand, { sup, cmd })
      if receive(cmd) == "crash" then error("boom", 0) end
    end)
    local r = assert(receive(hand, 1000))
    take(ev, 3)
    local m = process.monitor(process.subject_owner(r[1]))
    if how == "kill" then process.kill(parent) else send(r[2], how) end
    lib.same(take(ev, 3), { "stop c", "stop b", "stop a" }, how .. ": order")
    lib.eq(down_of(m).reason, expected, how .. ": the supervisor follows")
    lib.no_leftovers(how)
  end
end)

lib.test("a shutdown signal from anyone stops the tree in order", function()
  local ev = process.new_subject()
  process.trap_exits(true)
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")))
        :add(supervisor.worker(worker(ev, "b")))
    end,
  })
  take(ev, 2)
  local pid = process.subject_owner(sup)
  -- Other reasons from a non-child, non-parent are ignored.
  local stranger = process.spawn(function() process.exit(pid, "boom") end)
  local sm = process.monitor(stranger)
  down_of(sm)
  lib.eq(#supervisor.which_children(sup), 2, "a boom from a stranger: "
         .. "ignored")
  no_events(ev)
  process.spawn(function() process.exit(pid, "shutdown") end)
  lib.same(take(ev, 2), { "stop b", "stop a" }, "order")
  local e = trapped_exit()
  process.trap_exits(false)
  lib.ok(e and e.pid == pid, "the linked caller saw the exit")
  lib.eq(e.reason, "shutdown", "reason")
  lib.no_leftovers()
end)

lib.test("never an old child beside its replacement", function()
  -- Which children a crash of each one replaces, per strategy.
  local sets = {
    { "rest_for_one", { a = { "a", "b", "c" }, b = { "b", "c" }, c = { "c" } } },
    { "one_for_one", { a = { "a" }, b = { "b" }, c = { "c" } } },
    { "one_for_all", { a = { "a", "b", "c" }, b = { "a", "b", "c" },
                       c = { "a", "b", "c" } } },
  }
  for _, set in ipairs(sets) do
    local strategy, replaced = set[1], set[2]
    local ev = process.new_subject()
    local doomed, overlaps = {}, {}
    local function checked(name)
      local start = worker(ev, name, { stubborn = true })
      return function(arg)
        for _, pid in ipairs(doomed) do
          if process.is_alive(pid) then
            overlaps[#overlaps + 1] = name .. " started beside "
                                      .. tostring(pid)
          end
        end
        return start(arg)
      end
    end
    local sup = assert(supervisor.start_spec {
      strategy = strategy, max_frequency = 10,
      init = function(children)
        -- Stubborn children take their whole shutdown time to die.
        return children
          :add(supervisor.worker(checked("a")):shutdown(20))
          :add(supervisor.worker(checked("b")):shutdown(20))
          :add(supervisor.worker(checked("c")):shutdown(20))
      end,
    })
    local st = {}
    take(ev, 3, st)
    for _, victim in ipairs { "b", "a", "c" } do
      local what = strategy .. ", " .. victim .. " crashed"
      doomed = {}
      for _, name in ipairs(replaced[victim]) do
        doomed[#doomed + 1] = st[name].pid
      end
      local m = process.monitor(st[victim].pid)
      send(st[victim].subject, { "exit", "boom" })
      down_of(m)
      -- Served after the restart: every start event is queued by now.
      supervisor.which_children(sup)
      while true do
        local e = receive(ev, 0)
        if e == nil then break end
        if e[1] == "start" then
          st[e[2]] = { pid = e[3], subject = e[5] }
        end
      end
      for _, pid in ipairs(doomed) do
        lib.eq(process.is_alive(pid), false, what .. ": old process dead")
      end
      for _, name in ipairs { "a", "b", "c" } do
        lib.eq(process.is_alive(st[name].pid), true, what .. ": " .. name
               .. " runs")
      end
    end
    lib.same(overlaps, {}, strategy .. ": overlaps")
    supervisor.stop(sup)
    lib.no_leftovers(strategy)
  end
end)

lib.test("a child that unlinked itself cannot hang shutdown", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")))
        :add(supervisor.worker(worker(ev, "u")):id("u"))
        :add(supervisor.worker(worker(ev, "s", { stubborn = true })):id("s")
               :shutdown(30))
    end,
  })
  local st = {}
  take(ev, 3, st)
  local sup_pid = process.subject_owner(sup)
  send(st.u.subject, { "unlink", sup_pid })
  send(st.s.subject, { "unlink", sup_pid })
  take(ev, 2)
  local mu, ms = process.monitor(st.u.pid), process.monitor(st.s.pid)
  lib.eq(supervisor.terminate_child(sup, "u"), true, "terminate_child")
  lib.eq(down_of(mu, 0).reason, "shutdown", "u got shutdown")
  lib.eq(supervisor.terminate_child(sup, "s"), true, "terminate_child")
  lib.eq(down_of(ms, 0).reason, "killed", "s was killed")
  lib.same(take(ev, 2), { "stop u", "ignore s" }, "events")
  -- An unlinked child that already ended does not hang it either.
  supervisor.restart_child(sup, "u")
  take(ev, 1, st)
  send(st.u.subject, { "unlink", sup_pid })
  take(ev, 1)
  mu = process.monitor(st.u.pid)
  send(st.u.subject, { "exit", "boom" })
  down_of(mu)
  lib.eq(supervisor.terminate_child(sup, "u"), true, "terminate a dead one")
  supervisor.stop(sup)
  lib.same(take(ev, 1), { "stop a" }, "stop")
  lib.no_leftovers()
end)
