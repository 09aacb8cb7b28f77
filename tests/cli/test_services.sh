#!/usr/bin/env bash
# test_services: examples/services/services.lua runs as the README says:
# the HTTP server (an OS process, supervised with supervisor.command)
# answers, `arbor status` shows its OS pid, a server that stops answering
# (SIGSTOP) is replaced by the health worker through terminate_child and
# restart_child, and `arbor stop` leaves no OS process behind.  The
# server is arbor's own examples/http_hello.lua (SERVICES_HTTP=arbor), so
# no Python is needed.
# Usage: bash test_services.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_services.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
: >"$io/out"
: >"$io/err"
sock=$tmp/ctl.sock
example=$(cd ../../examples/services && pwd)/services.lua

os_pid() { "$ARBOR" status --control "$sock" | sed -n 's/.* http .*os pid \([0-9]*\).*/\1/p'; }

case_start "the server answers and status shows its OS pid"
port=$("$ARBOR" scripts/free_port.lua)
SERVICES_HTTP=arbor SERVICES_CHECK_MS=100 SERVICES_PORT=$port \
  start_fifo run --control "$sock" "$example"
first=
if wait_line "health: http answering on port $port"; then
  "$ARBOR" status --control "$sock" >"$tmp/status" 2>&1
  grep -q '^root <' "$tmp/status" || fail "no root line in status"
  grep -q 'health .*running' "$tmp/status" || fail "health not running"
  first=$(os_pid)
  [ -n "$first" ] && [ -e "/proc/$first" ] || fail "no running OS pid for http: $(cat "$tmp/status")"
fi
report_case

case_start "a server that stops answering is replaced"
second=
if [ -n "$first" ]; then
  kill -STOP "$first"
  wait_line "health: restarting http" && wait_line "health: http restarted" &&
    wait_line "health: http answering on port $port"
  second=$(os_pid)
  [ -n "$second" ] && [ "$second" != "$first" ] || fail "OS pid still $second"
else
  fail "no server to stop"
fi
report_case

case_start "arbor stop: exit 0, no OS process left"
"$ARBOR" stop --control "$sock" >/dev/null 2>&1 || fail "arbor stop failed"
finish 20
[ "$rc" = 0 ] || fail "exit status $rc"
for p in $first $second; do
  for _ in $(seq 200); do [ -e "/proc/$p" ] || break; sleep 0.02; done
  [ -e "/proc/$p" ] && { fail "pid $p left"; kill -KILL "$p"; }
done
report_case

case_start "status shows a notify child's OS pid and last STATUS= text"
if [ -z "${ARBOR_NOTIFY_SEND:-}" ]; then
  fail "ARBOR_NOTIFY_SEND is not set (tests/CMakeLists.txt sets it)"
else
  : >"$io/out"
  sock2=$tmp/ctl2.sock
  start_fifo run --control "$sock2" scripts/notify_tree.lua
  line=
  for _ in $(seq 200); do
    line=$("$ARBOR" status --control "$sock2" 2>/dev/null | grep ' svc ')
    [[ $line == *"status: serving 3 clients"* ]] && break
    sleep 0.05
  done
  [[ $line == *"status: serving 3 clients"* ]] || fail "no STATUS text: $line"
  svc_pid=$(echo "$line" | sed -n 's/.*os pid \([0-9]*\).*/\1/p')
  [ -n "$svc_pid" ] && [ -e "/proc/$svc_pid" ] || fail "no running OS pid: $line"
  "$ARBOR" stop --control "$sock2" >/dev/null 2>&1 || fail "arbor stop failed"
  finish 20
  [ "$rc" = 0 ] || fail "exit status $rc"
  [ -n "$svc_pid" ] && [ -e "/proc/$svc_pid" ] && fail "pid $svc_pid left"
fi
report_case

exit "$failed"
