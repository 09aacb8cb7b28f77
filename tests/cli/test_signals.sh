#!/usr/bin/env bash
# test_signals: SIGTERM and SIGINT shut the trees down in order (newest
# first) and exit 0; so does main returning while linked workers run.
# Usage: bash test_signals.sh /path/to/arbor
# The case where a worker ignores the shutdown takes the 5 s worker
# timeout: the one test that waits on the clock, because the timeout is
# the behaviour under test.
set -u
ARBOR=${1:?usage: test_signals.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch

case_end() { report_case; }

# start ARGS...: a fresh out and err, then start_fifo (lib.sh).
start() {
  rm -f "$io/out" "$io/err"
  : >"$io/out"
  start_fifo "$@"
}



# The "stopped" lines of stdout, in order, one per line.
stopped() { grep '^stopped ' "$tmp/out"; }

expected_order=$'stopped 3 shutdown\nstopped 2 shutdown\nstopped 1 shutdown'

for sig in TERM INT; do
  name="SIG$sig shuts the trees down newest first and exits 0"
  case_failed=0
  start scripts/trees.lua block
  if wait_line ready; then
    kill -"$sig" "$pid"
    finish 5
    [ "$rc" = 0 ] || fail "exit status $rc, expected 0"
    [ "$(stopped)" = "$expected_order" ] ||
      fail "stop order: $(stopped | tr '\n' ',')"
    grep -q '^arbor: ' "$tmp/err" && fail "stderr reports a failure"
  else
    finish 1
  fi
  case_end
done

name="main returning shuts its linked workers down newest first, exit 0"
case_failed=0
start scripts/trees.lua return
wait_line "main returns"
finish 5
[ "$rc" = 0 ] || fail "exit status $rc, expected 0"
[ "$(stopped)" = "$expected_order" ] ||
  fail "stop order: $(stopped | tr '\n' ',')"
case_end

name="a second signal ends a shutdown that waits for a stubborn worker"
case_failed=0
start scripts/trees.lua block stubborn
if wait_line ready; then
  kill -TERM "$pid"
  # The stubborn worker is the newest: it is asked first.
  if wait_line "ignoring shutdown"; then
    kill -TERM "$pid"
    finish 3
    [ "$rc" != 124 ] || fail "the host did not stop after a second signal"
  else
    finish 1
  fi
else
  finish 1
fi
case_end

{
  name="a worker that ignores the shutdown is killed after its timeout"
  case_failed=0
  start scripts/trees.lua block stubborn
  if wait_line ready; then
    kill -TERM "$pid"
    wait_line "ignoring shutdown"
    finish 15
    [ "$rc" = 0 ] || fail "exit status $rc, expected 0"
    [ "$(stopped)" = "$expected_order" ] ||
      fail "stop order after the kill: $(stopped | tr '\n' ',')"
  else
    finish 1
  fi
  case_end
}

[ "$failed" = 0 ] && echo "all $count cases passed"
exit "$failed"
