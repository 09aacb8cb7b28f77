-- counter.lua: a supervised counter actor.
--
-- The tree is rest_for_one: a chip registry first, then the counter.  The
-- counter registers its subject under "counter" every time it starts, so
-- whoever wants it asks the registry and always gets the live one.
-- Dividing by zero crashes the counter; its supervisor restarts it with a
-- fresh state and the main process carries on.
--
--   scripts/run examples/counter.lua
local process = require "process"
local supervisor = require "supervisor"
local actor = require "actor"
local chip = require "chip"

-- Messages: {op = "add", n = n}, {op = "get", reply = s},
-- {op = "divide", n = n}.
local function counter_loop(msg, count)
  if msg.op == "add" then
    return actor.continue(count + msg.n)
  elseif msg.op == "get" then
    process.send(msg.reply, count)
    return actor.continue(count)
  elseif msg.op == "divide" then
    if msg.n == 0 then error("division by zero") end
    return actor.continue(count // msg.n)
  end
  return actor.continue(count)
end

local function start_counter(registry)
  local counter = actor.start(0, counter_loop)
  chip.register(registry, "counter", counter)
  return counter
end

local sup = assert(supervisor.start_spec {
  name = "counters",
  max_frequency = 3,
  frequency_period = 5,
  init = function(children)
    return children
      :add(supervisor.worker(function() return chip.start("counters") end)
             :id("registry")
             :returning(function(_, registry) return registry end))
      :add(supervisor.worker(start_counter):id("counter"))
  end,
})

local function counter()
  return chip.members(chip.from("counters"), "counter")[1]
end

local function get()
  return process.call(counter(), function(reply)
    return { op = "get", reply = reply }
  end, 1000)
end

process.send(counter(), { op = "add", n = 5 })
print("count is " .. get())

-- Crash it, wait for the old process to go, then use the new one.
local old = counter()
local m = process.monitor(process.subject_owner(old))
process.send(old, { op = "divide", n = 0 })
local down = process.select(process.new_selector():selecting_process_down(m))
print("counter exited: " .. tostring(down.reason))
-- The supervisor handles messages oldest first: the crash's exit signal
-- reached it before this request, so by the time it answers, the new
-- counter is running.
for _, child in ipairs(supervisor.which_children(sup)) do
  print(string.format("  %-8s %-9s %-8s restarts: %d", child.id,
                      tostring(child.pid), child.status, child.restarts))
end
print("new counter: " .. tostring(counter() ~= old) .. ", count is " .. get())
