--[[
interp.lua: the arbor half of the differential test against Erlang/OTP
(tests/diff_otp/run.sh; diff_otp.erl is the Erlang half).

  arbor interp.lua SCENARIOS.lua > TRACE

runs every scenario of gen.lua's output and prints, after the set-up and
after each step, one line of what can be observed: "<id>.<step> <result>
<state>".  The Erlang half prints the same lines for the same scenarios;
run.sh compares them.  Both halves follow one script, so the comments of
diff_otp.erl apply here too.

Observed, for a supervision tree: each child in id order as
c<i>=<R running | S stopped | W restarting><times started>, a running
nested tree followed by its own children in brackets, or "down:<reason>"
once the root gave up; the result of each step (skip when its target is
not running, ok, or the error's kind).  For processes: each one's state
(up, or dead:<reason>) and the trapped exits and DOWN messages it got
during the step, sorted (the order of two signals from one exit is not
specified by Erlang).  Reasons are normalised: a {shutdown = true} table
is shutdown_tuple.

Nothing here waits for time.  Each step ends when its effects have
settled: the driver waits for the DOWN of a process it ended, and then
asks every process and supervisor in turn until a whole round shows
nothing new; a supervisor that lists a dead child has not yet heard of
the exit, so the round is retried (polling with a deadline).
]]
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"

core.quiet(true)
process.trap_exits(true)

local send, receive, select = process.send, process.receive, process.select
local scenarios = dofile(arg[1])
local out = {}

local function emit(line) out[#out + 1] = line end

local function reason_name(r)
  if type(r) == "table" and rawget(r, "shutdown") == true then
    return "shutdown_tuple"
  end
  return tostring(r)
end

-- The value a process raises or exits with for a generated reason.
local function reason_value(name)
  if name == "shutdown_tuple" then return { shutdown = true } end
  return name
end

-- select, or an error naming what did not come (rather than a hang).
local function await_one(sel, what)
  local m = select(sel, 10000)
  if m == nil then error("diff_otp: no " .. what .. " in 10 s", 0) end
  return m
end

-- Drops what is left in the driver's trapped exits.
local function drain_exits()
  local sel = process.new_selector():selecting_trapped_exits()
  while select(sel, 0) do end
end

-- {====== Supervision trees

local counts -- path string -> times started

local function path_key(path) return table.concat(path, ".") end

local function count_start(path)
  local k = path_key(path)
  counts[k] = (counts[k] or 0) + 1
end

-- A worker: started, it reports to counts and obeys {"exit", reason}.
local function worker(path)
  return function()
    count_start(path)
    local hand = process.new_subject()
    process.spawn_link(function()
      local own = process.new_subject()
      send(hand, own)
      local cmd = receive(own)
      if cmd[2] == "normal" then return end
      error(reason_value(cmd[2]), 0)
    end)
    return receive(hand, 5000)
  end
end

local function tree_spec(tree, path)
  local strategy, max, children = tree[1], tree[2], tree[3]
  return {
    strategy = strategy, max_frequency = max, frequency_period = 3600,
    init = function(list)
      for i, c in ipairs(children) do
        local p = { table.unpack(path) }
        p[#p + 1] = i
        local spec
        if c[1] == "worker" then
          spec = supervisor.worker(worker(p))
        else
          local sub = tree_spec(c[3], p)
          spec = supervisor.supervisor(function()
            count_start(p)
            return supervisor.start_spec(sub)
          end)
        end
        list:add(spec:restart(c[2]):id("c" .. i))
      end
      return list
    end,
  }
end

local function id_number(id) return tonumber(id:sub(2)) end

-- which_children sorted by id, or nil if the supervisor is gone.
local function children_of(sup)
  local ok, list = pcall(supervisor.which_children, sup)
  if not ok then return nil end
  table.sort(list, function(a, b) return id_number(a.id) < id_number(b.id) end)
  return list
end

local STATUS = { running = "R", stopped = "S", restarting = "W" }

-- The state of the tree under sup (at path), or nil if it is not settled
-- (a child listed as running is dead, a nested tree went away).
local function render(sup, path)
  local list = children_of(sup)
  if list == nil then return nil end
  local parts = {}
  for i, c in ipairs(list) do
    local p = { table.unpack(path) }
    p[#p + 1] = id_number(c.id)
    local s = string.format("%s=%s%d", c.id, STATUS[c.status],
                            counts[path_key(p)] or 0)
    if c.status == "running" then
      if not process.is_alive(c.pid) then return nil end
      if c.kind == "supervisor" then
        local inner = render(c.subject, p)
        if inner == nil then return nil end
        s = s .. inner
      end
    end
    parts[i] = s
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local root, root_pid, root_reason

local function tree_state()
  for _ = 1, 2000 do
    if root_reason then return "down:" .. root_reason end
    if not process.is_alive(root_pid) then
      local e = select(process.new_selector():selecting_trapped_exits(), 1000)
      if e and e.pid == root_pid then root_reason = reason_name(e.reason) end
    else
      local s = render(root, {})
      if s then return s end
    end
    process.sleep(1)
  end
  return "unsettled"
end

-- The supervisor at path (a list of child positions), or nil.
local function find_sup(path)
  if root_reason or not process.is_alive(root_pid) then return nil end
  local sup = root
  for _, i in ipairs(path) do
    local list = children_of(sup)
    local child
    for _, c in ipairs(list or {}) do
      if c.id == "c" .. i then child = c end
    end
    if not (child and child.status == "running"
            and child.kind == "supervisor") then
      return nil
    end
    sup = child.subject
  end
  return sup
end

local function sup_step(step)
  local kind = step[1]
  if kind == "exit" then
    local path = step[2]
    local parent = { table.unpack(path, 1, #path - 1) }
    local sup = find_sup(parent)
    if not sup then return "skip" end
    local child
    for _, c in ipairs(children_of(sup) or {}) do
      if c.id == "c" .. path[#path] then child = c end
    end
    if not (child and child.status == "running") then return "skip" end
    local m = process.monitor(child.pid)
    if step[3] == "kill" then
      process.kill(child.pid)
    else
      send(child.subject, { "exit", step[3] })
    end
    await_one(process.new_selector():selecting_process_down(m),
              "DOWN of a child told to exit")
    return "exit"
  end
  local sup = find_sup(step[2])
  if not sup then return "skip" end
  local id = "c" .. step[3]
  local value, err
  if kind == "term" then
    value, err = supervisor.terminate_child(sup, id)
  else
    value, err = supervisor.restart_child(sup, id)
  end
  if value then return "ok" end
  return err.kind
end

local function run_sup(sc)
  counts = {}
  root_reason = nil
  root = assert(supervisor.start_spec(tree_spec(sc.tree, {})))
  root_pid = process.subject_owner(root)
  emit(string.format("%d.0 start %s", sc.id, tree_state()))
  for k, step in ipairs(sc.steps) do
    local result = root_reason and "skip" or sup_step(step)
    emit(string.format("%d.%d %s %s", sc.id, k, result, tree_state()))
  end
  if process.is_alive(root_pid) then supervisor.stop(root) end
  drain_exits()
end

-- }======

-- {====== Processes, links, monitors and signals

local function run_procs(sc)
  local report = process.new_subject()
  local pids, names, alive, dead, monitors, cmds = {}, {}, {}, {}, {}, {}
  local obs = {}
  local down_sel = process.new_selector():selecting(report)
  for i, trap in ipairs(sc.traps) do
    local hand = process.new_subject()
    local pid = process.spawn(function()
      process.trap_exits(trap)
      local own = process.new_subject()
      send(hand, own)
      local sel = process.new_selector():selecting(own)
        :selecting_trapped_exits(function(e)
          return { "EXIT", e.pid, e.reason }
        end)
      local function down(d) return { "DOWN", d.pid, d.reason } end
      while true do
        local m = select(sel)
        local op = m[1]
        if op == "EXIT" or op == "DOWN" then
          send(report, { "obs", i, op, m[2], m[3] })
        elseif op == "ping" then
          send(report, { "pong", i })
        elseif op == "link" then
          process.link(m[2])
        elseif op == "unlink" then
          process.unlink(m[2])
        elseif op == "monitor" then
          sel:selecting_process_down(process.monitor(m[2]), down)
        elseif op == "signal" then
          process.exit(m[2], reason_value(m[3]))
        elseif op == "die" then
          if m[2] == "normal" then return end
          error(reason_value(m[2]), 0)
        elseif op == "trap" then
          process.trap_exits(m[2])
        end
        if op ~= "EXIT" and op ~= "DOWN" and op ~= "ping" then
          send(report, { "ack", i })
        end
      end
    end)
    pids[i], names[pid], alive[i], obs[i] = pid, "p" .. i, true, {}
    cmds[i] = receive(hand, 5000)
    local m = process.monitor(pid)
    monitors[i] = m
    down_sel:selecting_process_down(m, function(d)
      return { "down", i, d.reason }
    end)
  end

  -- Takes the driver's next message and files it; returns it.
  local function take()
    local m = await_one(down_sel, "answer from the processes")
    if m[1] == "obs" then
      local from = names[m[4]] or "?"
      table.insert(obs[m[2]], string.format("%s%s:%s", m[3], from,
                                            reason_name(m[5])))
    elseif m[1] == "down" then
      alive[m[2]], dead[m[2]] = false, reason_name(m[3])
    end
    return m
  end

  -- Waits until actor i has answered (kind "ack" or "pong") or died.
  local function await(i, kind)
    while alive[i] do
      local m = take()
      if m[1] == kind and m[2] == i then return end
    end
  end

  -- Rounds of pings until one shows nothing new.
  local function settle()
    while true do
      local before = 0
      for i = 1, #pids do before = before + #obs[i] + (alive[i] and 0 or 1) end
      for i = 1, #pids do
        if alive[i] then
          send(cmds[i], { "ping" })
          await(i, "pong")
        end
      end
      local after = 0
      for i = 1, #pids do after = after + #obs[i] + (alive[i] and 0 or 1) end
      if after == before then return end
    end
  end

  local function state()
    local parts = {}
    for i = 1, #pids do
      table.sort(obs[i])
      parts[i] = string.format("p%d=%s{%s}", i,
                               alive[i] and "up" or "dead:" .. dead[i],
                               table.concat(obs[i], ";"))
      obs[i] = {}
    end
    return table.concat(parts, " ")
  end

  settle()
  emit(string.format("%d.0 start %s", sc.id, state()))
  for k, step in ipairs(sc.steps) do
    local op, a = step[1], step[2]
    local result = "skip"
    if alive[a] then
      result = op
      if op == "link" or op == "unlink" or op == "monitor" then
        send(cmds[a], { op, pids[step[3]] })
      elseif op == "signal" then
        send(cmds[a], { op, pids[step[3]], step[4] })
      else
        send(cmds[a], { op, step[3] })
      end
      await(a, "ack")
      settle()
    end
    emit(string.format("%d.%d %s %s", sc.id, k, result, state()))
  end
  for i = 1, #pids do
    if alive[i] then process.kill(pids[i]) end
    await(i, "never")
  end
end

-- }======

for _, sc in ipairs(scenarios) do
  if sc.kind == "sup" then run_sup(sc) else run_procs(sc) end
  if core.process_count() ~= 1 then
    emit(string.format("%d leftover processes: %d", sc.id,
                       core.process_count() - 1))
  end
end
io.write(table.concat(out, "\n"), "\n")
