--[[
arbor.coroutine: makes coroutine.resume and coroutine.wrap carry the
scheduler's yields through user coroutines (loaded by the host before
the main process starts).

Two kinds of yield must reach the scheduler even from a coroutine a
process made itself: the preemption tick's hook, and a
blocking call (receive, select, sleep, an exit signal to oneself).  Both
arrive here, in the coroutine's resume, marked by core.resume's first
result (a value on the stack, not shared state: a level preempted right
after its resume returned cannot take a lower level's mark); we then
yield our own coroutine the same way (core.preempt), up to the
process.  The scheduler requeues a preempted process or leaves a blocked
one waiting; when it runs again each level resumes the one below, and
the user's code never sees the difference.

A coroutine that failed because its process has ended (a runaway
stopped by the host, or process.kill(self()) from a C callback) does not
hand the error back to the process's code: the error goes on up, so a
dead process stops at once (see host/bind/lguard.c).
]]
local core = require "arbor.core"

-- core.resume(co, ...) -> up, then coroutine.resume's results: up says
-- co yielded for the scheduler, not to us.  It also tells the preemption
-- tick which thread runs (host/bind/lguard.c).
local co_resume, co_create = core.resume, coroutine.create
local co_close = coroutine.close
local preempt = core.preempt
local self_ended = core.self_ended
local is_process_thread = core.is_process_thread

-- A process's own thread belongs to the scheduler: resuming or closing
-- it from Lua (another process got hold of it) would run or end that
-- process behind the scheduler's back.  Refused the way Lua refuses a
-- coroutine that is not suspended: false and a message.
local function process_thread(co)
  return type(co) == "thread" and is_process_thread(co)
end
local REFUSED = "cannot resume a process's own thread (only the scheduler runs it)"

local function relay(co, up, ok, ...)
  if up then
    preempt()
    return relay(co, co_resume(co))
  end
  if not ok and self_ended() then error((...), 0) end
  return ok, ...
end

function coroutine.resume(co, ...)
  if process_thread(co) then return false, REFUSED end
  return relay(co, co_resume(co, ...))
end

function coroutine.close(co)
  if process_thread(co) then
    error("bad argument #1 to 'close' (a process's own thread cannot be "
          .. "closed)", 2)
  end
  return co_close(co)
end

local resume = coroutine.resume

function coroutine.wrap(f)
  local co = co_create(f)
  local function unwrap(ok, ...)
    if not ok then
      local err = ...
      coroutine.close(co)
      error(err, 0)
    end
    return ...
  end
  return function(...) return unwrap(resume(co, ...)) end
end
