--[[
chaos.lua: the chaos gate.  A tree of supervisors (one of each strategy
under a one_for_one root) whose workers fail at random for a fixed number
of rounds, from a seed printed first so a failure can be replayed:

  arbor tests/soak/chaos.lua [ROUNDS] [SEED]

A round picks a live worker and ends it one way: it raises a string, a
table, or a value whose __tostring raises or loops; it allocates heavily
and then raises; it is killed; it gets an exit signal with a table reason
or a misbehaving one.  Then the round waits (polling under a deadline)
until the tree is whole again.  Every worker registers its inbox in a
chip group, so after each round the group must hold exactly the live
workers.

After the rounds: the tree has its declared shape, no registry member is
dead, and once the tree is stopped the host's memory accounting (Lua heap
and core C memory) is back to its starting level exactly.  Crash and
supervisor reports stay on: describing misbehaving reasons is part of
what is under test, so stderr is noisy by design.
]]
local process = require "process"
local supervisor = require "supervisor"
local chip = require "chip"
local core = require "arbor.core"

local ROUNDS = tonumber(arg[1]) or 300
local SEED = tonumber(arg[2]) or os.time()
print(string.format("chaos: %d rounds, seed %d (replay: arbor %s %d %d)",
                    ROUNDS, SEED, arg[0], ROUNDS, SEED))
math.randomseed(SEED)

local WORKERS_PER_SUP = 4
local STRATEGIES = { "one_for_one", "rest_for_one", "one_for_all" }

local function bad_tostring(kind)
  if kind == "raises" then
    return setmetatable({}, { __tostring = function() error("tostring") end })
  end
  return setmetatable({}, { __tostring = function() while true do end end })
end

-- What a worker does when told to fail.
local failures = {
  error = function() error("chaos: injected") end,
  table = function() error({ chaos = true, code = 7 }) end,
  tostring_raises = function() error(bad_tostring("raises")) end,
  tostring_loops = function() error(bad_tostring("loops")) end,
  allocate = function()
    local hog = {}
    for i = 1, 20000 do hog[i] = string.rep("x", 400) .. i end
    error("chaos: allocated " .. #hog .. " strings")
  end,
}
local worker_failures = { "error", "table", "tostring_raises",
                          "tostring_loops", "allocate" }

local function worker(registry, id)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local inbox = process.new_subject()
      chip.register(registry, "workers", inbox)
      process.send(ready, inbox)
      while true do failures[process.receive(inbox)]() end
    end)
    return process.receive(ready)
  end):id(id)
end

-- The declared shape: sup id -> list of worker ids.
local function declare(registry)
  local shape = {}
  local root = supervisor.spec {
    strategy = "one_for_one", max_frequency = 1000000,
    frequency_period = 3600,
    init = function(children)
      for s, strategy in ipairs(STRATEGIES) do
        local sid = "sup" .. s
        shape[sid] = {}
        local inner = supervisor.spec {
          strategy = strategy, max_frequency = 1000000,
          frequency_period = 3600,
          init = function(grand)
            for w = 1, WORKERS_PER_SUP do
              local wid = sid .. "w" .. w
              shape[sid][w] = wid
              grand = grand:add(worker(registry, wid))
            end
            return grand
          end,
        }
        children = children:add(supervisor.supervisor(inner):id(sid))
      end
      return children
    end,
  }
  return root, shape
end

-- Is the tree whole: every supervisor and worker running, in declared
-- order, and the group holding exactly one live subject per worker?
local function whole(root, shape, registry)
  local subs = supervisor.which_children(root)
  if #subs ~= #STRATEGIES then return false, "root has " .. #subs end
  local total = 0
  for s, row in ipairs(subs) do
    local sid = "sup" .. s
    if row.id ~= sid or row.status ~= "running" then
      return false, sid .. " is " .. tostring(row.status)
    end
    local ok, kids = pcall(supervisor.which_children, row.subject)
    if not ok then return false, sid .. " not answering" end
    if #kids ~= #shape[sid] then return false, sid .. " has " .. #kids end
    for w, kid in ipairs(kids) do
      if kid.id ~= shape[sid][w] or kid.status ~= "running" then
        return false, kid.id .. " is " .. tostring(kid.status)
      end
    end
    total = total + #kids
  end
  local members = chip.members(registry, "workers")
  if #members ~= total then
    return false, #members .. " registered for " .. total .. " workers"
  end
  for _, m in ipairs(members) do
    if not process.is_alive(process.subject_owner(m)) then
      return false, "a dead member: " .. tostring(m)
    end
  end
  return true, members
end

local function await_whole(root, shape, registry, round)
  local deadline = core.now() + 10000
  while true do
    local ok, members = whole(root, shape, registry)
    if ok then return members end
    if core.now() > deadline then
      error(string.format("round %d (seed %d): the tree did not come back "
                          .. "whole: %s", round, SEED, members), 0)
    end
    process.sleep(1)
  end
end

local function inject(members)
  local victim = members[math.random(#members)]
  local pid = process.subject_owner(victim)
  local m = process.monitor(pid)
  local how = math.random(8)
  if how <= 5 then
    process.send(victim, worker_failures[how])
  elseif how == 6 then
    process.kill(pid)
  elseif how == 7 then
    process.exit(pid, { chaos = "signal" })
  else
    process.exit(pid, bad_tostring(math.random(2) == 1 and "raises"
                                   or "loops"))
  end
  process.select(process.new_selector():selecting_process_down(m))
end

local function run(rounds)
  local registry = assert(chip.start())
  local tree, shape = declare(registry)
  local root = assert(supervisor.start_spec(tree))
  local members = await_whole(root, shape, registry, 0)
  for round = 1, rounds do
    inject(members)
    members = await_whole(root, shape, registry, round)
  end
  supervisor.stop(root)
  chip.stop(registry)
end

local function measure()
  core.compact()
  return core.memory()
end

process.trap_exits(true) -- chip.stop's exit must not end main
run(20) -- warm-up: tables that grow once have grown
local sel = process.new_selector():selecting_trapped_exits()
while process.select(sel, 0) do end
local lua0, c0 = measure()
local t0 = core.now()
run(ROUNDS)
while process.select(sel, 0) do end
local lua1, c1 = measure()
print(string.format("chaos: %d rounds in %d ms; lua %d -> %d bytes, "
                    .. "c %d -> %d bytes", ROUNDS, core.now() - t0, lua0,
                    lua1, c0, c1))
assert(c1 == c0, "core C memory not back at its starting level")
assert(lua1 == lua0, "Lua memory not back at its starting level")
print("chaos: ok")
