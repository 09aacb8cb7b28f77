--[[
supervisor: supervision trees declared in Lua, with gleam_otp's old API
(start_spec, argument, init, add, worker, supervisor, returning) and
Erlang/OTP's semantics (strategies, restart types, intensity, ordered
start and shutdown).

Who decides and who acts.  The restart engine (host/core/sup.c, reached
through arbor.core.sup) decides: given an event it makes a plan of
shutdown/start/drop steps.  The supervisor process below acts: it runs
the Lua start functions, threads `returning` values from child to child,
shuts children down (exit "shutdown", wait up to the child's shutdown
time, then kill), and reports each step back.  Nothing here chooses what
to restart.

The restart path is kept lean, since a restart cycle is a benchmark row
against OTP: the plan is walked in place inside the engine (each report
answers with the next step; no table per plan or step), the start
handshake's checks are one C call (engine.adopt), a child keeps one
crash-report label pair for all its runs, and a quiet restart makes no
report values at all.

A supervisor is a process that traps exits; its handle is a subject it
owns, so supervisor.supervisor(function(arg) return supervisor.start_spec
{...} end) nests trees, and management calls (which_children, ...) are
requests sent to that subject.  Spec values and their validation are in
lua/arbor/spec.lua; this module re-exports them.
]]
local process = require "process"
local core = require "arbor.core"
local engine = require "arbor.core.sup"
local spec = require "arbor.spec"

local M = {}

local send, select, self = process.send, process.select, process.self
local now, report = core.now, core.report
local adopt = engine.adopt
local logger_level = require("logger").level
-- Reasons and errors are user values: their text must never raise or hang.
local describe = core.describe

local TreeSpec, Children = spec.TreeSpec, spec.Children
local make_tree_spec, with_argument = spec.make_tree_spec, spec.with_argument
local new_child_spec, new_children = spec.new_child_spec, spec.new_children
local show = spec.show
local backoff_args = spec.backoff_args

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local new_error = core.error -- the host's one error type (arbor.Error)

M.worker, M.returning, M.spec, M.add = spec.worker, spec.returning,
  spec.spec, spec.add
M.is_spec, M.resolve = spec.is_spec, spec.resolve
M.command = require("arbor.command").command -- OS processes (command.lua)

-- {=====================================================================
-- The supervisor process
-- ======================================================================

-- EXIT names the trapped-exit source of the supervisor's selector.  A
-- retry is the private function RETRY sent to the supervisor's own inbox
-- (a function travels as the same object, so no request can be mistaken
-- for it), the child's key queued in self.retry_keys: one selector source
-- fewer to look at per event.
local EXIT = {}
local function RETRY() end

-- "normal", "shutdown" ({shutdown = true} too) or "abnormal": the host's
-- one reading of exit reasons, the same the core acts on.
local classify = core.classify

-- A child's id as text, made once (ids never change; every restart's
-- bookkeeping and report names the child).
local function child_label(child)
  local label = child.label
  if label == nil then
    label = tostring(child.id)
    child.label = label
  end
  return label
end

-- Periods are few (one per tree's flags): their text is made once.
local period_texts = {}
local function format_period(ms)
  local text = period_texts[ms]
  if text == nil then
    text = string.format("%g s", ms / 1000)
    period_texts[ms] = text
  end
  return text
end

local Sup = {}
Sup.__index = Sup

-- A report is a logger event: the text block, and as fields the
-- supervisor's name and, for a child's exit, the child's id, pid, reason
-- and the restart count (self.event, set by on_exit).
function Sup:report(lines)
  local ev = self.event or {}
  report(string.format("=SUPERVISOR REPORT==== %s %s\n  %s\n", self.name,
                       self:pid_text(), table.concat(lines, "\n  ")),
         { kind = "supervisor", supervisor = self.name, child = ev.child,
           child_pid = ev.child_pid, reason = ev.reason,
           restarts = ev.restarts })
end

-- The supervisor's own pid as text, made once.
function Sup:pid_text()
  local text = self.pid_string
  if text == nil then
    text = tostring(self.pid)
    self.pid_string = text
  end
  return text
end

-- A progress report (OTP's "child started"): a debug event, so hidden
-- at the default level as OTP hides progress reports at its default
-- (run_plan checks the level before calling).
function Sup:progress(child)
  if core.quiet() then return end
  report(string.format("=PROGRESS REPORT==== %s %s\n  child %s started: %s\n",
                       self.name, tostring(self.pid), child_label(child),
                       tostring(child.pid or self.pid)),
         { level = "debug", kind = "progress", supervisor = self.name,
           child = child_label(child),
           child_pid = tostring(child.pid or self.pid) })
end

function Sup:reindex()
  for i, child in ipairs(self.children) do child.index = i end
end

-- Runs the child's start function; on success records its process.
-- Returns true, or false and the reason.
function Sup:start_child(child)
  -- The argument: what the child before it returned, or the tree's
  -- argument for the first.
  local prev, arg = self.children[child.index - 1], self.argument
  if prev then arg = prev.out end
  local ok, subject, err = pcall(child.spec.start, arg)
  if not ok then return false, subject end
  if subject == nil then
    return false, err == nil and "start function returned nil" or err
  end
  -- A subject; its owner linked to us and returned, or false if we own
  -- it (no process of its own), or nil and why not (engine.adopt).
  local pid, why = adopt(subject)
  if pid then
    self.by_pid[pid] = child
    -- For crash reports: the child's one {supervisor, child} pair.
    local pair = child.log_pair
    if pair == nil then
      pair = { self.name, child_label(child) }
      child.log_pair = pair
    end
    core.log_label(pid, pair)
  elseif pid == false then
    pid = self.pid
  else
    return false, why
  end
  child.pid, child.subject, child.started_at = pid, subject, now()
  if child.spec.updater then
    local ok2, out = pcall(child.spec.updater, arg, subject)
    if not ok2 then
      self:shutdown_child(child)
      return false, out
    end
    child.out = out
  else
    child.out = arg
  end
  return true
end

-- Stops the child's process: exit "shutdown", wait up to its shutdown
-- time, then kill ("brutal_kill": kill at once).  A child whose subject
-- the supervisor owns has no process of its own and is never signalled.
function Sup:shutdown_child(child)
  local pid = child.pid
  child.pid = nil
  if pid == nil or pid == self.pid then return end
  self.by_pid[pid] = nil
  local mon = process.monitor(pid)
  local down = process.new_selector():selecting_process_down(mon)
  -- A child already dead here has queued its exit signal, which unlink
  -- cannot take back (OTP flushes it): remember to ignore it.
  if not process.is_alive(pid) then self.stale[pid] = true end
  process.unlink(pid)
  local how = child.spec.shutdown_spec
  if how == "brutal_kill" then
    process.kill(pid)
    how = "infinity"
  else
    process.exit(pid, "shutdown")
  end
  local d = select(down, how ~= "infinity" and how or nil)
  if d == nil then
    process.kill(pid)
    d = select(down)
  end
  child.last_reason = d.reason
end

function Sup:drop_child(child)
  self.by_key[child.key] = nil
  if self.dropped then
    -- A batch (a reload's removals): the list is compacted once after it.
    self.dropped[child] = true
    return
  end
  table.remove(self.children, child.index)
  self:reindex()
end

-- Carries out the engine's current plan, walking it in place (no table
-- per plan or step) and reporting every step back; a failed start puts
-- the engine's answer in its place, which is walked on.  Returns the
-- outcome and key of the plan that finished.
function Sup:run_plan()
  local eng, by_key, start_child = self.engine, self.by_key, Sup.start_child
  -- Each report answers with the next step, or nil, outcome, key.
  local op, key, plan_key = eng:step()
  while op do
    local child = by_key[key]
    if op == "start" then
      local ok, reason = start_child(self, child)
      if ok then
        child.start_failure = nil
        if logger_level() == "debug" then self:progress(child) end
        -- (The time a run began: a backoff's reset_after counts from it.)
        op, key, plan_key = eng:step_done(key, child.started_at)
      else
        self.start_error = { child = child, reason = reason }
        child.start_failure = reason -- shown by status until it runs
        op, key, plan_key = eng:start_failed(key, now())
      end
    elseif op == "shutdown" then
      self:shutdown_child(child)
      op, key, plan_key = eng:step_done(key)
    else
      self:drop_child(child)
      op, key, plan_key = eng:step_done(key)
    end
  end
  return key, plan_key
end

-- The labels of the children a plan that ended in "restart" started: its
-- START steps, every one of which succeeded (a failed one would have
-- ended it in retry or wait).
local function started_labels(self, plan)
  local names = {}
  for _, step in ipairs(plan) do
    local child = self.by_key[step.key]
    if step.op == "start" and child then
      names[#names + 1] = child_label(child)
    end
  end
  return table.concat(names, ", ")
end

-- A retry of child key comes back through the inbox, in order with the
-- requests (see RETRY).
function Sup:send_retry(key)
  local keys = self.retry_keys
  keys[#keys + 1] = key
  send(self.inbox, RETRY)
end

-- What a plan's outcome asks for once its steps are done.  Reports are
-- formatted only when someone will read them (not in quiet mode), and
-- only then is the plan read out of the engine.  why(self) makes the
-- report's first line.
function Sup:finish_plan(outcome, key, why)
  if core.quiet() then
    if outcome == "retry" then
      self:send_retry(key)
    elseif outcome == "give_up" then
      core.exit_self("shutdown")
    end
    return
  end
  local plan = self.engine:plan()
  if self.event then self.event.restarts = plan.restarts end
  if outcome == "retry" then
    local e = self.start_error
    self:report { why(self), string.format(
      "child %s failed to start: %s; will retry", child_label(e.child),
      describe(e.reason)) }
    self:send_retry(key)
  elseif outcome == "wait" then
    local e = self.start_error
    local what = e and string.format("child %s failed to start: %s",
                                     child_label(e.child),
                                     describe(e.reason))
    local lines = { why(self) }
    if e and key == e.child.key then lines[#lines + 1] = what end
    lines[#lines + 1] = string.format("restarting %s in %d ms (backoff)",
                                      child_label(self.by_key[key]),
                                      plan.delay_ms)
    self:report(lines)
  elseif outcome == "give_up" then
    self:report { why(self), string.format(
      "giving up: more than %d restart(s) in %s; shut down all children",
      plan.max, format_period(plan.period_ms)) }
    core.exit_self("shutdown")
  elseif outcome == "restart" then
    local lines = { why(self) }
    if plan.restarts > 0 then
      lines[#lines + 1] = string.format(
        "restarted %s (%s), restart %d of %d in %s",
        started_labels(self, plan), plan.strategy, plan.restarts, plan.max,
        format_period(plan.period_ms))
    else
      lines[#lines + 1] = string.format("restarted %s (%s)",
                                        started_labels(self, plan),
                                        plan.strategy)
    end
    self:report(lines)
  elseif outcome == "none" and self.report_none then
    self:report { why(self) }
  end
end

-- The first line of a child exit's report.
local function exit_line(self)
  local ev = self.event
  return string.format("child %s (%s) exited: %s", ev.child, ev.child_pid,
                       describe(ev.reason))
end

function Sup:on_exit(e)
  local pid, reason, by_pid = e.pid, e.reason, self.by_pid
  local child = by_pid[pid]
  if child == nil then
    if self.stale[pid] then
      self.stale[pid] = nil
      return
    end
    -- OTP: a supervisor whose parent ends stops its tree and follows.
    -- Beyond OTP, a "shutdown" signal from anyone but a child is an
    -- orderly stop too (the host's own shutdown is not the parent).
    -- Other exits from non-children are stale: children already shut down.
    if pid == self.parent or classify(reason) == "shutdown" then
      self.engine:stop()
      self:run_plan()
      core.exit_self(reason)
    end
    return
  end
  by_pid[pid] = nil
  child.pid, child.last_reason = nil, reason
  local _, _, cls = self.engine:exit(child.key, reason, now())
  self.report_none = cls == "abnormal"
  self.start_error = nil
  local outcome, key = Sup.run_plan(self)
  -- Quiet, a restart asks for nothing more (the common case, kept short).
  if outcome == "restart" and core.quiet() then return end
  -- (The event's fields are for reports: not made when none is written.)
  if not core.quiet() then
    self.event = { child = child_label(child), child_pid = tostring(pid),
                   reason = reason }
  end
  self:finish_plan(outcome, key, exit_line)
  self.event = nil
end

-- A backoff wait is over (the loop's select timed out at the engine's
-- next due time): the engine restarts whatever is due now.
function Sup:on_due()
  local outcome, key = self.engine:due(now())
  if outcome == "none" then return end
  local child = self.by_key[key]
  self.start_error = nil
  outcome, key = self:run_plan()
  self:finish_plan(outcome, key, function()
    return string.format("child %s: backoff wait over", child_label(child))
  end)
end

local function retry_line() return "retrying a failed start" end

function Sup:on_retry(key)
  self.engine:retry(key, now())
  local outcome, plan_key = self:run_plan()
  self:finish_plan(outcome, plan_key, retry_line)
end

function Sup:find(id)
  for _, child in ipairs(self.children) do
    if child.id == id then return child end
  end
end

function Sup:which_children()
  local status = {}
  for _, info in ipairs(self.engine:children()) do status[info.key] = info end
  local list, t = {}, now()
  for i, child in ipairs(self.children) do
    local info = status[child.key]
    list[i] = { id = child.id, pid = child.pid, kind = child.spec.kind,
                status = info.status, restarts = info.restarts,
                last_reason = child.last_reason,
                start_failure = child.start_failure,
                started_at = child.started_at, subject = child.subject,
                backoff = info.backoff_ms,
                restart_in = info.due_ms and math.max(0, info.due_ms - t) }
  end
  return list
end

local function not_found(id)
  return new_error { kind = "not_found",
                     message = "no child with id " .. show(id) }
end

function Sup:management(op, id)
  local child = self:find(id)
  if child == nil then return nil, not_found(id) end
  local outcome, err = self.engine[op](self.engine, child.key)
  if outcome == nil then -- the engine's error (kind "running", "restarting")
    err.id = id
    err.message = string.format("%s %s: %s", op, show(id), err.message)
    return nil, err
  end
  self.start_error = nil
  if self:run_plan() == "fail" then
    return nil, new_error {
      kind = "start_failed", id = id, reason = self.start_error.reason,
      message = string.format("child %s failed to start: %s", show(id),
                              describe(self.start_error.reason)) }
  end
  if op == "restart_child" then return child.subject end
  return true
end

-- Puts a reload's added children in their places, stopped, in one pass
-- over the new order (edit.ids): each goes right after the nearest earlier
-- child this supervisor has (the new list's positions count children it
-- no longer has, such as temporary ones that ended).  Returns the added
-- children in start order, to be started in that order: each one's
-- argument comes from the child before it.
function Sup:place_added(edit)
  if #edit.added == 0 then return {} end
  local have, added = {}, {}
  for _, child in ipairs(self.children) do have[child.id] = child end
  for _, a in ipairs(edit.added) do added[a.id] = a end
  local order, placed, fresh = {}, {}, {}
  local old, next_old = self.children, 1
  for _, id in ipairs(edit.ids) do
    local child = have[id]
    if child and not placed[child] then
      -- Old children keep their relative order; any the new list does
      -- not name come along in their places.
      repeat
        local c = old[next_old]
        next_old = next_old + 1
        if not placed[c] then
          order[#order + 1] = c
          placed[c] = true
        end
      until c == child
    elseif child == nil and added[id] then
      local a = added[id]
      local new = { spec = a.spec, id = a.id }
      order[#order + 1] = new
      fresh[#fresh + 1] = new
      -- Inserted at its final position: everything before it in the new
      -- order is already in the engine.
      new.key = self.engine:insert(#order, a.spec.restart_type, a.spec.kind,
                                   backoff_args(a.spec))
      self.by_key[new.key] = new
    end
  end
  for i = next_old, #old do
    if not placed[old[i]] then order[#order + 1] = old[i] end
  end
  self.children = order
  self:reindex()
  return fresh
end

-- Applies a reload's edit (arbor.diff) to this supervisor, by the rules
-- arbor.diff.predict states (a dry run's plan is that prediction), in an
-- order that keeps "never an old child beside its replacement": flags;
-- removals, newest first; every kept child takes its new spec (so any
-- later start, a nested tree's included, runs the file now in force);
-- restarts of changed children as the strategy says (a child an earlier
-- restart of this reload already started or dropped is not touched
-- again); additions in their new positions; then edits of nested trees
-- that this reload did not restart, forwarded to those supervisors.
-- Returns { restarted = paths, removed = paths of temporary children a
-- restart dropped, failed = {{path =, reason = text}, ...}: children that
-- did not start }, nested trees included.
function Sup:apply(edit, path)
  local out = { restarted = {}, removed = {}, failed = {} }
  local function label(id)
    return path == "" and tostring(id) or path .. "/" .. tostring(id)
  end
  self:apply_flags(edit)
  if edit.argument_changed then self.argument = edit.argument end
  self:apply_removals(edit)
  self:apply_specs(edit)
  local handled = self:apply_restarts(edit, out, label)
  self:apply_additions(edit, out, label)
  self:apply_nested(edit, out, label, handled)
  return out
end

-- A reload's steps, in the order Sup:apply runs them.

-- The new flags.  Validated specs always fit the engine; should one not,
-- the tree keeps its old flags rather than going down.
function Sup:apply_flags(edit)
  local f = edit.flags
  if not f then return end
  local ok, err = self.engine:set_flags(f.strategy, f.max_frequency,
                                        spec.period_ms(f.frequency_period)
                                        or -1)
  if ok then
    self.strategy = f.strategy
  else
    self:report { "reload: flags not changed: " .. tostring(err) }
  end
end

-- Removed children stop, newest first; the list is compacted once, not
-- once per child (a reload that removes half of 20,000 children stays
-- linear).
function Sup:apply_removals(edit)
  if next(edit.removed) == nil then return end
  self.dropped = {}
  for i = #self.children, 1, -1 do
    local child = self.children[i]
    if edit.removed[child.id] then
      self.engine:remove(child.key)
      self:run_plan()
    end
  end
  local kept = {}
  for _, child in ipairs(self.children) do
    if not self.dropped[child] then kept[#kept + 1] = child end
  end
  self.dropped = nil
  self.children = kept
  self:reindex()
end

-- Every kept child takes its new spec (so any later start, a nested
-- tree's included, runs the file now in force).
function Sup:apply_specs(edit)
  local spec_of = {}
  for i, id in ipairs(edit.ids) do spec_of[id] = edit.specs[i] end
  for _, child in ipairs(self.children) do
    local new = spec_of[child.id]
    if new then
      if edit.changed[child.id] ~= nil then
        self.engine:update(child.key, new.restart_type, new.kind,
                           backoff_args(new))
      end
      child.spec = new
    end
  end
end

-- Adds the child whose start just failed (self.start_error) to
-- out.failed.
function Sup:record_failure(out, label)
  local e = self.start_error
  if e then
    out.failed[#out.failed + 1] = { path = label(e.child.id),
                                    reason = describe(e.reason) }
  end
end

-- Changed children restart as the strategy says; a child an earlier
-- restart of this reload already started or dropped is not touched again.
-- Returns what was done to each child: "restarted" or "dropped".
function Sup:apply_restarts(edit, out, label)
  local handled = {}
  -- (A copy: a restart may drop temporary children from the list.)
  local before = table.move(self.children, 1, #self.children, 1, {})
  for _, child in ipairs(before) do
    if edit.changed[child.id] ~= nil and handled[child] == nil
       and self.by_key[child.key] == child then
      self.start_error = nil
      self.engine:changed(child.key)
      -- The plan's steps say which children it starts and drops (read
      -- before it runs: a failed start replaces it).
      for _, step in ipairs(self.engine:plan()) do
        local c = self.by_key[step.key]
        if c and step.op == "drop" then handled[c] = "dropped"
        elseif c and step.op == "start" then handled[c] = "restarted" end
      end
      local outcome, key = self:run_plan()
      self:record_failure(out, label)
      -- A child that fails to start is handled like any failed restart.
      self:finish_plan(outcome, key, function()
        return "reload: child " .. child_label(child) .. " changed"
      end)
    end
  end
  for _, child in ipairs(before) do
    if handled[child] == "restarted" then
      out.restarted[#out.restarted + 1] = label(child.id)
    elseif handled[child] == "dropped" then
      out.removed[#out.removed + 1] = label(child.id)
    end
  end
  return handled
end

-- Added children start in their new positions.
function Sup:apply_additions(edit, out, label)
  for _, child in ipairs(self:place_added(edit)) do
    self.start_error = nil
    self.engine:restart_child(child.key)
    if self:run_plan() == "fail" then
      self:record_failure(out, label)
      self:report { string.format("reload: added child %s failed to start: %s",
                                  child_label(child),
                                  describe(self.start_error.reason)) }
    end
  end
end

-- Edits of nested trees this reload did not restart go to those
-- supervisors.  A nested tree this reload restarted already runs its new
-- spec; one that is not running starts from it when it starts.
function Sup:apply_nested(edit, out, label, handled)
  for _, child in ipairs(self.children) do
    local sub = edit.nested[child.id]
    if sub and handled[child] == nil and child.subject and child.pid then
      local ok, more = pcall(M.apply, child.subject, sub, label(child.id))
      if ok then
        for _, k in ipairs { "restarted", "removed", "failed" } do
          table.move(more[k], 1, #more[k], #out[k] + 1, out[k])
        end
      end
    end
  end
end

function Sup:on_request(msg)
  local op, reply = msg.op, msg.reply
  if op == "apply" then
    -- An edit that cannot be applied is the reload's failure, never the
    -- tree's: the supervisor answers with the error and goes on.
    local ok, outcome = pcall(self.apply, self, msg.edit, msg.path or "")
    send(reply, ok and { outcome = outcome } or { err = outcome })
  elseif op == "which_children" then
    send(reply, self:which_children())
  elseif op == "count_children" then
    send(reply, self.engine:counts())
  elseif op == "terminate_child" or op == "restart_child" then
    local value, err = self:management(op, msg.id)
    send(reply, { value = value, err = err })
  elseif op == "stop" then
    self.engine:stop()
    self:run_plan()
    process.unlink(self.parent)
    core.exit_self("normal")
  end
  -- Anything else sent to a supervisor's subject is not for it: dropped.
end

-- Builds the children from init and starts them in order.  Returns the
-- supervisor's subject, or nil and an error naming the failed child.
function Sup:init(tree)
  local ok, children = pcall(tree.init, new_children(tree))
  if not ok then
    return nil, new_error { kind = "init_failed", reason = children,
                            message = "init raised: " .. describe(children) }
  end
  if getmetatable(children) ~= Children then
    return nil, new_error {
      kind = "init_failed",
      message = "init must return the children list, got a "
                .. type(children) }
  end
  for i, spec in ipairs(children.specs) do
    local key = self.engine:add(spec.restart_type, spec.kind,
                                backoff_args(spec))
    local child = { spec = spec, key = key, id = spec.child_id or i,
                    index = i }
    self.children[i] = child
    self.by_key[key] = child
  end
  self.engine:start()
  if self:run_plan() == "fail" then
    local e = self.start_error
    return nil, new_error {
      kind = "init_failed", position = e.child.index, id = e.child.id,
      reason = e.reason,
      message = string.format("child %d (id %s) failed to start: %s",
                              e.child.index, show(e.child.id),
                              describe(e.reason)) }
  end
  return self.inbox
end

function Sup:loop()
  -- Where the message select returned came from: the exit source's
  -- mapping function says so (the inbox has none), so nothing is wrapped
  -- per event.
  local source
  local sel = process.new_selector()
    :selecting(self.inbox)
    :selecting_trapped_exits(function(e)
      source = EXIT
      return e
    end)
  local engine_of, on_exit = self.engine, Sup.on_exit
  while true do
    -- A backoff wait ends when the engine's next due time comes: select
    -- waits for a message until then (management requests are served
    -- meanwhile).
    local due, msg = engine_of:next_due()
    source = nil
    if due then
      msg = select(sel, math.max(0, due - now()))
      if msg == nil and source == nil then self:on_due() end
    else
      msg = select(sel)
    end
    if source == EXIT then
      on_exit(self, msg)
    elseif msg == RETRY then
      self:on_retry(table.remove(self.retry_keys, 1))
    elseif type(msg) == "table" and type(msg.op) == "string" then
      self:on_request(msg)
    end
  end
end

local function run(tree, parent, reply_to)
  core.set_kind("supervisor")
  process.trap_exits(true)
  local pid = self()
  local eng, eng_err = engine.new(tree.strategy, tree.max_frequency,
                                  spec.period_ms(tree.frequency_period) or -1)
  local sup = setmetatable({
    pid = pid, parent = parent, argument = tree.argument,
    name = tree.name or tostring(pid),
    inbox = process.new_subject(), retry_keys = {},
    engine = eng,
    children = {}, by_key = {}, by_pid = {}, stale = {},
  }, Sup)
  local handle, err
  if eng == nil then
    err = new_error { kind = "init_failed", reason = eng_err,
                      message = tostring(eng_err) }
  else
    handle, err = sup:init(tree)
  end
  if handle == nil then
    send(reply_to, { err = err })
    -- The caller gets nil, err and must not be taken down with us; a
    -- process the failed start function linked to us must be (so not
    -- "normal", which it would ignore).
    process.unlink(parent)
    core.exit_self("shutdown")
  end
  send(reply_to, { handle = handle })
  sup:loop()
end

-- }=====================================================================

-- {=====================================================================
-- Public functions
-- ======================================================================

local function start_tree(tree)
  local reply = process.new_subject()
  local pid = process.spawn_link(run, tree, self(), reply)
  local mon = process.monitor(pid)
  local answer = select(process.new_selector()
                          :selecting(reply)
                          :selecting_process_down(mon, function(d)
                            return { down = d.reason }
                          end))
  process.demonitor(mon)
  if answer.handle then return answer.handle end
  if answer.err then return nil, answer.err end
  return nil, new_error { kind = "init_failed", reason = answer.down,
                          message = "supervisor exited during start: "
                                    .. describe(answer.down) }
end

function M.start_spec(t)
  return start_tree(make_tree_spec(t, "start_spec", 2))
end

function M.start(init)
  return start_tree(make_tree_spec({ init = init, max_frequency = 1,
                                     frequency_period = 5 }, "start", 2))
end

-- supervisor.supervisor(start) or supervisor.supervisor(tree_spec)
function M.supervisor(x)
  if getmetatable(x) == TreeSpec then
    local tree = x
    return new_child_spec(function(arg)
      if tree.argument ~= nil then return start_tree(tree) end
      return start_tree(with_argument(tree, arg))
    end, "supervisor", tree)
  end
  if type(x) ~= "function" then
    fail(2, "bad argument #1 to 'supervisor' (start function or "
         .. "supervisor.spec value expected, got %s)", type(x))
  end
  return new_child_spec(x, "supervisor")
end

local function sup_call(sup, request)
  if not core.is_subject(sup) then
    fail(3, "bad argument #1 (supervisor expected, got %s)", type(sup))
  end
  return process.call(sup, function(reply)
    request.reply = reply
    return request
  end)
end

function M.which_children(sup)
  return sup_call(sup, { op = "which_children" })
end

function M.count_children(sup)
  return sup_call(sup, { op = "count_children" })
end

function M.terminate_child(sup, id)
  local r = sup_call(sup, { op = "terminate_child", id = id })
  if r.err then return nil, r.err end
  return r.value
end

function M.restart_child(sup, id)
  local r = sup_call(sup, { op = "restart_child", id = id })
  if r.err then return nil, r.err end
  return r.value
end

-- Applies a reload's edit to a running supervisor; returns what it did
-- (Sup:apply): { restarted = paths, removed = paths, failed = list }.
function M.apply(sup, edit, path)
  local r = sup_call(sup, { op = "apply", edit = edit, path = path })
  if r.err ~= nil then error(r.err, 0) end
  return r.outcome
end

function M.stop(sup)
  if not core.is_subject(sup) then
    fail(2, "bad argument #1 to 'stop' (supervisor expected, got %s)",
         type(sup))
  end
  local pid = process.subject_owner(sup)
  local mon = process.monitor(pid)
  send(sup, { op = "stop" })
  select(process.new_selector():selecting_process_down(mon))
end

-- }=====================================================================

return M
