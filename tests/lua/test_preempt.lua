-- test_preempt: busy Lua code is preempted, so it cannot stall the host.
local lib = require "testlib"
local process = require "process"
local core = require "arbor.core"

local spawn = process.spawn
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select

local function down(m, timeout)
  return lib.down(m, timeout or 5000)
end

-- Starts fn in a process that first reports "running" (so it is known to
-- be in its loop once main hears it).  Returns pid, monitor.
local function start_busy(fn)
  local hand = process.new_subject()
  local p = spawn(function()
    send(hand, "running")
    fn()
  end)
  local m = process.monitor(p)
  lib.eq(receive(hand, 5000), "running", "busy process started")
  return p, m
end

local function kill_all(list)
  for _, b in ipairs(list) do process.kill(b[1]) end
  for _, b in ipairs(list) do lib.eq(down(b[2]).reason, "killed", "killed") end
end

-- Sets a 2 ms timer and counts the busy process's progress reports that
-- arrive before it fires: latency measured in the busy process's own
-- work, not in wall time.
local function reports_before_timer(progress)
  local s = process.new_subject()
  process.send_after(s, 2, "tick")
  local sel = new_selector():selecting(s):selecting(progress)
  local before = 0
  while true do
    local msg = select(sel, 10000)
    lib.ok(msg ~= nil, "something arrived")
    if msg == "tick" then return before end
    before = before + 1
  end
end

lib.test("a busy process does not stall timers", function()
  local p, m = start_busy(function() while true do end end)
  local s = process.new_subject()
  process.send_after(s, 5, "tick")
  lib.eq(receive(s, 5000), "tick", "timer fired")
  process.sleep(5)
  lib.eq(process.is_alive(p), true, "still busy")
  kill_all { { p, m } }
  lib.no_leftovers()
end)

lib.test("a busy loop inside pcall is preempted too", function()
  local report = process.new_subject()
  local p, m = start_busy(function()
    local ok = pcall(function() while true do end end)
    send(report, { "pcall returned", ok })
  end)
  local s = process.new_subject()
  process.send_after(s, 5, "tick")
  lib.eq(receive(s, 5000), "tick", "timer fired")
  kill_all { { p, m } }
  lib.same({ receive(report, 0) }, { nil, "timeout" },
           "pcall did not return")
  lib.no_leftovers()
end)

lib.test("a busy process does not stall other processes", function()
  local busy = {}
  for i = 1, 2 do busy[i] = { start_busy(function() while true do end end) } end
  -- 100 round trips with an echo process.
  local hand = process.new_subject()
  local echo = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    while true do
      local msg = receive(own)
      if msg == "stop" then return end
      send(hand, msg)
    end
  end)
  local me = process.monitor(echo)
  local own = receive(hand, 5000)
  for i = 1, 100 do
    send(own, i)
    lib.eq(receive(hand, 5000), i, "round trip " .. i)
  end
  send(own, "stop")
  lib.eq(down(me).reason, "normal", "echo")
  kill_all(busy)
  lib.no_leftovers()
end)

lib.test("several busy processes share the CPU", function()
  -- Preemption is by time (a tick of LARB_SLICE_US), so a slice's length
  -- in loop iterations varies with the machine's load; what must hold is
  -- that the CPU goes round: every process reports, and the reports come
  -- in turns, not one process's all at once.
  local progress = process.new_subject()
  local busy = {}
  for id = 1, 3 do
    busy[id] = { start_busy(function()
      local n = 0
      while true do
        n = n + 1
        if n % 2000 == 0 then send(progress, id) end
      end
    end) }
  end
  local counts, turns, last = { 0, 0, 0 }, 0, nil
  while counts[1] + counts[2] + counts[3] < 1000 do
    local id = receive(progress, 5000)
    lib.ok(id ~= nil, "progress reported")
    counts[id] = counts[id] + 1
    if id ~= last then turns, last = turns + 1, id end
  end
  kill_all(busy)
  local lo = math.min(counts[1], counts[2], counts[3])
  local hi = math.max(counts[1], counts[2], counts[3])
  local shares = string.format("%d, %d, %d in %d turns", counts[1],
                               counts[2], counts[3], turns)
  lib.ok(turns >= 6, "the CPU went round: " .. shares)
  lib.ok(hi <= 5 * lo, "no process got most of it: " .. shares)
  lib.no_leftovers()
end)

lib.test("a loop of slow C calls is preempted by time", function()
  -- Each string.rep of 64 KiB (tens of microseconds) runs in C, where no
  -- hook can fire; the loop runs about six Lua instructions per call, so
  -- a budget counted in instructions (20,000 before the tick) let all
  -- 2,000 calls run in one slice.  Preempted by time, the busy process
  -- lets an echo answer long before it is done.
  local done = process.new_subject()
  local p = spawn(function()
    send(done, "running")
    for _ = 1, 2000 do local _ = string.rep("0123456789abcdef", 4096) end
    send(done, "finished")
  end)
  local m = process.monitor(p)
  lib.eq(receive(done, 5000), "running", "busy process started")
  local hand = process.new_subject()
  spawn(function() send(hand, "echo") end)
  lib.eq(receive(hand, 60000), "echo", "the echo answered")
  lib.same({ receive(done, 0) }, { nil, "timeout" },
           "the busy process had not finished its calls")
  lib.eq(receive(done, 60000), "finished", "the busy process finished")
  lib.eq(down(m, 60000).reason, "normal", "busy process")
  lib.no_leftovers()
end)

lib.test("a coroutine looping under code that cannot yield meets the " ..
         "runaway limit", function()
  -- The tick preempts the coroutine; the sort comparator that resumed it
  -- cannot pass the yield up, so it resumed the coroutine for ever, and
  -- neither the limit nor a stop could end it.
  local previous = core.set_runaway_limit(200)
  for _, how in ipairs { "sort", "xpcall" } do
    local p, m = start_busy(function()
      local spin = function()
        coroutine.wrap(function() while true do end end)()
      end
      if how == "sort" then
        table.sort({ 3, 2, 1 }, function(a, b) spin(); return a < b end)
      else
        xpcall(error, spin, "boom")
      end
    end)
    local reason = down(m, 20000).reason
    lib.ok(type(reason) == "string" and reason:find("^runaway:"),
           how .. ": ended by the runaway limit: " .. tostring(reason))
    lib.eq(process.is_alive(p), false, how .. ": gone")
  end
  core.set_runaway_limit(previous)
  lib.no_leftovers()
end)

lib.test("a process deep in its stack is preempted as often as others",
         function()
  -- Hooking a thread walks its whole call chain; a thread 100,000 calls
  -- deep is kept on a count hook instead ("deep mode").  Measured in its
  -- own progress, as below: a 2 ms timer fires before it reports 8 times
  -- (0 or 1 here; before deep mode its slices grew with the walk's cost
  -- and it reported 20 to 90 times).
  local progress = process.new_subject()
  local p, m = start_busy(function()
    local function deep(n)
      if n > 0 then return 1 + deep(n - 1) end
      local i = 0
      while true do
        i = i + 1
        if i % 100000 == 0 then send(progress, "work") end
      end
    end
    return deep(100000)
  end)
  for _ = 1, 3 do assert(receive(progress, 10000)) end -- deep by now
  local before = reports_before_timer(progress)
  kill_all { { p, m } }
  lib.ok(before < 8, "the timer fired after " .. before ..
         " progress reports (100000 iterations each)")
  lib.no_leftovers()
end)

lib.test("a busy map function in select is preempted", function()
  local p, m = start_busy(function()
    local s = process.new_subject()
    send(s, "x")
    select(new_selector():selecting(s, function() while true do end end))
  end)
  local s = process.new_subject()
  process.send_after(s, 5, "tick")
  lib.eq(receive(s, 5000), "tick", "timer fired")
  kill_all { { p, m } }
  lib.no_leftovers()
end)

lib.test("a busy loop inside a user coroutine does not stall others",
         function()
  -- A finite loop (so the test ends either way) of 5M iterations inside
  -- coroutine.wrap.  A ticker that needs three round trips with main must
  -- get them all done before the loop finishes.
  local s = process.new_subject()
  local ticker = spawn(function()
    local own = process.new_subject()
    for _ = 1, 3 do
      send(s, { "tick", own })
      receive(own)
    end
  end)
  local mt = process.monitor(ticker)
  local worker = spawn(function()
    local n = 0
    coroutine.wrap(function()
      for _ = 1, 5e6 do n = n + 1 end
    end)()
    send(s, { "done" })
  end)
  local mw = process.monitor(worker)
  local got = {}
  for i = 1, 4 do
    local msg = receive(s, 60000)
    got[i] = msg[1]
    if msg[2] then send(msg[2], "ack") end
  end
  lib.eq(down(mt, 60000).reason, "normal", "ticker")
  lib.eq(down(mw, 60000).reason, "normal", "worker")
  lib.same(got, { "tick", "tick", "tick", "done" },
           "round trips before the coroutine's loop ends")
  lib.no_leftovers()
end)

lib.test("a busy process delays a timer by a few slices at most", function()
  -- Measured in the busy process's own progress (a message every 200000
  -- loop iterations, about 1 ms of work each or more), not in wall time:
  -- a 2 ms timer must fire before the busy process reports 3 times.  The
  -- loop looked at timers every 16 slices only, and with slices of a
  -- tick or two that held the timer back 4-5 reports (0-1 now that a
  -- tick makes the loop look).
  local progress = process.new_subject()
  local p, m = start_busy(function()
    local n = 0
    while true do
      n = n + 1
      if n % 200000 == 0 then send(progress, "work") end
    end
  end)
  local before = reports_before_timer(progress)
  kill_all { { p, m } }
  lib.ok(before < 3, "the timer fired after " .. before ..
         " progress reports (200000 iterations each)")
  lib.no_leftovers()
end)
