-- test_pg: a chip registry mirrored into Erlang's pg, both directions,
-- with delisting on death and on disconnect, and the seed: an Erlang
-- node finds arbor's sessions in a pg group and messages them.
package.path = "./?.lua;" .. package.path
local D = require "distlib"
local lib, A = D.lib, D.A
local process = require "process"
local chip = require "chip"
local dist = require "dist"
local test = lib.test

local tuple = dist.tuple
lib.quiet()
D.start()

-- A session: a process with a subject in group "sessions" that answers
-- {hello, From, I} with {welcome, I, self-subject} to the BEAM pid, and
-- ends on "stop".
local function start_session(reg)
  local ready = process.new_subject()
  local pid = process.spawn(function()
    local inbox = process.new_subject()
    chip.register(reg, "sessions", inbox)
    process.send(ready, inbox)
    while true do
      local m = process.receive(inbox)
      if m == "stop" then return end
      if dist.is_tuple(m) and m[1] == A.hello then
        dist.send(m[2], tuple(A.welcome, m[3], inbox))
      end
    end
  end)
  return pid, process.receive(ready, 5000)
end

local reg = assert(chip.start())
local sessions = {}
for i = 1, 2 do sessions[i] = { start_session(reg) } end

-- Waits on the peer until pg:get_members(Group) has N members, then
-- returns them (pg:monitor reports each change; no polling).
local function beam_members(group, n)
  return D.eval(string.format([[
    {Ref, Init} = pg:monitor(%s),
    Wait = fun W(Ms) when length(Ms) >= %d -> Ms;
               W(Ms) -> receive {Ref, join, _, New} -> W(New ++ Ms);
                                {Ref, leave, _, Gone} -> W(Ms -- Gone)
                        after 10000 -> {timeout, Ms} end end,
    R = Wait(Init), pg:demonitor(Ref), R.]], group, n))
end

test("arbor members appear in pg:get_members on the BEAM node", function()
  assert(dist.pg(reg))
  local ms = beam_members("sessions", 2)
  lib.eq(#ms, 2, "two members: " .. D.show(ms))
  local seen = {}
  for _, s in ipairs(ms) do seen[s] = true end
  lib.ok(seen[sessions[1][2]] and seen[sessions[2][2]],
         "the members are our sessions' subjects")
  -- one registered after the mirror started joins too
  sessions[3] = { start_session(reg) }
  lib.eq(#beam_members("sessions", 3), 3)
  lib.eq(#D.eval("pg:get_members(sessions)."), 3, "get_members")
  lib.same(D.eval("pg:get_local_members(sessions)."), {}, "none local there")
end)

local workers
test("BEAM members appear in chip.members and take messages", function()
  workers = D.eval([[
    Spawn = fun() -> spawn(fun Loop() ->
              receive {ping, F} -> F ! {pong, self()}, Loop(); stop -> ok end
            end) end,
    W1 = Spawn(), W2 = Spawn(), W3 = Spawn(),
    ok = pg:join(workers, [W1, W2]),
    ok = pg:join({not_a, chip_group}, W3),
    [W1, W2, W3].]])
  assert(dist.pg_sync(reg))
  local ms = chip.members(reg, "workers")
  lib.eq(#ms, 2, "two BEAM workers")
  local owners = {}
  for _, s in ipairs(ms) do owners[process.subject_owner(s)] = s end
  lib.ok(owners[workers[1]] and owners[workers[2]], "owned by the BEAM pids")
  local reply = process.new_subject()
  for _, s in ipairs(ms) do process.send(s, tuple(A.ping, reply)) end
  local got = {}
  for _ = 1, 2 do got[D.await(reply)[2]] = true end
  lib.ok(got[workers[1]] and got[workers[2]], "both answered")
  lib.eq(#chip.groups(reg), 2, "sessions and workers only")
end)

test("a BEAM member that dies leaves chip", function()
  D.eval(string.format([[
    W = list_to_pid("%s"),
    {Ref, _} = pg:monitor(workers), exit(W, kill),
    receive {Ref, leave, workers, _} -> ok end,
    sys:get_state(pg), ok.]], tostring(workers[1]):gsub("^<[^.]*", "<0")))
  assert(dist.pg_sync(reg))
  local ms = chip.members(reg, "workers")
  lib.eq(#ms, 1)
  lib.ok(process.subject_owner(ms[1]) == workers[2], "the other one stays")
end)

test("an arbor member that dies leaves pg on the BEAM node", function()
  local reply = D.eval_async([[
    {Ref, _} = pg:monitor(sessions), ReplyTo ! ready,
    receive {Ref, leave, sessions, L} -> L after 10000 -> timeout end.]])
  lib.eq(D.await(reply), A.ready)
  process.send(sessions[1][2], "stop")
  local r = D.await(reply)
  lib.eq(r[1], A.ok)
  lib.same(r[2], { sessions[1][2] }, "the stopped session left")
  lib.eq(#D.eval("pg:get_members(sessions)."), 2)
end)

test("the seed: an Erlang node finds arbor's sessions in pg and messages them", function()
  local found = D.eval([[
    Ms = pg:get_members(sessions),
    N = length(Ms),
    [M ! {hello, self(), I} || {I, M} <- lists:zip(lists:seq(1, N), Ms)],
    [receive {welcome, I, S} -> S after 5000 -> timeout end
     || I <- lists:seq(1, N)].]])
  lib.eq(#found, 2)
  local live = { [sessions[2][2]] = true, [sessions[3][2]] = true }
  for _, s in ipairs(found) do lib.ok(live[s], "a live session answered") end
  lib.ok(found[1] ~= found[2], "two different sessions")
end)

test("a lost connection delists both ways, and a new one mirrors again", function()
  local reply = D.eval_async([[
    {Ref, _} = pg:monitor(sessions), ReplyTo ! ready,
    receive {Ref, leave, sessions, L} -> length(L) after 10000 -> timeout end.]])
  lib.eq(D.await(reply), A.ready)
  dist.disconnect(D.peer)
  lib.same(chip.members(reg, "workers"), {}, "BEAM members left at once")
  -- the peer's result comes when it dials back: it saw both sessions go
  local r = D.await(reply)
  lib.eq(r[2], 2, "the BEAM node dropped arbor's members")
  lib.eq(#beam_members("sessions", 2), 2, "mirrored again after reconnecting")
  assert(dist.pg_sync(reg))
  lib.eq(#chip.members(reg, "workers"), 1, "the BEAM worker is back")
end)

dist.stop()
