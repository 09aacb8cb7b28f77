#!/usr/bin/env bash
# `arbor status` and arbor.json against hostile values: each case is a
# bug found by attacking them, kept so it stays fixed.  A real host on a
# real control socket; JSON is read back by python3's json module.
set -u
ARBOR=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cli_scratch
scripts=$here/scripts/status_hostile
sock=$tmp/s.sock

case_start "ids and reasons with escapes, newlines, 120 bytes: status shows them on one line"
: >"$io/err"
start_fifo run --control "$sock" "$scripts/tree.lua"
# Until it serves (5 s at most).
for _ in $(seq 100); do
  "$ARBOR" status --control "$sock" >/dev/null 2>&1 && break
  read -r -t 0.05 <> <(:) || true
done
"$ARBOR" eval --control "$sock" '
local supervisor, process = require "supervisor", require "process"
for _, c in ipairs(supervisor.which_children(root)) do
  if c.id == "liar" then
    process.exit(c.pid, "\27]0;owned\7\27[2J\nFAKE ROW")
  end
end' >"$tmp/eval" 2>&1 || fail "eval: $(cat "$tmp/eval")"
# Until liar has crashed once and runs again (5 s at most).
for _ in $(seq 100); do
  "$ARBOR" status --json --control "$sock" >"$tmp/json" 2>/dev/null &&
    python3 -c 'import json,sys
t = json.load(open(sys.argv[1]))["tree"]
liar = [c for c in t["children"] if c["id"] == "liar"][0]
sys.exit(0 if liar["restarts"] == 1 and liar["status"] == "running" else 1)' \
      "$tmp/json" && break
  read -r -t 0.05 <> <(:) || true
done
python3 -c 'import json,sys
t = json.load(open(sys.argv[1]))["tree"]
ids = [c["id"] for c in t["children"]]
assert ids[0] == "x" * 120 + "\x1b[31m\nred", ids
assert t["children"][1]["last_exit"].startswith("\x1b]0;owned"), t
' "$tmp/json" || fail "status --json does not give the ids and reason as they are"
"$ARBOR" status --control "$sock" >"$tmp/text" 2>"$tmp/cerr"
[ $? = 0 ] || fail "status exit status $? ($(cat "$tmp/cerr"))"
"$ARBOR" status --processes --control "$sock" >"$tmp/procs" 2>>"$tmp/cerr"
[ $? = 0 ] || fail "status --processes exit status $? ($(cat "$tmp/cerr"))"
grep -q $'\e' "$tmp/text" "$tmp/procs" && fail "an escape byte reached the terminal"
grep -q '^FAKE ROW' "$tmp/text" && fail "a reason drew a row of its own"
grep -q "x\{120\}\\\\x1b\[31m\\\\x0ared  *<0\.[0-9]*\.[0-9]*> *running" "$tmp/text" ||
  fail "the long id's row"
grep -q 'liar .* last exit: \\x1b\]0;owned\\x07\\x1b\[2J\\x0aFAKE ROW$' "$tmp/text" ||
  fail "liar's row"
"$ARBOR" stop --control "$sock" >/dev/null 2>&1
finish 10
[ "$rc" = 0 ] || fail "host exit status $rc"
report_case

case_start "eval: _G.os.exit and require('os').exit raise, as os.exit does; the host lives"
# They reached the real os.exit and ended the host at once (no shutdown,
# no answer: 'closed without answering').
: >"$io/err"
start_fifo run --control "$sock" "$scripts/tree.lua"
for _ in $(seq 100); do
  "$ARBOR" status --control "$sock" >/dev/null 2>&1 && break
  read -r -t 0.05 <> <(:) || true
done
for code in 'os.exit(3)' '_G.os.exit(3)' 'require("os").exit(3)' \
            'local o = require "os"; o.exit(true, true)'; do
  "$ARBOR" eval --control "$sock" "$code" >"$tmp/eval" 2>&1
  rc=$?
  [ $rc = 1 ] || fail "eval '$code': exit status $rc"
  grep -q "os.exit in eval would end the host" "$tmp/eval" ||
    fail "eval '$code' printed: $(cat "$tmp/eval")"
done
out=$("$ARBOR" eval --control "$sock" 'return require("os").time() > 0, _G.print == print, _G.string == string')
[ "$out" = $'true\ntrue\ntrue' ] || fail "the rest of os and _G: '$out'"
"$ARBOR" status --control "$sock" >/dev/null 2>&1 || fail "the host is gone"
"$ARBOR" stop --control "$sock" >/dev/null 2>&1
finish 10
[ "$rc" = 0 ] || fail "host exit status $rc"
report_case

case_start "json.encode: a number key and a string key of the same text are two keys"
"$ARBOR" "$scripts/json_keys.lua" >"$tmp/keys" 2>"$io/err" || fail "exit status"
python3 -c 'import json,sys
def no_repeat(pairs):
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), "a key twice: %r" % names
    return dict(pairs)
lines = open(sys.argv[1]).read().splitlines()
a = json.loads(lines[0], object_pairs_hook=no_repeat)
assert a == {"1": "str1", "2": "str2", "x": True, "1#2": "int1", "2#2": "int2"}, a
b = json.loads(lines[1], object_pairs_hook=no_repeat)
assert b == {"1.5": "str", "1.5#2": "taken", "1.5#3": "float"}, b
' "$tmp/keys" 2>>"$io/err" || fail "the keys: $(cat "$tmp/keys")"
report_case

exit $failed
