#!/usr/bin/env bash
# test_os_exit: os.exit inside a process (main, an unlinked worker, a
# child of a tree) is the host's ordered shutdown with that exit status:
# the tree's worker is stopped with "shutdown", the command child gets
# SIGTERM and is reaped (no orphan, no zombie), the log is flushed.
# Where the caller cannot wait (inside a table.sort comparator) the
# shutdown starts and os.exit raises.
# Usage: bash test_os_exit.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_os_exit.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch

# The command's pid, printed by the script.
cmd_pid() { sed -n 's/^pid //p' "$io/out"; }

# Polls (2 s at most) until the OS process $1 is gone: not running, not a
# zombie.
await_gone() {
  for _ in $(seq 100); do
    [ -e "/proc/$1" ] || return 0
    sleep 0.02
  done
  return 1
}

run_case() { # name, who, code, expected status
  case_start "$1"
  : >"$io/out"; : >"$io/err"
  rm -f "$tmp/cmd_term" "$tmp/worker_stopped"
  start_fifo scripts/os_exit.lua "$2" "$3" "$tmp"
  wait_line ready
  finish 20
  [ "$rc" = "$4" ] || fail "exit status $rc, expected $4"
  local p
  p=$(cmd_pid)
  if [ -z "$p" ]; then
    fail "no command pid"
  else
    if ! await_gone "$p"; then
      fail "the command child $p is still there: $(ps -o stat=,ppid= -p "$p")"
      kill -KILL "$p" 2>/dev/null
    fi
  fi
  grep -q "before exit" "$io/err" || fail "the log line before os.exit is lost"
}

for spec in "worker:7:7" "main:3:3" "child:9:9" "worker:true:0" \
            "worker:false:1" "worker:none:0" "worker:257:1"; do
  IFS=: read -r who code want <<<"$spec"
  run_case "os.exit($code) in $who: ordered shutdown, exit $want" \
    "$who" "$code" "$want"
  [ "$(cat "$tmp/cmd_term" 2>/dev/null)" = term ] ||
    fail "the command child got no SIGTERM"
  if [ "$who" != child ]; then
    stopped=$(cat "$tmp/worker_stopped" 2>/dev/null)
    [ "$stopped" = shutdown ] ||
      fail "the tree's worker was not stopped with shutdown: $stopped"
  fi
  report_case
done

# Cannot wait (inside a table.sort comparator): the shutdown starts all
# the same and os.exit raises there, ending that process with a report.
run_case "os.exit(4) where the caller cannot wait: shutdown, the caller raises" \
  sorted 4 4
[ "$(cat "$tmp/cmd_term" 2>/dev/null)" = term ] ||
  fail "the command child got no SIGTERM"
grep -q "os.exit: the host is shutting down (exit status 4); this process cannot wait" \
  "$io/err" || fail "no report of the raise"
report_case

exit "$failed"
