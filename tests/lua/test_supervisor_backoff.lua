-- test_supervisor_backoff: spec:backoff end to end.  The schedule itself
-- (doubling, the cap, reset_after, intensity, groups) is covered with an
-- injected clock in tests/c/core/test_sup.c; here a real supervisor waits
-- on the host's clock.  Every check is synchronised on messages (a child
-- reports its start) or reads the engine's own numbers (which_children's
-- backoff and restart_in); elapsed times are only checked from below,
-- which no machine load can break.
local lib = require "testlib"
local suplib = require "suplib"
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"
local diff = require "arbor.diff"

lib.quiet()

local worker, take, crash, column = suplib.worker, suplib.take, suplib.crash,
  suplib.column

local function child(sup, id)
  for _, c in ipairs(supervisor.which_children(sup)) do
    if c.id == id then return c end
  end
end

lib.test("the delay doubles up to max, and a stable run resets it", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    strategy = "one_for_one", max_frequency = 100, frequency_period = 60,
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("a")
               :backoff { initial = 40, max = 160, reset_after = 300 })
        :add(supervisor.worker(worker(ev, "b")):id("b"))
    end,
  })
  local st = {}
  take(ev, 2, st)
  local b_pid = st.b.pid
  for i, delay in ipairs { 40, 80, 160, 160 } do
    local t0 = core.now()
    crash(st.a, "boom " .. i)
    lib.same(take(ev, 1, st), { "start a" }, "restart " .. i)
    local waited = core.now() - t0
    lib.ok(waited >= delay, string.format("restart %d waited %d ms, at least %d",
                                          i, waited, delay))
    local a = child(sup, "a")
    lib.eq(a.backoff, delay, "the delay of restart " .. i)
    lib.eq(a.restarts, i, "restarts")
    lib.eq(a.status, "running", "running again")
    lib.eq(a.restart_in, nil, "no restart pending")
  end
  -- A run of at least reset_after (300 ms) starts from initial again.
  process.sleep(310)
  crash(st.a, "after a stable run")
  lib.same(take(ev, 1, st), { "start a" }, "restart after a stable run")
  lib.eq(child(sup, "a").backoff, 40, "back to initial")
  -- The sibling was never touched (one_for_one).
  lib.eq(child(sup, "b").pid, b_pid, "b kept its process")
  lib.eq(child(sup, "b").backoff, nil, "b has no backoff")
  suplib.no_events(ev)
  supervisor.stop(sup)
  take(ev, 2)
  lib.no_leftovers()
end)

lib.test("siblings the strategy restarts wait with it, in order", function()
  -- Reports on: the wait's report path runs (and must not raise).
  core.quiet(false)
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    strategy = "rest_for_one", max_frequency = 10, name = "backoff_rfo",
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("a"))
        :add(supervisor.worker(worker(ev, "b")):id("b")
               :backoff { initial = 50, max = 50 })
        :add(supervisor.worker(worker(ev, "c")):id("c"))
    end,
  })
  local st = {}
  take(ev, 3, st)
  local a_pid = st.a.pid
  local t0 = core.now()
  crash(st.b, "boom")
  lib.same(take(ev, 3, st), { "stop c", "start b", "start c" },
           "c is shut down at once and starts after b")
  lib.ok(core.now() - t0 >= 50, "both waited the delay")
  lib.same(column(sup, "status"), { "running", "running", "running" },
           "all running")
  lib.same(column(sup, "restarts"), { 0, 1, 1 }, "b and c restarted once")
  lib.eq(child(sup, "a").pid, a_pid, "a untouched")
  lib.quiet()
  supervisor.stop(sup)
  take(ev, 3)
  lib.no_leftovers()
end)

lib.test("management requests are served during the wait", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    strategy = "rest_for_one", max_frequency = 10,
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("a"))
        :add(supervisor.worker(worker(ev, "b")):id("b")
               :backoff { initial = 600000, max = 600000 })
        :add(supervisor.worker(worker(ev, "c")):id("c"))
    end,
  })
  local st = {}
  take(ev, 3, st)
  crash(st.b, "boom")
  lib.same(take(ev, 1), { "stop c" }, "c shut down to wait with b")
  -- The supervisor handled the exit before the shutdown above, so the
  -- wait is already in place.
  local list = supervisor.which_children(sup)
  lib.same(column(sup, "status"), { "running", "restarting", "restarting" },
           "b and c restarting")
  lib.eq(list[2].backoff, 600000, "b's delay")
  lib.ok(list[2].restart_in > 0 and list[2].restart_in <= 600000,
         "b restarts within its delay")
  lib.eq(list[2].pid, nil, "no process while waiting")
  lib.eq(list[2].last_reason, "boom", "b's last reason")
  lib.eq(supervisor.count_children(sup).active, 1, "count_children")
  local ok, err = supervisor.restart_child(sup, "b")
  lib.eq(ok, nil, "restart_child while waiting")
  lib.eq(err.kind, "restarting", "its error")
  -- terminate_child ends b's wait; restart_child then starts it at once.
  lib.eq(supervisor.terminate_child(sup, "b"), true, "terminate_child")
  lib.eq(child(sup, "b").status, "stopped", "b stopped")
  lib.eq(child(sup, "b").restart_in, nil, "no restart pending for b")
  lib.ok(supervisor.restart_child(sup, "b") ~= nil, "restart_child")
  lib.same(take(ev, 1), { "start b" }, "b started")
  lib.eq(child(sup, "c").status, "restarting", "c still waits")
  -- Stop: the waiting child ends stopped.
  supervisor.stop(sup)
  lib.same(take(ev, 2), { "stop b", "stop a" }, "stop")
  lib.no_leftovers()
end)

lib.test("spec:backoff checks its argument", function()
  local w = supervisor.worker(function() end)
  lib.raises(function() w:backoff(5) end, "table {initial = ms", "not a table")
  lib.raises(function() w:backoff { initial = 0, max = 10 } end,
             "bad field 'initial' to 'backoff'", "initial 0")
  lib.raises(function() w:backoff { initial = 1.5, max = 10 } end,
             "bad field 'initial'", "fraction")
  lib.raises(function() w:backoff { initial = 20, max = 10 } end,
             "bad field 'max' to 'backoff' (must be an integer of ms from "
             .. "initial (20)", "max below initial")
  lib.raises(function() w:backoff { initial = 1, max = math.huge } end,
             "bad field 'max'", "infinite max")
  lib.raises(function() w:backoff { initial = 1, max = 2, reset_after = -1 } end,
             "bad field 'reset_after'", "negative reset_after")
  lib.raises(function() w:backoff { initial = 1, max = 2, maximum = 3 } end,
             "bad field 'maximum' to 'backoff' (unknown field", "unknown field")
  local b = w:backoff { initial = 10, max = 100 }.backoff_spec
  lib.same(b, { initial = 10, max = 100, reset_after = 100 },
           "reset_after defaults to max")
  lib.eq(w.backoff_spec, nil, "specs are values: the original is unchanged")
end)

lib.test("live editing: a changed backoff is a changed child", function()
  local function tree(backoff)
    local src = string.format([[
local supervisor = require "supervisor"
return supervisor.spec {
  init = function(children)
    return children
      :add(supervisor.worker(function() end):id("a")%s)
      :add(supervisor.worker(function() end):id("b"))
  end,
}]], backoff)
    return supervisor.resolve(assert(load(src, "=tree"))())
  end
  local function changed(old, new)
    local out = {}
    for id in pairs(diff.tree(tree(old), tree(new)).changed) do
      out[#out + 1] = id
    end
    return out
  end
  local B1 = ":backoff { initial = 10, max = 100 }"
  lib.same(changed(B1, B1), {}, "the same backoff: unchanged")
  lib.same(changed("", B1), { "a" }, "backoff added")
  lib.same(changed(B1, ""), { "a" }, "backoff removed")
  lib.same(changed(B1, ":backoff { initial = 10, max = 200 }"), { "a" },
           "max changed")
  lib.same(changed(B1, ":backoff { initial = 10, max = 100, reset_after = 5 }"),
           { "a" }, "reset_after changed")
end)
