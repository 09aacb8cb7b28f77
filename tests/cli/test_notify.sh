#!/usr/bin/env bash
# test_notify: arbor speaks systemd's notification protocol to a fake
# $NOTIFY_SOCKET (notify_sink.pl, a datagram socket in a temp folder):
# READY=1 once the root tree is up, RELOADING=1 (with MONOTONIC_USEC) and
# READY=1 around each reload with STATUS= saying how it went, STOPPING=1
# when the ordered shutdown begins, WATCHDOG=1 at half of WATCHDOG_USEC
# (only when WATCHDOG_PID is unset or ours); a bad NOTIFY_SOCKET is
# named and ignored.  Every wait is for a datagram or a line, bounded.
# Usage: bash test_notify.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_notify.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
here=$PWD
. ./lib.sh

tmp=$(mktemp -d /tmp/arbnotify.XXXXXX) || exit 1
pid= sink=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$sink" ] && kill "$sink" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
count=0

new_case() {
  case_start "$1"
  io=$tmp/c$((count + 1))
  mkdir -p "$io"
  : >"$io/out"
  : >"$io/err"
  : >"$io/got"
}

case_end() {
  [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; finish 1; }
  stop_sink
  grep -q 'Sanitizer\|runtime error:' "$io/err" \
    && fail "the sanitizer reported an error"
  if [ "$case_failed" = 1 ]; then
    echo "  --- datagrams:"; sed 's/^/  | /' "$io/got"
  fi
  report_case
}

# start_sink NAME: the fake systemd socket at NAME (a path, or @abstract);
# its datagrams are read through fd 4.
start_sink() {
  mkfifo "$io/sinkfifo"
  perl "$here/notify_sink.pl" "$1" >"$io/sinkfifo" 2>>"$io/err" &
  sink=$!
  exec 4<"$io/sinkfifo"
  local line
  IFS= read -r -t 5 line <&4
  [ "$line" = listening ] || fail "the sink did not start: '$line'"
}

stop_sink() {
  if [ -n "$sink" ]; then
    kill "$sink" 2>/dev/null
    wait "$sink" 2>/dev/null
    exec 4<&-
    sink=
  fi
}

# next_datagram: the next datagram (fields joined by '|') into $dg,
# skipping WATCHDOG=1 pings unless $1 is "all"; 5 s at most.
next_datagram() {
  while :; do
    dg=
    if ! IFS= read -r -t 5 dg <&4; then
      fail "no datagram within 5 s (last: '$dg')"
      return 1
    fi
    echo "$dg" >>"$io/got"
    [ "${1:-}" != all ] && [ "$dg" = WATCHDOG=1 ] && continue
    return 0
  done
}

# expect_datagram GLOB: the next datagram matches GLOB.
expect_datagram() {
  next_datagram "${2:-}" || return 1
  # shellcheck disable=SC2053
  [[ $dg == $1 ]] || fail "datagram '$dg', expected '$1'"
}

# A service of two workers; $1 is a value the first worker prints, so an
# edit restarts it.
service() {
  cat >"$io/svc.lua" <<LUA
local process = require "process"
local supervisor = require "supervisor"
local function worker(id, value)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      print("start " .. id .. " " .. value)
      process.send(ready, process.new_subject())
      process.sleep_forever()
    end)
    return process.receive(ready, 2000)
  end):id(id)
end
return supervisor.spec {
  name = "svc", strategy = "one_for_one",
  init = function(children)
    return children:add(worker("a", $1)):add(worker("b", 0))
  end,
}
LUA
}

new_case "READY, then RELOADING and READY around reloads, then STOPPING"
start_sink "$io/notify.sock"
service 1
NOTIFY_SOCKET=$io/notify.sock start_fifo run --control "$io/ctl.sock" "$io/svc.lua"
expect_datagram "READY=1|STATUS=running 2 children"
service 2
"$ARBOR" reload --control "$io/ctl.sock" >>"$io/out" 2>>"$io/err" \
  || fail "arbor reload failed"
expect_datagram "RELOADING=1|MONOTONIC_USEC=[0-9]*|STATUS=reloading $io/svc.lua"
mono=${dg#*MONOTONIC_USEC=}; mono=${mono%%|*}
[[ $mono =~ ^[0-9]+$ ]] && [ "$mono" -gt 0 ] \
  || fail "MONOTONIC_USEC='$mono' is not a positive number"
expect_datagram "READY=1|STATUS=reload: changed a; restarted a"
# A reload that fails: READY again (the old tree goes on), saying why.
echo 'return {' >"$io/svc.lua"
"$ARBOR" reload --control "$io/ctl.sock" >>"$io/out" 2>>"$io/err" \
  && fail "a broken script reloaded"
expect_datagram "RELOADING=1|MONOTONIC_USEC=*"
expect_datagram "READY=1|STATUS=reload failed: *svc.lua:*"
# A dry run changes nothing and tells systemd nothing.
"$ARBOR" reload --dry-run --control "$io/ctl.sock" >>"$io/out" 2>>"$io/err"
kill -TERM "$pid"
expect_datagram "STOPPING=1|STATUS=stopping"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM, expected 0"
[ "$(grep -c . "$io/got")" = 6 ] || fail "expected 6 datagrams"
case_end

new_case "an abstract socket (@name) works too"
abstract="@arbor-test-notify-$$-$RANDOM"
start_sink "$abstract"
service 1
NOTIFY_SOCKET=$abstract start_fifo run --control "$io/ctl.sock" "$io/svc.lua"
expect_datagram "READY=1|STATUS=running 2 children"
"$ARBOR" stop --control "$io/ctl.sock" >>"$io/out" 2>>"$io/err" \
  || fail "arbor stop failed"
expect_datagram "STOPPING=1|STATUS=stopping"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc after stop, expected 0"
case_end

new_case "WATCHDOG=1 pings at half of WATCHDOG_USEC"
start_sink "$io/notify.sock"
service 1
# 40 ms: a ping every 20 ms; ten pings must come (5 s at most each).
NOTIFY_SOCKET=$io/notify.sock WATCHDOG_USEC=40000 \
  start_fifo run --control "$io/ctl.sock" "$io/svc.lua"
expect_datagram "READY=1|STATUS=running 2 children" all
for i in 1 2 3 4 5 6 7 8 9 10; do
  expect_datagram "WATCHDOG=1" all || break
done
kill -TERM "$pid"
expect_datagram "STOPPING=1|STATUS=stopping"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM, expected 0"
case_end

new_case "no pings when WATCHDOG_PID names another process"
start_sink "$io/notify.sock"
service 1
# A ping every millisecond if it were ours; a reload round trip and a
# stop take many milliseconds, and no WATCHDOG=1 may come in between.
NOTIFY_SOCKET=$io/notify.sock WATCHDOG_USEC=2000 WATCHDOG_PID=1 \
  start_fifo run --control "$io/ctl.sock" "$io/svc.lua"
expect_datagram "READY=1|STATUS=running 2 children" all
service 2
"$ARBOR" reload --control "$io/ctl.sock" >>"$io/out" 2>>"$io/err"
expect_datagram "RELOADING=1|*" all
expect_datagram "READY=1|*" all
kill -TERM "$pid"
expect_datagram "STOPPING=1|STATUS=stopping" all
finish 10
case_end

new_case "the variables are read once and taken out of the environment"
cat >"$io/env.lua" <<'LUA'
local notify = require "arbor.notify"
print("socket=" .. tostring(notify.socket()))
print("watchdog=" .. notify.watchdog())
print("env=" .. tostring(os.getenv("NOTIFY_SOCKET")) .. ","
      .. tostring(os.getenv("WATCHDOG_USEC")))
print("status=" .. tostring(notify.status("line one\nline two")))
LUA
start_sink "$io/notify.sock"
NOTIFY_SOCKET=$io/notify.sock WATCHDOG_USEC=60000000 \
  timeout 10 "$ARBOR" "$io/env.lua" >"$io/out" 2>>"$io/err"
rc=$?
[ "$rc" = 0 ] || fail "exit status $rc, expected 0"
grep -qxF "socket=$io/notify.sock" "$io/out" || fail "notify.socket() is wrong"
grep -qxF "watchdog=60000000" "$io/out" || fail "notify.watchdog() is wrong"
grep -qxF "env=nil,nil" "$io/out" || fail "the variables are still set"
grep -qxF "status=true" "$io/out" || fail "notify.status did not send"
# Newlines in a status would start new fields: they become spaces.
expect_datagram "STATUS=line one line two"
case_end

new_case "not under systemd: nothing is sent, nothing fails"
cat >"$tmp/plain.lua" <<'LUA'
local notify = require "arbor.notify"
print("ready=" .. tostring(notify.ready("x")) .. " socket="
      .. tostring(notify.socket()))
LUA
env -u NOTIFY_SOCKET timeout 10 "$ARBOR" "$tmp/plain.lua" >"$io/out" 2>>"$io/err"
rc=$?
[ "$rc" = 0 ] || fail "exit status $rc, expected 0"
grep -qxF "ready=false socket=nil" "$io/out" || fail "expected ready=false socket=nil"
case_end

new_case "a bad NOTIFY_SOCKET or WATCHDOG_USEC is named, and the host runs on"
for bad in "NOTIFY_SOCKET=relative/path|NOTIFY_SOCKET='relative/path' is neither an absolute path nor an abstract '@name'" \
           "NOTIFY_SOCKET=/$(printf 'x%.0s' $(seq 120))|does not fit a socket address" \
           "WATCHDOG_USEC=soon|WATCHDOG_USEC='soon' is not a positive whole number of microseconds"; do
  assign=${bad%%|*} message=${bad#*|}
  : >"$io/err"
  env NOTIFY_SOCKET="$io/notify.sock" "$assign" \
    timeout 10 "$ARBOR" "$tmp/plain.lua" >"$io/out" 2>>"$io/err"
  rc=$?
  [ "$rc" = 0 ] || fail "$assign: exit status $rc, expected 0"
  grep -qF -- "$message" "$io/err" || fail "$assign: stderr lacks \"$message\""
  grep -qF "; not notifying systemd" "$io/err" || fail "$assign: no 'not notifying systemd'"
  grep -qxF "ready=false socket=nil" "$io/out" || fail "$assign: expected ready=false"
done
case_end

new_case "a socket nobody listens on: one warning, the host runs on"
NOTIFY_SOCKET=$io/nobody.sock timeout 10 "$ARBOR" "$tmp/plain.lua" \
  >"$io/out" 2>"$io/err"
rc=$?
[ "$rc" = 0 ] || fail "exit status $rc, expected 0"
grep -qF "arbor: cannot notify systemd at $io/nobody.sock: " "$io/err" \
  || fail "no warning naming the socket"
grep -qx "ready=nil socket=$io/nobody.sock" "$io/out" \
  || fail "expected ready=nil"
case_end

exit $failed
