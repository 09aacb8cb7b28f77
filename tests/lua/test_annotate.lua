-- arbor.annotate: facts a process publishes for `arbor status`, gone
-- with the process.
local process = require "process"
local annotate = require "arbor.annotate"

local me = process.self()
assert(annotate.get(me) == nil, "nothing before set")
assert(annotate.set(me, "os_pid", 42) == true)
assert(annotate.get(me).os_pid == 42, "by pid")
assert(annotate.get(tostring(me)).os_pid == 42, "by pid text")
annotate.get(me).os_pid = 7
assert(annotate.get(me).os_pid == 42, "get returns a copy")
annotate.set(me, "os_pid", nil)
assert(next(annotate.get(me)) == nil, "nil removes a key")
annotate.clear(me)
assert(annotate.get(me) == nil, "clear")
assert(not pcall(annotate.set, "x", "k", 1), "set needs a pid")
assert(not pcall(annotate.set, me, 1, 1), "set needs a string key")

-- A process's facts go when it ends: the child publishes, says so,
-- then waits for leave to go.
local told, go = process.new_subject(), nil
local child = process.spawn(function()
  local s = process.new_subject()
  annotate.set(process.self(), "status_text", "up")
  process.send(told, s)
  process.receive(s)
end)
go = process.receive(told, 5000)
assert(go, "child published")
assert(annotate.get(child).status_text == "up")
local mon = process.monitor(child)
process.send(go, "leave")
assert(process.select(process.new_selector():selecting_process_down(mon), 5000))
assert(annotate.get(child) == nil, "gone with its process")
assert(annotate.set(child, "k", 1) == false, "a dead pid is ignored")

-- Many short processes leave no entries behind (sweeps).
local before = annotate.size()
for _ = 1, 1000 do
  local p = process.spawn(function() end)
  annotate.set(p, "k", 1) -- may be alive or not yet run
end
process.sleep(0)
local done = process.new_subject()
process.spawn(function() process.send(done, true) end)
process.receive(done, 5000)
-- Whether the first 1000 were alive at each sweep depends on where main's
-- time slices ended; the table doubles at most to 2 x 1201 before its
-- next sweep, so 2500 more that each end before the next starts are
-- sure to meet one that finds all the first 1000 ended.
for _ = 1, 2500 do
  local p = process.spawn(function() annotate.set(process.self(), "k", 1) end)
  local m = process.monitor(p)
  process.select(process.new_selector():selecting_process_down(m), 5000)
end
annotate.set(me, "k", 1)
assert(annotate.size() < before + 300,
       "dead entries are swept: " .. annotate.size())
print("test_annotate: ok")
