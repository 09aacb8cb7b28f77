-- registry: S subjects in G groups (S/G per group), arbor's chip.
--   join:    the bench process registers each subject (one call per
--            subject; the subjects belong to S idle processes);
--   members: K calls of chip.members on groups of S/G members;
--   delist:  kill every process, then until the registry has no groups
--            left.  arbor delists a process's subjects as it dies, so this
--            is the time to kill and reap S processes; registry.erl does
--            the same with pg, where delisting happens in pg's server.
-- Same scheme in registry.erl.
--
--   arbor tests/bench/registry.lua [S [G [K]]]   (default 100000 1000 100000)
local process = require "process"
local chip = require "chip"
local core = require "arbor.core"

local S = math.tointeger(tonumber(arg[1])) or 100000
local G = math.tointeger(tonumber(arg[2])) or 1000
local K = math.tointeger(tonumber(arg[3])) or 100000
local new_subject, send, receive, spawn =
  process.new_subject, process.send, process.receive, process.spawn
local register, members = chip.register, chip.members
local now = core.now

local function idle(hand)
  local inbox = new_subject()
  send(hand, inbox)
  receive(inbox)
end

local reg = assert(chip.start())
local hand = new_subject()
local pids, subjects = {}, {}
for i = 1, S do pids[i] = spawn(idle, hand) end
for i = 1, S do subjects[i] = receive(hand) end

local t0 = now()
for i = 1, S do register(reg, i % G, subjects[i]) end
local join_ms = now() - t0
assert(#members(reg, 1) == S // G)

t0 = now()
for k = 1, K do members(reg, k % G) end
local members_ms = now() - t0

local m = process.monitor(pids[S])
t0 = now()
for i = 1, S do process.kill(pids[i]) end
process.select(process.new_selector():selecting_process_down(m))
while #chip.groups(reg) > 0 do process.sleep(1) end
local delist_ms = now() - t0

print(string.format("RESULT registry_join %.3f us", join_ms * 1000 / S))
print(string.format("RESULT registry_members %.3f us", members_ms * 1000 / K))
print(string.format("RESULT registry_delist %.1f ms", delist_ms))
