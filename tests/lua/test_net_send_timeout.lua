-- test_net_send_timeout: a peer that never reads cannot hold a sender or
-- a closed socket forever.  socket:send with a send timeout fails with
-- kind "timeout"; a closed socket (or one whose owner ended) flushes for
-- at most its send timeout, then is reset and its descriptor released;
-- close{abort = true} and abort() reset at once.  Real sockets on
-- 127.0.0.1; the peer that never reads is a process of this host that
-- connects and waits for a message.
local lib = require "testlib"
local process = require "process"
local net = require "net"
local fs = require "fs"
local core = require "arbor.core"

local send, receive, spawn = process.send, process.receive, process.spawn
lib.quiet()

local function fd_count() return #assert(fs.list("/proc/self/fd")) end

-- Polls (with a deadline) until the host has n descriptors open.
local function await_fd_count(n, what, deadline_ms)
  local deadline = core.now() + (deadline_ms or 5000)
  while fd_count() ~= n and core.now() < deadline do process.sleep(5) end
  lib.eq(fd_count(), n, what)
end

assert(net.listen {host = "127.0.0.1", port = 0}):close()
local base_fds = fd_count()

local CHUNK = string.rep("x", 256 * 1024)

-- Sends CHUNK until a send fails; the failure (nil, err) and how many
-- sends succeeded.  Loopback buffers hold a few MiB at most: 256 sends
-- (64 MiB) without a failure is a failure of the test.
local function fill(s)
  for i = 1, 256 do
    local ok, err = s:send(CHUNK)
    if not ok then return err, i - 1 end
  end
  error("64 MiB went to a peer that never reads")
end

-- A peer that connects to port and never reads: reports its socket's
-- connection on `out`, then waits for one message on the subject it
-- sends; `then_fn(c)` runs after that message (the test's go-ahead).
local function lazy_peer(port, then_fn)
  local out = process.new_subject()
  local pid = spawn(function()
    local c = assert(net.connect {host = "127.0.0.1", port = port})
    local go = process.new_subject()
    send(out, go)
    receive(go)
    send(out, then_fn(c))
  end)
  return out, pid
end

-- Reads from c until an error; the error's kind and the bytes read.
local function read_to_end(c)
  local n = 0
  local deadline = core.now() + 10000
  while core.now() < deadline do
    local data, err = c:receive(2000)
    if not data then return err.kind, n end
    n = n + #data
  end
  return "deadline", n
end

lib.test("options: send_timeout on connect and listen, set_send_timeout",
         function()
  lib.raises(function() net.listen {port = 0, send_timeout = -1} end,
             "send_timeout must be a non-negative integer")
  lib.raises(function() net.listen {port = 0, send_timeout = "soon"} end,
             "send_timeout must be a non-negative integer")
  local l = assert(net.listen {host = "127.0.0.1", port = 0, send_timeout = 50})
  local _, port = l:address()
  local c = assert(net.connect {host = "127.0.0.1", port = port,
                                send_timeout = 100})
  local s = assert(net.accept(l, 2000))
  lib.eq(s:set_send_timeout(nil), true, "set_send_timeout(nil)")
  lib.eq(s:set_send_timeout(0), true, "set_send_timeout(0)")
  lib.raises(function() s:set_send_timeout(-5) end,
             "send_timeout must be a non-negative integer")
  lib.raises(function() s:close("abort") end, "table of options or nil")
  assert(c:close())
  assert(s:close())
  assert(l:close())
  await_fd_count(base_fds, "descriptors back")
end)

lib.test("a send to a peer that never reads times out; the rest stays queued",
         function()
  -- Inherited from the listener.
  local l = assert(net.listen {host = "127.0.0.1", port = 0, send_timeout = 100})
  local _, port = l:address()
  local out, pid = lazy_peer(port, function(c)
    local kind, n = read_to_end(c)
    return {kind, n}
  end)
  local s = assert(net.accept(l, 2000))
  local go = receive(out, 2000)
  local err, sent = fill(s)
  lib.eq(err.kind, "timeout", "kind (" .. tostring(err) .. ")")
  lib.ok(tostring(err):find("^send 127%.0%.0%.1:%d+: "), "names op and address: "
         .. tostring(err))
  lib.ok(sent >= 1, "some sends went through first (" .. sent .. ")")
  -- Again, at once: the queue is still over its mark, so this one waits
  -- the full bound again and adds nothing.
  local ok, err2 = s:send(CHUNK)
  lib.eq(ok, nil, "a second send also times out")
  lib.eq(err2.kind, "timeout", "second kind")
  -- Without a timeout, the peer now reading lets everything through.
  s:set_send_timeout(nil)
  send(go, "read")
  assert(s:send("tail"))
  s:shutdown()
  local r = receive(out, 10000)
  lib.eq(r[1], "closed", "the peer reads to the end of the stream")
  -- Every successful send, what the timed-out one had queued, and the
  -- tail: at least the successful sends' bytes and the tail.
  lib.ok(r[2] >= sent * #CHUNK + 4, "nothing queued was lost (" .. r[2] .. ")")
  lib.ok((r[2] - 4) % #CHUNK == 0, "whole chunks only")
  assert(s:close())
  assert(l:close())
  lib.await_down(pid)
  await_fd_count(base_fds, "descriptors back")
  lib.no_leftovers()
end)

-- After close: the server's descriptor goes while the peer still has not
-- read a byte; the peer then finds the connection reset: it reads less
-- than the sends that succeeded had queued (a graceful close delivers it
-- all), then the end (Linux reports a reset that arrives behind
-- unread data as end of stream, or as ECONNRESET).
local function check_reset(how, r, sent)
  lib.ok(r[1] == "closed" or r[1] == "econnreset",
         how .. ": the peer's read ends (" .. tostring(r[1]) .. ")")
  lib.ok(r[2] < sent * #CHUNK, how .. ": the peer got less than was queued ("
         .. r[2] .. " < " .. sent * #CHUNK .. "): the rest was discarded")
end
local function check_released_then_reset(how, close_fn, deadline_ms)
  local l = assert(net.listen {host = "127.0.0.1", port = 0, send_timeout = 100})
  local _, port = l:address()
  local out, pid = lazy_peer(port, function(c)
    local kind, n = read_to_end(c)
    c:close()
    return {kind, n}
  end)
  local s = assert(net.accept(l, 2000))
  local go = receive(out, 2000)
  local err, sent = fill(s)
  lib.eq(err.kind, "timeout", how .. ": the queue is full")
  assert(l:close())
  local fds = fd_count() -- the listener is gone: server + peer socket
  close_fn(s)
  await_fd_count(fds - 1, how .. ": the server's descriptor is released "
                 .. "while the peer has read nothing", deadline_ms)
  send(go, "read")
  check_reset(how, receive(out, 15000), sent)
  lib.await_down(pid)
  await_fd_count(base_fds, how .. ": descriptors back")
  lib.no_leftovers()
end

lib.test("close: unsent data lingers for the send timeout, then a reset",
         function()
  check_released_then_reset("close", function(s)
    assert(s:close())
    local ok, err = s:send("x")
    lib.eq(ok, nil, "send after close fails")
    lib.eq(err.kind, "closed", "send after close: kind")
  end)
end)

lib.test("close{abort = true} and abort(): reset at once", function()
  check_released_then_reset("close{abort}", function(s)
    s:set_send_timeout(nil) -- a linger would now last 30 s: only abort frees
    assert(s:close {abort = true})
  end, 2000)
  check_released_then_reset("abort", function(s)
    s:set_send_timeout(nil)
    assert(s:abort())
  end, 2000)
end)

lib.test("the owner's end closes the same way: bounded, then a reset",
         function()
  local l = assert(net.listen {host = "127.0.0.1", port = 0, send_timeout = 100})
  local _, port = l:address()
  local out, peer = lazy_peer(port, function(c)
    local kind, n = read_to_end(c)
    c:close()
    return {kind, n}
  end)
  local filled = process.new_subject()
  local owner = spawn(function()
    local s = assert(net.accept(l, 2000))
    local err, sent = fill(s)
    send(filled, {err.kind, sent})
    receive(process.new_subject()) -- waits to be killed
  end)
  l:give_to(owner)
  local go = receive(out, 2000)
  local f = receive(filled, 10000)
  lib.eq(f[1], "timeout", "the owner filled the queue")
  local fds = fd_count() -- listener, server socket, peer socket
  process.kill(owner)
  lib.await_down(owner)
  await_fd_count(fds - 2, "listener and server socket released while the "
                 .. "peer has read nothing")
  send(go, "read")
  check_reset("owner's end", receive(out, 15000), f[2])
  lib.await_down(peer)
  await_fd_count(base_fds, "descriptors back")
  lib.no_leftovers()
end)

lib.test("no descriptor is left open", function()
  collectgarbage()
  await_fd_count(base_fds, "descriptors back to where they started")
end)
