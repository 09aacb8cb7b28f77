-- test_net: the net module, passive mode: TCP on 127.0.0.1 and Unix
-- sockets, packet framing in C, backpressure, ownership.
local lib = require "testlib"
local process = require "process"
local net = require "net"
local fs = require "fs"

local send, receive, spawn = process.send, process.receive, process.spawn
lib.quiet()

local function fd_count() return #assert(fs.list("/proc/self/fd")) end

-- Polls (with a deadline) until the host has n descriptors open: closing
-- a handle completes on a later loop turn.
local function await_fd_count(n, what)
  for _ = 1, 400 do
    if fd_count() == n then break end
    process.sleep(5)
  end
  lib.eq(fd_count(), n, what)
end

local function err_kind(what, expected, ok, err)
  lib.eq(ok, nil, what .. ": result")
  lib.ok(type(err) == "table", what .. ": err is a table")
  lib.eq(err.kind, expected, what .. ": err.kind (" .. tostring(err) .. ")")
  return err
end

-- err_kind, and the error names where: err.address is address, and its
-- message is one line naming the address after the operation.
local function err_at(what, expected, address, ok, err)
  err_kind(what, expected, ok, err)
  lib.eq(err.address, address, what .. ": err.address")
  local text = tostring(err)
  lib.ok(text:find(" " .. address .. ": ", 1, true),
         what .. ": the message names the address (" .. text .. ")")
  lib.ok(not text:find("\n"), what .. ": one line")
  return err
end

local function listen(opts)
  opts = opts or {}
  opts.host, opts.port = opts.host or "127.0.0.1", opts.port or 0
  return assert(net.listen(opts))
end

-- A client process connecting to port: runs fn(socket) and sends what it
-- returns to the subject it hands back.
local function client(port, opts, fn)
  local out = process.new_subject()
  local pid = spawn(function()
    local o = port and {host = "127.0.0.1", port = port} or {}
    for k, v in pairs(opts or {}) do o[k] = v end
    local c = assert(net.connect(o))
    send(out, fn(c))
  end)
  return out, pid
end

-- libuv keeps one descriptor in reserve per loop from its first listen
-- on (its answer to EMFILE): count from after that.
assert(net.listen {host = "127.0.0.1", port = 0}):close()
local base_fds = fd_count()

lib.test("echo over TCP; address and peer", function()
  local l = listen()
  local host, port = l:address()
  lib.eq(host, "127.0.0.1", "listener host")
  lib.ok(math.type(port) == "integer" and port > 0, "port 0 gave a real port")
  local out = client(port, nil, function(c)
    assert(c:send("ping"))
    local got = {}
    while #table.concat(got) < 4 do got[#got + 1] = assert(c:receive(2000)) end
    local _, local_port = c:peer()
    c:close()
    return {table.concat(got), local_port}
  end)
  local s = assert(net.accept(l, 2000))
  lib.ok(tostring(s):find("^Socket<"), "tostring")
  local phost, pport = s:peer()
  lib.eq(phost, "127.0.0.1", "peer host")
  lib.ok(pport > 0, "peer port")
  local data = ""
  while #data < 4 do data = data .. assert(s:receive(2000)) end
  lib.eq(data, "ping", "received")
  assert(s:send(data))
  local r = receive(out, 2000)
  lib.eq(r[1], "ping", "echoed")
  lib.eq(r[2], port, "the client's peer is the listener's port")
  local e = err_at("the peer closed", "closed", phost .. ":" .. pport,
                   s:receive(2000))
  lib.ok(tostring(e):find("^receive "), "names the operation: " .. tostring(e))
  assert(s:close())
  assert(l:close())
  err_at("accept on a closed listener", "closed", "127.0.0.1:" .. port,
         net.accept(l, 0))
  err_at("send on a closed socket", "closed", phost .. ":" .. pport,
         s:send("x"))
  lib.no_leftovers()
end)

lib.test("line mode: lines split across writes, \\r\\n stripped", function()
  local l = listen {packet = "line"}
  local _, port = l:address()
  local gates = process.new_subject()
  local out = client(port, nil, function(c)
    local go = process.new_subject()
    send(gates, go)
    assert(c:send("first li"))
    receive(go)
    assert(c:send("ne\r\nsecond\nthi"))
    receive(go)
    assert(c:send("rd\n\nlast without newline"))
    c:close()
    return "sent"
  end)
  local s = assert(net.accept(l, 2000))
  local go = receive(gates, 2000)
  err_kind("half a line is not a packet", "timeout", s:receive(50))
  send(go, true)
  lib.eq(s:receive(2000), "first line", "a line split across writes")
  lib.eq(s:receive(2000), "second", "the next line from the same write")
  send(go, true)
  lib.eq(s:receive(2000), "third", "split again")
  lib.eq(s:receive(2000), "", "an empty line")
  lib.eq(receive(out, 2000), "sent", "client done")
  err_kind("an unterminated tail at close", "closed", s:receive(2000))
  s:close()
  l:close()
  lib.no_leftovers()
end)

lib.test("line mode: a line over 1 MiB is emsgsize", function()
  local l = listen {packet = "line"}
  local _, port = l:address()
  local out = client(port, nil, function(c)
    assert(c:send(string.rep("x", (1 << 20) + 10) .. "\n"))
    return "sent"
  end)
  local s = assert(net.accept(l, 2000))
  err_kind("long line", "emsgsize", s:receive(5000))
  lib.eq(receive(out, 5000), "sent", "client done")
  s:close()
  l:close()
  lib.no_leftovers()
end)

lib.test("packet 4: frames split across writes; send adds the prefix",
         function()
  local l = listen {packet = 4}
  local _, port = l:address()
  local gates = process.new_subject()
  local function frame(s) return string.pack(">I4", #s) .. s end
  local big = string.rep("0123456789", 100000)
  local out = client(port, nil, function(c) -- raw on this side
    local go = process.new_subject()
    send(gates, go)
    local bytes = frame("hello") .. frame("") .. frame(big)
    assert(c:send(bytes:sub(1, 2)))
    receive(go)
    assert(c:send(bytes:sub(3, 11))) -- the rest of frame 1, 2 bytes of 2
    receive(go)
    assert(c:send(bytes:sub(12)))
    local back = ""
    while #back < 4 + 5 do back = back .. assert(c:receive(2000)) end
    return back
  end)
  local s = assert(net.accept(l, 2000))
  local go = receive(gates, 2000)
  err_kind("two bytes of a header", "timeout", s:receive(30))
  send(go, true)
  lib.eq(s:receive(2000), "hello", "a frame whose header was split")
  send(go, true)
  lib.eq(s:receive(2000), "", "an empty frame")
  local got = s:receive(5000)
  lib.ok(got == big, "a 1 MB frame")
  assert(s:send("reply"))
  lib.eq(receive(out, 2000), frame("reply"), "send added the length prefix")
  s:close()
  l:close()
  lib.no_leftovers()
end)

lib.test("Unix-domain sockets", function()
  -- Named after this host's pid: runs at the same time never share it.
  local pid = assert(fs.read("/proc/self/stat")):match("^(%d+)")
  local path = (os.getenv("TMPDIR") or "/tmp") .. "/arbor-test-net-" .. pid .. ".sock"
  local l = assert(net.listen {path = path, packet = "line"})
  lib.eq(l:address(), path, "address is the path")
  local out = client(nil, {path = path, packet = "line"},
                     function(c)
    assert(c:send("over unix\n"))
    return c:receive(2000)
  end)
  local s = assert(net.accept(l, 2000))
  lib.eq(s:receive(2000), "over unix", "received")
  assert(s:send("and back\n"))
  lib.eq(receive(out, 2000), "and back", "replied")
  err_kind("listen on a path in use", "eaddrinuse", net.listen {path = path})
  lib.eq(fs.stat(path).type, "other", "the socket file exists while listening")
  s:close()
  l:close()
  err_kind("closing the listener removes its file", "enoent", fs.stat(path))
  lib.no_leftovers()
end)

lib.test("errors and timeouts name what failed", function()
  local l = listen()
  local _, port = l:address()
  local e = err_at("address in use", "eaddrinuse", "127.0.0.1:" .. port,
                   net.listen {host = "127.0.0.1", port = port})
  lib.ok(tostring(e):find("address already in use", 1, true),
         "names the cause: " .. tostring(e))
  l:close()
  e = err_at("nobody listens", "econnrefused", "127.0.0.1:" .. port,
             net.connect {host = "127.0.0.1", port = port})
  lib.ok(tostring(e):find("^connect 127.0.0.1:" .. port .. ": connection refused$"),
         "names the operation, address and cause: " .. tostring(e))
  local nowhere = "/nonexistent-dir-" .. port .. "/sock"
  e = err_at("no such Unix socket", "enoent", nowhere,
             net.connect {path = nowhere})
  lib.ok(tostring(e):find("no such file or directory", 1, true),
         "names the cause: " .. tostring(e))
  -- A name is resolved without blocking the host, and its addresses are
  -- tried in turn (here the one of 127.0.0.1 answers).
  local named = listen()
  local _, named_port = named:address()
  local by_name = assert(net.connect {host = "localhost", port = named_port})
  local accepted = assert(net.accept(named, 2000))
  local phost, pport = by_name:peer()
  lib.same({phost, pport}, {"127.0.0.1", named_port}, "connected by name")
  by_name:close()
  accepted:close()
  named:close()
  err_at("a name that does not resolve", "nxdomain", "nonexistent.invalid:80",
         net.connect {host = "nonexistent.invalid", port = 80})
  local l2 = listen()
  local _, port2 = l2:address()
  err_at("accept timeout", "timeout", "127.0.0.1:" .. port2, net.accept(l2, 20))
  local out = client(port2, nil, function(c)
    local ok, err = c:receive(30)
    c:close()
    return {ok, err and err.kind}
  end)
  local s = assert(net.accept(l2, 2000))
  lib.same(receive(out, 2000), {nil, "timeout"}, "receive timeout")
  err_kind("then closed", "closed", s:receive(2000))
  s:close()
  l2:close()
  lib.raises(function() net.listen {host = "127.0.0.1", port = 70000} end,
             "port must be", "bad port")
  lib.raises(function() net.listen {port = 0, packet = 2} end, "packet must be",
             "bad packet")
  lib.raises(function() net.connect {port = 1} end, "needs host", "no host")
  lib.raises(function() net.listen "x" end, "bad argument #1", "not a table")
  lib.no_leftovers()
end)

lib.test("only the owner receives, accepts or closes", function()
  local l = listen()
  local _, port = l:address()
  local out = client(port, nil, function(c)
    assert(c:send("x"))
    return c:receive(2000)
  end)
  local s = assert(net.accept(l, 2000))
  local back = process.new_subject()
  spawn(function()
    local r = {}
    r[1] = select(2, pcall(s.receive, s, 10))
    r[2] = select(2, pcall(s.close, s))
    r[3] = select(2, pcall(net.accept, l, 10))
    r[4] = select(2, pcall(l.close, l))
    r[5] = tostring(s:send("from another process")) -- any process may send
    send(back, r)
  end)
  local r = receive(back, 2000)
  lib.ok(tostring(r[1]):find("socket is owned by another process", 1, true), r[1])
  lib.ok(tostring(r[2]):find("socket is owned by another process", 1, true), r[2])
  lib.ok(tostring(r[3]):find("listener is owned by another process", 1, true), r[3])
  lib.ok(tostring(r[4]):find("listener is owned by another process", 1, true), r[4])
  lib.eq(r[5], "true", "another process sent")
  lib.eq(receive(out, 2000), "from another process", "the peer got it")
  lib.eq(s:receive(2000), "x", "the owner still receives")
  s:close()
  l:close()
  lib.no_leftovers()
end)

lib.test("the owner ending closes its sockets; the peer sees it", function()
  local before = fd_count()
  for _, how in ipairs {"return", "error", "kill"} do
    local ready = process.new_subject()
    local server = spawn(function()
      local l = listen() -- listener and socket: both closed with it
      send(ready, select(2, l:address()))
      local s = assert(net.accept(l, 2000))
      send(ready, {s, l})
      if how == "error" then error("on purpose") end
      if how == "kill" then process.sleep_forever() end
    end)
    local port = receive(ready, 2000)
    local c = assert(net.connect {host = "127.0.0.1", port = port})
    local held = receive(ready, 2000)
    if how == "kill" then process.kill(server) end
    lib.await_down(server)
    err_kind(how .. ": the peer reads end of stream", "closed", c:receive(2000))
    lib.raises(function() held[1]:receive(0) end, "owned by another process",
               how .. ": the handle stays the dead owner's")
    lib.ok(tostring(held[2]):find("closed"), how .. ": its listener closed")
    c:close()
  end
  await_fd_count(before, "every descriptor closed")
  lib.no_leftovers()
end)

lib.test("backpressure: a peer that does not read blocks the sender only",
         function()
  local l = listen()
  local _, port = l:address()
  local chunk = string.rep("z", 64 * 1024)
  local total = 64 * 1024 * 1024 -- far beyond every buffer on the way
  local progress = process.new_subject()
  local sender = spawn(function()
    local c = assert(net.connect {host = "127.0.0.1", port = port})
    for i = 1, total // #chunk do
      assert(c:send(chunk))
      send(progress, i)
    end
    send(progress, "done")
    c:close()
  end)
  local s = assert(net.accept(l, 2000))
  -- The sender runs until the kernel's buffers and 1 MiB of queue are
  -- full, then waits: its progress stops well short of the total.
  local last = 0
  while true do
    local m = receive(progress, 300)
    if m == nil then break end
    lib.ok(m ~= "done", "the sender blocked before sending everything")
    last = m
  end
  lib.ok(last > 0 and last < total // #chunk, "stalled after " .. last .. " chunks")
  -- Nobody else is blocked: a ticker runs while the sender waits.
  local ticks = process.new_subject()
  spawn(function() for i = 1, 3 do process.sleep(1); send(ticks, i) end end)
  for i = 1, 3 do lib.eq(receive(ticks, 2000), i, "ticker runs") end
  lib.no_message(progress, "still blocked")
  -- Reading drains the queue and the sender resumes to the end.
  local got = 0
  while got < total do got = got + #assert(s:receive(5000)) end
  lib.eq(got, total, "every byte arrived")
  local m
  repeat m = receive(progress, 5000) until m == "done" or m == nil
  lib.eq(m, "done", "the sender finished")
  lib.await_down(sender)
  s:close()
  l:close()
  lib.no_leftovers()
end)

lib.test("give_to hands a listener or socket to another process", function()
  local l = listen {packet = "line"}
  local _, port = l:address()
  local handled = process.new_subject()
  -- A handler: takes a socket it is given, echoes one line, then waits
  -- to be told to end.
  local function handler()
    local inbox = process.new_subject()
    local pid = spawn(function()
      local own = process.new_subject()
      send(inbox, own)
      local s = receive(own, 2000)
      local line = s:receive(2000)
      s:send("echo " .. line .. "\n")
      send(handled, line)
      receive(own) -- ends when told: its socket closes with it
    end)
    return pid, receive(inbox, 2000)
  end
  local h_pid, h_inbox = handler()
  -- An acceptor that is given the listener and gives each socket away.
  local acceptor_inbox = process.new_subject()
  local acceptor = spawn(function()
    local own = process.new_subject()
    send(acceptor_inbox, own)
    local lst = receive(own, 2000)
    local s = assert(net.accept(lst, 2000))
    assert(s:give_to(h_pid))
    send(h_inbox, s)
    send(acceptor_inbox, s)
    receive(own) -- told to end: what it gave away stays open
  end)
  local a_inbox = receive(acceptor_inbox, 2000)
  lib.eq(l:owner(), process.self(), "owner() before give_to")
  lib.eq(l:give_to(acceptor), true, "gave the listener")
  lib.eq(l:owner(), acceptor, "owner() after give_to, asked by anyone")
  lib.raises(function() net.accept(l, 0) end, "owned by another process",
             "the old owner cannot accept any more")
  send(a_inbox, l)
  local c = assert(net.connect {host = "127.0.0.1", port = port, packet = "line"})
  assert(c:send("hi\n"))
  lib.eq(receive(handled, 2000), "hi", "the handler received")
  lib.eq(c:receive(2000), "echo hi", "the handler replied")
  local given = receive(acceptor_inbox, 2000)
  lib.eq(given:owner(), h_pid, "the socket's owner() is the handler")
  send(a_inbox, "end")
  lib.await_down(acceptor)
  lib.ok(not tostring(given):find("closed"), "the acceptor's end left the socket open")
  send(h_inbox, "end")
  lib.await_down(h_pid)
  err_kind("the new owner's end closed it", "closed", c:receive(2000))
  lib.eq(given:owner(), nil, "owner() of a closed socket")
  c:close()
  local dead = spawn(function() end)
  lib.await_down(dead)
  local l2 = listen()
  err_kind("giving to a dead process", "noproc", l2:give_to(dead))
  lib.raises(function() l2:give_to("x") end, "bad argument #1", "not a pid")
  l2:close()
  err_kind("giving a closed listener", "closed", l2:give_to(process.self()))
  lib.no_leftovers()
end)

lib.test("200 concurrent clients, one process per connection", function()
  local l = listen {packet = 4}
  local _, port = l:address()
  local n = 200
  local results = process.new_subject()
  -- The server: main accepts and hands each socket to an echo process.
  for i = 1, n do
    spawn(function()
      local c = assert(net.connect {host = "127.0.0.1", port = port, packet = 4})
      local msg = string.rep(string.char(65 + i % 26), i * 37)
      assert(c:send(msg))
      local back = assert(c:receive(5000))
      c:close()
      send(results, back == msg and i or -i)
    end)
  end
  local echoes = {}
  for _ = 1, n do
    local s = assert(net.accept(l, 5000))
    local inbox = process.new_subject()
    local pid = spawn(function()
      local own = process.new_subject()
      send(inbox, own)
      local sock = receive(own, 5000)
      local data = assert(sock:receive(5000))
      assert(sock:send(data))
      err_kind("client closed", "closed", sock:receive(5000))
    end)
    echoes[#echoes + 1] = pid
    local own = receive(inbox, 2000)
    assert(s:give_to(pid))
    send(own, s)
  end
  local seen = {}
  for _ = 1, n do
    local r = receive(results, 10000)
    lib.ok(r and r > 0, "client " .. tostring(r) .. " got its own bytes back")
    seen[r] = true
  end
  for i = 1, n do lib.ok(seen[i], "client " .. i) end
  for _, pid in ipairs(echoes) do lib.await_down(pid) end
  l:close()
  lib.no_leftovers()
end)

lib.test("active once through a selector, mixed with other subjects",
         function()
  local l = listen {packet = "line"}
  local _, port = l:address()
  local gates = process.new_subject()
  spawn(function()
    local gate = process.new_subject()
    send(gates, gate)
    local c = assert(net.connect {host = "127.0.0.1", port = port})
    assert(c:send("one\ntwo\nthree\n"))
    receive(gate) -- closes when told
    c:close()
  end)
  local gate = receive(gates, 2000)
  local s = assert(net.accept(l, 2000))
  local other = process.new_subject()
  local sel = process.new_selector()
    :selecting_socket(s, function(m) m.mapped = true; return m end)
    :selecting(other, function(m) return {other = m} end)
  lib.same({process.select(sel, 30)}, {nil, "timeout"}, "nothing before arming")
  lib.eq(s:receive_as_message(), true, "armed one")
  local m = process.select(sel, 2000)
  lib.eq(m.socket, s, "the same socket object")
  lib.eq(m.data, "one", "first line")
  lib.ok(m.mapped, "mapped by the selector's function")
  -- Passive again: the rest has arrived but is not delivered.
  send(other, "hello")
  lib.eq(process.select(sel, 2000).other, "hello", "other subjects still selected")
  lib.same({process.select(sel, 30)}, {nil, "timeout"}, "one packet per arming")
  s:receive_as_message(2)
  lib.eq(process.select(sel, 2000).data, "two", "second")
  lib.eq(process.select(sel, 2000).data, "three", "third")
  -- The close arrives although nothing is armed.
  send(gate, "close")
  m = process.select(sel, 2000)
  lib.ok(m and m.closed == true and m.socket == s, "closed delivered unarmed")
  lib.same({process.select(sel, 30)}, {nil, "timeout"}, "closed only once")
  s:close()

  -- An error arrives as {socket, error}; a non-owner cannot select it.
  local out = client(port, nil, function(c)
    assert(c:send(string.rep("x", (1 << 20) + 10) .. "\n"))
    return "sent"
  end)
  local s2 = assert(net.accept(l, 2000))
  local back = process.new_subject()
  spawn(function()
    send(back, select(2, pcall(function()
      return process.new_selector():selecting_socket(s2)
    end)))
  end)
  lib.ok(tostring(receive(back, 2000)):find("owned by another process", 1, true),
         "selecting another process's socket raises")
  s2:receive_as_message()
  m = process.select(process.new_selector():selecting_socket(s2), 5000)
  lib.ok(m and m.error and m.error.kind == "emsgsize", "error delivered")
  lib.ok(m.error.address and tostring(m.error):find(m.error.address, 1, true),
         "the error names the address: " .. tostring(m.error))
  lib.eq(receive(out, 5000), "sent", "client done")
  s2:close()
  l:close()
  lib.raises(function() s2:receive_as_message(0) end, "count must be positive",
             "bad count")
  lib.no_leftovers()
end)

lib.test("active mode: packets as byte payloads, in order, across give_to, freed undelivered", function()
  local core = require "arbor.core"
  local l = listen {packet = "line"}
  local _, port = l:address()
  local gates = process.new_subject()
  local peer = spawn(function()
    local gate = process.new_subject()
    local c = assert(net.connect {host = "127.0.0.1", port = port})
    for i = 1, 200 do assert(c:send("line " .. i .. "\n")) end
    send(gates, gate)
    receive(gate) -- closes when told
    c:close()
  end)
  local s = assert(net.accept(l, 2000))
  local gate = receive(gates, 2000)
  local sel = process.new_selector():selecting_socket(s)
  lib.eq(s:receive_as_message(100), true, "armed 100")
  for i = 1, 100 do
    local m = process.select(sel, 2000)
    if not (m and m.socket == s and m.data == "line " .. i) then
      lib.eq(m and m.data, "line " .. i, "packet " .. i .. " of the first owner")
    end
  end
  lib.same({process.select(sel, 30)}, {nil, "timeout"}, "no more than armed")
  -- The next owner gets the rest, on its own subject.
  local out = process.new_subject()
  local inbox = process.new_subject()
  local taker = spawn(function()
    local own = process.new_subject()
    send(inbox, own)
    local got = receive(own, 2000)
    local sel2 = process.new_selector():selecting_socket(got, function(m)
      return m.data or m
    end)
    got:receive_as_message(50)
    local lines = {}
    for _ = 1, 50 do lines[#lines + 1] = process.select(sel2, 2000) end
    send(out, lines)
    got:receive_as_message(50) -- never received: dropped when this ends
    send(out, "armed")
    receive(own) -- until killed
  end)
  local own = receive(inbox, 2000)
  assert(s:give_to(taker))
  send(own, s)
  local lines = receive(out, 2000)
  lib.eq(#lines, 50, "the new owner received 50")
  lib.eq(lines[1], "line 101", "from where the first owner stopped")
  lib.eq(lines[50], "line 150", "in order")
  lib.eq(receive(out, 2000), "armed", "armed the last 50")
  -- The last 50 wait in the taker's subject as byte payloads (polled
  -- with a deadline); killing it drops them, freed (ASan's leak check).
  local waiting
  for _ = 1, 400 do
    waiting = core.proc_info(taker).subject_messages
    if waiting >= 50 then break end
    process.sleep(5)
  end
  lib.eq(waiting, 50, "the last 50 packets wait undelivered")
  process.kill(taker)
  lib.await_down(taker)
  send(gate, "close")
  lib.await_down(peer)
  l:close()
  lib.no_leftovers()
end)

lib.test("UDP: datagrams with their sender, timeouts, ownership", function()
  local a = assert(net.udp {host = "127.0.0.1", port = 0})
  local ahost, aport = a:address()
  lib.eq(ahost, "127.0.0.1", "bound host")
  lib.ok(aport > 0, "port 0 gave a real port")
  local out = process.new_subject()
  local b_pid = spawn(function()
    local b = assert(net.udp {host = "127.0.0.1"})
    local _, bport = b:address()
    send(out, bport)
    local data, host, port = b:receive(2000)
    assert(b:send_to(host, port, "re: " .. data))
    send(out, {data, host, port})
    receive(process.new_subject()) -- waits until killed
  end)
  local bport = receive(out, 2000)
  err_kind("nothing yet", "timeout", a:receive(20))
  assert(a:send_to("127.0.0.1", bport, "ping"))
  local data, host, port = a:receive(2000)
  lib.same({data, host, port}, {"re: ping", "127.0.0.1", bport}, "reply and sender")
  lib.same(receive(out, 2000), {"ping", "127.0.0.1", aport}, "the other side saw us")
  -- Several datagrams queue while nobody reads; empty ones too.
  local c = assert(net.udp {})
  for _, d in ipairs {"1", "", "3"} do assert(c:send_to("127.0.0.1", aport, d)) end
  lib.eq(a:receive(2000), "1", "first")
  lib.eq(a:receive(2000), "", "an empty datagram")
  lib.eq(a:receive(2000), "3", "third")
  -- Ownership: others may send but not receive or close.
  local back = process.new_subject()
  spawn(function()
    local r = {}
    r[1] = select(2, pcall(a.receive, a, 0))
    r[2] = select(2, pcall(a.close, a))
    r[3] = tostring(a:send_to("127.0.0.1", aport, "from elsewhere"))
    send(back, r)
  end)
  local r = receive(back, 2000)
  lib.ok(tostring(r[1]):find("owned by another process", 1, true), r[1])
  lib.ok(tostring(r[2]):find("owned by another process", 1, true), r[2])
  lib.eq(r[3], "true", "another process sent")
  lib.eq(a:receive(2000), "from elsewhere", "received it")
  err_at("port in use", "eaddrinuse", "127.0.0.1:" .. aport,
         net.udp {host = "127.0.0.1", port = aport})
  -- A host name is resolved without blocking the host.
  lib.eq(a:send_to("localhost", aport, "by name"), true, "sent to a name")
  lib.eq(a:receive(2000), "by name", "a datagram sent to localhost arrived")
  err_at("a name that does not resolve", "nxdomain",
         "nonexistent.invalid:" .. aport, a:send_to("nonexistent.invalid", aport, "x"))
  local fds = fd_count()
  process.kill(b_pid)
  lib.await_down(b_pid)
  await_fd_count(fds - 1, "the owner's end closed its UDP socket")
  c:close()
  a:close()
  err_at("receive on a closed socket", "closed", "127.0.0.1:" .. aport,
         a:receive(0))
  lib.no_leftovers()
end)

lib.test("connect times out when the listener's backlog is full", function()
  -- A listener that never accepts, with a backlog of 1: once its queue is
  -- full the kernel drops further SYNs, so a connect waits until its
  -- timeout.
  local l = listen {backlog = 1}
  local _, port = l:address()
  local held, err = {}, nil
  for _ = 1, 64 do
    local c, e = net.connect {host = "127.0.0.1", port = port, timeout = 100}
    if not c then err = e; break end
    held[#held + 1] = c
  end
  err_at("connect into a full backlog", "timeout", "127.0.0.1:" .. port, nil, err)
  for _, c in ipairs(held) do c:close() end
  l:close()
  lib.no_leftovers()
end)

lib.test("reuseport: listeners of several processes share a port", function()
  local first = listen {reuseport = true, packet = "line"}
  local _, port = first:address()
  err_kind("without reuseport the port is taken", "eaddrinuse",
           net.listen {host = "127.0.0.1", port = port})
  -- Each acceptor its own listener on the same port: every connection
  -- is answered by one of them.
  local answers = process.new_subject()
  local acceptors = {}
  for n = 1, 2 do
    local ready = process.new_subject()
    acceptors[n] = spawn(function()
      local l = n == 1 and first or listen {port = port, reuseport = true, packet = "line"}
      send(ready, true)
      while true do
        local s = assert(net.accept(l))
        send(answers, n)
        s:send("acceptor " .. n .. "\n")
        s:close()
      end
    end)
    if n == 1 then first:give_to(acceptors[1]) end
    receive(ready, 2000)
  end
  for _ = 1, 20 do
    local c = assert(net.connect {host = "127.0.0.1", port = port, packet = "line"})
    local line = assert(c:receive(2000))
    lib.ok(line == "acceptor 1" or line == "acceptor 2", line)
    c:close()
  end
  for _ = 1, 20 do lib.ok(receive(answers, 2000), "answered") end
  for _, pid in ipairs(acceptors) do process.kill(pid); lib.await_down(pid) end
  lib.no_leftovers()
end)

lib.test("no descriptor is left open", function()
  collectgarbage()
  await_fd_count(base_fds, "descriptors back to where they started")
end)
