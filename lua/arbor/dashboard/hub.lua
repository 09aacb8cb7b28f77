--[[
arbor.dashboard.hub: the dashboard's one view of the host, and the
process that pushes it to the event streams.

It owns the snapshots the API serves (as JSON text, made once and sent to
every client), the charts' history (per supervisor: restarts and crashes
over time), the tail of the log (read from the logger's ring,
logger.recent) and the list of event-stream subscribers.

Rhythm.  With no subscriber it wakes every idle_tick_ms to read the log
ring (so crash counts are not lost) and sample the history.  With
subscribers it wakes every tick_ms: new log events are pushed at once;
when any of them is a crash, a supervisor report or a reload, or
tree_every_ms has passed, it reads the tree again and pushes it only if
it changed.  So a change shows within a second, and nothing is sent
while nothing changes.  The busiest-processes table is pushed every
procs_every_ms, or every ten times what reading it last took if that is
longer (a host of very many processes).

Flow control.  A subscriber is a connection process that writes what it
gets to its socket (and may wait there on a slow client).  Before each
push the hub looks at how many messages wait for it: with 4 or more it
is marked behind and skipped; once its mailbox is empty it gets a fresh
"hello" (everything) instead of what it missed.  So a stalled browser
costs a few queued messages, never a growing mailbox.

Depends on arbor.introspect (the one source of the tree and the
processes, shared with `arbor status --json`), arbor.json and logger;
never changes the tree.
]]
local process = require "process"
local core = require "arbor.core"
local logger = require "logger"
local json = require "arbor.json"
local introspect = require "arbor.introspect"

local M = {}

local BEHIND = 4 -- queued messages at which a subscriber is skipped

local function wall_ms()
  -- os.time() has seconds; the log ring's events carry ms, and the
  -- charts need no finer time than the monotonic clock gives between.
  return os.time() * 1000
end

local Hub = {}
Hub.__index = Hub

-- {=====================================================================
-- Snapshots
-- ======================================================================

-- Walks a tree snapshot: fn(node, path) for the root and every nested
-- supervisor that answered.
local function each_supervisor(t, path, fn)
  fn(t, path)
  for _, c in ipairs(t.children or {}) do
    if c.children then each_supervisor(c, path .. "/" .. c.id, fn) end
  end
end

-- What of a tree snapshot is worth pushing, as one string: everything
-- but the uptimes (which the page advances itself), so an unchanged tree
-- is noticed without encoding it (encoding 1,000 children costs ~20 ms,
-- this ~1 ms).
local SIG_FIELDS = { "id", "kind", "pid", "status", "restarts", "last_exit",
                     "start_failure", "not_as_file", "os_pid", "status_text",
                     "error", "strategy", "name" }

local function signature(t, out)
  out = out or {}
  for _, k in ipairs(SIG_FIELDS) do
    local v = t[k]
    out[#out + 1] = v == nil and "" or tostring(v)
  end
  out[#out + 1] = "("
  for _, c in ipairs(t.children or {}) do signature(c, out) end
  out[#out + 1] = ")"
  return out
end

function Hub:read_tree()
  local ok, t = pcall(introspect.tree, self.root)
  if not ok then t = { name = "root", error = introspect.describe(t) } end
  t = t or { name = "root", children = {} }
  self.tree, self.tree_at = t, core.now()
  -- Who supervises which pid (crash events name the pid).
  local owner = {}
  each_supervisor(t, t.name or "root", function(node, path)
    local restarts = 0
    for _, c in ipairs(node.children or {}) do
      restarts = restarts + (c.restarts or 0)
      if c.pid then owner[c.pid] = path end
    end
    local h = self:series(path)
    h.restarts = restarts
    h.seen_at = self.tree_at
  end)
  self.owner_of = owner
  local sig = table.concat(signature(t), "\0")
  local changed = sig ~= self.tree_sig
  self.tree_sig = sig
  self.tree_json = nil -- encoded when someone needs it (tree_text)
  return changed
end

function Hub:tree_text()
  if self.tree_json == nil then
    self.tree_json = json.encode({ tree = self.tree, at = os.time() })
  end
  return self.tree_json
end

function Hub:series(path)
  local h = self.history[path]
  if h == nil then
    h = { path = path, restarts = 0, crashes = 0, points = {},
          made_at = core.now() }
    self.history[path] = h
    self.history_order[#self.history_order + 1] = path
  end
  return h
end

-- Samples every series, and drops those of supervisors not seen for the
-- chart's whole window (history_points samples): a host that starts and
-- stops supervisors under ever new paths would otherwise keep a series
-- for each path it ever had.
function Hub:sample_history()
  local now = wall_ms()
  local window = self.config.history_points * self.config.history_every_ms
  local t = core.now()
  local kept = {}
  for _, path in ipairs(self.history_order) do
    local h = self.history[path]
    if t - (h.seen_at or h.made_at) > window then
      self.history[path] = nil
    else
      kept[#kept + 1] = path
      local pts = h.points
      pts[#pts + 1] = { now, h.restarts, h.crashes }
      if #pts > self.config.history_points then table.remove(pts, 1) end
    end
  end
  self.history_order = kept
  self.history_at = t
end

function Hub:history_json()
  local list = {}
  for _, path in ipairs(self.history_order) do
    local h = self.history[path]
    -- Supervisors not seen in the last few tree reads are gone.
    if h.seen_at and core.now() - h.seen_at < 60000 then
      local pts = json.array({})
      for i, p in ipairs(h.points) do pts[i] = p end
      pts[#pts + 1] = { wall_ms(), h.restarts, h.crashes } -- now
      list[#list + 1] = { supervisor = path, restarts = h.restarts,
                          crashes = h.crashes, points = pts }
    end
  end
  return json.encode({ series = json.array(list) })
end

-- Reads the log ring; returns the new events (a list) and whether any
-- of them says the tree may have changed.
function Hub:read_log()
  local events, last = logger.recent(self.last_seq)
  self.last_seq = last
  local tree_news = false
  local tail = self.log_tail
  for _, e in ipairs(events) do
    local kind = e.kind
    if kind == "crash" then
      -- By the pid (a child seen in the last tree read), else by the
      -- supervisor's name, learnt from earlier crashes (a child that
      -- crashed again before the tree was read).
      local path = self.owner_of[e.pid]
      if path and e.supervisor then
        self.path_of_name[e.supervisor] = path
      elseif path == nil and e.supervisor then
        path = self.path_of_name[e.supervisor]
        if path == nil and self.tree and e.supervisor == self.tree.name then
          path = self.tree.name
        end
      end
      if path then
        local h = self:series(path)
        h.crashes = h.crashes + 1
      end
    end
    if kind == "crash" or kind == "supervisor" or kind == "reload"
       or kind == "report" then
      tree_news = true
    end
    tail[#tail + 1] = e
  end
  local n = #tail
  local extra = n - self.config.log_tail
  if extra > 0 then
    table.move(tail, extra + 1, n, 1)
    for i = n - extra + 1, n do tail[i] = nil end
  end
  return events, tree_news
end

-- Does a come before b: more of field, then the smaller pid text?
local function busier(a, b, field)
  local x, y = a[field] or 0, b[field] or 0
  if x ~= y then return x > y end
  return (a.pid or "") < (b.pid or "")
end

-- The n first of list by field, in one pass that keeps the best n in
-- order.  Not table.sort: its comparator is Lua called from C, which
-- cannot be preempted, and on a host of 100,000 processes sorting them
-- all ran past the runaway limit and ended the hub (and with it the
-- host).  This loop is plain Lua, preempted like any other.
local function top(list, field, n)
  local best = {}
  for _, p in ipairs(list) do
    local k = #best
    if k < n or busier(p, best[k], field) then
      if k == n then best[k] = nil; k = k - 1 end
      local i = k
      while i >= 1 and busier(p, best[i], field) do
        best[i + 1] = best[i]
        i = i - 1
      end
      best[i + 1] = p
    end
  end
  local out = json.array({})
  for i = 1, #best do
    local p = best[i]
    out[i] = { pid = p.pid, name = p.name, kind = p.kind, state = p.state,
               waiting = p.waiting, messages = p.messages,
               memory = p.memory, current = p.current }
  end
  return out
end

function Hub:read_procs()
  local started = core.now()
  local ok, procs = pcall(introspect.processes)
  if not ok then procs = {} end
  local ok2, host = pcall(introspect.host)
  if not ok2 then host = { error = introspect.describe(host) } end
  self.procs_json = json.encode({
    by_messages = top(procs, "messages", 10),
    by_memory = top(procs, "memory", 10),
    count = #procs,
    host = host,
  })
  self.procs_at = core.now()
  self.procs_cost = self.procs_at - started
end

function Hub:log_json(events)
  local list = json.array({})
  for i, e in ipairs(events) do list[i] = e end
  return json.encode({ events = list, last_seq = self.last_seq })
end

function Hub:hello_json()
  return string.format('{"tree":%s,"history":%s,"procs":%s,"log":%s}',
                       self:tree_text(), self:history_json(), self.procs_json,
                       self:log_json(self.log_tail))
end

-- }=====================================================================

-- {=====================================================================
-- Subscribers
-- ======================================================================

function Hub:push(event, data)
  for sub, s in pairs(self.subscribers) do
    if not process.is_alive(s.pid) then
      self.subscribers[sub] = nil
      self.nsubscribers = self.nsubscribers - 1
    else
      local info = core.proc_info(s.pid)
      local queued = info and info.messages or 0
      if s.behind then
        if queued == 0 then
          s.behind = false
          process.send(sub, { event = "hello", data = self:hello_json() })
        end
      elseif queued >= BEHIND then
        s.behind = true
      elseif data then
        process.send(sub, { event = event, data = data })
      end
    end
  end
end

function Hub:subscribe(msg)
  if self.subscribers[msg.subject] == nil then
    self.nsubscribers = self.nsubscribers + 1
  end
  self.subscribers[msg.subject] = { pid = msg.pid, behind = false }
  -- A fresh view for the newcomer.
  self:read_log()
  self:read_tree()
  if core.now() - (self.procs_at or -1e9) >= self.config.tick_ms then
    self:read_procs()
  end
  process.send(msg.subject, { event = "hello", data = self:hello_json() })
end

-- }=====================================================================

function Hub:tick()
  local now = core.now()
  local events, tree_news = self:read_log()
  if now - (self.history_at or 0) >= self.config.history_every_ms then
    if self.tree == nil or self.nsubscribers == 0 then self:read_tree() end
    self:sample_history()
  end
  if self.nsubscribers == 0 then return end
  if #events > 0 then self:push("log", self:log_json(events)) end
  local tree_changed = false
  if tree_news or now - self.tree_at >= self.config.tree_every_ms then
    tree_changed = self:read_tree()
  end
  if tree_changed then
    self:push("tree", self:tree_text())
    self:push("history", self:history_json())
  end
  -- A host of very many processes takes long to read: then the table
  -- is read less often, so the hub costs at most a tenth of a core.
  if now - (self.procs_at or 0) >= math.max(self.config.procs_every_ms,
                                            10 * (self.procs_cost or 0)) then
    self:read_procs()
    self:push("procs", self.procs_json)
  elseif not tree_changed and #events == 0 then
    self:push(nil, nil) -- only catches up subscribers that were behind
  end
end

function Hub:answer(msg)
  local what, text = msg.what, nil
  if what == "tree" or what == "state" then
    if core.now() - (self.tree_at or -1e9) >= self.config.tick_ms then
      self:read_log()
      self:read_tree()
    end
  end
  if (what == "processes" or what == "state") and
     core.now() - (self.procs_at or -1e9) >= self.config.tick_ms then
    self:read_procs()
  end
  if what == "tree" then
    text = self:tree_text()
  elseif what == "processes" then
    text = self.procs_json
  elseif what == "history" then
    text = self:history_json()
  elseif what == "log" then
    self:read_log()
    local after = math.tointeger(msg.after) or 0
    local list = {}
    for _, e in ipairs(self.log_tail) do
      if e.seq > after then list[#list + 1] = e end
    end
    text = self:log_json(list)
  elseif what == "state" then
    text = self:hello_json()
  end
  process.send(msg.reply, { json = text })
end

-- The hub process: run(reply, config, root, control) answers reply with
-- its subject, then serves.
function M.run(reply, config, root)
  local has_annotate, annotate = pcall(require, "arbor.annotate")
  if has_annotate then annotate.set(process.self(), "name", "dashboard/hub") end
  local inbox = process.new_subject()
  local self = setmetatable({
    config = config, root = root, inbox = inbox,
    subscribers = {}, nsubscribers = 0,
    history = {}, history_order = {}, owner_of = {}, path_of_name = {},
    log_tail = {}, last_seq = 0,
  }, Hub)
  -- Answer first: the first reads of a host of 100,000 processes take
  -- longer than the supervisor waits for a start.  Requests wait in the
  -- inbox until they are done.
  process.send(reply, { subject = inbox })
  self:read_log()
  self:read_tree()
  self:sample_history()
  self:read_procs()
  local timer = process.send_after(inbox, config.idle_tick_ms,
                                   { op = "tick" })
  while true do
    local msg = process.receive(inbox)
    local op = type(msg) == "table" and msg.op
    if op == "tick" then
      self:tick()
      timer = process.send_after(inbox, self.nsubscribers > 0
                                        and config.tick_ms
                                        or config.idle_tick_ms,
                                 { op = "tick" })
    elseif op == "subscribe" then
      local was = self.nsubscribers
      self:subscribe(msg)
      if was == 0 then
        -- From the idle rhythm to the quick one at once.
        process.cancel_timer(timer)
        timer = process.send_after(inbox, config.tick_ms, { op = "tick" })
      end
    elseif op == "get" then
      self:answer(msg)
    elseif op == "changed" then
      -- An action just changed the tree: read and push it now.
      self:read_log()
      if self:read_tree() then
        self:push("tree", self:tree_text())
        self:push("history", self:history_json())
      end
    end
  end
end

M.Hub = Hub -- for tests

return M
