#!/usr/bin/env bash
# test_cli: the arbor command line: exit codes, messages, the arg table,
# crash reports.  Usage: bash test_cli.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_cli.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch

# run ARGS...: runs arbor (10 s at most); sets rc, out, err.
run() {
  timeout 10 "$ARBOR" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

case_end() { report_case; }
expect_rc() { [ "$rc" = "$1" ] || fail "exit status $rc, expected $1"; }
expect_out() {  # a fixed string somewhere in stdout
  grep -qF -- "$1" "$tmp/out" || fail "stdout lacks '$1'"
}
expect_err() {  # a fixed string somewhere in stderr
  grep -qF -- "$1" "$tmp/err" || fail "stderr lacks '$1'"
}
expect_err_re() {  # an extended regex somewhere in stderr
  grep -qE -- "$1" "$tmp/err" || fail "stderr does not match /$1/"
}
expect_out_line() {  # an exact line of stdout
  grep -qxF -- "$1" "$tmp/out" || fail "stdout lacks the line '$1'"
}
expect_no_err() { [ -z "$err" ] || fail "stderr is not empty"; }

case_start "a script that returns exits 0"
run scripts/ok.lua
expect_rc 0
expect_out_line "hello from ok.lua"
expect_no_err
case_end

case_start "arbor run SCRIPT exits 0 too"
run run scripts/ok.lua
expect_rc 0
expect_out_line "hello from ok.lua"
case_end

case_start "a script that raises exits 1 with arbor: and a traceback"
run scripts/raise.lua
expect_rc 1
expect_out_line "before the error"
expect_err_re "^arbor: scripts/raise\.lua:3: script boom"
expect_err "stack traceback:"
expect_err "raise.lua:4"
case_end

for value in normal shutdown; do
  case_start "main raising the string \"$value\" still exits 1"
  run scripts/raise_value.lua "$value"
  expect_rc 1
  expect_err_re "^arbor: $value"
  case_end
done

case_start "a raised object with __tostring is shown by it"
run scripts/table_error.lua
expect_rc 1
expect_err_re "^arbor: .*custom error object"
case_end

case_start "a syntax error exits 2 with file:line:"
run scripts/syntax.lua
expect_rc 2
expect_err "scripts/syntax.lua:3:"
[ -z "$out" ] || fail "stdout is not empty"
case_end

case_start "a missing file exits 2 and names the file"
run scripts/no_such_script.lua
expect_rc 2
expect_err "scripts/no_such_script.lua"
case_end

case_start "arbor run with a missing file exits 2"
run run scripts/no_such_script.lua
expect_rc 2
expect_err "scripts/no_such_script.lua"
case_end

case_start "no arguments: usage, exit 2"
run
expect_rc 2
expect_err "usage"
case_end

case_start "run without a script: usage, exit 2"
run run
expect_rc 2
expect_err "usage"
case_end

case_start "an unknown option exits 2"
run --no-such-option
expect_rc 2
expect_err "no-such-option"
case_end

case_start "an unknown option after run exits 2"
run run --no-such-option scripts/ok.lua
expect_rc 2
expect_err "no-such-option"
case_end

case_start "--help exits 0 with usage on stdout"
run --help
expect_rc 0
expect_out "usage"
case_end

case_start "--version exits 0 and prints 'arbor '"
run --version
expect_rc 0
[[ $out == "arbor "* ]] || fail "version line '$out' does not start with 'arbor '"
case_end

case_start "arbor SCRIPT a b: arg and ..."
run scripts/args.lua a b
expect_rc 0
expect_out_line "arg[-1]=$ARBOR"
expect_out_line "arg[0]=scripts/args.lua"
expect_out_line "arg[1]=a"
expect_out_line "arg[2]=b"
expect_out_line "arg[3]=nil"
expect_out_line "#arg=2"
expect_out_line "n=2"
expect_out_line "varargs=a,b"
case_end

case_start "arbor run SCRIPT a b: arg and ..., arg[-1] is run"
run run scripts/args.lua a b
expect_rc 0
expect_out_line "arg[-1]=run"
expect_out_line "arg[0]=scripts/args.lua"
expect_out_line "arg[1]=a"
expect_out_line "arg[2]=b"
expect_out_line "#arg=2"
expect_out_line "n=2"
expect_out_line "varargs=a,b"
case_end

case_start "arguments that look like options belong to the script"
run scripts/args.lua --x -y
expect_rc 0
expect_out_line "arg[1]=--x"
expect_out_line "arg[2]=-y"
expect_out_line "varargs=--x,-y"
case_end

case_start "a crash report names pid, reason and traceback in one block"
run scripts/crash_report.lua
expect_rc 0
pid=$(sed -n 's/^pid=//p' "$tmp/out")
expect_out_line "reason=scripts/crash_report.lua:10: worker boom"
if [ -z "$pid" ]; then
  fail "no pid printed"
else
  # The block: the line naming the pid, then (before any blank line or
  # another report) the reason and a traceback through the worker.
  block=$(awk -v pid="$pid" '
    index($0, pid) && !started { started = 1 }
    started && /^$/ { exit }
    started { print }
  ' "$tmp/err")
  [ -n "$block" ] || fail "no stderr line names $pid"
  grep -qF "worker boom" <<<"$block" || fail "the block lacks the reason"
  grep -qF "stack traceback:" <<<"$block" || fail "the block lacks a traceback"
  grep -qF "deep_in_worker" <<<"$block" ||
    fail "the traceback does not go through deep_in_worker"
  # Nothing else in stderr: the report is the only output.
  [ "$(grep -c "worker boom" "$tmp/err")" = 1 ] ||
    fail "the reason appears more than once"
  grep -q "^arbor: " "$tmp/err" && fail "main is reported as failed"
fi
case_end

case_start "main ended by a linked crash exits 1 with arbor: and the reason"
run scripts/main_killed.lua
expect_rc 1
expect_err_re "^arbor: .*linked worker boom"
case_end

case_start "main killed from another process exits 1"
run scripts/main_killed_by_kill.lua
expect_rc 1
expect_err_re "^arbor: .*killed"
case_end

case_start "main ending itself with exit(self(), \"normal\") exits 0"
run scripts/main_exit.lua normal
expect_rc 0
[ -z "$out" ] || fail "code after exit ran"
case_end

case_start "main ending itself with reason \"shutdown\" exits 1"
run scripts/main_exit.lua shutdown
expect_rc 1
expect_err_re "^arbor: .*shutdown"
[ -z "$out" ] || fail "code after exit ran"
case_end

case_start "main ending itself with another reason exits 1"
run scripts/main_exit.lua my_reason
expect_rc 1
expect_err_re "^arbor: .*my_reason"
case_end

case_start "main returns while unlinked processes run: they stop, exit 0"
run scripts/leftovers.lua
expect_rc 0
expect_out_line "main returns"
case_end

case_start "a raised object whose __tostring raises still exits 1"
run scripts/bad_tostring.lua
expect_rc 1
expect_err "arbor: "
case_end

case_start "a reader that leaves early does not end the host (SIGPIPE)"
timeout 10 "$ARBOR" scripts/pipe.lua 2>"$tmp/err" </dev/null | head -1 >/dev/null
rc=${PIPESTATUS[0]}
err=$(cat "$tmp/err")
expect_rc 0
expect_err "still running after the reader left"
case_end

if [ "$failed" = 0 ]; then
  echo "all $count cases passed"
fi
exit "$failed"
