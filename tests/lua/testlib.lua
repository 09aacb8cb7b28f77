--[[
testlib: assertions for arbor's Lua tests.

A test file is a script run by the built arbor binary (cwd tests/lua).  It
calls test(name, fn) for each case; a failing case raises in the main
process, so arbor exits 1 and ctest reports the failure with the message.
Cases run in order, in the main process; each should leave no process of
its own running (check with lib.no_leftovers()).

Counting helpers follow luv's expect(): lib.counter() returns a function
that counts its calls, and lib.expect_count(c, n) checks the exact count.

lib.copy_of(actual, expected) checks that a table arrived as a copy
(messages and reasons are isolated).

Process helpers shared by many files: lib.quiet() (no crash reports unless
ARBOR_TEST_VERBOSE is set), lib.spawn_monitored(fn), lib.down(m),
lib.await_down(pid), lib.trapped_exit(), lib.trapping(fn),
lib.no_message(s) and lib.no_leftovers().  lib.await(cond, what [, ms])
polls cond every 5 ms until it holds (10 s by default); lib.os_exists(pid)
says whether an OS process is there (for the port and command tests).
]]
local process = require "process"
local core = require "arbor.core"

local lib = {}

local function fail(msg, level)
  error(msg, (level or 1) + 2)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function lib.eq(actual, expected, what)
  if actual ~= expected then
    fail(string.format("%s: expected %s, got %s", what or "value",
                       show(expected), show(actual)))
  end
end

-- Messages and exit reasons are isolated (contract v2): a table arrives
-- as a copy with the same contents and the same metatable.  Other values
-- arrive as themselves.
function lib.copy_of(actual, expected, what)
  what = what or "value"
  if type(expected) ~= "table" then
    if not rawequal(actual, expected) then
      fail(string.format("%s: expected %s, got %s", what, show(expected),
                         show(actual)))
    end
    return actual
  end
  if type(actual) ~= "table" then fail(what .. ": not a table") end
  if rawequal(actual, expected) then fail(what .. ": the same table, not a copy") end
  if getmetatable(actual) ~= getmetatable(expected) then
    fail(what .. ": the copy lost its metatable")
  end
  for k, v in next, expected do
    local a = rawget(actual, k)
    if type(v) == "table" then
      if type(a) ~= "table" then fail(what .. ": field " .. tostring(k)) end
    elseif not rawequal(a, v) then
      fail(string.format("%s: field %s: expected %s, got %s", what,
                         tostring(k), show(v), show(a)))
    end
  end
  for k in next, actual do
    if rawget(expected, k) == nil then fail(what .. ": extra field " .. tostring(k)) end
  end
  return actual
end

function lib.ok(cond, what)
  if not cond then fail(what or "condition failed") end
  return cond
end

-- Deep equality of plain tables (for lists of strings, numbers...).
function lib.same(actual, expected, what)
  local function deq(a, b)
    if type(a) ~= "table" or type(b) ~= "table" then return a == b end
    for k, v in pairs(a) do if not deq(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end
  if not deq(actual, expected) then
    local function dump(t)
      if type(t) ~= "table" then return show(t) end
      local parts = {}
      for i, v in ipairs(t) do parts[i] = dump(v) end
      return "{" .. table.concat(parts, ", ") .. "}"
    end
    fail(string.format("%s: expected %s, got %s", what or "value",
                       dump(expected), dump(actual)))
  end
end

-- Calls fn and checks that it raises an error whose text contains pattern
-- (a plain substring).  Returns the error value.
function lib.raises(fn, pattern, what)
  local ok, err = pcall(fn)
  if ok then fail((what or "call") .. ": expected an error") end
  if pattern and not tostring(err):find(pattern, 1, true) then
    fail(string.format("%s: error %s does not mention %q", what or "call",
                       show(tostring(err)), pattern))
  end
  return err
end

function lib.counter()
  local n = 0
  return setmetatable({}, {
    __call = function() n = n + 1 end,
    __index = function() return n end,
  })
end

function lib.expect_count(c, n, what)
  lib.eq(c.count, n, what or "call count")
end

-- Silences the host's crash reports unless ARBOR_TEST_VERBOSE is set (for
-- files whose cases crash processes on purpose).
function lib.quiet()
  if not os.getenv("ARBOR_TEST_VERBOSE") then core.quiet(true) end
end

-- Spawns fn(gate) with a monitor in place before fn runs: the new process
-- makes a subject of its own (the gate), hands it to the caller and waits
-- on it until the caller has monitored it.  Returns pid, monitor, gate.
function lib.spawn_monitored(fn)
  local hand = process.new_subject()
  local p = process.spawn(function()
    local gate = process.new_subject()
    process.send(hand, gate)
    process.receive(gate)
    return fn(gate)
  end)
  local gate = process.receive(hand, 1000)
  local m = process.monitor(p)
  process.send(gate, true)
  return p, m, gate
end

-- The DOWN message of monitor m (checks that one arrives in time).
function lib.down(m, timeout_ms)
  local d = process.select(process.new_selector():selecting_process_down(m),
                           timeout_ms or 1000)
  lib.ok(d ~= nil, "a DOWN arrived")
  return d
end

-- Polls cond every 5 ms until it holds or ms (10 s) pass; raises at the
-- caller naming what it waited for.
function lib.await(cond, what, ms)
  local deadline = core.now() + (ms or 10000)
  while not cond() do
    if core.now() > deadline then fail("timed out waiting: " .. what, 1) end
    process.sleep(5)
  end
end

-- Whether an OS process with this pid exists (a zombie counts).
function lib.os_exists(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

-- Waits for the DOWN of pid (monitors it first) and returns the reason.
function lib.await_down(pid, timeout_ms)
  local m = process.monitor(pid)
  local d = process.select(process.new_selector():selecting_process_down(m),
                           timeout_ms or 5000)
  if d == nil then fail("process " .. tostring(pid) .. " did not end", 1) end
  return d.reason
end

-- The next trapped exit of the caller (it must trap exits), or nil.
function lib.trapped_exit(timeout_ms)
  return process.select(process.new_selector():selecting_trapped_exits(),
                        timeout_ms or 2000)
end

-- Runs fn with the caller trapping exits; drains what is left and stops
-- trapping (also when fn raises, re-raising its error).
function lib.trapping(fn)
  process.trap_exits(true)
  local ok, err = pcall(fn)
  local drain = process.new_selector():selecting_trapped_exits()
  while process.select(drain, 0) ~= nil do end
  process.trap_exits(false)
  if not ok then error(err, 0) end
end

-- Checks that nothing is waiting on subject s.
function lib.no_message(s, what)
  lib.same({ process.receive(s, 0) }, { nil, "timeout" }, what or "no message")
end

-- Checks that only the main process is left running.
function lib.no_leftovers(what)
  lib.eq(core.process_count(), 1, (what or "test") .. ": live processes")
end

local cases = 0
function lib.test(name, fn)
  cases = cases + 1
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    error(string.format("test %q failed: %s", name, tostring(err)), 0)
  end
  io.write("ok ", cases, " - ", name, "\n")
end

return lib
