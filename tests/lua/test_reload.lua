-- test_reload: the reload path below the command line.  arbor.reload's
-- describe never trusts an error value (nor a __tostring); plan loads, checks, resolves and
-- diffs without starting anything (os.exit refused while it loads);
-- start runs plan in a loader process that answers, or that its caller
-- kills.  live reads the running tree, and a dry run's plan made from it
-- is what reload.apply then does.
-- supervisor.apply answers an edit it cannot apply with an error
-- and keeps its tree; and edits of thousands of children (many removed,
-- many added between the kept ones) keep order and pids.
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local spec = require "arbor.spec"
local diff = require "arbor.diff"
local reload = require "arbor.reload"

lib.quiet()

local NO_ARGS = { n = 0 }

-- A folder of its own for the scripts written here.
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))

local function write(name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- A tree script: each worker a process of its own that sleeps, ids from
-- `ids` (a list), and one constant per child.
local function tree_source(ids, values, strategy)
  local lines = { 'local process = require "process"',
                  'local supervisor = require "supervisor"',
                  "local function w(id, v)",
                  "  return supervisor.worker(function()",
                  "    local _ = v",
                  "    local hand = process.new_subject()",
                  "    process.spawn_link(function()",
                  "      process.send(hand, process.new_subject())",
                  "      process.sleep_forever()",
                  "    end)",
                  "    return process.receive(hand, 5000)",
                  "  end):id(id)",
                  "end",
                  "return supervisor.spec { name = 't', strategy = '"
                  .. (strategy or "one_for_one") .. "', init = function(c)" }
  for i, id in ipairs(ids) do
    lines[#lines + 1] = string.format("  c:add(w(%q, %q))", id,
                                      values and values[i] or "1")
  end
  lines[#lines + 1] = "  return c end }"
  return table.concat(lines, "\n")
end

local function resolved(source)
  local tree = assert(load(source, "=tree"))()
  return spec.resolve(tree), tree
end

-- {=== describe

lib.test("describe: strings, numbers and well-behaved values", function()
  lib.eq(reload.describe("boom"), "boom")
  lib.eq(reload.describe(42), "42")
  lib.eq(reload.describe(nil), "nil")
  lib.eq(reload.describe(setmetatable({}, {
    __tostring = function() return "fine" end })), "fine")
end)

lib.test("describe: a __tostring that misbehaves gives the type", function()
  local function value(tostring_fn)
    return setmetatable({}, { __tostring = tostring_fn })
  end
  local expected = "(error object is a table value)"
  lib.eq(reload.describe(value(function() error("no") end)), expected,
         "raises")
  lib.eq(reload.describe(value(function() error(value(function()
    error("deeper") end)) end)), expected, "raises a hostile value")
  lib.eq(reload.describe(value(function() return {} end)), expected,
         "returns a table")
  lib.eq(reload.describe(value(function() coroutine.yield() end)), expected,
         "yields")
  lib.eq(reload.describe(value(function()
    process.receive(process.new_subject()) end)), expected, "blocks")
  lib.eq(reload.describe(value(function() while true do end end)), expected,
         "loops")
end)

lib.test("describe: a long text is cut, saying by how much", function()
  local text = reload.describe(string.rep("y", 10000))
  lib.eq(text, string.rep("y", 4000) .. " ... (6000 more bytes)")
end)

-- }===

-- {=== plan

local IDS = { "a", "b", "c" }
local current = resolved(tree_source(IDS))

lib.test("plan: an unchanged script changes nothing", function()
  local path = write("same.lua", tree_source(IDS))
  local plan = reload.plan(current, path, NO_ARGS)
  lib.ok(plan.edit.empty, "empty edit")
  lib.eq(diff.line(plan.summary), "no changes")
  lib.ok(supervisor.is_spec(plan.tree), "the new root spec")
  lib.same(plan.resolved.ids, IDS, "resolved ids")
  lib.eq(plan.prediction, nil, "no prediction without dry_run")
end)

lib.test("plan: a changed child, with a dry run's prediction", function()
  local path = write("changed.lua", tree_source(IDS, { "1", "2", "1" }))
  local plan = reload.plan(current, path, NO_ARGS, nil, true)
  lib.eq(diff.line(plan.summary), "changed b")
  lib.eq(diff.line(plan.prediction), "changed b; restarted b")
end)

lib.test("plan: source text instead of the file", function()
  local plan = reload.plan(current, dir .. "/nowhere.lua", NO_ARGS,
                           tree_source({ "a", "c" }))
  lib.eq(diff.line(plan.summary), "removed b")
end)

lib.test("plan: failures raise, naming the script", function()
  lib.raises(function()
    reload.plan(current, write("syntax.lua", "return = 1"), NO_ARGS)
  end, "syntax.lua:1:")
  lib.raises(function()
    reload.plan(current, write("number.lua", "return 42"), NO_ARGS)
  end, "number.lua: the script returned a number, not a supervisor.spec "
       .. "value")
  lib.raises(function()
    reload.plan(current, write("init.lua", [[
local supervisor = require "supervisor"
return supervisor.spec { init = function() error("init says no") end }]]),
                NO_ARGS)
  end, "init.lua:2: init says no")
end)

lib.test("plan: os.exit while loading raises instead", function()
  for _, text in ipairs { "os.exit(3)", 'require("os").exit(true)',
                          "local exit = os.exit; exit()" } do
    lib.raises(function()
      reload.plan(current, write("exit.lua", text), NO_ARGS)
    end, "exit.lua:1: os.exit called while loading the script")
  end
end)

lib.test("plan: os.exit is refused only inside the loading process",
         function()
  local calls = {}
  local real = os.exit
  -- The fresh environment takes os.exit as it is when the load begins.
  os.exit = function(code) calls[#calls + 1] = code end
  local ok, err = pcall(function()
    local path = write("later.lua", [[
local supervisor = require "supervisor"
return supervisor.spec { init = function(c)
  return c:add(supervisor.worker(function() os.exit(7) end):id("x"))
end }]])
    local plan = reload.plan(current, path, NO_ARGS)
    local start = plan.resolved.specs[1].start
    lib.raises(start, "os.exit called while loading the script",
               "called by the process that loaded it")
    local done = process.new_subject()
    process.spawn(function()
      start()
      process.send(done, "returned")
    end)
    lib.eq(process.receive(done, 1000), "returned")
    lib.same(calls, { 7 }, "Lua's os.exit, called from another process")
  end)
  os.exit = real
  if not ok then error(err, 0) end
end)

-- }===

-- {=== start: the loader process

-- The loader's answer, its DOWN, or nil after timeout_ms.
local function await_loader(loading, timeout_ms)
  return process.select(process.new_selector()
    :selecting(loading.reply)
    :selecting_process_down(loading.monitor,
                            function(d) return { down = d.reason } end),
    timeout_ms)
end

lib.test("start: the loader answers with the plan, then ends", function()
  local path = write("good.lua", tree_source(IDS, { "1", "1", "2" }))
  local loading = reload.start(current, path, NO_ARGS, false)
  local answer = await_loader(loading, 5000)
  lib.ok(answer and answer.plan, "a plan")
  lib.eq(diff.line(answer.plan.summary), "changed c")
  lib.eq(await_loader(loading, 5000).down, "normal", "then it ends")
  lib.no_leftovers("start")
end)

lib.test("start: the loader answers a failure with a string", function()
  local path = write("bad.lua", [[
error(setmetatable({}, { __tostring = function() while true do end end }))]])
  local loading = reload.start(current, path, NO_ARGS, false)
  local answer = await_loader(loading, 10000)
  lib.eq(answer and answer.err, "(error object is a table value)")
  lib.eq(await_loader(loading, 5000).down, "normal")
end)

lib.test("start: a loader that never finishes can be killed", function()
  local path = write("forever.lua", "while true do end")
  local loading = reload.start(current, path, NO_ARGS, false)
  lib.eq(await_loader(loading, 200), nil, "no answer in 200 ms")
  -- It is preempted like any process: this one goes on meanwhile.
  lib.ok(process.is_alive(loading.pid), "still loading")
  process.kill(loading.pid)
  lib.eq(await_loader(loading, 5000).down, "killed")
  lib.no_leftovers("killed loader")
end)

-- }===

-- {=== supervisor.apply

-- Starts the tree of source; returns the supervisor and its resolved tree.
local function start(source)
  local res, tree = resolved(source)
  local sup = assert(supervisor.start_spec(tree))
  return sup, res
end

local function column(sup, field)
  local out = {}
  for i, c in ipairs(supervisor.which_children(sup)) do out[i] = c[field] end
  return out
end

lib.test("apply: an edit that cannot be applied is an error, and the "
         .. "tree goes on", function()
  lib.trapping(function()
    local sup = start(tree_source(IDS))
    local pids = column(sup, "pid")
    local bogus = supervisor.worker(function()
      return process.new_subject()
    end):id("x")
    local edit = { removed = {}, changed = {}, nested = {}, ids = { "a",
      "b", "c", "x" }, specs = {},
      added = { { index = 4, id = "x",
                  spec = setmetatable({ restart_type = "sometimes",
                                        kind = "worker",
                                        start = bogus.start },
                                      getmetatable(bogus)) } } }
    lib.raises(function() supervisor.apply(sup, edit, "") end, "sometimes")
    lib.same(column(sup, "id"), IDS, "same children")
    lib.same(column(sup, "pid"), pids, "same processes")
    supervisor.stop(sup)
  end)
  lib.no_leftovers("apply error")
end)

lib.test("live and apply: a dry run reads the running tree, and apply "
         .. "does what it says", function()
  lib.trapping(function()
    local src = tree_source({ "a", "t", "c" }, { "1", "1", "1" },
                            "rest_for_one")
    local temp = function(text) -- t temporary
      return (text:gsub('c:add%(w%("t", "(%d)"%)%)',
                        'c:add(w("t", "%1"):restart("temporary"))'))
    end
    local sup, cur = start(temp(src))
    assert(supervisor.terminate_child(sup, "t")) -- temporary: dropped
    local live = reload.live(sup)
    lib.same(live.ids, { "a", "c" }, "t is gone")
    lib.eq(live.status.a, "running")
    local path = write("live.lua", temp(tree_source({ "a", "t", "c" },
                                                    { "2", "2", "1" },
                                                    "rest_for_one")))
    local dry = reload.plan(cur, path, NO_ARGS, nil, true, live)
    lib.eq(diff.line(dry.prediction), "changed a, t; restarted a, c",
           "t is not planned to restart: it is gone")
    local without = reload.plan(cur, path, NO_ARGS, nil, true)
    lib.eq(diff.line(without.prediction),
           "changed a, t; removed t; restarted a, c",
           "(as if t ran: dropped by a's restart)")
    local plan = reload.plan(cur, path, NO_ARGS)
    lib.eq(diff.line(reload.apply(sup, plan)), diff.line(dry.prediction),
           "the reload does what the dry run said")
    lib.same(column(sup, "id"), { "a", "c" }, "t is not back")
    supervisor.stop(sup)
  end)
  lib.no_leftovers("live")
end)

-- ids c1..cn where keep(i) holds, with x<i> added after c<i> where add(i).
local function ids_of(n, keep, add)
  local ids = {}
  for i = 1, n do
    if keep(i) then ids[#ids + 1] = "c" .. i end
    if add(i) then ids[#ids + 1] = "x" .. i end
  end
  return ids
end

-- Applies the edit from the running tree (old) to source's; returns the
-- new resolved tree.
local function reload_to(sup, old, ids)
  local new = resolved(tree_source(ids, nil, "rest_for_one"))
  local edit = diff.tree(old, new)
  supervisor.apply(sup, edit, "")
  lib.same(column(sup, "id"), ids, "the new order")
  return new
end

lib.test("apply: 5,000 children, half removed, then re-added between the "
         .. "others, keep order and pids; the engine has the same order",
         function()
  local N = 5000
  local all = function() return true end
  local none = function() return false end
  local odd = function(i) return i % 2 == 1 end
  local even = function(i) return i % 2 == 0 end
  lib.trapping(function()
    local ids = ids_of(N, all, none)
    local sup, cur = start(tree_source(ids, nil, "rest_for_one"))
    local pid_of = {}
    for _, c in ipairs(supervisor.which_children(sup)) do
      pid_of[c.id] = c.pid
    end
    cur = reload_to(sup, cur, ids_of(N, even, none))
    cur = reload_to(sup, cur, ids_of(N, all, none))
    cur = reload_to(sup, cur, ids_of(N, all, odd))
    for _, c in ipairs(supervisor.which_children(sup)) do
      if c.id:sub(1, 1) == "c" and tonumber(c.id:sub(2)) % 2 == 0 then
        lib.eq(c.pid, pid_of[c.id], c.id .. " kept its process")
      end
      lib.eq(c.status, "running", c.id .. " runs")
    end
    local counts = supervisor.count_children(sup)
    lib.eq(counts.specs, N + N // 2, "children")
    -- rest_for_one: a crash restarts the children after it in the
    -- engine's order, which must be the order listed.
    local before = supervisor.which_children(sup)
    local k = #before - 100
    process.kill(before[k].pid)
    local after = supervisor.which_children(sup)
    for i, c in ipairs(after) do
      lib.eq(c.id, before[i].id, "position " .. i)
      if i < k then
        lib.eq(c.pid, before[i].pid, c.id .. " before the crash: kept")
      else
        lib.ok(c.pid ~= before[i].pid, c.id .. " after the crash: restarted")
      end
    end
    supervisor.stop(sup)
  end)
  lib.no_leftovers("5,000 children")
end)

-- }===

os.execute("rm -rf '" .. dir .. "'")
