-- chat/server.lua: a TCP chat server as a supervision tree, run as a
-- service (the script returns the tree; the host serves it).
--
--   arbor run --watch examples/chat/server.lua [PORT]   (default 7777)
--
-- Then `nc 127.0.0.1 7777` (or `socat - TCP:127.0.0.1:7777`): the server
-- asks for a room and a name, then every line you type goes to everyone
-- in your room.  "/who" lists the room, "/crash" makes your own session
-- fail on purpose (only your connection drops), "/quit" leaves.
--
-- The tree (rest_for_one):
--   rooms       a chip registry; each session registers its inbox under
--               its room, so a room's members are a chip group (the
--               seed's `sessions`, with real connections)
--   acceptors   a supervisor of ACCEPTORS acceptor processes; each one
--               listens on the same port (reuseport: the kernel spreads
--               connections over them) and starts one session process per
--               connection
-- A session is not linked to its acceptor: a session that fails takes
-- only its own connection with it (its socket closes with it and chip
-- drops its inbox from the room), and an acceptor that fails is
-- restarted without touching the sessions it started.
local process = require "process"
local supervisor = require "supervisor"
local chip = require "chip"
local net = require "net"

local PORT = tonumber(arg and arg[1]) or 7777
local ACCEPTORS = 4

-- One connection: asks for a room and a name, registers in the room,
-- then relays lines both ways until the client leaves.
local function session(s, rooms)
  -- The acceptor gives us the socket right after spawning us, and may be
  -- preempted in between: wait until it is ours (or the acceptor gone).
  while s:owner() ~= process.self() do
    local owner = s:owner() -- nil once closed
    if not (owner and process.is_alive(owner)) then return end
    process.sleep(0)
  end
  local function say(text) s:send(text .. "\n") end
  say("welcome to arbor chat; room?")
  local room = s:receive()
  if not room or room == "" then return s:close() end
  say("name?")
  local name = s:receive()
  if not name or name == "" then return s:close() end
  local inbox = process.new_subject()
  chip.register(rooms, room, inbox)
  local function others()
    local list = {}
    for _, member in ipairs(chip.members(rooms, room)) do
      if member ~= inbox then list[#list + 1] = member end
    end
    return list
  end
  for _, member in ipairs(others()) do
    process.send(member, {from = name, text = "(joined)"})
  end
  say(string.format("you are %s in room %s, with %d other(s)", name, room,
                    #others()))
  local selector = process.new_selector()
    :selecting_socket(s)
    :selecting(inbox, function(m) return {heard = m} end)
  while true do
    s:receive_as_message()
    local m = process.select(selector)
    while m.heard do -- lines from others, until our socket has news
      say(string.format("[%s] %s: %s", room, m.heard.from, m.heard.text))
      m = process.select(selector)
    end
    if m.closed or m.error or m.data == "/quit" then break end
    if m.data == "/crash" then error("session of " .. name .. " crashed on request") end
    if m.data == "/who" then
      say(string.format("%d in %s", #others() + 1, room))
    elseif m.data ~= "" then
      for _, member in ipairs(others()) do
        process.send(member, {from = name, text = m.data})
      end
    end
  end
  for _, member in ipairs(others()) do
    process.send(member, {from = name, text = "(left)"})
  end
  s:close()
end

-- An acceptor: listens (sharing the port with the others), then accepts
-- forever, handing each connection to a session process of its own.
local function acceptor(n)
  return supervisor.worker(function(rooms)
    local ready = process.new_subject()
    process.spawn_link(function()
      local listener, err = net.listen {host = "127.0.0.1", port = PORT,
                                        packet = "line", reuseport = true,
                                        backlog = 1024}
      if not listener then
        process.send(ready, {err = err})
        return
      end
      local inbox = process.new_subject()
      process.send(ready, {inbox = inbox})
      if n == 1 then
        print(string.format("chat: %d acceptors on 127.0.0.1:%d", ACCEPTORS,
                            select(2, listener:address())))
        io.stdout:flush()
      end
      while true do
        local s = net.accept(listener)
        if s then
          local pid = process.spawn(session, s, rooms)
          s:give_to(pid)
        end
      end
    end)
    local r = process.receive(ready, 5000)
    if r == nil then return nil, "acceptor " .. n .. " did not start" end
    if r.err then return nil, r.err end
    return r.inbox
  end):id("acceptor " .. n)
end

return supervisor.spec {
  name = "chat",
  strategy = "rest_for_one",
  max_frequency = 5,
  frequency_period = 10,
  init = function(children)
    return children
      :add(supervisor.worker(function() return chip.start("chat_rooms") end)
        :id("rooms")
        :returning(function(_, rooms) return rooms end))
      :add(supervisor.supervisor(supervisor.spec {
        name = "acceptors",
        strategy = "one_for_one",
        max_frequency = 10,
        frequency_period = 5,
        init = function(pool)
          for n = 1, ACCEPTORS do pool = pool:add(acceptor(n)) end
          return pool
        end,
      }):id("acceptors"))
  end,
}
