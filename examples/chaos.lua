-- chaos.lua: a tree that survives injected crashes.
--
-- Three workers under a one_for_one supervisor count the messages they
-- handle.  A chaos process kills a random worker every few milliseconds;
-- the supervisor restarts each one (its reports go to stderr) and the
-- main process keeps sending work to whichever workers are alive,
-- finding them through a chip group.  At the end it prints how many
-- crashes the tree absorbed and checks that every worker is running.
--
--   scripts/run examples/chaos.lua 2>/dev/null
local process = require "process"
local supervisor = require "supervisor"
local chip = require "chip"

local registry = assert(chip.start())

local function worker(name)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local inbox = process.new_subject()
      chip.register(registry, "workers", inbox)
      process.send(ready, inbox)
      while true do process.receive(inbox) end
    end)
    return process.receive(ready)
  end):id(name)
end

local sup = assert(supervisor.start_spec {
  name = "chaos",
  strategy = "one_for_one",
  max_frequency = 100,
  frequency_period = 1,
  init = function(children)
    return children:add(worker("w1")):add(worker("w2")):add(worker("w3"))
  end,
})

local CRASHES = 20
local done = process.new_subject()
process.spawn_link(function()
  for _ = 1, CRASHES do
    local members = chip.members(registry, "workers")
    local victim = members[math.random(#members)]
    process.exit(process.subject_owner(victim), "injected crash")
    -- The supervisor serves its mailbox oldest first: once it answers,
    -- the crash is handled and the victim's replacement is running.
    supervisor.which_children(sup)
    process.sleep(1)
  end
  process.send(done, "finished")
end)

local sent = 0
while process.receive(done, 0) == nil do
  for _, w in ipairs(chip.members(registry, "workers")) do
    process.send(w, "work")
    sent = sent + 1
  end
  process.sleep(1)
end

local restarts, running = 0, 0
for _, child in ipairs(supervisor.which_children(sup)) do
  restarts = restarts + child.restarts
  if child.status == "running" then running = running + 1 end
end
print(string.format("%d crashes injected, %d restarts, %d of 3 workers "
                    .. "running, %d messages sent", CRASHES, restarts,
                    running, sent))
assert(restarts == CRASHES and running == 3)
