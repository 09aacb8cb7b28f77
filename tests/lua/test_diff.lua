-- test_diff: arbor.diff as a pure function.  equal() decides "changed"
-- from code and values (never identity); tree() compares two resolved
-- trees child by child; predict_restarts() and line() give the plan a
-- reload prints.  Trees are built from source strings loaded twice, as a
-- reload loads the script again.  No process is started.
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local diff = require "arbor.diff"

local equal = diff.equal

-- Loads src as a fresh chunk (its own environment) and runs it.
local function run(src, ...)
  local env = setmetatable({}, { __index = _G })
  local chunk = assert(load(src, "=src", "t", env))
  return chunk(...)
end

-- {=== diff.equal

local ADDER = [[
local k = ...
return function(x) return x + k * 10 end
]]

lib.test("equal: the same code from two loads is equal", function()
  local f, g = run(ADDER, 1), run(ADDER, 1)
  lib.ok(f ~= g, "two distinct closures")
  lib.ok(equal(f, g), "same code, same upvalues")
  lib.ok(equal(f, f), "a function equals itself")
end)

lib.test("equal: a different constant is a change", function()
  local f = run(ADDER, 1)
  local g = run((ADDER:gsub("%* 10", "* 11")), 1)
  lib.ok(not equal(f, g), "constant 10 vs 11")
  lib.ok(not equal(run("return function() return 'a' end"),
                   run("return function() return 'b' end")),
         "string constants")
end)

lib.test("equal: a different upvalue value is a change", function()
  lib.ok(not equal(run(ADDER, 1), run(ADDER, 2)), "upvalue 1 vs 2")
  lib.ok(not equal(run(ADDER, { 1 }), run(ADDER, { 2 })), "table upvalues")
  lib.ok(equal(run(ADDER, { 1, n = { 2 } }), run(ADDER, { 1, n = { 2 } })),
         "equal table upvalues")
end)

lib.test("equal: recursive local functions terminate and are equal", function()
  local src = [[
local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
local even, odd
function even(n) if n == 0 then return true end return odd(n - 1) end
function odd(n) if n == 0 then return false end return even(n - 1) end
return fact, even
]]
  local f1, e1 = run(src)
  local f2, e2 = run(src)
  lib.ok(equal(f1, f2), "self-recursive")
  lib.ok(equal(e1, e2), "mutually recursive")
  local f3 = run((src:gsub("return 1 end", "return 2 end")))
  lib.ok(not equal(f1, f3), "a recursive function with another constant")
end)

lib.test("equal: tables deep, with cycles and metatables", function()
  lib.ok(equal({ a = 1, b = { c = { 2, 3 } } }, { a = 1, b = { c = { 2, 3 } } }),
         "nested tables")
  lib.ok(not equal({ a = 1, b = { c = { 2, 3 } } },
                   { a = 1, b = { c = { 2, 4 } } }), "a deep difference")
  lib.ok(not equal({ a = 1 }, { a = 1, b = 2 }), "an extra key")
  lib.ok(not equal({ a = 1, b = 2 }, { a = 1 }), "a missing key")
  lib.ok(not equal({ 1 }, "1"), "different types")
  local function cyclic(v)
    local t = { v = v }
    t.self = t
    t.pair = { back = t }
    return t
  end
  lib.ok(equal(cyclic(1), cyclic(1)), "equal cycles")
  lib.ok(not equal(cyclic(1), cyclic(2)), "cycles with different values")
  local mt1 = { __index = { x = 1 } }
  local mt2 = { __index = { x = 1 } }
  local mt3 = { __index = { x = 2 } }
  lib.ok(equal(setmetatable({}, mt1), setmetatable({}, mt2)),
         "equal metatables")
  lib.ok(not equal(setmetatable({}, mt1), setmetatable({}, mt3)),
         "different metatables")
  lib.ok(not equal(setmetatable({}, mt1), {}), "a metatable vs none")
  -- rawget/next: __index and __pairs are not consulted.
  lib.ok(not equal(setmetatable({}, { __index = function() return 1 end }),
                   { a = 1 }), "no __index lookups")
end)

lib.test("equal: userdata is equal only to itself", function()
  local s1, s2 = process.new_subject(), process.new_subject()
  lib.ok(equal(s1, s1), "a subject equals itself")
  lib.ok(not equal(s1, s2), "two subjects differ")
  lib.ok(equal(io.stdout, io.stdout), "the same file handle")
  lib.ok(not equal({ s = s1 }, { s = s2 }), "inside tables")
  lib.ok(equal({ s = s1 }, { s = s1 }), "the same subject inside tables")
  local co = coroutine.create(function() end)
  lib.ok(equal(co, co) and not equal(co, coroutine.create(function() end)),
         "threads")
end)

lib.test("equal: _ENV is ignored", function()
  local src = "return function() return print, tostring(x) end"
  local f = assert(load(src, "=a", "t", { x = 1 }))()
  local g = assert(load(src, "=b", "t", { x = 2, y = 3 }))()
  lib.eq(debug.getupvalue(f, 1), "_ENV", "the upvalue is _ENV")
  lib.ok(equal(f, g), "different environments, same code")
  -- A non-_ENV upvalue is still compared.
  lib.ok(not equal(run(ADDER, 1), run(ADDER, 3)), "other upvalues count")
end)

-- }===

-- {=== diff.tree over resolved specs

-- Builds the source of a root spec.  o.children: list of {id, value};
-- value "NESTED" puts the nested tree n (see nested()) there.
local function nested_src(o)
  return string.format([[
supervisor.supervisor(supervisor.spec {
    name = "n", strategy = "one_for_one", %s
    init = function(c)
      return c:add(w("x", %s))
              :add(supervisor.supervisor(supervisor.spec {
                     name = "m",
                     init = function(c)
                       return c:add(w("y", %s)):add(w("z", 1))
                     end }):id("m"))
    end }):id("n")]], o.nested_arg and ("argument = " .. o.nested_arg .. ",")
                      or "", o.x or 1, o.y or 1)
end

local function tree_src(o)
  local adds = {}
  for _, c in ipairs(o.children or { { "a", 1 }, { "b", 1 }, { "c", 1 } }) do
    if c[2] == "NESTED" then
      adds[#adds + 1] = ":add(" .. nested_src(o) .. ")"
    else
      adds[#adds + 1] = string.format(":add(w(%q, %s))", c[1], c[2])
    end
  end
  return string.format([[
local supervisor = require "supervisor"
local function w(id, v)
  return supervisor.worker(function(arg) return v, arg end):id(id)
end
return supervisor.spec {
  strategy = %q, max_frequency = %d, frequency_period = 5,
  init = function(children)
    return children
      %s
  end,
}
]], o.strategy or "rest_for_one", o.maxf or 1, table.concat(adds, "\n      "))
end

local function resolved(o) return supervisor.resolve(run(tree_src(o or {}))) end

local function keys(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

local function added(edit)
  local out = {}
  for i, a in ipairs(edit.added) do out[i] = a.id .. "@" .. a.index end
  return out
end

local function edit_of(old, new) return diff.tree(resolved(old), resolved(new)) end

local ABC = { { "a", 1 }, { "b", 1 }, { "c", 1 } }
local ABCD = { { "a", 1 }, { "b", 1 }, { "c", 1 }, { "d", 1 } }

lib.test("tree: an unchanged tree loaded twice is empty", function()
  local e = edit_of({}, {})
  lib.ok(e.empty, "edit.empty")
  lib.same(keys(e.changed), {}, "changed")
  lib.same(keys(e.removed), {}, "removed")
  lib.same(added(e), {}, "added")
  lib.eq(e.flags, nil, "flags")
  lib.same(e.ids, { "a", "b", "c" }, "ids")
  local n = { children = { { "a", 1 }, { "n", "NESTED" } } }
  lib.ok(edit_of(n, n).empty, "with a nested tree")
  lib.eq(diff.line(diff.summarize(edit_of(n, n), "rest_for_one", "", nil,
                                  true)), "no changes", "the line")
end)

lib.test("tree: one child's constant changed", function()
  local e = edit_of({}, { children = { { "a", 1 }, { "b", 2 }, { "c", 1 } } })
  lib.ok(not e.empty, "not empty")
  lib.same(keys(e.changed), { "b" }, "changed")
  lib.same(keys(e.removed), {}, "removed")
  lib.same(added(e), {}, "added")
  lib.eq(e.flags, nil, "flags")
end)

lib.test("tree: an added child has its new index", function()
  local e = edit_of({}, { children = { { "a", 1 }, { "b", 1 }, { "d", 1 },
                                       { "c", 1 } } })
  lib.same(added(e), { "d@3" }, "added")
  lib.same(keys(e.changed), {}, "changed")
  lib.same(keys(e.removed), {}, "removed")
  lib.eq(getmetatable(e.added[1].spec).__name, "arbor.ChildSpec", "its spec")
  e = edit_of({}, { children = { { "z", 1 }, { "a", 1 }, { "b", 1 },
                                 { "c", 1 } } })
  lib.same(added(e), { "z@1" }, "added at the front")
  lib.same(keys(e.removed), {}, "nothing removed")
end)

lib.test("tree: a removed child", function()
  local e = edit_of({}, { children = { { "a", 1 }, { "c", 1 } } })
  lib.same(keys(e.removed), { "b" }, "removed")
  lib.same(keys(e.changed), {}, "changed")
  lib.same(added(e), {}, "added")
end)

lib.test("tree: a moved child is removed and added again", function()
  -- Two sets as large keep their order, {a, c} and {a, b}: the one that
  -- ends latest in the new list keeps its place.
  local e = edit_of({}, { children = { { "a", 1 }, { "c", 1 }, { "b", 1 } } })
  lib.same(keys(e.removed), { "c" }, "removed")
  lib.same(added(e), { "c@2" }, "added")
  lib.same(keys(e.changed), {}, "a and b are kept unchanged")
  e = edit_of({}, { children = { { "b", 1 }, { "c", 1 }, { "a", 1 } } })
  lib.same(keys(e.removed), { "a" }, "first to last: removed")
  lib.same(added(e), { "a@3" }, "first to last: added")
  -- Last to first moves only that child (not every other one).
  e = edit_of({ children = ABCD }, { children = { { "d", 1 }, { "a", 1 },
                                                  { "b", 1 }, { "c", 1 } } })
  lib.same(keys(e.removed), { "d" }, "last to first: removed")
  lib.same(added(e), { "d@1" }, "last to first: added")
  -- Several moves: the most children keep their place.
  local from = {}
  for i, id in ipairs { "a", "b", "c", "d", "e", "f", "g" } do from[i] = { id, 1 } end
  local to = {}
  for i, id in ipairs { "g", "a", "c", "b", "d", "f", "e" } do to[i] = { id, 1 } end
  e = edit_of({ children = from }, { children = to })
  lib.same(keys(e.removed), { "c", "f", "g" }, "kept a, b, d, e")
end)

lib.test("tree: flags change in place", function()
  local e = edit_of({}, { strategy = "one_for_one" })
  lib.same(e.flags, { strategy = "one_for_one", max_frequency = 1,
                      frequency_period = 5 }, "flags")
  lib.same(keys(e.changed), {}, "no child changed")
  lib.ok(not e.empty, "not empty")
  e = edit_of({}, { maxf = 3 })
  lib.eq(e.flags and e.flags.max_frequency, 3, "max_frequency")
  lib.eq(diff.line(diff.summarize(e, "rest_for_one", "", nil, true)),
         "flags of root", "the line")
end)

lib.test("tree: a nested spec edited deep inside", function()
  local base = { children = { { "a", 1 }, { "n", "NESTED" }, { "c", 1 } } }
  local edited = { children = base.children, y = 2 }
  local e = edit_of(base, edited)
  lib.ok(not e.empty, "not empty")
  lib.same(keys(e.changed), {}, "nothing changed at the outer level")
  lib.same(keys(e.removed), {}, "outer removed")
  lib.same(added(e), {}, "outer added")
  lib.same(keys(e.nested), { "n" }, "outer nested")
  local n = e.nested.n
  lib.same(keys(n.changed), {}, "nothing changed in n itself")
  lib.same(keys(n.nested), { "m" }, "n's nested")
  lib.same(keys(n.nested.m.changed), { "y" }, "y changed in m")
  lib.same(keys(n.nested.m.nested), {}, "m has no nested edit")
  lib.eq(diff.line(diff.summarize(e, "rest_for_one", "", nil, true)),
         "changed n/m/y; restarted n/m/y, n/m/z", "the line (m is rest_for_one)")
  -- One level down.
  e = edit_of(base, { children = base.children, x = 2 })
  lib.same(keys(e.changed), {}, "x: outer changed")
  lib.same(keys(e.nested.n.changed), { "x" }, "x changed in n")
  lib.same(keys(e.nested.n.nested), {}, "m untouched")
end)

lib.test("tree: a nested tree's argument changed changes the child", function()
  local base = { children = { { "a", 1 }, { "n", "NESTED" }, { "c", 1 } },
                 nested_arg = "1" }
  local e = edit_of(base, { children = base.children, nested_arg = "2" })
  lib.same(keys(e.changed), { "n" }, "the nested child changed")
  lib.same(keys(e.nested), {}, "no nested edit")
  e = edit_of(base, { children = base.children, nested_arg = "{ k = 1 }" })
  lib.same(keys(e.changed), { "n" }, "number to table")
  local t = { children = base.children, nested_arg = "{ k = 1 }" }
  lib.ok(edit_of(t, t).empty, "equal table arguments")
end)

lib.test("tree: children without ids match by position", function()
  local src = [[
local supervisor = require "supervisor"
return supervisor.spec { init = function(c)
  return c:add(supervisor.worker(function() return %s end))
          :add(supervisor.worker(function() return 2 end))
end }]]
  local e = diff.tree(supervisor.resolve(run(src:format("1"))),
                      supervisor.resolve(run(src:format("1"))))
  lib.ok(e.empty, "unchanged")
  lib.same(e.ids, { 1, 2 }, "position ids")
  e = diff.tree(supervisor.resolve(run(src:format("1"))),
                supervisor.resolve(run(src:format("5"))))
  lib.same(keys(e.changed), { "1" }, "child 1 changed")
end)

-- }===

-- {=== predict_restarts, summarize and line

lib.test("predict_restarts follows the strategy", function()
  local e = edit_of({ children = ABCD },
                    { children = { { "a", 1 }, { "b", 2 }, { "c", 1 },
                                   { "d", 1 } } })
  lib.same(diff.predict_restarts(e, "rest_for_one"), { "b", "c", "d" },
           "rest_for_one: it and those after")
  lib.same(diff.predict_restarts(e, "one_for_one"), { "b" },
           "one_for_one: just it")
  lib.same(diff.predict_restarts(e, "one_for_all"), { "a", "b", "c", "d" },
           "one_for_all: every kept child")
  local none = edit_of({ children = ABCD }, { children = ABCD })
  lib.same(diff.predict_restarts(none, "one_for_all"), {}, "no change")
  -- Added children start; they are not restarts.
  e = edit_of({ children = ABC },
              { children = { { "a", 1 }, { "b", 2 }, { "n", 1 },
                             { "c", 1 } } })
  lib.same(diff.predict_restarts(e, "rest_for_one"), { "b", "c" },
           "an added child is not predicted")
  lib.same(diff.predict_restarts(e, "one_for_all"), { "a", "b", "c" },
           "one_for_all with an added child")
end)

lib.test("summarize and line: the one-line plan", function()
  local e = edit_of({ children = ABCD },
                    { children = { { "a", 1 }, { "b", 2 }, { "e", 1 },
                                   { "d", 1 } }, maxf = 2 })
  local acc = diff.summarize(e, "rest_for_one", "", nil, true)
  lib.same(acc.changed, { "b" }, "changed")
  lib.same(acc.added, { "e" }, "added")
  lib.same(acc.removed, { "c" }, "removed")
  lib.same(acc.flags, { "root" }, "flags")
  lib.same(acc.restarted, { "b", "d" }, "restarted")
  lib.eq(diff.line(acc),
         "flags of root; changed b; added e; removed c; restarted b, d",
         "the line")
  acc = diff.summarize(e, "rest_for_one", "", nil, false)
  lib.same(acc.restarted, {}, "no prediction without predict")
  lib.eq(diff.line { changed = {}, added = {}, removed = {}, restarted = {},
                     flags = {} }, "no changes", "an empty plan")
  lib.eq(diff.line { changed = { "b" }, added = {}, removed = {},
                     restarted = { "b", "c" }, flags = {} },
         "changed b; restarted b, c", "changed and restarted")
  lib.eq(diff.line { changed = {}, added = { "x", "y" }, removed = { "n/z" },
                     restarted = {}, flags = { "n" } },
         "flags of n; added x, y; removed n/z", "paths")
end)

lib.test("predict: temporary members are dropped, the running tree counts",
         function()
  local TEMP = '1):restart("temporary"'
  -- a changes and b turns temporary in the same save: b is dropped.
  local e = edit_of({ children = ABC },
                    { children = { { "a", 2 }, { "b", TEMP }, { "c", 1 } } })
  local restarted, dropped = diff.predict(e, "rest_for_one", true)
  lib.same(restarted, { "a", "c" }, "a and c restart")
  lib.same(dropped, { "b" }, "b is dropped")
  local acc = diff.summarize(e, "rest_for_one", "", nil, true)
  lib.eq(diff.line(acc), "changed a, b; removed b; restarted a, c", "line")
  -- b alone changes to temporary: it restarts itself (OTP's from child).
  e = edit_of({ children = ABC },
              { children = { { "a", 1 }, { "b", TEMP }, { "c", 1 } } })
  lib.same((diff.predict(e, "one_for_one", true)), { "b" }, "b restarts")
  -- The running tree: a child that is gone (a temporary that ended) or
  -- stopped is not restarted by its own change; a stopped bystander is.
  e = edit_of({ children = ABC },
              { children = { { "a", 2 }, { "b", 2 }, { "c", 1 } } })
  local live = { ids = { "a", "c" }, status = { a = "stopped", c = "running" } }
  lib.same((diff.predict(e, "rest_for_one", live)), {}, "nothing runs")
  live = { ids = { "a", "b", "c" },
           status = { a = "running", b = "running", c = "stopped" } }
  lib.same((diff.predict(e, "rest_for_one", live)), { "a", "b", "c" },
           "stopped c restarts with the set")
  -- A strategy change in the same save: the new strategy is used.
  e = edit_of({ children = ABC, strategy = "one_for_one" },
              { children = { { "a", 1 }, { "b", 2 }, { "c", 1 } },
                strategy = "one_for_all" })
  lib.same((diff.predict(e, "one_for_one", true)), { "a", "b", "c" },
           "one_for_all, the new strategy")
  -- Added children are never restarts, even in a one_for_all set.
  e = edit_of({ children = ABC, strategy = "one_for_all" },
              { children = { { "a", 1 }, { "b", 2 }, { "n", 1 }, { "c", 1 } },
                strategy = "one_for_all" })
  acc = diff.summarize(e, "one_for_all", "", nil, true)
  lib.eq(diff.line(acc), "changed b; added n; restarted a, b, c", "added")
end)

-- }===

-- {=== supervisor.resolve

lib.test("resolve: every init runs, nested trees included", function()
  local r = resolved({ children = { { "a", 1 }, { "n", "NESTED" } } })
  lib.same(r.ids, { "a", "n" }, "ids")
  lib.same(r.nested[2].ids, { "x", "m" }, "nested ids")
  lib.same(r.nested[2].nested[2].ids, { "y", "z" }, "deeper ids")
  lib.eq(r.nested[1], nil, "a worker has no nested tree")
end)

lib.test("resolve raises for an invalid tree", function()
  lib.raises(function()
    supervisor.resolve(supervisor.spec { init = function() error("bad init") end })
  end, "bad init", "init raising")
  lib.raises(function()
    supervisor.resolve(supervisor.spec { init = function(c)
      local w = supervisor.worker(function() end)
      return c:add(w:id("same")):add(w:id("same"))
    end })
  end, "duplicate child id", "a duplicate id")
  lib.raises(function()
    supervisor.resolve(supervisor.spec { init = function(c)
      return c:add(supervisor.supervisor(supervisor.spec {
        init = function() error("deep init") end }))
    end })
  end, "deep init", "a nested init raising")
  lib.raises(function()
    supervisor.resolve(supervisor.spec { init = function() return {} end })
  end, "init must return the children list", "init returning a table")
  lib.raises(function() supervisor.resolve({}) end,
             "not a supervisor.spec value", "not a spec")
end)

-- }===

-- Last, so that the cases above report even while this one fails.
-- A reload of a file where only lines moved (a comment added above a
-- child) must change nothing.
lib.test("equal: shifted lines, comments and chunk names do not count",
function()
  local f = run(ADDER, 1)
  local shifted = "\n\n-- a comment\n\n" .. ADDER:gsub("return", "\n\nreturn")
  local env = setmetatable({}, { __index = _G })
  local g = assert(load(shifted, "=elsewhere.lua", "t", env))(1)
  lib.ok(debug.getinfo(f, "S").linedefined
         ~= debug.getinfo(g, "S").linedefined, "the lines really differ")
  local src = tree_src({})
  local e = diff.tree(supervisor.resolve(run(src)),
                      supervisor.resolve(run("-- edited\n" .. src)))
  local problems = {}
  if not equal(f, g) then problems[#problems + 1] = "functions differ" end
  if not e.empty then
    problems[#problems + 1] = "a comment on top of the script changes "
      .. table.concat(keys(e.changed), ", ")
  end
  lib.ok(#problems == 0, "equal despite the line shift: "
                         .. table.concat(problems, "; "))
end)

-- Children declared inline: their start functions' upvalues sit in init's
-- upvalue list in order of first use, so removing, adding or moving a
-- sibling renumbers them.  Only what a function reaches counts.
local function inline_src(children)
  local lines = { 'local process = require "process"',
                  'local supervisor = require "supervisor"',
                  'local tag, limit = "t", 3',
                  'return supervisor.spec { init = function(c)' }
  local bodies = {
    a = 'c:add(supervisor.worker(function() return process.self(), limit end):id("a"))',
    b = 'c:add(supervisor.worker(function() return tag, process end):id("b"))',
    c = 'c:add(supervisor.worker(function() local l = limit; return function() return l, tag end end):id("c"))',
    d = 'c:add(supervisor.worker(function() return supervisor, tag end):id("d"))',
  }
  for _, id in ipairs(children) do lines[#lines + 1] = bodies[id] end
  lines[#lines + 1] = 'return c end }'
  return table.concat(lines, "\n")
end

lib.test("tree: inline siblings added, removed or moved change nothing else",
         function()
  local function edit(old, new)
    return diff.tree(supervisor.resolve(run(inline_src(old))),
                     supervisor.resolve(run(inline_src(new))))
  end
  local cases = {
    { { "a", "b", "c", "d" }, { "b", "c", "d" } },
    { { "a", "b", "c", "d" }, { "a", "c", "d" } },
    { { "b", "c" }, { "d", "a", "b", "c" } },
    { { "a", "b", "c", "d" }, { "a", "b", "d", "c" } },
    { { "d", "c", "b", "a" }, { "c", "a" } },
  }
  for _, case in ipairs(cases) do
    local e = edit(case[1], case[2])
    local what = table.concat(case[1], ",") .. " -> " .. table.concat(case[2], ",")
    lib.ok(next(e.changed) == nil, what .. ": nothing changed, got "
                                   .. table.concat(keys(e.changed), ","))
  end
  -- A real change among shifted siblings is still seen.
  local old = supervisor.resolve(run(inline_src { "a", "b", "c" }))
  local src = inline_src { "b", "c" }:gsub('local tag, limit = "t", 3',
                                           'local tag, limit = "t", 4')
  local e = diff.tree(old, supervisor.resolve(run(src)))
  lib.eq(table.concat(keys(e.changed), ","), "c", "c reaches limit")
end)

lib.no_leftovers("test_diff")
