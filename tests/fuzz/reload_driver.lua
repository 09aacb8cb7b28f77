--[[
reload_driver.lua: the main script of each host fuzz_reload_plan.c runs.

arg[1] is a file holding the fuzzer's input.  The driver resolves a fixed
running tree, then does what `arbor reload --dry-run` does up to the
apply step, with the same code: arbor.reload's start spawns the loader
process, which loads the file as the service script, checks it returned
a supervisor.spec value, resolves it and diffs it against the running
tree; the driver waits for the loader's answer with a deadline and kills
it when that passes, as the main process does.

Then it checks the answer: exactly one of
  - a plan: its edit names only ids of the two trees, and its summaries
    print as strings;
  - an error: a non-empty string, cut to arbor.reload's limit;
  - the loader ended without answering (a DOWN): its reason described;
  - no answer by the deadline: the loader is killed, and its DOWN comes.
A failed check raises, so the host exits 1 and the harness aborts.

The input is Lua code with the whole host at hand: it may rewrite the
standard library tables every process shares (`table.concat = nil`),
which a reload cannot prevent either.  Checks then prove nothing about
the reload code, so the driver notes what the libraries held before and
skips them when anything changed; it still must not fail itself, and
the host must not crash (the sanitizers watch the C side).
]]
local process = require "process"
local core = require "arbor.core"
local spec = require "arbor.spec"
local diff = require "arbor.diff"
local reload = require "arbor.reload"

-- Everything the checks use is held in locals before the input runs.
local type, pairs, ipairs, next, error, tostring, rawequal, rawget,
      getmetatable =
  type, pairs, ipairs, next, error, tostring, rawequal, rawget, getmetatable
local format = string.format
local G, loaded = _G, package.loaded

-- How long a loader may work here (main allows 10 s by default).
local DEADLINE_MS = 300

core.quiet(true) -- the input's own processes crash quietly
-- Code that cannot be preempted (a loop in a metamethod) ends its process
-- this soon, not after the host's default.
if core.set_runaway_limit then core.set_runaway_limit(100) end

-- The running tree the input is diffed against: a worker, a nested tree
-- of two, and a worker with options.
local RUNNING = [[
local process = require "process"
local supervisor = require "supervisor"
local function w(v)
  return supervisor.worker(function()
    local _ = v
    return process.new_subject()
  end)
end
return supervisor.spec {
  name = "svc", strategy = "rest_for_one", max_frequency = 3,
  frequency_period = 5,
  init = function(c)
    return c:add(w(1):id("a"))
            :add(supervisor.supervisor(supervisor.spec {
              name = "n", strategy = "one_for_one",
              init = function(c2)
                return c2:add(w(2):id("x")):add(w(3):id("y"))
              end }):id("n"))
            :add(w(4):id("b"):restart("transient"):shutdown(100))
  end,
}]]

local current = spec.resolve(assert(load(RUNNING, "=running"))())

-- {=== what the shared libraries held before

local LIBRARIES = { "_G", "string", "table", "math", "os", "io", "coroutine",
                    "debug", "utf8", "package", "process", "supervisor",
                    "arbor.core", "arbor.spec", "arbor.diff", "arbor.reload" }

local function library(name)
  if name == "_G" then return G end
  if name == "string" or name == "table" or name == "math" or name == "os"
     or name == "io" or name == "coroutine" or name == "debug"
     or name == "utf8" or name == "package" then
    return G[name]
  end
  return loaded[name]
end

-- (debug.getregistry is shut in arbor, so a script cannot swap the
-- registry's _LOADED; package.loaded is among the library fields above.)
local getmeta = debug.getmetatable
local TYPE_SAMPLES = { nil, false, 0, print, coroutine.create(print) }
TYPE_SAMPLES.n = 5

local function snapshot()
  local shot = {}
  for _, name in ipairs(LIBRARIES) do
    local t, copy = library(name), {}
    if type(t) == "table" then
      for k, v in next, t do copy[k] = v end
    end
    shot[name] = { table = t, copy = copy,
                   meta = type(t) == "table" and getmetatable(t) or nil }
  end
  shot.string_meta = getmetatable("")
  shot.string_index = shot.string_meta and rawget(shot.string_meta, "__index")
  -- debug.setmetatable reaches the types without a metatable of their own.
  shot.type_metas = {}
  for i = 1, TYPE_SAMPLES.n do
    shot.type_metas[i] = getmeta(TYPE_SAMPLES[i])
  end
  return shot
end

local function same_as(shot)
  if not rawequal(getmetatable(""), shot.string_meta) then return false end
  for i = 1, TYPE_SAMPLES.n do
    if not rawequal(getmeta(TYPE_SAMPLES[i]), shot.type_metas[i]) then
      return false
    end
  end
  if shot.string_meta and not rawequal(rawget(shot.string_meta, "__index"),
                                       shot.string_index) then
    return false
  end
  for _, name in ipairs(LIBRARIES) do
    local was, t = shot[name], library(name)
    if not rawequal(t, was.table) then return false end
    if type(t) == "table" then
      if not rawequal(getmetatable(t), was.meta) then return false end
      local n = 0
      for k, v in next, t do
        n = n + 1
        if not rawequal(was.copy[k], v) then return false end
      end
      for _ in next, was.copy do n = n - 1 end
      if n ~= 0 then return false end
    end
  end
  return true
end

local before = snapshot()

-- }===

local function check(cond, fmt, ...)
  if not cond then error("reload_driver: " .. format(fmt, ...), 0) end
end

-- A set of the ids of a resolved tree (one level).
local function id_set(tree)
  local set = {}
  for _, id in ipairs(tree.ids) do set[id] = true end
  return set
end

-- An edit names only ids of its two trees, and its nested edits too.
local function check_edit(edit, old, new, path)
  check(type(edit) == "table", "%s: edit is a %s", path, type(edit))
  local olds, news = id_set(old), id_set(new)
  for id in pairs(edit.removed) do
    check(olds[id], "%s: removed %s is not an old id", path, tostring(id))
  end
  for id in pairs(edit.changed) do
    check(olds[id] and news[id], "%s: changed %s is not in both trees", path,
          tostring(id))
  end
  for _, a in ipairs(edit.added) do
    check(news[a.id] and new.ids[a.index] == a.id,
          "%s: added %s is not at its index", path, tostring(a.id))
  end
  for id, sub in pairs(edit.nested) do
    local oi, ni
    for i, x in ipairs(old.ids) do if x == id then oi = i end end
    for i, x in ipairs(new.ids) do if x == id then ni = i end end
    check(oi and ni and old.nested[oi] and new.nested[ni],
          "%s: nested edit of %s, which is not a tree in both", path,
          tostring(id))
    check_edit(sub, old.nested[oi], new.nested[ni], path .. "/" .. tostring(id))
  end
end

-- The loader runs once this process waits: the selectors are made first.
local select, kill = process.select, process.kill
local loading = reload.start(current, arg[1], { n = 0 }, true)
local DOWN = {}
local either = process.new_selector()
  :selecting(loading.reply)
  :selecting_process_down(loading.monitor,
                          function(d)
                            return { [DOWN] = true, reason = d.reason }
                          end)
local down_only = process.new_selector()
  :selecting_process_down(loading.monitor)
local answer = select(either, DEADLINE_MS)

if answer == nil then
  -- Overdue: main kills it; so do we, and its DOWN must come.
  kill(loading.pid)
  check(select(down_only, 5000) ~= nil, "no DOWN from a killed loader")
  return
end

if not same_as(before) then return end -- the input rewrote the libraries

if answer[DOWN] then
  -- The loader ended without answering (killed itself, ran away).
  local text = reload.describe(answer.reason)
  check(type(text) == "string" and #text > 0, "describe gave %s",
        type(text))
elseif answer.err ~= nil then
  check(answer.plan == nil, "both a plan and an error")
  check(type(answer.err) == "string", "the error is a %s", type(answer.err))
  check(#answer.err > 0 and #answer.err <= 4000 + 40,
        "the error is %d bytes", #answer.err)
else
  local plan = answer.plan
  check(type(plan) == "table", "the plan is a %s", type(plan))
  check(spec.is_spec(plan.tree), "the plan's tree is not a spec")
  check(#plan.resolved.ids == #plan.resolved.specs, "ids and specs differ")
  check_edit(plan.edit, current, plan.resolved, "root")
  check(type(diff.line(plan.summary)) == "string", "summary")
  check(type(diff.line(plan.prediction)) == "string", "prediction")
end
