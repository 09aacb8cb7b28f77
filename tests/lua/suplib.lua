--[[
suplib: helpers shared by the supervisor tests (test_supervisor_*.lua).

suplib.worker(ev, name [, opts]) is a start function whose process reports
what happens to it as events on the subject ev; next_event, take and
no_events read those events; crash ends a child, column and ids list a
tree's children; tree(specs [, opts]) starts a tree of the given child
specs (opts.strategy, opts.max_frequency; 10 s period).
]]
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"

local send, receive, self = process.send, process.receive, process.self

local M = {}

-- tree(specs [, opts]) -> subject | nil, err: a supervisor of the child
-- specs in order, one_for_one unless opts.strategy, intensity
-- opts.max_frequency (10) per 10 s.
function M.tree(children, opts)
  opts = opts or {}
  return supervisor.start_spec {
    strategy = opts.strategy or "one_for_one",
    max_frequency = opts.max_frequency or 10, frequency_period = 10,
    init = function(c)
      for _, s in ipairs(children) do c = c:add(s) end
      return c
    end }
end

-- worker(ev, name [, opts]) is a start function: it spawn_links a process
-- that traps exits and reports {"start", name, pid, arg, subject} to ev.
-- On an exit signal it reports {"stop", name, reason} and ends with that
-- reason; with opts.stubborn it reports {"ignore", name, reason} instead
-- and goes on; with opts.linger it reports {"linger", name, reason} and
-- ends only when told {"go"}.  Commands on its subject: {"exit", reason}
-- ends it with reason, {"raise", value} raises value, {"unlink", pid}
-- unlinks pid (reports {"unlinked", name}).
function M.worker(ev, name, opts)
  opts = opts or {}
  return function(arg)
    local hand = process.new_subject()
    process.spawn_link(function()
      process.trap_exits(true)
      local own = process.new_subject()
      send(hand, own)
      send(ev, { "start", name, self(), arg, own })
      local sel = process.new_selector():selecting(own)
        :selecting_trapped_exits(function(e) return { "EXIT", e.reason } end)
      local pending
      while true do
        local m = process.select(sel)
        if m[1] == "EXIT" then
          if opts.stubborn then
            send(ev, { "ignore", name, m[2] })
          elseif opts.linger then
            pending = m[2]
            send(ev, { "linger", name, m[2] })
          else
            send(ev, { "stop", name, m[2] })
            core.exit_self(m[2])
          end
        elseif m[1] == "go" then
          core.exit_self(pending or "normal")
        elseif m[1] == "exit" then
          core.exit_self(m[2])
        elseif m[1] == "raise" then
          error(m[2], 0)
        elseif m[1] == "unlink" then
          process.unlink(m[2])
          send(ev, { "unlinked", name })
        end
      end
    end)
    return receive(hand, 1000)
  end
end

function M.next_event(ev)
  local e = receive(ev, 2000)
  if e == nil then error("expected an event, none arrived", 2) end
  return e
end

-- Takes n events as "kind name" strings; start events update st[name].
function M.take(ev, n, st)
  local out = {}
  for i = 1, n do
    local e = M.next_event(ev)
    out[i] = e[1] .. " " .. tostring(e[2])
    if e[1] == "start" and st then
      st[e[2]] = { pid = e[3], arg = e[4], subject = e[5] }
    end
  end
  return out
end

function M.no_events(ev, what)
  lib.no_message(ev, what or "no more events")
end

-- Ends a child (an entry of take's st): {"exit", reason} or {how, reason}
-- command, or process.kill for "killed"; waits for its DOWN and returns
-- the reason.
function M.crash(child, reason, how)
  local m = process.monitor(child.pid)
  if reason == "killed" then
    process.kill(child.pid)
  else
    send(child.subject, { how or "exit", reason })
  end
  local d = process.select(process.new_selector():selecting_process_down(m),
                           2000)
  lib.ok(d ~= nil, "the child ended")
  return d.reason
end

-- One field of each of sup's children, in order.
function M.column(sup, field)
  local out = {}
  for i, c in ipairs(supervisor.which_children(sup)) do out[i] = c[field] end
  return out
end

function M.ids(sup)
  return M.column(sup, "id")
end

return M
