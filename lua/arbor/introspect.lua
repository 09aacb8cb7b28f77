--[[
arbor.introspect: what runs in this host, as plain Lua tables (strings,
numbers, booleans and nested tables only, so arbor.json encodes them as
they are).  One source for `arbor status` (text and --json), `arbor
status --processes`, `arbor eval` and the dashboard.

  introspect.tree([root]) -> tree      root: a supervisor's subject;
                                       default the host's root tree
  introspect.processes([limit]) -> {proc...}, total
                                       every live process, by pid (or the
                                       limit busiest, busiest first)
  introspect.host() -> host            the host itself
  introspect.status([opts]) -> {host = host, tree = tree|nil,
                                processes = {...} if opts.processes,
                                processes_total = n if some were left
                                out (more than opts.limit, default
                                STATUS_PROCESS_LIMIT = 10000)}

Shapes (fields are only ever added; a field that is not known is absent):

  tree = { name = "root" (the spec's name or "root"), pid = "<0.5.1>",
           strategy = "one_for_one", uptime_ms = n,
           children = { child, ... }, error = text (not answering) }
  child = { id = "web" (text of the child's id), kind = "worker" |
            "supervisor", pid = "<0.7.1>" (while it runs), status =
            "running" | "restarting" | "stopped" | ..., restarts = n,
            started_at = ms on the host's monotonic clock, uptime_ms = n
            (while running), last_exit = text (its last exit reason,
            described safely), start_failure = text (why its last start
            failed, while it does not run), os_pid = n and status_text =
            text (an OS command child, from arbor.annotate),
            not_as_file = text (the last reload could not start it),
            children = { child, ... } and strategy/error for a nested
            supervisor }
  proc = { pid = "<0.7.1>", name = "root/web" (a supervisor's name or
           sup/child path, "main", or a name from arbor.annotate),
           kind = "worker" | "supervisor" | "system", main = bool,
           state = "running" | "runnable" | "waiting",
           waiting = "receive" | "select" | "call" | "sleep" | "net" |
                     "fs" | "port" | "wait" (while waiting),
           blocked_in = "process.receive" (the function it waits in),
           wakes_in = ms (a timeout is pending), wait_sources = n,
           messages = n (everything queued for it: subject messages,
           trapped exits, DOWNs), subject_messages, exits_queued,
           downs_queued, subjects, links, monitors, monitored_by,
           trap_exit = bool, memory = bytes, current = "file:line" (the
           innermost Lua function), current_function = name, depth = n,
           os_pid, status_text }
  host = { pid = "<0.1.1>" (main), os_pid = n, script = path, args =
           {...}, uptime_ms = n, started =
           "2026-11-30T07:00:00Z", now = "...Z", processes = n,
           memory = { lua = bytes, c = bytes }, serving = bool,
           reload = { result = "ok" | "error", text = line, at = "...Z",
                      ago_ms = n, dry_run = bool } (the last reload),
           file_differs = bool (the script on disk is not the text that
           runs), file_error = text (it cannot be read) }

"memory" of a process is the C memory the host holds for it (its process
struct, its subjects and monitors, queued message nodes, link ends).  The
Lua heap is shared by all processes and not accounted per process: the
collector frees objects without knowing who made them; host.memory.lua
is the whole heap.  What a process waits on is read from its suspended
coroutine (the C function it yielded in) and the core's accessors (its
selected sources, its timer): nothing is recorded on the hot paths.

Reading the tree calls each supervisor (which_children), so tree() and
status() block the caller, never the host; a supervisor that does not
answer within CALL_TIMEOUT_MS shows as error = "(not answering)".
Nothing here raises for a user's value: reasons go through
arbor.core.describe (by arbor.reload's describe).  Depends on process,
arbor.core, arbor.json, arbor.reload's describe and supervisor (required
lazily); arbor.annotate if it is there.
]]
local core = require "arbor.core"
local process = require "process"
local json = require "arbor.json" -- lists are marked json.array
local reload_describe = require("arbor.reload").describe

local M = {}

local CALL_TIMEOUT_MS = 2000

-- status{processes = true} lists at most this many (the busiest): an
-- answer about a host of millions of processes stays readable and small.
M.STATUS_PROCESS_LIMIT = 10000
local MAX_TEXT = 2000

-- State the main process publishes while it serves (see M._serving).
-- The host's clock (core.now) counts from 0 when the host started, so
-- that is its start, whenever this module is first required.
local host_state = { started_at = 0 }

-- Reasons and texts nobody vouches for, described safely and cut at
-- MAX_TEXT bytes (arbor.reload's describe: one rule for both answers).
local function describe(v)
  return reload_describe(v, MAX_TEXT)
end
M.describe = describe

local function pid_text(pid)
  if pid == nil then return nil end
  local ok, t = pcall(tostring, pid)
  return ok and t or nil
end

local function utc(seconds)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", seconds)
end

-- arbor.annotate's facts about pid (a table) or nil; never raises.
local function annotations(pid)
  local ok, annotate = pcall(require, "arbor.annotate")
  if not ok or type(annotate) ~= "table" or type(annotate.get) ~= "function"
  then
    return nil
  end
  local ok2, facts = pcall(annotate.get, pid)
  if ok2 and type(facts) == "table" then return facts end
  return nil
end

local function add_annotations(t, pid)
  local facts = pid and annotations(pid)
  if not facts then return end
  if math.type(facts.os_pid) == "integer" then t.os_pid = facts.os_pid end
  if facts.status_text ~= nil then
    t.status_text = describe(facts.status_text)
  end
  if type(facts.name) == "string" and t.name == nil then
    t.name = facts.name
  end
end

-- {=====================================================================
-- tree
-- ======================================================================

-- supervisor.which_children waits forever (as OTP's calls do); this is
-- the same request (lua/supervisor.lua's sup_call), bounded.
local function which_children(sup)
  local ok, list = pcall(process.try_call, sup, function(reply)
    return { op = "which_children", reply = reply }
  end, CALL_TIMEOUT_MS)
  if ok and type(list) == "table" then return list end
  return nil
end

local function id_text(id)
  if type(id) == "string" then return id end
  if math.type(id) == "integer" then return tostring(id) end
  return describe(id)
end

-- not_started: {[path] = reason text} from the last reload.
local function children_of(sup, path, not_started, depth, self_pid)
  local list = which_children(sup)
  if list == nil then return nil, "(not answering)" end
  -- The clock read after the answer: a supervisor busy restarting a
  -- child answers with a started_at later than any time read before.
  local now = core.now()
  local out = json.array {}
  for i, c in ipairs(list) do
    local id = id_text(c.id)
    local at = path == "" and id or path .. "/" .. id
    local child = { id = id, kind = c.kind, pid = pid_text(c.pid),
                    status = c.status, restarts = c.restarts,
                    started_at = c.started_at }
    if c.status == "running" and c.started_at then
      child.uptime_ms = now - c.started_at
    end
    if c.last_reason ~= nil then child.last_exit = describe(c.last_reason) end
    if c.start_failure ~= nil and c.status ~= "running" then
      child.start_failure = describe(c.start_failure)
    end
    if not_started[at] and c.status ~= "running" then
      child.not_as_file = not_started[at]
    end
    add_annotations(child, c.pid)
    if c.kind == "supervisor" and c.status == "running" and c.subject
       and c.pid ~= self_pid and depth < 64 then
      local kids, err = children_of(c.subject, at, not_started, depth + 1,
                                    c.pid)
      child.children = kids
      child.error = err
    end
    out[i] = child
  end
  return out
end

function M.tree(root)
  root = root or host_state.root
  if root == nil then return nil end
  if not core.is_subject(root) then
    error("bad argument #1 to 'tree' (a supervisor's subject expected, got "
          .. type(root) .. ")", 2)
  end
  local now = core.now()
  local root_pid = process.subject_owner(root)
  local t = { pid = pid_text(root_pid), name = "root" }
  if root == host_state.root and host_state.tree then
    t.name = host_state.tree.name or "root"
    t.strategy = host_state.tree.strategy
    t.uptime_ms = now - host_state.root_started_at
  end
  local not_started = {}
  if root == host_state.root then
    for _, f in ipairs(host_state.not_started or {}) do
      not_started[f.path] = describe(f.reason)
    end
  end
  local kids, err = children_of(root, "", not_started, 1, root_pid)
  t.children = kids or json.array {}
  t.error = err
  return t
end

-- }=====================================================================

-- {=====================================================================
-- processes
-- ======================================================================

-- Function value -> {category, "module.name"}, built from the modules
-- loaded now (a module loaded later is seen on the next call).
local function wait_map()
  local map = {}
  local function add(t, module, category_of)
    if type(t) ~= "table" then return end
    for name, f in next, t do
      if type(f) == "function" and type(name) == "string" and not map[f] then
        map[f] = { category_of(name), module .. "." .. name }
      end
    end
  end
  local loaded = package.loaded
  add(loaded.process, "process", function(name)
    if name == "receive" then return "receive" end
    if name == "select" then return "select" end
    if name:match("^sleep") then return "sleep" end
    return "wait"
  end)
  for _, module in ipairs { "net", "fs", "port" } do
    add(loaded[module], module, function() return module end)
  end
  -- Methods of the binding's objects (socket:receive, file:read, ...):
  -- copies, since the metatables themselves are the host's.
  for key, methods in next, core.type_methods() do
    local kind = key:match("^arbor%.(%a+)$")
    if kind then
      local category = (kind == "Socket" or kind == "Listener"
                        or kind == "Udp") and "net"
                       or kind == "File" and "fs"
                       or kind:match("^Port") and "port" or "wait"
      add(methods, kind:lower(), function() return category end)
    end
  end
  return map
end

-- Pid text -> name, from the tree (supervisors by name, children by
-- path) and main.
local function names_from_tree(names, t, path)
  for _, c in ipairs(t.children or {}) do
    local at = path .. "/" .. c.id
    if c.pid and not names[c.pid] then names[c.pid] = at end
    if c.children then names_from_tree(names, c, at) end
  end
end

local function shape(info, map, names)
  local p = {
    pid = pid_text(info.pid), kind = info.kind, main = info.main,
    state = info.state, messages = info.messages,
    subject_messages = info.subject_messages,
    exits_queued = info.exits_queued, downs_queued = info.downs_queued,
    subjects = info.subjects, links = info.links, monitors = info.monitors,
    monitored_by = info.monitored_by, trap_exit = info.trap_exit,
    memory = info.memory, current = info.current,
    current_function = info.current_name, depth = info.depth,
    wakes_in = info.wakes_in,
  }
  p.name = names[p.pid] or (info.main and "main" or nil)
  if info.state == "waiting" then
    local hit = info.blocked_in and map[info.blocked_in]
    if hit then
      p.waiting, p.blocked_in = hit[1], hit[2]
    else
      p.waiting = "wait"
      p.blocked_in = info.blocked_name
    end
    -- A call is a select inside process.try_call.
    if p.waiting == "select" and info.current_name == "try_call" then
      p.waiting = "call"
    end
    p.wait_sources = (info.selected_subjects or 0)
                     + (info.selected_monitors or 0)
                     + (info.exits_selected and 1 or 0)
  end
  if info.not_started then p.not_started = true end
  add_annotations(p, info.pid)
  return p
end

-- processes([limit]) -> list, total: every live process, or when there
-- are more than limit, the limit busiest (most messages, then most
-- memory), busiest first; total counts them all.
function M.processes(limit)
  if limit ~= nil and (math.type(limit) ~= "integer" or limit < 0) then
    error("bad argument #1 to 'processes' (a count >= 0 expected)", 2)
  end
  local names = {}
  if host_state.root then
    local ok, t = pcall(M.tree)
    if ok and t then
      if t.pid then names[t.pid] = t.name end
      names_from_tree(names, t, t.name or "root")
    end
  end
  local map = wait_map()
  local out = json.array {}
  local list, total = core.procs(limit)
  for i, info in ipairs(list) do out[i] = shape(info, map, names) end
  return out, total
end

-- }=====================================================================

-- {=====================================================================
-- host
-- ======================================================================

local function os_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  return line and math.tointeger(tonumber(line:match("^(%d+)")))
end

local MAX_SOURCE = 16 << 20 -- scripts larger than this are not compared

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read(MAX_SOURCE + 1)
  f:close()
  return text or ""
end

function M.host()
  local now = core.now()
  local lua_bytes, c_bytes = core.memory()
  local wall = os.time()
  local h = {
    os_pid = os_pid(),
    uptime_ms = now - host_state.started_at,
    now = utc(wall),
    processes = core.process_count(),
    memory = { lua = lua_bytes, c = c_bytes },
    serving = host_state.root ~= nil,
    script = host_state.script or (type(arg) == "table" and arg[0]) or nil,
    pid = host_state.main_pid and pid_text(host_state.main_pid) or nil,
  }
  if h.pid == nil then
    for _, info in ipairs(core.procs()) do
      if info.main then h.pid = pid_text(info.pid) end
    end
  end
  h.started = utc(wall - h.uptime_ms // 1000)
  if host_state.args then
    local args = json.array {}
    for i = 1, host_state.args.n or #host_state.args do
      args[i] = describe(host_state.args[i])
    end
    h.args = args
  end
  local r = host_state.reload
  if r then
    h.reload = { result = r.code == 0 and "ok" or "error", text = r.text,
                 at = utc(r.wall), ago_ms = now - r.at, dry_run = r.dry_run }
  end
  if host_state.script and host_state.source then
    local text, err = read_file(host_state.script)
    if text == nil then
      h.file_error = describe(err)
    elseif #text <= MAX_SOURCE then
      h.file_differs = text ~= host_state.source
    end
  end
  return h
end

-- status([opts]): opts.processes adds the processes, at most
-- opts.limit of them (default STATUS_PROCESS_LIMIT, the busiest), with
-- processes_total when some were left out.
function M.status(opts)
  local s = { host = M.host() }
  if host_state.root then
    local ok, t = pcall(M.tree)
    s.tree = ok and t or { error = describe(t) }
  end
  if type(opts) == "table" and opts.processes then
    local list, total = M.processes(opts.limit or M.STATUS_PROCESS_LIMIT)
    s.processes = list
    if total > #list then s.processes_total = total end
  end
  return s
end

-- }=====================================================================

-- {=====================================================================
-- What the main process publishes (lua/arbor/main.lua)
-- ======================================================================

-- The source text that runs now, for file_differs; nil if unreadable.
local function snapshot_source(script)
  local text = read_file(script)
  if text and #text <= MAX_SOURCE then return text end
  return nil
end

-- Main starts serving: state = {script, args, root, tree, main_pid}.
function M._serving(state)
  host_state.script = state.script
  host_state.args = state.args
  host_state.root = state.root
  host_state.tree = state.tree
  host_state.main_pid = state.main_pid
  host_state.root_started_at = core.now()
  host_state.source = snapshot_source(state.script)
end

-- Main ran a script (serving or not).
function M._main(script, main_pid, args)
  host_state.script = script
  host_state.main_pid = main_pid
  host_state.args = args
end

-- A reload finished: code 0 ok, else failed; tree and not_started when
-- it was applied.
function M._reloaded(code, text, dry_run, applied)
  host_state.reload = { code = code, text = text, dry_run = dry_run,
                        at = core.now(), wall = os.time() }
  if applied then
    host_state.tree = applied.tree
    host_state.not_started = applied.not_started
    host_state.source = snapshot_source(host_state.script)
  end
end

-- }=====================================================================

return M
