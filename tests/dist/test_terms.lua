-- test_terms: Lua values <-> Erlang terms, both directions, through a
-- real Erlang node, and the errors hostile terms give.
package.path = "./?.lua;" .. package.path
local D = require "distlib"
local lib, A = D.lib, D.A
local process = require "process"
local dist = require "dist"
local test = lib.test

D.start()

local tuple, atom = dist.tuple, dist.atom

test("arbor -> BEAM -> arbor: every kind of value comes back the same", function()
  local me = process.new_subject()
  local values = {
    0, 1, -1, 255, 256, -129, 2 ^ 31 | 0, -(2 ^ 31 | 0) - 1, 1 << 40,
    math.maxinteger, math.mininteger,
    0.5, -1.25e300, 3.0,
    "", "bytes \0 with a zero", string.rep("x", 70000),
    atom("ok"), atom("with space"), atom("héllo"),
    true, false,
    tuple(), tuple(1, "two", atom("three")), tuple(tuple(tuple())),
    {}, { 1, 2, 3 }, { "a", { "b", { "c" } } },
    { key = "value", [1.5] = true }, setmetatable({}, dist.Map),
    { [atom("k")] = tuple(1, 2) },
    me,
  }
  for i, v in ipairs(values) do
    local back = D.echo(v)
    D.check_same(back, v, "value #" .. i)
  end
end)

test("strings are binaries and tables are lists or maps, as Erlang sees them", function()
  local reply = D.eval_async([[
    register(checker, self()), ReplyTo ! ready,
    receive T -> T end.]])
  lib.eq(D.await(reply), A.ready, "checker ready")
  dist.send({ "checker", D.peer },
            tuple(atom("ok"), 42, 2.5, "bin", { 1, 2, 3 }, { k = "v" }, true,
                  {}))
  local r = D.await(reply)
  lib.eq(r[1], A.ok, "eval")
  -- the peer returns what it received; check it as Erlang terms there
  local checks = D.eval([[
    T = {ok, 42, 2.5, <<"bin">>, [1,2,3], #{<<"k">> => <<"v">>}, true, []},
    Bin = term_to_binary(T),
    {Bin, is_binary(element(4, T))}.]])
  D.check_same(dist.decode(checks[1]), r[2], "the same term Erlang makes")
  lib.eq(checks[2], true, "binary")
end)

test("BEAM -> arbor: Erlang literals arrive as the documented Lua values", function()
  local v = D.eval([[
    {1, -7, 1 bsl 62, 2.5, <<"bin">>, "abc", atom, true, false, [],
     [1 | improper], #{a => [1]}, self(), make_ref(), {}}.]])
  lib.eq(v[1], 1); lib.eq(v[2], -7); lib.eq(v[3], 1 << 62)
  lib.eq(math.type(v[4]), "float"); lib.eq(v[4], 2.5)
  lib.eq(v[5], "bin")
  lib.same(v[6], { 97, 98, 99 }, "an Erlang string is a list of codes")
  lib.eq(v[7], atom("atom")); lib.eq(tostring(v[7]), "atom")
  lib.eq(v[8], true); lib.eq(v[9], false)
  lib.same(v[10], {}, "[]")
  lib.eq(getmetatable(v[11]), dist.ImproperList)
  lib.eq(v[11][1], 1); lib.eq(v[11].tail, atom("improper"))
  lib.eq(getmetatable(v[12]), dist.Map); lib.same(v[12][atom("a")], { 1 })
  lib.ok(dist.is_pid(v[13]), "a pid"); lib.eq(dist.node_of(v[13]), D.peer)
  lib.ok(tostring(v[13]):find("^<" .. D.peer:gsub("%p", "%%%0")), "pid text")
  lib.ok(dist.is_ref(v[14]), "a ref")
  lib.ok(tostring(v[14]):find("^#Ref<"), "ref text")
  lib.ok(dist.is_tuple(v[15]) and v[15].n == 0, "{}")
  -- the same pid and ref compare equal when they come again
  local again = D.eval("P = list_to_pid(\"" .. "<0.1.0>" .. "\"), {P, P}.")
  lib.ok(again[1] == again[2], "pids __eq")
end)

test("refs and pids compare by value, and survive a round trip", function()
  local r = D.eval("make_ref().")
  local back = D.echo(r)
  lib.ok(back == r, "ref __eq after a round trip")
  lib.ok(not rawequal(back, r), "a fresh userdata")
  local p = D.eval("self().")
  lib.ok(D.echo(p) == p, "pid __eq after a round trip")
end)

test("a bignum over 64 bits is an error; the edges of 64 bits are not", function()
  lib.eq(D.eval("(1 bsl 63) - 1."), math.maxinteger)
  lib.eq(D.eval("-(1 bsl 63)."), math.mininteger)
  local bin = D.eval("term_to_binary(1 bsl 64).")
  local v, err = dist.decode(bin)
  lib.eq(v, nil); lib.ok(tostring(err):find("does not fit in 64 bits"), tostring(err))
  lib.eq(err.kind, "badarg")
  local v2, err2 = dist.decode(D.eval("term_to_binary(1 bsl 63)."))
  lib.eq(v2, nil); lib.ok(tostring(err2):find("64 bits"), "2^63")
  -- a message carrying one is dropped (with a warning); the next arrives
  local reply = D.eval_async([[
    ReplyTo ! {big, 1 bsl 70}, ReplyTo ! after_big, done.]])
  lib.eq(D.await(reply), A.after_big, "the message after the bad one")
  lib.eq(D.await(reply)[2], A.done, "eval result")
end)

test("hostile terms: truncated, too deep, too large, atom over the limit", function()
  local good = dist.encode({ 1, 2, { a = "xyz" } })
  for cut = 1, #good - 1 do
    local v, err = dist.decode(good:sub(1, cut))
    lib.eq(v, nil, "cut at " .. cut)
    lib.ok(tostring(err):find("truncated") or tostring(err):find("version"),
           "cut at " .. cut .. ": " .. tostring(err))
  end
  local v, err = dist.decode(good .. "x")
  lib.ok(v == nil and tostring(err):find("left after the term"), "trailing bytes")
  -- 200 nested one-element lists
  local deep = "\131" .. ("\108\0\0\0\1"):rep(200) .. "\106" .. ("\106"):rep(200)
  v, err = dist.decode(deep)
  lib.ok(v == nil and tostring(err):find("deeper than 100"), tostring(err))
  -- the same depth Erlang makes is refused too, as a message
  local reply = D.eval_async([[
    Deep = lists:foldl(fun(_, A) -> [A] end, [], lists:seq(1, 150)),
    ReplyTo ! Deep, ReplyTo ! after_deep, done.]])
  lib.eq(D.await(reply), A.after_deep, "the deep message was dropped")
  D.await(reply)
  -- a list claiming 2^32-1 elements in a few bytes
  v, err = dist.decode("\131\108\255\255\255\255\106")
  lib.ok(v == nil and tostring(err):find("truncated"), tostring(err))
  -- element limit
  local big = dist.encode((function() local t = {} for i = 1, 1000 do t[i] = i end return t end)())
  v, err = dist.decode(big, { max_elements = 100 })
  lib.ok(v == nil and tostring(err):find("too large"), tostring(err))
  lib.eq(#dist.decode(big), 1000, "within the default limit")
  -- an atom of 300 characters (ATOM_UTF8_EXT allows 65535 bytes)
  v, err = dist.decode("\131\118\1\44" .. ("a"):rep(300))
  lib.ok(v == nil and tostring(err):find("atom of 300 characters"), tostring(err))
  v, err = dist.decode("\131\118\7\208" .. "a" .. ("\128"):rep(2000))
  lib.ok(v == nil and tostring(err):find("atom of 2000 bytes"), tostring(err))
  lib.raises(function() atom(("a"):rep(256)) end, "over 255 characters")
  lib.eq(tostring(atom(("é"):rep(255))), ("é"):rep(255), "255 characters")
  -- a fun and a port are not mapped
  v, err = dist.decode(D.eval("term_to_binary(fun() -> ok end)."))
  lib.ok(v == nil and tostring(err):find("a fun"), tostring(err))
  v, err = dist.decode(D.eval("term_to_binary(hd(erlang:ports()))."))
  lib.ok(v == nil and tostring(err):find("a port"), tostring(err))
  -- unknown tags and bad bytes
  v, err = dist.decode("\131\200")
  lib.ok(v == nil and tostring(err):find("unknown tag 200"), tostring(err))
  v, err = dist.decode("no version")
  lib.ok(v == nil and tostring(err):find("version"), tostring(err))
end)

test("mutated and random bytes never crash the decoder", function()
  -- every byte of a rich term flipped, cut and widened, then random
  -- strings after the version byte: each decodes or says why, within
  -- the buffer (the ASan build checks every read)
  local base = dist.encode(tuple(1, -1, 1 << 40, 2.5, "bin", atom("a"),
    { 1, { 2, { 3 } } }, { k = tuple() }, setmetatable({}, dist.Map),
    D.eval("{self(), make_ref()}.")))
  local decoded, failed = 0, 0
  local function try(bytes)
    local ok, v, err = pcall(dist.decode, bytes)
    lib.ok(ok, "decode raised: " .. tostring(v))
    if v == nil then
      lib.ok(type(tostring(err)) == "string" and err.kind == "badarg", "an error")
      failed = failed + 1
    else
      decoded = decoded + 1
    end
  end
  for i = 2, #base do
    for _, b in ipairs { 0, 1, 127, 128, 255, base:byte(i) ~ 0x40 } do
      try(base:sub(1, i - 1) .. string.char(b) .. base:sub(i + 1))
    end
  end
  math.randomseed(20261130)
  for _ = 1, 3000 do
    local t = {}
    for j = 1, math.random(1, 40) do t[j] = string.char(math.random(0, 255)) end
    try("\131" .. table.concat(t))
  end
  lib.ok(decoded > 0 and failed > 0, decoded .. " decoded, " .. failed .. " refused")
end)

test("values with no term are refused when sent, naming what", function()
  lib.raises(function() dist.encode(print) end, "cannot encode function")
  lib.raises(function() dist.encode(0 / 0) end, "NaN")
  lib.raises(function() dist.encode(math.huge) end, "infinity")
  local cycle = {}; cycle[1] = cycle
  lib.raises(function() dist.encode(cycle) end, "deeper than 100")
  lib.raises(function() dist.send({ "echo", D.peer }, { f = print }) end,
             "cannot encode function")
  lib.raises(function() dist.send(42, "x") end, "BEAM pid, subject or {name, node}")
  lib.raises(function() dist.send({ "echo", D.peer }, nil) end, "must not be nil")
  -- the connection is still fine
  lib.eq(D.echo("still here"), "still here")
end)

test("encode and decode agree with Erlang's own bytes", function()
  local bin = D.eval([[term_to_binary({<<"x">>, [1,2], #{k => 2.5}, ok}).]])
  local v = dist.decode(bin)
  D.check_same(v, tuple("x", { 1, 2 }, setmetatable({ [atom("k")] = 2.5 }, dist.Map), atom("ok")))
  local mine = dist.encode(v)
  lib.eq(D.eval("binary_to_term(<<" .. mine:gsub(".", function(c)
    return string.byte(c) .. "," end):sub(1, -2) .. ">>) =:= binary_to_term(<<"
    .. bin:gsub(".", function(c) return string.byte(c) .. "," end):sub(1, -2)
    .. ">>)."), true, "Erlang reads our encoding as the same term")
end)

dist.stop()
