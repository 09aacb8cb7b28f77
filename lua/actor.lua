--[[
actor: a process with state and a loop, after gleam_otp's actor.

actor.start(state, loop) and actor.start_spec{init, loop, init_timeout}
start a process and return a subject it owns.  For each message on that
subject, loop(msg, state) returns actor.continue(new_state) or
actor.stop([reason]); the process then goes on or ends with that reason
("normal" by default; gleam_otp 0.x always ended normal, a bug we do not
copy).

The caller waits for init.  The new process links itself to the caller
only once init has succeeded, so an init that raises, fails or times out
gives the caller nil, err and never takes it down (gleam_otp 0.x
crashed the caller).
]]
local process = require "process"
local core = require "arbor.core"
local describe = core.describe -- user values' text, bounded

local M = {}

local new_error = core.error -- the host's one error type (arbor.Error)

-- Private keys mark what loop returns, so any state value is allowed.
local CONTINUE, STOP = {}, {}

function M.continue(state) return { [CONTINUE] = true, state = state } end

function M.stop(reason)
  return { [STOP] = true, reason = reason == nil and "normal" or reason }
end

-- The user's function as file:line, for errors the actor raises on its
-- behalf: the traceback ends here, in actor.lua, after loop returned, so
-- the message itself must point at the user's code.
local function where(fn)
  local info = debug.getinfo(fn, "S")
  return string.format("%s:%d (loop function)", info.short_src,
                       info.linedefined)
end

-- Raises msg from a frame that stands for the user's loop function: a
-- function compiled under the loop's chunk name at the loop's first line,
-- so the crash report's traceback shows "FILE:LINE: in local 'loop'"
-- above actor.lua's frames, where the user's function is.  Made only
-- when a loop returns a bad value (never on the message path), one per
-- loop function.
local raisers = setmetatable({}, { __mode = "k" })
local function raise_from(fn, msg)
  local raiser = raisers[fn]
  if raiser == nil then
    local info = debug.getinfo(fn, "S")
    raiser = false
    if info.source:sub(1, 1) == "@" and info.linedefined > 0 then
      local chunk = load(string.rep("\n", info.linedefined - 1)
                         .. "return function(m) error(m, 0) end",
                         info.source, "t", { error = error })
      raiser = chunk and chunk() or false
    end
    raisers[fn] = raiser
  end
  if raiser then
    local loop = raiser
    loop(msg) -- (not a tail call: its frame must stay in the traceback)
  end
  error(msg, 0)
end

local function run(init, loop, parent, reply)
  local ok, state, err = pcall(init)
  if not ok then
    process.send(reply, { failed = "init raised: " .. describe(state),
                          reason = state })
    return
  end
  if state == nil and err ~= nil then
    process.send(reply, { failed = "init failed: " .. describe(err),
                          reason = err })
    return
  end
  if not process.link(parent) then return end -- nobody is waiting
  local inbox = process.new_subject()
  process.send(reply, { subject = inbox })
  local receive = process.receive
  -- A crash report shows last_message and state, this frame's locals
  -- (arbor.core.crash_frame below; read only when the process crashes).
  while true do
    local last_message = receive(inbox)
    local next = loop(last_message, state)
    if type(next) ~= "table" then
      raise_from(loop, string.format("%s: actor loop must return "
                                     .. "actor.continue(state) or "
                                     .. "actor.stop(reason), got %s",
                                     where(loop), type(next)))
    elseif next[CONTINUE] then
      state = next.state
    elseif next[STOP] then
      core.exit_self(next.reason)
    else
      raise_from(loop, where(loop) .. ": actor loop must return "
                       .. "actor.continue(state) or actor.stop(reason)")
    end
  end
end
core.crash_frame(run)

local function start(init, loop, init_timeout)
  local reply = process.new_subject()
  local pid = process.spawn(run, init, loop, process.self(), reply)
  local mon = process.monitor(pid)
  local answer = process.select(process.new_selector()
    :selecting(reply)
    :selecting_process_down(mon, function(d) return { down = d.reason } end),
    init_timeout)
  process.demonitor(mon)
  if answer == nil then
    process.unlink(pid)
    process.kill(pid)
    return nil, new_error { kind = "init_timeout",
                            message = "actor init timed out after "
                                      .. init_timeout .. " ms" }
  end
  if answer.subject then return answer.subject end
  if answer.failed then
    return nil, new_error { kind = "init_failed", reason = answer.reason,
                            message = answer.failed }
  end
  return nil, new_error { kind = "init_failed", reason = answer.down,
                          message = "actor exited during init: "
                                    .. describe(answer.down) }
end

local function check_loop(loop, fn, argn)
  if type(loop) ~= "function" then
    error(string.format("bad argument #%d to '%s' (loop function expected, "
                        .. "got %s)", argn, fn, type(loop)), 3)
  end
end

function M.start(state, loop)
  check_loop(loop, "start", 2)
  return start(function() return state end, loop, nil)
end

function M.start_spec(spec)
  if type(spec) ~= "table" then
    error("bad argument #1 to 'start_spec' (table expected, got "
          .. type(spec) .. ")", 2)
  end
  if type(spec.init) ~= "function" then
    error("start_spec: field 'init' must be a function, got "
          .. type(spec.init), 2)
  end
  if type(spec.loop) ~= "function" then
    error("start_spec: field 'loop' must be a function, got "
          .. type(spec.loop), 2)
  end
  local timeout = spec.init_timeout == nil and 5000 or spec.init_timeout
  if math.type(timeout) ~= "integer" or timeout < 0 then
    error("start_spec: field 'init_timeout' must be milliseconds >= 0, got "
          .. tostring(spec.init_timeout), 2)
  end
  return start(spec.init, spec.loop, timeout)
end

return M
