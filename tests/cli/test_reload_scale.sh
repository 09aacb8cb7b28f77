#!/usr/bin/env bash
# test_reload_scale: reloads of a real host serving 5,000 children in one
# supervisor (tests/bench/reload_tree.lua): unchanged, one child changed,
# half of them removed, then added back between the others.  Each reload
# prints the right summary, `arbor status` lists the children in the new
# order, and kept children keep their processes.  No timing is asserted
# here (figures: tests/bench/reload.sh and tests/bench/README.md).
# Usage: bash test_reload_scale.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_reload_scale.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./live_lib.sh

N=5000
tree_script=$PWD/../bench/reload_tree.lua

# shape KEY=VALUE...: writes $d/reload_shape.lua (n = N by default).
shape() {
  local fields="n = $N" kv
  for kv; do fields="$fields, ${kv%%=*} = ${kv#*=}"; done
  save "$d/reload_shape.lua" "return { $fields }"
}

# ids_from_status FILE: the ids of a status listing, one line.
ids_line() { awk '{ print $1 }' "$d/$1" | tr '\n' ' '; }

# expected_ids KEEP EXTRA: the ids reload_tree.lua declares, one line.
expected_ids() {
  local i out=
  for ((i = 1; i <= N; i++)); do
    if [ "$1" = all ] || ((i % 2 == 0)); then out="${out}c$i "; fi
    if ((i <= $2)); then out="${out}x$i "; fi
  done
  printf '%s' "$out"
}

# kept_pids [ID]: every child listed in both "before" and "after" kept its
# pid, except ID.
kept_pids() {
  local changed
  changed=$(awk -v except="${1:-}" 'NR == FNR { pid[$1] = $2; next }
    ($1 in pid) && $1 != except && pid[$1] != $2 { print $1 }' \
    "$d/before" "$d/after" | head -n 3)
  [ -z "$changed" ] || fail "children that should have kept their pid: $changed"
}

new_case "5,000 children: unchanged, one changed, half removed, re-added"
cp "$tree_script" "$d/tree.lua"
shape 'strategy="one_for_one"' 'keep="all"' 'extra=0' 'changed=0'
start_host --control "$sock" "$d/tree.lua"
if wait_ready; then
  snap before
  [ "$(ids_line before)" = "$(expected_ids all 0)" ] ||
    fail "status does not list c1 .. c$N in order"
  reload_ok "reload: no changes"
  shape 'strategy="one_for_one"' 'keep="all"' 'extra=0' 'changed=2500' \
    'value="2"'
  reload_ok "reload: changed c2500; restarted c2500"
  snap after
  kept_pids c2500
  [ "$(pid_in before c2500)" != "$(pid_in after c2500)" ] ||
    fail "c2500 was not restarted"
  cp "$d/after" "$d/before"
  shape 'strategy="one_for_one"' 'keep="even"' 'extra=0' 'changed=2500' \
    'value="2"'
  out=$(timeout 60 "$ARBOR" reload --control "$sock" 2>&1)
  case $out in "reload: removed c1, "*) ;;
    *) fail "the removal printed: ${out:0:200}" ;; esac
  wait_line "reload: removed *" >/dev/null
  snap after
  [ "$(ids_line after)" = "$(expected_ids even 0)" ] ||
    fail "status after the removal: $(ids_line after | cut -c1-200)"
  kept_pids
  cp "$d/after" "$d/before"
  shape 'strategy="one_for_one"' 'keep="all"' 'extra=1000' 'changed=2500' \
    'value="2"'
  out=$(timeout 60 "$ARBOR" reload --control "$sock" 2>&1)
  case $out in "reload: added c1, x1, x2, c3, x3, x4, c5, "*) ;;
    *) fail "the additions printed: ${out:0:200}" ;; esac
  wait_line "reload: added *" >/dev/null
  snap after
  [ "$(ids_line after)" = "$(expected_ids all 1000)" ] ||
    fail "status after the additions: $(ids_line after | cut -c1-200)"
  kept_pids
  stop_host
fi
case_end

[ "$failed" = 0 ] && echo "all $count cases passed"
exit "$failed"
