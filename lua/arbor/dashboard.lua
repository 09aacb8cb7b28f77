--[[
arbor.dashboard: `arbor run --dashboard [HOST:]PORT`, a web page and a
JSON API served from inside the host, on arbor's own `net`.

It is a supervision tree of its own ("dashboard", rest_for_one: the hub
first, then the HTTP acceptor, which is given the hub's subject), started
by the main process beside the user's root tree and never inside it:

  hub   (arbor.dashboard.hub)  reads the host through arbor.introspect
        and the logger's ring of recent events, keeps the charts'
        history, and pushes changes to the event streams, coalesced;
  http  the acceptor: one process per connection (arbor.dashboard.conn),
        linked to it, at most max_connections at once (the next gets a
        503 and is closed).

What it owns: the address it listens on (default host 127.0.0.1; never
another unless asked), the token every action needs (random, printed at
start, or read from --dashboard-token-file / $ARBOR_DASHBOARD_TOKEN_FILE)
and the limits that keep hostile clients bounded.  It must not depend on
the main process's state beyond what main hands it (the root's subject
and main's control subject); it reads the tree only through
arbor.introspect and acts only through the supervisor API and main's
control subject (reloads go the same way as `arbor reload`).
]]
local process = require "process"
local net = require "net"
local supervisor = require "supervisor"

local M = {}

-- Limits and rhythms; the environment can lower some for tests.
M.config_defaults = {
  max_connections = 64,
  tick_ms = 250,         -- how often the hub looks for changes (clients open)
  idle_tick_ms = 5000,   -- ... and with no client (history, log counts)
  tree_every_ms = 750,   -- a tree read at least this often (clients open)
  procs_every_ms = 2000, -- the busiest-processes table
  history_every_ms = 5000,
  history_points = 120,  -- 10 minutes at 5 s
  log_keep = 500,        -- events the logger's ring keeps
  log_tail = 200,        -- events the page gets
  heartbeat_ms = 15000,  -- an event stream's keep-alive comment
  -- How long a send to a client may wait for it to read (its
  -- connections' net send_timeout): a client that stops reading is then
  -- reset and its connection slot freed, so clients that pipeline
  -- requests and never read cannot hold every slot.
  send_timeout_ms = 10000,
}

local function env_int(name, low, high)
  local text = os.getenv(name)
  if text == nil or text == "" then return nil end
  local n = math.tointeger(tonumber(text))
  if n == nil or n < low or n > high then
    error(string.format("%s must be a whole number from %d to %d, got '%s'",
                        name, low, high, text), 0)
  end
  return n
end

-- "[HOST:]PORT" -> host, port (main.c has checked the form).
function M.parse_address(text)
  local host, port = text:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = text:match("^(.+):(%d+)$") end
  if not host then host, port = "127.0.0.1", text:match("^(%d+)$") end
  port = math.tointeger(tonumber(port))
  if not port or port > 65535 then
    return nil, "--dashboard: '" .. text .. "' is not [HOST:]PORT"
  end
  return host, port
end

local function is_loopback(host)
  return host == "localhost" or host == "::1" or host:match("^127%.") ~= nil
end

-- A token file others can read gives the dashboard away: refused, as ssh
-- refuses such a key and Erlang such a cookie.  A symbolic link is
-- refused too (its own mode says nothing of the file's).
local function check_token_file_mode(path)
  local fs = require "fs"
  local st, err = fs.stat(path)
  if not st then return nil, "dashboard token file: " .. tostring(err) end
  if st.type == "link" then
    return nil, "dashboard token file " .. path .. " is a symbolic link: "
                .. "name the file itself"
  end
  if st.mode & 0x3f ~= 0 then -- 077: any group or other permission
    return nil, string.format("dashboard token file %s has mode %04o: it "
                              .. "must not be accessible by group or "
                              .. "others (chmod 600 %s)", path, st.mode, path)
  end
  return true
end

local function read_token_file(path)
  local okmode, merr = check_token_file_mode(path)
  if not okmode then return nil, merr end
  local f, err = io.open(path, "rb")
  if not f then
    return nil, "dashboard token file: " .. tostring(err)
  end
  local text = f:read(4097) or ""
  f:close()
  local token = text:match("^%s*(.-)%s*$")
  if #token < 16 or #token > 4096 or token:find("[^\33-\126]") then
    return nil, "dashboard token file " .. path .. ": the token must be 16 "
                .. "to 4096 printable characters without spaces"
  end
  return token
end

local function random_token()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--[[
M.prepare(address, token_file) -> config | nil, err: before the user's
tree starts, so a dashboard that cannot run stops the host before
anything else started.  Reads or makes the token and binds the address
once (a taken port fails here; port 0 is resolved to the port the system
gave, so a restarted acceptor listens on the same one).
]]
function M.prepare(address, token_file)
  local host, port = M.parse_address(address)
  if not host then return nil, port end
  local config = {}
  for k, v in pairs(M.config_defaults) do config[k] = v end
  config.max_connections = env_int("ARBOR_DASHBOARD_MAX_CONNECTIONS", 1,
                                   10000) or config.max_connections
  config.header_ms = env_int("ARBOR_DASHBOARD_HEADER_TIMEOUT_MS", 1,
                             600000)
  config.idle_ms = env_int("ARBOR_DASHBOARD_IDLE_TIMEOUT_MS", 1, 3600000)
  config.send_timeout_ms = env_int("ARBOR_DASHBOARD_SEND_TIMEOUT_MS", 1,
                                   600000) or config.send_timeout_ms
  token_file = token_file or os.getenv("ARBOR_DASHBOARD_TOKEN_FILE")
  if token_file == "" then token_file = nil end
  local token, err
  if token_file then
    token, err = read_token_file(token_file)
    if not token then return nil, err end
  else
    token = random_token()
  end
  local probe, lerr = net.listen { host = host, port = port }
  if not probe then
    return nil, "dashboard: cannot listen on " .. address .. ": "
                .. tostring(lerr)
  end
  local _, bound = probe:address()
  probe:close()
  config.host, config.port, config.token = host, bound, token
  config.token_file = token_file
  config.loopback = is_loopback(host)
  return config
end

-- The URL to print (with the token in the fragment, which browsers never
-- send to the server, unless it came from a file).
function M.url(config, with_token)
  local host = config.host:find(":", 1, true) and "[" .. config.host .. "]"
               or config.host
  if host == "0.0.0.0" then host = "127.0.0.1" end
  if host == "[::]" then host = "[::1]" end
  local url = string.format("http://%s:%d/", host, config.port)
  if with_token then url = url .. "#token=" .. config.token end
  return url
end

-- {=====================================================================
-- The acceptor
-- ======================================================================

-- Starts fn(reply, ...) as a process linked to the caller (a supervisor)
-- that answers with a subject it owns; returns that subject or nil, err.
local function start_linked(fn, ...)
  local reply = process.new_subject()
  local pid = process.spawn_link(fn, reply, ...)
  local answer = process.receive(reply, 5000)
  if answer == nil then
    process.kill(pid)
    return nil, "did not start within 5000 ms"
  end
  if answer.err then return nil, answer.err end
  return answer.subject, pid
end

local function answer_busy(sock)
  local http = require "arbor.dashboard.http"
  sock:send(http.response(503, "application/json",
    '{"error":"too many connections","status":503}', { "Retry-After: 1" },
    true))
  sock:close()
end

-- The acceptor's body: accepts, and hands each connection to a process
-- linked to it (so they all end with it), counting them by their exits.
local function acceptor(reply, listener, config, hub, parent)
  local conn = require "arbor.dashboard.conn"
  local core = require "arbor.core"
  local has_annotate, annotate = pcall(require, "arbor.annotate")
  if has_annotate then annotate.set(process.self(), "name", "dashboard/http") end
  process.trap_exits(true)
  local inbox = process.new_subject()
  process.send(reply, { subject = inbox })
  process.receive(inbox) -- the listener is ours now
  local exits = process.new_selector():selecting_trapped_exits()
  local open = 0
  while true do
    local sock = net.accept(listener)
    -- The exits queued so far: connections that ended (or the parent).
    while true do
      local e = process.select(exits, 0)
      if e == nil then break end
      if e.pid == parent then core.exit_self(e.reason) end
      open = math.max(0, open - 1)
    end
    if sock then
      if open >= config.max_connections then
        answer_busy(sock)
      else
        open = open + 1
        local pid = process.spawn_link(conn.serve, sock, config, hub)
        sock:give_to(pid)
      end
    end
  end
end

local function start_acceptor(arg)
  local listener, err = net.listen { host = arg.config.host,
                                     port = arg.config.port, backlog = 128,
                                     send_timeout = arg.config.send_timeout_ms }
  if not listener then return nil, err end
  local subject, pid = start_linked(acceptor, listener, arg.config, arg.hub,
                                    process.self())
  if not subject then
    listener:close()
    return nil, pid
  end
  listener:give_to(pid)
  process.send(subject, "listener given")
  return subject
end

-- }=====================================================================

--[[
M.start(config, root, control) -> dashboard supervisor | nil, err: the
dashboard's tree, linked to the caller (main), with the user's root
tree's subject and main's control subject.
]]
function M.start(config, root, control)
  local hub = require "arbor.dashboard.hub"
  local logger = require "logger"
  logger.keep_recent(config.log_keep)
  config.root, config.control = root, control
  local tree = supervisor.spec {
    name = "dashboard",
    strategy = "rest_for_one",
    max_frequency = 5,
    frequency_period = 10,
    argument = { config = config, root = root, control = control },
    init = function(children)
      return children
        :add(supervisor.worker(function(arg)
               return start_linked(hub.run, arg.config, arg.root,
                                   arg.control)
             end)
             :id("hub")
             :returning(function(arg, subject)
               return { config = arg.config, hub = subject }
             end))
        :add(supervisor.worker(start_acceptor):id("http")
             :shutdown("brutal_kill"))
    end,
  }
  local sup, err = supervisor.start_spec(tree)
  local has_annotate, annotate = pcall(require, "arbor.annotate")
  if sup and has_annotate then
    annotate.set(process.subject_owner(sup), "name", "dashboard")
  end
  return sup, err
end

return M
