#!/usr/bin/env bash
# test_logger: arbor run --log-format, --log-level and --log-file as a
# user and an operator meet them.  JSON lines are read back by python3's
# json module; the log file is moved away as logrotate does and SIGUSR1
# makes the host open a new one, which the test waits for by polling the
# file with a deadline.
# Usage: bash test_logger.sh /path/to/arbor
set -u
export LC_ALL=C # grep must see invalid UTF-8 as bytes
ARBOR=${1:?usage: test_logger.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
case_end() { report_case; }

run() {
  timeout 30 "$ARBOR" "$@" >"$io/out" 2>"$io/err" </dev/null
  rc=$?
}

# check_json FILE PYTHON: every line of FILE must be a JSON object with a
# UTC millisecond time, a level and a pid; then PYTHON runs with `ev`, the
# list of events, and fails the case by raising.
check_json() {
  python3 - "$1" "$2" <<'PY' || fail "JSON check failed (above)"
import json, re, sys, datetime
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
ev = []
for i, line in enumerate(lines, 1):
    try:
        e = json.loads(line)
    except ValueError as err:
        sys.exit("  line %d is not JSON (%s): %r" % (i, err, line))
    if not isinstance(e, dict):
        sys.exit("  line %d is not an object" % i)
    for k in ("time", "level", "pid", "msg"):
        if k not in e:
            sys.exit("  line %d has no %s: %r" % (i, k, line))
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]):
        sys.exit("  line %d: time %r" % (i, e["time"]))
    t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    if abs((datetime.datetime.utcnow() - t).total_seconds()) > 120:
        sys.exit("  line %d: time %r is not now, in UTC" % (i, e["time"]))
    if e["level"] not in ("debug", "info", "notice", "warning", "error"):
        sys.exit("  line %d: level %r" % (i, e["level"]))
    if not re.fullmatch(r"<0\.\d+\.\d+>", e["pid"]):
        sys.exit("  line %d: pid %r" % (i, e["pid"]))
    ev.append(e)
def one(pred, what):
    found = [e for e in ev if pred(e)]
    if len(found) != 1:
        sys.exit("  %d events for %s in %r" % (len(found), what, ev))
    return found[0]
try:
    exec(sys.argv[2])
except AssertionError as err:
    sys.exit("  " + str(err) + "\n  events: " + json.dumps(ev, indent=1))
PY
}

case_start "--log-format json: user events, a crash and a supervisor report"
run run --log-format json scripts/logger_json.lua
[ "$rc" = 0 ] || fail "exit $rc, expected 0"
check_json "$io/err" '
e = one(lambda e: e["msg"] == "plain 1", "plain 1")
assert e["level"] == "info", e
assert not [e for e in ev if "hidden" in e["msg"]], "debug was filtered"
f = one(lambda e: e["msg"] == "fields", "the structured event")
assert f["level"] == "warning"
assert f["user"] == "ann" and f["n"] == 3 and f["ok"] is True, f
assert f["t"] == "{1, {x = \"y\"}}", f["t"]
assert f["cyc"] == "{self = <cycle>}", f["cyc"]
assert f["ctl"] == "a\nb\x00c\x1b[31m", repr(f["ctl"])
assert f["bad"] == "\ufffd\ufffdok", repr(f["bad"])
c = one(lambda e: e.get("kind") == "crash", "the crash")
assert c["level"] == "error"
assert "code = 7" in c["reason"] and "why = \"first run\"" in c["reason"], c
assert "table: 0x" not in c["reason"], c
assert c["traceback"].startswith("stack traceback:"), c
assert "logger_json.lua:" in c["traceback"], c
assert c["msg"] == "process %s crashed" % c["pid"], c
assert c["supervisor"] == "web" and c["child"] == "worker", c
s = one(lambda e: e.get("kind") == "supervisor", "the supervisor report")
assert s["supervisor"] == "web" and s["child"] == "worker", s
assert s["child_pid"] == c["pid"], (s, c)
assert s["restarts"] == 1, s
assert "code = 7" in s["reason"], s
assert "restarted worker" in s["msg"], s
one(lambda e: e["msg"] == "done", "done")
'
case_end

case_start "--log-level warning drops info; text lines start with the time"
run run --log-level warning scripts/logger_json.lua
[ "$rc" = 0 ] || fail "exit $rc, expected 0"
grep -q "plain 1" "$io/err" && fail "an info event at level warning"
grep -q " done$" "$io/err" && fail "an info event at level warning"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z warning <0\.[0-9]+\.[0-9]+> fields .*user=ann' "$io/err" ||
  fail "the warning line"
grep -Eq '^[0-9-]{10}T[0-9:.]{12}Z error   <0\.[0-9]+\.[0-9]+> =CRASH REPORT==== process <0\.[0-9]+\.[0-9]+> crashed \(child worker of web\)$' "$io/err" ||
  fail "the crash report's first line"
grep -q '^reason: {' "$io/err" || fail "the crash reason with its contents"
grep -Eq 'error   <0\.[0-9]+\.[0-9]+> =SUPERVISOR REPORT==== web ' "$io/err" ||
  fail "the supervisor report"
case_end

case_start "bad --log-format, --log-level, --log-file are usage errors"
run run --log-format xml scripts/ok.lua
[ "$rc" = 2 ] || fail "--log-format xml: exit $rc"
grep -q "log-format: 'xml' is not text or json" "$io/err" || fail "format message"
run run --log-level loud scripts/ok.lua
[ "$rc" = 2 ] || fail "--log-level loud: exit $rc"
grep -q "log-level: 'loud' is not" "$io/err" || fail "level message"
run run --log-file "$tmp/no/such/dir/log" scripts/ok.lua
[ "$rc" = 2 ] || fail "--log-file in a missing folder: exit $rc"
grep -q "log-file $tmp/no/such/dir/log: cannot open" "$io/err" || fail "file message"
case_end

# wait_for FILE PATTERN: polls FILE until a line matches (10 s at most).
wait_for() {
  local deadline=$((SECONDS + 10))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.02
  done
  fail "no '$2' in $1"
  return 1
}

case_start "--log-file is reopened on SIGUSR1 after logrotate moves it"
log=$tmp/app.log
rm -f "$io/out" "$io/err"; : >"$io/out"
start_fifo run --log-format json --log-file "$log" scripts/logger_ticker.lua
if wait_line "ready" && wait_for "$log" '"msg":"tick"'; then
  mv "$log" "$log.1"
  kill -USR1 "$pid"
  wait_for "$log" '"msg":"tick"'
  kill -TERM "$pid"
  finish 10
  [ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
  [ -s "$io/err" ] && fail "stderr not empty: $(head -3 "$io/err")"
  check_json "$log.1" 'assert [e for e in ev if e["msg"] == "tick"], "ticks before the move"'
  check_json "$log" 'assert [e for e in ev if e["msg"] == "tick"], "ticks after the reopen"'
  # No tick lost or written twice across the two files.
  python3 - "$log.1" "$log" <<'PY' || fail "ticks lost or doubled across the rotation"
import json, sys
ns = [json.loads(l)["n"] for f in sys.argv[1:] for l in open(f) if '"tick"' in l]
assert ns == list(range(1, len(ns) + 1)), ns
PY
fi
case_end

case_start "without --log-file, SIGUSR1 changes nothing"
rm -f "$io/out" "$io/err"; : >"$io/out"
start_fifo run scripts/logger_ticker.lua
if wait_line "ready" && wait_for "$io/err" "tick n=1"; then
  kill -USR1 "$pid"
  n=$(grep -c tick "$io/err")
  wait_for "$io/err" "tick n=$((n + 3))"
  kill -TERM "$pid"
  finish 10
  [ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
fi
case_end

case_start "--log-format json: a service's reload result is an event"
sock=$tmp/svc.sock
"$ARBOR" run --log-format json --control "$sock" scripts/logger_service.lua \
  >"$io/out" 2>"$io/err" </dev/null &
pid=$!
deadline=$((SECONDS + 10))
until "$ARBOR" status --control "$sock" >/dev/null 2>&1; do
  [ $SECONDS -ge $deadline ] && { fail "the service never answered"; break; }
  sleep 0.02
done
answer=$("$ARBOR" reload --control "$sock" 2>&1) || fail "reload failed: $answer"
"$ARBOR" stop --control "$sock" >/dev/null 2>&1 || fail "stop failed"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "exit $rc after stop"
[ -s "$io/out" ] && fail "the reload line went to stdout: $(cat "$io/out")"
ANSWER=$answer check_json "$io/err" '
import os
r = one(lambda e: e.get("kind") == "reload", "the reload")
assert r["level"] == "info" and r["code"] == 0, r
assert r["msg"] == os.environ["ANSWER"], (r["msg"], os.environ["ANSWER"])
'
case_end

case_start "--log-format json: main killed by a linked crash is an event, stderr stays JSON"
run run --log-format json scripts/main_killed.lua
[ "$rc" = 1 ] || fail "exit $rc, expected 1"
check_json "$io/err" '
c = one(lambda e: e.get("kind") == "crash", "the linked crash")
assert c["reason"] == "linked worker boom", c
x = one(lambda e: e.get("kind") == "exit", "main exited")
assert x["reason"] == "linked worker boom" and x["pid"] != c["pid"], x
'
case_end

exit $failed
