-- copy: what message isolation costs.  A sender sends N values to a
-- receiver, in bursts of 100 (the receiver takes 100, then acks with an
-- integer, so queues stay short and the copies become garbage at the
-- rate they are made); each send deep-copies the value (arbor's message
-- isolation, done in C).  Two values: a 10-field record (a table of
-- strings, integers, a float and a boolean) and a 1,000-element array of
-- integers.  Time per message, in microseconds.  Same scheme in copy.erl,
-- which sends the equivalent map (atom keys, binaries for strings) and
-- list; Erlang copies every message into the receiver's heap as well.
--
--   arbor tests/bench/copy.lua [N_RECORDS [N_ARRAYS]]  (200000 20000)
local process = require "process"
local core = require "arbor.core"

local n_records = math.tointeger(tonumber(arg[1])) or 200000
local n_arrays = math.tointeger(tonumber(arg[2])) or 20000
local BURST = 100
local new_subject, send, receive, spawn =
  process.new_subject, process.send, process.receive, process.spawn

local function receiver(hand)
  local inbox = new_subject()
  send(hand, inbox)
  local ack = receive(inbox)
  while true do
    for _ = 1, BURST do receive(inbox) end
    send(ack, true)
  end
end

-- Microseconds per message for n sends of value (n a multiple of BURST).
local function run(value, n)
  local hand, ack = new_subject(), new_subject()
  local pid = spawn(receiver, hand)
  local inbox = receive(hand)
  send(inbox, ack)
  local t0 = core.now()
  for _ = 1, n // BURST do
    for _ = 1, BURST do send(inbox, value) end
    receive(ack)
  end
  local ms = core.now() - t0
  process.kill(pid)
  return ms * 1000 / n
end

local record = { name = "alice", email = "alice@example.com", city = "Oslo",
                 zip = "0150", id = 123456, age = 34, visits = 1017,
                 score = 97.5, active = true, role = "admin" }
local array = {}
for i = 1, 1000 do array[i] = i end

print(string.format("RESULT copy_record %.3f us",
                    run(record, math.max(BURST, n_records // BURST * BURST))))
print(string.format("RESULT copy_array %.3f us",
                    run(array, math.max(BURST, n_arrays // BURST * BURST))))
