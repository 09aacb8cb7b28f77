#!/usr/bin/env bash
# test_live: live editing end to end -- a script that returns a
# supervisor.spec value is served; `arbor reload`, SIGHUP and --watch
# apply the difference; `arbor status` and `arbor stop` reach the host
# over its control socket.
# Usage: bash test_live.sh /path/to/arbor
#
# Each case runs in a fresh folder under /tmp (short socket paths) with
# its own --control socket and script.  Workers print "start ID VALUE"
# when they start and "stop ID" when told to shut down; restarts are
# asserted through the pids that `arbor status` lists.  The host's stdout
# is read through a fifo (fd 3): the test waits for lines, never for time.
set -u
ARBOR=${1:?usage: test_live.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./live_lib.sh

new_case "an unchanged reload is a no-op"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(abc 1)"
  reload_ok "reload: no changes"
  reload_ok "reload: no changes"
  snap after
  same_pids a b c
  [ "$(grep -c '^start ' "$d/out")" = 3 ] || fail "a child started again"
  stop_host
fi
case_end

new_case "rest_for_one: a changed constant restarts the child and later ones"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(abc 2)"
  reload_ok "reload: changed b; restarted b, c"
  snap after
  same_pids a
  new_pids b c
  grep -qx 'start b 2' "$d/out" || fail "b did not start with its new value"
  stop_host
fi
case_end

new_case "one_for_one: a changed constant restarts only that child"
if serve "$(abc 1 one_for_one)"; then
  snap before
  save "$d/tree.lua" "$(abc 2 one_for_one)"
  reload_ok "reload: changed b; restarted b"
  snap after
  same_pids a c
  new_pids b
  stop_host
fi
case_end

new_case "one_for_all: a changed constant restarts every child"
if serve "$(abc 1 one_for_all)"; then
  snap before
  save "$d/tree.lua" "$(abc 2 one_for_all)"
  reload_ok "reload: changed b; restarted a, b, c"
  snap after
  new_pids a b c
  stop_host
fi
case_end

new_case "an added child starts in its place; the others keep running"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(tree rest_for_one \
    ':add(w("a", 1)):add(w("b", 1)):add(w("d", 1)):add(w("c", 1))')"
  reload_ok "reload: added d"
  snap after
  ids_are a b d c
  same_pids a b c
  new_pids d
  stop_host
fi
case_end

new_case "a removed child is shut down; the others keep running"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(tree rest_for_one ':add(w("a", 1)):add(w("c", 1))')"
  reload_ok "reload: removed b"
  snap after
  ids_are a c
  same_pids a c
  grep -qx 'stop b' "$d/out" || fail "b was not shut down before the reload line"
  stop_host
fi
case_end

new_case "a reordered child is restarted in its new place"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(tree rest_for_one \
    ':add(w("a", 1)):add(w("c", 1)):add(w("b", 1))')"
  # As many children as possible keep their place: a and b (of the two
  # sets as large, {a, c} and {a, b}, the one that ends latest).
  reload_ok "reload: added c; removed c"
  snap after
  ids_are a c b
  same_pids a b
  new_pids c
  stop_host
fi
case_end

new_case "a nested spec edited deep inside restarts only that inner child"
if serve "$(nested 1)"; then
  snap before
  save "$d/tree.lua" "$(nested 2)"
  reload_ok "reload: changed n/m/y; restarted n/m/y"
  snap after
  ids_are a n x m y z c
  same_pids a n x m z c
  new_pids y
  grep -qx 'start y 2' "$d/out" || fail "y did not start with its new value"
  stop_host
fi
case_end

new_case "a syntax error changes nothing and prints file:line:"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "local broken = = 1
$(abc 2)"
  reload_fails "reload failed: *tree.lua:1: *"
  snap after
  same_pids a b c
  grep -q 'tree.lua:1:' "$d/err" || fail "the host did not print file:line:"
  # The host goes on with the old tree: a fixed file reloads against it.
  save "$d/tree.lua" "$(abc 2)"
  reload_ok "reload: changed b; restarted b, c"
  stop_host
fi
case_end

new_case "a raising script or an invalid tree changes nothing"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "error('boom while loading')
$(abc 2)"
  reload_fails "reload failed: *tree.lua:1: boom while loading"
  save "$d/tree.lua" "$(tree rest_for_one ':add(w("a", 2)):add(w("a", 3))')"
  reload_fails "reload failed: *tree.lua:*: *duplicate child id*"
  save "$d/tree.lua" "$(tree rest_for_one ':add(w("a", 2)):add((function() error("init boom") end)())')"
  reload_fails "reload failed: *tree.lua:*: init boom"
  save "$d/tree.lua" "return 42"
  reload_fails "reload failed: *not a supervisor.spec value*"
  snap after
  same_pids a b c
  stop_host
  [ "$(grep -c '^start ' "$d/out")" = 3 ] || fail "a child started again"
fi
case_end

new_case "a module required from the script's folder is reloaded"
save "$d/conf.lua" 'return { B = 1 }'
if serve "${PRELUDE}local conf = require \"conf\"
return supervisor.spec { init = function(c)
  return c:add(w(\"a\", 1)):add(w(\"b\", conf.B)):add(w(\"c\", 1))
end }"; then
  snap before
  reload_ok "reload: no changes"
  save "$d/conf.lua" 'return { B = 7 }'
  reload_ok "reload: changed b; restarted b, c"
  snap after
  same_pids a
  new_pids b c
  grep -qx 'start b 7' "$d/out" || fail "b did not see the module's new value"
  stop_host
fi
case_end

new_case "--watch sees a save by rename"
if serve "$(abc 1)" --watch; then
  snap before
  save "$d/tree.lua" "$(abc 2)"
  if wait_line 'reload: *'; then
    [ "$last_line" = "reload: changed b; restarted b, c" ] ||
      fail "the watcher's reload printed '$last_line'"
  fi
  snap after
  same_pids a
  new_pids b c
  stop_host
fi
case_end

new_case "--watch turns a burst of saves into one reload"
if serve "$(abc 1)" --watch; then
  # The host is stopped while the five saves land, so they reach it as
  # one burst however slowly this shell runs them (a loaded machine can
  # take longer than the watcher's 50 ms quiet period between two saves):
  # the watcher's events queue in the kernel and are read in one go.
  kill -STOP "$pid"
  for v in 2 3 4 5 6; do save "$d/tree.lua" "$(abc $v)"; done
  kill -CONT "$pid"
  wait_line 'reload: *'
  # A reload through the socket is answered after any pending one.
  reload_ok "reload: no changes"
  [ "$(grep -c '^reload: ' "$d/out")" = 2 ] ||
    fail "$(grep -c '^reload: ' "$d/out") reload lines, expected the watcher's one and ours"
  [ "$(grep '^start b ' "$d/out" | tr '\n' ',')" = "start b 1,start b 6," ] ||
    fail "b started as: $(grep '^start b ' "$d/out" | tr '\n' ',')"
  stop_host
fi
case_end

new_case "status lists every supervisor and child, drawn as a tree"
if serve "$(nested 1)"; then
  snap before
  ids_file=$(awk '{ print $1 }' "$d/before" | tr '\n' ' ')
  [ "$ids_file" = "a n x m y z c " ] || fail "status lists '$ids_file'"
  st=$d/status.txt
  head -n 1 "$st" | grep -q '^svc <[0-9.]*>  rest_for_one  up ' ||
    fail "the first line is '$(head -n 1 "$st")'"
  for id in a n x m y z c; do
    grep -q "─ $id  *<[0-9.]*>  *running  *up .*restarts 0" "$st" ||
      fail "no running line for $id"
  done
  [ "$(grep -c '(supervisor)$' "$st")" = 2 ] || fail "n and m are not marked"
  grep -q '^│  ├─ x ' "$st" || fail "x is not drawn under n"
  grep -q '^│     ├─ y ' "$st" || fail "y is not drawn under m"
  save "$d/tree.lua" "$(nested 2)"
  reload_ok "reload: changed n/m/y; restarted n/m/y"
  snap after
  grep -q '─ y  *<[0-9.]*>  *running .*restarts 1  last exit: normal' "$st" ||
    fail "y does not show its restart and last exit"
  stop_host
fi
case_end

new_case "reload --dry-run prints the plan and changes nothing"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(abc 2)"
  reload_ok "reload plan: changed b; restarted b, c" --dry-run
  snap after
  same_pids a b c
  grep -q '^start b 2' "$d/out" && fail "the dry run started b"
  reload_ok "reload: changed b; restarted b, c"
  stop_host
fi
case_end

new_case "SIGHUP reloads"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(abc 2)"
  kill -HUP "$pid"
  if wait_line 'reload: *'; then
    [ "$last_line" = "reload: changed b; restarted b, c" ] ||
      fail "SIGHUP's reload printed '$last_line'"
  fi
  snap after
  same_pids a
  new_pids b c
  stop_host
fi
case_end

new_case "a second host on the same socket is refused; the first goes on"
if serve "$(abc 1)"; then
  snap before
  timeout 10 "$ARBOR" run --control "$sock" "$d/tree.lua" \
    >"$d/out2" 2>"$d/err2" </dev/null
  code=$?
  [ "$code" != 0 ] && [ "$code" != 124 ] ||
    fail "the second host exited $code, expected a refusal"
  grep -qF "$sock" "$d/err2" || fail "the refusal does not name $sock: $(cat "$d/err2")"
  grep -q 'already serving' "$d/err2" || fail "unclear refusal: $(cat "$d/err2")"
  [ -s "$d/out2" ] && fail "the second host printed: $(cat "$d/out2")"
  [ -S "$sock" ] || fail "the second host removed the first one's socket"
  snap after
  same_pids a b c
  reload_ok "reload: no changes"
  stop_host
fi
case_end

new_case "a stale socket left by a killed host is replaced"
if serve "$(abc 1)"; then
  kill -KILL "$pid"
  finish 5
  if [ -S "$sock" ]; then
    start_host --control "$sock" "$d/tree.lua"
    wait_ready && snap after && ids_are a b c
    reload_ok "reload: no changes"
    stop_host
  else
    fail "no stale socket left to test with"
  fi
fi
case_end

new_case "arbor stop stops the host in order; the socket is removed"
if serve "$(abc 1)"; then
  out=$("$ARBOR" stop --control "$sock" 2>&1)
  code=$?
  [ "$code" = 0 ] || fail "arbor stop exited $code: $out"
  finish 5
  [ "$rc" = 0 ] || fail "the host exited $rc, expected 0"
  [ -e "$sock" ] && fail "the socket file is still there"
  [ "$(grep '^stop ' "$d/out" | tr '\n' ',')" = "stop c,stop b,stop a," ] ||
    fail "stop order: $(grep '^stop ' "$d/out" | tr '\n' ',')"
fi
case_end

new_case "the root giving up ends the host with exit 1 and the reason"
save "$d/tree.lua" "${PRELUDE}"'
return supervisor.spec { max_frequency = 0, init = function(c)
  return c:add(w("a", 1)):add(supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local own = process.new_subject()
      process.send(ready, own)
      process.receive(own, 100)
      error("crash on purpose")
    end)
    return process.receive(ready, 2000)
  end):id("crasher"))
end }'
start_host --control "$sock" "$d/tree.lua"
finish 10
[ "$rc" = 1 ] || fail "the host exited $rc, expected 1"
grep -q 'root supervisor exited' "$d/err" || fail "stderr does not give the reason"
[ -e "$sock" ] && fail "the socket file is still there"
case_end

new_case "arbor status with no host exits 1 with a clear message"
out=$("$ARBOR" status --control "$d/none.sock" 2>&1)
code=$?
[ "$code" = 1 ] || fail "exit $code, expected 1"
case $out in *"no host is serving on $d/none.sock"*) ;;
  *) fail "message: $out" ;; esac
"$ARBOR" reload --control "$d/none.sock" >/dev/null 2>&1
code=$?
[ "$code" = 1 ] || fail "reload: exit $code, expected 1"
case_end

new_case "--watch on a script that returns no spec exits 1 with a message"
save "$d/plain.lua" 'return 42'
timeout 10 "$ARBOR" run --watch "$d/plain.lua" >"$d/out" 2>"$d/err" </dev/null
code=$?
[ "$code" = 1 ] || fail "exit $code, expected 1"
grep -q 'plain.lua: --watch and --control need a script that returns a supervisor.spec value' "$d/err" ||
  fail "unclear message: $(cat "$d/err")"
case_end

new_case "the default socket is per script in XDG_RUNTIME_DIR, mode 0600"
save "$d/tree.lua" "$(abc 1)"
XDG_RUNTIME_DIR=$d start_host "$d/tree.lua"
sock=$(ls "$d"/arbor-*.sock 2>/dev/null | head -n 1)
i=0
while [ -z "$sock" ] && [ "$i" -lt 100 ]; do
  sleep 0.05
  sock=$(ls "$d"/arbor-*.sock 2>/dev/null | head -n 1)
  i=$((i + 1))
done
if [ -n "$sock" ] && wait_ready; then
  [ "$(stat -c %a "$sock")" = 600 ] || fail "mode $(stat -c %a "$sock")"
  out=$(XDG_RUNTIME_DIR=$d "$ARBOR" status "$d/tree.lua" 2>&1) ||
    fail "arbor status SCRIPT: $out"
  case $out in *"└─ c "*) ;; *) fail "status SCRIPT printed: $out" ;; esac
  stop_host
else
  fail "no socket in XDG_RUNTIME_DIR"
fi
case_end

new_case "a comment added above the children restarts nothing"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "-- a comment added while the tree runs
$(abc 1)"
  reload_ok "reload: no changes"
  snap after
  same_pids a b c
  stop_host
fi
case_end

new_case "a child added after a temporary child that ended"
if serve "$(tree one_for_one ':add(w("a", 1)):add(w("t", "quit"):restart("temporary")):add(w("b", 1))')"; then
  # t ends "normal" and, temporary, is dropped.
  for ((i = 0; i < 100; i++)); do
    snap before
    grep -q '^t ' "$d/before" || break
    sleep 0.05
  done
  save "$d/tree.lua" "$(tree one_for_one ':add(w("a", 1)):add(w("t", "quit"):restart("temporary")):add(w("b", 1)):add(w("c", 1))')"
  reload_ok "reload: added c"
  if snap after; then
    ids_are a b c
    same_pids a b
    new_pids c
    stop_host
  fi
fi
case_end

new_case "a changed child that fails to start is retried like a failed restart"
if serve "$(tree one_for_one ':add(w("a", 1)):add(w("b", 1))')"; then
  save "$d/tree.lua" "$(tree one_for_one ':add(w("a", 1))
    :add(supervisor.worker(function() error("cannot start b") end):id("b"))')"
  timeout 5 "$ARBOR" reload --control "$sock" >/dev/null 2>&1
  # Retried until the intensity (3 in 5 s) is exceeded: the root gives up.
  finish 3
  [ "$rc" = 1 ] || fail "the host exited $rc, expected 1 after the root gave up"
  grep -q 'cannot start b' "$d/err" || fail "no report of the failed start"
fi
case_end

new_case "an inline child keeps its pid when an inline sibling is removed"
# The start functions are written inline in init: their upvalues (say,
# process) sit in init's upvalue list by first use, which the removal
# renumbers.  Only what a function reaches decides "changed".
inline_child() { # inline_child ID [FIRST]: a worker written inline; FIRST
  # is its first line (what it names first orders init's upvalues).
  printf ':add(supervisor.worker(function()
      %s
      local ready = process.new_subject()
      process.spawn_link(function()
        say("start", "%s")
        process.send(ready, process.new_subject())
        process.sleep_forever()
      end)
      return process.receive(ready, 2000)
    end):id("%s"))' "${2:-}" "$1" "$1"
}
if serve "$(tree one_for_one "$(inline_child a 'local _ = say')$(inline_child b)")"; then
  snap before
  save "$d/tree.lua" "$(tree one_for_one "$(inline_child b)")"
  reload_ok "reload: removed a"
  snap after
  ids_are b
  same_pids b
  stop_host
fi
case_end

# {=== issue 11: restarts run the spec in force; plans are what happens

# nest A X: a (value A), n (one_for_one: x with value X, z), c; rest_for_one.
nest() {
  tree rest_for_one ':add(w("a", '"$1"'))
      :add(supervisor.supervisor(supervisor.spec {
        name = "n", strategy = "one_for_one",
        init = function(c)
          return c:add(w("x", '"$2"')):add(w("z", 1))
        end }):id("n"))
      :add(w("c", 1))'
}

# starts_after MARK ID VALUE...: the values ID started with in the host's
# stdout after the line MARK, one per line.
starts_after() {
  awk -v mark="$1" -v id="$2" 'seen && $1 == "start" && $2 == id { print $3 }
                               $0 == mark { seen = 1 }' "$d/out" | tr '\n' ' '
}

new_case "a nested tree restarted after an edit inside it runs the edited spec"
if serve "$(nest 1 1)"; then
  save "$d/tree.lua" "$(nest 1 2)"
  reload_ok "reload: changed n/x; restarted n/x"
  # Now a change before n: rest_for_one restarts a, n and c; n must come
  # back with x = 2, the spec in force, not the one it first started with.
  save "$d/tree.lua" "$(nest 2 2)"
  snap before
  reload_ok "reload plan: changed a; restarted a, n, c" --dry-run
  reload_ok "reload: changed a; restarted a, n, c"
  snap after
  new_pids a n x z c
  got=$(starts_after "reload: changed a; restarted a, n, c" x)
  [ "$got" = "" ] || fail "x started again after the reload line: $got"
  # And once more: every restart of n runs the spec in force.
  save "$d/tree.lua" "$(nest 3 2)"
  reload_ok "reload: changed a; restarted a, n, c"
  got=$(awk '$1 == "start" && $2 == "x" { print $3 }' "$d/out" | tr '\n' ' ')
  [ "$got" = "1 2 2 2 " ] || fail "x started with '$got', expected '1 2 2 2 '"
  stop_host
fi
case_end

new_case "one save that edits inside n and restarts n never starts the old n"
if serve "$(nest 1 1)"; then
  save "$d/tree.lua" "$(nest 2 2)"
  snap before
  reload_ok "reload plan: changed a, n/x; restarted a, n, c" --dry-run
  reload_ok "reload: changed a, n/x; restarted a, n, c"
  snap after
  new_pids a n x z c
  # Since the first start: x started once more, with 2 only.
  got=$(awk '$1 == "start" && $2 == "x" { print $3 }' "$d/out" | tr '\n' ' ')
  [ "$got" = "1 2 " ] || fail "x started with '$got', expected '1 2 '"
  stop_host
fi
case_end

new_case "rest_for_one: a changes and b turns temporary: b is dropped, and said so"
if serve "$(abc 1)"; then
  snap before
  save "$d/tree.lua" "$(tree rest_for_one \
    ':add(w("a", 2)):add(w("b", 1):restart("temporary")):add(w("c", 1))')"
  reload_ok "reload plan: changed a, b; removed b; restarted a, c" --dry-run
  reload_ok "reload: changed a, b; removed b; restarted a, c"
  snap after
  ids_are a c
  new_pids a c
  stop_host
fi
case_end

new_case "rest_for_one: an unchanged temporary child in a restart set is removed"
if serve "$(tree rest_for_one \
    ':add(w("a", 1)):add(w("t", 1):restart("temporary")):add(w("c", 1))')"; then
  snap before
  save "$d/tree.lua" "$(tree rest_for_one \
    ':add(w("a", 2)):add(w("t", 1):restart("temporary")):add(w("c", 1))')"
  reload_ok "reload plan: changed a; removed t; restarted a, c" --dry-run
  reload_ok "reload: changed a; removed t; restarted a, c"
  snap after
  ids_are a c
  # The file still lists t: an unchanged save does not bring it back.
  reload_ok "reload plan: no changes" --dry-run
  reload_ok "reload: no changes"
  stop_host
fi
case_end

new_case "editing a temporary child that already ended restarts nothing"
if serve "$(tree one_for_one ':add(w("a", 1)):add(w("t", "quit"):restart("temporary"))')"; then
  for ((i = 0; i < 100; i++)); do
    snap before
    grep -q '^t ' "$d/before" || break
    sleep 0.05
  done
  save "$d/tree.lua" "$(tree one_for_one ':add(w("a", 1)):add(w("t", "quit2"):restart("temporary"))')"
  reload_ok "reload plan: changed t" --dry-run
  reload_ok "reload: changed t"
  snap after
  ids_are a
  same_pids a
  stop_host
fi
case_end

new_case "an added child that fails to start is listed as failed, not added"
if serve "$(tree one_for_one ':add(w("a", 1))')"; then
  save "$d/tree.lua" "$(tree one_for_one ':add(w("a", 1))
    :add(supervisor.worker(function() return nil, "no database" end):id("db"))')"
  reload_ok "reload plan: added db" --dry-run
  reload_ok "reload: failed to start db: no database"
  # status says the running tree is not what the file says.
  snap after
  grep -q 'not as the file says: the last reload could not start db: no database' \
    "$d/status.txt" || fail "status does not say db did not start"
  stop_host
fi
case_end

new_case "a strategy change restarts nothing; with a changed child the new strategy applies"
if serve "$(abc 1 one_for_one)"; then
  snap before
  save "$d/tree.lua" "$(abc 1 rest_for_one)"
  reload_ok "reload plan: flags of root" --dry-run
  reload_ok "reload: flags of root"
  snap after
  same_pids a b c
  cp "$d/after" "$d/before"
  save "$d/tree.lua" "$(abc 2 one_for_all)"
  reload_ok "reload plan: flags of root; changed b; restarted a, b, c" --dry-run
  reload_ok "reload: flags of root; changed b; restarted a, b, c"
  snap after
  new_pids a b c
  stop_host
fi
case_end

new_case "a moved child restarts in its new place; the dry run says the same"
if serve "$(abc 1 one_for_one)"; then
  snap before
  save "$d/tree.lua" "$(tree one_for_one ':add(w("c", 1)):add(w("a", 1)):add(w("b", 1))')"
  # Only c moved: a and b keep their processes.
  reload_ok "reload plan: added c; removed c" --dry-run
  reload_ok "reload: added c; removed c"
  snap after
  ids_are c a b
  same_pids a b
  new_pids c
  stop_host
fi
case_end

# }===

[ "$failed" = 0 ] && echo "all $count cases passed"
exit "$failed"
