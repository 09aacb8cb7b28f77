--[[
arbor.reload: what a reload works out before anything changes, and the
process that works it out.

plan(current, script, args, source, dry_run) is the whole decision,
in order: load the script again in a fresh environment (with the Lua
modules it requires from its folder, loaded again too), check that it
returned a supervisor.spec value, resolve it (every init, nested trees
included), and diff it against `current`, the running tree resolved
(arbor.diff).  It starts nothing and changes nothing; any failure
raises.  `source`, when given, is the script's text instead of the file
(the fuzz target feeds it that way).

start(...) runs plan in a process of its own, the loader.  Whatever the
script does while it loads -- raise a value whose __tostring raises,
yields or loops, call os.exit, loop forever, wait forever in an init --
ends at worst that process: the main process keeps serving its control
socket, gives the loader a deadline and kills it when it passes.  The
loader answers with one message: {plan = ...} or {err = text}, where text
is a one-line string made without trusting the error value.

Depends on process, arbor.core, arbor.spec and arbor.diff; never on the
main process's state (it is handed what it needs).
]]
local process = require "process"
local core = require "arbor.core"
local spec = require "arbor.spec"
local diff = require "arbor.diff"

local M = {}

-- Error texts longer than this are cut: a reload's answer is one line.
local MAX_TEXT = 4000

--[[
M.describe(v [, max]) -> string: a one-line description of an error
value nobody vouches for.  Strings are themselves; anything else goes
through core.describe, which never lets a __tostring that raises, yields,
loops or returns a non-string through (it gives "(error object is a
<type> value)" then).  Texts longer than max bytes (default MAX_TEXT)
are cut.  arbor.introspect describes reasons with it too.
]]
function M.describe(v, max)
  max = max or MAX_TEXT
  local text
  if type(v) == "string" then
    text = v
  else
    local ok, t = pcall(core.describe, v)
    text = ok and type(t) == "string" and t
           or "(error object is a " .. type(v) .. " value)"
  end
  if #text > max then
    text = text:sub(1, max) .. string.format(" ... (%d more bytes)",
                                             #text - max)
  end
  return text
end

local function script_dir(script)
  return script:match("^(.*)/[^/]*$") or "."
end

M.script_dir = script_dir

--[[
The fresh environment.  Globals come from _G; `require` loads modules
from the script's folder afresh (once per load) and takes the others
from package.loaded.  `os` is a copy whose exit refuses inside the
loader: a script that calls os.exit while it loads must not end the
host.  Functions the script defines keep this environment after the
load; called from any other process (a child started from them), os.exit
is Lua's own again.
]]
local function fresh_env(dir)
  local env = setmetatable({}, { __index = _G })
  local loader = process.self()
  local real_exit = os.exit
  local safe_os = setmetatable({
    exit = function(...)
      if process.self() == loader then
        error("os.exit called while loading the script (a reload never "
              .. "ends the host)", 2)
      end
      return real_exit(...)
    end,
  }, { __index = os })
  env.os = safe_os
  local fresh = {}
  local path = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  env.require = function(name)
    if name == "os" then return safe_os end
    if fresh[name] ~= nil then return fresh[name] end
    local file = type(name) == "string" and package.searchpath(name, path)
    if not file then return require(name) end
    local chunk, err = loadfile(file, "bt", env)
    if chunk == nil then error(err, 0) end
    local value = chunk(name, file)
    if value == nil then value = true end
    fresh[name] = value
    return value
  end
  return env
end

-- Loads the script (or source, its text) in a fresh environment and runs
-- it with the script's arguments; returns what it returned.
local function load_fresh(script, args, source)
  local env = fresh_env(script_dir(script))
  local chunk, err
  if source ~= nil then
    chunk, err = load(source, "@" .. script, "bt", env)
  else
    chunk, err = loadfile(script, "bt", env)
  end
  if chunk == nil then error(err, 0) end
  return chunk(table.unpack(args, 1, args.n))
end

--[[
M.live(sup) -> the running tree as arbor.diff.predict reads it:
{ ids = children in order, status = {[id] = status}, nested = {[id] =
live} } for the nested supervisors that run (one that does not answer
is left out: the reload does not reach it either).  Children a tree no
longer has (temporary ones that ended, or that a restart dropped) are
not in it: a reload never starts them again unless the file adds them.
]]
function M.live(sup)
  local supervisor = require "supervisor"
  local out = { ids = {}, status = {}, nested = {} }
  local owner = process.subject_owner(sup)
  for i, c in ipairs(supervisor.which_children(sup)) do
    out.ids[i] = c.id
    out.status[c.id] = c.status
    if c.kind == "supervisor" and c.status == "running" and c.subject
       and c.pid ~= owner then
      local ok, inner = pcall(M.live, c.subject)
      if ok then out.nested[c.id] = inner end
    end
  end
  return out
end

--[[
M.plan(current, script, args, source, dry_run, live) -> plan (source,
dry_run and live may be nil):
  { tree = the new root spec, resolved = it resolved,
    edit = arbor.diff's edit from current to resolved,
    summary = diff.summarize of it (restarted left empty: the apply step
      says what really restarted and dropped),
    prediction = the same with restarts predicted (dry runs only) from
      live, the running tree (M.live), or, without it, as if every kept
      child ran }
current is the tree the running one was started or last reloaded from:
the supervisors hold the same specs (every restart uses them).
Raises on a script that cannot load, raises while loading, returns
anything but a supervisor.spec value, or declares an invalid tree.
]]
function M.plan(current, script, args, source, dry_run, live)
  local tree = load_fresh(script, args, source)
  if not spec.is_spec(tree) then
    error(string.format("%s: the script returned a %s, not a "
                        .. "supervisor.spec value", script, type(tree)), 0)
  end
  local resolved = spec.resolve(tree)
  local edit = diff.tree(current, resolved)
  local strategy = current.tree.strategy
  local out = { tree = tree, resolved = resolved, edit = edit,
                summary = diff.summarize(edit, strategy, "", nil, false) }
  if dry_run then
    out.prediction = diff.summarize(edit, strategy, "", nil, live or true)
  end
  return out
end

--[[
M.apply(root, plan) -> summary: applies plan's edit to the running tree
(supervisor.apply, from root, the root supervisor's subject) and returns
what happened, in the lists a dry run predicts (arbor.diff.summarize):
changed, added, removed, flags from the diff; restarted and the
temporary children restarts dropped (under removed) from the apply;
children that did not start under failed ("path: reason"; and as
not_started, {path =, reason =} each), and not under added.  Raises if
the edit cannot be applied.
]]
function M.apply(root, plan)
  local acc = plan.summary
  if plan.edit.empty then return acc end
  local supervisor = require "supervisor"
  local outcome = supervisor.apply(root, plan.edit, "")
  acc.restarted = outcome.restarted
  table.move(outcome.removed, 1, #outcome.removed, #acc.removed + 1,
             acc.removed)
  local not_started = {}
  for _, f in ipairs(outcome.failed) do
    not_started[f.path] = true
    acc.failed[#acc.failed + 1] = f.path .. ": " .. f.reason
  end
  local added = {}
  for _, p in ipairs(acc.added) do
    if not not_started[p] then added[#added + 1] = p end
  end
  acc.added = added
  acc.not_started = outcome.failed
  return acc
end

-- The loader's body: one answer to reply, whatever happens.
local function loader(reply, current, script, args, dry_run, root)
  local ok, result = pcall(function()
    -- A dry run reads the running tree first: its plan is what applying
    -- would do to that tree.
    local live = dry_run and root and M.live(root) or nil
    return M.plan(current, script, args, nil, dry_run, live)
  end)
  if ok then
    process.send(reply, { plan = result })
    return
  end
  local described, text = pcall(M.describe, result)
  process.send(reply, { err = described and text
                              or "(the error could not be described)" })
end

--[[
M.start(current, script, args, dry_run, root) -> loading: spawns the
loader (a dry run reads the running tree from root, the root
supervisor's subject),
unlinked (its end is never the caller's) and monitored.  The caller
selects on loading.reply (the answer) and loading.monitor (a DOWN: the
loader ended without answering), and kills loading.pid when it gives up.
]]
function M.start(current, script, args, dry_run, root)
  local reply = process.new_subject()
  local pid = process.spawn(loader, reply, current, script, args, dry_run,
                            root)
  return { pid = pid, reply = reply, monitor = process.monitor(pid) }
end

return M
