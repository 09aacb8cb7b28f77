/*
** proc.c: the process table, the run queue, waiting, timers and the exit
** worklist of a node.
**
** Slots hold pointers to arb_proc_t structs (which never move, because
** lists point into them) and a generation per slot.  Freed slots are
** recycled LIFO; their generation is bumped first, so old pids go stale.
** Process structs themselves are recycled through the same free list.
*/
#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "node.h"

#define NO_SLOT UINT32_MAX

arb_reason_t arb_reason_normal = {0, ARB_REASON_NORMAL, 0};
arb_reason_t arb_reason_shutdown = {0, ARB_REASON_SHUTDOWN, 0};
arb_reason_t arb_reason_kill = {0, ARB_REASON_KILL, 0};
arb_reason_t arb_reason_killed = {0, ARB_REASON_KILLED, 0};
arb_reason_t arb_reason_noproc = {0, ARB_REASON_NOPROC, 0};

arb_reason_t *arb_reason_new(int kind, intptr_t payload) {
  arb_reason_t *r = arb_malloc(sizeof(*r));
  if (r == NULL) return NULL;
  r->refs = 1;
  r->kind = (uint8_t)kind;
  r->payload = payload;
  return r;
}

arb_reason_t *arb_reason_retain(arb_reason_t *r) {
  if (r->refs) r->refs++;
  return r;
}

void arb_reason_release(arb_node_t *node, arb_reason_t *r) {
  if (r == NULL || r->refs == 0) return;
  if (--r->refs > 0) return;
  if (node->ops.free_reason) node->ops.free_reason(node->ud, r->payload);
  arb_free(r, sizeof(*r));
}

arb_node_t *arb_node_new(const arb_node_ops_t *ops, void *ud) {
  arb_node_t *node = arb_calloc(1, sizeof(*node));
  if (node == NULL) return NULL;
  if (ops) node->ops = *ops;
  node->ud = ud;
  node->free_head = NO_SLOT;
  arb_list_init(&node->runq);
  arb_list_init(&node->exit_worklist);
  node->next_id = 1;
  arb_timers_init(&node->timers);
  return node;
}

static void free_proc_struct(arb_node_t *node, arb_proc_t *p) {
  uint32_t slot = arb_pid_slot(p->pid);
  node->gens[slot]++;
  if (node->gens[slot] == 0) node->gens[slot] = 1;
  p->state = ARB_PROC_FREE;
  p->next_free = node->free_head;
  node->free_head = slot;
  node->nprocs--;
}

void arb_node_free(arb_node_t *node) {
  if (node == NULL) return;
  node->closing = 1;
  /* Newest first, the order a supervisor would stop them in. */
  for (uint32_t i = node->nslots; i-- > 0;) {
    arb_proc_t *p = node->slots[i];
    if (p && p->state != ARB_PROC_FREE && p->state != ARB_PROC_DEAD)
      arb_node_exit(node, p, &arb_reason_killed);
  }
  if (node->current && node->current->state == ARB_PROC_DEAD)
    free_proc_struct(node, node->current);
  node->current = NULL;
  for (uint32_t i = 0; i < node->nslots; i++)
    arb_free(node->slots[i], sizeof(arb_proc_t));
  arb_free(node->slots, node->cap * sizeof(*node->slots));
  arb_free(node->gens, node->cap * sizeof(*node->gens));
  arb_node_trim(node);
  arb_timers_close(&node->timers);
  arb_free(node, sizeof(*node));
}

/* Grows both tables or neither, so sizes stay exact after a failure. */
void arb_node_trim(arb_node_t *node) {
  while (node->msg_pool) {
    arb_msg_t *m = node->msg_pool;
    node->msg_pool = m->next;
    arb_free(m, sizeof(*m));
  }
}

static int grow(arb_node_t *node) {
  uint32_t ncap = node->cap ? node->cap * 2 : 256;
  arb_proc_t **slots = arb_malloc(ncap * sizeof(*slots));
  uint32_t *gens = arb_malloc(ncap * sizeof(*gens));
  if (slots == NULL || gens == NULL) {
    arb_free(slots, ncap * sizeof(*slots));
    arb_free(gens, ncap * sizeof(*gens));
    return ARB_ENOMEM;
  }
  if (node->cap) {
    memcpy(slots, node->slots, node->cap * sizeof(*slots));
    memcpy(gens, node->gens, node->cap * sizeof(*gens));
  }
  arb_free(node->slots, node->cap * sizeof(*node->slots));
  arb_free(node->gens, node->cap * sizeof(*node->gens));
  node->slots = slots;
  node->gens = gens;
  node->cap = ncap;
  return 0;
}

arb_proc_t *arb_node_spawn(arb_node_t *node) {
  uint32_t slot;
  arb_proc_t *p;
  if (node->closing) return NULL;
  if (node->free_head != NO_SLOT) {
    slot = node->free_head;
    p = node->slots[slot];
    node->free_head = p->next_free;
  } else {
    if (node->nslots == node->cap && grow(node) != 0) return NULL;
    p = arb_malloc(sizeof(*p));
    if (p == NULL) return NULL;
    slot = node->nslots++;
    node->slots[slot] = p;
    node->gens[slot] = 1;
  }
  memset(p, 0, sizeof(*p));
  p->pid = ((uint64_t)node->gens[slot] << 32) | slot;
  p->state = ARB_PROC_RUNNABLE;
  arb_list_init(&p->subjects);
  arb_list_init(&p->links);
  arb_list_init(&p->monitors);
  arb_list_init(&p->watchers);
  arb_list_init(&p->exit_hooks);
  arb_list_insert_tail(&node->runq, &p->runq);
  node->nprocs++;
  return p;
}

arb_pid_t arb_node_next_pid(const arb_node_t *node) {
  if (node->closing) return ARB_PID_NONE;
  if (node->free_head != NO_SLOT)
    return ((uint64_t)node->gens[node->free_head] << 32) | node->free_head;
  return ((uint64_t)1 << 32) | node->nslots;
}

arb_proc_t *arb_node_lookup(const arb_node_t *node, arb_pid_t pid) {
  uint32_t slot = arb_pid_slot(pid);
  if (slot >= node->nslots || node->gens[slot] != arb_pid_gen(pid))
    return NULL;
  arb_proc_t *p = node->slots[slot];
  if (p->state == ARB_PROC_FREE || p->state == ARB_PROC_DEAD) return NULL;
  if (p->flags & ARB_PROC_EXITING) return NULL;
  return p;
}

arb_proc_t *arb_node_lookup_any(const arb_node_t *node, arb_pid_t pid) {
  uint32_t slot = arb_pid_slot(pid);
  if (slot >= node->nslots || node->gens[slot] != arb_pid_gen(pid))
    return NULL;
  arb_proc_t *p = node->slots[slot];
  return p->state == ARB_PROC_FREE ? NULL : p;
}

uint32_t arb_node_count(const arb_node_t *node) {
  uint32_t n = node->nprocs;
  if (node->current && node->current->state == ARB_PROC_DEAD) n--;
  return n;
}

arb_proc_t *arb_node_next(arb_node_t *node) {
  arb_proc_t *p = node->runnext;
  if (p) {
    node->runnext = NULL;
    if (node->runnext_streak < ARB_RUNNEXT_BUDGET ||
        arb_list_empty(&node->runq)) {
      if (node->runnext_streak < ARB_RUNNEXT_BUDGET) node->runnext_streak++;
      goto run;
    }
    /* Budget spent: behind everyone already waiting for a turn. */
    arb_list_insert_tail(&node->runq, &p->runq);
  }
  node->runnext_streak = 0;
  if (arb_list_empty(&node->runq)) return NULL;
  arb_list_t *n = node->runq.next;
  arb_list_remove(n);
  p = arb_container_of(n, arb_proc_t, runq);
run:
  p->state = ARB_PROC_RUNNING;
  node->current = p;
  return p;
}

void arb_node_release(arb_node_t *node, arb_proc_t *p) {
  if (node->current == p) node->current = NULL;
  switch (p->state) {
    case ARB_PROC_RUNNING:
      p->state = ARB_PROC_RUNNABLE;
      arb_list_insert_tail(&node->runq, &p->runq);
      break;
    case ARB_PROC_DEAD:
      free_proc_struct(node, p);
      break;
    default:
      break;
  }
}

int arb_node_wait(arb_node_t *node, arb_proc_t *p, int64_t now,
                  int64_t timeout_ms) {
  p->flags &= (uint8_t)~ARB_PROC_TIMED_OUT;
  if (timeout_ms >= 0) {
    p->wait_timer = arb_timers_start(&node->timers, now, timeout_ms,
                                     ARB_TIMER_WAKE, p->pid, 0);
    if (p->wait_timer == 0) return ARB_ENOMEM;
  }
  p->state = ARB_PROC_WAITING;
  return 0;
}

void arb_node_wait_done(arb_node_t *node, arb_proc_t *p) {
  if (p->wait_timer) {
    arb_timers_cancel(&node->timers, p->wait_timer, node->now, NULL, NULL);
    p->wait_timer = 0;
  }
  p->flags &= (uint8_t) ~(ARB_PROC_TIMED_OUT | ARB_PROC_EXITS_SELECTED);
}

void arb_node_wait_cancel(arb_node_t *node, arb_proc_t *p) {
  arb_node_wait_done(node, p);
  if (p->state == ARB_PROC_WAITING && p == node->current)
    p->state = ARB_PROC_RUNNING;
}

void arb_node_wake(arb_node_t *node, arb_proc_t *p) {
  if (p->state != ARB_PROC_WAITING) return;
  p->state = ARB_PROC_RUNNABLE;
  arb_list_insert_tail(&node->runq, &p->runq);
}

void arb_node_wake_by_send(arb_node_t *node, arb_proc_t *p) {
  if (p->state != ARB_PROC_WAITING) return;
  if (node->runnext != NULL || node->current == NULL) {
    arb_node_wake(node, p);
    return;
  }
  p->state = ARB_PROC_RUNNABLE;
  node->runnext = p; /* its runq node stays self-linked */
}

void arb_node_hook_exit(arb_proc_t *p, arb_exit_hook_t *hook) {
  arb_list_insert_tail(&p->exit_hooks, &hook->node);
}

void arb_node_unhook_exit(arb_exit_hook_t *hook) {
  arb_list_remove(&hook->node);
}

/* Everything that happens when p ends, in the order the header promises. */
static void finish_exit(arb_node_t *node, arb_proc_t *p) {
  while (!arb_list_empty(&p->exit_hooks)) {
    arb_exit_hook_t *h =
        arb_container_of(p->exit_hooks.next, arb_exit_hook_t, node);
    arb_list_remove(&h->node);
    h->fn(node, h, p);
  }
  arb__mbox_owner_ended(node, p);
  arb__links_owner_ended(node, p);
  if (p->wait_timer) {
    arb_timers_cancel(&node->timers, p->wait_timer, node->now, NULL, NULL);
    p->wait_timer = 0;
  }
  int was_current = (p == node->current);
  p->state = ARB_PROC_DEAD;
  p->flags &= (uint8_t)~ARB_PROC_EXITING;
  if (node->ops.proc_ended) node->ops.proc_ended(node->ud, p);
  arb_reason_release(node, p->reason);
  p->reason = NULL;
  if (!was_current) free_proc_struct(node, p);
}

void arb_node_exit(arb_node_t *node, arb_proc_t *p, arb_reason_t *reason) {
  if (p->state == ARB_PROC_FREE || p->state == ARB_PROC_DEAD) return;
  if (p->flags & ARB_PROC_EXITING) return;
  p->flags |= ARB_PROC_EXITING;
  p->reason = arb_reason_retain(reason);
  /* Out of the run queue or run-next slot (if there), onto the worklist. */
  if (node->runnext == p) node->runnext = NULL;
  arb_list_remove(&p->runq);
  arb_list_insert_tail(&node->exit_worklist, &p->runq);
  if (node->draining) return;
  node->draining = 1;
  while (!arb_list_empty(&node->exit_worklist)) {
    arb_list_t *n = node->exit_worklist.next;
    arb_list_remove(n);
    finish_exit(node, arb_container_of(n, arb_proc_t, runq));
  }
  node->draining = 0;
}

void arb_node_spawn_abort(arb_node_t *node, arb_proc_t *p) {
  assert(p->state == ARB_PROC_RUNNABLE && p != node->current);
  assert(arb_list_empty(&p->links) && arb_list_empty(&p->monitors) &&
         arb_list_empty(&p->watchers) && p->wait_timer == 0);
  if (node->runnext == p) node->runnext = NULL;
  arb_list_remove(&p->runq);
  p->reason = &arb_reason_killed; /* for hooks that read it */
  while (!arb_list_empty(&p->exit_hooks)) {
    arb_exit_hook_t *h =
        arb_container_of(p->exit_hooks.next, arb_exit_hook_t, node);
    arb_list_remove(&h->node);
    h->fn(node, h, p);
  }
  arb__mbox_owner_ended(node, p);
  p->reason = NULL;
  free_proc_struct(node, p);
}

void arb_node_exit_all(arb_node_t *node, arb_proc_t *except,
                       arb_reason_t *reason) {
  for (uint32_t i = node->nslots; i-- > 0;) {
    arb_proc_t *p = node->slots[i];
    if (p != except && p->state != ARB_PROC_FREE && p->state != ARB_PROC_DEAD)
      arb_node_exit(node, p, reason);
  }
}

arb_timer_id_t arb_node_timer_start(arb_node_t *node, int64_t now,
                                    int64_t delay, int kind, arb_pid_t pid,
                                    intptr_t payload) {
  return arb_timers_start(&node->timers, now, delay, kind, pid, payload);
}

int arb_node_timer_cancel(arb_node_t *node, arb_timer_id_t id, int64_t now,
                          int64_t *left, arb_timer_t *out) {
  return arb_timers_cancel(&node->timers, id, now, left, out);
}

int arb_node_run_timers(arb_node_t *node, int64_t now) {
  arb_timer_t t;
  arb_timer_id_t id;
  int fired = 0;
  node->now = now;
  /* Timers started by the callbacks below expire at now + delay > now at
  ** the earliest only when delay > 0; a zero delay fires in this pass,
  ** which is what send_after(s, 0, m) should do. */
  while ((id = arb_timers_pop_expired(&node->timers, now, &t)) != 0) {
    fired++;
    if (t.kind == ARB_TIMER_WAKE) {
      arb_proc_t *p = arb_node_lookup(node, t.pid);
      if (p && p->wait_timer == id) {
        p->wait_timer = 0;
        p->flags |= ARB_PROC_TIMED_OUT;
        arb_node_wake(node, p);
      }
    } else if (node->ops.timer_fired) {
      node->ops.timer_fired(node->ud, id, &t);
    }
  }
  return fired;
}

int64_t arb_node_next_deadline(const arb_node_t *node) {
  return arb_timers_next(&node->timers);
}

int arb_node_check(const arb_node_t *node) {
  uint32_t alive = 0;
  for (uint32_t i = 0; i < node->nslots; i++) {
    arb_proc_t *p = node->slots[i];
    if (p == NULL) return -1;
    if (p->state == ARB_PROC_FREE) continue;
    alive++;
    if (arb_pid_slot(p->pid) != i || arb_pid_gen(p->pid) != node->gens[i])
      return -2;
    if (p->state == ARB_PROC_RUNNING && node->current != p) return -3;
  }
  if (alive != node->nprocs) return -4;
  const arb_list_t *n;
  arb_list_each(n, &node->runq) {
    const arb_proc_t *p = arb_container_of(n, arb_proc_t, runq);
    if (p->state != ARB_PROC_RUNNABLE || p == node->runnext) return -5;
  }
  if (node->runnext && (node->runnext->state != ARB_PROC_RUNNABLE ||
                        node->runnext->runq.next != &node->runnext->runq))
    return -5;
  return arb_timers_check(&node->timers) ? -6 : 0;
}
