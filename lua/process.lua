--[[
process: Erlang-style processes, subjects, selectors, links and monitors.

The primitives are C functions (host/bind/lprocess.c and lmbox.c); the
host passes their table in as this chunk's second argument, and this
module adds what is naturally written on top of them: call and try_call,
exactly as gleam_erlang 0.x does it (a fresh reply subject, a monitor on
the callee, wait for the reply or the DOWN).
]]
local _, M = ...

local new_subject, new_selector = M.new_subject, M.new_selector
local subject_owner, send, select = M.subject_owner, M.send, M.select
local monitor, demonitor, self = M.monitor, M.demonitor, M.self
local core = require "arbor.core"
local describe = core.describe -- a reason's text, bounded
local new_error = core.error   -- the host's one error type (arbor.Error)

-- The error value of a failed call: a kind and one line.
local function call_error(kind, message, reason)
  return new_error { kind = kind, message = message, reason = reason }
end

-- A key only this module holds marks a mapped DOWN, so no reply value can
-- be mistaken for one.
local DOWN = {}
local function mark_down(down) return { [DOWN] = down.reason } end

function M.try_call(subject, make_request, timeout_ms)
  if type(make_request) ~= "function" then
    error("bad argument #2 to 'try_call' (function expected, got "
          .. type(make_request) .. ")", 2)
  end
  -- nil waits forever (as OTP's supervisor calls do); an extension.
  if timeout_ms ~= nil and (math.type(timeout_ms) ~= "integer"
                            or timeout_ms < 0) then
    error("bad argument #3 to 'try_call' (timeout in ms expected)", 2)
  end
  local callee = subject_owner(subject)
  if callee == self() then
    error("bad argument #1 to 'try_call' (the caller owns this subject)", 2)
  end
  local reply = new_subject()
  local mon = monitor(callee)
  send(subject, make_request(reply))
  local value = select(new_selector()
                         :selecting(reply)
                         :selecting_process_down(mon, mark_down), timeout_ms)
  demonitor(mon)
  if value == nil then
    return nil, call_error("timeout", "call timed out after "
                           .. tostring(timeout_ms) .. " ms")
  end
  if type(value) == "table" and rawget(value, DOWN) ~= nil then
    local reason = value[DOWN]
    return nil, call_error("callee_down",
                           "callee exited: " .. describe(reason), reason)
  end
  return value
end

local try_call = M.try_call

function M.call(subject, make_request, timeout_ms)
  local value, err = try_call(subject, make_request, timeout_ms)
  if value == nil then error(err, 2) end
  return value
end

return M
