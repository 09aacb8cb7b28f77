--[[
arbor.spec: supervision trees as values, and their validation.

Child specs (supervisor.worker, supervisor.supervisor, with returning,
id, restart and shutdown) and tree specs (supervisor.spec, and the table
start_spec takes) are immutable values checked when they are declared,
so a mistake is reported at the line that made it.  resolve runs a tree's
init (and every nested tree's) without starting anything, which is how
live editing validates a reloaded tree before touching the running one.

The supervisor module re-exports the public functions; lua/supervisor.lua
holds the process that runs a tree.
]]
local M = {}

local STRATEGIES = { rest_for_one = true, one_for_one = true,
                     one_for_all = true }
local RESTARTS = { permanent = true, transient = true, temporary = true }

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- {=====================================================================
-- Child specs: immutable values; every option returns a new spec.
-- ======================================================================

local ChildSpec = {}
ChildSpec.__index = ChildSpec
ChildSpec.__name = "arbor.ChildSpec"

local function copy_spec(spec, field, value)
  local new = {}
  for k, v in pairs(spec) do new[k] = v end
  new[field] = value
  return setmetatable(new, ChildSpec)
end

local function check_child_spec(spec, fn, argn)
  if getmetatable(spec) ~= ChildSpec then
    fail(3, "bad argument #%d to '%s' (child spec expected, got %s)", argn,
         fn, type(spec))
  end
end

function ChildSpec.returning(spec, fn)
  check_child_spec(spec, "returning", 1)
  if type(fn) ~= "function" then
    fail(2, "bad argument #2 to 'returning' (function expected, got %s)",
         type(fn))
  end
  return copy_spec(spec, "updater", fn)
end

function ChildSpec.id(spec, id)
  check_child_spec(spec, "id", 1)
  if type(id) ~= "string" or id == "" then
    fail(2, "bad argument #2 to 'id' (non-empty string expected, got %s)",
         type(id))
  end
  return copy_spec(spec, "child_id", id)
end

function ChildSpec.restart(spec, restart)
  check_child_spec(spec, "restart", 1)
  if not RESTARTS[restart] then
    fail(2, "bad argument #2 to 'restart' (\"permanent\", \"transient\" "
         .. "or \"temporary\" expected, got %s)", show(restart))
  end
  return copy_spec(spec, "restart_type", restart)
end

function ChildSpec.shutdown(spec, shutdown)
  check_child_spec(spec, "shutdown", 1)
  if not (shutdown == "brutal_kill" or shutdown == "infinity"
          or (math.type(shutdown) == "integer" and shutdown >= 0)) then
    fail(2, "bad argument #2 to 'shutdown' (milliseconds >= 0, "
         .. "\"brutal_kill\" or \"infinity\" expected, got %s)",
         show(shutdown))
  end
  return copy_spec(spec, "shutdown_spec", shutdown)
end

local function new_child_spec(start, kind, tree)
  return setmetatable({ start = start, kind = kind, tree = tree,
                        restart_type = "permanent",
                        shutdown_spec = kind == "worker" and 5000
                                        or "infinity" }, ChildSpec)
end

function M.worker(start)
  if type(start) ~= "function" then
    fail(2, "bad argument #1 to 'worker' (start function expected, got %s)",
         type(start))
  end
  return new_child_spec(start, "worker")
end

function M.returning(spec, fn) return ChildSpec.returning(spec, fn) end

-- }=====================================================================

-- {=====================================================================
-- Tree specs and their validation
-- ======================================================================

local TreeSpec = {}
TreeSpec.__index = TreeSpec
TreeSpec.__name = "arbor.TreeSpec"

-- Checks the fields of a start_spec/spec table and returns a TreeSpec.
-- level: where the error points (the user's call).
local function make_tree_spec(t, fn, level)
  level = level + 1
  if getmetatable(t) == TreeSpec then return t end
  if type(t) ~= "table" then
    fail(level, "bad argument #1 to '%s' (table expected, got %s)", fn,
         type(t))
  end
  if type(t.init) ~= "function" then
    fail(level, "%s: field 'init' must be a function, got %s", fn,
         type(t.init))
  end
  local maxf = t.max_frequency == nil and 1 or t.max_frequency
  if math.type(maxf) ~= "integer" or maxf < 0 then
    fail(level, "%s: field 'max_frequency' must be an integer >= 0, got %s",
         fn, show(t.max_frequency))
  end
  local period = t.frequency_period == nil and 5 or t.frequency_period
  if type(period) ~= "number" or period <= 0 or period ~= period then
    fail(level, "%s: field 'frequency_period' must be a number of seconds "
         .. "> 0, got %s", fn, show(t.frequency_period))
  end
  local strategy = t.strategy == nil and "rest_for_one" or t.strategy
  if not STRATEGIES[strategy] then
    fail(level, "%s: field 'strategy' must be \"rest_for_one\", "
         .. "\"one_for_one\" or \"one_for_all\", got %s", fn, show(strategy))
  end
  if t.name ~= nil and type(t.name) ~= "string" then
    fail(level, "%s: field 'name' must be a string, got %s", fn, type(t.name))
  end
  for k in pairs(t) do
    if not (k == "argument" or k == "max_frequency" or k == "frequency_period"
            or k == "init" or k == "strategy" or k == "name") then
      fail(level, "%s: unknown field %s", fn, show(k))
    end
  end
  return setmetatable({
    argument = t.argument, max_frequency = maxf,
    frequency_period = period, init = t.init, strategy = strategy,
    name = t.name,
  }, TreeSpec)
end

-- (Parenthesised: a tail call would drop this frame and the error level
-- would miss the caller.)
function M.spec(t) return (make_tree_spec(t, "spec", 2)) end

-- A TreeSpec with a different argument (nested trees inherit theirs).
local function with_argument(tree, argument)
  local t = {}
  for k, v in pairs(tree) do t[k] = v end
  t.argument = argument
  return setmetatable(t, TreeSpec)
end

-- }=====================================================================

-- {=====================================================================
-- The children list that init builds
-- ======================================================================

local Children = {}
Children.__index = Children
Children.__name = "arbor.Children"

function Children.add(children, spec)
  if getmetatable(children) ~= Children then
    fail(2, "bad argument #1 to 'add' (children list expected, got %s)",
         type(children))
  end
  if getmetatable(spec) ~= ChildSpec then
    fail(2, "bad argument #2 to 'add' (child spec expected, got %s)",
         type(spec))
  end
  local position = #children.specs + 1
  local id = spec.child_id or position
  if children.ids[id] then
    local msg = string.format("add: duplicate child id %s (children %d and "
                              .. "%d)", show(id), children.ids[id], position)
    -- `return children:add(...)` is a tail call: the caller's frame is
    -- gone, so point at the init function that declared the children.
    if debug.getinfo(1, "t").istailcall and children.where then
      error(children.where .. msg, 0)
    end
    fail(2, "%s", msg)
  end
  children.ids[id] = position
  children.specs[position] = spec
  return children
end

M.add = Children.add
M.Children = Children
M.ChildSpec = ChildSpec
M.TreeSpec = TreeSpec

-- }=====================================================================

-- An empty children list for tree's init, which knows where init is.
local function new_children(tree)
  local info = debug.getinfo(tree.init, "S")
  local where = info.what == "Lua"
                and string.format("%s:%d: ", info.short_src, info.linedefined)
                or nil
  return setmetatable({ specs = {}, ids = {}, where = where }, Children)
end

M.new_children = new_children
M.make_tree_spec = make_tree_spec
M.with_argument = with_argument
M.new_child_spec = new_child_spec
M.show = show

function M.is_spec(value) return getmetatable(value) == TreeSpec end

-- Runs init of a tree spec and of every nested tree spec, without starting
-- anything: {tree =, specs =, ids =, nested = {[i] = resolved}}.  Raises
-- on an invalid tree (init raising, a duplicate id, a non-list).
function M.resolve(tree)
  if getmetatable(tree) ~= TreeSpec then
    error("not a supervisor.spec value: " .. type(tree), 2)
  end
  local children = tree.init(new_children(tree))
  if getmetatable(children) ~= Children then
    error("init must return the children list, got a " .. type(children), 2)
  end
  local out = { tree = tree, specs = children.specs, ids = {}, nested = {} }
  for i, spec in ipairs(children.specs) do
    out.ids[i] = spec.child_id or i
    if spec.tree then out.nested[i] = M.resolve(spec.tree) end
  end
  return out
end

return M
