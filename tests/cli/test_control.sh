#!/usr/bin/env bash
# test_control: the control socket when someone misbehaves -- another
# user who takes the default path or talks to our host, clients that send
# NUL bytes, unknown or endless requests, that connect and say nothing, or
# leave before their answer; servers that never answer or hang up; socket
# paths too long for sun_path.  Real hosts, real sockets, real processes.
# Usage: bash test_control.sh /path/to/arbor
#
# The raw clients and misbehaving servers are tests/cli/ctlpeer.pl (Perl
# from perl-base).  "Another user" is uid nobody through setpriv, which
# needs root: without it those cases are skipped with the reason.  Each
# case runs in a fresh folder under /tmp (short socket paths); the
# default path is steered with TMPDIR and XDG_RUNTIME_DIR, never the
# machine's own.  Waits are for lines and files, each bounded.
set -u
ARBOR=${1:?usage: test_control.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh
PEER=$PWD/ctlpeer.pl

root=$(mktemp -d /tmp/arbctl.XXXXXX) || exit 1
chmod 755 "$root" # uid nobody runs a copy of arbor from $root/bin
pid=
helpers=()
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  for h in "${helpers[@]}"; do kill -KILL "$h" 2>/dev/null; done
  rm -rf "$root"
}
trap cleanup EXIT
failed=0
count=0
me=$(id -u)

# {=== cases

# new_case NAME: a fresh folder $d (mode 755) with socket path $sock.
new_case() {
  name=$1
  case_failed=0
  d=$root/c$((count + 1))
  mkdir -p "$d"
  chmod 755 "$d"
  io=$d
  sock=$d/s.sock
  : >"$d/out"
  : >"$d/err"
  save_tree "$d/tree.lua"
}

case_end() {
  if [ -n "$pid" ]; then # a case that did not stop its host
    kill -KILL "$pid" 2>/dev/null
    finish 1
  fi
  for h in "${helpers[@]}"; do
    kill -KILL "$h" 2>/dev/null
    wait "$h" 2>/dev/null
  done
  helpers=()
  if cat "$d"/*err* 2>/dev/null | grep -q 'Sanitizer\|runtime error:'; then
    fail "the sanitizer reported an error"
  fi
  report_case
}

# skip_case REASON: the case cannot run here.
skip_case() {
  count=$((count + 1))
  echo "ok $count - $name # SKIP $1"
}

# }===

# {=== hosts

# save_tree FILE: a service with one worker, a, that prints "start a".
save_tree() {
  cat >"$1" <<'EOF'
local process = require "process"
local supervisor = require "supervisor"
return supervisor.spec { name = "svc", init = function(children)
  return children:add(supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local own = process.new_subject()
      io.write("start a\n")
      io.flush()
      process.send(ready, own)
      process.receive(own)
    end)
    return process.receive(ready, 2000)
  end):id("a"))
end }
EOF
}

# wait_for COMMAND...: runs COMMAND until it succeeds (100 x 0.05 s at
# most).
wait_for() {
  local i
  for ((i = 0; i < 100; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# wait_ready [PATH]: the host answers `status` on PATH (default $sock).
wait_ready() {
  local i s=${1:-$sock}
  for ((i = 0; i < 100; i++)); do
    "$ARBOR" status --control "$s" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "the host did not answer on $s"
  return 1
}

# serve [ARGS...]: `arbor run --control $sock ARGS... $d/tree.lua`,
# running and answering.
serve() {
  start_fifo run --control "$sock" "$@" "$d/tree.lua"
  wait_line "start a" && wait_ready
}

# stop_host: `arbor stop`, then the host must exit 0.
stop_host() {
  local out
  out=$("$ARBOR" stop --control "$sock" 2>&1) || fail "arbor stop: $out"
  finish 5
  [ "$rc" = 0 ] || fail "the host exited $rc after arbor stop, expected 0"
}

# worker_pid: a's pid in `arbor status` (empty if that failed).
worker_pid() {
  "$ARBOR" status --control "$sock" 2>/dev/null |
    sed -n 's/^└─ a *\(<[0-9.]*>\).*/\1/p'
}

# ctl ARGS...: runs arbor (20 s at most) with stdout in $d/cout and stderr
# in $d/cerr; sets code.
ctl() {
  timeout 20 "$ARBOR" "$@" >"$d/cout" 2>"$d/cerr" </dev/null
  code=$?
}

expect_code() {
  [ "$code" = "$1" ] ||
    fail "exit status $code, expected $1 (stderr: $(cat "$d/cerr"))"
}
expect_cerr() {
  grep -qF -- "$1" "$d/cerr" || fail "stderr lacks '$1': $(cat "$d/cerr")"
}
expect_no_cout() {
  [ -s "$d/cout" ] && fail "stdout is not empty: $(cat "$d/cout")"
}
# expect_one_line PREFIX: stderr is exactly one line, starting PREFIX.
expect_one_line() {
  [ "$(wc -l <"$d/cerr")" = 1 ] ||
    fail "stderr is not one line: $(cat "$d/cerr")"
  [[ $(head -n 1 "$d/cerr") == "$1"* ]] ||
    fail "stderr does not start with '$1': $(cat "$d/cerr")"
}

# peer MODE ARGS...: ctlpeer.pl in the background, started once it prints
# "listening" (for the servers); its pid goes to helpers.
peer_server() {
  perl "$PEER" "$@" >"$d/peer.out" 2>"$d/peer.err" &
  helpers+=($!)
  wait_for grep -qx listening "$d/peer.out" ||
    fail "ctlpeer $1 did not start: $(cat "$d/peer.err")"
}

# send BYTES [--shut]: BYTES (printf format) on a raw connection to
# $sock; the answer is in $answer, ctlpeer's status in $code.
send() {
  # shellcheck disable=SC2059
  printf "$1" | timeout 20 perl "$PEER" send "$sock" ${2:+"$2"} >"$d/answer" 2>>"$d/err"
  code=$?
  answer=$(cat "$d/answer")
}

# }===

# {=== another user

# nobody: runs ARGS... as uid nobody.  can_switch is 1 if that works: as
# root with setpriv, and the copy of arbor in $root/bin runs as nobody.
nobody_uid=$(id -u nobody 2>/dev/null)
nobody_gid=$(id -g nobody 2>/dev/null)
nobody() {
  setpriv --reuid="$nobody_uid" --regid="$nobody_gid" --clear-groups -- "$@"
}
can_switch=0
why_not="needs root and setpriv to act as another user"
if [ "$me" = 0 ] && [ -n "$nobody_uid" ] && command -v setpriv >/dev/null; then
  mkdir -p "$root/bin"
  cp "$ARBOR" "$root/bin/arbor"
  save_tree "$root/bin/tree.lua"
  chmod 755 "$root/bin" "$root/bin/arbor"
  chmod 644 "$root/bin/tree.lua"
  if nobody "$root/bin/arbor" --version >/dev/null 2>&1; then
    can_switch=1
  else
    why_not="arbor does not run as uid nobody here"
  fi
fi

# squat SOCKET: a host of uid nobody serving on SOCKET; its pid in
# helpers, its output in $d/squat.out and $d/squat.err.
squat() {
  # setpriv run directly (not through the nobody function, which bash
  # would run in a subshell): $! is then the host itself, and the
  # case's cleanup kills the host, not a subshell that leaves it behind.
  setpriv --reuid="$nobody_uid" --regid="$nobody_gid" --clear-groups -- \
    "$root/bin/arbor" run --control "$1" "$root/bin/tree.lua" \
    >"$d/squat.out" 2>"$d/squat.err" </dev/null &
  squatter=$!
  helpers+=("$squatter")
  wait_for test -S "$1" && wait_for grep -qx 'start a' "$d/squat.out" ||
    fail "the squatter did not start: $(cat "$d/squat.err")"
}

# }===

default_name=

new_case "without XDG_RUNTIME_DIR the default socket is in TMPDIR/arbor-UID, mode 0700"
base=$d/tmp
mkdir -m 1777 "$base"
XDG_RUNTIME_DIR= TMPDIR=$base start_fifo run "$d/tree.lua"
if wait_line "start a"; then
  wait_for compgen -G "$base/arbor-$me/arbor-*.sock" ||
    fail "no socket in $base/arbor-$me"
  sock=$(ls -d "$base/arbor-$me"/arbor-*.sock 2>/dev/null | head -n 1)
  default_name=${sock##*/}
  [ "$(stat -c '%a %u' "$base/arbor-$me")" = "700 $me" ] ||
    fail "the directory is $(stat -c '%a %u' "$base/arbor-$me"), expected 700 $me"
  [ "$(stat -c %a "$sock")" = 600 ] || fail "the socket has mode $(stat -c %a "$sock")"
  XDG_RUNTIME_DIR= TMPDIR=$base ctl status "$d/tree.lua"
  expect_code 0
  grep -q '^└─ a ' "$d/cout" || fail "status SCRIPT printed: $(cat "$d/cout")"
  XDG_RUNTIME_DIR= TMPDIR=$base ctl stop "$d/tree.lua"
  expect_code 0
  finish 5
  [ "$rc" = 0 ] || fail "the host exited $rc, expected 0"
  [ -e "$sock" ] && fail "the socket is still there"
fi
case_end

new_case "a default directory another user made first: run, status and reload refuse"
if [ "$can_switch" = 0 ]; then
  skip_case "$why_not"
elif [ -z "$default_name" ]; then
  fail "the first case found no default socket name"
  case_end
else
  base=$d/tmp
  mkdir -m 1777 "$base"
  dir=$base/arbor-$me
  nobody mkdir "$dir" || fail "nobody could not make $dir"
  squat "$dir/$default_name"
  XDG_RUNTIME_DIR= TMPDIR=$base ctl status "$d/tree.lua"
  expect_code 1
  expect_no_cout
  expect_cerr "$dir is not owned by you (owner uid $nobody_uid"
  expect_cerr "not a private directory"
  XDG_RUNTIME_DIR= TMPDIR=$base ctl reload "$d/tree.lua"
  expect_code 1
  expect_cerr "$dir is not owned by you"
  XDG_RUNTIME_DIR= TMPDIR=$base ctl run "$d/tree.lua"
  expect_code 1
  expect_one_line "arbor: $dir is not owned by you"
  grep -q 'start a' "$d/cout" && fail "the refused host started its tree"
  grep -q 'reload' "$d/squat.out" && fail "the squatter got a reload"
  kill -0 "$squatter" 2>/dev/null || fail "the squatter's host ended"
  case_end
fi

new_case "a default directory of ours with another mode, or a symlink, is refused"
base=$d/tmp
mkdir -m 1777 "$base"
dir=$base/arbor-$me
mkdir -m 755 "$dir"
XDG_RUNTIME_DIR= TMPDIR=$base ctl run "$d/tree.lua"
expect_code 1
expect_one_line "arbor: $dir does not have mode 0700 (owner uid $me, mode 0755)"
XDG_RUNTIME_DIR= TMPDIR=$base ctl status "$d/tree.lua"
expect_code 1
expect_cerr "$dir does not have mode 0700"
rmdir "$dir"
mkdir -m 700 "$d/elsewhere"
ln -s "$d/elsewhere" "$dir"
XDG_RUNTIME_DIR= TMPDIR=$base ctl run "$d/tree.lua"
expect_code 1
expect_one_line "arbor: $dir is a symbolic link"
[ -z "$(ls -A "$d/elsewhere")" ] || fail "something was made through the link"
grep -q 'start a' "$d/cout" && fail "a refused host started its tree"
case_end

new_case "XDG_RUNTIME_DIR that others can write is refused"
mkdir -m 777 "$d/run"
chmod 777 "$d/run" # whatever the umask
XDG_RUNTIME_DIR=$d/run ctl run "$d/tree.lua"
expect_code 1
expect_one_line "arbor: XDG_RUNTIME_DIR=$d/run is writable by others"
XDG_RUNTIME_DIR=$d/run ctl status "$d/tree.lua"
expect_code 1
expect_cerr "XDG_RUNTIME_DIR=$d/run is writable by others"
case_end

new_case "a host of another user on --control PATH: the client does not talk to it"
if [ "$can_switch" = 0 ]; then
  skip_case "$why_not"
else
  mkdir "$d/sq"
  chown "$nobody_uid" "$d/sq"
  squat "$d/sq/s.sock"
  ctl status --control "$d/sq/s.sock"
  expect_code 1
  expect_no_cout
  expect_one_line "arbor status: $d/sq/s.sock is served by uid $nobody_uid, not by you (uid $me) or root; not talking to it"
  ctl reload --control "$d/sq/s.sock"
  expect_code 1
  expect_cerr "is served by uid $nobody_uid"
  ctl stop --control "$d/sq/s.sock"
  expect_code 1
  ctl run --control "$d/sq/s.sock" "$d/tree.lua"
  expect_code 1
  expect_one_line "arbor: $d/sq/s.sock is a socket of uid $nobody_uid, not yours (uid $me); not replacing it"
  # It got no request at all: a reload would print, a stop would end it.
  grep -q 'reload' "$d/squat.out" && fail "the squatter got a reload"
  kill -0 "$squatter" 2>/dev/null || fail "the squatter's host ended"
  case_end
fi

new_case "a client of another user is refused by the host, which goes on"
if [ "$can_switch" = 0 ]; then
  skip_case "$why_not"
elif serve; then
  before=$(worker_pid)
  chmod 666 "$sock" # so that only the peer check stands in the way
  nobody "$root/bin/arbor" stop --control "$sock" >"$d/cout" 2>"$d/cerr"
  code=$?
  expect_code 1
  expect_no_cout
  expected="permission denied: uid $nobody_uid may not control this host (only uid $me and root)"
  [ "$me" = 0 ] && expected="permission denied: uid $nobody_uid may not control this host (only root)"
  expect_one_line "$expected"
  nobody "$root/bin/arbor" status --control "$sock" >"$d/cout" 2>"$d/cerr"
  code=$?
  expect_code 1
  expect_no_cout
  [ "$(worker_pid)" = "$before" ] || fail "the worker changed: $before -> $(worker_pid)"
  stop_host
  case_end
else
  case_end
fi

new_case "bad requests are answered with what was wrong and closed; the host goes on"
if serve; then
  before=$(worker_pid)
  send 'sta\0tus\n'
  [ "$code" = 0 ] || fail "NUL byte: no answer and close (ctlpeer exit $code)"
  [ "$answer" = $'2\nbad request: NUL byte at offset 3' ] || fail "NUL byte: answer '$answer'"
  send 'hello\n'
  [ "$answer" = $'2\nunknown request \'hello\' (expected status, reload [--dry-run], stop or eval LEN)' ] ||
    fail "unknown request: answer '$answer'"
  send '\xff\xfe status\n'
  [ "$answer" = $'2\nunknown request \'\\xff\\xfe\' (expected status, reload [--dry-run], stop or eval LEN)' ] ||
    fail "unprintable request: answer '$answer'"
  send '\033[2Jstatus\n'
  [ "$answer" = $'2\nbad request: control byte 0x1b at offset 0' ] ||
    fail "escape sequence: answer '$answer'"
  send 'stop now\n'
  [ "$answer" = $'2\nbad request: unknown argument \'now\' for stop' ] ||
    fail "stop with an argument: answer '$answer'"
  send '\n'
  [ "$answer" = $'2\nbad request: the line is empty' ] || fail "empty line: answer '$answer'"
  # 300 bytes and no newline, connection left open: the length limit
  # answers at once, not the 5 s deadline.
  send "$(printf 'a%.0s' {1..300})"
  [ "$code" = 0 ] || fail "overlong: no answer and close (ctlpeer exit $code)"
  [ "$answer" = $'2\nbad request: no newline within 256 bytes (requests are one short line)' ] ||
    fail "overlong: answer '$answer'"
  # A request ended by closing the sending side is complete.
  send 'status' --shut
  [[ $answer == $'0\nsvc '* ]] || fail "status then half-close: answer '$answer'"
  kill -0 "$pid" 2>/dev/null || fail "the host ended"
  [ "$(worker_pid)" = "$before" ] || fail "the worker changed: $before -> $(worker_pid)"
  grep -q reload "$d/out" && fail "a bad request reloaded: $(cat "$d/out")"
  stop_host
fi
case_end

new_case "at most 16 connections; idle ones are answered and closed after 5 s"
if serve; then
  rm -f "$d/hold.in"
  mkfifo "$d/hold.in"
  perl "$PEER" hold "$sock" 16 <"$d/hold.in" >"$d/hold.out" 2>"$d/hold.err" &
  holder=$!
  helpers+=("$holder")
  exec 4>"$d/hold.in"
  wait_for grep -qx 'held 16' "$d/hold.out" ||
    fail "the 16 connections were not made: $(cat "$d/hold.err")"
  ctl status --control "$sock"
  expect_code 1
  expect_no_cout
  expect_one_line "the host is busy: 16 control connections are open; try again"
  echo go >&4
  exec 4>&-
  wait "$holder"
  n=$(grep -cxF 'answer: 2 | bad request: no complete request line within 5 s' "$d/hold.out")
  [ "$n" = 16 ] || fail "$n of 16 idle connections were answered and closed: $(cat "$d/hold.out")"
  ctl status --control "$sock"
  expect_code 0
  stop_host
fi
case_end

new_case "a host that does not answer: the client gives up after --timeout; the host survives clients that left"
if serve; then
  kill -STOP "$pid"
  ctl status --control "$sock" --timeout 0.5
  expect_code 1
  expect_one_line "arbor status: no answer from $sock within 0.5 s"
  ctl reload --control "$sock" --timeout 1
  expect_code 1
  expect_one_line "arbor reload: no answer from $sock within 1 s (the host may still finish the reload; --timeout SECONDS waits longer)"
  kill -CONT "$pid"
  # The host now reads both requests and answers clients that are gone.
  wait_line 'reload: *'
  ctl status --control "$sock"
  expect_code 0
  stop_host
fi
case_end

new_case "a server that accepts and never answers: status gives up after 5 s"
sock=$d/silent.sock
peer_server silent "$sock"
ctl status --control "$sock"
expect_code 1
expect_one_line "arbor status: no answer from $sock within 5 s"
ctl stop --control "$sock" --timeout 0.25
expect_code 1
expect_one_line "arbor stop: no answer from $sock within 0.25 s"
for bad in 0 -1 abc 1e9 nan; do
  ctl status --control "$sock" --timeout "$bad"
  expect_code 2
  expect_cerr "arbor: --timeout needs a number of seconds (0.001 to 86400), not '$bad'"
done
case_end

new_case "SIGPIPE ends no client: a server that hangs up, a reader that left"
sock=$d/hang.sock
peer_server hangup "$sock"
for i in {1..30}; do
  ctl reload --control "$sock"
  if [ "$code" != 1 ]; then
    fail "try $i: exit $code, expected 1: $(cat "$d/cerr")"
    break
  fi
  grep -qE 'closed without answering|hung up before taking the request|cannot read from' "$d/cerr" ||
    fail "try $i: unclear message: $(cat "$d/cerr")"
done
sock=$d/s.sock
if serve; then
  timeout 20 perl "$PEER" closed-stdout "$ARBOR" status --control "$sock" 2>"$d/cerr"
  code=$?
  expect_code 1
  expect_one_line "arbor status: cannot print the answer: Broken pipe"
  stop_host
fi
case_end

new_case "a --control path too long for a socket is refused, never cut short"
long=$d/$(printf 'x%.0s' {1..120}).sock
ctl run --control "$long" "$d/tree.lua"
expect_code 2
expect_one_line "arbor: control socket path too long for a Unix socket (${#long} bytes, at most 107): $long"
grep -q 'start a' "$d/cout" && fail "the host started its tree"
[ -n "$(find "$d" -name 'xxx*')" ] && fail "a socket was made: $(find "$d" -name 'xxx*')"
for cmd in status reload stop; do
  ctl "$cmd" --control "$long"
  expect_code 2
  expect_one_line "arbor: control socket path too long for a Unix socket (${#long} bytes, at most 107)"
done
# 107 bytes is the most a socket path can have, and it works.
sock=$d/$(printf 'p%.0s' $(seq $((107 - ${#d} - 6)))).sock
[ "${#sock}" = 107 ] || fail "the test made a ${#sock}-byte path"
if serve; then
  [ -S "$sock" ] || fail "no socket at the 107-byte path"
  stop_host
fi
# A default path too long: XDG_RUNTIME_DIR itself is long.
run=$d/$(printf 'r%.0s' {1..90})
mkdir "$run"
XDG_RUNTIME_DIR=$run ctl run "$d/tree.lua"
expect_code 1
expect_one_line "arbor: the default control socket path in $run is too long for a Unix socket"
XDG_RUNTIME_DIR=$run ctl status "$d/tree.lua"
expect_code 1
expect_cerr "the default control socket path in $run is too long"
case_end

new_case "setup errors are one line: a second host on the same socket"
if serve; then
  ctl run --control "$sock" "$d/tree.lua"
  expect_code 1
  expect_one_line "arbor: another host is already serving on $sock"
  grep -q 'start a' "$d/cout" && fail "the second host started its tree"
  stop_host
fi
case_end

[ "$failed" = 0 ] && echo "all $count cases passed"
exit "$failed"
