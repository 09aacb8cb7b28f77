-- test_registry_scale: 10,000 subjects of 1,000 processes in 100 groups
-- plus one shared group; every process killed; the registry ends empty,
-- and a second round on the same registry behaves the same.
local lib = require "testlib"
local process = require "process"
local chip = require "chip"
local core = require "arbor.core"

local NPROCS, PER_PROC, NGROUPS = 1000, 10, 100
local SHARED = "shared"

-- Spawns NPROCS processes owning PER_PROC subjects each; they wait until
-- killed.  Returns the list of { pid, mon, subs }.
local function spawn_owners()
  local hand = process.new_subject()
  local owners = {}
  for i = 1, NPROCS do
    process.spawn(function()
      local subs = {}
      for j = 1, PER_PROC do subs[j] = process.new_subject() end
      process.send(hand, { i = i, pid = process.self(), subs = subs })
      process.sleep_forever()
    end)
  end
  for _ = 1, NPROCS do
    local r = process.receive(hand, 5000)
    lib.ok(r ~= nil, "an owner reported")
    owners[r.i] = { pid = r.pid, subs = r.subs, mon = process.monitor(r.pid) }
  end
  return owners
end

-- Process i's subjects go to ten consecutive groups; odd processes use
-- groups 0-9, 20-29, ..., even ones 10-19, 30-39, ...
local function group_of(i, j)
  return ((i - 1) * PER_PROC + (j - 1)) % NGROUPS
end

local function round(reg, label)
  local owners = spawn_owners()
  lib.eq(core.process_count(), NPROCS + 2, label .. ": processes running")
  -- Register every subject in its group and in the shared group.
  local shared = {}
  for i = 1, NPROCS do
    for j, s in ipairs(owners[i].subs) do
      chip.register(reg, group_of(i, j), s)
      chip.register(reg, SHARED, s)
      shared[#shared + 1] = s
    end
  end
  local per_group = NPROCS * PER_PROC // NGROUPS
  local before = {}
  for g = 0, NGROUPS - 1 do
    before[g] = chip.members(reg, g, 1000)
    lib.eq(#before[g], per_group, label .. ": group " .. g)
  end
  -- Unchanged groups answer with the very same (read-only) lists.
  for g = 0, NGROUPS - 1 do
    lib.ok(rawequal(chip.members(reg, g), before[g]),
           label .. ": group " .. g .. " list reused")
  end
  local all = chip.members(reg, SHARED)
  lib.eq(#all, NPROCS * PER_PROC, label .. ": shared group size")
  for k = 1, #shared do
    if not rawequal(all[k], shared[k]) then
      error(label .. ": shared group out of order at " .. k)
    end
  end
  lib.eq(#chip.groups(reg), NGROUPS + 1, label .. ": groups")
  -- Kill the odd processes first: exactly the even ones' subjects remain,
  -- in registration order.
  for i = 1, NPROCS, 2 do process.kill(owners[i].pid) end
  for i = 1, NPROCS, 2 do
    local d = process.select(process.new_selector()
                               :selecting_process_down(owners[i].mon), 5000)
    lib.ok(d ~= nil and d.reason == "killed", label .. ": odd owner DOWN")
  end
  local expected, left = {}, {}
  for i = 2, NPROCS, 2 do
    for j, s in ipairs(owners[i].subs) do
      expected[#expected + 1] = s
      local g = group_of(i, j)
      left[g] = left[g] or {}
      left[g][#left[g] + 1] = s
    end
  end
  all = chip.members(reg, SHARED)
  lib.eq(#all, #expected, label .. ": shared after half")
  for k = 1, #expected do
    if not rawequal(all[k], expected[k]) then
      error(label .. ": shared group after half out of order at " .. k)
    end
  end
  for g = 0, NGROUPS - 1 do
    local ms, want = chip.members(reg, g), left[g] or {}
    lib.eq(#ms, #want, label .. ": group " .. g .. " after half")
    if #want == per_group then
      lib.ok(rawequal(ms, before[g]), label .. ": group " .. g
             .. " lost no member: the same list")
    else
      lib.ok(not rawequal(ms, before[g]), label .. ": group " .. g
             .. " has a new list after its members died")
    end
    lib.eq(#before[g], per_group, label .. ": group " .. g
           .. " old list kept its members")
    for k = 1, #want do
      lib.ok(rawequal(ms[k], want[k]),
             label .. ": group " .. g .. " after half, member " .. k)
    end
  end
  lib.eq(#chip.groups(reg), 50 + 1, label .. ": groups after half")
  -- Kill the rest.
  for i = 2, NPROCS, 2 do process.kill(owners[i].pid) end
  for i = 2, NPROCS, 2 do
    local d = process.select(process.new_selector()
                               :selecting_process_down(owners[i].mon), 5000)
    lib.ok(d ~= nil and d.reason == "killed", label .. ": even owner DOWN")
  end
  for g = 0, NGROUPS - 1 do
    lib.same(chip.members(reg, g), {}, label .. ": group " .. g .. " empty")
  end
  lib.same(chip.members(reg, SHARED), {}, label .. ": shared empty")
  lib.same(chip.groups(reg), {}, label .. ": no groups")
  lib.eq(core.process_count(), 2, label .. ": only main and the registry")
end

lib.test("10,000 subjects of 1,000 processes, two rounds", function()
  local t0 = os.clock()
  local reg = assert(chip.start("scale"))
  local pid = process.subject_owner(reg)
  round(reg, "round 1")
  collectgarbage()
  round(reg, "round 2")
  lib.eq(process.is_alive(pid), true, "the registry lived through it")
  local m = process.monitor(pid)
  chip.stop(reg)
  local d = process.select(process.new_selector():selecting_process_down(m),
                           1000)
  lib.eq(d and d.reason, "normal", "registry stopped")
  lib.no_leftovers()
  collectgarbage()
  io.write(string.format("# %.3f s of CPU\n", os.clock() - t0))
end)

lib.test("a registry stopped while 1,000 members live", function()
  local reg = assert(chip.start("scale"))
  local pid = process.subject_owner(reg)
  local owners = spawn_owners()
  for i = 1, NPROCS do
    for j, s in ipairs(owners[i].subs) do
      chip.register(reg, group_of(i, j), s)
      chip.register(reg, SHARED, s)
    end
  end
  lib.eq(#chip.members(reg, SHARED), NPROCS * PER_PROC, "all registered")
  local m = process.monitor(pid)
  chip.stop(reg)
  local d = process.select(process.new_selector():selecting_process_down(m),
                           1000)
  lib.eq(d and d.reason, "normal", "registry stopped")
  lib.eq(chip.from("scale"), nil, "name freed")
  -- The members outlive it and end afterwards without trouble.
  for i = 1, NPROCS do
    lib.ok(process.is_alive(owners[i].pid), "member alive")
    process.kill(owners[i].pid)
  end
  for i = 1, NPROCS do
    local dd = process.select(process.new_selector()
                                :selecting_process_down(owners[i].mon), 5000)
    lib.ok(dd ~= nil and dd.reason == "killed", "member DOWN")
  end
  collectgarbage()
  -- The name can be taken again and the new registry is empty.
  local reg2 = assert(chip.start("scale"))
  lib.same(chip.groups(reg2), {}, "new registry empty")
  lib.same(chip.members(reg2, SHARED), {}, "no shared members")
  m = process.monitor(process.subject_owner(reg2))
  chip.stop(reg2)
  process.select(process.new_selector():selecting_process_down(m), 1000)
  lib.no_leftovers()
end)
