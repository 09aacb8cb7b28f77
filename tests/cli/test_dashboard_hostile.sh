#!/usr/bin/env bash
# arbor run --dashboard against hostile clients and hosts, beyond
# test_dashboard.sh: each case is a bug that was found by attacking the
# dashboard (docs/dashboard.md), kept so it stays fixed.  Real hosts,
# real sockets on 127.0.0.1; requests are written with bash's /dev/tcp.
set -u
ARBOR=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cli_scratch
tree="$here/scripts/dashboard/tree.lua"
export CRASH_PORT_FILE="$tmp/crash_port"

# start_dashboard SCRIPT: starts a host with --dashboard 0 and sets port
# and token from the line it prints.
start_dashboard() {
  start_fifo run --control "$tmp/control.sock" --dashboard 0 "$@"
  wait_line "dashboard: http://127.0.0.1:*/#token=*" || return 1
  local url=${last_line#dashboard: }
  port=${url#http://127.0.0.1:}; port=${port%%/*}
  token=${url#*#token=}
}

# request TEXT: sends TEXT (printf escapes) on a new connection, reads
# the answer until the server closes (10 s at most) into $tmp/answer;
# its status line in $status_line.
request() {
  exec 4<>/dev/tcp/127.0.0.1/"$port" || { status_line=; return 1; }
  # shellcheck disable=SC2059
  printf "$1" >&4
  timeout 10 cat <&4 >"$tmp/answer"
  exec 4<&-
  status_line=$(head -n 1 "$tmp/answer" | tr -d '\r')
}

# stop_host: POST /api/stop, then the host's exit within 10 s.
stop_host() {
  request "POST /api/stop HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nX-Arbor-Token: $token\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
  finish 10
  [ "$rc" = 0 ] || fail "host exit status $rc after /api/stop"
}

case_start "a Content-Length past 2^63: 413 naming it, no crash"
: >"$io/err"
if start_dashboard "$tree"; then
  host="Host: 127.0.0.1:$port"
  for n in 9223372036854775808 99999999999999999999999 \
           "$(printf '9%.0s' $(seq 300))"; do
    request "GET /api/tree HTTP/1.1\r\n$host\r\nContent-Length: $n\r\n\r\n"
    [ "$status_line" = "HTTP/1.1 413 Content Too Large" ] ||
      fail "Content-Length ${n:0:30}...: answered '$status_line'"
    grep -q "\"body of ${n:0:40} bytes; at most 65536\"" "$tmp/answer" ||
      fail "Content-Length ${n:0:30}...: the message does not name it"
  done
  request "GET /api/tree HTTP/1.1\r\n$host\r\nContent-Length: 65537\r\n\r\n"
  [ "$status_line" = "HTTP/1.1 413 Content Too Large" ] ||
    fail "Content-Length 65537 answered '$status_line'"
  request "GET /api/tree HTTP/1.1\r\n$host\r\nX-Arbor-Token: $token\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
  [ "$status_line" = "HTTP/1.1 200 OK" ] || fail "then /api/tree: '$status_line'"
  stop_host
  grep -q "CRASH REPORT" "$io/err" && fail "a connection process crashed"
fi
report_case

case_start "header fields of 4,000 ' \\t' pairs: parsed in linear time"
# Trimming a field with the pattern "(.-)[ \t]*$" backtracked over every
# run of blanks: each such 8 KiB request cost the host's one thread about
# 0.25 s (measured on an idle machine), from a client without a token.
# 40 of them, pipelined on one connection, must all be answered within
# 5 s: linear parsing takes milliseconds, the quadratic one over 10 s.
: >"$io/err"
if start_dashboard "$tree"; then
  python3 - "$port" <<'PY' || fail "40 crafted requests were not all answered within 5 s"
import socket, sys, time
port = int(sys.argv[1])
value = "a" + " \t" * 4000 + "b"
req = ("GET /nope HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Blanks: %s\r\n\r\n"
       % (port, value)).encode()
s = socket.create_connection(("127.0.0.1", port))
deadline = time.monotonic() + 5
s.sendall(req * 40)
got = b""
while got.count(b"HTTP/1.1 404 Not Found") < 40:
    left = deadline - time.monotonic()
    if left <= 0:
        sys.exit("%d of 40 answered" % got.count(b"HTTP/1.1 404"))
    s.settimeout(left)
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    if not data:
        sys.exit("closed after %d answers" % got.count(b"HTTP/1.1 404"))
    got += data
PY
  stop_host
fi
report_case

case_start "a host of 100,000 processes: the dashboard starts and answers"
# Reading and sorting them all used to run past the runaway limit in the
# hub (a table.sort comparator cannot be preempted) before it answered
# its supervisor, and a dashboard that does not start ends the host.
: >"$io/err"
export MANY_PROCESSES=100000
if start_dashboard "$here/scripts/dashboard_hostile/many.lua"; then
  grep -q "^spawned 100000$" "$io/out" || wait_line "spawned 100000" ||
    fail "the processes were not spawned"
  request "GET /api/processes HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nX-Arbor-Token: $token\r\nConnection: close\r\n\r\n"
  [ "$status_line" = "HTTP/1.1 200 OK" ] ||
    fail "/api/processes answered '$status_line'"
  procs=$(grep -o '"count":[0-9]*' "$tmp/answer" | tr -dc 0-9)
  [ "${procs:-0}" -gt 100000 ] || fail "count '$procs'"
  grep -q '"by_messages":\[{' "$tmp/answer" || fail "no busiest list"
  stop_host
  grep -q "runaway" "$io/err" && fail "a runaway in the host"
fi
unset MANY_PROCESSES
report_case

case_start "clients that pipeline GET / and never read: dropped after the send timeout"
# With every connection slot held by clients that send requests and never
# read the answers, the next client got 503 for as long as they stayed:
# the sends to them waited without limit.  Now a send that waits longer
# than the send timeout resets the connection and frees its slot.
: >"$io/err"
export ARBOR_DASHBOARD_MAX_CONNECTIONS=2 ARBOR_DASHBOARD_SEND_TIMEOUT_MS=300
if start_dashboard "$tree"; then
  python3 - "$port" <<'PY' || fail "the lockout did not end"
import socket, sys, time
port = int(sys.argv[1])
get = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port).encode()

def status(deadline):
    """The status line a fresh client gets for GET /api-less /, or None."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
        data = b""
        while b"\r\n" not in data:
            more = s.recv(4096)
            if not more:
                break
            data += more
        return data.split(b"\r\n", 1)[0].decode()
    except (socket.timeout, ConnectionError):
        return None
    finally:
        s.close()

# Two clients (the limit) pipeline 4,000 GET / each (megabytes of pages
# to send) and never read; they stay open to the end.
hostile = []
for _ in range(2):
    h = socket.create_connection(("127.0.0.1", port))
    h.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    h.setblocking(False)
    hostile.append([h, get * 4000])
deadline = time.monotonic() + 20
locked = served = False
while time.monotonic() < deadline and not served:
    for hs in hostile:
        if hs[1]:
            try:
                n = hs[0].send(hs[1])
                hs[1] = hs[1][n:]
            except (BlockingIOError, ConnectionError):
                pass
    line = status(deadline)
    if line == "HTTP/1.1 503 Service Unavailable":
        locked = True
    elif line == "HTTP/1.1 200 OK" and locked:
        served = True
    time.sleep(0.05)
if not locked:
    sys.exit("the hostile clients never filled the connection limit")
if not served:
    sys.exit("a normal client still got 503 after 20 s")
for hs in hostile:
    hs[0].close()
PY
  stop_host
  grep -q "CRASH REPORT" "$io/err" && fail "a connection process crashed"
fi
unset ARBOR_DASHBOARD_MAX_CONNECTIONS ARBOR_DASHBOARD_SEND_TIMEOUT_MS
report_case

exit $failed
