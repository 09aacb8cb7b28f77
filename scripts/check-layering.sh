#!/usr/bin/env bash
# scripts/check-layering.sh: the layers' rules, checked on the sources.
#
#   - host/core includes neither Lua's nor libuv's headers; host/rt
#     includes no Lua header.
#   - Outside host/core nobody touches the core's structs: no process
#     state or flag constant, no core-internal function (arb__*), no field
#     of arb_node_t, no private field of arb_proc_t, arb_subject_t or
#     arb_monitor_t.  Those go through the accessors in node.h's "sealed
#     surface" section.  The fields free for the embedder (p->data,
#     p->user_kind, p->user_flags), p->pid and, in proc_ended, p->reason
#     stay readable.
#
# So that it cannot pass by checking nothing, it first runs every pattern
# on a sample of forbidden code (each must match) and on a sample of
# allowed code (none may), and it fails if a layer has no sources.
# Usage: scripts/check-layering.sh [SOURCE_DIR]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# Code outside host/core: extended regexes, one rule per line.
core_private=(
  '\bARB_PROC_(TRAP_EXIT|TIMED_OUT|EXITS_SELECTED|EXITING)\b'
  '->state[[:space:]]*[!=]=[[:space:]]*ARB_PROC_'
  '\bARB_MONITOR_(IDLE|ACTIVE|FIRED)\b'
  '\barb__[a-z_]+\('
  '\bnode->(ops|ud|slots|gens|nslots|cap|free_head|nprocs|runq|current|runnext|runnext_streak|exit_worklist|draining|closing|seq|next_id|msg_pool|timers|now)\b'
  '(->|\.)(owner_proc|exits_tail|wait_timer|exit_worklist|msg_pool|free_head|owner_node|target_node)\b'
  '\b(sub|base\.sub)\.(owner|tail|len|id|selected)\b'
  '\bmon\.(owner|target|state|selected|reason|seq|id)\b'
  '\bp->(state|flags|nlinks|runq|subjects|links|monitors|watchers|exit_hooks)\b'
)
core_includes='#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib|luaconf|uv)\.h[>"]'
rt_includes='#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib|luaconf)\.h[>"]'

bad_sample='
  if (p->state == ARB_PROC_DEAD) return;
  m->mon.state = ARB_MONITOR_FIRED;
  arb__mbox_owner_ended(node, p);
  arb_proc_t *self = ctx->node->current;
  if (s->sub.owner_proc == NULL) return 0;
  s->sub.selected = 1;
  pid = m->mon.target;
  p->flags |= ARB_PROC_TRAP_EXIT;
  if (ctx->node->current->state == ARB_PROC_DEAD) return;
  if (!node->closing) start(s);
'
good_sample='
  if (arb_proc_is_dead(p)) return;
  arb_proc_t *self = arb_node_current(ctx->node);
  if (!arb_subject_owner_alive(&s->sub)) return 0;
  arb_subject_select(&s->sub, 1);
  pid = arb_monitor_target(&m->mon);
  p->user_kind = LARB_SYSTEM; co = p->data; id = p->pid;
  c->state = WRITING; op->flags = 0; lg.sub = NULL;
  switch (info.state) { case ARB_PROC_WAITING: break; }
'
fail=0
for re in "${core_private[@]}"; do
  if ! grep -Eq -e "$re" <<<"$bad_sample"; then
    echo "check-layering: rule matches nothing it should: $re" >&2; fail=1
  fi
  if grep -Eq -e "$re" <<<"$good_sample"; then
    echo "check-layering: rule matches allowed code: $re" >&2; fail=1
  fi
done
grep -Eq "$core_includes" <<<'#include <uv.h>' || { echo "check-layering: include rule broken" >&2; fail=1; }

shopt -s nullglob
core_files=(host/core/*.c host/core/*.h)
rt_files=(host/rt/*.c host/rt/*.h)
upper_files=(host/rt/*.c host/rt/*.h host/bind/*.c host/bind/*.h host/*.c)
for layer in core_files rt_files upper_files; do
  declare -n files=$layer
  if [ ${#files[@]} -eq 0 ]; then
    echo "check-layering: no sources for $layer under $root" >&2; fail=1
  fi
done

if out=$(grep -nE "$core_includes" "${core_files[@]}"); then
  echo "check-layering: host/core includes a Lua or libuv header:" >&2
  echo "$out" >&2; fail=1
fi
if out=$(grep -nE "$rt_includes" "${rt_files[@]}"); then
  echo "check-layering: host/rt includes a Lua header:" >&2
  echo "$out" >&2; fail=1
fi
for re in "${core_private[@]}"; do
  if out=$(grep -nE -e "$re" "${upper_files[@]}" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)'); then
    echo "check-layering: core internals used outside host/core ($re):" >&2
    echo "$out" >&2; fail=1
  fi
done
if [ $fail -eq 0 ]; then
  echo "check-layering: ok (${#core_files[@]} core, ${#upper_files[@]} rt/bind files)"
fi
exit $fail
