--[[
soak.lua: the memory gate.  In one run: 100,000 crash -> restart cycles
under a one_for_one supervisor (each waiting for the new child) and
1,000,000 spawned processes (in batches of 10,000 alive at once, each
batch linked, monitored and messaged).  Before and after, with a full
garbage collection, it prints the host's own accounting of the memory it
holds (Lua heap and core C memory) and fails unless both are back at
their starting level exactly, to the byte.  A warm-up round of each workload runs first, so
tables that grow once have grown before the baseline is taken (process
slots, reference stacks).  Each measurement first calls core.compact(),
which collects and then rebuilds the host's Lua tables to fit their
contents: a Lua table keeps the capacity of its busiest moment, and how
busy depends on how much garbage the collector let pile up, so without it
the figures would differ by a few hundred KB from run to run without any
leak.  tests/soak/paths.sh runs this file from folders of several path
lengths, because the allocation history (and so any slack a gate would
need) depends on them.

  arbor tests/soak/soak.lua [CYCLES] [SPAWNS]
]]
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"

local CYCLES = tonumber(arg[1]) or 100000
local SPAWNS = tonumber(arg[2]) or 1000000
local BATCH = 10000

core.quiet(true) -- 100,000 crash reports are not the point here

local function measure()
  core.compact()
  return core.memory()
end

-- Crash -> restart cycles: the worker sends its new subject to `births`
-- each time it starts; a crash is requested through that subject.
local function restart_cycles(n)
  local births = process.new_subject()
  local sup = assert(supervisor.start_spec {
    strategy = "one_for_one",
    max_frequency = n + 10,
    frequency_period = 3600,
    init = function(children)
      return children:add(supervisor.worker(function()
        return actor_like(births)
      end))
    end,
  })
  local worker = process.receive(births, 5000)
  for _ = 1, n do
    process.send(worker, "crash")
    worker = assert(process.receive(births, 5000), "no restart")
  end
  supervisor.stop(sup)
end

function actor_like(births)
  local ready = process.new_subject()
  process.spawn_link(function()
    local inbox = process.new_subject()
    process.send(ready, inbox)
    process.send(births, inbox)
    while true do
      if process.receive(inbox) == "crash" then error("asked to crash") end
    end
  end)
  return process.receive(ready)
end

-- Spawned processes: each batch links half of them to a trapping
-- collector, monitors all, sends each a message, then ends them.
local function spawn_batches(total)
  local done = 0
  while done < total do
    local n = math.min(BATCH, total - done)
    local mons = {}
    local inbox = process.new_subject()
    for i = 1, n do
      local pid = process.spawn(function(reply)
        local mine = process.new_subject()
        process.send(reply, mine)
        process.receive(mine)
      end, inbox)
      mons[i] = process.monitor(pid)
      if i % 2 == 0 then process.link(pid) end
    end
    for _ = 1, n do process.send(process.receive(inbox), "go") end
    for i = 1, n do
      process.select(process.new_selector():selecting_process_down(mons[i]))
    end
    done = done + n
  end
end

local function drain_exits()
  local sel = process.new_selector():selecting_trapped_exits()
  while process.select(sel, 0) do end
end

process.trap_exits(true)
restart_cycles(math.min(CYCLES, 5000))
spawn_batches(BATCH)
drain_exits()
local lua0, c0 = measure()
print(string.format("start: lua %d bytes, c %d bytes", lua0, c0))

local t0 = core.now()
restart_cycles(CYCLES)
local t1 = core.now()
spawn_batches(SPAWNS)
local t2 = core.now()
drain_exits()

local lua1, c1 = measure()
print(string.format("%d restart cycles in %d ms, %d processes in %d ms",
                    CYCLES, t1 - t0, SPAWNS, t2 - t1))
print(string.format("end:   lua %d bytes, c %d bytes (delta lua %+d, c %+d)",
                    lua1, c1, lua1 - lua0, c1 - c0))
assert(c1 == c0, "core C memory not back at its starting level")
assert(lua1 == lua0, "Lua memory not back at its starting level")
