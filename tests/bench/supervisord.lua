--[[
supervisord: measures a process supervisor running N `sleep` services
(tests/bench/supervisord.sh runs it for arbor and for Debian's
supervisord).  Run by arbor:

  arbor tests/bench/supervisord.lua NAME N KILLS CMD ARG...

starts CMD ARG... (the supervisor under test, in the foreground) as a
port and watches its children in /proc (the thread that forks them is the
supervisor's main thread, so /proc/PID/task/PID/children lists them):
  start_ms    from spawning the supervisor to N children running (each
              child's /proc/PID/cmdline is "sleep ..."; a fork not yet
              exec'd does not count)
  rss_kb      the supervisor's VmRSS 1 s after that
  idle_cpu_ms CPU time (user + system) the supervisor used in the 5 s
              after that, with nothing happening
  restart_ms  median over KILLS rounds: kill -9 of one child to its
              replacement running (a new child, N running again), each
              round after the last replacement is up
then stops the supervisor with SIGTERM.  Polling uses blocking reads of
/proc from the one measuring process, about every 0.2 ms: the figures
are good to a fraction of a millisecond.  Prints "RESULT NAME key value"
lines.
]]
local port = require "port"
local process = require "process"
local core = require "arbor.core"

local name, n, kills = arg[1], tonumber(arg[2]), tonumber(arg[3])
local cmd = table.move(arg, 4, #arg, 1, {})
assert(name and n and kills and #cmd > 0,
       "usage: supervisord.lua NAME N KILLS CMD ARG...")

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local now = core.now -- the host's monotonic clock, ms

local function running_children(host)
  local list = slurp("/proc/" .. host .. "/task/" .. host .. "/children") or ""
  local out = {}
  for pid in list:gmatch("%d+") do
    local cmdline = slurp("/proc/" .. pid .. "/cmdline")
    if cmdline and cmdline:find("^sleep%z") then out[#out + 1] = tonumber(pid) end
  end
  return out
end

local function cpu_ms(host)
  local stat = slurp("/proc/" .. host .. "/stat")
  local rest = stat:match("%) (.*)$")
  local fields = {}
  for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
  -- after "pid (comm)": state is field 1, utime 12, stime 13 (clock ticks)
  return (tonumber(fields[12]) + tonumber(fields[13])) * 10
end

local function rss_kb(host)
  return tonumber(slurp("/proc/" .. host .. "/status"):match("VmRSS:%s*(%d+)"))
end

local function result(key, value)
  print(string.format("RESULT %s %s %s", name, key, value))
end

local t0 = now()
local opts = table.move(cmd, 1, #cmd, 1, {})
opts.stdout, opts.stderr, opts.stdin = "null", "null", "null"
local p = assert(port.spawn(opts))
local host = p:os_pid()
local kids
repeat
  kids = running_children(host)
  local waited = now() - t0
  assert(waited < 60000, "the supervisor did not start " .. n .. " children")
until #kids >= n
result("start_ms", now() - t0)
process.sleep(1000)
result("rss_kb", rss_kb(host))
local c0 = cpu_ms(host)
process.sleep(5000)
result("idle_cpu_ms", cpu_ms(host) - c0)

local times = {}
for i = 1, kills do
  kids = running_children(host)
  local victim = kids[(i % #kids) + 1]
  -- kill runs on its own; the clock starts when the victim is seen dead
  -- (a zombie or gone), so the time to exec kill does not count.
  assert(port.spawn{ "kill", "-9", tostring(victim), stdout = "null" })
  local t = now()
  while true do
    local stat = slurp("/proc/" .. victim .. "/stat")
    if stat == nil or stat:match("^%d+ %b() (%a)") == "Z" then break end
    assert(now() - t < 30000, "kill -9 did not take")
  end
  local t_kill = now()
  while true do
    local cur = running_children(host)
    local back = #cur >= n
    if back then
      for _, pid in ipairs(cur) do if pid == victim then back = false end end
    end
    if back then break end
    assert(now() - t_kill < 30000, "no replacement after kill -9")
  end
  times[#times + 1] = now() - t_kill
  process.sleep(200)
end
table.sort(times)
result("restart_ms", times[(#times + 1) // 2])
result("restart_ms_max", times[#times])
p:signal("TERM")
process.select(process.new_selector():selecting_port(p), 30000)
