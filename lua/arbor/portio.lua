--[[
arbor.portio: Lua's own os.execute and io.popen, inside a process, run on
ports (the `port` module), so only the calling process waits and every
other process goes on running.

Results are Lua's: os.execute gives true or nil, then "exit" and the
status or "signal" and the signal's number; io.popen gives a file-like
object (read with Lua's formats, lines, write in "w" mode, close giving
what os.execute gives).  The command runs under /bin/sh -c, with the
host's stdin and stderr (and stdout, but for io.popen's "r" mode), as
system() and popen() run it.  Being a port, it leads its own process
group, and it is stopped when its process ends.

Outside a process (while the host sets up) and where Lua cannot yield
(inside a call from C such as a table.sort comparator), Lua's own
functions run, blocking as they always did.  Installed by the host at
start; depends on `process` and `port`.
]]
local process = require "process"
local port = require "port"

local lua_execute, lua_popen, lua_io_type = os.execute, io.popen, io.type
local signals = port.signals
local new_selector, select_message = process.new_selector, process.select
local isyieldable = coroutine.isyieldable

local SHELL = "/bin/sh"

local function in_process()
  return isyieldable() and (pcall(process.self))
end

-- Waits for p's exit, handing each output message to on_output (or
-- dropping it); returns the exit message.
local function wait_exit(p, on_output)
  local sel = new_selector():selecting_port(p)
  while true do
    local m = select_message(sel)
    if m.exit ~= nil or m.signal ~= nil then return m end
    if on_output then on_output(m) end
  end
end

-- What os.execute returns for an exit message.
local function exec_result(m)
  if m.exit ~= nil then
    if m.exit == 0 then return true, "exit", 0 end
    return nil, "exit", m.exit
  end
  return nil, "signal", signals[m.signal] or tonumber(m.signal) or -1
end

local function spawn_failed(err)
  return nil, tostring(err), -1
end

local function execute(command)
  if command == nil then return true end -- a shell is there
  if type(command) ~= "string" then
    error("bad argument #1 to 'execute' (string expected, got "
          .. type(command) .. ")", 2)
  end
  if command:find("\0", 1, true) then -- C's system() would cut it there
    error("bad argument #1 to 'execute' (command contains a NUL byte)", 2)
  end
  local p, err = port.spawn{ SHELL, "-c", command, stdin = "inherit",
                             stdout = "inherit", stderr = "inherit" }
  if p == nil then return spawn_failed(err) end
  return exec_result(wait_exit(p))
end

-- {=====================================================================
-- The popen file
-- ======================================================================

local PopenFile = {}
PopenFile.__index = PopenFile
PopenFile.__name = "FILE*"

local EBADF_MSG, EBADF = "Bad file descriptor", 9

local function check(f, name)
  if getmetatable(f) ~= PopenFile then
    error("bad argument #1 to '" .. name .. "' (FILE* expected, got "
          .. type(f) .. ")", 3)
  end
  if f.closed then error("attempt to use a closed file", 3) end
  return f
end

-- Takes one more message; false once the exit has come.
function PopenFile:fill()
  if self.status then return false end
  local m = select_message(self.sel)
  if m.stdout ~= nil then
    self.buf = self.buf .. m.stdout
  elseif m.exit ~= nil or m.signal ~= nil then
    self.status = m
    return false
  end
  return true
end

local function take(f, n)
  local s = f.buf:sub(1, n)
  f.buf = f.buf:sub(n + 1)
  return s
end

local function read_line(f, keep)
  while true do
    local nl = f.buf:find("\n", 1, true)
    if nl then
      local line = take(f, nl)
      return keep and line or line:sub(1, -2)
    end
    if not f:fill() then
      if f.buf == "" then return nil end
      return take(f, #f.buf)
    end
  end
end

local function read_all(f)
  local parts = { f.buf }
  f.buf = ""
  while f:fill() do -- chunks gathered, not concatenated one by one
    parts[#parts + 1] = f.buf
    f.buf = ""
  end
  return table.concat(parts)
end

local function read_count(f, n)
  while #f.buf < n and f:fill() do end
  if n == 0 then
    if f.buf == "" and not f:fill() and f.buf == "" then return nil end
    return ""
  end
  if f.buf == "" then return nil end
  return take(f, n)
end

-- A numeral as Lua's read("n") takes one: leading space skipped, then the
-- longest run of numeral characters, converted (nil if not a number).
local function read_number(f)
  while true do
    local s = f.buf:find("%S")
    if s then
      f.buf = f.buf:sub(s)
      break
    end
    f.buf = ""
    if not f:fill() then return nil end
  end
  while true do
    local e = f.buf:find("[^%w%.%+%-]")
    if e or not f:fill() then
      local text = take(f, e and e - 1 or #f.buf)
      return math.tointeger(tonumber(text)) or tonumber(text)
    end
  end
end

local function read_one(f, fmt)
  if math.type(fmt) == "integer" then return read_count(f, fmt) end
  if type(fmt) ~= "string" then
    error("bad argument #1 to 'read' (invalid format)", 4)
  end
  local c = fmt:gsub("^%*", ""):sub(1, 1)
  if c == "l" then return read_line(f, false) end
  if c == "L" then return read_line(f, true) end
  if c == "a" then return read_all(f) end
  if c == "n" then return read_number(f) end
  error("bad argument #1 to 'read' (invalid format)", 4)
end

local function read(f, ...)
  if f.mode ~= "r" then return nil, EBADF_MSG, EBADF end
  local n = select("#", ...)
  if n == 0 then return read_line(f, false) end
  local out = {}
  for i = 1, n do
    local v = read_one(f, (select(i, ...)))
    out[i] = v
    if v == nil then return table.unpack(out, 1, i) end
  end
  return table.unpack(out, 1, n)
end

function PopenFile:read(...)
  check(self, "read")
  return read(self, ...)
end

function PopenFile:lines(...)
  check(self, "lines")
  local fmts = table.pack(...)
  return function()
    if self.closed then error("file is already closed", 2) end
    return read(self, table.unpack(fmts, 1, fmts.n))
  end
end

function PopenFile:write(...)
  check(self, "write")
  if self.mode ~= "w" then return nil, EBADF_MSG, EBADF end
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "string" and type(v) ~= "number" then
      error("bad argument #" .. i .. " to 'write' (string expected, got "
            .. type(v) .. ")", 2)
    end
    local ok, err = self.port:write(tostring(v))
    if not ok then return nil, tostring(err), 32 end
  end
  return self
end

function PopenFile:flush()
  check(self, "flush")
  return self
end

function PopenFile:setvbuf()
  check(self, "setvbuf")
  return true
end

function PopenFile:seek()
  check(self, "seek")
  return nil, "Illegal seek", 29
end

function PopenFile:close()
  check(self, "close")
  self.closed = true
  local p = self.port
  if self.mode == "w" then
    p:close_stdin()
  else
    p:close_output() -- a writer that goes on gets SIGPIPE, as with pclose
  end
  local m = self.status
  if m == nil then
    m = wait_exit(p)
    self.status = m
  end
  self.buf = ""
  return exec_result(m)
end

PopenFile.__close = function(f)
  if not f.closed then f:close() end
end

PopenFile.__tostring = function(f)
  if f.closed then return "file (closed)" end
  return string.format("file (%s)", tostring(f.port))
end

local function popen(prog, mode)
  if type(prog) ~= "string" then
    error("bad argument #1 to 'popen' (string expected, got "
          .. type(prog) .. ")", 2)
  end
  if prog:find("\0", 1, true) then -- C's popen() would cut it there
    error("bad argument #1 to 'popen' (command contains a NUL byte)", 2)
  end
  mode = mode or "r"
  if mode ~= "r" and mode ~= "w" then
    error("bad argument #2 to 'popen' (invalid mode)", 2)
  end
  local p, err = port.spawn{ SHELL, "-c", prog, packet = "raw",
                             stdin = mode == "w" and "pipe" or "inherit",
                             stdout = mode == "r" and "message" or "inherit",
                             stderr = "inherit" }
  if p == nil then return spawn_failed(err) end
  return setmetatable({ port = p, mode = mode, buf = "", closed = false,
                        sel = new_selector():selecting_port(p) }, PopenFile)
end

-- }=====================================================================

os.execute = function(command)
  if in_process() then return execute(command) end
  return lua_execute(command)
end

io.popen = function(prog, mode)
  if in_process() then return popen(prog, mode) end
  return lua_popen(prog, mode)
end

io.type = function(obj)
  if getmetatable(obj) == PopenFile then
    return obj.closed and "closed file" or "file"
  end
  return lua_io_type(obj)
end

return { execute = execute, popen = popen }
