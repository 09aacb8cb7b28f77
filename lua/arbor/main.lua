--[[
arbor.main: the main process's body.  The host runs it with the script's
loaded chunk, the script's path and its arguments.

If the chunk returns a supervisor.spec value, the script is a service:
main starts that spec as the root tree and serves until a signal (the
host's ordered shutdown, exit 0) or until the root exits (exit 1 after
it gave up).  While serving it answers the control socket (status,
reload, stop), SIGHUP and --watch with reloads:

  1. load the script again, and the Lua modules it required from its
     folder, in a fresh environment; take the new root spec;
  2. resolve it: run every init, nested trees included (init only
     declares), so an invalid tree fails here;
  3. diff it against the running tree (arbor.diff);
  4. apply the edit through the supervisors.
A failure in 1 or 2 changes nothing: it prints `file:line: message` and
the old tree goes on.
]]
-- process, supervisor and arbor.diff are required when a script turns
-- out to be a service: an ordinary script starts without compiling them.
local core = require "arbor.core"
local process, supervisor, diff

local EXIT = {}

local function script_dir(script)
  return script:match("^(.*)/[^/]*$") or "."
end

-- Loads the script afresh: a new environment, and modules from the
-- script's folder loaded again in it (others come from package.loaded).
local function load_fresh(script, args)
  local dir = script_dir(script)
  local env = setmetatable({}, { __index = _G })
  local fresh = {}
  local path = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  env.require = function(name)
    if fresh[name] ~= nil then return fresh[name] end
    local file = package.searchpath(name, path)
    if file == nil then return require(name) end
    local chunk, err = loadfile(file, "bt", env)
    if chunk == nil then error(err, 0) end
    local value = chunk(name, file)
    if value == nil then value = true end
    fresh[name] = value
    return value
  end
  local chunk, err = loadfile(script, "bt", env)
  if chunk == nil then error(err, 0) end
  return chunk(table.unpack(args, 1, args.n))
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
-- status: the running tree, drawn
-- ======================================================================

local function status_lines(sup, prefix, lines, now)
  local children = supervisor.which_children(sup)
  local width = 0
  for _, c in ipairs(children) do
    width = math.max(width, #tostring(c.id))
  end
  for i, c in ipairs(children) do
    local last = i == #children
    local row = string.format("%s%s%-" .. width .. "s  %-10s %-10s",
                              prefix, last and "└─ " or "├─ ", tostring(c.id),
                              c.pid and tostring(c.pid) or "-", c.status)
    if c.status == "running" and c.started_at then
      row = row .. "  up " .. format_ms(now - c.started_at)
    end
    row = row .. "  restarts " .. c.restarts
    if c.last_reason ~= nil then
      row = row .. "  last exit: " .. tostring(c.last_reason)
    end
    if c.kind == "supervisor" then row = row .. "  (supervisor)" end
    lines[#lines + 1] = row
    if c.kind == "supervisor" and c.status == "running" and c.subject
       and c.pid ~= process.subject_owner(sup) then
      local ok = pcall(status_lines, c.subject,
                       prefix .. (last and "   " or "│  "), lines, now)
      if not ok then
        lines[#lines + 1] = prefix .. (last and "   " or "│  ")
                            .. "(not answering)"
      end
    end
  end
end

local function status(root, tree, started_at)
  local now = core.now()
  local lines = {
    string.format("%s %s  %s  up %s", tree.name or "root",
                  tostring(process.subject_owner(root)), tree.strategy,
                  format_ms(now - started_at)),
  }
  status_lines(root, "", lines, now)
  return table.concat(lines, "\n")
end

-- }=====================================================================

-- {=====================================================================
-- reload
-- ======================================================================

-- Returns exit code and text.  current is the resolved running tree.
local function reload(state, dry_run)
  local ok, new_tree = pcall(load_fresh, state.script, state.args)
  if not ok then
    return 1, "reload failed: " .. tostring(new_tree)
  end
  if not supervisor.is_spec(new_tree) then
    return 1, string.format("reload failed: %s: the script returned a %s, "
                            .. "not a supervisor.spec value", state.script,
                            type(new_tree))
  end
  local resolved
  ok, resolved = pcall(supervisor.resolve, new_tree)
  if not ok then
    return 1, "reload failed: " .. tostring(resolved)
  end
  local edit = diff.tree(state.current, resolved)
  local strategy = state.current.tree.strategy
  if dry_run then
    local acc = diff.summarize(edit, strategy, "", nil, true)
    return 0, "reload plan: " .. diff.line(acc)
  end
  local acc = diff.summarize(edit, strategy, "", nil, false)
  if not edit.empty then
    local applied, restarted = pcall(supervisor.apply, state.root, edit, "")
    if not applied then
      return 1, "reload failed while applying: " .. tostring(restarted)
    end
    acc.restarted = restarted
  end
  state.current = resolved
  state.tree = new_tree
  return 0, "reload: " .. diff.line(acc)
end

-- }=====================================================================

local function serve(tree, script, args)
  process = require "process"
  diff = require "arbor.diff"
  -- The control socket first: a second host on the same socket is
  -- refused before it starts anything.
  local control = process.new_subject()
  -- false: the host printed why (one line) and exits 1.
  if not core.serve(control) then return end
  local current = supervisor.resolve(tree)
  local root, err = supervisor.start_spec(tree)
  if root == nil then error(err, 0) end
  local notify = require "arbor.notify" -- systemd: READY, RELOADING, STATUS
  notify.ready(("running %d children"):format(#supervisor.which_children(root)))
  local root_pid = process.subject_owner(root)
  process.trap_exits(true)
  local state = { script = script, args = args, current = current,
                  tree = tree, root = root }
  local started_at = core.now()
  local sel = process.new_selector()
    :selecting(control)
    :selecting_trapped_exits(function(e) return { [EXIT] = e } end)
  while true do
    local msg = process.select(sel)
    if msg[EXIT] then
      local e = msg[EXIT]
      if e.pid == root_pid then
        if e.reason == "normal" then return end
        error("root supervisor exited: " .. tostring(e.reason), 0)
      end
      -- The host's ordered shutdown asks main to stop last.
      if e.reason == "shutdown" then return end
    elseif msg.cmd == "reload" then
      if not msg.dry_run then notify.reloading("reloading " .. script) end
      local code, text = reload(state, msg.dry_run)
      if not msg.dry_run then notify.ready(text) end
      if code == 0 then say(text) else complain(text) end
      if msg.conn then core.control_reply(msg.conn, code, text) end
    elseif msg.cmd == "status" then
      local ok, text = pcall(status, root, state.tree, started_at)
      if msg.conn then
        core.control_reply(msg.conn, ok and 0 or 1, tostring(text))
      end
    elseif msg.cmd == "stop" then
      if msg.conn then core.control_reply(msg.conn, 0, "stopping") end
      core.shutdown()
    elseif msg.conn then
      core.control_reply(msg.conn, 2, "unknown command: " .. tostring(msg.cmd))
    end
  end
end

return function(chunk, script, ...)
  local dir = script_dir(script)
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  package.cpath = dir .. "/?.so;" .. package.cpath -- C modules beside it
  local result = chunk(...)
  -- A spec can only exist if the script loaded the supervisor module.
  supervisor = package.loaded.supervisor
  if supervisor and supervisor.is_spec(result) then
    return serve(result, script, table.pack(...))
  end
  if core.serving() then
    -- --watch or --control given for a script that is not a service.
    error(script .. ": --watch and --control need a script that returns "
          .. "a supervisor.spec value", 0)
  end
end
