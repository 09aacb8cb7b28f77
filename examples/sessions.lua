-- sessions.lua: the seed document, "Chip as part of a Supervision tree",
-- in Lua, step for step.  A supervisor starts a chip registry, three
-- sessions that register themselves under ids 1, 2 and 3, and a "ready"
-- child that hands the registry back to the main process.  The context
-- (caller, registry, id) is threaded from child to child by `returning`.
--
--   scripts/run examples/sessions.lua
local process = require "process"
local supervisor = require "supervisor"
local chip = require "chip"

-- A context record helps carry state around the supervisor:
-- Context(caller, registry, id).
local function Context(caller, registry, id)
  return { caller = caller, registry = registry, id = id }
end

-- The registry child spec first starts the registry.
local function registry_spec()
  return supervisor.worker(function(_caller)
    return chip.start("sessions")
  end)
  -- After starting, turn the argument (the caller) into a context for
  -- the sessions we want to register.
  :returning(function(caller, registry)
    return Context(caller, registry, 1)
  end)
end

-- Mock helper to start a session: a subject registered under its id.
-- The subject is owned by the process running the start function (the
-- supervisor), so this child has no process of its own.
local function start_session(registry, id)
  local session = process.new_subject()
  chip.register(registry, id, session)
  return session
end

local function session_spec()
  return supervisor.worker(function(context)
    return start_session(context.registry, context.id)
  end)
  -- Increment the id for the next session.
  :returning(function(context, _game_session)
    return Context(context.caller, context.registry, context.id + 1)
  end)
end

-- Helper to return the registry's subject to the main flow: a no-op
-- child whose `returning` sends the registry back to the caller.
local function ready()
  return supervisor.worker(function(_context)
    return process.new_subject()
  end)
  :returning(function(context, _self)
    process.send(context.caller, context.registry)
    return nil
  end)
end

local self = process.new_subject()

local sup = assert(supervisor.start_spec {
  argument = self,
  max_frequency = 5,
  frequency_period = 1,
  init = function(children)
    return children
      -- First spawn the registry.
      :add(registry_spec())
      -- Then spawn all sessions.
      :add(session_spec())
      :add(session_spec())
      :add(session_spec())
      -- Finally notify the main process we're ready.
      :add(ready())
  end,
})

-- The ready helper sends back a message with our registry.
local registry = assert(process.receive(self, 500))
local members = chip.members(registry, 2, 50)
assert(#members == 1, "expected exactly one session 2")
print(string.format("registry %s: session 2 is %s", tostring(registry),
                    tostring(members[1])))
print(string.format("supervisor %s runs %d children", tostring(sup),
                    supervisor.count_children(sup).specs))
