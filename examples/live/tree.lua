-- tree.lua: a service for the "Edit a running tree" walk-through.
--
--   arbor run --watch examples/live/tree.lua
--
-- The script returns a supervisor.spec value instead of starting a tree
-- itself, so the host serves it.  Edit this file or greeter.lua while it
-- runs: the host reloads, restarts only what changed (as the strategy
-- says), and prints one line saying so.  `arbor status
-- examples/live/tree.lua` draws the running tree.
local process = require "process"
local supervisor = require "supervisor"
local chip = require "chip"
local greeter = require "greeter"

local function registry()
  return supervisor.worker(function() return chip.start("live") end)
    :id("registry")
    :returning(function(_, registry) return registry end)
end

local function ticker(name, every_ms)
  return supervisor.worker(function(registry)
    local ready = process.new_subject()
    process.spawn_link(function()
      local inbox = process.new_subject()
      chip.register(registry, "tickers", inbox)
      process.send(ready, inbox)
      while true do
        local msg = process.receive(inbox, every_ms)
        if msg == nil then greeter.tick(name) end
      end
    end)
    return process.receive(ready)
  end):id(name)
end

return supervisor.spec {
  name = "live",
  strategy = "rest_for_one",
  max_frequency = 3,
  frequency_period = 5,
  init = function(children)
    return children
      :add(registry())
      :add(ticker("fast", 2000))
      :add(ticker("slow", 5000))
  end,
}
