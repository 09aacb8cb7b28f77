--[[
arbor.spec: supervision trees as values, and their validation.

Child specs (supervisor.worker, supervisor.supervisor, with returning,
id, restart, shutdown and backoff) and tree specs (supervisor.spec, and the table
start_spec takes) are immutable values checked when they are declared,
so a mistake is reported at the line that made it.  resolve runs a tree's
init (and every nested tree's) without starting anything, which is how
live editing validates a reloaded tree before touching the running one.

Numbers are checked against the restart engine's own limits (read from
arbor.core.sup), so whatever passes here the engine accepts: no flag can
fail later inside a running supervisor or a reload.  A number must be a
whole value in range (a float such as 5.0 counts, 1 << 32 or math.huge
does not fit); the error names the field and the range.

The supervisor module re-exports the public functions; lua/supervisor.lua
holds the process that runs a tree.
]]
local engine = require "arbor.core.sup"

local M = {}

-- The engine's limits, and the one conversion from seconds to its ms.
local MAX_INTENSITY = engine.MAX_INTENSITY
local MIN_PERIOD_MS, MAX_PERIOD_MS = engine.MIN_PERIOD_MS, engine.MAX_PERIOD_MS
local MIN_PERIOD_S, MAX_PERIOD_S = MIN_PERIOD_MS / 1000, MAX_PERIOD_MS // 1000
local MAX_BACKOFF_MS = engine.MAX_BACKOFF_MS

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

-- v as an integer if it is a number with a whole value in lo .. hi, else
-- nil (strings are not numbers here, though Lua would convert them).
local function integer_in(v, lo, hi)
  if type(v) ~= "number" then return nil end
  local n = math.tointeger(v)
  if n ~= nil and n >= lo and n <= hi then return n end
  return nil
end

-- A period in seconds as the engine's milliseconds, or nil if it does not
-- fit the engine's range (NaN and infinities included).
local function period_ms(seconds)
  if type(seconds) ~= "number" or not (seconds >= MIN_PERIOD_S
                                       and seconds <= MAX_PERIOD_S) then
    return nil
  end
  return integer_in(math.floor(seconds * 1000), MIN_PERIOD_MS, MAX_PERIOD_MS)
end
M.period_ms = period_ms

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

-- Any whole number of ms from 0 up fits: waits are clamped, never
-- overflowed, so math.maxinteger is simply "longer than anyone waits".
function ChildSpec.shutdown(spec, shutdown)
  check_child_spec(spec, "shutdown", 1)
  if shutdown ~= "brutal_kill" and shutdown ~= "infinity" then
    local ms = integer_in(shutdown, 0, math.maxinteger)
    if ms == nil then
      fail(2, "bad argument #2 to 'shutdown' (must be an integer of ms "
           .. "from 0 to %d, \"brutal_kill\" or \"infinity\", got %s)",
           math.maxinteger, show(shutdown))
    end
    shutdown = ms
  end
  return copy_spec(spec, "shutdown_spec", shutdown)
end

local BACKOFF_FIELDS = { initial = true, max = true, reset_after = true }

-- spec:backoff{initial = ms, max = ms [, reset_after = ms]}: restarts wait
-- initial ms, doubling per consecutive restart up to max; a run of at
-- least reset_after (default max) starts again from initial.  Kept as
-- spec.backoff_spec = {initial =, max =, reset_after =}, whole ms.
function ChildSpec.backoff(spec, t)
  check_child_spec(spec, "backoff", 1)
  if type(t) ~= "table" then
    fail(2, "bad argument #2 to 'backoff' (table {initial = ms, max = ms "
         .. "[, reset_after = ms]} expected, got %s)", type(t))
  end
  for k in pairs(t) do
    if not BACKOFF_FIELDS[k] then
      fail(2, "bad field %s to 'backoff' (unknown field; expected initial, "
           .. "max, reset_after)", type(k) == "string" and "'" .. k .. "'"
           or "[" .. show(k) .. "]")
    end
  end
  local initial = integer_in(t.initial, 1, MAX_BACKOFF_MS)
  if initial == nil then
    fail(2, "bad field 'initial' to 'backoff' (must be an integer of ms "
         .. "from 1 to %d, got %s)", MAX_BACKOFF_MS, show(t.initial))
  end
  local max = integer_in(t.max, initial, MAX_BACKOFF_MS)
  if max == nil then
    fail(2, "bad field 'max' to 'backoff' (must be an integer of ms from "
         .. "initial (%d) to %d, got %s)", initial, MAX_BACKOFF_MS,
         show(t.max))
  end
  local reset = max
  if t.reset_after ~= nil then
    reset = integer_in(t.reset_after, 0, MAX_BACKOFF_MS)
    if reset == nil then
      fail(2, "bad field 'reset_after' to 'backoff' (must be an integer of "
           .. "ms from 0 to %d, got %s)", MAX_BACKOFF_MS, show(t.reset_after))
    end
  end
  return copy_spec(spec, "backoff_spec",
                   { initial = initial, max = max, reset_after = reset })
end

-- The engine's backoff arguments for a child spec (none without one).
function M.backoff_args(spec)
  local b = spec.backoff_spec
  if b then return b.initial, b.max, b.reset_after end
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

-- A field's name as the errors show it: 'name', or [key] for a non-string.
local function field_name(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  return "[" .. show(k) .. "]"
end

local TREE_FIELDS = { argument = true, max_frequency = true,
                      frequency_period = true, init = true, strategy = true,
                      name = true }

-- Checks the fields of a start_spec/spec table and returns a TreeSpec.
-- level: where the error points (the user's call).  Every error reads
-- "bad field 'f' to 'fn' (what it must be, got value)".
local function make_tree_spec(t, fn, level)
  level = level + 1
  if getmetatable(t) == TreeSpec then return t end
  -- Errors point at the caller's line, as error(msg, level) would.  But
  -- `return supervisor.spec {...}`, the usual last line of a script, is a
  -- tail call: the caller's frame is gone, so they point at the tree's
  -- init (a line or two below the call) instead of at whoever loaded it.
  local where = ""
  local caller = debug.getinfo(level, "Sl")
  if debug.getinfo(level - 1, "t").istailcall then
    caller = type(t) == "table" and type(t.init) == "function"
             and debug.getinfo(t.init, "S")
    if caller then caller.currentline = caller.linedefined end
  end
  if caller and caller.currentline and caller.currentline > 0 then
    where = string.format("%s:%d: ", caller.short_src, caller.currentline)
  end
  local function raise(fmt, ...)
    error(where .. string.format(fmt, ...), 0)
  end
  if type(t) ~= "table" then
    raise("bad argument #1 to '%s' (table expected, got %s)", fn, type(t))
  end
  local function bad(field, what, got)
    raise("bad field %s to '%s' (%s, got %s)", field_name(field), fn, what,
          got)
  end
  for k in pairs(t) do
    if not TREE_FIELDS[k] then
      raise("bad field %s to '%s' (unknown field)", field_name(k), fn)
    end
  end
  if type(t.init) ~= "function" then
    bad("init", "function expected", type(t.init))
  end
  local maxf = integer_in(t.max_frequency == nil and 1 or t.max_frequency, 0,
                          MAX_INTENSITY)
  if maxf == nil then
    bad("max_frequency",
        string.format("must be an integer from 0 to %d", MAX_INTENSITY),
        show(t.max_frequency))
  end
  local period = t.frequency_period == nil and 5 or t.frequency_period
  if period_ms(period) == nil then
    bad("frequency_period",
        string.format("must be a number of seconds from %g to %d",
                      MIN_PERIOD_S, MAX_PERIOD_S),
        show(t.frequency_period))
  end
  local strategy = t.strategy == nil and "rest_for_one" or t.strategy
  if not STRATEGIES[strategy] then
    bad("strategy", "\"rest_for_one\", \"one_for_one\" or \"one_for_all\" "
        .. "expected", show(strategy))
  end
  if t.name ~= nil and type(t.name) ~= "string" then
    bad("name", "string expected", type(t.name))
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
