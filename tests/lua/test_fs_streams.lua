-- test_fs_streams: FIFOs and devices never hold a thread of libuv's pool
-- while they wait for their other end.  The pool has 4 threads and name
-- lookups (getaddrinfo) share it: waits that held threads stalled every
-- regular file job and every net.connect by name until a writer came.
local lib = require "testlib"
local fs = require "fs"
local net = require "net"
local process = require "process"
local core = require "arbor.core"

local send, receive = process.send, process.receive

-- A fresh folder named after this host's pid (runs at once never share it).
local os_pid = assert(fs.read("/proc/self/stat")):match("^(%d+)")
local root = (os.getenv("TMPDIR") or "/tmp") .. "/arbor-test-fs-streams-"
             .. os_pid
os.execute("rm -rf '" .. root .. "'") -- a killed run's, under a reused pid
assert(fs.mkdir(root, {parents = true}))
local function path(name) return root .. "/" .. name end

local function fd_count() return #assert(fs.list("/proc/self/fd")) end

local function await_fd_count(n, what)
  lib.await(function() return fd_count() == n end, what .. " (" .. n
            .. " descriptors, " .. fd_count() .. " open)", 5000)
end

local function mkfifo(name)
  local p = path(name)
  lib.eq(os.execute("mkfifo '" .. p .. "'"), true, "mkfifo " .. name)
  return p
end

-- Waits until each of pids waits in a file's read or write.
local function await_waiting(pids, what)
  lib.await(function()
    for _, pid in ipairs(pids) do
      local info = core.proc_info(pid)
      if not info or info.state ~= "waiting" or
         (info.blocked_name ~= "read" and info.blocked_name ~= "write") then
        return false
      end
    end
    return true
  end, what)
end

local N = 8 -- twice the pool's threads (libuv's default of 4)

lib.test("waits on fifos leave the pool to files and name lookups", function()
  local out = process.new_subject()
  local readers, writers, handles, openers = {}, {}, {}, {}
  local read_fifos, write_fifos, handle_fifos, open_fifos = {}, {}, {}, {}
  for i = 1, N do
    -- fs.read of a fifo without a writer
    read_fifos[i] = mkfifo("r" .. i)
    readers[i] = process.spawn(function()
      send(out, {reader = i, data = fs.read(read_fifos[i])})
    end)
    -- fs.write to a fifo without a reader
    write_fifos[i] = mkfifo("w" .. i)
    writers[i] = process.spawn(function()
      send(out, {writer = i, ok = fs.write(write_fifos[i], "to " .. i)})
    end)
    -- file:read of a fifo opened for reading, no writer
    handle_fifos[i] = mkfifo("h" .. i)
    handles[i] = process.spawn(function()
      local f = assert(fs.open(handle_fifos[i], "r"))
      send(out, {handle = i, data = f:read(100)})
      f:close()
    end)
    -- fs.open(fifo, "w") without a reader, then file:write
    open_fifos[i] = mkfifo("o" .. i)
    openers[i] = process.spawn(function()
      local f = assert(fs.open(open_fifos[i], "w"))
      local ok = f:write("opened " .. i)
      f:close()
      send(out, {opener = i, ok = ok})
    end)
  end
  await_waiting(readers, "the readers wait")
  await_waiting(writers, "the writers wait")
  await_waiting(handles, "the handle readers wait")
  -- (fs.open for writing retries on a timer: its process waits in open)
  lib.await(function()
    for _, pid in ipairs(openers) do
      local info = core.proc_info(pid)
      if not info or info.state ~= "waiting" or info.blocked_name ~= "open" then
        return false
      end
    end
    return true
  end, "the openers wait")

  -- Meanwhile: a regular file, and a connection by name.
  local listener = assert(net.listen{host = "127.0.0.1", port = 0})
  local _, port = listener:address()
  local plain = path("plain")
  local other = process.spawn(function()
    local wrote = fs.write(plain, "regular")
    local data = fs.read(plain)
    local conn, err = net.connect{host = "localhost", port = port,
                                  timeout = 5000}
    if conn then conn:close() end
    send(out, {other = true, wrote = wrote, data = data,
               connected = conn ~= nil, err = err and err.kind})
  end)
  local got = receive(out, 10000)
  lib.same(got, {other = true, wrote = true, data = "regular",
                 connected = true}, "the other process's file and lookup")
  lib.await_down(other)
  local accepted = net.accept(listener, 1000)
  lib.ok(accepted ~= nil, "the connection arrived")
  accepted:close()
  listener:close()

  -- The other ends appear: each waiter gets its own data.
  local expected = {}
  for i = 1, N do
    local ok = fs.write(read_fifos[i], "for reader " .. i)
    lib.eq(ok, true, "wrote to reader " .. i)
    lib.eq(fs.read(write_fifos[i]), "to " .. i, "read writer " .. i)
    lib.eq(fs.write(handle_fifos[i], "for handle " .. i), true, "handle " .. i)
    lib.eq(fs.read(open_fifos[i]), "opened " .. i, "opener " .. i)
    expected[#expected + 1] = {opener = i, ok = true}
    expected[#expected + 1] = {reader = i, data = "for reader " .. i}
    expected[#expected + 1] = {writer = i, ok = true}
    expected[#expected + 1] = {handle = i, data = "for handle " .. i}
  end
  local seen = {}
  local function key(m)
    return (m.reader and "r" .. m.reader) or (m.writer and "w" .. m.writer)
           or (m.opener and "o" .. m.opener) or ("h" .. m.handle)
  end
  for _ = 1, 4 * N do
    local m = receive(out, 5000)
    lib.ok(m ~= nil, "every waiter answered")
    seen[key(m)] = m
  end
  for _, e in ipairs(expected) do lib.same(seen[key(e)], e, key(e)) end
  for i = 1, N do
    lib.await_down(readers[i])
    lib.await_down(writers[i])
    lib.await_down(handles[i])
    lib.await_down(openers[i])
    assert(fs.remove(open_fifos[i]))
    assert(fs.remove(read_fifos[i]))
    assert(fs.remove(write_fifos[i]))
    assert(fs.remove(handle_fifos[i]))
  end
  assert(fs.remove(plain))
  lib.no_leftovers()
end)

lib.test("killed while waiting on a fifo: descriptors and the wait go",
         function()
  local base = fd_count()
  local out = process.new_subject()
  local fifo = mkfifo("kill")
  local wfifo = mkfifo("kill-w")
  local victims = {}
  for i = 1, N do
    victims[#victims + 1] = process.spawn(function() fs.read(fifo) end)
    victims[#victims + 1] = process.spawn(function()
      assert(fs.open(fifo, "r")):read(10)
    end)
    victims[#victims + 1] = process.spawn(function() fs.write(wfifo, "x") end)
    victims[#victims + 1] = process.spawn(function() fs.open(wfifo, "w") end)
  end
  lib.await(function()
    for _, pid in ipairs(victims) do
      local info = core.proc_info(pid)
      if not info or info.state ~= "waiting" then return false end
    end
    return true
  end, "all wait")
  -- 2N readers hold the fifo open; the writers hold nothing yet.
  await_fd_count(base + 2 * N, "the readers' descriptors")
  for _, v in ipairs(victims) do process.kill(v) end
  for _, v in ipairs(victims) do lib.await_down(v) end
  await_fd_count(base, "every descriptor closed")
  -- No reader is left on the fifo, and no writer retries on the other.
  local w = process.spawn(function() send(out, {fs.write(fifo, "x")}) end)
  lib.no_message(out, "a writer finds no reader")
  process.kill(w)
  lib.await_down(w)
  local r = process.spawn(function() send(out, {fs.read(wfifo)}) end)
  lib.no_message(out, "a reader finds no writer")
  process.kill(r)
  lib.await_down(r)
  await_fd_count(base, "nothing left")
  assert(fs.remove(fifo))
  assert(fs.remove(wfifo))
  lib.no_leftovers()
end)

lib.test("a fifo's reader leaving: the writer gets epipe", function()
  local fifo = mkfifo("pipe")
  local out = process.new_subject()
  local big = string.rep("x", 1 << 20) -- more than a pipe holds
  local writer = process.spawn(function()
    send(out, {fs.write(fifo, big)})
  end)
  local f = assert(fs.open(fifo, "r"))
  lib.eq(#f:read(10), 10, "the writer began")
  f:close()
  local got = receive(out, 5000)
  lib.ok(got and got[1] == nil and got[2].kind == "epipe",
         "epipe: " .. tostring(got and got[2]))
  lib.await_down(writer)
  assert(fs.remove(fifo))
end)

lib.test("devices the loop cannot watch still work (/dev/null)", function()
  lib.eq(fs.read("/dev/null"), "", "read /dev/null")
  lib.eq(fs.write("/dev/null", "gone"), true, "write /dev/null")
  local f = assert(fs.open("/dev/null", "r"))
  lib.eq(f:read(10), nil, "end of file at once")
  f:close()
  local w = assert(fs.open("/dev/null", "w"))
  lib.eq(w:write("x"), true, "file:write")
  w:close()
  local z = assert(fs.open("/dev/zero", "r"))
  lib.eq(z:read(5), "\0\0\0\0\0", "/dev/zero")
  z:close()
end)

lib.test("a unix socket file refuses fs.write at once", function()
  local sock = path("sock")
  local l = assert(net.listen{path = sock})
  local ok, err = fs.write(sock, "x")
  lib.ok(ok == nil and err.kind == "enxio", "enxio: " .. tostring(err))
  l:close()
end)

assert(fs.remove(root))
