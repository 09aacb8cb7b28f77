--[[
arbor.eval: `arbor eval CODE`, Erlang's remsh for one chunk.  The main
process hands each eval request here and goes on serving; nothing here
runs in main.

start(request, root) spawns a guard process, which spawns the worker
that runs the chunk, and answers the control connection itself:

- The worker loads CODE as a text chunk named "eval" (so errors say
  eval:LINE:) in an environment of its own that reads globals from _G
  and has `root` (the root tree's subject); `print` there collects into
  the answer instead of the host's stdout; os.exit raises, also as
  _G.os.exit or require("os").exit (`arbor stop` ends the host; a module
  the chunk calls still has the real os.exit).  It runs under xpcall, so an
  error comes back as its message and a traceback of the chunk's
  frames.  What the chunk returns is described safely (logger.describe:
  tables with their contents, depth and size limited; strings quoted),
  one value per line; --json gives {"values": [...], "output": "..."}
  (arbor.json), and {"error", "traceback", "output"} on an error.
- The guard waits for the worker's answer, its DOWN, or the timeout
  (the request's timeout_ms, default DEFAULT_TIMEOUT_MS).  A chunk that
  loops is preempted like any process, so the guard always gets to run;
  at the timeout it kills the worker and answers so.  Either way the
  worker never outlives the guard's answer.

Answers are bounded (MAX_ANSWER bytes; the rest is cut with a note).
Depends on process, arbor.core, arbor.json, logger; arbor.annotate if
it is there (to name the processes in `status --processes`).
]]
local process = require "process"
local core = require "arbor.core"
local json = require "arbor.json"
local logger = require "logger"

local M = {}

local DEFAULT_TIMEOUT_MS = 5000
local MAX_ANSWER = 256 * 1024
local MAX_OUTPUT = 64 * 1024

local function cut(text, max)
  if #text <= max then return text end
  return text:sub(1, max) .. string.format("\n... (%d more bytes)",
                                           #text - max)
end

local function describe(v)
  if type(v) == "string" then return json.encode(v) end
  local ok, text = pcall(logger.describe, v)
  if ok and type(text) == "string" then return text end
  local ok2, text2 = pcall(core.describe, v)
  return ok2 and type(text2) == "string" and text2
         or "(a " .. type(v) .. " value)"
end

local function name(pid, text)
  local ok, annotate = pcall(require, "arbor.annotate")
  if ok and type(annotate) == "table" and annotate.set then
    pcall(annotate.set, pid, "name", text)
  end
end

-- The traceback's lines that belong to the chunk: up to the xpcall that
-- runs it (this file's frames and the C ones around them are dropped).
local function chunk_traceback(tb)
  local out = {}
  for line in tb:gmatch("[^\n]+") do
    if line:find("[C]: in function 'xpcall'", 1, true)
       or line:find("lua/arbor/eval.lua", 1, true) then
      break
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n")
end

local function on_error(e)
  return { err = e, traceback = debug.traceback("", 2) }
end

-- The worker: runs code and sends {code = 0|1, text = ...} to reply.
local function run(code, reply, as_json, root)
  name(process.self(), "eval")
  local output, size = {}, 0
  local env = setmetatable({}, { __index = _G })
  env.root = root
  env.print = function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do
      local v = select(i, ...)
      local ok, text = pcall(core.describe, v)
      parts[i] = type(v) == "string" and v
                 or ok and type(text) == "string" and text or type(v)
    end
    local line = table.concat(parts, "\t") .. "\n"
    if size < MAX_OUTPUT then output[#output + 1] = line end
    size = size + #line
  end
  env.os = setmetatable({
    exit = function()
      error("os.exit in eval would end the host; `arbor stop` stops it", 2)
    end,
  }, { __index = os })
  -- The ways a chunk names os itself lead to that table too: _G.os.exit
  -- and require("os").exit used to end the host at once, without a
  -- shutdown.  (A module the chunk calls still holds the real os.)
  env._G = env
  env.require = function(name, ...)
    if name == "os" then return env.os end
    return require(name, ...)
  end
  local function printed()
    return cut(table.concat(output), MAX_OUTPUT)
  end
  local chunk, err = load(code, "=eval", "t", env)
  if chunk == nil then
    if as_json then
      process.send(reply, { code = 1, text = json.encode {
        error = tostring(err), output = "" } })
    else
      process.send(reply, { code = 1, text = tostring(err) })
    end
    return
  end
  local results = table.pack(xpcall(chunk, on_error))
  if not results[1] then
    local e = results[2]
    local message = type(e.err) == "string" and e.err or describe(e.err)
    local tb = chunk_traceback(e.traceback)
    if as_json then
      process.send(reply, { code = 1, text = json.encode {
        error = message, traceback = tb, output = printed() } })
    else
      local text = printed() .. message
      if tb ~= "" then text = text .. "\n" .. tb end
      process.send(reply, { code = 1, text = text })
    end
    return
  end
  if as_json then
    local values = json.array {}
    for i = 2, results.n do
      local v = results[i]
      values[i - 1] = v == nil and json.null or v
    end
    process.send(reply, { code = 0, text = json.encode {
      values = values, output = printed() } })
    return
  end
  local lines = {}
  for i = 2, results.n do lines[#lines + 1] = describe(results[i]) end
  local text = printed()
  if #lines > 0 then
    text = text .. table.concat(lines, "\n")
  else
    text = text:gsub("\n$", "")
  end
  process.send(reply, { code = 0, text = text })
end

local function guard(request, root)
  name(process.self(), "eval guard")
  local timeout = request.timeout_ms or DEFAULT_TIMEOUT_MS
  local reply = process.new_subject()
  local pid = process.spawn(run, request.code, reply, request.json, root)
  local mon = process.monitor(pid)
  local got = process.select(process.new_selector()
    :selecting(reply)
    :selecting_process_down(mon, function(d) return { down = d.reason } end),
    timeout)
  local code, text
  if got == nil then
    process.kill(pid)
    code, text = 1, string.format("eval: no answer within %d ms; its "
                                  .. "process %s was killed", timeout,
                                  tostring(pid))
  elseif got.down ~= nil then
    code, text = 1, "eval: its process ended before it answered: "
                    .. describe(got.down)
  else
    process.demonitor(mon)
    code, text = got.code, got.text
  end
  if request.json then
    if got == nil or got.down ~= nil then
      text = json.encode { error = text, output = "" }
    elseif #text > MAX_ANSWER then -- cutting it would not be JSON
      code, text = 1, json.encode { error = string.format(
        "eval: the answer is too large (%d bytes, at most %d)", #text,
        MAX_ANSWER), output = "" }
    end
  else
    text = cut(text, MAX_ANSWER)
  end
  core.control_reply(request.conn, code, text)
end

function M.start(request, root)
  if not request.conn then return end
  process.spawn(guard, request, root)
end

return M
