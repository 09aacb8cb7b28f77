#!/usr/bin/env bash
# tests/diff_otp/run.sh: the differential test against Erlang/OTP.
#
#   run.sh ARBOR [SEED [COUNT]]     (defaults: a fixed seed, 200 scenarios)
#
# gen.lua draws COUNT scenarios from SEED (supervision trees with
# strategies, intensities and restart types, then child exits,
# terminate_child and restart_child; or processes that link, unlink,
# monitor, trap exits, signal each other and die).  interp.lua runs them
# all on arbor in one run, diff_otp.erl on Erlang/OTP (erl from Debian's
# erlang-nox) in one run; both print one line per step of what can be
# observed.  The traces must be identical.  On a difference this prints
# the seed, the first scenario that differs, as data and as both traces,
# so `run.sh ARBOR SEED` replays it.  Needs erl and erlc: scripts/setup
# installs erlang-nox.
set -euo pipefail

arbor=$(realpath "$1")
seed=${2:-20261130}
count=${3:-200}
here=$(cd "$(dirname "$0")" && pwd)

for tool in erl erlc; do
  if ! command -v "$tool" >/dev/null; then
    echo "diff_otp: $tool not found (scripts/setup installs erlang-nox)" >&2
    exit 1
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# DIFF_OTP_KEEP=DIR keeps the scenarios and both traces there.
keep() { [ -z "${DIFF_OTP_KEEP:-}" ] || cp "$work"/scenarios.* "$work"/*.trace "$DIFF_OTP_KEEP"; }

echo "diff_otp: seed $seed, $count scenarios"
"$arbor" "$here/gen.lua" "$seed" "$count" "$work"
erlc -o "$work" "$here/diff_otp.erl"
# One scheduler: the VM runs one process at a time, as arbor does.
erl -noshell +S 1 -pa "$work" \
  -eval "diff_otp:main([\"$work/scenarios.terms\", \"$work/otp.trace\"])"
"$arbor" "$here/interp.lua" "$work/scenarios.lua" > "$work/arbor.trace"

keep
if cmp -s "$work/otp.trace" "$work/arbor.trace"; then
  echo "ok: $(wc -l < "$work/otp.trace") steps agree with Erlang/OTP"
  exit 0
fi

# The first line that differs names the scenario: "<id>.<step> ...".
first=$(diff "$work/otp.trace" "$work/arbor.trace" | grep -m1 '^[<>] ' \
        | cut -c3-) || true
id=${first%%.*}
echo "not ok: arbor differs from Erlang/OTP (seed $seed, scenario $id)"
echo "--- scenario $id:"
sed -n "${id}p" "$work/scenarios.terms"
echo "--- Erlang/OTP:"
grep "^$id\." "$work/otp.trace" || true
echo "--- arbor:"
grep "^$id\." "$work/arbor.trace" || true
echo "--- replay: $0 ARBOR $seed $count"
exit 1
