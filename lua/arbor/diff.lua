--[[
arbor.diff: what a reload changes, decided from values alone.

A pure module (no processes, no I/O): given the running tree and the
reloaded one, both "resolved" (each tree spec with the child specs its
init declared, nested tree specs resolved too), it computes an edit per
supervisor: flags to set in place, children removed, changed, added, and
edits for nested trees.

"Changed" is decided from code and values, never from object identity,
so reloading an unchanged file changes nothing:
- functions are equal when their stripped bytecode is equal (line
  numbers, local names and where their upvalues sit in the function
  that made them do not count) and their upvalues are equal by value,
  in their own order, except _ENV (each load has its own environment):
  adding, removing or moving a sibling never changes a function;
- tables are equal when their contents and metatables are equal (cycles
  are handled by assuming equality while comparing a pair);
- anything else (userdata such as subjects and pids, threads) is equal
  only to itself.
]]
local M = {}

local dump, getupvalue = string.dump, debug.getupvalue
local byte, sub = string.byte, string.sub

local equal

--[[
Lua 5.4 keeps each function's first and last line numbers in a stripped
dump, so a blank line added above a function would make it "changed".
code(f) walks the dump (ldump.c's format: header, then per function:
source, linedefined, lastlinedefined, 3 bytes, code, constants,
upvalues, nested functions, debug info) and returns it without those two
numbers.  The header is fixed-size for a given build: 4 + 1 + 1 + 6 + 3
+ 8 + 8 bytes, then one byte (the main function's upvalue count).
]]
local HEADER = 31 + 1

-- A function's code never changes, so code(f) is worked out once per
-- function and kept while the function lives (the old tree's functions
-- are compared at every reload), and once per distinct dump during a
-- reload: the closures one line makes for 20,000 children share one
-- prototype, hence one dump.  by_dump is emptied by each M.tree, so it
-- holds one reload's worth of code at most.
local codes = setmetatable({}, { __mode = "k" })
local by_dump = {}

local function strip(d)
  local pos, out = HEADER + 1, { sub(d, 1, HEADER) }
  -- (Callers read size() into a local first: in `pos = pos + size()`
  -- the old pos would be read before size() moves it.)
  local function size() -- ldump's varint: 7 bits a byte, last has 0x80
    local n = 0
    repeat
      local b = byte(d, pos)
      pos = pos + 1
      n = (n << 7) | (b & 0x7f)
    until b >= 0x80
    return n
  end
  local function keep(from) out[#out + 1] = sub(d, from, pos - 1) end
  local function string_()
    local n = size()
    if n > 0 then pos = pos + n - 1 end
  end
  local function func(top)
    local from = pos
    string_()            -- source (empty when stripped)
    keep(from)
    size(); size()       -- linedefined, lastlinedefined: dropped
    from = pos
    pos = pos + 3        -- numparams, is_vararg, maxstacksize
    local n = size()                          -- code
    pos = pos + 4 * n
    for _ = 1, size() do                      -- constants
      local tag = byte(d, pos)
      pos = pos + 1
      if tag == 0x13 or tag == 0x03 then      -- float, integer
        pos = pos + 8
      elseif tag == 0x04 or tag == 0x14 then  -- short, long string
        string_()
      end
    end
    n = size()                                -- upvalues
    if top then
      -- The compared function's own upvalue descriptors name slots of
      -- the function that made it (instack, index, kind), which shift
      -- when a sibling is added, removed or moved: dropped here, the
      -- upvalues are compared by value instead (same_function).  Nested
      -- functions' descriptors name slots of this function: kept.
      keep(from)
      pos = pos + 3 * n
      from = pos
    else
      pos = pos + 3 * n
    end
    local nested = size()
    keep(from)
    for _ = 1, nested do func(false) end
    from = pos
    n = size()              -- lineinfo (one byte each; empty when stripped)
    pos = pos + n
    for _ = 1, size() do size(); size() end   -- abslineinfo
    for _ = 1, size() do string_(); size(); size() end -- locvars
    for _ = 1, size() do string_() end        -- upvalue names
    keep(from)
  end
  func(true)
  return table.concat(out)
end

local function code(f)
  local c = codes[f]
  if c == nil then
    local ok, d = pcall(dump, f, true)
    if ok then
      c = by_dump[d]
      if c == nil then
        c = strip(d)
        by_dump[d] = c
      end
    else
      c = false -- a C function: no code to compare
    end
    codes[f] = c
  end
  return c or nil
end

M.code = code

local function same_function(a, b, seen)
  local codeA, codeB = code(a), code(b)
  if codeA == nil or codeA ~= codeB then return false end
  local i = 1
  while true do
    local nameA, va = getupvalue(a, i)
    local nameB, vb = getupvalue(b, i)
    if nameA == nil and nameB == nil then return true end
    if nameA ~= nameB then return false end
    if nameA ~= "_ENV" and not equal(va, vb, seen) then return false end
    i = i + 1
  end
end

local function same_table(a, b, seen)
  if not equal(getmetatable(a), getmetatable(b), seen) then return false end
  local count = 0
  for k, va in next, a do
    count = count + 1
    local vb = rawget(b, k)
    if vb == nil or not equal(va, vb, seen) then return false end
  end
  for _ in next, b do count = count - 1 end
  return count == 0
end

-- Deep equality by code and value (see the header).
function equal(a, b, seen)
  if rawequal(a, b) then return true end
  local t = type(a)
  if t ~= type(b) or (t ~= "function" and t ~= "table") then return false end
  seen = seen or {}
  local pairs_of = seen[a]
  if pairs_of and pairs_of[b] then return true end -- already comparing
  if not pairs_of then
    pairs_of = {}
    seen[a] = pairs_of
  end
  pairs_of[b] = true
  if t == "function" then return same_function(a, b, seen) end
  return same_table(a, b, seen)
end

M.equal = equal

-- Child-level options: everything but a nested tree's contents, which are
-- compared child by child instead.
local function same_child(old, new)
  if old.kind ~= new.kind or old.restart_type ~= new.restart_type
     or old.shutdown_spec ~= new.shutdown_spec
     or old.child_id ~= new.child_id then
    return false
  end
  local ob, nb = old.backoff_spec, new.backoff_spec -- spec:backoff
  if (ob == nil) ~= (nb == nil) or ob and (ob.initial ~= nb.initial
     or ob.max ~= nb.max or ob.reset_after ~= nb.reset_after) then
    return false
  end
  if not equal(old.updater, new.updater) then return false end
  if old.tree or new.tree then
    if not (old.tree and new.tree) then return false end
    -- A nested tree restarts only if what it is started with changes.
    return equal(old.tree.argument, new.tree.argument)
  end
  return equal(old.start, new.start)
end

local function flags_of(tree)
  return { strategy = tree.strategy, max_frequency = tree.max_frequency,
           frequency_period = tree.frequency_period }
end

local function same_flags(a, b)
  return a.strategy == b.strategy and a.max_frequency == b.max_frequency
         and a.frequency_period == b.frequency_period
end

--[[
Which children keep their place: kept ones must stay in the same
relative order, and as many as possible do, so moving one child moves
only it.  The largest set of children in both lists whose old order
matches their new order (a longest increasing subsequence of old
positions, taken in new order; O(n log n)); when several are as large,
the one that ends latest in the new list, each member preceded by the
latest earlier child that ends a set one shorter.  Returns {[id] =
true}.
]]
local function keep_in_place(new_ids, old_index)
  local tails, pred = {}, {} -- tails[k]: new position ending a set of k
  for i, id in ipairs(new_ids) do
    local oi = old_index[id]
    if oi then
      local lo, hi = 1, #tails + 1 -- first k with old_index(tails[k]) >= oi
      while lo < hi do
        local mid = (lo + hi) // 2
        if old_index[new_ids[tails[mid]]] < oi then lo = mid + 1 else hi = mid end
      end
      tails[lo] = i
      pred[i] = tails[lo - 1]
    end
  end
  local kept, i = {}, tails[#tails]
  while i do
    kept[new_ids[i]] = true
    i = pred[i]
  end
  return kept
end

--[[
M.tree(old, new) -> edit, for two resolved trees:
  { flags = {...} or nil, argument_changed = bool,
    removed = {[id] = true}, changed = {[id] = child spec},
    added = {{index = i, id = id, spec = spec}, ...} (ascending index),
    nested = {[id] = edit}, specs = new child specs in order, ids = ...,
    empty = true when nothing at all changes below this tree }
A moved child (keep_in_place: not among the most children whose order
is unchanged) is removed and added again: restart semantics depend on
order.
]]
local function tree(old, new)
  local edit = { removed = {}, changed = {}, added = {}, nested = {},
                 specs = new.specs, ids = new.ids }
  if not same_flags(flags_of(old.tree), flags_of(new.tree)) then
    edit.flags = flags_of(new.tree)
  end
  local argument_changed = not equal(old.tree.argument, new.tree.argument)
  edit.argument_changed = argument_changed
  edit.argument = new.tree.argument

  local old_index = {}
  for i, id in ipairs(old.ids) do old_index[id] = i end
  local new_index = {}
  for i, id in ipairs(new.ids) do new_index[id] = i end

  local kept = keep_in_place(new.ids, old_index)
  for _, id in ipairs(old.ids) do
    if not kept[id] then edit.removed[id] = true end
  end
  for i, id in ipairs(new.ids) do
    local spec = new.specs[i]
    if not kept[id] then
      edit.added[#edit.added + 1] = { index = i, id = id, spec = spec }
    else
      local oi = old_index[id]
      local ospec = old.specs[oi]
      if argument_changed or not same_child(ospec, spec) then
        edit.changed[id] = spec
      elseif spec.tree then
        local sub = tree(old.nested[oi], new.nested[i])
        if not sub.empty then edit.nested[id] = sub end
      end
    end
  end
  edit.empty = edit.flags == nil and next(edit.removed) == nil
               and next(edit.changed) == nil and #edit.added == 0
               and next(edit.nested) == nil
  return edit
end

function M.tree(old, new)
  by_dump = {}
  local edit = tree(old, new)
  by_dump = {}
  return edit
end

-- The ids edit adds, as a set.
local function added_ids(edit)
  local set = {}
  for _, a in ipairs(edit.added) do set[a.id] = true end
  return set
end

--[[
M.predict(edit, strategy, live) -> restarted, dropped, handled: what
applying edit to one running supervisor does, by the rules Sup:apply and
the restart engine follow (docs/reference.md, "Live editing"):
- removed children are stopped and dropped first;
- then each changed child, in order, that runs and that no earlier
  restart of this reload already took care of, restarts as the strategy
  says -- the new strategy when the same save changes it: itself, those
  after it (rest_for_one) or all (one_for_all); a temporary child in the
  set other than itself is stopped and dropped (OTP), by its new restart
  type; every other member starts again, stopped ones too;
- a changed child that is not running is not started: its new spec is
  the one its next start uses;
- added children start in their places: listed as added, never as
  restarted.
live is the running supervisor: { ids = its children in order, status =
{[id] = "running" | "stopped" | "restarting"} }, or true for "every kept
child runs".  Returns the restarted and dropped ids in children order,
and handled: {[id] = "restarted" | "dropped"}.
]]
function M.predict(edit, strategy, live)
  strategy = edit.flags and edit.flags.strategy or strategy
  local added = added_ids(edit)
  local spec_of = {}
  for i, id in ipairs(edit.ids) do spec_of[id] = edit.specs[i] end
  local list, status = {}, {}
  if live == true or live == nil then
    for _, id in ipairs(edit.ids) do
      if not added[id] then
        list[#list + 1] = id
        status[id] = "running"
      end
    end
  else
    for _, id in ipairs(live.ids) do
      -- (A child the file no longer has, yet not removed, cannot be:
      -- the diff removes every id the new file lacks.)
      if not edit.removed[id] and spec_of[id] then
        list[#list + 1] = id
        status[id] = live.status[id]
      end
    end
  end
  local handled = {}
  for i, id in ipairs(list) do
    if edit.changed[id] ~= nil and not handled[id]
       and status[id] == "running" then
      for j, member in ipairs(list) do
        if not (handled[member] == "dropped")
           and (j == i or strategy == "one_for_all"
                or (strategy == "rest_for_one" and j > i)) then
          if member ~= id and spec_of[member].restart_type == "temporary" then
            handled[member] = "dropped"
          else
            handled[member] = "restarted"
          end
        end
      end
    end
  end
  local restarted, dropped = {}, {}
  for _, id in ipairs(list) do
    if handled[id] == "restarted" then restarted[#restarted + 1] = id end
    if handled[id] == "dropped" then dropped[#dropped + 1] = id end
  end
  return restarted, dropped, handled, status
end

-- The children a strategy restarts when `changed` children change, in
-- start order, every kept child running.
function M.predict_restarts(edit, strategy)
  return (M.predict(edit, strategy, true))
end

local function join(path, id)
  if path == "" then return tostring(id) end
  return path .. "/" .. tostring(id)
end

--[[
M.summarize(edit, strategy, path, acc, predict) flattens an edit into
lists of paths (like "sessions/worker-2"): changed, added, removed and
flags from the diff.  With predict (true, or the running tree as
reload.live gives it: { ids, status, nested = {[id] = live} }), restarts
are predicted too (M.predict): restarted, and the temporary children a
restart drops, listed as removed.  Nested trees are predicted only where
the reload reaches them: running, and neither restarted nor dropped by
it (a restarted nested tree starts from its new spec as a whole).
]]
function M.summarize(edit, strategy, path, acc, predict)
  acc = acc or { changed = {}, added = {}, removed = {}, restarted = {},
                 flags = {}, failed = {} }
  path = path or ""
  if edit.flags then acc.flags[#acc.flags + 1] = path == "" and "root" or path end
  local ids = {}
  for id in pairs(edit.removed) do ids[#ids + 1] = id end
  table.sort(ids, function(a, b) return tostring(a) < tostring(b) end)
  for _, id in ipairs(ids) do acc.removed[#acc.removed + 1] = join(path, id) end
  for _, id in ipairs(edit.ids) do
    if edit.changed[id] ~= nil then
      acc.changed[#acc.changed + 1] = join(path, id)
    end
  end
  for _, a in ipairs(edit.added) do acc.added[#acc.added + 1] = join(path, a.id) end
  local handled, status = {}, {}
  if predict then
    local restarted, dropped
    restarted, dropped, handled, status = M.predict(edit, strategy, predict)
    for _, id in ipairs(restarted) do
      acc.restarted[#acc.restarted + 1] = join(path, id)
    end
    for _, id in ipairs(dropped) do
      acc.removed[#acc.removed + 1] = join(path, id)
    end
  end
  for i, id in ipairs(edit.ids) do
    local sub = edit.nested[id]
    if sub then
      local inner = false
      if predict and handled[id] == nil and status[id] == "running" then
        inner = predict == true
                or (predict.nested and predict.nested[id]) or false
      end
      M.summarize(sub, edit.specs[i].tree.strategy, join(path, id), acc,
                  inner)
    end
  end
  return acc
end

-- One line: "changed a, b; added c; removed d; restarted a, b, e;
-- failed to start c: reason".
function M.line(acc)
  local parts = {}
  local function part(label, list)
    if #list > 0 then parts[#parts + 1] = label .. " " .. table.concat(list, ", ") end
  end
  part("flags of", acc.flags)
  part("changed", acc.changed)
  part("added", acc.added)
  -- Removed children come from the diff and from restarts (temporary
  -- ones dropped): sorted, so a plan and its outcome read the same.
  local removed = table.move(acc.removed, 1, #acc.removed, 1, {})
  table.sort(removed)
  part("removed", removed)
  part("restarted", acc.restarted)
  part("failed to start", acc.failed or {})
  if #parts == 0 then return "no changes" end
  return table.concat(parts, "; ")
end

return M
