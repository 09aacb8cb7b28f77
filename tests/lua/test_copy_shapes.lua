-- test_copy_shapes: a message is a deep copy whatever the table's shape.
-- The copier (larb.c) sizes each copy up front by walking the original
-- from its border, and sets integer keys on their own path: tables whose
-- border lives in the hash part, arrays with holes, negative and huge
-- integer keys, float keys, mixed tables and nested ones must all arrive
-- whole and equal, and never the same table.
local lib = require "testlib"
local process = require "process"

local function roundtrip(value)
  local inbox = process.new_subject()
  process.send(inbox, value)
  return process.receive(inbox, 1000)
end

-- Deep equality by raw contents (no metamethods), cycles allowed.
local function same(a, b, seen)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in next, a do
    local w = rawget(b, k)
    if type(k) == "table" then return false end -- (not used below)
    if not same(v, w, seen) then return false end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false end
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
