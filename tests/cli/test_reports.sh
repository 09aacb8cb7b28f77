#!/usr/bin/env bash
# test_reports: an actor's crash report shows its last message and state
# (bounded in size, as OTP's gen_server reports), in text and JSON, and a
# loop that returns a bad value is reported at the user's function;
# supervisors log OTP's progress reports ("child started") as debug
# events.  JSON lines are read back by python3's json module.
# Usage: bash test_reports.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_reports.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
case_end() {
  grep -q 'Sanitizer\|runtime error:' "$io/err" && fail "the sanitizer reported an error"
  report_case
}
script=$PWD/scripts/actor_crash.lua

run() {
  timeout 30 "$ARBOR" "$@" >"$io/out" 2>"$io/err" </dev/null
  rc=$?
}

case_start "text: last message and state after the reason"
run "$script"
[ "$rc" = 0 ] || fail "exit status $rc"
grep -q '^reason: .*actor_crash.lua:10: boom on crash$' "$io/err" || fail "no reason line"
grep -q '^last message: {"crash", 1, 2, {deep = true}}$' "$io/err" ||
  fail "no last message line"
grep -q '^state: {count = 2}$' "$io/err" || fail "no state line (the state before the crash)"
case_end

case_start "a loop that returns nil: the traceback shows the user's function"
grep -q 'actor_crash.lua:17 (loop function): actor loop must return actor.continue(state) or actor.stop(reason), got nil' "$io/err" ||
  fail "no message naming the loop"
grep -q $'^\t.*actor_crash.lua:17: in local \'loop\'$' "$io/err" ||
  fail "no traceback line at the user's loop"
grep -q '^last message: hello$' "$io/err" || fail "no last message"
grep -q '^state: the state$' "$io/err" || fail "no state"
case_end

case_start "a large state and message are cut, not printed whole"
big_state=$(grep '^state: {blob = ' "$io/err")
big_msg=$(grep '^last message: mmm' "$io/err")
[ -n "$big_state" ] && [ "${#big_state}" -lt 1100 ] || fail "state line is ${#big_state} bytes"
[ -n "$big_msg" ] && [ "${#big_msg}" -lt 1100 ] || fail "message line is ${#big_msg} bytes"
case $big_state in *'...(truncated)') ;; *) fail "the state is not marked as cut" ;; esac
case_end

case_start "JSON: last_message and state are fields of the crash event"
run --log-format json "$script"
[ "$rc" = 0 ] || fail "exit status $rc"
python3 - "$io/err" <<'PY' || fail "JSON check failed (above)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
crashes = [e for e in ev if e.get("kind") == "crash"]
assert len(crashes) == 3, crashes
a, b, c = crashes
assert a["last_message"] == '{"crash", 1, 2, {deep = true}}', a
assert a["state"] == "{count = 2}", a
assert b["last_message"] == "hello" and b["state"] == "the state", b
assert "actor_crash.lua:17: in local 'loop'" in b["traceback"], b
assert len(c["state"]) < 1100 and len(c["last_message"]) < 1100, c
assert c["state"].endswith("...(truncated)"), c
PY
case_end

case_start "progress reports: one per child started, debug events with their fields"
run --log-level debug scripts/progress.lua
[ "$rc" = 0 ] || fail "exit status $rc"
grep -q 'debug   <[0-9.]*> =PROGRESS REPORT==== app <[0-9.]*>$' "$io/err" || fail "no text report"
grep -q '^  child web started: <[0-9.]*>$' "$io/err" || fail "no 'child web started' line"
run --log-level debug --log-format json scripts/progress.lua
python3 - "$io/err" <<'PY' || fail "JSON check failed (above)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
prog = [e for e in ev if e.get("kind") == "progress"]
assert [e["child"] for e in prog] == ["db", "web"], prog
for e in prog:
    assert e["level"] == "debug" and e["supervisor"] == "app", e
    assert e["child_pid"].startswith("<") and e["msg"].startswith("child "), e
PY
run scripts/progress.lua
[ "$rc" = 0 ] || fail "exit status $rc"
[ ! -s "$io/err" ] || fail "at the default level (info) progress reports show: $(cat "$io/err")"
case_end

exit $failed
