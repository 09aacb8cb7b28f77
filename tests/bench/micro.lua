-- micro: arbor-only figures for the closing notes of the registry and
-- supervisor issues (no Erlang counterpart; scripts/bench does the
-- side-by-side work).  Each figure is an average over many repetitions.
--
--   arbor tests/bench/micro.lua
local process = require "process"
local chip = require "chip"
local supervisor = require "supervisor"
local core = require "arbor.core"

core.quiet(true)

local function report(name, value, unit)
  print(string.format("RESULT %s %.3f %s", name, value, unit))
end

-- Registry: 1,000 owner processes with 100 subjects each, registered in
-- 1,000 groups of 100 (os.clock: CPU time, the host is single-threaded).
local reg = assert(chip.start())
local subjects = {}
local inbox = process.new_subject()
local owners = {}
for i = 1, 1000 do
  owners[i] = process.spawn(function()
    local subs = {}
    for j = 1, 100 do subs[j] = process.new_subject() end
    process.send(inbox, subs)
    process.sleep_forever()
  end)
end
for i = 1, 1000 do
  for _, s in ipairs(process.receive(inbox)) do subjects[#subjects + 1] = s end
end
local t0 = os.clock()
for i, s in ipairs(subjects) do chip.register(reg, i % 1000, s) end
report("register_100k_each", (os.clock() - t0) / #subjects * 1e6, "us")

local K = 20000
t0 = os.clock()
for k = 1, K do chip.members(reg, k % 1000) end
report("members_100_of_100k", (os.clock() - t0) / K * 1e6, "us")

-- A process with a subject in 10 groups, delisted by its death, 1,000
-- times, while the 100,000 others stay registered.
local N = 1000
local total = 0
for _ = 1, N do
  local pid = process.spawn(function(r)
    local s = process.new_subject()
    for g = 1, 10 do chip.register(r, g, s) end
    process.sleep_forever()
  end, reg)
  process.sleep(0) -- let it register
  local c0 = os.clock()
  process.kill(pid) -- delisting happens inside this call
  total = total + (os.clock() - c0)
end
report("delist_10_groups_of_100k", total / N * 1e6, "us")
assert(#chip.members(reg, 1) == 100)
for _, pid in ipairs(owners) do process.kill(pid) end
chip.stop(reg)

-- rest_for_one: killing the first of 10 children restarts all 10; a
-- cycle ends when the tenth new child has reported its start.
local births = process.new_subject()
local function child(i)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local me = process.new_subject()
      process.send(ready, me)
      process.send(births, i)
      process.sleep_forever()
    end)
    return process.receive(ready)
  end):id("c" .. i)
end
local sup = assert(supervisor.start_spec {
  strategy = "rest_for_one", max_frequency = 1000000,
  frequency_period = 3600,
  init = function(children)
    for i = 1, 10 do children:add(child(i)) end
    return children
  end,
})
for _ = 1, 10 do process.receive(births) end
local R = 2000
t0 = os.clock()
for _ = 1, R do
  local first = supervisor.which_children(sup)[1].pid
  process.kill(first)
  for _ = 1, 10 do process.receive(births) end
end
report("rest_for_one_10_children", (os.clock() - t0) / R * 1e6, "us")
supervisor.stop(sup)
