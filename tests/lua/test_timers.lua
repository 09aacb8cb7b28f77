-- test_timers: sleep, sleep_forever, send_after and cancel_timer.
local lib = require "testlib"
local process = require "process"

local spawn = process.spawn
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select

local function down(m, timeout)
  local d = select(new_selector():selecting_process_down(m), timeout or 1000)
  lib.ok(d ~= nil, "a DOWN arrived")
  return d
end

local function empty(s, what)
  lib.same({ receive(s, 0) }, { nil, "timeout" }, what or "no message")
end

lib.test("sleep waits at least its time", function()
  local s = process.new_subject()
  process.send_after(s, 30, "timer")
  process.sleep(60)
  lib.eq(receive(s, 0), "timer", "a 30 ms timer fired during sleep(60)")
  lib.no_leftovers()
end)

lib.test("sleep does not wait much longer than its time", function()
  local s = process.new_subject()
  local t = process.send_after(s, 1000, "late")
  process.sleep(10)
  empty(s, "sleep(10) returned before a 1000 ms timer")
  local left = process.cancel_timer(t)
  lib.ok(math.type(left) == "integer" and left > 0, "timer still pending")
  process.sleep(0)
  lib.raises(function() process.sleep(-1) end, "bad argument #1", "sleep(-1)")
  lib.raises(function() process.sleep("x") end, "bad argument #1",
             "sleep(string)")
  lib.no_leftovers()
end)

lib.test("messages do not cut a sleep short", function()
  local s = process.new_subject()
  local hand = process.new_subject()
  local p = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    process.sleep(150)
    send(s, "slept")
  end)
  local own = receive(hand, 1000)
  local m = process.monitor(p)
  for i = 1, 5 do send(own, i) end
  process.send_after(s, 20, "timer")
  lib.eq(receive(s, 1000), "timer", "the 20 ms timer came first")
  lib.eq(receive(s, 1000), "slept", "then the sleeper woke")
  lib.eq(down(m).reason, "normal", "sleeper ended")
  lib.no_leftovers()
end)

lib.test("sleep_forever: killed from outside", function()
  local report = process.new_subject()
  local asleep = process.new_subject()
  local pids = {}
  for i = 1, 2 do
    pids[i] = spawn(function()
      send(asleep, i)
      process.sleep_forever()
      send(report, "woke")
    end)
  end
  local m1, m2 = process.monitor(pids[1]), process.monitor(pids[2])
  receive(asleep, 1000)
  receive(asleep, 1000)
  lib.eq(process.is_alive(pids[1]), true, "still sleeping")
  process.kill(pids[1])
  lib.eq(down(m1).reason, "killed", "kill")
  process.exit(pids[2], "shutdown")
  lib.eq(down(m2).reason, "shutdown", "exit signal")
  empty(report, "a sleeper never woke")
  lib.no_leftovers()
end)

lib.test("sleep_forever is not woken by messages or normal signals",
         function()
  local report = process.new_subject()
  local hand = process.new_subject()
  local p = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    process.sleep_forever()
    send(report, "woke")
  end)
  local own = receive(hand, 1000)
  local m = process.monitor(p)
  send(own, "wake up")
  process.exit(p, "normal")
  lib.same({ receive(report, 30) }, { nil, "timeout" }, "still asleep")
  lib.eq(process.is_alive(p), true, "alive")
  process.kill(p)
  lib.eq(down(m).reason, "killed", "killed")
  lib.no_leftovers()
end)

lib.test("send_after delivers", function()
  local s = process.new_subject()
  local msg = { "payload" }
  local t = process.send_after(s, 10, msg)
  lib.ok(t ~= nil, "a timer")
  local got = receive(s, 1000)
  lib.ok(rawequal(got, msg), "the same table arrived")
  empty(s, "once")
  -- Zero delay.
  process.send_after(s, 0, "zero")
  lib.eq(receive(s, 1000), "zero", "zero delay")
  -- false is a message too.
  process.send_after(s, 1, false)
  lib.same({ receive(s, 1000) }, { false }, "false")
  lib.no_leftovers()
end)

lib.test("send_after to another process's subject", function()
  local report = process.new_subject()
  local hand = process.new_subject()
  local p = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    send(report, receive(own))
  end)
  local own = receive(hand, 1000)
  local m = process.monitor(p)
  process.send_after(own, 5, "from main's timer")
  lib.eq(receive(report, 1000), "from main's timer", "delivered")
  down(m)
  lib.no_leftovers()
end)

lib.test("a timer survives the loss of its handle", function()
  local s = process.new_subject()
  process.send_after(s, 5, "kept")
  collectgarbage("collect")
  collectgarbage("collect")
  lib.eq(receive(s, 1000), "kept", "delivered")
  lib.no_leftovers()
end)

lib.test("cancel_timer returns the ms left, then false", function()
  local s = process.new_subject()
  local t = process.send_after(s, 500, "cancelled")
  local left = process.cancel_timer(t)
  lib.eq(math.type(left), "integer", "ms left is an integer")
  lib.ok(left >= 0 and left <= 500, "0 <= left <= 500: " .. tostring(left))
  lib.ok(left >= 400, "hardly any time has passed: " .. tostring(left))
  lib.eq(process.cancel_timer(t), false, "cancelled twice")
  -- The cancelled message never arrives: a later timer is the first one.
  local t2 = process.send_after(s, 5, "first")
  local t3 = process.send_after(s, 1, "cancelled too")
  lib.eq(math.type(process.cancel_timer(t3)), "integer", "cancel t3")
  lib.eq(receive(s, 1000), "first", "only t2's message")
  empty(s, "nothing else")
  lib.eq(process.cancel_timer(t2), false, "cancel after it fired")
  lib.raises(function() process.cancel_timer("x") end, "bad argument #1",
             "cancel_timer(string)")
  lib.no_leftovers()
end)

lib.test("cancel_timer of a timer whose target died", function()
  local s = process.new_subject()
  local hand = process.new_subject()
  local p = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    receive(own)
  end)
  local own = receive(hand, 1000)
  local m = process.monitor(p)
  local t = process.send_after(own, 5, "to the dead")
  send(own, "stop")
  down(m)
  process.send_after(s, 20, "later")
  lib.eq(receive(s, 1000), "later", "a later timer fired")
  lib.eq(process.cancel_timer(t), false, "the earlier one fired (dropped)")
  lib.no_leftovers()
end)

lib.test("timers that expire together arrive in start order", function()
  local s = process.new_subject()
  for i = 1, 100 do process.send_after(s, 5, i) end
  for i = 1, 100 do lib.eq(receive(s, 1000), i, "timer " .. i) end
  empty(s)
  -- Different delays arrive in deadline order whatever the start order.
  process.send_after(s, 30, "c")
  process.send_after(s, 10, "a")
  process.send_after(s, 20, "b")
  process.send_after(s, 0, "now")
  local got = {}
  for i = 1, 4 do got[i] = receive(s, 1000) end
  lib.same(got, { "now", "a", "b", "c" }, "deadline order")
  lib.no_leftovers()
end)

lib.test("send_after checks its arguments", function()
  local s = process.new_subject()
  lib.raises(function() process.send_after("s", 1, "m") end,
             "bad argument #1", "send_after(string)")
  lib.raises(function() process.send_after(s, -1, "m") end,
             "bad argument #2", "negative delay")
  lib.raises(function() process.send_after(s, 1.5, "m") end,
             "bad argument #2", "fractional delay")
  lib.raises(function() process.send_after(s, 1, nil) end,
             "bad argument #3", "nil message")
  process.sleep(5)
  empty(s, "nothing was started")
  lib.no_leftovers()
end)
