#!/usr/bin/env bash
# test_reload_hostile: reloads of scripts that misbehave while they load
# (scripts/reload/*.lua) -- raise values whose __tostring raises, returns
# a non-string, yields or loops; call os.exit; loop or wait forever at the
# top level or in an init; ask for flags the engine cannot take; kill the
# process that loads them.  Each must be a failed reload with a clear
# message that keeps the old tree: afterwards `arbor status` answers, the
# children kept their pids, and a good reload still works.  While a
# reload is loading, status and stop are answered.
# Usage: bash test_reload_hostile.sh /path/to/arbor
#
# Hosts run with ARBOR_RELOAD_TIMEOUT_MS=1500, so a loader that never
# finishes is killed after 1.5 s (30 s in the case that asks for status
# and stop meanwhile, so that it surely asks while the loader works).  Scripts that never finish print a
# "loading: ..." line first; the test waits for it on the host's stdout,
# never for time.
set -u
ARBOR=${1:?usage: test_reload_hostile.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./live_lib.sh

export ARBOR_RELOAD_TIMEOUT_MS=1500
hostile=$PWD/scripts/reload

# use_hostile NAME: puts scripts/reload/NAME.lua in place of the script.
use_hostile() {
  cp "$hostile/$1.lua" "$d/tree.lua.tmp" && mv -f "$d/tree.lua.tmp" "$d/tree.lua"
}

# still_serving: status answers, a b c kept their pids, the host printed
# no crash report, and a good reload applies.
still_serving() {
  snap after || return 1
  same_pids a b c
  grep -q 'CRASH REPORT\|^arbor: ' "$d/err" &&
    fail "the host reported a crash: $(cat "$d/err")"
  save "$d/tree.lua" "$(abc 2)"
  reload_ok "reload: changed b; restarted b, c"
}

# same_pids_in FILE IDS...: each id has its "before" pid in FILE.
same_pids_in() {
  local file=$1 id b a
  shift
  for id; do
    b=$(pid_in before "$id") a=$(pid_in "$file" "$id")
    [ -n "$a" ] && [ "$a" = "$b" ] ||
      fail "$id: pid '$b' -> '$a' in $file, expected it unchanged"
  done
}

# hostile_case NAME SCRIPT PATTERN: a reload of SCRIPT fails with PATTERN
# (a glob over the command's stderr) and the host goes on.
hostile_case() {
  new_case "$1"
  if serve "$(abc 1)"; then
    snap before
    use_hostile "$2"
    reload_fails "$3"
    still_serving
    stop_host
  fi
  case_end
}

# reload_in_background: `arbor reload` running while the test goes on; its
# output goes to $d/reload.out, its pid to $rpid.
reload_in_background() {
  timeout 20 "$ARBOR" reload --control "$sock" >"$d/reload.out" 2>&1 &
  rpid=$!
}

# reload_answered CODE PATTERN: the background reload exited CODE with
# PATTERN (a glob) in its output.
reload_answered() {
  local code
  wait "$rpid"
  code=$?
  [ "$code" = "$1" ] || fail "the reload exited $code, expected $1 ($(cat "$d/reload.out"))"
  # shellcheck disable=SC2053
  [[ $(cat "$d/reload.out") == $2 ]] ||
    fail "the reload printed '$(cat "$d/reload.out")', expected '$2'"
}

hostile_case "a raised value whose __tostring raises" tostring_raises \
  "reload failed: (error object is a table value)"
hostile_case "a raised value whose __tostring returns a table" \
  tostring_not_string "reload failed: (error object is a table value)"
hostile_case "a raised value whose __tostring yields and blocks" \
  tostring_yields "reload failed: (error object is a table value)"
hostile_case "a raised value whose __tostring loops forever" tostring_loops \
  "reload failed: (error object is a table value)"
hostile_case "a raised value whose __tostring works gives its text" \
  tostring_fine "reload failed: config error: no port given"
hostile_case "os.exit while loading is refused" os_exit \
  "reload failed: *tree.lua:2: os.exit called while loading the script*"
hostile_case "os.exit reached through require \"os\" is refused too" \
  os_exit_required \
  "reload failed: *tree.lua:2: os.exit called while loading the script*"
hostile_case "flags the restart engine cannot take" max_frequency \
  "reload failed: *tree.lua:*max_frequency*2000000*"
hostile_case "a loader that kills itself" loader_killed \
  "reload failed: *tree.lua: the loading process ended before it answered: killed"
hostile_case "a 100,000-byte error message is cut" huge_error \
  "reload failed: xxxx*x ... (96000 more bytes)"

# loop_case NAME SCRIPT: SCRIPT never finishes loading; the reload fails
# once the 1.5 s deadline passes.
loop_case() {
  new_case "$1"
  if serve "$(abc 1)"; then
    snap before
    use_hostile "$2"
    reload_in_background
    if wait_line "loading: *"; then
      reload_answered 1 "reload failed: *tree.lua: loading did not finish within 1500 ms*the old tree goes on"
      still_serving
    fi
    stop_host
  fi
  case_end
}

loop_case "a script that loops at the top level is stopped" top_level_loop
loop_case "an init that loops is stopped" init_loops
loop_case "an init that waits forever is stopped" init_waits

# Here the deadline is 30 s, so the reload is surely still loading while
# the test asks for status and stop.
new_case "status and stop are answered while a reload is loading"
if ARBOR_RELOAD_TIMEOUT_MS=30000 serve "$(abc 1)"; then
  snap before
  use_hostile top_level_loop
  reload_in_background
  if wait_line "loading: *"; then
    snap during && same_pids_in during a b c
    kill -0 "$rpid" 2>/dev/null || fail "the reload ended before status was asked"
    stop_host
    [ -e "$sock" ] && fail "the socket file is still there"
    [ "$(grep '^stop ' "$d/out" | tr '\n' ',')" = "stop c,stop b,stop a," ] ||
      fail "stop order: $(grep '^stop ' "$d/out" | tr '\n' ',')"
    # The waiting reload is answered, not left hanging.
    reload_answered 1 "*shutting down*"
  fi
fi
case_end

new_case "reloads wait their turn behind one that is loading"
if serve "$(abc 1)"; then
  snap before
  use_hostile top_level_loop
  reload_in_background
  first=$rpid
  if wait_line "loading: *"; then
    # The second reload loads the file as it is when its turn comes.
    save "$d/tree.lua" "$(abc 2)"
    timeout 20 "$ARBOR" reload --control "$sock" >"$d/second.out" 2>&1
    code=$?
    rpid=$first
    reload_answered 1 "reload failed: *loading did not finish within 1500 ms*"
    [ "$code" = 0 ] || fail "the second reload exited $code: $(cat "$d/second.out")"
    [ "$(cat "$d/second.out")" = "reload: changed b; restarted b, c" ] ||
      fail "the second reload printed '$(cat "$d/second.out")'"
    snap after
    same_pids a
    new_pids b c
  fi
  stop_host
fi
case_end

new_case "a bad ARBOR_RELOAD_TIMEOUT_MS is refused at start with a message"
save "$d/tree.lua" "$(abc 1)"
ARBOR_RELOAD_TIMEOUT_MS=soon timeout 10 "$ARBOR" run --control "$sock" \
  "$d/tree.lua" >"$d/out" 2>"$d/err" </dev/null
code=$?
[ "$code" = 1 ] || fail "exit $code, expected 1"
grep -q "ARBOR_RELOAD_TIMEOUT_MS must be a whole number of milliseconds > 0, got 'soon'" "$d/err" ||
  fail "unclear message: $(cat "$d/err")"
case_end

[ "$failed" = 0 ] && echo "all $count cases passed"
exit "$failed"
