-- test_seed: the seed document ("Chip as part of a Supervision tree") end
-- to end, with assertions: a supervisor starts a chip registry named
-- "sessions", three sessions that register under ids 1, 2 and 3 through
-- context threading, and a "ready" child that sends the registry back.
-- Killing the registry (rest_for_one) restarts the sessions after it,
-- which register again in the new, empty registry.
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local chip = require "chip"

local no_message = lib.no_message

local function Context(caller, registry, id)
  return { caller = caller, registry = registry, id = id }
end

local function registry_spec()
  return supervisor.worker(function(_caller)
    return chip.start("sessions")
  end):returning(function(caller, registry)
    return Context(caller, registry, 1)
  end)
end

local function start_session(registry, id)
  local session = process.new_subject()
  chip.register(registry, id, session)
  return session
end

local function session_spec()
  return supervisor.worker(function(context)
    return start_session(context.registry, context.id)
  end):returning(function(context, _session)
    return Context(context.caller, context.registry, context.id + 1)
  end)
end

local function ready()
  return supervisor.worker(function(_context)
    return process.new_subject()
  end):returning(function(context, _self)
    process.send(context.caller, context.registry)
    return nil
  end)
end

local function start_tree(caller)
  return supervisor.start_spec {
    argument = caller,
    max_frequency = 5,
    frequency_period = 1,
    init = function(children)
      return children
        :add(registry_spec())
        :add(session_spec())
        :add(session_spec())
        :add(session_spec())
        :add(ready())
    end,
  }
end

-- The sessions of ids 1..3: exactly one subject each; returns them.
local function sessions_of(registry, what)
  local found = {}
  for id = 1, 3 do
    local ms = chip.members(registry, id, 50)
    lib.eq(#ms, 1, what .. ": members of " .. id)
    found[id] = ms[1]
  end
  lib.ok(found[1] ~= found[2] and found[2] ~= found[3]
         and found[1] ~= found[3], what .. ": three distinct sessions")
  lib.same(chip.members(registry, 4, 50), {}, what .. ": no session 4")
  return found
end

lib.test("the seed: registry, three sessions, ready", function()
  local self = process.new_subject()
  local sup, err = start_tree(self)
  lib.ok(sup ~= nil, "supervisor started: " .. tostring(err))
  local registry = process.receive(self, 500)
  lib.ok(registry ~= nil, "the ready child sent the registry")
  lib.ok(rawequal(registry, chip.from("sessions")), "it is \"sessions\"")
  local members = chip.members(registry, 2, 50)
  lib.eq(#members, 1, "exactly one session 2")
  -- Context threading gave ids 1, 2, 3 in order, one session each.
  local sessions = sessions_of(registry, "at start")
  lib.ok(rawequal(sessions[2], members[1]), "the same session 2")
  local counts = supervisor.count_children(sup)
  lib.eq(counts.specs, 5, "five children")
  no_message(self, "ready sent exactly once")
  supervisor.stop(sup)
  lib.eq(chip.from("sessions"), nil, "the name is free after stop")
  lib.no_leftovers()
end)

lib.test("the seed: killing the registry restarts and re-registers",
         function()
  local self = process.new_subject()
  local sup = assert(start_tree(self))
  local old = process.receive(self, 500)
  local old_sessions = sessions_of(old, "before")
  local kids = supervisor.which_children(sup)
  local old_pid = process.subject_owner(old)
  lib.ok(kids[1].pid == old_pid, "child 1 is the registry process")
  local m = process.monitor(old_pid)
  process.kill(old_pid)
  local d = process.select(process.new_selector():selecting_process_down(m),
                           1000)
  lib.ok(d ~= nil, "the registry's DOWN arrived")
  lib.eq(d.reason, "killed", "the registry was killed")
  -- Synchronise: the supervisor handles the exit before this request.
  kids = supervisor.which_children(sup)
  lib.eq(#kids, 5, "five children")
  for i, k in ipairs(kids) do
    lib.eq(k.status, "running", "child " .. i .. " status")
  end
  lib.eq(kids[1].restarts, 1, "the registry restarted once")
  lib.ok(kids[1].pid ~= old_pid, "a new registry process")
  local new = chip.from("sessions")
  lib.ok(new ~= nil, "\"sessions\" is registered again")
  lib.ok(not rawequal(new, old), "a new registry")
  lib.ok(process.subject_owner(new) == kids[1].pid, "the new child owns it")
  -- rest_for_one: ready ran again and sent the new registry.
  local again = process.receive(self, 500)
  lib.ok(rawequal(again, new), "ready sent the new registry")
  no_message(self, "ready sent once more, not twice")
  -- Each id has exactly one session again, fresh ones, in the new registry.
  local new_sessions = sessions_of(new, "after")
  for id = 1, 3 do
    lib.ok(new_sessions[id] ~= old_sessions[id],
           "session " .. id .. " was started again")
  end
  local groups = chip.groups(new)
  table.sort(groups)
  lib.same(groups, { 1, 2, 3 }, "only the three ids")
  lib.raises(function() chip.members(old, 2, 50) end, "not running",
             "the old registry")
  supervisor.stop(sup)
  lib.eq(chip.from("sessions"), nil, "the name is free after stop")
  lib.no_leftovers()
end)
