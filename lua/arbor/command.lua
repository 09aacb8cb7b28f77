--[[
arbor.command: supervisor.command, an OS process as a child of a tree.

supervisor.command{"cmd", "arg", ... [, cwd =] [, env =] [, clear_env =]
  [, ready = "notify" | {line = pattern}] [, ready_timeout = ms]
  [, stop_signal = "TERM"] [, output = "log" | "inherit" | "null"]}
returns a worker child spec (so :id, :restart, :shutdown, :returning and
:backoff apply) whose child is an arbor process owning a port (the
`port` module): the command runs as the leader of its own process group.

- Start returns once the command is ready: at once without `ready`; with
  "notify" when it sends READY=1 to the socket named in its
  $NOTIFY_SOCKET (systemd's protocol; STATUS= texts are kept for
  `arbor status`); with {line = pattern} when a line of its output
  matches.  Exiting first, or ready_timeout (default 30000 ms) passing,
  fails the start with that reason (the group is killed).
- A ready pattern is matched by port.pattern_find (host/core/pattern.c:
  Lua's patterns, but with a budget of steps), against at most the first
  READY_LINE_MAX bytes of each line: a pattern that backtracks without
  end on a long line cannot freeze the host.  A line that costs too much
  counts as not matching, and a warning naming the child and the
  pattern is logged (once per child).  The pattern is checked when the
  spec is built.
- Its exit reason: "normal" for exit status 0, else {exit_status = n} or
  {signal = "NAME"}, whose __tostring reads "exit status n" / "killed by
  signal NAME", so restart types and strategies apply unchanged.
- Shutdown: the child traps exits; the supervisor's "shutdown" makes it
  send stop_signal to the group and wait for the command to end; when
  the child's shutdown time runs out the supervisor kills the child, and
  a killed child's port SIGKILLs the group at once ("brutal_kill" kills
  at once for the same reason).
- Output ("log"): each line is a logger event tagged with the child's id,
  the stream and the OS pid.
- The child publishes os_pid and status_text through arbor.annotate.

The spec keeps the command as plain data (spec.command, and the one
upvalue of its start function), so live editing (arbor.diff compares
start functions by code and upvalues by value) restarts a command child
only when its argv, env, cwd or other options changed.

The child's id is not known to a start function; the supervisor labels
each child for crash reports through arbor.core.log_label right after its
start; this module reads the label back (arbor.core.log_label_of) and
wraps log_label to hear when a child waiting for it was labelled (lines
logged before it are tagged with the command's name).  Depends on
process, port, logger, arbor.core, arbor.spec and arbor.annotate.
]]
local process = require "process"
local port = require "port"
local logger = require "logger"
local core = require "arbor.core"
local spec = require "arbor.spec"
local annotate = require "arbor.annotate"

local M = {}

local send, new_subject, new_selector = process.send, process.new_subject,
  process.new_selector
local select_message, self = process.select, process.self
local now, exit_self, new_error = core.now, core.exit_self, core.error

local DEFAULT_READY_TIMEOUT = 30000
local MAX_READY_TIMEOUT = 0x7fffffff -- ms, about 24.8 days
-- The bytes of a line a ready pattern sees (a line's first READY_LINE_MAX).
local READY_LINE_MAX = 4096
M.READY_LINE_MAX = READY_LINE_MAX

-- {=====================================================================
-- The child's id, learnt from the supervisor's label
-- ======================================================================

-- The label itself is read back from the logger (core.log_label_of), not
-- kept here: a weak table of every child's label would keep a size that
-- depends on when dead pids were collected, which arbor.core.compact
-- cannot undo (the exact memory gates of tests/soak would drift).
-- awaiting holds only command children waiting for their label, each
-- entry removed by the child itself.
local awaiting = setmetatable({}, { __mode = "k" }) -- pid -> its subject
local label_of = core.log_label_of
do
  local set_label = core.log_label
  -- Whatever its form ((pid, name, id) or (pid, {name, id})), the label
  -- is read back through label_of once the child hears it was set.
  core.log_label = function(pid, ...)
    set_label(pid, ...)
    local waiting = awaiting[pid]
    if waiting then
      awaiting[pid] = nil
      send(waiting, { labelled = true })
    end
  end
end

-- }=====================================================================

-- {=====================================================================
-- Exit reasons
-- ======================================================================

local CommandExit = {}
CommandExit.__name = "arbor.CommandExit"
CommandExit.__tostring = function(r)
  if r.exit_status ~= nil then return "exit status " .. tostring(r.exit_status) end
  return "killed by signal " .. tostring(r.signal)
end

-- The exit reason for a port's exit message.
local function reason_of(m)
  if m.exit == 0 then return "normal" end
  if m.exit ~= nil then return setmetatable({ exit_status = m.exit }, CommandExit) end
  return setmetatable({ signal = m.signal }, CommandExit)
end
M.reason_of = reason_of

-- }=====================================================================

-- {=====================================================================
-- Validation
-- ======================================================================

local FIELDS = { cwd = true, env = true, clear_env = true, ready = true,
                 ready_timeout = true, stop_signal = true, output = true }
local OUTPUTS = { log = true, inherit = true, null = true }

-- A bad field raises a BadSpec that M.command turns into an error at the
-- user's line, however deep in the checks it was found.
local BadSpec = {}
local function fail(fmt, ...)
  error(setmetatable({ message = string.format(
    "bad argument #1 to 'command' (" .. fmt .. ")", ...) }, BadSpec), 0)
end

-- How v appears in a message: strings quoted (NUL bytes shown as \0).
local function shown(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function check_signal(v, field)
  if type(v) == "string" and v:find("\0", 1, true) then
    fail("%s contains a NUL byte: %s", field, shown(v))
  end
  if (type(v) == "string" and port.signals[(v:gsub("^SIG", ""))])
     or (math.type(v) == "integer" and v > 0 and v <= 64) then
    return type(v) == "string" and v:gsub("^SIG", "") or v
  end
  fail("%s must be a signal name such as \"TERM\" or a number, got %s",
       field, type(v) == "string" and string.format("%q", v) or tostring(v))
end

-- The command as plain data, checked.
local function command_of(t)
  if type(t) ~= "table" then fail("table expected, got %s", type(t)) end
  local n = #t
  if n < 1 then fail("needs the command: {\"cmd\", \"arg\", ...}") end
  local argv = {}
  for i = 1, n do
    if type(t[i]) ~= "string" then
      fail("argument %d of the command must be a string, got %s", i, type(t[i]))
    end
    if t[i]:find("\0", 1, true) then
      fail("argument %d of the command contains a NUL byte", i)
    end
    argv[i] = t[i]
  end
  if argv[1] == "" then fail("the command is empty") end
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) and not FIELDS[k] then
      fail("unknown field %s; expected cwd, env, clear_env, ready, "
           .. "ready_timeout, stop_signal, output", type(k) == "string"
           and "'" .. k .. "'" or "[" .. tostring(k) .. "]")
    end
  end
  local cmd = { argv = argv, clear_env = t.clear_env == true,
                ready_timeout = DEFAULT_READY_TIMEOUT, stop_signal = "TERM",
                output = "log" }
  if t.cwd ~= nil then
    if type(t.cwd) ~= "string" then fail("cwd must be a string, got %s", type(t.cwd)) end
    if t.cwd:find("\0", 1, true) then fail("cwd contains a NUL byte") end
    cmd.cwd = t.cwd
  end
  if t.clear_env ~= nil and type(t.clear_env) ~= "boolean" then
    fail("clear_env must be a boolean, got %s", type(t.clear_env))
  end
  if t.env ~= nil then
    if type(t.env) ~= "table" then fail("env must be a table, got %s", type(t.env)) end
    cmd.env = {}
    for k, v in pairs(t.env) do
      if type(k) ~= "string" or k == "" or k:find("=", 1, true)
         or k:find("\0", 1, true) then
        fail("env names must be non-empty strings without '=' or NUL bytes, "
             .. "got %s", shown(k))
      end
      if type(v) ~= "string" and type(v) ~= "number" then
        fail("env value of %s must be a string, got %s", k, type(v))
      end
      if type(v) == "string" and v:find("\0", 1, true) then
        fail("env value of %s contains a NUL byte", k)
      end
      cmd.env[k] = tostring(v)
    end
  end
  local ready = t.ready
  if ready == "notify" then
    cmd.ready = "notify"
  elseif type(ready) == "table" then
    for k in pairs(ready) do
      if k ~= "line" then fail("ready has an unknown field %s; expected line", shown(k)) end
    end
    if type(ready.line) ~= "string" then
      fail("ready.line must be a Lua pattern (a string), got %s", type(ready.line))
    end
    local ok, err = port.pattern_check(ready.line)
    if not ok then fail("ready.line is not a valid pattern: %s", err) end
    cmd.ready = { line = ready.line }
  elseif ready ~= nil then
    fail("ready must be \"notify\" or {line = pattern}, got %s", type(ready))
  end
  if t.ready_timeout ~= nil then
    local ms = t.ready_timeout
    if math.type(ms) ~= "integer" or ms < 1 or ms > MAX_READY_TIMEOUT then
      fail("ready_timeout must be a positive integer of ms (at most %d), got %s",
           MAX_READY_TIMEOUT, shown(ms))
    end
    cmd.ready_timeout = t.ready_timeout
  end
  if t.stop_signal ~= nil then cmd.stop_signal = check_signal(t.stop_signal, "stop_signal") end
  if t.output ~= nil then
    if not OUTPUTS[t.output] then
      fail("output must be \"log\", \"inherit\" or \"null\", got %s", tostring(t.output))
    end
    cmd.output = t.output
  end
  return cmd
end

-- }=====================================================================

-- {=====================================================================
-- The child process
-- ======================================================================

local function child_id(cmd)
  return label_of(self()) or cmd.argv[1]
end

-- Lines logged before the child's id is known (during its start) wait
-- here, to be logged once the supervisor has labelled the child.
local holding = setmetatable({}, { __mode = "k" }) -- pid -> {{stream, line}}

-- Handles one output line: the log, the host's own stream, or nothing.
local function output_line(cmd, p, stream, line)
  local held = holding[self()]
  if held and cmd.output == "log" then
    held[#held + 1] = { stream, line }
    return
  end
  if cmd.output == "log" then
    logger.info{ msg = line, child = child_id(cmd), stream = stream,
                 os_pid = p:os_pid() }
  elseif cmd.output == "inherit" then
    local f = stream == "stderr" and io.stderr or io.stdout
    f:write(line, "\n")
    f:flush()
  end
end

-- Handles a notification datagram; returns true if it says READY=1.
local function notification(text)
  local ready = false
  for line in text:gmatch("[^\n]+") do
    if line == "READY=1" then ready = true end
    local status = line:match("^STATUS=(.*)$")
    if status then annotate.set(self(), "status_text", status) end
  end
  return ready
end

-- Logs a warning about the child, held like output lines while it starts
-- (so that it names the child's id once the supervisor gave it one).
local function warn(cmd, p, text)
  local held = holding[self()]
  if held then
    held[#held + 1] = { warning = text }
    return
  end
  logger.warning{ msg = text, child = child_id(cmd), os_pid = p:os_pid() }
end

-- Logs the lines held during the start, with the best id known.
local function release_held(cmd, p)
  local held = holding[self()]
  holding[self()] = nil
  for _, l in ipairs(held or {}) do
    if l.warning then warn(cmd, p, l.warning) else output_line(cmd, p, l[1], l[2]) end
  end
end

-- Builds port.spawn's options.
local function spawn_options(cmd)
  local o = table.move(cmd.argv, 1, #cmd.argv, 1, {})
  o.cwd, o.clear_env, o.stdin = cmd.cwd, cmd.clear_env, "null"
  if cmd.env then
    o.env = {}
    for k, v in pairs(cmd.env) do o.env[k] = v end
  end
  local through_messages = cmd.output == "log" or type(cmd.ready) == "table"
  o.stdout = through_messages and "message" or cmd.output
  o.stderr = through_messages and "message" or cmd.output
  o.notify = cmd.ready == "notify"
  -- The child ends after the command did, unless it is killed (its
  -- shutdown time ran out, brutal_kill): then nothing is left to wait for.
  o.owner_exit_signal = "KILL"
  return o
end

-- Waits for the command's exit, still handling its output.
local function wait_exit(cmd, p, sel)
  while true do
    local m = select_message(sel)
    if m.port then
      if m.exit ~= nil or m.signal ~= nil then return m end
      if m.stdout then output_line(cmd, p, "stdout", m.stdout)
      elseif m.stderr then output_line(cmd, p, "stderr", m.stderr)
      elseif m.notify then notification(m.notify) end
    end
  end
end

local function describe_exit(m)
  return tostring(reason_of(m) == "normal" and "exit status 0" or reason_of(m))
end

-- Does line match the ready pattern?  At most its first READY_LINE_MAX
-- bytes are looked at, within pattern_find's budget; a line that costs
-- more does not match: the first such line of a child logs a warning,
-- and costly.lines counts them (for the timeout's message).
local function ready_line(cmd, p, line, costly)
  local pattern = cmd.ready.line
  local found = port.pattern_find(line:sub(1, READY_LINE_MAX), pattern)
  if found ~= false then return found ~= nil end
  costly.lines = costly.lines + 1
  if costly.lines == 1 then
    warn(cmd, p, string.format("ready pattern %q is too costly to match "
      .. "against a line of %d bytes (it counts as not matching)", pattern,
      #line))
  end
  return false
end

-- Waits until the command is ready; returns true, or false and the
-- start's error (the command has then ended).
local function wait_ready(cmd, p, sel)
  local deadline = now() + cmd.ready_timeout
  local pattern = type(cmd.ready) == "table" and cmd.ready.line
  local what = pattern and string.format("a line matching %q", pattern)
               or "READY=1"
  local costly = { lines = 0 }
  while true do
    local left = deadline - now()
    local m = left > 0 and select_message(sel, left) or nil
    if m == nil then
      p:signal("KILL")
      wait_exit(cmd, p, sel)
      return false, new_error{ kind = "timeout", message = string.format(
        "%s: not ready after %d ms (waiting for %s%s)", cmd.argv[1],
        cmd.ready_timeout, what, costly.lines == 0 and "" or string.format(
          "; %d line%s too costly to match", costly.lines,
          costly.lines == 1 and " was" or "s were")) }
    end
    if m.port then
      if m.exit ~= nil or m.signal ~= nil then
        return false, new_error{ kind = "exited", reason = reason_of(m),
          message = string.format("%s: exited before it was ready (%s)",
                                  cmd.argv[1], describe_exit(m)) }
      end
      local line = m.stdout or m.stderr
      if line then
        output_line(cmd, p, m.stdout and "stdout" or "stderr", line)
        if pattern and ready_line(cmd, p, line, costly) then return true end
      elseif m.notify and notification(m.notify) and cmd.ready == "notify" then
        return true
      end
    elseif m.trapped and m.trapped.reason ~= "normal" then
      -- The supervisor itself is going down during our start.
      p:signal("KILL")
      wait_exit(cmd, p, sel)
      release_held(cmd, p)
      exit_self(m.trapped.reason)
    end
  end
end

local function run(cmd, reply)
  process.trap_exits(true)
  local me = self()
  local p, err = port.spawn(spawn_options(cmd))
  if p == nil then
    send(reply, { error = err })
    return
  end
  annotate.set(me, "os_pid", p:os_pid())
  holding[me] = {}
  local sel = new_selector():selecting_port(p)
    :selecting_trapped_exits(function(e) return { trapped = e } end)
  if cmd.ready ~= nil then
    local ok, why = wait_ready(cmd, p, sel)
    if not ok then
      release_held(cmd, p)
      send(reply, { error = why })
      return
    end
  end
  local subject = new_subject()
  if #holding[me] > 0 then
    -- Wait (briefly: a start function may be run by something that is
    -- not a supervisor) for the label, then log what was held with it.
    awaiting[me] = subject
    send(reply, { subject = subject })
    select_message(new_selector():selecting(subject), 1000)
    awaiting[me] = nil
  else
    send(reply, { subject = subject })
  end
  release_held(cmd, p)
  while true do
    local m = select_message(sel)
    if m.port then
      if m.exit ~= nil or m.signal ~= nil then
        annotate.clear(me)
        local reason = reason_of(m)
        if reason == "normal" then return end
        exit_self(reason)
      end
      if m.stdout then output_line(cmd, p, "stdout", m.stdout)
      elseif m.stderr then output_line(cmd, p, "stderr", m.stderr)
      elseif m.notify then notification(m.notify) end
    elseif m.trapped and m.trapped.reason ~= "normal" then
      -- "shutdown" from the supervisor (or any other exit signal): stop
      -- the command with its stop signal and end as told, once it ended.
      p:signal(cmd.stop_signal)
      wait_exit(cmd, p, sel)
      annotate.clear(me)
      exit_self(m.trapped.reason)
    end
  end
end

-- The start function's work, in the supervisor's process.
local function start(cmd)
  local reply = new_subject()
  local pid = process.spawn_link(run, cmd, reply)
  local mon = process.monitor(pid)
  local m = select_message(new_selector():selecting(reply)
    :selecting_process_down(mon, function(d) return { down = d.reason } end))
  process.demonitor(mon)
  if m.subject then return m.subject end
  process.unlink(pid)
  if m.down ~= nil then return nil, m.down end
  return nil, m.error
end

-- }=====================================================================

-- supervisor.command{...} -> child spec
function M.command(t)
  local ok, cmd = pcall(command_of, t)
  if not ok then
    if getmetatable(cmd) == BadSpec then error(cmd.message, 2) end
    error(cmd, 0)
  end
  local s = spec.worker(function() return start(cmd) end)
  s.command = cmd
  return s
end

return M
