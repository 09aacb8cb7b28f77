#!/usr/bin/env bash
# test_orphans: whatever way the host ends but SIGKILL (SIGTERM, SIGINT,
# main returning, main raising), no OS process it started is left: port
# groups, command children, a daemon that left its group, a command run
# by os.execute.  (The host as subreaper also reaps them: test_port.lua
# checks no zombie is left while it runs.)
# Usage: bash test_orphans.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_orphans.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch

# pids listed by the script so far (lines "pid N" of $io/out).
listed() { sed -n 's/^pid //p' "$io/out"; }

# Every listed pid is gone: not running, not a zombie (polled: a process
# the host killed at its end may need a moment to be reaped by init).
check_gone() {
  local p left
  for _ in $(seq 200); do
    left=
    for p in $(listed); do [ -e "/proc/$p" ] && left="$left $p"; done
    [ -z "$left" ] && return 0
    sleep 0.02
  done
  fail "still there after the host ended:$left"
  for p in $left; do kill -KILL "$p" 2>/dev/null; done
}

run_case() { # name, expected status, mode, signal or ""
  case_start "$1"
  rm -f "$io/out" "$io/err"
  : >"$io/out"
  start_fifo scripts/orphans.lua "$3"
  if wait_line ready; then
    [ "$(listed | wc -l)" -ge 6 ] || fail "expected 6 pids, got $(listed | wc -l)"
    [ -n "$4" ] && kill -"$4" "$pid"
    finish 20
    [ "$rc" = "$2" ] || fail "exit status $rc, expected $2"
    check_gone
  else
    finish 5
  fi
  report_case
}

run_case "SIGTERM: nothing left" 0 block TERM
run_case "SIGINT: nothing left" 0 block INT
run_case "main returns: nothing left" 0 return ""
run_case "main raises: nothing left" 1 raise ""

exit "$failed"
