-- test_preempt: busy Lua code is preempted, so it cannot stall the host.
local lib = require "testlib"
local process = require "process"

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
  local progress = process.new_subject()
  local busy = {}
  for id = 1, 3 do
    busy[id] = { start_busy(function()
      local n = 0
      while true do
        n = n + 1
        if n % 20000 == 0 then send(progress, id) end
      end
    end) }
  end
  local counts = { 0, 0, 0 }
  while math.min(counts[1], counts[2], counts[3]) < 5 do
    local id = receive(progress, 5000)
    lib.ok(id ~= nil, "progress reported")
    counts[id] = counts[id] + 1
  end
  kill_all(busy)
  local lo = math.min(counts[1], counts[2], counts[3])
  local hi = math.max(counts[1], counts[2], counts[3])
  lib.ok(hi - lo <= 3, string.format("fair share: %d, %d, %d", counts[1],
                                     counts[2], counts[3]))
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
  -- a 2 ms timer must fire before the busy process reports 20 times.
  local progress = process.new_subject()
  local p, m = start_busy(function()
    local n = 0
    while true do
      n = n + 1
      if n % 200000 == 0 then send(progress, "work") end
    end
  end)
  local s = process.new_subject()
  process.send_after(s, 2, "tick")
  local sel = new_selector():selecting(s):selecting(progress)
  local before = 0
  while true do
    local msg = select(sel, 5000)
    lib.ok(msg ~= nil, "something arrived")
    if msg == "tick" then break end
    before = before + 1
  end
  kill_all { { p, m } }
  lib.ok(before < 20, "the timer fired after " .. before ..
         " progress reports (200000 iterations each)")
  lib.no_leftovers()
end)
