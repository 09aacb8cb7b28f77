-- test_fs: the fs module: files on libuv's thread pool, blocking only the
-- calling process; files owned by the process that opened them.
local lib = require "testlib"
local process = require "process"
local fs = require "fs"

local send, receive = process.send, process.receive
lib.quiet()

-- A fresh folder of our own under $TMPDIR (or /tmp).
-- (Named after this host's pid: runs at the same time never share it.)
local pid = assert(fs.read("/proc/self/stat")):match("^(%d+)")
local root = (os.getenv("TMPDIR") or "/tmp") .. "/arbor-test-fs-" .. pid
assert(fs.mkdir(root, {parents = true}))

local function path(name) return root .. "/" .. name end

-- The number of descriptors the host has open (the listing's own one
-- included, the same every time).
local function fd_count() return #assert(fs.list("/proc/self/fd")) end

-- Polls (with a deadline) until the host has n descriptors open: a
-- descriptor abandoned by a dead owner is closed on the thread pool.
local function await_fd_count(n, what)
  local deadline = 200
  while fd_count() ~= n and deadline > 0 do
    process.sleep(5)
    deadline = deadline - 1
  end
  lib.eq(fd_count(), n, what)
end

local function err_kind(what, expected, ok, err)
  lib.eq(ok, nil, what .. ": result")
  lib.ok(type(err) == "table", what .. ": err is a table")
  lib.eq(err.kind, expected, what .. ": err.kind")
  return err
end

-- err_kind, and the error names where: err.path is p, and its message is
-- one line naming the path after the operation.
local function err_at(what, expected, p, ok, err)
  err_kind(what, expected, ok, err)
  lib.eq(err.path, p, what .. ": err.path")
  local text = tostring(err)
  lib.ok(text:find(" " .. p .. ": ", 1, true) or text:find(" " .. p .. " -> ", 1, true),
         what .. ": the message names the path (" .. text .. ")")
  lib.ok(not text:find("\n"), what .. ": one line")
  return err
end

lib.test("16 MiB of every byte value round-trip", function()
  local unit = {}
  for i = 0, 255 do unit[#unit + 1] = string.char(i) end
  local block = string.rep(table.concat(unit), 4096) -- 1 MiB
  local data = string.rep(block, 15) .. block:reverse()
  lib.eq(#data, 16 * 1024 * 1024, "size")
  lib.eq(fs.write(path("big.bin"), data), true, "write")
  local back = fs.read(path("big.bin"))
  lib.ok(back == data, "read back the same bytes")
  lib.eq(fs.stat(path("big.bin")).size, #data, "stat size")
  lib.eq(fs.read(path("empty")), nil, "missing file")
  lib.eq(fs.write(path("empty"), ""), true, "empty write")
  lib.eq(fs.read(path("empty")), "", "an empty file reads as \"\"")
  local stat = assert(fs.read("/proc/self/stat"))
  lib.ok(stat:match("^%d+ %(.-%) %a "), "a file whose size stat reports as 0")
  assert(fs.remove(path("big.bin")))
  assert(fs.remove(path("empty")))
end)

lib.test("write replaces, append appends, atomic replaces whole", function()
  local p = path("w.txt")
  assert(fs.write(p, "one\n"))
  assert(fs.write(p, "two\n", {append = true}))
  lib.eq(fs.read(p), "one\ntwo\n", "append")
  assert(fs.write(p, "three\n"))
  lib.eq(fs.read(p), "three\n", "plain write truncates")
  assert(fs.write(p, "four\n", {atomic = true}))
  lib.eq(fs.read(p), "four\n", "atomic")
  assert(fs.write(path("fresh.txt"), "new", {atomic = true}))
  lib.eq(fs.read(path("fresh.txt")), "new", "atomic creates")
  lib.same(fs.list(root), {"fresh.txt", "w.txt"}, "no temp file left behind")
  err_kind("atomic into a missing folder", "enoent",
           fs.write(path("none/x"), "x", {atomic = true}))
  lib.same(fs.list(root), {"fresh.txt", "w.txt"}, "nothing left after a failure")
  lib.raises(function() fs.write(p, "x", {append = true, atomic = true}) end,
             "bad argument #3", "append and atomic together")
  lib.raises(function() fs.write(p) end, "bad argument #2", "no data")
  assert(fs.remove(p))
  assert(fs.remove(path("fresh.txt")))
end)

lib.test("a reader never sees part of an atomic write", function()
  local p = path("atomic.txt")
  local a, b = string.rep("a", 1 << 20), string.rep("b", 1 << 20)
  assert(fs.write(p, a))
  local done = process.new_subject()
  process.spawn(function()
    for i = 1, 20 do assert(fs.write(p, i % 2 == 0 and a or b, {atomic = true})) end
    send(done, "written")
  end)
  local reads, seen = 0, {}
  repeat
    local got = assert(fs.read(p))
    lib.ok(got == a or got == b, "whole old or whole new content")
    seen[got:sub(1, 1)] = true
    reads = reads + 1
  until receive(done, 0) == "written"
  lib.ok(reads > 0 and seen.a, "read while writing")
  assert(fs.remove(p))
  lib.no_leftovers()
end)

lib.test("streaming through an open file", function()
  local p = path("stream.txt")
  local f = assert(fs.open(p, "w"))
  for i = 1, 1000 do lib.eq(f:write(string.format("%04d\n", i)), true, "write") end
  lib.eq(f:sync(), true, "sync")
  lib.eq(f:close(), true, "close")
  lib.eq(f:close(), true, "closing twice is harmless")
  local e = err_at("write after close", "closed", p, f:write("x"))
  lib.ok(tostring(e):find("^file:write "), "names the operation: " .. tostring(e))
  local g = assert(fs.open(p, "a"))
  assert(g:write("end\n"))
  assert(g:close())
  local r = assert(fs.open(p, "r"))
  lib.ok(tostring(r):find("^File<"), "tostring")
  local parts = {}
  while true do
    local chunk = r:read(777)
    if chunk == nil then break end
    lib.ok(#chunk <= 777, "at most n bytes")
    parts[#parts + 1] = chunk
  end
  lib.eq(r:read(10), nil, "still nil at end of file")
  local text = table.concat(parts)
  lib.eq(#text, 5000 + 4, "everything read")
  lib.eq(text:sub(1, 10), "0001\n0002\n", "in order")
  lib.eq(text:sub(-9), "1000\nend\n", "appended at the end")
  err_at("writing a file opened for reading", "ebadf", p, r:write("x"))
  assert(r:close())
  lib.raises(function() r:read(0) end, "count must be positive", "read(0)")
  lib.raises(function() fs.open(p, "rw") end, "bad argument #2", "bad mode")
  err_at("open a folder for reading", "eisdir", root, fs.open(root, "r"))
  assert(fs.remove(p))
end)

lib.test("stat, list, mkdir, remove, rename", function()
  local st = assert(fs.stat(root))
  lib.eq(st.type, "directory", "folder")
  assert(fs.write(path("f"), "12345"))
  st = assert(fs.stat(path("f")))
  lib.eq(st.type, "file", "file")
  lib.eq(st.size, 5, "size")
  lib.ok(math.type(st.mtime) == "integer" and
         math.abs(st.mtime - os.time() * 1000) < 120000, "mtime in ms")
  lib.eq(fs.stat("/proc/self").type, "link", "a symbolic link is not followed")
  lib.eq(fs.stat("/dev/null").type, "other", "a device")
  assert(fs.mkdir(path("d/e/f"), {parents = true}))
  assert(fs.mkdir(path("d/e/f"), {parents = true}), "parents: existing is fine")
  err_at("mkdir existing", "eexist", path("d"), fs.mkdir(path("d")))
  err_at("mkdir under a missing folder", "enoent", path("x/y"), fs.mkdir(path("x/y")))
  err_at("mkdir -p through a file", "enotdir", path("f/g"),
         fs.mkdir(path("f/g"), {parents = true}))
  for _, n in ipairs {"b", "a", "c", ".hidden", "B"} do assert(fs.write(path("d/" .. n), n)) end
  lib.same(fs.list(path("d")), {".hidden", "B", "a", "b", "c", "e"},
           "sorted, without . and ..")
  lib.same(fs.list(path("d/e/f")), {}, "empty folder")
  err_at("list a file", "enotdir", path("f"), fs.list(path("f")))
  err_at("remove a full folder", "enotempty", path("d/e"), fs.remove(path("d/e")))
  assert(fs.remove(path("d/e/f")))
  assert(fs.remove(path("d/e")))
  lib.eq(fs.rename(path("d/a"), path("d/z")), true, "rename")
  lib.eq(fs.read(path("d/z")), "a", "renamed content")
  local e = err_at("rename a missing file", "enoent", path("d/nope"),
                   fs.rename(path("d/nope"), path("d/q")))
  lib.eq(e.to, path("d/q"), "err.to is the target")
  lib.ok(tostring(e):find(path("d/nope") .. " -> " .. path("d/q") .. ": ", 1, true),
         "message names the source and the target: " .. tostring(e))
  for _, n in ipairs(fs.list(path("d"))) do assert(fs.remove(path("d/" .. n))) end
  assert(fs.remove(path("d")))
  assert(fs.remove(path("f")))
  lib.same(fs.list(root), {}, "all gone")
end)

lib.test("errors are nil, err with the POSIX name and the path", function()
  local e = err_at("read missing", "enoent", path("missing"), fs.read(path("missing")))
  lib.eq(tostring(e), "read " .. path("missing") .. ": no such file or directory",
         "the message: operation, path, cause")
  err_at("read a folder", "eisdir", root, fs.read(root))
  assert(fs.write(path("plain"), "x"))
  err_at("through a file", "enotdir", path("plain/x"), fs.read(path("plain/x")))
  err_at("stat missing", "enoent", path("missing"), fs.stat(path("missing")))
  err_at("remove missing", "enoent", path("missing"), fs.remove(path("missing")))
  err_at("open missing", "enoent", path("missing"), fs.open(path("missing"), "r"))
  -- Permission: a file of mode 000 for an unprivileged user; root is not
  -- refused that, but sysfs refuses everyone a write to a read-only node.
  assert(fs.write(path("locked"), "x"))
  os.execute("chmod 000 '" .. path("locked") .. "'")
  local ok, err = fs.read(path("locked"))
  if ok ~= nil then ok, err = fs.write("/sys/kernel/notes", "x") end
  err_kind("permission denied", "eacces", ok, err)
  assert(fs.remove(path("locked")))
  assert(fs.remove(path("plain")))
  lib.raises(function() fs.read({}) end, "bad argument #1", "path not a string")
  lib.raises(function() fs.read("a\0b") end, "NUL", "NUL in a path")
end)

lib.test("a file belongs to its opener: another process raises", function()
  local p = path("owned.txt")
  assert(fs.write(p, "mine"))
  local f = assert(fs.open(p, "r"))
  local back = process.new_subject()
  process.spawn(function()
    local results = {}
    for _, m in ipairs {"read", "write", "sync", "close"} do
      local ok, err = pcall(f[m], f, m == "read" and 1 or "x")
      results[#results + 1] = ok and "no error" or tostring(err)
    end
    send(back, results)
  end)
  local results = receive(back, 2000)
  for i, m in ipairs {"read", "write", "sync", "close"} do
    lib.ok(results[i]:find("owned by another process", 1, true),
           m .. " by another process raises: " .. results[i])
  end
  lib.eq(f:read(100), "mine", "the owner still reads it")
  assert(f:close())
  assert(fs.remove(p))
  lib.no_leftovers()
end)

lib.test("the owner ending closes its files, whatever the reason", function()
  local p = path("held.txt")
  assert(fs.write(p, "x"))
  local base = fd_count()
  for _, how in ipairs {"return", "error", "kill"} do
    local hand = process.new_subject()
    local pid = process.spawn(function()
      local a = assert(fs.open(p, "r"))
      local b = assert(fs.open(p, "a"))
      send(hand, {a, b})
      if how == "return" then return end
      if how == "error" then error("on purpose") end
      process.sleep_forever()
    end)
    local files = receive(hand, 2000)
    if how == "kill" then
      lib.eq(fd_count(), base + 2, "two files open while the owner lives")
      process.kill(pid)
    end
    lib.await_down(pid)
    await_fd_count(base, how .. ": both descriptors closed")
    lib.raises(function() files[1]:read(1) end, "owned by another process",
               how .. ": the handle stays the dead owner's")
    lib.ok(tostring(files[2]) == "File<closed>", how .. ": shown closed")
  end
  collectgarbage()
  lib.eq(fd_count(), base, "collecting the handles closes nothing twice")
  assert(fs.remove(p))
  lib.no_leftovers()
end)

lib.test("a slow file wait blocks only its process; dying mid-wait is clean",
         function()
  local fifo = path("fifo")
  lib.eq(os.execute("mkfifo '" .. fifo .. "'"), true, "mkfifo")
  local base = fd_count()
  -- Reading a fifo waits for a writer, then reads until the writer
  -- closes; only the reader waits.
  local out = process.new_subject()
  local reader = process.spawn(function()
    send(out, "opening")
    local f = assert(fs.open(fifo, "r"))
    send(out, {data = f:read(100)})
    f:close()
  end)
  lib.eq(receive(out, 2000), "opening", "reader started")
  local ticks = process.new_subject()
  local ticker = process.spawn(function()
    for i = 1, 5 do
      process.sleep(5)
      send(ticks, i)
    end
  end)
  for i = 1, 5 do lib.eq(receive(ticks, 2000), i, "the ticker runs meanwhile") end
  lib.await_down(ticker)
  lib.no_message(out, "the reader still waits")
  local w = assert(fs.open(fifo, "w"))
  assert(w:write("through "))
  assert(w:write("the fifo"))
  assert(w:close())
  lib.same(receive(out, 2000), {data = "through the fifo"}, "the reader got it")
  lib.await_down(reader)

  -- fs.read of a fifo: everything until the writer closes; fs.write to
  -- a fifo waits for a reader.
  local whole = process.spawn(function() send(out, {whole = fs.read(fifo)}) end)
  lib.no_message(out, "fs.read waits for a writer")
  assert(fs.write(fifo, "all of it"))
  lib.same(receive(out, 2000), {whole = "all of it"}, "fs.read read to the end")
  lib.await_down(whole)
  local writer = process.spawn(function() send(out, {wrote = fs.write(fifo, "late")}) end)
  lib.no_message(out, "fs.write waits for a reader")
  lib.eq(fs.read(fifo), "late", "read what the waiting writer wrote")
  lib.same(receive(out, 2000), {wrote = true}, "the writer finished")
  lib.await_down(writer)

  -- Killed while its job waits on the fifo (no writer ever comes): the
  -- job notices, its descriptor is closed and the pool thread is free.
  for _, call in ipairs {"read", "open+read"} do
    local victim = process.spawn(function()
      send(out, "waiting")
      if call == "read" then
        fs.read(fifo)
      else
        assert(fs.open(fifo, "r")):read(10)
      end
      send(out, "should not get here")
    end)
    lib.eq(receive(out, 2000), "waiting", call .. ": victim started")
    -- (The victim said so before its call: the open may still be under way.)
    await_fd_count(base + 1, call .. ": its job holds the fifo open")
    process.kill(victim)
    lib.await_down(victim)
    await_fd_count(base, call .. ": the abandoned job's descriptor was closed")
  end
  lib.no_message(out, "the dead processes never continued")
  assert(fs.remove(fifo))
  lib.no_leftovers()
end)

lib.test("fs works from a coroutine inside a process", function()
  local co = coroutine.wrap(function() return fs.stat(root).type end)
  lib.eq(co(), "directory", "from a coroutine of a process")
end)

assert(fs.remove(root))
