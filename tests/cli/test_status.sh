#!/usr/bin/env bash
# test_status: `arbor status` (text, --json, --processes) and `arbor eval`
# against a real host serving a real tree over its control socket.
# JSON is read back by python3's json module (not arbor's own decoder).
# Another user is uid nobody through setpriv, which needs root: without
# it that case is skipped with the reason.  Waits are for answers and
# lines, each bounded; nothing sleeps for luck.
# Usage: bash test_status.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_status.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

# Short paths: a Unix socket path has at most 107 bytes.
root=$(mktemp -d /tmp/arbst.XXXXXX) || exit 1
chmod 755 "$root" # uid nobody runs a copy of arbor from $root/bin
tmp=$root
io=$root
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$root"' EXIT
failed=0
count=0
sock=$root/s.sock
tree=$root/tree.lua
case_end() {
  if grep -q 'Sanitizer\|runtime error:' "$io/err" "$io"/cerr 2>/dev/null; then
    fail "the sanitizer reported an error"
  fi
  report_case
}
skip_case() {
  count=$((count + 1))
  echo "ok $count - $name # SKIP $1"
}

# save_tree [db|slow]: the service: counter (an actor), deaf (waits on a
# subject nobody sends to, so messages to its handle queue up) and, with
# db, a child whose start always fails; with slow, an actor whose start
# takes 100 ms.
save_tree() {
  local with_db=false with_slow=false
  [ "${1:-}" = db ] && with_db=true
  [ "${1:-}" = slow ] && with_slow=true
  cat >"$tree.new" <<EOF
local process = require "process"
local supervisor = require "supervisor"
local actor = require "actor"
local with_db, with_slow = $with_db, $with_slow
return supervisor.spec { name = "svc", strategy = "one_for_one",
  init = function(children)
    children = children
      :add(supervisor.worker(function()
        return actor.start(0, function(msg, n) return actor.continue(n + 1) end)
      end):id("counter"))
      :add(supervisor.worker(function()
        local ready = process.new_subject()
        process.spawn_link(function()
          process.send(ready, process.new_subject())
          io.write("deaf up\n")
          io.flush()
          process.receive(process.new_subject())
        end)
        return process.receive(ready, 2000)
      end):id("deaf"))
    if with_db then
      children = children:add(supervisor.worker(function()
        return nil, "no database at 127.0.0.1:5432"
      end):id("db"))
    end
    if with_slow then
      children = children:add(supervisor.worker(function()
        process.sleep(100)
        return actor.start(0, function(msg, n) return actor.continue(n) end)
      end):id("slow"))
    end
    return children
  end }
EOF
  mv "$tree.new" "$tree"
}

# ctl ARGS...: `arbor ARGS... --control $sock`; stdout in $io/cout,
# stderr in $io/cerr, exit status in $code.
ctl() {
  timeout 20 "$ARBOR" "$@" --control "$sock" >"$io/cout" 2>"$io/cerr" </dev/null
  code=$?
}

expect_code() {
  [ "$code" = "$1" ] ||
    fail "exit status $code, expected $1 (stdout: $(cat "$io/cout"); stderr: $(cat "$io/cerr"))"
}

# py FILE PYTHON: PYTHON runs with `j`, FILE's JSON; an assertion that
# fails (or a raise) fails the case.
py() {
  python3 - "$1" "$2" <<'PY' || fail "JSON check failed (above)"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    j = json.loads(text)
except ValueError as err:
    sys.exit("  not JSON (%s): %r" % (err, text[:300]))
try:
    exec(sys.argv[2])
except AssertionError as err:
    sys.exit("  check failed: %s\n  in: %s\n  JSON: %s" % (err, sys.argv[2], text[:2000]))
PY
}

# The host for every case (one host: each case leaves it serving).
save_tree
: >"$io/out"
: >"$io/err"
start_fifo run --control "$sock" "$tree"
up=0
if wait_line "deaf up"; then
  for _ in $(seq 100); do
    "$ARBOR" status --control "$sock" >/dev/null 2>&1 && { up=1; break; }
    sleep 0.05
  done
fi
if [ "$up" = 0 ]; then
  echo "not ok 1 - the host did not start"
  cat "$io/err"
  exit 1
fi

case_start "status --json: the host and the tree as one JSON object"
ctl status --json
expect_code 0
py "$io/cout" '
h, t = j["host"], j["tree"]
assert h["serving"] is True and h["script"].endswith("tree.lua"), h
assert h["pid"].startswith("<") and isinstance(h["os_pid"], int), h
assert h["memory"]["lua"] > 0 and h["memory"]["c"] > 0, h
assert h["file_differs"] is False and "reload" not in h, h
assert t["name"] == "svc" and t["strategy"] == "one_for_one", t
assert [c["id"] for c in t["children"]] == ["counter", "deaf"], t
for c in t["children"]:
    assert c["status"] == "running" and c["restarts"] == 0, c
    assert c["pid"].startswith("<") and c["uptime_ms"] >= 0, c
    assert "start_failure" not in c and "last_exit" not in c, c
assert "processes" not in j
'
case_end

case_start "status --processes: every process with its mailbox, memory and wait"
# Three messages to deaf's handle, which it never reads.
ctl eval 'local process = require "process"
local deaf = require("supervisor").which_children(root)[2].subject
for i = 1, 3 do process.send(deaf, i) end
return "sent"'
expect_code 0
[ "$(cat "$io/cout")" = '"sent"' ] || fail "eval printed '$(cat "$io/cout")'"
ctl status --processes
expect_code 0
cp "$io/cout" "$io/procs.txt"
grep -q '^PID  *NAME  *KIND  *STATE  *WAITING  *MSGS  *MEMORY  *CURRENT$' "$io/procs.txt" ||
  fail "no header line"
awk '$2 == "svc/deaf" && $4 == "waiting" && $5 == "receive" && $6 == 3 && $7 > 0 { ok = 1 }
     END { exit !ok }' "$io/procs.txt" ||
  fail "deaf: not waiting in receive with 3 messages: $(grep deaf "$io/procs.txt")"
awk '$2 == "svc/counter" && $5 == "receive" && $6 == 0 && / lua\/actor.lua:[0-9]+$/ { ok = 1 }
     END { exit !ok }' "$io/procs.txt" ||
  fail "counter row: $(grep counter "$io/procs.txt")"
awk '$2 == "svc" && $3 == "supervisor" && $5 == "select" { ok = 1 } END { exit !ok }' \
  "$io/procs.txt" || fail "svc row: $(grep ' svc ' "$io/procs.txt")"
grep -q '^<[0-9.]*> *main ' "$io/procs.txt" || fail "no row for main"
rows=$(grep -c '^<' "$io/procs.txt")
grep -q "^$rows processes\$" "$io/procs.txt" || fail "the count line does not say $rows"
ctl status --json --processes
expect_code 0
py "$io/cout" '
ps = j["processes"]
by = {p.get("name"): p for p in ps}
d = by["svc/deaf"]
assert d["messages"] == 3 and d["subject_messages"] == 3, d
assert d["waiting"] == "receive" and d["blocked_in"] == "process.receive", d
assert d["wait_sources"] == 1 and d["memory"] > 0 and d["current"].endswith("tree.lua:17"), d
assert by["svc"]["kind"] == "supervisor" and by["svc"]["trap_exit"] is True, by["svc"]
assert by["main"]["main"] is True, by["main"]
assert len({p["pid"] for p in ps}) == len(ps) == j["host"]["processes"], ps
'
case_end

case_start "a child's OS pid and STATUS text (arbor.annotate) show in status"
# What a command child publishes (the ports side), set here by eval.
ctl eval 'local deaf = require("supervisor").which_children(root)[2].pid
local annotate = require "arbor.annotate"
annotate.set(deaf, "os_pid", 4321)
annotate.set(deaf, "status_text", "ready: 2 workers")
return tostring(deaf)'
expect_code 0
deaf_pid=$(tr -d '"' <"$io/cout")
ctl status
expect_code 0
grep -q "^└─ deaf  *$deaf_pid  *running .*restarts 0  os pid 4321  status: ready: 2 workers\$" "$io/cout" ||
  fail "deaf's row: $(grep deaf "$io/cout")"
ctl status --json --processes
py "$io/cout" '
d = j["tree"]["children"][1]
assert d["os_pid"] == 4321 and d["status_text"] == "ready: 2 workers", d
p = [p for p in j["processes"] if p.get("name") == "svc/deaf"][0]
assert p["os_pid"] == 4321, p
'
ctl eval 'local deaf = require("supervisor").which_children(root)[2].pid
require("arbor.annotate").clear(deaf)'
expect_code 0
case_end

case_start "a child that fails to start: status says why, in text and JSON"
save_tree db
ctl reload
expect_code 0
grep -q 'failed to start db: no database at 127.0.0.1:5432' "$io/cout" ||
  fail "reload printed: $(cat "$io/cout")"
ctl status
expect_code 0
grep -q '^└─ db  *-  *stopped  *restarts 0  start failed: no database at 127.0.0.1:5432$' "$io/cout" ||
  fail "no start failure on db's row: $(cat "$io/cout")"
grep -q '^last reload: ok [0-9.]* m\?s ago: reload: .*failed to start db' "$io/cout" ||
  fail "no last reload line: $(cat "$io/cout")"
ctl status --json
py "$io/cout" '
db = j["tree"]["children"][2]
assert db["id"] == "db" and db["status"] != "running", db
assert db["start_failure"] == "no database at 127.0.0.1:5432", db
assert "pid" not in db, db
r = j["host"]["reload"]
assert r["result"] == "ok" and r["dry_run"] is False and r["ago_ms"] >= 0, r
assert j["host"]["file_differs"] is False, j["host"]
'
case_end

case_start "the last reload's failure and a file that differs from what runs"
echo 'return (' >>"$tree"
ctl reload
expect_code 1
ctl status
expect_code 0
grep -q "^last reload: FAILED [0-9.]* m\?s ago: reload failed: $tree:[0-9]*: " "$io/cout" ||
  fail "no failed reload line: $(cat "$io/cout")"
grep -q '^the script on disk differs from what runs' "$io/cout" ||
  fail "no file-differs line: $(cat "$io/cout")"
ctl status --json
py "$io/cout" '
r = j["host"]["reload"]
assert r["result"] == "error" and ":" in r["text"] and "tree.lua:" in r["text"], r
assert j["host"]["file_differs"] is True, j["host"]
'
save_tree
ctl reload
expect_code 0
ctl status --json
py "$io/cout" '
assert j["host"]["reload"]["result"] == "ok", j["host"]
assert j["host"]["file_differs"] is False, j["host"]
assert [c["id"] for c in j["tree"]["children"]] == ["counter", "deaf"], j["tree"]
'
case_end

case_start "eval prints what the chunk returns and prints, described"
ctl eval 'return 1 + 1, "two", {a = {b = 1}}, nil'
expect_code 0
[ "$(cat "$io/cout")" = $'2\n"two"\n{a = {b = 1}}\nnil' ] ||
  fail "eval printed '$(cat "$io/cout")'"
ctl eval 'print("hello", 42) return true'
expect_code 0
[ "$(cat "$io/cout")" = $'hello\t42\ntrue' ] || fail "eval printed '$(cat "$io/cout")'"
ctl eval 'x = 1'
expect_code 0
[ ! -s "$io/cout" ] || fail "a chunk that returns nothing printed '$(cat "$io/cout")'"
ctl eval 'return setmetatable({}, {__tostring = function() while true do end end})'
expect_code 0
[ -n "$(cat "$io/cout")" ] || fail "a looping __tostring gave no answer"
echo 'return 6 * 7' | timeout 10 "$ARBOR" eval --control "$sock" - >"$io/cout" 2>"$io/cerr"
code=$?
expect_code 0
[ "$(cat "$io/cout")" = 42 ] || fail "eval - printed '$(cat "$io/cout")'"
case_end

case_start "eval errors name the chunk's line; the host goes on"
ctl eval 'local t = nil
return t.x'
expect_code 1
[ ! -s "$io/cout" ] || fail "stdout: $(cat "$io/cout")"
head -1 "$io/cerr" | grep -q "^eval:2: attempt to index a nil value (local 't')$" ||
  fail "error: $(cat "$io/cerr")"
grep -q '^	eval:2: in main chunk$' "$io/cerr" || fail "no traceback line: $(cat "$io/cerr")"
ctl eval 'return ('
expect_code 1
grep -q "^eval:1: unexpected symbol near <eof>$" "$io/cerr" || fail "syntax: $(cat "$io/cerr")"
ctl eval 'error({code = 7})'
expect_code 1
grep -q "^{code = 7}$" "$io/cerr" || fail "table error: $(cat "$io/cerr")"
ctl eval 'os.exit(3)'
expect_code 1
grep -q "os.exit in eval would end the host" "$io/cerr" || fail "os.exit: $(cat "$io/cerr")"
ctl status
expect_code 0
case_end

case_start "eval --json gives the values and the output as JSON"
ctl eval --json 'print("out") return 1, "s", {1, 2}, nil, {k = true}'
expect_code 0
py "$io/cout" '
assert j == {"values": [1, "s", [1, 2], None, {"k": True}], "output": "out\n"}, j
'
ctl eval --json 'error("bad")'
expect_code 1
py "$io/cerr" '
assert j["error"] == "eval:1: bad" and "eval:1:" in j["traceback"], j
'
case_end

case_start "eval that loops or waits is stopped at its timeout; the host goes on"
ctl eval --timeout 0.3 'while true do end'
expect_code 1
grep -q "^eval: no answer within 300 ms; its process <[0-9.]*> was killed$" "$io/cerr" ||
  fail "loop: $(cat "$io/cerr")"
ctl eval --timeout 0.3 'require("process").sleep_forever()'
expect_code 1
grep -q "^eval: no answer within 300 ms" "$io/cerr" || fail "wait: $(cat "$io/cerr")"
ctl status --json --processes
expect_code 0
py "$io/cout" '
names = [p.get("name") for p in j["processes"]]
assert not any(n and n.startswith("eval") for n in names), names
assert len(j["processes"]) == 4, names
'
case_end

case_start "eval stuck where it cannot be preempted: the host ends it, then answers again"
# A gsub callback that loops holds the host until the runaway limit (5 s)
# ends its process; the client gives up first and says why.
ctl eval --timeout 0.2 'return string.gsub("x", ".", function() while true do end end)'
expect_code 1
grep -q "cannot be preempted" "$io/cerr" || fail "no hint: $(cat "$io/cerr")"
back=0
for _ in $(seq 100); do
  "$ARBOR" eval --control "$sock" 'return "back"' >"$io/cout" 2>/dev/null && { back=1; break; }
  sleep 0.1
done
[ "$back" = 1 ] && [ "$(cat "$io/cout")" = '"back"' ] || fail "the host did not answer again"
case_end

case_start "eval by another user is refused; the host goes on"
nobody_uid=$(id -u nobody 2>/dev/null)
if [ "$(id -u)" != 0 ] || [ -z "$nobody_uid" ] || ! command -v setpriv >/dev/null; then
  skip_case "needs root and setpriv to act as another user"
else
  mkdir -p "$root/bin" && cp "$ARBOR" "$root/bin/arbor" && chmod 755 "$root/bin" "$root/bin/arbor"
  chmod 666 "$sock" # so that only the host's peer check stands in the way
  setpriv --reuid="$nobody_uid" --regid="$(id -g nobody)" --clear-groups -- \
    "$root/bin/arbor" eval --control "$sock" 'return 1' >"$io/cout" 2>"$io/cerr"
  code=$?
  chmod 600 "$sock"
  expect_code 1
  [ ! -s "$io/cout" ] || fail "stdout: $(cat "$io/cout")"
  [ "$(cat "$io/cerr")" = "permission denied: uid $nobody_uid may not control this host (only root)" ] ||
    fail "stderr: $(cat "$io/cerr")"
  ctl status
  expect_code 0
  case_end
fi

case_start "eval on the wire: a short chunk is a bad request; 64 KiB, any bytes, work"
# Raw clients (tests/cli/ctlpeer.pl): what `arbor eval` never sends.
printf 'eval 10\nreturn' | timeout 20 perl ctlpeer.pl send "$sock" --shut >"$io/cout" 2>>"$io/cerr"
[ "$(cat "$io/cout")" = $'2\nbad request: the eval chunk ended after 6 of its 10 bytes' ] ||
  fail "short chunk: '$(cat "$io/cout")'"
printf 'eval 0\n' | timeout 20 perl ctlpeer.pl send "$sock" >"$io/cout" 2>>"$io/cerr"
[ "$(cat "$io/cout")" = $'2\nbad request: eval needs the chunk\'s length in bytes (1 to 65536), got \'0\'' ] ||
  fail "zero length: '$(cat "$io/cout")'"
printf 'eval 12 --json\n--\0\nreturn 1' | timeout 20 perl ctlpeer.pl send "$sock" >"$io/cout" 2>>"$io/cerr"
[ "$(cat "$io/cout")" = $'0\n{"output":"","values":[1]}' ] ||
  fail "NUL and newline in the chunk: '$(cat "$io/cout")'"
# The largest chunk: 64 KiB of comments, then one statement.
{ head -c 65527 /dev/zero | tr '\0' '-'; printf '\nreturn 7'; } >"$io/big.lua"
[ "$(wc -c <"$io/big.lua")" = 65536 ] || fail "the test's chunk is not 64 KiB"
timeout 20 "$ARBOR" eval --control "$sock" - <"$io/big.lua" >"$io/cout" 2>"$io/cerr"
code=$?
expect_code 0
[ "$(cat "$io/cout")" = 7 ] || fail "64 KiB chunk: '$(cat "$io/cout")'"
{ cat "$io/big.lua"; echo; } | timeout 20 "$ARBOR" eval --control "$sock" - >"$io/cout" 2>"$io/cerr"
code=$?
expect_code 2
grep -q "the chunk on stdin is too long (1 to 65536 bytes)" "$io/cerr" || fail "65537 bytes: $(cat "$io/cerr")"
ctl status
expect_code 0
case_end

case_start "a child restarted while status walks the tree: uptime from then, never negative"
save_tree slow
ctl reload
expect_code 0
# slow is terminated, then a process asks svc to restart it (100 ms in
# svc, which answers nothing meanwhile); once svc is in that start, the
# tree is walked: svc answers which_children after the restart, with
# slow's new started_at.
ctl eval 'local process = require "process"
local core = require "arbor.core"
local supervisor = require "supervisor"
local introspect = require "arbor.introspect"
local svc = process.subject_owner(root)
local before = tostring(supervisor.which_children(root)[3].pid)
assert(supervisor.terminate_child(root, "slow"))
process.spawn(function() assert(supervisor.restart_child(root, "slow")) end)
local t0 = core.now()
repeat
  process.sleep(1)
  local info = core.proc_info(svc)
until (info.state == "waiting" and info.blocked_in == process.sleep)
      or core.now() - t0 > 5000
local slow = introspect.tree(root).children[3]
return slow.id, slow.pid ~= before, slow.uptime_ms >= 0, slow.uptime_ms'
expect_code 0
{ read -r id; read -r restarted; read -r not_negative; read -r uptime; } <"$io/cout"
[ "$id" = '"slow"' ] && [ "$restarted" = true ] ||
  fail "the walk did not see slow restarted: $(cat "$io/cout" "$io/cerr")"
[ "$not_negative" = true ] || fail "slow's uptime after its restart: $uptime ms"
save_tree
ctl reload
expect_code 0
case_end

case_start "usage errors: eval without code, unknown options"
timeout 10 "$ARBOR" eval --control "$sock" >"$io/cout" 2>"$io/cerr"
code=$?
expect_code 2
grep -q "eval: give the Lua code to run" "$io/cerr" || fail "stderr: $(cat "$io/cerr")"
timeout 10 "$ARBOR" status --bogus --control "$sock" >"$io/cout" 2>"$io/cerr"
code=$?
expect_code 2
timeout 10 "$ARBOR" reload --json --control "$sock" >"$io/cout" 2>"$io/cerr"
code=$?
expect_code 2
case_end

case_start "the host stops in order afterwards, with nothing left behind"
"$ARBOR" stop --control "$sock" >/dev/null 2>&1
finish 5
[ "$rc" = 0 ] || fail "the host exited $rc after arbor stop"
case_end # (and the sanitizers' leak report, if any, is in $io/err now)
exit $failed
