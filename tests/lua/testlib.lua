--[[
testlib: assertions for arbor's Lua tests.

A test file is a script run by the built arbor binary (cwd tests/lua).  It
calls test(name, fn) for each case; a failing case raises in the main
process, so arbor exits 1 and ctest reports the failure with the message.
Cases run in order, in the main process; each should leave no process of
its own running (check with lib.no_leftovers()).

Counting helpers follow luv's expect(): lib.counter() returns a function
that counts its calls, and lib.expect_count(c, n) checks the exact count.
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

-- Waits for the DOWN of pid (monitors it first) and returns the reason.
function lib.await_down(pid, timeout_ms)
  local m = process.monitor(pid)
  local d = process.select(process.new_selector():selecting_process_down(m),
                           timeout_ms or 5000)
  if d == nil then fail("process " .. tostring(pid) .. " did not end", 1) end
  return d.reason
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
