--[[
gen.lua: the scenario generator of the differential test against
Erlang/OTP (tests/diff_otp/run.sh).

  arbor gen.lua SEED COUNT OUTDIR

writes COUNT random scenarios, drawn from SEED, twice: OUTDIR/scenarios.lua
(a chunk returning them as Lua tables, for interp.lua on arbor) and
OUTDIR/scenarios.terms (the same as Erlang terms, one per scenario, for
diff_otp.erl under erl).  Both interpreters read the same data, so there is
no parser and no random generator on the Erlang side.

A scenario is one of two kinds.
  sup:   a tree {strategy, max_restarts, children}, children being
         {"worker", restart} or {"sup", restart, tree}; then steps
         {"exit", worker_path, reason}, {"term", sup_path, i},
         {"restart", sup_path, i}.  Paths are lists of child positions
         from the root ({} is the root); child i has id "c<i>".
  procs: N processes with an initial trap_exit flag each; then steps
         {"link"|"unlink"|"monitor", a, b}, {"signal", a, b, reason}
         (a sends exit(b, reason)), {"die", a, reason}, {"trap", a, bool}.
Exit reasons: normal, shutdown, shutdown_tuple ({shutdown, x} / a table
with shutdown = true), boom (a crash), kill.  Periods are not part of the
language: both sides use an hour, so no restart ever leaves the window
while a scenario runs and nothing depends on the clock.
]]
local seed, count, outdir = tonumber(arg[1]), tonumber(arg[2]), arg[3]
if not (seed and count and outdir) then
  io.stderr:write("usage: arbor gen.lua SEED COUNT OUTDIR\n")
  os.exit(2)
end
math.randomseed(seed)

local function pick(list) return list[math.random(#list)] end

-- Weighted pick: { {weight, value}, ... }.
local function weighted(list)
  local total = 0
  for _, e in ipairs(list) do total = total + e[1] end
  local r = math.random() * total
  for _, e in ipairs(list) do
    r = r - e[1]
    if r < 0 then return e[2] end
  end
  return list[#list][2]
end

local STRATEGIES = { "one_for_one", "one_for_all", "rest_for_one" }
local RESTARTS = { { 4, "permanent" }, { 4, "transient" }, { 2, "temporary" } }
local EXIT_REASONS = { { 3, "boom" }, { 3, "normal" }, { 2, "shutdown" },
                       { 1, "shutdown_tuple" }, { 2, "kill" } }
local SIGNAL_REASONS = { { 3, "boom" }, { 3, "normal" }, { 2, "shutdown" },
                         { 2, "kill" } }

-- {====== Trees

local function gen_tree(depth)
  local tree = { pick(STRATEGIES),
                  weighted { { 1, 0 }, { 2, 1 }, { 3, 2 }, { 3, 3 }, { 2, 5 } },
                  {} }
  for _ = 1, math.random(1, depth == 0 and 4 or 3) do
    local restart = weighted(RESTARTS)
    if depth < 2 and math.random() < 0.25 then
      tree[3][#tree[3] + 1] = { "sup", restart, gen_tree(depth + 1) }
    else
      tree[3][#tree[3] + 1] = { "worker", restart }
    end
  end
  return tree
end

-- Every worker path and every supervisor path of a tree.
local function paths(tree, prefix, workers, sups)
  sups[#sups + 1] = prefix
  for i, child in ipairs(tree[3]) do
    local p = { table.unpack(prefix) }
    p[#p + 1] = i
    if child[1] == "worker" then
      workers[#workers + 1] = p
    else
      paths(child[3], p, workers, sups)
    end
  end
end

local function child_count(tree, path)
  for _, i in ipairs(path) do tree = tree[3][i][3] end
  return #tree[3]
end

local function gen_sup_scenario()
  local tree = gen_tree(0)
  local workers, sups = {}, {}
  paths(tree, {}, workers, sups)
  local steps = {}
  for _ = 1, math.random(4, 10) do
    local kind = weighted { { 7, "exit" }, { 2, "term" }, { 2, "restart" } }
    if kind == "exit" then
      steps[#steps + 1] = { "exit", pick(workers), weighted(EXIT_REASONS) }
    else
      local sup = pick(sups)
      -- Now and then an id that does not exist.
      steps[#steps + 1] = { kind, sup,
                            math.random(1, child_count(tree, sup) + 1) }
    end
  end
  return { kind = "sup", tree = tree, steps = steps }
end

-- }======

-- {====== Processes, links, monitors and signals

local function gen_procs_scenario()
  local n = math.random(2, 4)
  local traps = {}
  for i = 1, n do traps[i] = math.random() < 0.5 end
  local steps = {}
  local function actor() return math.random(n) end
  for _ = 1, math.random(3, 9) do
    local kind = weighted { { 4, "link" }, { 1, "unlink" }, { 3, "monitor" },
                            { 4, "signal" }, { 2, "die" }, { 2, "trap" } }
    if kind == "signal" then
      steps[#steps + 1] = { kind, actor(), actor(), weighted(SIGNAL_REASONS) }
    elseif kind == "die" then
      steps[#steps + 1] = { kind, actor(), weighted(SIGNAL_REASONS) }
    elseif kind == "trap" then
      steps[#steps + 1] = { kind, actor(), math.random() < 0.5 }
    else
      steps[#steps + 1] = { kind, actor(), actor() }
    end
  end
  return { kind = "procs", traps = traps, steps = steps }
end

-- }======

-- {====== Output

local function lua_value(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = lua_value(x) end
    for k, x in pairs(v) do
      if type(k) == "string" then
        parts[#parts + 1] = k .. " = " .. lua_value(x)
      end
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif type(v) == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

-- Erlang terms: lists for paths and child lists, tuples for the rest.
local function erl_tree(tree)
  local children = {}
  for i, c in ipairs(tree[3]) do
    if c[1] == "worker" then
      children[i] = string.format("{worker,%s}", c[2])
    else
      children[i] = string.format("{sup,%s,%s}", c[2], erl_tree(c[3]))
    end
  end
  return string.format("{%s,%d,[%s]}", tree[1], tree[2],
                       table.concat(children, ","))
end

local function erl_path(p)
  local parts = {}
  for i, x in ipairs(p) do parts[i] = tostring(x) end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function erl_step(s)
  if s[1] == "exit" then
    return string.format("{exit,%s,%s}", erl_path(s[2]), s[3])
  elseif s[1] == "term" or s[1] == "restart" then
    return string.format("{%s,%s,%d}", s[1], erl_path(s[2]), s[3])
  elseif s[1] == "signal" then
    return string.format("{signal,%d,%d,%s}", s[2], s[3], s[4])
  elseif s[1] == "die" then
    return string.format("{die,%d,%s}", s[2], s[3])
  elseif s[1] == "trap" then
    return string.format("{trap,%d,%s}", s[2], tostring(s[3]))
  end
  return string.format("{%s,%d,%d}", s[1], s[2], s[3])
end

local function erl_scenario(id, sc)
  local steps = {}
  for i, s in ipairs(sc.steps) do steps[i] = erl_step(s) end
  local setup
  if sc.kind == "sup" then
    setup = "{sup," .. erl_tree(sc.tree) .. "}"
  else
    local traps = {}
    for i, t in ipairs(sc.traps) do traps[i] = tostring(t) end
    setup = "{procs,[" .. table.concat(traps, ",") .. "]}"
  end
  return string.format("{scenario,%d,%s,[%s]}.\n", id, setup,
                        table.concat(steps, ","))
end

local lua_out = assert(io.open(outdir .. "/scenarios.lua", "w"))
local erl_out = assert(io.open(outdir .. "/scenarios.terms", "w"))
lua_out:write("return {\n")
for id = 1, count do
  local sc = math.random() < 0.6 and gen_sup_scenario()
             or gen_procs_scenario()
  sc.id = id
  lua_out:write("  ", lua_value(sc), ",\n")
  erl_out:write(erl_scenario(id, sc))
end
lua_out:write("}\n")
lua_out:close()
erl_out:close()

-- }======
