-- ping_pong.lua: two processes pass a ball back and forth.
--
-- Each process owns a subject (its mailbox for this game) and receives
-- only from it.  The ball carries the subject to reply to, the way
-- Erlang code carries a pid.  Pass a number of rounds as the argument.
--
--   scripts/run examples/ping_pong.lua 100000
local process = require "process"

local rounds = tonumber(arg[1]) or 10
local done = process.new_subject()

-- pong: answers every ball until it gets "stop".
local function pong(ready)
  local inbox = process.new_subject()
  process.send(ready, inbox)
  while true do
    local ball = process.receive(inbox)
    if ball == "stop" then return end
    process.send(ball.reply_to, { reply_to = inbox, n = ball.n })
  end
end

-- ping: serves `rounds` balls, then stops pong and reports.
local function ping(pong_inbox, n)
  local inbox = process.new_subject()
  local started = require("arbor.core").now()
  for i = 1, n do
    process.send(pong_inbox, { reply_to = inbox, n = i })
    local ball = process.receive(inbox)
    assert(ball.n == i)
  end
  process.send(pong_inbox, "stop")
  process.send(done, require("arbor.core").now() - started)
end

process.spawn_link(pong, done)
local pong_inbox = process.receive(done)
process.spawn_link(ping, pong_inbox, rounds)
local ms = process.receive(done)
print(string.format("%d round trips in %d ms", rounds, ms))
