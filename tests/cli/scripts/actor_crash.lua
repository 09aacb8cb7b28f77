-- tests/cli/test_actor_report.sh: actors that crash, so their crash
-- reports can be read: one raises on a message (after one it handled),
-- one whose loop returns nil, one whose state is large.
local actor = require "actor"
local process = require "process"
process.trap_exits(true)
local exits = process.new_selector():selecting_trapped_exits()

local raiser = actor.start({ count = 1 }, function(msg, s)
  if msg[1] == "crash" then error("boom on " .. msg[1]) end
  return actor.continue({ count = s.count + 1 })
end)
process.send(raiser, { "inc" })
process.send(raiser, { "crash", 1, 2, { deep = true } })
process.select(exits, 5000)

local returns_nil = actor.start("the state", function(msg, s)
  return nil -- the mistake the report must point at (its loop: line 17)
end)
process.send(returns_nil, "hello")
process.select(exits, 5000)

local big = actor.start({ blob = string.rep("x", 100000) }, function(msg, s)
  error("big state")
end)
process.send(big, string.rep("m", 100000))
process.select(exits, 5000)
