-- test_copy_shapes: a message is a deep copy whatever the table's shape.
-- The copier (host/bind/lcopy.c) sizes each copy up front: a root record
-- (no array part) by gathering up to 64 plain pairs on the stack, then
-- counting what is left from where the gather stopped; any other table by
-- walking the original from its border.  It sets integer keys on their
-- own path and moves nested tables out of line.  Tables whose border
-- lives in the hash part, arrays with holes, negative and huge integer
-- keys, float keys, mixed tables, records on either side of the gather's
-- limit or with a nested table part way, and nested ones must all arrive
-- whole and equal, and never the same table; no metamethod may run.
local lib = require "testlib"
local process = require "process"

local function roundtrip(value)
  local inbox = process.new_subject()
  process.send(inbox, value)
  return process.receive(inbox, 1000)
end

-- Deep equality by raw contents (no metamethods), cycles allowed.  Pairs
-- with a table key are left out (their copies are other keys): the tests
-- that send such keys check them on their own.
local function same(a, b, seen)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in next, a do
    if type(k) ~= "table" and not same(v, rawget(b, k), seen) then
      return false
    end
  end
  for k in next, b do
    if type(k) ~= "table" and rawget(a, k) == nil then return false end
  end
  return true
end

local function check(name, t)
  local c = roundtrip(t)
  lib.ok(c ~= t, name .. ": a copy, not the table")
  lib.ok(same(t, c), name .. ": equal contents")
end

lib.test("shapes the sizing walk must not lose", function()
  -- The border's key (1) inserted into the hash part of a record.
  local t = { x = 1, y = 2, z = 3 }
  t[1] = "a"
  check("border key in the hash part", t)
  local u = {}
  for i = 1, 20 do u["k" .. i] = i end
  u[1], u[2], u[3] = "a", "b", "c"
  check("a hash-part border after many fields", u)
  check("array with holes", { 1, 2, nil, 4, nil, nil, 7, n = 7 })
  check("empty", {})
  check("negative, zero, huge and float keys",
        { [0] = "z", [-5] = "n", [math.maxinteger] = "max",
          [math.mininteger] = "min", [1.5] = "f", [2^53] = "big" })
  local big = {}
  for i = 1, 5000 do big[i] = i * 2 end
  big.name = "tail"
  check("a long array with a field", big)
  local sparse = {}
  for i = 1, 100 do sparse[i * 7] = i end
  check("sparse integer keys", sparse)
end)

lib.test("nested tables, shared sub-tables and cycles keep their shape",
         function()
  local shared = { 1, 2, 3 }
  local t = { a = shared, b = shared, list = { shared, { shared } } }
  t.self = t
  t[1] = { x = 1 }
  t[2] = t[1]
  local c = roundtrip(t)
  lib.ok(same(t, c), "equal")
  lib.ok(c.a == c.b and c.list[1] == c.a and c.list[2][1] == c.a,
         "one copy of the shared table")
  lib.ok(c.a ~= shared, "a copy of it")
  lib.ok(c.self == c, "the cycle")
  lib.ok(c[1] == c[2] and c[1] ~= t[1], "shared through array slots")
  local mt = { __index = function() return "dflt" end }
  local m = setmetatable({ 1, 2, k = "v" }, mt)
  local cm = roundtrip({ m, m })
  lib.ok(getmetatable(cm[1]) == mt and cm[1] == cm[2], "metatable kept")
  lib.eq(cm[1].missing, "dflt", "and works")
end)

-- A record of n string fields, with extra fields from more (a table).
local function record(n, more)
  local t = {}
  for i = 1, n do t["f" .. i] = i % 3 == 0 and ("s" .. i) or i end
  for k, v in pairs(more or {}) do t[k] = v end
  return t
end

lib.test("records on either side of the gather's limit", function()
  for _, n in ipairs({ 1, 2, 63, 64, 65, 66, 128, 1000 }) do
    check(n .. " fields", record(n))
  end
  check("plain keys of every kind but tables",
        { [true] = 1, [false] = 0, [1.5] = "f", [-1] = "n", s = "s",
          [math.huge] = "inf", [print] = "fn" })
  local mt = {}
  local c = roundtrip(setmetatable(record(10), mt))
  lib.ok(getmetatable(c) == mt, "a gathered record keeps its metatable")
end)

lib.test("a nested table part way through a record: gathered pairs, the "
         .. "rest counted and copied", function()
  for _, n in ipairs({ 3, 40, 70, 200 }) do
    local sub = { 1, 2, x = "y" }
    local t = record(n, { sub = sub, again = sub })
    t.self = t
    t[sub] = "table key"
    local c = roundtrip(t)
    lib.ok(same(t, c), n .. " fields: equal")
    lib.ok(c.self == c and c.sub == c.again and c.sub ~= sub,
           n .. " fields: cycle and sharing kept")
    local key
    for k in next, c do
      if type(k) == "table" then key = k end
    end
    lib.ok(key == c.sub and c[key] == "table key",
           n .. " fields: the table key is the one copy of sub")
  end
  -- Only a table key, first or alone.
  local k = { "k" }
  local c = roundtrip({ [k] = k })
  local ck = next(c)
  lib.ok(ck ~= k and c[ck] == ck and ck[1] == "k", "a lone table key")
end)

lib.test("an array part and integer keys beyond its border", function()
  check("border then integers and fields",
        { 1, 2, 3, [10] = 10, [100] = 100, [-1] = "neg", [0] = 0, x = "x",
          [2^40] = "far" })
  local t = {}
  for i = 1, 300 do t[i] = i end
  for i = 302, 400 do t[i] = i end -- a hole at 301, then more
  t.name = "holes"
  check("an array with a hole and a tail past it", t)
  local u = { 1, 2, 3, 4, 5, 6, 7, 8 }
  u[3], u[8] = nil, nil
  check("holes made by removal, border inside the array", u)
  local nested = { { 1 }, { 2 }, { 3 }, [10] = { 10 }, k = { "k" } }
  nested[11] = nested[1]
  local c = roundtrip(nested)
  lib.ok(same(nested, c) and c[11] == c[1] and c[1] ~= nested[1],
         "nested values beyond the border")
end)

lib.test("no metamethod runs: raw access only", function()
  local calls = 0
  local function count() calls = calls + 1; error("metamethod called") end
  local mt = { __index = count, __newindex = count, __pairs = count,
               __len = count, __eq = count, __lt = count, __le = count,
               __call = count, __concat = count, __tostring = count,
               __name = "watched", __metatable = "locked" }
  local inner = setmetatable({ 1, 2, 3, k = "v" }, mt)
  local t = setmetatable({ inner, inner, rec = inner, [inner] = true, 9 },
                         mt)
  local c = roundtrip(t)
  lib.eq(calls, 0, "no metamethod was called")
  lib.ok(rawequal(getmetatable(c), "locked"), "the metatable came along")
  lib.ok(not rawequal(rawget(c, 1), inner)
         and rawequal(rawget(c, 1), rawget(c, 2))
         and rawequal(rawget(c, "rec"), rawget(c, 1)),
         "nested copies shared as in the original")
  lib.eq(rawget(rawget(c, 1), "k"), "v", "raw contents")
  lib.eq(rawlen(rawget(c, 1)), 3, "raw length")
  lib.eq(rawget(c, 3), 9, "array slot after the nested ones")
  lib.eq(rawget(c, rawget(c, 1)), true, "the table key maps to the copy")
  lib.eq(calls, 0, "still none")
end)

lib.test("a table with __gc: the copy has it too and each is finalised",
         function()
  local finalised = {}
  local mt = { __gc = function(o) finalised[#finalised + 1] = rawget(o, 1) end }
  local t = setmetatable({ "gc", n = 1 }, mt)
  local c = roundtrip({ t, t })
  lib.ok(c[1] == c[2] and c[1] ~= t and getmetatable(c[1]) == mt,
         "one copy, with the metatable")
  t, c = nil, nil -- luacheck: ignore
  collectgarbage()
  collectgarbage()
  lib.eq(#finalised, 2, "the original and its copy both finalised")
  lib.eq(finalised[1], "gc", "with their contents")
end)

lib.test("very deep nesting costs no C stack", function()
  local depth = 200000
  local root = {}
  local t = root
  for i = 1, depth do
    local child = { i = i }
    t.next = child
    t = child
  end
  t.next = root -- and a cycle back over the whole chain
  local c = roundtrip(root)
  local n, x = 0, c
  while x.next ~= c do
    x = x.next
    n = n + 1
    if x.i ~= n then break end
  end
  lib.eq(n, depth, "the whole chain, in order, back to the copy's root")
end)

lib.test("huge tables arrive whole", function()
  local arr = {}
  for i = 1, 300000 do arr[i] = i * 3 end
  local c = roundtrip(arr)
  lib.eq(#c, 300000, "length")
  local bad = 0
  for i = 1, 300000 do if c[i] ~= i * 3 then bad = bad + 1 end end
  lib.eq(bad, 0, "every element")
  local rec = record(100000)
  local cr = roundtrip(rec)
  lib.ok(same(rec, cr), "a 100,000-field record")
  local list = {}
  for i = 1, 50000 do list[i] = { id = i, name = "n" .. i } end
  local cl = roundtrip(list)
  lib.ok(same(list, cl) and cl[1] ~= list[1], "50,000 small records")
end)

lib.test("nested records: copied whole by the gather, or gone on with from "
         .. "where it stopped", function()
  local plain = record(5)
  local wide = record(150)
  local inner = { deep = true }
  local stops = record(30, { inner = inner, [inner] = "k" })
  stops.me = stops
  local arrayish = { 1, 2, 3, x = plain }
  local t = { plain, plain, wide = wide, stops = stops, arr = arrayish,
              list = { record(3), record(70), { stops } } }
  local c = roundtrip(t)
  lib.ok(same(t, c), "equal")
  lib.ok(c[1] == c[2] and c[1] ~= plain and c.arr.x == c[1],
         "a gathered record reached three times is one copy")
  lib.ok(c.wide ~= wide and same(wide, c.wide), "a wide one, whole")
  local cs = c.stops
  lib.ok(cs.me == cs and c.list[3][1] == cs and cs.inner ~= inner,
         "a stopped one: its cycle, its sharing, its nested copy")
  lib.eq(cs[cs.inner], "k", "and its table key, mapped to that copy")
end)
