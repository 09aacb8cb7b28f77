--[[
dist: arbor as a hidden node of an Erlang cluster (docs/dist.md).

The node, the term mapping, names, sending and the control messages are
C (host/bind/ldist.c over host/rt/dist.c and host/dist/term.c); the
host passes their table in as this chunk's second argument.  Here is
what is naturally a process: the proxies that stand for BEAM pids, the
one-shot repliers of gen_server calls, and the pg scope that mirrors a
chip registry into Erlang's pg (pg's own protocol: discover, sync, join,
leave, and a monitor on each peer scope process).
]]
local _, M = ...

local process = require("process")
local chip = require("chip")
local logger = require("logger")

local send, atom, tuple = M.send, M.atom, M.tuple
local receive, new_selector, select = process.receive, process.new_selector,
                                      process.select

-- A proxy: what arrives on its subject goes to one BEAM pid.  The node
-- ends it (with the BEAM process's exit reason, or "noconnection").
function M._proxy_loop(pid, subject)
  while true do
    local msg = receive(subject)
    if M.node() == nil then return end
    local ok, err = pcall(send, pid, msg)
    if not ok then
      logger.warning("dist: a message to %s was not sent: %s",
                     tostring(pid), tostring(err))
    end
  end
end

-- The reply subject of one gen_server call: the first value sent to it
-- goes back to the caller as {Tag, Reply}.  It gives up if the callee
-- ends first (the caller's monitor on the name tells it).
function M._reply_forwarder(pid, tag, callee, subject)
  local mon = process.monitor(callee)
  local got = select(new_selector()
    :selecting(subject, function(v) return { reply = v } end)
    :selecting_process_down(mon, function() return { down = true } end))
  process.demonitor(mon)
  if got.reply ~= nil and M.node() ~= nil then
    local ok, err = pcall(send, pid, tuple(tag, got.reply))
    if not ok then
      logger.warning("dist: a reply to %s was not sent: %s", tostring(pid),
                     tostring(err))
    end
  end
end

-- {======================================================================
-- pg scopes
-- ======================================================================

local A = setmetatable({}, { __index = function(t, k)
  local a = atom(k); rawset(t, k, a); return a end })

-- chip group -> pg group term, and back.
local function group_term(g)
  if type(g) == "string" then
    if #g == 0 or #g > 255 then return nil end
    return atom(g)
  end
  return g -- numbers and booleans are the same on both sides
end

local function group_key(t)
  if M.is_atom(t) then return tostring(t) end
  local ty = type(t)
  if ty == "number" or ty == "boolean" then return t end
  return nil -- binaries, tuples...: not a chip group
end

local function pid_list(p)
  if M.is_pid(p) then return { p } end
  if type(p) == "table" and getmetatable(p) == nil then return p end
  return {}
end

-- Watches pid (an arbor or a BEAM pid) and sends msg with the reason to
-- subject when it ends.
local function watch(pid, subject, msg)
  process.spawn(function()
    local mon = process.monitor(pid)
    local down = select(new_selector():selecting_process_down(mon))
    msg.reason = down.reason
    process.send(subject, msg)
  end)
end

local function scope_main(registry, scope_name, me)
  local scope = atom(scope_name)
  local events = process.new_subject()
  M.monitor_nodes(events)
  -- local subject -> { group key, ... } and owner pid -> { subject, ... }
  local local_groups, owners = {}, {}
  -- peer scope pid -> { [beam pid] = { [group key] = proxy subject } }
  local peers = {}
  local proxies = {} -- proxy subject -> true (not ours to announce)

  local function broadcast(msg)
    for peer in pairs(peers) do send(peer, msg) end
  end

  local function groups_term()
    local by_group, order = {}, {}
    for s, groups in pairs(local_groups) do
      for _, g in ipairs(groups) do
        if not by_group[g] then by_group[g] = {}; order[#order + 1] = g end
        table.insert(by_group[g], s)
      end
    end
    local list = {}
    for _, g in ipairs(order) do
      list[#list + 1] = tuple(group_term(g), by_group[g])
    end
    return list
  end

  local function add_local(s, g)
    if proxies[s] or group_term(g) == nil then return end
    local groups = local_groups[s]
    if not groups then
      groups = {}
      local_groups[s] = groups
      local owner = process.subject_owner(s)
      if not owners[owner] then
        owners[owner] = {}
        watch(owner, me, { local_down = owner })
      end
      table.insert(owners[owner], s)
    end
    for _, have in ipairs(groups) do if have == g then return end end
    groups[#groups + 1] = g
    broadcast(tuple(A.join, me, group_term(g), s))
  end

  local function add_member(peer, pid, key)
    local members = peers[peer]
    members[pid] = members[pid] or {}
    if members[pid][key] then return end
    local psub = M._new_proxy(pid)
    proxies[psub] = true
    members[pid][key] = psub
    chip.register(registry, key, psub)
  end

  local function drop_member(peer, pid, key)
    local groups = peers[peer] and peers[peer][pid]
    local psub = groups and groups[key]
    if psub then
      groups[key] = nil
      proxies[psub] = nil
      M._end_proxy(psub) -- delisted at once
    end
  end

  local generation = {} -- peer -> which watch of it is current

  local function drop_peer(peer, gen)
    if gen ~= generation[peer] then return end -- an old watch's DOWN
    generation[peer] = nil
    for pid, groups in pairs(peers[peer] or {}) do
      for key in pairs(groups) do drop_member(peer, pid, key) end
    end
    peers[peer] = nil
  end

  local function add_peer(peer)
    if peers[peer] then return false end
    peers[peer] = {}
    local gen = (generation[peer] or 0) + 1
    generation[peer] = gen
    watch(peer, me, { peer_down = peer, gen = gen })
    return true
  end

  local function sync(peer, groups)
    local wanted = {}
    for _, entry in ipairs(type(groups) == "table" and groups or {}) do
      local key = M.is_tuple(entry) and group_key(entry[1])
      if key ~= nil then
        for _, pid in ipairs(pid_list(entry[2])) do
          wanted[pid] = wanted[pid] or {}
          wanted[pid][key] = true
        end
      end
    end
    for pid, groups in pairs(peers[peer]) do
      for key in pairs(groups) do
        if not (wanted[pid] and wanted[pid][key]) then
          drop_member(peer, pid, key)
        end
      end
    end
    for pid, keys in pairs(wanted) do
      for key in pairs(keys) do add_member(peer, pid, key) end
    end
  end

  local function discover(node)
    send({ scope, node }, tuple(A.discover, me))
  end

  -- What the registry holds already is ours.
  for _, g in ipairs(chip.groups(registry)) do
    for _, s in ipairs(chip.members(registry, g)) do add_local(s, g) end
  end
  for _, node in ipairs(M.nodes()) do discover(node) end

  local sel = new_selector():selecting(me):selecting(events)
  while true do
    local msg = select(sel)
    if M.node() == nil then return end -- the node stopped: so does the scope
    if M.is_tuple(msg) then
      local tag = msg[1]
      if tag == A.discover and M.is_pid(msg[2]) then
        local peer = msg[2]
        send(peer, tuple(A["$gen_cast"], tuple(A.sync, me, groups_term())))
        if add_peer(peer) then send(peer, tuple(A.discover, me)) end
      elseif tag == A["$gen_cast"] and M.is_tuple(msg[2])
             and msg[2][1] == A.sync and M.is_pid(msg[2][2]) then
        add_peer(msg[2][2])
        sync(msg[2][2], msg[2][3])
      elseif tag == A.join and peers[msg[2]] then
        local key = group_key(msg[3])
        if key ~= nil then
          for _, pid in ipairs(pid_list(msg[4])) do
            add_member(msg[2], pid, key)
          end
        end
      elseif tag == A.leave and peers[msg[2]] then
        for _, g in ipairs(type(msg[4]) == "table" and msg[4] or {}) do
          local key = group_key(g)
          if key ~= nil then
            for _, pid in ipairs(pid_list(msg[3])) do
              drop_member(msg[2], pid, key)
            end
          end
        end
      end
    elseif type(msg) == "table" then
      if msg.join ~= nil then
        add_local(msg.subject, msg.join)
      elseif msg.local_down then
        for _, s in ipairs(owners[msg.local_down] or {}) do
          local terms = {}
          for _, g in ipairs(local_groups[s]) do
            terms[#terms + 1] = group_term(g)
          end
          local_groups[s] = nil
          broadcast(tuple(A.leave, me, s, terms))
        end
        owners[msg.local_down] = nil
      elseif msg.barrier then
        process.send(msg.barrier, true)
      elseif msg.peer_down then
        drop_peer(msg.peer_down, msg.gen)
      elseif msg.event == "up" then
        discover(msg.node)
      end
    end
  end
end

local scopes = setmetatable({}, { __mode = "k" }) -- registry -> subject

--- dist.pg(registry [, scope]) -> true: mirrors the chip
--- registry into the pg scope (default "pg") of every node connected
--- now or later.  The scope process is linked to the caller.
function M.pg(registry, scope_name)
  scope_name = scope_name or "pg"
  if type(scope_name) ~= "string" or #scope_name == 0 then
    error("bad argument #2 to 'pg' (scope name expected)", 2)
  end
  if M.node() == nil then
    error("dist.pg: no node is running (call dist.start first)", 2)
  end
  chip.members(registry, "") -- raises if it is not a live registry
  local pid, subject = M._spawn_with_subject(scope_main, registry,
                                             scope_name)
  process.link(pid)
  M._mirror(registry, subject)
  scopes[registry] = subject
  return true
end

--- dist.pg_sync(registry [, timeout_ms]) -> true | nil, err: returns once
--- the registry's scope has handled everything that reached it before
--- the call (joins and leaves from other nodes, local registrations).
function M.pg_sync(registry, timeout_ms)
  local scope = scopes[registry]
  if scope == nil then
    error("bad argument #1 to 'pg_sync' (registry not mirrored by dist.pg)", 2)
  end
  local reply = process.new_subject()
  process.send(scope, { barrier = reply })
  local ok = process.receive(reply, timeout_ms or 5000)
  if ok == nil then
    return nil, setmetatable({ kind = "timeout",
                               message = "dist.pg_sync: timed out" },
                             { __tostring = function(e) return e.message end })
  end
  return true
end

-- }======================================================================

return M
