-- test_coroutines: process functions called from coroutines a process
-- made itself.  Non-blocking calls simply work; a blocking call (receive,
-- select, sleep) blocks the whole process and resumes the coroutine when
-- it is woken; an exit signal to oneself ends the process from inside.
local process = require "process"
local lib = require "testlib"

lib.test("receive inside a generator made with coroutine.wrap", function()
  local inbox = process.new_subject()
  process.spawn(function() for i = 1, 3 do process.send(inbox, i) end end)
  local gen = coroutine.wrap(function()
    while true do
      local v = process.receive(inbox, 1000)
      coroutine.yield(v * 10)
    end
  end)
  lib.same({ gen(), gen(), gen() }, { 10, 20, 30 }, "generated")
  lib.no_leftovers()
end)

lib.test("a timeout inside a coroutine returns nil, \"timeout\"", function()
  local inbox = process.new_subject()
  local co = coroutine.create(function() return process.receive(inbox, 5) end)
  local ok, v, err = coroutine.resume(co)
  lib.eq(ok, true, "resumed")
  lib.eq(v, nil, "value")
  lib.eq(err, "timeout", "error")
  lib.eq(coroutine.status(co), "dead", "finished")
  lib.no_leftovers()
end)

lib.test("sleep and send inside nested coroutines", function()
  local inbox = process.new_subject()
  local outer = coroutine.wrap(function()
    local inner = coroutine.wrap(function()
      process.sleep(2)
      process.send(inbox, "inner")
      return "inner done"
    end)
    local r = inner()
    process.send(inbox, "outer")
    return r
  end)
  lib.eq(outer(), "inner done", "returned through both levels")
  lib.eq(process.receive(inbox, 100), "inner", "first message")
  lib.eq(process.receive(inbox, 100), "outer", "second message")
  lib.no_leftovers()
end)

lib.test("other processes run while a coroutine blocks", function()
  local inbox = process.new_subject()
  local replies = process.new_subject()
  process.spawn(function()
    process.send(replies, "others ran")
    process.send(inbox, "wake")
  end)
  local co = coroutine.wrap(function() return process.receive(inbox, 1000) end)
  lib.eq(co(), "wake", "woken")
  lib.eq(process.receive(replies, 0), "others ran", "the other process ran")
  lib.no_leftovers()
end)

lib.test("exit(self()) inside a coroutine ends the process", function()
  local watcher = process.new_subject()
  local pid = process.spawn(function()
    local c = coroutine.wrap(function() process.exit(process.self(), "bye") end)
    c()
    process.send(watcher, "went on")
  end)
  lib.eq(lib.await_down(pid, 1000), "bye", "reason")
  lib.eq(process.receive(watcher, 0), nil, "nothing ran after the exit")
  lib.no_leftovers()
end)

lib.test("a user coroutine's own yields still reach its resume", function()
  local co = coroutine.create(function(a)
    local b = coroutine.yield(a + 1)
    return b * 2
  end)
  lib.same({ coroutine.resume(co, 1) }, { true, 2 }, "first resume")
  lib.same({ coroutine.resume(co, 5) }, { true, 10 }, "second resume")
  lib.no_leftovers()
end)

lib.test("a preempted coroutine is never seen by its resumer as yielding",
         function()
  -- Levels of coroutines, the innermost looping for ever: its resumers
  -- must never return from coroutine.resume.  The mark that a yield is
  -- for the scheduler was one flag for all levels, and a middle level
  -- preempted right after its resume returned took the inner level's
  -- mark: its resumer then saw a yield that never happened (under the
  -- old count hook, within about a second every time; the tick's window
  -- is narrower).  Time is counted in a third process's progress.
  local report = process.new_subject()
  local nested = {}
  for w = 1, 2 do
    nested[w] = process.spawn(function()
      local function nest(n)
        if n == 0 then while true do end end
        local co = coroutine.create(function() return nest(n - 1) end)
        local ok, v = coroutine.resume(co)
        process.send(report, string.format("level %d: resume returned %s %s",
                                           n, tostring(ok), tostring(v)))
        while true do end
      end
      nest(3)
    end)
  end
  local progress = process.new_subject()
  local counter = process.spawn(function()
    local i = 0
    while true do
      i = i + 1
      if i % 200000 == 0 then process.send(progress, i) end
    end
  end)
  for _ = 1, 400 do assert(process.receive(progress, 30000)) end
  lib.same({ process.receive(report, 0) }, { nil, "timeout" },
           "no resume returned")
  for _, p in ipairs { nested[1], nested[2], counter } do
    process.kill(p)
    lib.await_down(p)
  end
  lib.no_leftovers()
end)

lib.test("a coroutine resuming itself gets Lua's refusal", function()
  -- arbor.core.resume left lua_resume's message on the caller's own
  -- stack: the refusal read as a yield for the scheduler, and the
  -- process spun for ever.  Stock Lua 5.4 answers as below.
  local me, got
  me = coroutine.create(function() got = { coroutine.resume(me) } end)
  lib.same({ coroutine.resume(me) }, { true }, "the outer resume")
  lib.same(got, { false, "cannot resume non-suspended coroutine" },
           "the self-resume")
  lib.no_leftovers()
end)
