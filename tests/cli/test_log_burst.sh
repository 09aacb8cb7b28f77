#!/usr/bin/env bash
# test_log_burst: the log sink buffers lines and writes them once per loop
# turn (host/rt/logfile.c); no way of ending the host may lose or reorder
# them.  scripts/log_burst.lua logs 10,000 events in one slice and then
# ends the host while they are still buffered: main returns, raises, calls
# os.exit, runs out of --max-memory, gets SIGTERM, or calls os.exit right
# after another process's crash report.  Each ending is checked with
# --log-file and with stderr on a pipe (log_pipe.py), and once with a
# non-blocking pipe read slowly, so that writes meet EAGAIN and short
# writes.  check_burst.py says whether every line is there, once, in order.
# Usage: bash test_log_burst.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_log_burst.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
case_end() { report_case; }
N=10000
: >"$io/out"
: >"$io/err"

# check FILE [AFTER] [BEFORE]
check() {
  python3 check_burst.py "$1" "$N" "${2:-}" "${3:-}" || fail "$1 (above)"
}

# via_file MODE [ARBOR OPTIONS]: runs the script with --log-file; sets rc.
via_file() {
  local mode=$1
  shift
  rm -f "$tmp/log"
  : >"$io/err"
  if [ "$mode" = term ]; then
    start_fifo run --log-file "$tmp/log" "$@" scripts/log_burst.lua term "$N"
    local line=
    read -r -t 30 line <&3 || true
    [ "$line" = ready ] || fail "no ready line (got '$line')"
    kill -TERM "$pid"
    cat <&3 >"$io/out"
    exec 3<&-
    wait "$pid"
    rc=$?
    pid=
  else
    timeout 60 "$ARBOR" run --log-file "$tmp/log" "$@" \
      scripts/log_burst.lua "$mode" "$N" >"$io/out" 2>"$io/err" </dev/null
    rc=$?
  fi
}

# via_pipe MODE [log_pipe.py FLAGS] -- [ARBOR OPTIONS]: stderr on a pipe.
via_pipe() {
  local mode=$1
  shift
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  [ "$mode" = term ] && flags+=(--term)
  local res
  res=$(python3 log_pipe.py "$tmp/pipe" "${flags[@]}" -- \
    "$ARBOR" run "$@" scripts/log_burst.lua "$mode" "$N")
  rc=${res#rc=}
  cp "$tmp/pipe" "$io/err"
}

for sink in file pipe; do
  case_start "$sink: main returns after 10,000 events"
  if [ $sink = file ]; then via_file return; check "$tmp/log"
  else via_pipe return --; check "$tmp/pipe"; fi
  [ "$rc" = 0 ] || fail "exit status $rc"
  case_end

  case_start "$sink: main raises after 10,000 events"
  if [ $sink = file ]; then
    via_file raise
    check "$tmp/log" "main process crashed"
    grep -q "raised after the burst" "$io/err" || fail "no error on stderr"
  else
    via_pipe raise --
    check "$tmp/pipe" "arbor: scripts/log_burst.lua:35: raised after the burst"
  fi
  [ "$rc" = 1 ] || fail "exit status $rc"
  case_end

  case_start "$sink: os.exit(3) in the slice that logged 10,000 events"
  if [ $sink = file ]; then via_file exit; check "$tmp/log"
  else via_pipe exit --; check "$tmp/pipe"; fi
  [ "$rc" = 3 ] || fail "exit status $rc"
  case_end

  case_start "$sink: main runs out of --max-memory after 10,000 events"
  if [ $sink = file ]; then
    via_file oom --max-memory 8M
    check "$tmp/log" "not enough memory"
  else
    via_pipe oom -- --max-memory 8M
    check "$tmp/pipe" "arbor: not enough memory"
  fi
  [ "$rc" = 1 ] || fail "exit status $rc"
  case_end

  case_start "$sink: SIGTERM while 10,000 events were logged"
  if [ $sink = file ]; then via_file term; check "$tmp/log"
  else via_pipe term --; check "$tmp/pipe"; fi
  [ "$rc" = 0 ] || [ "$rc" = 143 ] || [ "$rc" = -15 ] ||
    fail "exit status $rc"
  case_end

  case_start "$sink: a crash report, then os.exit at once"
  if [ $sink = file ]; then via_file crash_exit; f=$tmp/log
  else via_pipe crash_exit --; f=$tmp/pipe; fi
  check "$f" "" "worker boom before exit"
  grep -q "^=CRASH REPORT==== process <0\.[0-9]*\.[0-9]*> crashed" "$f" ||
    grep -q " =CRASH REPORT==== process <0\.[0-9]*\.[0-9]*> crashed" "$f" ||
    fail "no crash report head in $f"
  [ "$rc" = 0 ] || fail "exit status $rc"
  case_end
done

case_start "non-blocking stderr pipe read slowly: EAGAIN loses nothing"
via_pipe return --nonblock --slow --
check "$tmp/pipe"
[ "$rc" = 0 ] || fail "exit status $rc"
via_pipe raise --nonblock --slow --
check "$tmp/pipe" "arbor: scripts/log_burst.lua:35: raised after the burst"
[ "$rc" = 1 ] || fail "exit status $rc (raise)"
case_end

case_start "a reader that leaves: the host ends normally, without spinning"
# head -c reads a little and closes its end; the host's writes then fail
# with EPIPE and are dropped, and the host must still end by itself.
timeout 30 "$ARBOR" run scripts/log_burst.lua return "$N" 2>&1 >/dev/null \
  </dev/null | head -c 100 >/dev/null
rcs=("${PIPESTATUS[@]}")
[ "${rcs[0]}" = 0 ] || fail "exit status ${rcs[0]} (124: it hung)"
case_end

echo "1..$count"
exit $failed
