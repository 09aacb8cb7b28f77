-- test_live_random: live editing checked at random against an oracle.
--
-- From a printed seed it generates trees two levels deep (mixed
-- strategies and restart types; workers written through a helper or
-- inline in init, so upvalue slots shift when siblings move) and
-- sequences of edits (values, restart types, added, removed and moved
-- children, strategies and flags, edits inside nested trees, no-op
-- saves), with children stopped by terminate_child and workers killed
-- between them (their restarts must run the spec in force).  Each
-- edit is saved to the script and reloaded the way the host does it
-- (arbor.reload: the loader process makes a dry run's plan from the
-- running tree, then the reload's plan; reload.apply applies it and
-- gives the summary line), only not through the control socket.  An oracle written here from the rules in
-- docs/reference.md ("Live editing") says what must happen; the test
-- compares with it the dry run's line, the reload's line, every pid and
-- status in the running tree, and the value every running worker
-- started with (the file's, never an older one), and checks that no old
-- version started even briefly.
--
-- ARBOR_LIVE_SEED=n replays a seed; ARBOR_LIVE_SEQUENCES=n runs more
-- sequences (default 30, of 8 edits each).
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local diff = require "arbor.diff"
local reload = require "arbor.reload"

lib.quiet()

local SEQUENCES = math.tointeger(tonumber(os.getenv("ARBOR_LIVE_SEQUENCES")
                                          or "30")) or 30
local STEPS = 8
local seed = math.tointeger(tonumber(os.getenv("ARBOR_LIVE_SEED") or ""))
             or (os.time() ~ math.floor(os.clock() * 1e6))
print(string.format("test_live_random: seed %d (ARBOR_LIVE_SEED=%d to "
                    .. "replay), %d sequences of %d edits", seed, seed,
                    SEQUENCES, STEPS))
math.randomseed(seed)

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local script = dir .. "/tree.lua"

-- Every worker start is logged here (the scripts reach it through _G):
-- {id, value}.
LIVE_LOG = {}

-- {=== file models and their source

local STRATEGIES = { "one_for_one", "rest_for_one", "one_for_all" }
local RESTARTS = { "permanent", "transient", "temporary" }
local function pick(list) return list[math.random(#list)] end

local next_id = 0
local function new_id(prefix)
  next_id = next_id + 1
  return prefix .. next_id
end

-- A worker: {id, kind = "w", value, restart, style = 1 | 2 | 3}; a
-- nested tree: {id, kind = "s", restart, node = {strategy, children}}.
local function new_worker()
  return { id = new_id("w"), kind = "w", value = math.random(3),
           restart = pick(RESTARTS), style = math.random(3) }
end

local function new_node(depth)
  local node = { strategy = pick(STRATEGIES), children = {} }
  for _ = 1, math.random(depth == 0 and 2 or 1, depth == 0 and 5 or 3) do
    if depth == 0 and math.random(4) == 1 then
      node.children[#node.children + 1] = { id = new_id("s"), kind = "s",
        restart = pick(RESTARTS), node = new_node(1) }
    else
      node.children[#node.children + 1] = new_worker()
    end
  end
  return node
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = copy(v) end
  return out
end

local HEAD = [[
local process = require "process"
local supervisor = require "supervisor"
local function start(id, v)
  LIVE_LOG[#LIVE_LOG + 1] = { id, v }
  local hand = process.new_subject()
  process.spawn_link(function()
    process.send(hand, process.new_subject())
    process.sleep_forever()
  end)
  return process.receive(hand, 5000)
end
local start2 = start
local function w(id, v)
  return supervisor.worker(function() return start(id, v) end):id(id)
end
]]

local function child_source(c, out, indent)
  local s
  if c.kind == "s" then
    local inner = {}
    for _, cc in ipairs(c.node.children) do
      child_source(cc, inner, indent .. "    ")
    end
    s = string.format("supervisor.supervisor(supervisor.spec { strategy = %q,"
                      .. " max_frequency = %d, init = function(c)\n%s"
                      .. "%s  return c end }):id(%q)", c.node.strategy,
                      c.node.max_frequency or 100, table.concat(inner),
                      indent, c.id)
  elseif c.style == 1 then
    s = string.format("w(%q, %d)", c.id, c.value)
  else
    -- Inline: the function's upvalues are init's, numbered by first use.
    s = string.format("supervisor.worker(function() return %s(%q, %d) end)"
                      .. ":id(%q)", c.style == 2 and "start" or "start2",
                      c.id, c.value, c.id)
  end
  out[#out + 1] = string.format("%sc:add(%s:restart(%q))\n", indent, s,
                                c.restart)
end

local function source(root)
  local body = {}
  for _, c in ipairs(root.children) do child_source(c, body, "  ") end
  return HEAD .. string.format("return supervisor.spec { name = 'root', "
    .. "strategy = %q, max_frequency = %d, init = function(c)\n%s"
    .. "  return c end }\n", root.strategy, root.max_frequency or 100,
    table.concat(body))
end

local function save(text)
  local f = assert(io.open(script .. ".tmp", "w"))
  f:write(text)
  f:close()
  assert(os.rename(script .. ".tmp", script))
end

-- }===

-- {=== edits

-- Every supervisor node of the model: {node, path}.
local function nodes(root)
  local out = { root }
  for _, c in ipairs(root.children) do
    if c.kind == "s" then out[#out + 1] = c.node end
  end
  return out
end

local function all_children(root)
  local out = {}
  for _, node in ipairs(nodes(root)) do
    for _, c in ipairs(node.children) do out[#out + 1] = c end
  end
  return out
end

local EDITS = {
  function(root) -- a worker's value
    local ws = {}
    for _, c in ipairs(all_children(root)) do
      if c.kind == "w" then ws[#ws + 1] = c end
    end
    if #ws > 0 then local c = pick(ws); c.value = c.value % 3 + 1 end
  end,
  function(root) -- a restart type
    local c = pick(all_children(root))
    c.restart = pick(RESTARTS)
  end,
  function(root) -- an added worker
    local node = pick(nodes(root))
    table.insert(node.children, math.random(#node.children + 1), new_worker())
  end,
  function(root) -- an added nested tree
    table.insert(root.children, math.random(#root.children + 1),
                 { id = new_id("s"), kind = "s", restart = pick(RESTARTS),
                   node = new_node(1) })
  end,
  function(root) -- a removed child
    local node = pick(nodes(root))
    if #node.children > 1 then
      table.remove(node.children, math.random(#node.children))
    end
  end,
  function(root) -- a moved child
    local node = pick(nodes(root))
    if #node.children > 1 then
      local c = table.remove(node.children, math.random(#node.children))
      table.insert(node.children, math.random(#node.children + 1), c)
    end
  end,
  function(root) -- a strategy
    pick(nodes(root)).strategy = pick(STRATEGIES)
  end,
  function(root) -- a flag that changes in place
    local node = pick(nodes(root))
    node.max_frequency = node.max_frequency == 50 and 100 or 50
  end,
  function() end, -- a save that changes nothing
}

-- }===

-- {=== the oracle

local generation = 0
local function started()
  generation = generation + 1
  return generation
end

-- The running tree as the oracle sees it: {list = {{id, kind, gen,
-- status, sub}}}; status "running" or "stopped" (by terminate_child).
local function fresh(node)
  local r = { list = {} }
  for _, c in ipairs(node.children) do
    r.list[#r.list + 1] = { id = c.id, kind = c.kind, gen = started(),
                            status = "running",
                            sub = c.kind == "s" and fresh(c.node) or nil }
  end
  return r
end

local function join(path, id)
  return path == "" and id or path .. "/" .. id
end

--[[
What a reload from old to new does to r (the running supervisor, nil
when the reload does not reach it), by the documented rules: children
keep their place when their order relative to those before them is
unchanged (the rest are moved: removed and added again); a child is
changed when its restart type or (for a worker) its value differs; flags
change in place; removed children stop first; each running changed
child, in order, not yet restarted or dropped by this reload, restarts
with the new strategy's set (temporary members other than itself are
dropped, listed as removed); added children start in their places; a
kept nested tree neither changed nor restarted is edited in place.
Adds to acc what the summary line lists.
]]
local function oracle(r, old, new, path, acc)
  if old.strategy ~= new.strategy
     or (old.max_frequency or 100) ~= (new.max_frequency or 100) then
    acc.flags[#acc.flags + 1] = path == "" and "root" or path
  end
  local old_index, old_child = {}, {}
  for i, c in ipairs(old.children) do old_index[c.id], old_child[c.id] = i, c end
  -- The most children whose order is unchanged keep their place (of
  -- sets as large, the one ending latest, each member preceded by the
  -- latest earlier one a step shorter): a quadratic longest increasing
  -- subsequence, written apart from arbor.diff's.
  local len, best = {}, 0
  for i, c in ipairs(new.children) do
    local oi = old_index[c.id]
    if oi then
      len[i] = 1
      for j = 1, i - 1 do
        local oj = old_index[new.children[j].id]
        if oj and oj < oi and len[j] + 1 > len[i] then len[i] = len[j] + 1 end
      end
      if len[i] > best then best = len[i] end
    end
  end
  local kept, want, bound = {}, best, math.huge
  for i = #new.children, 1, -1 do
    local oi = old_index[new.children[i].id]
    if want > 0 and len[i] == want and oi < bound then
      kept[new.children[i].id] = true
      want, bound = want - 1, oi
    end
  end
  local removed = {}
  for _, c in ipairs(old.children) do
    if not kept[c.id] then
      removed[c.id] = true
      acc.removed[#acc.removed + 1] = join(path, c.id)
    end
  end
  local changed, new_child = {}, {}
  for _, c in ipairs(new.children) do
    new_child[c.id] = c
    local o = old_child[c.id]
    if kept[c.id] and (o.kind ~= c.kind or o.restart ~= c.restart
                       or (c.kind == "w" and o.value ~= c.value)) then
      changed[c.id] = true
      acc.changed[#acc.changed + 1] = join(path, c.id)
    end
  end
  for _, c in ipairs(new.children) do
    if not kept[c.id] then acc.added[#acc.added + 1] = join(path, c.id) end
  end
  local handled = {}
  if r then
    local list = {}
    for _, e in ipairs(r.list) do
      if not removed[e.id] then list[#list + 1] = e end
    end
    for i, e in ipairs(list) do
      if changed[e.id] and not handled[e.id] and e.status == "running" then
        for j, m in ipairs(list) do
          if handled[m.id] ~= "dropped"
             and (j == i or new.strategy == "one_for_all"
                  or (new.strategy == "rest_for_one" and j > i)) then
            if m.id ~= e.id and new_child[m.id].restart == "temporary" then
              handled[m.id] = "dropped"
            else
              handled[m.id] = "restarted"
            end
          end
        end
      end
    end
    local running = {}
    for _, e in ipairs(list) do
      if handled[e.id] == "restarted" then
        acc.restarted[#acc.restarted + 1] = join(path, e.id)
        e.gen, e.status = started(), "running"
        if e.kind == "s" then e.sub = fresh(new_child[e.id].node) end
      elseif handled[e.id] == "dropped" then
        acc.removed[#acc.removed + 1] = join(path, e.id)
      end
      if handled[e.id] ~= "dropped" then running[#running + 1] = e end
    end
    -- Added children go right after the nearest earlier child that runs.
    local at = {}
    for i, e in ipairs(running) do at[e.id] = i end
    local order, placed = {}, 0
    local function flush_to(id)
      local i = at[id]
      while placed < i do
        placed = placed + 1
        order[#order + 1] = running[placed]
      end
    end
    for _, c in ipairs(new.children) do
      if at[c.id] and kept[c.id] then
        flush_to(c.id)
      elseif not kept[c.id] then
        order[#order + 1] = { id = c.id, kind = c.kind, gen = started(),
                              status = "running",
                              sub = c.kind == "s" and fresh(c.node) or nil }
      end
    end
    while placed < #running do
      placed = placed + 1
      order[#order + 1] = running[placed]
    end
    r.list = order
  end
  for _, c in ipairs(new.children) do
    if c.kind == "s" and kept[c.id] and not changed[c.id]
       and old_child[c.id].kind == "s" then
      local sub
      if r and handled[c.id] == nil then
        for _, e in ipairs(r.list) do
          if e.id == c.id and e.status == "running" then sub = e.sub end
        end
      end
      oracle(sub, old_child[c.id].node, c.node, join(path, c.id), acc)
    end
  end
end

-- }===

-- {=== the running tree

-- {[id] = {pid, status, path}} and the ids of each supervisor in order.
local function observe(sup, path, out, orders)
  local ids = {}
  for _, c in ipairs(supervisor.which_children(sup)) do
    ids[#ids + 1] = c.id
    out[c.id] = { pid = c.pid, status = c.status }
    if c.kind == "supervisor" and c.status == "running" then
      observe(c.subject, join(path, c.id), out, orders)
    end
  end
  orders[path] = table.concat(ids, " ")
end

local function expected_orders(r, path, orders, gens)
  local ids = {}
  for _, e in ipairs(r.list) do
    ids[#ids + 1] = e.id
    gens[e.id] = e
    if e.sub and e.status == "running" then expected_orders(e.sub, join(path, e.id), orders, gens) end
  end
  orders[path] = table.concat(ids, " ")
end

local function values_of(node, out)
  for _, c in ipairs(node.children) do
    if c.kind == "w" then out[c.id] = c.value else values_of(c.node, out) end
  end
  return out
end

-- }===

local function empty_acc()
  return { changed = {}, added = {}, removed = {}, restarted = {},
           flags = {}, failed = {} }
end

-- A plan made the way the host makes it: by the loader, a process of its
-- own (arbor.reload.start), which reads the running tree for a dry run.
local function load_plan(current, dry_run, root)
  local loading = reload.start(current, script, { n = 0 }, dry_run, root)
  local answer = process.select(process.new_selector()
    :selecting(loading.reply)
    :selecting_process_down(loading.monitor, function(d)
      return { err = "the loader ended: " .. tostring(d.reason) }
    end), 10000)
  process.demonitor(loading.monitor)
  if answer == nil then error("the loader did not answer in 10 s", 0) end
  if answer.err then error(answer.err, 0) end
  return answer.plan
end

local runs, reloads, crashes, problems = 0, 0, 0, {}

local function sequence(n)
  local model = new_node(0)
  save(source(model))
  LIVE_LOG = {}
  local tree = dofile(script)
  local current = supervisor.resolve(tree)
  local root = assert(supervisor.start_spec(tree))
  local r = fresh(model)
  local seen, last_gen = {}, {}
  observe(root, "", seen, {})
  local pids = {}
  for id, o in pairs(seen) do pids[id] = o.pid end
  local orders, gens = {}, {}
  expected_orders(r, "", orders, gens)
  for id, e in pairs(gens) do last_gen[id] = e.gen end
  -- The running supervisors: {sub = oracle's, subject, node = the model
  -- in force}.
  local function running_sups()
    local sups = { { sub = r, subject = root, node = model } }
    for _, e in ipairs(r.list) do
      if e.kind == "s" and e.status == "running" then
        local node
        for _, c in ipairs(model.children) do
          if c.id == e.id then node = c.node end
        end
        for _, c in ipairs(supervisor.which_children(root)) do
          if c.id == e.id then
            sups[#sups + 1] = { sub = e.sub, subject = c.subject, node = node }
          end
        end
      end
    end
    return sups
  end
  local function restart_of(node, id)
    for _, c in ipairs(node.children) do
      if c.id == id then return c.restart, c end
    end
  end
  -- Stops a random child through terminate_child (a temporary one is
  -- dropped), as an operator might between saves.
  local function terminate()
    local at = pick(running_sups())
    if #at.sub.list == 0 then return end
    local i = math.random(#at.sub.list)
    local e = at.sub.list[i]
    assert(supervisor.terminate_child(at.subject, e.id))
    if restart_of(at.node, e.id) == "temporary" then
      table.remove(at.sub.list, i)
    else
      e.status, e.sub = "stopped", nil
    end
  end
  -- Kills a random running worker: its supervisor restarts it as the
  -- spec in force says (OTP: a temporary child is dropped; otherwise the
  -- strategy's set restarts, temporary members other than it dropped,
  -- stopped members started).  Waits (polling, 5 s at most) until the
  -- supervisor has handled the exit.
  local function crash()
    local at = pick(running_sups())
    local list, candidates = at.sub.list, {}
    for i, e in ipairs(list) do
      if e.kind == "w" and e.status == "running" then
        candidates[#candidates + 1] = i
      end
    end
    if #candidates == 0 then return false end
    local i = pick(candidates)
    local e = list[i]
    local old_pid
    for _, c in ipairs(supervisor.which_children(at.subject)) do
      if c.id == e.id then old_pid = c.pid end
    end
    if restart_of(at.node, e.id) == "temporary" then
      table.remove(list, i)
    else
      local strategy, dropped = at.node.strategy, {}
      for j, m in ipairs(list) do
        if j == i or strategy == "one_for_all"
           or (strategy == "rest_for_one" and j > i) then
          local restart, c = restart_of(at.node, m.id)
          if m ~= e and restart == "temporary" then
            dropped[m] = true
          else
            m.gen, m.status = started(), "running"
            if m.kind == "s" then m.sub = fresh(c.node) end
          end
        end
      end
      local kept = {}
      for _, m in ipairs(list) do
        if not dropped[m] then kept[#kept + 1] = m end
      end
      at.sub.list = kept
    end
    process.kill(old_pid)
    local deadline = os.time() + 5
    while true do
      local now_pid, present = nil, false
      for _, c in ipairs(supervisor.which_children(at.subject)) do
        if c.id == e.id then now_pid, present = c.pid, true end
      end
      if not present or (now_pid ~= nil and now_pid ~= old_pid) then break end
      if os.time() > deadline then
        error(e.id .. ": the supervisor did not handle its exit in 5 s", 0)
      end
      process.sleep(1)
    end
    return true
  end
  local function problem(step, what, text_old, text_new)
    problems[#problems + 1] = string.format(
      "seed %d, sequence %d, edit %d: %s\n--- before:\n%s--- after:\n%s",
      seed, n, step, what, text_old, text_new)
  end
  -- The running tree against the oracle: order, status, pids kept or
  -- new, the value each worker runs, and that what started since
  -- log_from started with the file's values.
  local function check(step, text_old, text_new, log_from)
    local orders, gens = {}, {}
    seen = {}
    local got_orders = {}
    observe(root, "", seen, got_orders)
    expected_orders(r, "", orders, gens)
    for path, ids in pairs(orders) do
      if got_orders[path] ~= ids then
        problem(step, string.format("%s runs '%s', oracle '%s'",
                                    path == "" and "root" or path,
                                    tostring(got_orders[path]), ids),
                text_old, text_new)
      end
    end
    local values = values_of(model, {})
    local last_value = {}
    for i = 1, #LIVE_LOG do last_value[LIVE_LOG[i][1]] = LIVE_LOG[i][2] end
    for id, e in pairs(gens) do
      local o, gen = seen[id], e.gen
      if o == nil or o.status ~= e.status then
        problem(step, string.format("%s is %s, oracle says %s", id,
                                    o and o.status or "gone", e.status),
                text_old, text_new)
      elseif e.status == "stopped" then
        if o.pid ~= nil then
          problem(step, id .. " is stopped with a pid", text_old, text_new)
        end
      elseif (gen ~= last_gen[id]) ~= (o.pid ~= pids[id]) then
        problem(step, string.format("%s: pid %s -> %s, oracle says %s", id,
                                    tostring(pids[id]), tostring(o.pid),
                                    gen ~= last_gen[id] and "a new one"
                                    or "the same"), text_old, text_new)
      elseif values[id] and last_value[id] ~= values[id] then
        problem(step, string.format("%s runs value %s, the file says %d", id,
                                    tostring(last_value[id]), values[id]),
                text_old, text_new)
      end
    end
    -- No old version starts, even briefly.
    for i = log_from + 1, #LIVE_LOG do
      local id, v = LIVE_LOG[i][1], LIVE_LOG[i][2]
      if values[id] ~= v then
        problem(step, string.format("%s started with old value %d", id, v),
                text_old, text_new)
      end
    end
    pids, last_gen = {}, {}
    for id, e in pairs(gens) do last_gen[id] = e.gen end
    for id, o in pairs(seen) do pids[id] = o.pid end
  end
  for step = 1, STEPS do
    local before = #problems
    if math.random(4) == 1 then
      terminate()
      seen = {}
      observe(root, "", seen, {})
      pids = {}
      for id, o in pairs(seen) do pids[id] = o.pid end
    end
    if math.random(4) == 1 then
      local log_from = #LIVE_LOG
      if crash() then
        crashes = crashes + 1
        local text = source(model)
        check(step, text, text, log_from)
        if #problems > before then break end
      end
    end
    local old = model
    model = copy(old)
    for _ = 1, math.random(3) do pick(EDITS)(model) end
    local text_old, text_new = source(old), source(model)
    save(text_new)
    local acc = empty_acc()
    oracle(r, old, model, "", acc)
    local want = diff.line(acc)
    local log_from = #LIVE_LOG
    local dry = load_plan(current, true, root)
    local plan_line = diff.line(dry.prediction)
    local plan = load_plan(current, false, root)
    local got = diff.line(reload.apply(root, plan))
    current = plan.resolved
    reloads = reloads + 1
    if plan_line ~= want then
      problem(step, "dry run '" .. plan_line .. "', oracle '" .. want .. "'",
              text_old, text_new)
    end
    if got ~= want then
      problem(step, "reload '" .. got .. "', oracle '" .. want .. "'",
              text_old, text_new)
    end
    check(step, text_old, text_new, log_from)
    if #problems > before then break end -- the next edits build on it
  end
  supervisor.stop(root)
  runs = runs + 1
end

lib.test("random edit sequences match the oracle, the plan and the tree",
         function()
  for n = 1, SEQUENCES do
    local ok, err = pcall(sequence, n)
    if not ok then
      problems[#problems + 1] = string.format("seed %d, sequence %d: %s",
                                              seed, n, tostring(err))
    end
    if #problems >= 3 then break end
  end
  print(string.format("test_live_random: %d sequences, %d reloads, "
                      .. "%d crashes, %d problems", runs, reloads, crashes,
                      #problems))
  lib.ok(#problems == 0, table.concat(problems, "\n\n"))
end)

os.execute("rm -rf '" .. dir .. "'")
lib.no_leftovers("test_live_random")
