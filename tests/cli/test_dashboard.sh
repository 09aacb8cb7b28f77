#!/usr/bin/env bash
# arbor run --dashboard: the HTTP API, the event stream, tokens and
# hostile clients, through the built binary and real sockets.  The HTTP
# checks are tests/cli/scripts/dashboard/client.lua (run by arbor, on
# net); this file starts the hosts, and checks the command line, the
# token file and the host's exit.
set -u
ARBOR=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cli_scratch
tree="$here/scripts/dashboard/tree.lua"
client="$here/scripts/dashboard/client.lua"
export CRASH_PORT_FILE="$tmp/crash_port"
export ARBOR_DASHBOARD_HEADER_TIMEOUT_MS=800
export ARBOR_DASHBOARD_IDLE_TIMEOUT_MS=600
export ARBOR_DASHBOARD_MAX_CONNECTIONS=6

# wait_file PATH: until it exists (5 s at most).
wait_file() {
  local i
  for i in $(seq 100); do [ -s "$1" ] && return 0; read -r -t 0.05 <> <(:) || true; done
  return 1
}

case_start "usage errors: a bad address, a token file without --dashboard"
"$ARBOR" run --dashboard 1.2.3.4: "$tree" >"$io/out" 2>"$io/err"
[ $? = 2 ] || fail "exit status for a bad address"
grep -q "is not \[HOST:\]PORT" "$io/err" || fail "message for a bad address"
"$ARBOR" run --dashboard 70000 "$tree" >"$io/out" 2>"$io/err"
[ $? = 2 ] || fail "a port above 65535"
"$ARBOR" run --dashboard-token-file /x "$tree" >"$io/out" 2>"$io/err"
[ $? = 2 ] && grep -q "needs --dashboard" "$io/err" || fail "token file alone"
report_case

case_start "a script that is not a service: exit 1, naming --dashboard"
"$ARBOR" run --dashboard 0 "$here/scripts/ok.lua" >"$io/out" 2>"$io/err"
[ $? = 1 ] || fail "exit status"
grep -q "ok.lua: --dashboard needs a script that returns a supervisor.spec value" \
  "$io/err" || fail "message"
report_case

case_start "a token file too short: exit 1 before the tree starts"
printf 'short\n' >"$tmp/short"
chmod 600 "$tmp/short"
: >"$io/err"
"$ARBOR" run --dashboard 0 --dashboard-token-file "$tmp/short" "$tree" \
  >"$io/out" 2>>"$io/err" </dev/null
[ $? = 1 ] || fail "exit status"
grep -q "token must be 16" "$io/err" || fail "message"
[ -e "$CRASH_PORT_FILE" ] && fail "the tree started"
report_case

case_start "the API, the event stream, tokens and hostile clients"
: >"$io/err"
start_fifo run --dashboard 0 "$tree"
if wait_line "dashboard: http://127.0.0.1:*/#token=*"; then
  url=${last_line#dashboard: }
  port=${url#http://127.0.0.1:}; port=${port%%/*}
  token=${url#*#token=}
  [ ${#token} = 32 ] || fail "token of ${#token} characters"
  wait_file "$CRASH_PORT_FILE" || fail "the victim did not start"
  "$ARBOR" "$client" "$port" "$token" "$CRASH_PORT_FILE" \
    "$ARBOR_DASHBOARD_HEADER_TIMEOUT_MS" "$ARBOR_DASHBOARD_IDLE_TIMEOUT_MS" \
    "$ARBOR_DASHBOARD_MAX_CONNECTIONS" >"$tmp/client.out" 2>&1
  crc=$?
  sed 's/^/  | /' "$tmp/client.out"
  [ $crc = 0 ] || fail "client cases failed (exit $crc)"
  kill -0 "$pid" 2>/dev/null || fail "the host died"
  # POST /api/stop with the token: the host shuts down in order, exit 0.
  exec 4<>/dev/tcp/127.0.0.1/"$port"
  printf 'POST /api/stop HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nX-Arbor-Token: %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' \
    "$port" "$token" >&4
  IFS= read -r -t 5 status_line <&4
  exec 4<&-
  [[ $status_line == "HTTP/1.1 200 OK"* ]] || fail "stop answered '$status_line'"
  finish 10
  [ "$rc" = 0 ] || fail "host exit status $rc after /api/stop"
fi
report_case

case_start "a token file readable by group or others: refused, naming file and mode"
printf '0123456789abcdef-from-a-file\n' >"$tmp/open_token"
rm -f "$CRASH_PORT_FILE"
for mode in 640 604 644; do
  chmod "$mode" "$tmp/open_token"
  : >"$io/err"
  "$ARBOR" run --dashboard 0 --dashboard-token-file "$tmp/open_token" "$tree" \
    >"$io/out" 2>>"$io/err" </dev/null
  [ $? = 1 ] || fail "mode $mode: exit status"
  grep -q "dashboard token file $tmp/open_token has mode 0$mode" "$io/err" ||
    fail "mode $mode: message: $(head -c 300 "$io/err")"
  [ -e "$CRASH_PORT_FILE" ] && fail "mode $mode: the tree started"
done
ln -s "$tmp/open_token" "$tmp/token_link"
chmod 600 "$tmp/open_token"
: >"$io/err"
"$ARBOR" run --dashboard 0 --dashboard-token-file "$tmp/token_link" "$tree" \
  >"$io/out" 2>>"$io/err" </dev/null
[ $? = 1 ] || fail "symlink: exit status"
grep -q "token_link is a symbolic link" "$io/err" || fail "symlink: message"
report_case

case_start "a token file: its token works, the URL does not show it"
printf '  0123456789abcdef-from-a-file \n' >"$tmp/token"
chmod 600 "$tmp/token"
rm -f "$CRASH_PORT_FILE"
: >"$io/err"
ARBOR_DASHBOARD_TOKEN_FILE="$tmp/token" start_fifo run --dashboard 127.0.0.1:0 "$tree"
if wait_line "dashboard: http://127.0.0.1:*/"; then
  [[ $last_line == *token* ]] && fail "the token was printed: $last_line"
  url=${last_line#dashboard: }
  port=${url#http://127.0.0.1:}; port=${port%%/*}
  exec 4<>/dev/tcp/127.0.0.1/"$port"
  printf 'GET /api/tree HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nX-Arbor-Token: 0123456789abcdef-from-a-file\r\nConnection: close\r\n\r\n' "$port" >&4
  IFS= read -r -t 5 status_line <&4
  exec 4<&-
  [[ $status_line == "HTTP/1.1 200 OK"* ]] || fail "file token answered '$status_line'"
  kill -TERM "$pid"
  finish 10
  [ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
fi
report_case

exit $failed
