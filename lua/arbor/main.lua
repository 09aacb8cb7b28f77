--[[
arbor.main: the main process's body.  The host runs it with the script's
loaded chunk, the script's path and its arguments.

If the chunk returns a supervisor.spec value, the script is a service:
main starts that spec as the root tree and serves until a signal (the
host's ordered shutdown, exit 0) or until the root exits (exit 1 after
it gave up).  While serving it answers the control socket (status,
reload, stop), SIGHUP and --watch with reloads:

  1. in a process of its own, the loader (arbor.reload): load the script
     again in a fresh environment, take the new root spec, resolve it
     (every init, nested trees included), diff it against the running
     tree;
  2. here, when the loader answers: apply the edit through the
     supervisors.
Main never runs the script's code itself while serving: it keeps
answering status and stop while a loader works, gives each loader a
deadline (ARBOR_RELOAD_TIMEOUT_MS, default 10 s) and kills it when that
passes.  A failure in 1 changes nothing: it prints `file:line: message`
(or what went wrong) and the old tree goes on.  Reloads are served one
at a time, in the order they arrived.

os.exit inside a process is the host's ordered shutdown, as Erlang's
init:stop(Code) is: main installs it before the script runs.  The caller
asks for the exit status (Lua's rules: true or none 0, false 1, an
integer n as exit(3) takes it, n & 0xff), starts the shutdown SIGTERM
starts (lua/arbor/shutdown.lua: every tree stopped newest first, each
child's shutdown time honoured, command children signalled and reaped,
the log flushed) and waits, never returning, until the shutdown ends it.
Where the caller cannot wait (inside a call from C: a table.sort
comparator, a __gc) the shutdown starts all the same and os.exit raises
(the process ends there, with a report saying why); outside any process
(the host's own setup, before main runs) Lua's own os.exit ends the host
at once.
]]
-- process, supervisor, arbor.diff and arbor.reload are required when a
-- script turns out to be a service: an ordinary script starts without
-- compiling them.
local core = require "arbor.core"
local process, supervisor, diff, reload

-- Private keys tag the messages main maps out of its selectors.
local EXIT, LOADED, LOADER_DOWN = {}, {}, {}

-- How long a loader may work before it is killed, unless
-- ARBOR_RELOAD_TIMEOUT_MS says otherwise.
local DEFAULT_RELOAD_TIMEOUT_MS = 10000

local function script_dir(script)
  return script:match("^(.*)/[^/]*$") or "."
end

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function complain(line)
  io.stderr:write(line, "\n")
  io.stderr:flush()
end

local function format_ms(ms)
  if ms < 1000 then return string.format("%d ms", ms) end
  if ms < 60000 then return string.format("%.1f s", ms / 1000) end
  if ms < 3600000 then return string.format("%.1f min", ms / 60000) end
  return string.format("%.1f h", ms / 3600000)
end

-- {=====================================================================
-- status: the running tree, drawn (the facts are arbor.introspect's)
-- ======================================================================

-- Text from the tree (ids, reasons, names) as one line a terminal only
-- shows: a reason can hold a peer's bytes, and a newline or an escape
-- sequence in it must not draw fake rows or drive the operator's
-- terminal.  Control bytes become \xNN.
local function shown(text)
  return (tostring(text):gsub("%c", function(c)
    return string.format("\\x%02x", c:byte())
  end))
end

-- Rows for children (introspect's child tables) under prefix; failed
-- collects {path, text} of children the last reload could not start.
local function status_lines(children, prefix, lines, path, failed)
  local width = 0
  for _, c in ipairs(children) do width = math.max(width, #shown(c.id)) end
  for i, c in ipairs(children) do
    local last = i == #children
    local at = path == "" and c.id or path .. "/" .. c.id
    -- Padded by hand: string.format takes widths up to 99 only, and an
    -- id may be longer.
    local id = shown(c.id)
    local row = string.format("%s%s%s  %-10s %-10s",
                              prefix, last and "└─ " or "├─ ",
                              id .. string.rep(" ", width - #id),
                              c.pid or "-", c.status)
    if c.uptime_ms then row = row .. "  up " .. format_ms(c.uptime_ms) end
    row = row .. "  restarts " .. c.restarts
    if c.os_pid then row = row .. "  os pid " .. c.os_pid end
    if c.status_text then
      row = row .. "  status: " .. shown(c.status_text)
    end
    if c.last_exit then row = row .. "  last exit: " .. shown(c.last_exit) end
    if c.start_failure then
      row = row .. "  start failed: " .. shown(c.start_failure)
    end
    if c.kind == "supervisor" then row = row .. "  (supervisor)" end
    lines[#lines + 1] = row
    if c.not_as_file then failed[#failed + 1] = { at, c.not_as_file } end
    local inner = prefix .. (last and "   " or "│  ")
    if c.children then
      status_lines(c.children, inner, lines, at, failed)
    elseif c.error then
      lines[#lines + 1] = inner .. shown(c.error)
    end
  end
end

-- The tree, then what the host knows about its file: while a child the
-- last reload could not start does not run, the running tree is not what
-- the file says.
local function status_text(st)
  local tree, host = st.tree, st.host
  local lines = {
    string.format("%s %s  %s  up %s", shown(tree.name or "root"),
                  tree.pid or "-",
                  tree.strategy or "-", format_ms(tree.uptime_ms or 0)),
  }
  local failed = {}
  status_lines(tree.children or {}, "", lines, "", failed)
  if tree.error then lines[#lines + 1] = shown(tree.error) end
  for _, f in ipairs(failed) do
    lines[#lines + 1] = "not as the file says: the last reload could not "
                        .. "start " .. shown(f[1]) .. ": " .. shown(f[2])
  end
  local r = host.reload
  if r then
    lines[#lines + 1] = string.format("last reload%s: %s %s ago: %s",
                                      r.dry_run and " (dry run)" or "",
                                      r.result == "ok" and "ok" or "FAILED",
                                      format_ms(r.ago_ms), r.text)
  end
  if host.file_differs then
    lines[#lines + 1] = "the script on disk differs from what runs "
                        .. "(arbor reload applies it)"
  elseif host.file_error then
    lines[#lines + 1] = "the script cannot be read: " .. host.file_error
  end
  return table.concat(lines, "\n")
end

-- A cell of the processes table: text cut to width.
local function cell(text, width)
  text = shown(text)
  if #text > width then text = text:sub(1, width - 1) .. "~" end
  return text
end

-- `arbor status --processes`: one row per process, like observer's table.
local function processes_text(procs)
  local lines = { string.format("%-11s %-22s %-10s %-8s %-14s %6s %8s  %s",
                                "PID", "NAME", "KIND", "STATE", "WAITING",
                                "MSGS", "MEMORY", "CURRENT") }
  for _, p in ipairs(procs) do
    local waiting = p.waiting or ""
    if p.wakes_in then waiting = waiting .. " " .. format_ms(p.wakes_in) end
    local current = p.current or ""
    if p.current_function then
      current = p.current_function .. " " .. current
    end
    lines[#lines + 1] = (string.format(
      "%-11s %-22s %-10s %-8s %-14s %6d %8d  %s", cell(p.pid, 11),
      cell(p.name or "", 22), p.kind, p.state, cell(waiting, 14),
      p.messages, p.memory, shown(current)):gsub("%s+$", ""))
  end
  lines[#lines + 1] = string.format("%d processes", #procs)
  return table.concat(lines, "\n")
end

-- The answer to `status [--json] [--processes]`.
local function status(request)
  local introspect = require "arbor.introspect"
  local st = introspect.status { processes = request.processes }
  if request.json then return require("arbor.json").encode(st) end
  local text = status_text(st)
  if st.processes then
    text = text .. "\n\n" .. processes_text(st.processes)
    if st.processes_total then
      text = text .. string.format(" shown of %d: the busiest, by messages "
                                   .. "queued then memory", st.processes_total)
    end
  end
  return text
end

-- }=====================================================================

-- {=====================================================================
-- reload
-- ======================================================================

local function reload_timeout()
  local text = os.getenv("ARBOR_RELOAD_TIMEOUT_MS")
  if text == nil or text == "" then return DEFAULT_RELOAD_TIMEOUT_MS end
  local ms = math.tointeger(tonumber(text))
  if ms == nil or ms <= 0 then
    error("ARBOR_RELOAD_TIMEOUT_MS must be a whole number of milliseconds "
          .. "> 0, got '" .. text .. "'", 0)
  end
  return ms
end

local function answer(request, code, text)
  require("arbor.introspect")._reloaded(code, text, request.dry_run,
                                        request.applied)
  -- With --log-format json or --log-file the result is a log event.
  if core.log_reload(code, text) then
  elseif code == 0 then say(text) else complain(text) end
  if request.conn then core.control_reply(request.conn, code, text) end
  if request.reply then -- the dashboard's
    process.send(request.reply, { code = code, text = text })
  end
end

-- Applies the plan a loader made (a dry run only prints it).  Returns exit
-- code and text.
local function apply_plan(state, plan, dry_run)
  if dry_run then return 0, "reload plan: " .. diff.line(plan.prediction) end
  local applied, acc = pcall(reload.apply, state.root, plan)
  if not applied then
    return 1, "reload failed while applying: " .. reload.describe(acc)
  end
  state.current = plan.resolved
  state.tree = plan.tree
  state.not_started = acc.not_started
  state.applied = { tree = plan.tree, not_started = acc.not_started }
  return 0, "reload: " .. diff.line(acc)
end

-- }=====================================================================

local function serve(tree, script, args)
  process = require "process"
  diff = require "arbor.diff"
  reload = require "arbor.reload"
  local timeout = reload_timeout()
  -- The control socket first: a second host on the same socket is
  -- refused before it starts anything.
  local control = process.new_subject()
  -- false: the host printed why (one line) and exits 1.
  if not core.serve(control) then return end
  -- --dashboard: its token and address are checked before the tree starts.
  local dash_address, dash_token_file = core.dashboard()
  local dashboard, dash_config, dash_pid
  if dash_address then
    dashboard = require "arbor.dashboard"
    local derr
    dash_config, derr = dashboard.prepare(dash_address, dash_token_file)
    if dash_config == nil then error(derr, 0) end
  end
  local current = supervisor.resolve(tree)
  local root, err = supervisor.start_spec(tree)
  if root == nil then error(err, 0) end
  local notify = require "arbor.notify" -- systemd: READY, RELOADING, STATUS
  notify.ready(("running %d children"):format(#supervisor.which_children(root)))
  local root_pid = process.subject_owner(root)
  process.trap_exits(true)
  local state = { script = script, args = args, current = current,
                  tree = tree, root = root }
  require("arbor.introspect")._serving { script = script, args = args,
                                         root = root, tree = tree,
                                         main_pid = process.self() }
  if dashboard then
    -- A tree of its own beside the root, never inside it.
    local d, derr = dashboard.start(dash_config, root, control)
    if d == nil then error("dashboard: " .. reload.describe(derr), 0) end
    dash_pid = process.subject_owner(d)
    say("dashboard: " .. dashboard.url(dash_config,
                                       dash_config.token_file == nil))
  end
  local function on_exit(e) return { [EXIT] = e } end
  local idle = process.new_selector()
    :selecting(control)
    :selecting_trapped_exits(on_exit)
  local pending = {} -- reload requests not started yet, oldest first
  local loading      -- the loader at work (arbor.reload's start, and more)

  local function start_next()
    if loading or #pending == 0 then return end
    local request = table.remove(pending, 1)
    if not request.dry_run then notify.reloading("reloading " .. script) end
    loading = reload.start(state.current, script, args, request.dry_run,
                           state.root)
    loading.request = request
    loading.deadline = core.now() + timeout
    loading.selector = process.new_selector()
      :selecting(control)
      :selecting_trapped_exits(on_exit)
      :selecting(loading.reply, function(m) return { [LOADED] = m } end)
      :selecting_process_down(loading.monitor,
                              function(d) return { [LOADER_DOWN] = d } end)
  end

  -- The loader is done (answered, ended, or overdue): forget it, answer
  -- its request, start the next one.
  local function finish(code, text)
    process.demonitor(loading.monitor)
    local request = loading.request
    loading = nil
    request.applied, state.applied = state.applied, nil
    if not request.dry_run then notify.ready(text) end
    answer(request, code, text)
    start_next()
  end

  -- Main is leaving: no loader outlives it, no request goes unanswered.
  local function leave()
    if loading then
      process.kill(loading.pid)
      process.demonitor(loading.monitor)
      pending[#pending + 1] = loading.request
      loading = nil
    end
    for _, request in ipairs(pending) do
      if request.conn then
        core.control_reply(request.conn, 1, "the host is shutting down")
      end
      if request.reply then
        process.send(request.reply, { code = 1,
                                      text = "the host is shutting down" })
      end
    end
  end

  while true do
    local msg
    if loading then
      local left = loading.deadline - core.now()
      if left > 0 then msg = process.select(loading.selector, left) end
      if msg == nil then
        process.kill(loading.pid)
        finish(1, string.format(
          "reload failed: %s: loading did not finish within %d ms (an "
          .. "endless loop, or a wait, at load time or in an init?); the "
          .. "old tree goes on", script, timeout))
      end
    else
      msg = process.select(idle)
    end
    if msg == nil then
      -- (the overdue loader, handled above)
    elseif msg[EXIT] then
      local e = msg[EXIT]
      if e.pid == root_pid then
        leave()
        if core.classify(e.reason) == "normal" then return end
        error("root supervisor exited: " .. reload.describe(e.reason), 0)
      end
      if e.pid == dash_pid then
        -- The dashboard gave up; the user's tree goes on without it.
        dash_pid = nil
        complain("arbor: the dashboard stopped: "
                 .. reload.describe(e.reason))
      -- The host's ordered shutdown asks main to stop last.
      elseif core.classify(e.reason) == "shutdown" then
        leave()
        return
      end
    elseif msg[LOADED] then
      local result = msg[LOADED]
      if result.err then
        finish(1, "reload failed: " .. result.err)
      else
        finish(apply_plan(state, result.plan, loading.request.dry_run))
      end
    elseif msg[LOADER_DOWN] then
      finish(1, "reload failed: " .. script .. ": the loading process "
                .. "ended before it answered: "
                .. reload.describe(msg[LOADER_DOWN].reason))
    elseif msg.cmd == "reload" then
      pending[#pending + 1] = { dry_run = msg.dry_run, conn = msg.conn,
                                reply = msg.reply }
      start_next()
    elseif msg.cmd == "status" then
      local ok, text = pcall(status, msg)
      if msg.conn then
        core.control_reply(msg.conn, ok and 0 or 1,
                           ok and text or reload.describe(text))
      end
    elseif msg.cmd == "eval" then
      -- In processes of its own: main goes on serving meanwhile.
      require("arbor.eval").start(msg, root)
    elseif msg.cmd == "stop" then
      if msg.conn then core.control_reply(msg.conn, 0, "stopping") end
      core.shutdown()
    elseif msg.conn then
      core.control_reply(msg.conn, 2, "unknown command: " .. tostring(msg.cmd))
    end
  end
end

-- {=====================================================================
-- os.exit: the ordered shutdown with an exit status
-- ======================================================================

-- The status Lua's os.exit would give the OS for code.
local function exit_status(code)
  if code == nil or code == true then return 0 end
  if code == false then return 1 end
  local n = math.tointeger(type(code) == "string" and tonumber(code) or code)
  if n == nil then
    error("bad argument #1 to 'exit' (an integer or a boolean expected, "
          .. "got " .. (type(code) == "number" and "a float" or type(code))
          .. ")", 3)
  end
  return n & 0xff
end

local function install_exit()
  local lua_exit = os.exit
  local isyieldable = coroutine.isyieldable
  os.exit = function(code, close)
    local status = exit_status(code)
    local proc = package.loaded.process or require "process"
    if not pcall(proc.self) then
      return lua_exit(status, close) -- the host's setup: at once, as Lua does
    end
    core.set_exit_code(status)
    core.shutdown() -- (already under way: only the status changes)
    if not isyieldable() then
      error("os.exit: the host is shutting down (exit status " .. status
            .. "); this process cannot wait for it inside a call from C, "
            .. "so it ends here", 2)
    end
    -- Stopped by the shutdown like any process: a trapped exit must not
    -- keep it waiting the 5 s a worker is given.
    proc.trap_exits(false)
    proc.receive(proc.new_subject())
  end
end

-- }=====================================================================

return function(chunk, script, ...)
  install_exit()
  local dir = script_dir(script)
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  package.cpath = dir .. "/?.so;" .. package.cpath -- C modules beside it
  local result = chunk(...)
  -- A spec can only exist if the script loaded the supervisor module.
  supervisor = package.loaded.supervisor
  if supervisor and supervisor.is_spec(result) then
    return serve(result, script, table.pack(...))
  end
  if core.dashboard() then
    error(script .. ": --dashboard needs a script that returns a "
          .. "supervisor.spec value", 0)
  end
  if core.serving() then
    -- --watch or --control given for a script that is not a service.
    error(script .. ": --watch and --control need a script that returns "
          .. "a supervisor.spec value", 0)
  end
end
