--[[
arbor.annotate: small facts a process publishes about itself for
`arbor status` to show (a command child's OS pid and its last STATUS=
text, for instance).

  annotate.set(pid, key, value)   value nil removes the key
  annotate.get(pid) -> table | nil  a copy of the pid's facts
  annotate.clear(pid)

A pid is given as the pid value or its text form ("<0.12.1>"); entries
are kept by that text.  Facts live only as long as the process: those of
a process that has ended are never returned, and are dropped as soon as
they are looked at or when the table is swept (each time it has doubled
since the last sweep), so a host that runs millions of short processes
keeps only the live ones.  Nothing here holds a process up or sends it
anything.  Depends on `process` only.
]]
local process = require "process"

local M = {}

local entries = {}   -- pid text -> { pid = pid value, facts = {...} }
local count = 0
local swept_at = 64  -- sweep when count reaches this

local function key_of(pid)
  local t = type(pid)
  if t == "string" then return pid end
  if t == "userdata" then
    local ok, text = pcall(tostring, pid)
    if ok and type(text) == "string" and text:match("^<%d+%.%d+%.%d+>$") then
      return text
    end
  end
  error("bad argument #1 (pid or pid text expected, got " .. t .. ")", 3)
end

local function drop(key)
  if entries[key] ~= nil then
    entries[key] = nil
    count = count - 1
  end
end

local function sweep()
  for key, e in pairs(entries) do
    if not process.is_alive(e.pid) then drop(key) end
  end
  swept_at = math.max(64, count * 2)
end

function M.set(pid, key, value)
  if type(pid) ~= "userdata" then
    error("bad argument #1 to 'set' (pid expected, got " .. type(pid) .. ")", 2)
  end
  if type(key) ~= "string" then
    error("bad argument #2 to 'set' (string key expected, got "
          .. type(key) .. ")", 2)
  end
  if not process.is_alive(pid) then return false end
  local k = key_of(pid)
  local e = entries[k]
  if e == nil then
    if value == nil then return true end
    e = { pid = pid, facts = {} }
    entries[k] = e
    count = count + 1
    if count >= swept_at then sweep() end
  end
  e.facts[key] = value
  return true
end

function M.get(pid)
  local k = key_of(pid)
  local e = entries[k]
  if e == nil then return nil end
  if not process.is_alive(e.pid) then
    drop(k)
    return nil
  end
  local copy = {}
  for key, value in pairs(e.facts) do copy[key] = value end
  return copy
end

function M.clear(pid)
  drop(key_of(pid))
end

-- How many entries are held (live or not yet swept); for tests.
function M.size() return count end

return M
