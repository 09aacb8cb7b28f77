# tests/cli/lib.sh: helpers shared by the command-line tests (sourced).
#
# Cases: case_start NAME, then fail MESSAGE as checks fail, then the
# file's case_end (report_case prints the usual ok / not ok lines).  A
# host started with start_fifo has its stdout on a fifo read through fd
# 3 and copied to $io/out as it is read, so tests wait for lines, never
# for time.  Callers set ARBOR (the binary) and io (the folder for out,
# err and the fifo), and count=0 failed=0 before the first case.

# cli_scratch: the usual start of a test file: a scratch folder ($tmp,
# also $io) removed at exit, a host in $pid (when one is running then)
# killed at exit, and the case counters at zero.  XDG_RUNTIME_DIR is a
# private folder in it, so a host started without --control has its
# default socket there: two test files running the same script at once
# (ctest -j) never meet on one default path.
cli_scratch() {
  tmp=$(mktemp -d)
  io=$tmp
  mkdir -m 700 "$tmp/xdg-run"
  export XDG_RUNTIME_DIR=$tmp/xdg-run
  pid=
  trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
  failed=0
  count=0
}

case_start() {
  name=$1
  case_failed=0
}

fail() {
  echo "  FAIL: $*"
  case_failed=1
}

# report_case: ok or not ok for the current case; on failure, what the
# program printed.
report_case() {
  count=$((count + 1))
  if [ "$case_failed" = 0 ]; then
    echo "ok $count - $name"
  else
    echo "not ok $count - $name"
    echo "  --- stdout:"; sed 's/^/  | /' "$io/out"
    echo "  --- stderr:"; sed 's/^/  | /' "$io/err"
    failed=1
  fi
}

# start_fifo ARGS...: runs "$ARBOR" ARGS... in the background, stdout on
# the fifo (fd 3), stderr appended to $io/err; sets pid.
start_fifo() {
  rm -f "$io/fifo"
  mkfifo "$io/fifo"
  "$ARBOR" "$@" >"$io/fifo" 2>>"$io/err" </dev/null &
  pid=$!
  exec 3<"$io/fifo"
}

# wait_line PATTERN: reads stdout lines until one matches the glob
# PATTERN (5 s at most per line); the line is left in $last_line.
wait_line() {
  local line
  while IFS= read -r -t 5 line <&3; do
    echo "$line" >>"$io/out"
    # shellcheck disable=SC2053
    if [[ $line == $1 ]]; then
      last_line=$line
      return 0
    fi
  done
  fail "no line '$1' on stdout"
  return 1
}

# finish SECONDS: reads the rest of stdout until the program closes it
# and waits for its exit; a silence longer than SECONDS kills it.  Sets
# rc (124 when it had to be killed).
finish() {
  local limit=$1 line status timed_out=0
  while :; do
    line=
    IFS= read -r -t "$limit" line <&3
    status=$?
    [ -n "$line" ] && echo "$line" >>"$io/out"
    [ "$status" = 0 ] && continue
    if [ "$status" -gt 128 ]; then
      kill -KILL "$pid" 2>/dev/null
      timed_out=1
    fi
    break
  done
  exec 3<&-
  wait "$pid" 2>/dev/null
  rc=$?
  [ "$timed_out" = 1 ] && rc=124
  pid=
}
