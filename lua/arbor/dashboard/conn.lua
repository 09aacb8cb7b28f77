--[[
arbor.dashboard.conn: one dashboard connection, in a process of its own
(linked to the acceptor): reads requests (arbor.dashboard.http, which
bounds them), checks them, answers them, and for GET /api/events becomes
an event stream fed by the hub.

Checks, in this order, each a clear HTTP error that changes nothing:
- the Host field, when the dashboard listens on a loopback address: a
  loopback name with our port, or 403 (a page on another site that a
  rebinding DNS name points at 127.0.0.1 cannot read the API);
- the path (404) and the method (405, with Allow);
- the token, for every /api/ path: GETs may carry it in the
  X-Arbor-Token header or (for EventSource, which cannot set headers) as
  ?token=; POSTs only in the header, so a form or a cross-site request
  can never carry it (a header makes the browser ask first, and no
  cross-origin request is ever allowed).  Compared in constant time.
  Missing or wrong: 403;
- a POST's Content-Type (application/json, else 415), its Origin when
  present (ours, else 403) and its body (a JSON object, else 400).

Actions go through the supervisor API (restart = terminate then restart
a running child; stop = terminate) and main's control subject (reload,
dry run first from the page, as `arbor reload` does); stop the host is
arbor.core.shutdown after the answer is out.

Depends on arbor.dashboard.http, arbor.json, supervisor, process and
arbor.core; reads the tree only through the hub.
]]
local process = require "process"
local core = require "arbor.core"
local supervisor = require "supervisor"
local json = require "arbor.json"
local http = require "arbor.dashboard.http"

local M = {}

-- How long an action waits for the supervisor or main to answer.
local ACTION_TIMEOUT_MS = 15000
local RELOAD_WAIT_MS = 60000

-- Constant-time comparison: the loop always runs over the whole of the
-- expected token, whatever was given, and never stops early.
function M.same_token(given, expected)
  if type(given) ~= "string" then given = "" end
  local diff = #given ~ #expected
  for i = 1, #expected do
    diff = diff | ((given:byte(i) or 0) ~ expected:byte(i))
  end
  return diff == 0
end

local function json_response(status, value, close, extra_headers)
  return http.response(status, "application/json", json.encode(value),
                       extra_headers, close)
end

local function error_response(status, message, close, extra_headers)
  return json_response(status, { error = message, status = status }, close,
                       extra_headers)
end

-- {=====================================================================
-- Checks
-- ======================================================================

local function host_allowed(config, value)
  if not config.loopback then return true end
  if value == nil then return false end
  local name, port = value:match("^%[(.-)%]:?(%d*)$")
  if not name then name, port = value:match("^([^:]+):?(%d*)$") end
  if not name then return false end
  name = name:lower()
  local loop = name == "localhost" or name == "::1"
               or name:match("^127%.%d+%.%d+%.%d+$") ~= nil
  local p = port == "" and 80 or tonumber(port)
  return loop and p == config.port
end

local function origin_allowed(config, origin)
  if origin == nil then return true end
  local host = origin:match("^http://([^/]+)$")
  return host ~= nil and host_allowed(config, host)
end

-- }=====================================================================

-- {=====================================================================
-- Routes
-- ======================================================================

local function ask_hub(hub, what, extra)
  local ok, answer = pcall(process.try_call, hub, function(reply)
    local msg = { op = "get", what = what, reply = reply }
    for k, v in pairs(extra or {}) do msg[k] = v end
    return msg
  end, ACTION_TIMEOUT_MS)
  if ok and type(answer) == "table" and answer.json then return answer.json end
  return nil
end

-- The child at path (a list of id texts) under root: its supervisor's
-- subject and its which_children entry; or nil, status, message.
local function find_child(root, path)
  local sup = root
  for i, id in ipairs(path) do
    local ok, children = pcall(supervisor.which_children, sup)
    if not ok then
      return nil, 409, "supervisor at " .. table.concat(path, "/", 1, i - 1)
                       .. " did not answer"
    end
    local found
    for _, c in ipairs(children) do
      local text = type(c.id) == "string" and c.id or tostring(c.id)
      if text == id then found = c break end
    end
    if found == nil then
      return nil, 404, "no child " .. table.concat(path, "/", 1, i)
    end
    if i == #path then return sup, found end
    if found.kind ~= "supervisor" or found.status ~= "running"
       or not found.subject then
      return nil, 404, table.concat(path, "/", 1, i)
                       .. " is not a running supervisor"
    end
    sup = found.subject
  end
end

local function check_path(body)
  local path = body.path
  if type(path) ~= "table" or #path == 0 or #path > 64 then
    return nil, "'path' must be a non-empty list of child ids, from the "
                .. "root's children down"
  end
  for i, id in ipairs(path) do
    if type(id) ~= "string" and math.type(id) ~= "integer" then
      return nil, "'path' item " .. i .. " must be a child id (text)"
    end
    path[i] = tostring(id)
  end
  for k in pairs(path) do
    if math.type(k) ~= "integer" or k < 1 or k > #path then
      return nil, "'path' must be a list"
    end
  end
  return path
end

local function err_text(err)
  return type(err) == "table" and rawget(err, "message")
         or core.describe(err)
end

local function child_action(ctx, body, what)
  local path, perr = check_path(body)
  if not path then return error_response(400, perr) end
  local sup, found, msg = find_child(ctx.root, path)
  if not sup then return error_response(found, msg) end
  local ok, value, err
  if what == "stop" then
    ok, value, err = pcall(supervisor.terminate_child, sup, found.id)
  else
    if found.status == "running" then
      ok, value, err = pcall(supervisor.terminate_child, sup, found.id)
      if ok and not value and err and err.kind ~= "not_found" then
        return error_response(409, err_text(err))
      end
    end
    ok, value, err = pcall(supervisor.restart_child, sup, found.id)
  end
  process.send(ctx.hub, { op = "changed" })
  if not ok then return error_response(409, err_text(value)) end
  if not value then return error_response(409, err_text(err)) end
  return json_response(200, { ok = true, action = what,
                              path = json.array(path) })
end

local function reload_action(ctx, body)
  local dry = body.dry_run
  if dry ~= nil and type(dry) ~= "boolean" then
    return error_response(400, "'dry_run' must be true or false")
  end
  if ctx.control == nil then
    return error_response(409, "this host does not serve reloads")
  end
  local reply = process.new_subject()
  process.send(ctx.control, { cmd = "reload", dry_run = dry == true,
                              reply = reply })
  local answer = process.receive(reply, RELOAD_WAIT_MS)
  if answer == nil then
    return error_response(503, "the reload did not answer within "
                               .. RELOAD_WAIT_MS .. " ms")
  end
  if dry ~= true then process.send(ctx.hub, { op = "changed" }) end
  local status = answer.code == 0 and 200 or 422
  return json_response(status, { ok = answer.code == 0, dry_run = dry == true,
                                 code = answer.code, text = answer.text })
end

local GET_API = {
  ["/api/tree"] = "tree", ["/api/processes"] = "processes",
  ["/api/history"] = "history", ["/api/log"] = "log",
  ["/api/state"] = "state",
}
local POST_API = {
  ["/api/children/restart"] = true, ["/api/children/stop"] = true,
  ["/api/reload"] = true, ["/api/stop"] = true,
}

local function allowed_methods(path)
  if path == "/" or GET_API[path] or path == "/api/events" then
    return "GET"
  end
  if POST_API[path] then return "POST" end
end

-- }=====================================================================

-- {=====================================================================
-- The event stream
-- ======================================================================

local function sse(event, data)
  return "event: " .. event .. "\ndata: " .. data .. "\n\n"
end

-- Serves the stream until the client leaves or the hub ends.
local function event_stream(sock, ctx)
  local ok = sock:send(
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    .. "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
    .. "Connection: keep-alive\r\n\r\nretry: 2000\n\n")
  if not ok then return end
  local inbox = process.new_subject()
  local hub_down = process.monitor(process.subject_owner(ctx.hub))
  sock:receive_as_message()
  local sel = process.new_selector()
    :selecting(inbox)
    :selecting_socket(sock)
    :selecting_process_down(hub_down, function() return { hub_down = true } end)
  process.send(ctx.hub, { op = "subscribe", subject = inbox,
                          pid = process.self() })
  local heartbeat = ctx.config.heartbeat_ms
  while true do
    local m = process.select(sel, heartbeat)
    if m == nil then
      if not sock:send(": keep-alive\n\n") then return end
    else
      -- What waits is taken in one go: the newest tree, history and
      -- processes, every log batch, all written with one send.
      local latest, order, logs, stop = {}, {}, {}, false
      while m do
        if m.hub_down or m.closed or m.error then
          stop = true
        elseif m.socket then
          sock:receive_as_message() -- a client has nothing to say here
        elseif m.event == "hello" then
          latest, order, logs = { hello = m.data }, { "hello" }, {}
        elseif m.event == "log" then
          logs[#logs + 1] = sse("log", m.data)
        elseif type(m.event) == "string" then
          if latest[m.event] == nil then order[#order + 1] = m.event end
          latest[m.event] = m.data
        end
        m = process.select(sel, 0)
      end
      local out = {}
      for _, name in ipairs(order) do out[#out + 1] = sse(name, latest[name]) end
      table.move(logs, 1, #logs, #out + 1, out)
      if #out > 0 and not sock:send(table.concat(out)) then return end
      if stop then return end
    end
  end
end

-- }=====================================================================

-- Answers one request; returns the response bytes, or nil when the
-- connection was taken over (event stream) or must end (after).
local function handle(sock, req, ctx)
  local config = ctx.config
  if not host_allowed(config, req.headers.host) then
    return error_response(403, "Host '" .. tostring(req.headers.host)
                          :sub(1, 80) .. "' is not allowed: the dashboard "
                          .. "answers its loopback address only", true)
  end
  local methods = allowed_methods(req.path)
  if methods == nil then
    return error_response(404, "no such path: " .. req.path:sub(1, 200))
  end
  if req.method ~= methods and not (req.method == "HEAD" and methods == "GET"
                                    and req.path == "/") then
    return error_response(405, req.method .. " is not allowed on "
                               .. req.path .. " (only " .. methods .. ")",
                          false, { "Allow: " .. methods })
  end
  if req.path == "/" then
    local page = require "arbor.dashboard.page"
    local r = http.response(200, "text/html; charset=utf-8", page.html, {
      "Content-Security-Policy: default-src 'none'; script-src "
      .. "'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
      .. "connect-src 'self'; base-uri 'none'; form-action 'none'; "
      .. "frame-ancestors 'none'" })
    if req.method == "HEAD" then r = r:sub(1, r:find("\r\n\r\n", 1, true) + 3) end
    return r
  end
  local params = http.query_params(req.query)
  local token = req.headers["x-arbor-token"]
  if req.method == "POST" then
    if params.token then
      return error_response(403, "send the token in the X-Arbor-Token "
                                 .. "header, not in the URL")
    end
  else
    token = token or params.token
  end
  if token == nil then
    return error_response(403, "missing token (X-Arbor-Token header)")
  end
  if not M.same_token(token, config.token) then
    return error_response(403, "wrong token")
  end
  if req.method == "GET" then
    if req.path == "/api/events" then
      event_stream(sock, ctx)
      return nil
    end
    local text = ask_hub(ctx.hub, GET_API[req.path],
                         { after = math.tointeger(tonumber(params.after or "")) })
    if text == nil then return error_response(503, "the dashboard's hub "
                                                   .. "did not answer") end
    return http.response(200, "application/json", text)
  end
  -- POST
  local ctype = (req.headers["content-type"] or ""):lower()
  if not ctype:match("^application/json%s*;?") then
    return error_response(415, "Content-Type must be application/json")
  end
  if not origin_allowed(config, req.headers.origin) then
    return error_response(403, "Origin '" .. req.headers.origin:sub(1, 80)
                               .. "' is not allowed")
  end
  local body, jerr = json.decode(req.body)
  if body == nil then return error_response(400, "bad JSON body: " .. jerr) end
  if type(body) ~= "table" or (next(body) ~= nil and body[1] ~= nil) then
    return error_response(400, "the body must be a JSON object")
  end
  if req.path == "/api/children/restart" then
    return child_action(ctx, body, "restart")
  elseif req.path == "/api/children/stop" then
    return child_action(ctx, body, "stop")
  elseif req.path == "/api/reload" then
    return reload_action(ctx, body)
  else -- /api/stop
    sock:send(json_response(200, { ok = true, text = "stopping" }, true))
    -- Let the answer reach the client before the host goes down.
    sock:shutdown()
    sock:receive(1000)
    core.shutdown()
    return nil
  end
end

-- The connection's process body.
function M.serve(sock, config, hub)
  -- The acceptor gives us the socket right after spawning us, and may be
  -- preempted in between: wait until it is ours (or the acceptor gone).
  while sock:owner() ~= process.self() do
    local owner = sock:owner() -- nil once closed
    if not (owner and process.is_alive(owner)) then return end
    process.sleep(0)
  end
  local has_annotate, annotate = pcall(require, "arbor.annotate")
  if has_annotate then annotate.set(process.self(), "name", "dashboard/conn") end
  if config.header_ms then http.LIMITS.header_ms = config.header_ms end
  if config.idle_ms then http.LIMITS.idle_ms = config.idle_ms end
  local ctx = { config = config, hub = hub, root = config.root,
                control = config.control }
  local pending = ""
  while true do
    local req, err = http.read_request(sock, pending)
    if req == nil then
      if err == "closed" then break end
      sock:send(error_response(err.status, err.message, true))
      return http.linger_close(sock)
    end
    pending = err
    local ok, response = pcall(handle, sock, req, ctx)
    if not ok then
      sock:send(error_response(500, "internal error: "
                                    .. core.describe(response), true))
      break
    end
    if response == nil then break end
    local sent, serr = sock:send(response)
    if not sent then
      -- A client that does not read for the send timeout: reset it now
      -- (its answer is lost anyway) rather than linger.
      if serr.kind == "timeout" then return sock:abort() end
      break
    end
    if not req.keep_alive or response:find("\r\nConnection: close\r\n", 1,
                                            true) then
      break
    end
  end
  sock:close()
end

return M
