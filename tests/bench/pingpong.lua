-- pingpong: two processes, N round trips of an integer.  Each knows the
-- other's subject from the start (as pingpong.erl's know the pids), so a
-- message is just the integer.
--
--   arbor tests/bench/pingpong.lua [N]    (default 1000000)
local process = require "process"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 1000000
local new_subject, send, receive, spawn =
  process.new_subject, process.send, process.receive, process.spawn

local function pong(hand)
  local inbox = new_subject()
  send(hand, inbox)
  local ping = receive(inbox)
  while true do
    local k = receive(inbox)
    send(ping, k)
    if k == 0 then return end
  end
end

local function ping(hand, pong_inbox, done)
  local inbox = new_subject()
  send(pong_inbox, inbox)
  send(hand, inbox)
  receive(inbox) -- "go"
  for k = n - 1, 0, -1 do
    send(pong_inbox, k)
    receive(inbox)
  end
  send(done, true)
end

local hand, done = new_subject(), new_subject()
spawn(pong, hand)
local pong_inbox = receive(hand)
spawn(ping, hand, pong_inbox, done)
local ping_inbox = receive(hand)
local t0 = core.now()
send(ping_inbox, "go")
receive(done)
local ms = core.now() - t0
print(string.format("RESULT pingpong %.1f ms", ms))
print(string.format("RESULT pingpong_rate %.0f trips/s", n / (ms / 1000)))
