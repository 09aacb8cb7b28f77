-- test_portio: Lua's os.execute and io.popen inside a process run on
-- ports: Lua's results, and only the caller waits (a ticker process keeps
-- running while they do; each wait here is released by the ticker itself,
-- through a fifo, so a frozen host would never finish).
local lib = require "testlib"
local process = require "process"
local fs = require "fs"

lib.quiet()

local function fifo_path()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkfifo '" .. name .. "'"))
  return name
end

-- A ticker that ticks n times (yielding to the scheduler each time), then
-- writes "go" into the fifo (without blocking the host: fs runs off the
-- loop) and reports its tick count.
local function ticker(fifo, n, report)
  return process.spawn(function()
    local ticks = 0
    for _ = 1, n do
      process.sleep(1)
      ticks = ticks + 1
    end
    local f = assert(fs.open(fifo, "w"))
    assert(f:write("go\n"))
    f:close()
    process.send(report, ticks)
  end)
end

lib.test("os.execute: Lua's results", function()
  lib.same({ os.execute() }, { true }, "a shell is there")
  lib.same({ os.execute("true") }, { true, "exit", 0 }, "success")
  lib.same({ os.execute("exit 3") }, { nil, "exit", 3 }, "failure")
  lib.same({ os.execute("kill -9 $$") }, { nil, "signal", 9 }, "signal")
  lib.raises(function() os.execute({}) end, "string expected")
end)

lib.test("io.popen: read formats, lines, close's results", function()
  local f = assert(io.popen("printf 'one\\ntwo\\n3.5 42 rest\\nlast'"))
  lib.eq(io.type(f), "file", "io.type")
  lib.eq(f:read(), "one", "read() is a line")
  lib.eq(f:read("L"), "two\n", "L keeps the newline")
  local a, b = f:read("n", "n")
  lib.eq(a, 3.5, "float")
  lib.eq(b, 42, "integer")
  lib.eq(math.type(b), "integer", "integer stays one")
  lib.eq(f:read(3), " re", "count")
  lib.eq(f:read("a"), "st\nlast", "all")
  lib.eq(f:read("a"), "", "all at the end is empty")
  lib.eq(f:read("l"), nil, "line at the end is nil")
  lib.same({ f:close() }, { true, "exit", 0 }, "close")
  lib.eq(io.type(f), "closed file", "closed")
  lib.raises(function() f:read() end, "closed file")
  local lines = {}
  for l in io.popen("seq 3"):lines() do lines[#lines + 1] = l end
  lib.same(lines, { "1", "2", "3" }, "lines")
  local g = io.popen("echo out; exit 4")
  lib.eq(g:read("a"), "out\n", "read all")
  lib.same({ g:close() }, { nil, "exit", 4 }, "exit status on close")
  -- An endless writer ends when the reader closes (SIGPIPE), as in Lua.
  local y = io.popen("yes")
  lib.eq(y:read(), "y", "first line")
  local ok, how = y:close()
  lib.eq(ok, nil, "not a success")
  lib.ok(how == "signal" or how == "exit", "ended by SIGPIPE: " .. tostring(how))
end)

lib.test("io.popen \"w\": writes reach the command's stdin", function()
  local name = os.tmpname()
  local w = assert(io.popen("cat > '" .. name .. "'", "w"))
  lib.eq(w:write("hello ", 42, "\n"), w, "write returns the file")
  lib.same({ w:read() }, { nil, "Bad file descriptor", 9 }, "no reading")
  lib.same({ w:close() }, { true, "exit", 0 }, "close waits for it")
  local f = assert(io.open(name))
  lib.eq(f:read("a"), "hello 42\n", "what cat wrote")
  f:close()
  os.remove(name)
  lib.raises(function() io.popen("true", "rw") end, "invalid mode")
end)

lib.test("os.execute does not freeze a ticker process", function()
  local fifo = fifo_path()
  local report = process.new_subject()
  ticker(fifo, 20, report)
  -- Waits in the shell until the ticker has ticked 20 times and written.
  lib.same({ os.execute("read line < '" .. fifo .. "'") }, { true, "exit", 0 },
           "released by the ticker")
  lib.eq(process.receive(report, 10000), 20, "the ticker ran meanwhile")
  os.remove(fifo)
end)

lib.test("io.popen does not freeze a ticker process", function()
  local fifo = fifo_path()
  local report = process.new_subject()
  ticker(fifo, 20, report)
  local f = assert(io.popen("cat '" .. fifo .. "'"))
  lib.eq(f:read("a"), "go\n", "what the ticker wrote")
  lib.same({ f:close() }, { true, "exit", 0 }, "closed")
  lib.eq(process.receive(report, 10000), 20, "the ticker ran meanwhile")
  os.remove(fifo)
end)

lib.test("a process killed while it waits stops its command", function()
  local fifo = fifo_path()
  local pid = process.spawn(function()
    os.execute("echo $$ > '" .. fifo .. "'; exec sleep 1000")
  end)
  -- (fs reads off the loop: an io.open of a fifo would block the host)
  local shell = tonumber(assert(fs.read(fifo)):match("%d+"))
  lib.ok(shell, "the command's pid")
  process.kill(pid)
  local deadline = require("arbor.core").now() + 10000
  while io.open("/proc/" .. shell .. "/stat") do
    lib.ok(require("arbor.core").now() < deadline, "command stopped")
    process.sleep(5)
  end
  os.remove(fifo)
end)

lib.no_leftovers("test_portio")
print("test_portio: ok")
