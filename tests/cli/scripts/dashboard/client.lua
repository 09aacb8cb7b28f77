-- The HTTP side of tests/cli/test_dashboard.sh: a client on arbor's own
-- net that drives a running dashboard (a host serving
-- tests/cli/scripts/dashboard/tree.lua with --dashboard) and checks
-- every answer.  Prints "ok - NAME" or "not ok - NAME: why" per case and
-- raises at the end if any failed.
--
--   arbor client.lua PORT TOKEN CRASH_PORT_FILE HEADER_MS IDLE_MS MAXCONN
--
-- Waits are deadlines on what it waits for (an answer, an event, a
-- close), never sleeps.
local net = require "net"
local fs = require "fs"
local process = require "process"
local json = require "arbor.json"
local core = require "arbor.core"

local PORT = assert(math.tointeger(tonumber(arg[1])), "port")
local TOKEN = assert(arg[2], "token")
local CRASH_PORT_FILE = assert(arg[3], "crash port file")
local HEADER_MS = assert(math.tointeger(tonumber(arg[4])))
local IDLE_MS = assert(math.tointeger(tonumber(arg[5])))
local MAXCONN = assert(math.tointeger(tonumber(arg[6])))
local HOST = "127.0.0.1:" .. PORT

local failed = 0
local function case(name, fn)
  local ok, err = pcall(fn)
  if ok then
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name .. ": " .. tostring(err))
  end
  io.stdout:flush()
end

local function check(cond, fmt, ...)
  if not cond then error(string.format(fmt, ...), 2) end
end

-- {=====================================================================
-- A small HTTP client
-- ======================================================================

local function connect()
  return assert(net.connect { host = "127.0.0.1", port = PORT,
                              timeout = 3000 })
end

-- Reads one response off s (whose unread bytes start with buf).  Returns
-- {status, headers, body}, the bytes after it; or nil, why, buf.
local function read_response(s, buf, timeout)
  buf = buf or ""
  local deadline = core.now() + (timeout or 5000)
  while true do
    local hs, he = buf:find("\r\n\r\n", 1, true)
    if hs then
      local head = buf:sub(1, hs - 1)
      local r = { status = math.tointeger(tonumber(head:match("^HTTP/1%.1 (%d%d%d) "))),
                  headers = {} }
      for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
        r.headers[name:lower()] = value
      end
      local len = math.tointeger(tonumber(r.headers["content-length"]))
      if len and #buf - he >= len then
        r.body = buf:sub(he + 1, he + len)
        return r, buf:sub(he + len + 1)
      end
    end
    local left = deadline - core.now()
    if left <= 0 then return nil, "timeout", buf end
    local data, err = s:receive(left)
    if data == nil then return nil, err.kind, buf end
    buf = buf .. data
  end
end

-- One request on a fresh connection; returns the response (body JSON
-- decoded into r.json when it is JSON).
local function request(method, path, headers, body)
  local s = connect()
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: " .. HOST,
                  "Connection: close" }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  assert(s:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")))
  local r, err = read_response(s)
  s:close()
  check(r, "%s %s: no response (%s)", method, path, tostring(err))
  if (r.headers["content-type"] or ""):find("json") then
    r.json = json.decode(r.body)
  end
  return r
end

local function get(path, token)
  return request("GET", path, token and { ["X-Arbor-Token"] = token } or {})
end

local function post(path, value, headers)
  headers = headers or { ["X-Arbor-Token"] = TOKEN,
                         ["Content-Type"] = "application/json" }
  local body = type(value) == "string" and value or json.encode(value)
  return request("POST", path, headers, body)
end

-- Sends raw bytes on a fresh connection and returns the response (or
-- nil and why) and whether the server closed afterwards.
local function raw(bytes, timeout)
  local s = connect()
  s:send(bytes)
  local r, err, rest = read_response(s, "", timeout)
  local closed = false
  if r then
    local more, e2 = s:receive(timeout or 5000)
    closed = more == nil and e2.kind == "closed"
  end
  s:close()
  return r, err, closed, rest
end

-- }=====================================================================

-- {=====================================================================
-- The event stream
-- ======================================================================

local Stream = {}
Stream.__index = Stream

local function open_stream(query_token)
  local s = connect()
  assert(s:send("GET /api/events?token=" .. query_token .. " HTTP/1.1\r\nHost: "
                .. HOST .. "\r\nAccept: text/event-stream\r\n\r\n"))
  local buf, deadline = "", core.now() + 5000
  while not buf:find("\r\n\r\n", 1, true) do
    local data = s:receive(math.max(1, deadline - core.now()))
    check(data, "event stream: no response head")
    buf = buf .. data
  end
  local hs, he = buf:find("\r\n\r\n", 1, true)
  local head = buf:sub(1, hs - 1)
  return setmetatable({ s = s, head = head, buf = buf:sub(he + 1) }, Stream)
end

-- The next event {event =, data = decoded} within timeout ms, or nil.
function Stream:next(timeout)
  local deadline = core.now() + timeout
  while true do
    local s, e = self.buf:find("\n\n", 1, true)
    if s then
      local block = self.buf:sub(1, s - 1)
      self.buf = self.buf:sub(e + 1)
      local name = block:match("^event: ([^\n]+)") or block:match("\nevent: ([^\n]+)")
      local data = block:match("\ndata: ([^\n]*)") or block:match("^data: ([^\n]*)")
      if name and data then return { event = name, data = json.decode(data) } end
    else
      local left = deadline - core.now()
      if left <= 0 then return nil end
      local data = self.s:receive(left)
      if data == nil then return nil end
      self.buf = self.buf .. data
    end
  end
end

-- Waits for an event for which pred(ev) holds; returns it and the ms it
-- took, or nil.
function Stream:wait(pred, timeout)
  local started = core.now()
  local deadline = started + timeout
  while core.now() < deadline do
    local ev = self:next(deadline - core.now())
    if ev == nil then return nil end
    if pred(ev) then return ev, core.now() - started end
  end
end

-- }=====================================================================

-- A child's entry by path ("inner/gamma") in a tree snapshot.
local function find(tree, path)
  local node = tree
  for id in path:gmatch("[^/]+") do
    local found
    for _, c in ipairs(node.children or {}) do
      if c.id == id then found = c end
    end
    if not found then return nil end
    node = found
  end
  return node
end

local function tree_now()
  local r = get("/api/tree", TOKEN)
  check(r.status == 200, "GET /api/tree: %s", tostring(r.status))
  return r.json.tree
end

local function crash_victim()
  local port = assert(math.tointeger(tonumber(assert(fs.read(CRASH_PORT_FILE)))))
  local u = assert(net.udp { host = "127.0.0.1", port = 0 })
  assert(u:send_to("127.0.0.1", port, "boom"))
  u:close()
end

-- {=====================================================================
-- Cases
-- ======================================================================

case("GET / serves the page, self-contained", function()
  local r = get("/")
  check(r.status == 200, "status %s", tostring(r.status))
  check(r.headers["content-type"]:find("text/html", 1, true), "content type")
  check(r.body:find("<title>arbor dashboard</title>", 1, true), "title")
  check(not r.body:find("https?://"), "an external URL in the page")
  check(not r.body:find("<script[^>]+src", 1), "an external script")
  check(not r.body:find("<link", 1, true), "an external stylesheet")
  check(r.headers["content-security-policy"]:find("default-src 'none'", 1, true),
        "CSP")
end)

case("API needs the token: missing, wrong, right", function()
  local r = get("/api/tree")
  check(r.status == 403 and r.json.error:find("missing token"),
        "missing: %s %s", r.status, r.body)
  r = get("/api/tree", string.rep("0", #TOKEN))
  check(r.status == 403 and r.json.error == "wrong token", "wrong: %s %s",
        r.status, r.body)
  r = get("/api/tree", TOKEN .. "x")
  check(r.status == 403, "longer token: %s", r.status)
  r = get("/api/tree", TOKEN:sub(1, -2))
  check(r.status == 403, "shorter token: %s", r.status)
  r = get("/api/tree?token=" .. TOKEN)
  check(r.status == 200, "query token on a GET: %s", r.status)
  r = get("/api/tree", TOKEN)
  check(r.status == 200, "header token: %s", r.status)
end)

case("GET /api/tree: the tree, as arbor.introspect shapes it", function()
  local t = tree_now()
  check(t.name == "dash-test", "name %s", tostring(t.name))
  check(t.strategy == "one_for_one", "strategy")
  for _, path in ipairs { "alpha", "beta", "inner", "inner/gamma",
                          "inner/delta", "victim" } do
    local c = find(t, path)
    check(c, "%s missing", path)
    check(c.status == "running" and c.pid:match("^<0%.%d+%.%d+>$")
          and c.restarts == 0 and math.type(c.uptime_ms) == "integer",
          "%s: %s", path, json.encode(c))
  end
  check(find(t, "inner").kind == "supervisor", "inner is a supervisor")
  -- The dashboard's own tree is not in the user's tree.
  check(not json.encode(t):find("dashboard", 1, true), "dashboard in the tree")
end)

case("GET /api/processes, /api/history, /api/log, /api/state", function()
  local r = get("/api/processes", TOKEN)
  check(r.status == 200 and #r.json.by_messages > 0 and #r.json.by_memory > 0
        and r.json.host.processes > 0, "processes: %s", r.body:sub(1, 200))
  check(r.json.by_memory[1].memory >= r.json.by_memory[#r.json.by_memory].memory,
        "by_memory is sorted")
  r = get("/api/history", TOKEN)
  local sups = {}
  for _, s in ipairs(r.json.series) do sups[s.supervisor] = s end
  check(r.status == 200 and sups["dash-test"] and sups["dash-test/inner"],
        "history: %s", r.body:sub(1, 300))
  check(#sups["dash-test"].points >= 1, "history points")
  r = get("/api/log", TOKEN)
  check(r.status == 200 and type(r.json.events) == "table"
        and math.type(r.json.last_seq) == "integer", "log: %s", r.body:sub(1, 200))
  r = get("/api/state", TOKEN)
  check(r.status == 200 and r.json.tree.tree.name == "dash-test"
        and r.json.procs and r.json.history and r.json.log, "state")
end)

local stream
case("event stream: hello first, then a crash shows as tree and log events",
     function()
  local bad = open_stream("nope")
  check(bad.head:match("^HTTP/1%.1 403"), "stream without the token: %s", bad.head)
  bad.s:close()
  stream = open_stream(TOKEN)
  check(stream.head:match("^HTTP/1%.1 200"), "head %s", stream.head)
  check(stream.head:find("Content-Type: text/event-stream", 1, true), "type")
  local hello = stream:next(5000)
  check(hello and hello.event == "hello", "first event %s",
        hello and hello.event or "none")
  check(find(hello.data.tree.tree, "victim").restarts == 0, "hello tree")
  local before = find(hello.data.tree.tree, "victim").pid
  crash_victim()
  local ev, ms = stream:wait(function(e)
    local v = e.event == "tree" and find(e.data.tree, "victim")
    return v and v.restarts == 1 and v.pid ~= before
           and v.last_exit:find("victim crashed on purpose", 1, true)
  end, 5000)
  check(ev, "no tree event with the victim restarted")
  print(string.format("# the crash reached the stream in %d ms", ms))
  local log = stream:wait(function(e)
    if e.event ~= "log" then return false end
    for _, l in ipairs(e.data.events) do
      if l.kind == "crash" and l.text:find("victim crashed on purpose", 1, true)
      then return true end
    end
  end, 5000)
  -- The log event may have come before the tree event: then look again
  -- through a fresh GET.
  if not log then
    local r = get("/api/log", TOKEN)
    local seen = false
    for _, l in ipairs(r.json.events) do
      if l.kind == "crash" and l.text:find("victim crashed", 1, true) then seen = true end
    end
    check(seen, "no crash event in the log")
  end
  local h = get("/api/history", TOKEN).json
  for _, s in ipairs(h.series) do
    if s.supervisor == "dash-test" then
      check(s.restarts == 1 and s.crashes == 1, "history counts: %s",
            json.encode(s))
    end
  end
end)

case("actions without a valid token: 403 and nothing changes", function()
  local before = tree_now()
  local body = json.encode { path = { "alpha" } }
  local r = post("/api/children/restart", body,
                 { ["Content-Type"] = "application/json" })
  check(r.status == 403 and r.json.error:find("missing token"), "missing: %s", r.body)
  r = post("/api/children/restart", body,
           { ["Content-Type"] = "application/json",
             ["X-Arbor-Token"] = string.rep("a", #TOKEN) })
  check(r.status == 403 and r.json.error == "wrong token", "wrong: %s", r.body)
  r = post("/api/children/restart?token=" .. TOKEN, body,
           { ["Content-Type"] = "application/json" })
  check(r.status == 403 and r.json.error:find("header"), "query token: %s", r.body)
  r = post("/api/children/stop", body, { ["Content-Type"] = "application/json",
                                         Cookie = "token=" .. TOKEN })
  check(r.status == 403, "cookie: %s", r.body)
  r = post("/api/stop", "{}", { ["Content-Type"] = "application/json" })
  check(r.status == 403, "stop without a token: %s", r.body)
  r = post("/api/reload", '{"dry_run":false}', { ["Content-Type"] = "application/json" })
  check(r.status == 403, "reload without a token: %s", r.body)
  local after = tree_now()
  check(find(after, "alpha").pid == find(before, "alpha").pid
        and find(after, "alpha").restarts == 0, "alpha was touched")
end)

case("POSTs with the token but a bad request: clear 4xx, nothing changes",
     function()
  local before = find(tree_now(), "alpha").pid
  local r = post("/api/children/restart", '{"path":["alpha"]}',
                 { ["X-Arbor-Token"] = TOKEN, ["Content-Type"] = "text/plain" })
  check(r.status == 415, "content type: %s", r.status)
  r = post("/api/children/restart", '{"path":["alpha"]', nil)
  check(r.status == 400 and r.json.error:find("bad JSON body"), "bad JSON: %s", r.body)
  r = post("/api/children/restart", '["alpha"]', nil)
  check(r.status == 400 and r.json.error:find("object"), "array body: %s", r.body)
  r = post("/api/children/restart", '{"path":"alpha"}', nil)
  check(r.status == 400 and r.json.error:find("path"), "path as text: %s", r.body)
  r = post("/api/children/restart", '{"path":["nope"]}', nil)
  check(r.status == 404 and r.json.error:find("no child nope"), "unknown child: %s", r.body)
  r = post("/api/children/restart", '{"path":["alpha","x"]}', nil)
  check(r.status == 404, "path through a worker: %s", r.body)
  r = post("/api/reload", '{"dry_run":"yes"}', nil)
  check(r.status == 400, "dry_run not a boolean: %s", r.body)
  r = post("/api/children/restart", '{"path":["alpha"]}',
           { ["X-Arbor-Token"] = TOKEN, ["Content-Type"] = "application/json",
             Origin = "http://evil.example" })
  check(r.status == 403 and r.json.error:find("Origin"), "foreign origin: %s", r.body)
  r = request("GET", "/api/children/restart", { ["X-Arbor-Token"] = TOKEN })
  check(r.status == 405 and r.headers.allow == "POST", "GET on an action: %s", r.status)
  check(find(tree_now(), "alpha").pid == before, "alpha was touched")
end)

case("restart, stop and restart a child through the API", function()
  local before = tree_now()
  local r = post("/api/children/restart", { path = { "inner", "gamma" } })
  check(r.status == 200 and r.json.ok, "restart: %s", r.body)
  local t = tree_now()
  check(find(t, "inner/gamma").pid ~= find(before, "inner/gamma").pid,
        "gamma has a new process")
  check(find(t, "inner/delta").pid == find(before, "inner/delta").pid,
        "delta kept its process (one_for_one)")
  r = post("/api/children/stop", { path = { "beta" } })
  check(r.status == 200, "stop: %s", r.body)
  check(find(tree_now(), "beta").status == "stopped", "beta stopped")
  local ev = stream:wait(function(e)
    return e.event == "tree" and find(e.data.tree, "beta").status == "stopped"
  end, 5000)
  check(ev, "the stop reached the event stream")
  r = post("/api/children/restart", { path = { "beta" } })
  check(r.status == 200, "restart a stopped child: %s", r.body)
  check(find(tree_now(), "beta").status == "running", "beta runs again")
end)

case("reload: a dry run previews, then apply", function()
  local r = post("/api/reload", { dry_run = true })
  check(r.status == 200 and r.json.ok and r.json.dry_run
        and r.json.text:find("^reload plan:"), "dry run: %s", r.body)
  local pid = find(tree_now(), "alpha").pid
  r = post("/api/reload", { dry_run = false })
  check(r.status == 200 and r.json.ok and r.json.text:find("^reload:"),
        "apply: %s", r.body)
  check(find(tree_now(), "alpha").pid == pid, "an unchanged child kept its process")
end)

-- Hostile clients.  After each, the server still answers.
local function still_serving()
  check(get("/api/tree", TOKEN).status == 200, "the dashboard stopped answering")
end

case("malformed HTTP: 400 naming what was wrong, then closed", function()
  local r, _, closed = raw("BLAH\r\n\r\n")
  check(r and r.status == 400 and r.body:find("malformed request line"),
        "request line: %s", r and r.body)
  check(closed, "closed after the error")
  r = raw("GET / HTTP/1.1\r\nHost: " .. HOST .. "\r\nno colon here\r\n\r\n")
  check(r.status == 400 and r.body:find("malformed header field on line 3"),
        "header: %s", r.body)
  r = raw("GET / HTTP/2.0\r\nHost: x\r\n\r\n")
  check(r.status == 505, "version: %s", r.status)
  r = raw("GET / HTTP/1.1\r\n\r\n")
  check(r.status == 400 and r.body:find("Host"), "no Host: %s", r.body)
  r = raw("\0\1\2\3\255\254garbage\r\n\r\n")
  check(r.status == 400, "binary: %s", r.status)
  r = raw("GET nowhere HTTP/1.1\r\nHost: " .. HOST .. "\r\n\r\n")
  check(r.status == 400 and r.body:find("path"), "target: %s", r.body)
  r = raw("POST /api/reload HTTP/1.1\r\nHost: " .. HOST .. "\r\nX-Arbor-Token: "
          .. TOKEN .. "\r\nContent-Type: application/json\r\n\r\n")
  check(r.status == 411, "POST without a length: %s", r.status)
  r = raw("POST /api/reload HTTP/1.1\r\nHost: " .. HOST
          .. "\r\nContent-Length: 99999999\r\n\r\n")
  check(r.status == 413, "huge body: %s", r.status)
  r = raw("POST /api/reload HTTP/1.1\r\nHost: " .. HOST
          .. "\r\nTransfer-Encoding: chunked\r\n\r\n")
  check(r.status == 501, "chunked: %s", r.status)
  r = raw("POST /api/reload HTTP/1.1\r\nHost: " .. HOST
          .. "\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
  check(r.status == 400, "two lengths: %s", r.status)
  r = raw("GET /nowhere HTTP/1.1\r\nHost: " .. HOST .. "\r\n\r\n")
  check(r.status == 404, "unknown path: %s", r.status)
  r = raw("DELETE /api/tree HTTP/1.1\r\nHost: " .. HOST .. "\r\n\r\n")
  check(r.status == 405, "method: %s", r.status)
  r = raw("GET /api/tree HTTP/1.1\r\nHost: evil.example:" .. PORT
          .. "\r\nX-Arbor-Token: " .. TOKEN .. "\r\n\r\n")
  check(r.status == 403 and r.body:find("Host"), "foreign Host: %s", r.body)
  still_serving()
end)

case("huge headers: 431 and closed, memory bounded", function()
  local r, _, closed = raw("GET / HTTP/1.1\r\nHost: " .. HOST .. "\r\nX-Big: "
                           .. string.rep("a", 20000) .. "\r\n\r\n")
  check(r and r.status == 431, "one huge field: %s", r and r.status)
  check(closed, "closed after 431")
  local many = { "GET / HTTP/1.1", "Host: " .. HOST }
  for i = 1, 100 do many[#many + 1] = "X-" .. i .. ": v" end
  r = raw(table.concat(many, "\r\n") .. "\r\n\r\n")
  check(r and r.status == 431, "too many fields: %s", r and r.status)
  -- A head that never ends: cut at the limit, not read forever.
  local s = connect()
  s:send("GET / HTTP/1.1\r\nX-Endless: ")
  local sent = 0
  while sent < 256 << 10 do
    if not s:send(string.rep("z", 65536)) then break end
    sent = sent + 65536
  end
  local resp = s:receive(3000) or ""
  s:close()
  check(resp:match("^HTTP/1%.1 431"), "endless head: got %q after %d bytes",
        resp:sub(1, 40), sent)
  still_serving()
end)

case("slowloris: a head dripped slowly gets 408 at the deadline", function()
  local s = connect()
  local started = core.now()
  s:send("GET / HTTP/1.1\r\nHost: " .. HOST .. "\r\n")
  local got
  for i = 1, 100 do
    local ok = s:send("X-Drip-" .. i .. ": y\r\n")
    if not ok then break end
    local data = s:receive(HEADER_MS // 4)
    if data then got = data break end
  end
  got = got or ""
  local took = core.now() - started
  local closed = s:receive(2000) == nil
  s:close()
  check(got:match("^HTTP/1%.1 408"), "got %q", got:sub(1, 40))
  check(took >= HEADER_MS - 50 and took < HEADER_MS * 3 + 1000,
        "408 after %d ms (deadline %d)", took, HEADER_MS)
  check(closed, "closed after 408")
  still_serving()
end)

case("an idle connection is closed without an answer", function()
  local s = connect()
  local started = core.now()
  local data, err = s:receive(IDLE_MS * 4 + 2000)
  s:close()
  check(data == nil and err.kind == "closed", "got %s", tostring(data or err))
  check(core.now() - started >= IDLE_MS - 50, "closed too early")
end)

case("too many connections: the next one gets 503, the rest go on", function()
  -- One connection is the event stream; fill the rest.
  local held = {}
  for i = 1, MAXCONN - 1 do
    held[i] = connect()
  end
  -- Every held connection is counted once the acceptor took it: a
  -- request on each proves it (keep-alive, answered).
  for _, s in ipairs(held) do
    assert(s:send("GET /api/tree HTTP/1.1\r\nHost: " .. HOST .. "\r\nX-Arbor-Token: "
                  .. TOKEN .. "\r\n\r\n"))
    local r = read_response(s)
    check(r and r.status == 200, "a held connection was not served")
  end
  local r, err = raw("GET / HTTP/1.1\r\nHost: " .. HOST .. "\r\n\r\n")
  check(r and r.status == 503, "over the limit: %s", r and r.status or err)
  for _, s in ipairs(held) do s:close() end
  -- Once they are gone, new connections are served again.
  local deadline = core.now() + 5000
  local ok = false
  while core.now() < deadline and not ok do
    local r2 = get("/api/tree", TOKEN)
    ok = r2.status == 200
  end
  check(ok, "not served after the others closed")
end)

case("keep-alive: two requests on one connection, pipelined", function()
  local s = connect()
  local req = "GET /api/tree HTTP/1.1\r\nHost: " .. HOST .. "\r\nX-Arbor-Token: "
              .. TOKEN .. "\r\n\r\n"
  s:send(req .. req)
  local r1, rest = read_response(s)
  local r2 = read_response(s, rest)
  s:close()
  check(r1 and r1.status == 200 and r2 and r2.status == 200, "pipelined")
end)

case("the user's tree was not disturbed by any of it", function()
  local t = tree_now()
  for _, path in ipairs { "alpha", "inner/delta" } do
    check(find(t, path).restarts == 0 and find(t, path).status == "running",
          "%s: %s", path, json.encode(find(t, path)))
  end
  check(find(t, "victim").restarts == 1, "victim restarted once only")
end)

if stream then stream.s:close() end
if failed > 0 then error(failed .. " case(s) failed", 0) end
print("all dashboard HTTP cases passed")
