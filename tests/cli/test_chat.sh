#!/usr/bin/env bash
# test_chat: examples/chat/server.lua runs as a service (arbor run
# --watch) and serves real TCP clients (scripts/chat_clients.lua: a room's
# members see each other's lines, another room hears none of them, a
# session crashed on request drops that connection only); SIGTERM stops
# it with status 0.
# Usage: bash test_chat.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_chat.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
case_end() { report_case; }

case_start "two clients in a room chat; a crashed session drops only its connection"
: >"$io/out"; : >"$io/err"
port=$("$ARBOR" scripts/free_port.lua)
start_fifo run --watch --control "$tmp/ctl.sock" ../../examples/chat/server.lua "$port"
wait_line "chat: 4 acceptors on 127.0.0.1:$port"
if timeout 30 "$ARBOR" scripts/chat_clients.lua "$port" >"$tmp/clients" 2>&1; then
  grep -q "^chat ok$" "$tmp/clients" || fail "clients: $(cat "$tmp/clients")"
else
  fail "clients failed: $(cat "$tmp/clients")"
fi
grep -q "session of bob crashed on request" "$io/err" ||
  fail "no crash report for bob's session"
kill -TERM "$pid"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc"
case_end

exit "$failed"
