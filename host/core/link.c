/*
** link.c: links, monitors and exit signals, with Erlang's rules
** (reference/otp-semantics.md, section 4).
**
** A link is one allocation with an end in each process's link list, so
** ending a process removes each of its links in O(1); an explicit unlink
** scans the caller's links, which are few except on supervisors.  A monitor sits in
** its owner's list and, while active, in its target's watcher list; when
** the target ends the monitor keeps the DOWN (sequence number and reason)
** itself, so "demonitor drops a queued DOWN" is a field reset, not a
** mailbox search.  Linking to a process that is gone fails, and a caller
** that traps exits also gets a trapped exit with reason "noproc" from it,
** as Erlang's link/1 sends one.
*/
#include "alloc.h"
#include "node.h"

static arb_link_end_t *end_of(const arb_list_t *n) {
  return arb_container_of(n, arb_link_end_t, node);
}

static arb_link_end_t *find_link(arb_proc_t *a, arb_pid_t b) {
  arb_list_t *n;
  arb_list_each(n, &a->links) {
    if (end_of(n)->peer == b) return end_of(n);
  }
  return NULL;
}

/* The link between a and b, searched from whichever end has fewer links:
** a supervisor with 100,000 children finds a child's link in O(1). */
static arb_link_t *find_between(arb_proc_t *a, arb_proc_t *b) {
  arb_link_end_t *e = a->nlinks <= b->nlinks ? find_link(a, b->pid)
                                             : find_link(b, a->pid);
  return e ? e->link : NULL;
}

static void free_link(arb_node_t *node, arb_link_t *l) {
  arb_list_remove(&l->ends[0].node);
  arb_list_remove(&l->ends[1].node);
  /* ends[1].peer is ends[0]'s owner and vice versa. */
  arb_proc_t *a = arb_node_lookup_any(node, l->ends[1].peer);
  arb_proc_t *b = arb_node_lookup_any(node, l->ends[0].peer);
  if (a) a->nlinks--;
  if (b) b->nlinks--;
  arb_free(l, sizeof(*l));
}

/* Queues a trapped exit on p and wakes it if it waits on exits.  Returns
** 0 or ARB_ENOMEM (then nothing was queued). */
static int try_queue_exit(arb_node_t *node, arb_proc_t *p, arb_pid_t from,
                          arb_reason_t *reason) {
  arb_exitmsg_t *e = arb_malloc(sizeof(*e));
  if (e == NULL) return ARB_ENOMEM;
  e->seq = node->seq++;
  e->from = from;
  e->reason = arb_reason_retain(reason);
  if (p->exits_tail) {
    e->next = p->exits_tail->next;
    p->exits_tail->next = e;
  } else {
    e->next = e;
  }
  p->exits_tail = e;
  if (p->flags & ARB_PROC_EXITS_SELECTED) arb_node_wake(node, p);
  return 0;
}

/* try_queue_exit for an exit signal, which cannot be refused. */
static void queue_exit(arb_node_t *node, arb_proc_t *p, arb_pid_t from,
                       arb_reason_t *reason) {
  /* A trapping process that cannot even queue an exit cannot honour its
  ** links; ending it is the only safe answer. */
  if (try_queue_exit(node, p, from, reason) != 0)
    arb_node_exit(node, p, &arb_reason_killed);
}

int arb_link(arb_node_t *node, arb_proc_t *a, arb_pid_t b) {
  if (b == a->pid) return 0;
  arb_proc_t *pb = arb_node_lookup(node, b);
  if (pb == NULL) {
    /* Erlang: the link signal to a process that is gone comes back as
    ** an exit signal with reason noproc, which only a trapper sees. */
    if ((a->flags & ARB_PROC_TRAP_EXIT) &&
        try_queue_exit(node, a, b, &arb_reason_noproc) != 0)
      return ARB_ENOMEM;
    return ARB_ENOPROC;
  }
  if (find_between(a, pb)) return 0;
  arb_link_t *l = arb_malloc(sizeof(*l));
  if (l == NULL) return ARB_ENOMEM;
  l->ends[0].peer = b;
  l->ends[0].link = l;
  l->ends[1].peer = a->pid;
  l->ends[1].link = l;
  arb_list_insert_tail(&a->links, &l->ends[0].node);
  arb_list_insert_tail(&pb->links, &l->ends[1].node);
  a->nlinks++;
  pb->nlinks++;
  return 0;
}

void arb_unlink(arb_node_t *node, arb_proc_t *a, arb_pid_t b) {
  arb_proc_t *pb = arb_node_lookup_any(node, b);
  arb_link_t *l = pb ? find_between(a, pb) : NULL;
  if (l == NULL) {
    arb_link_end_t *e = find_link(a, b);
    if (e) l = e->link;
  }
  if (l) free_link(node, l);
}

uint32_t arb_links_of(const arb_proc_t *p, arb_pid_t *out, uint32_t max) {
  uint32_t count = 0;
  const arb_list_t *n;
  arb_list_each(n, &p->links) {
    if (count < max) out[count] = end_of(n)->peer;
    count++;
  }
  return count;
}

/* Delivers an exit signal to a live process.  Only a "kill" sent as a
** signal (from_link 0) is untrappable; a process that itself ended with
** reason "kill" passes it along its links as an ordinary reason. */
static void deliver(arb_node_t *node, arb_pid_t from, arb_proc_t *to,
                    arb_reason_t *reason, int from_link) {
  if (reason->kind == ARB_REASON_KILL && !from_link) {
    arb_node_exit(node, to, &arb_reason_killed);
    return;
  }
  if (to->flags & ARB_PROC_TRAP_EXIT) {
    queue_exit(node, to, from, reason);
    return;
  }
  if (reason->kind == ARB_REASON_NORMAL && from != to->pid) return;
  arb_node_exit(node, to, reason);
}

int arb_signal_exit(arb_node_t *node, arb_pid_t from, arb_pid_t to,
                    arb_reason_t *reason) {
  arb_proc_t *p = arb_node_lookup(node, to);
  if (p == NULL) return ARB_ENOPROC;
  deliver(node, from, p, reason, 0);
  return 0;
}

void arb_monitor_init(arb_node_t *node, arb_monitor_t *m, arb_proc_t *owner,
                      arb_pid_t target) {
  m->owner = owner->pid;
  m->target = target;
  m->id = node->next_id++;
  m->selected = 0;
  m->reason = NULL;
  m->seq = 0;
  arb_list_init(&m->target_node);
  arb_list_insert_tail(&owner->monitors, &m->owner_node);
  arb_proc_t *t = arb_node_lookup(node, target);
  if (t == NULL) {
    m->state = ARB_MONITOR_FIRED;
    m->seq = node->seq++;
    m->reason = &arb_reason_noproc;
    return;
  }
  m->state = ARB_MONITOR_ACTIVE;
  arb_list_insert_tail(&t->watchers, &m->target_node);
}

void arb_monitor_fini(arb_node_t *node, arb_monitor_t *m) {
  arb_list_remove(&m->target_node);
  arb_list_remove(&m->owner_node);
  if (m->reason) arb_reason_release(node, m->reason);
  m->reason = NULL;
  m->state = ARB_MONITOR_IDLE;
  m->selected = 0;
}

arb_reason_t *arb_monitor_take(arb_node_t *node, arb_monitor_t *m) {
  (void)node;
  if (m->state != ARB_MONITOR_FIRED) return NULL;
  arb_reason_t *r = m->reason;
  m->reason = NULL;
  m->state = ARB_MONITOR_IDLE;
  m->selected = 0;
  arb_list_remove(&m->owner_node);
  return r;
}

void arb__links_owner_ended(arb_node_t *node, arb_proc_t *p) {
  arb_reason_t *reason = p->reason;
  /* Monitors p holds: nobody is left to receive their DOWNs. */
  while (!arb_list_empty(&p->monitors)) {
    arb_monitor_t *m =
        arb_container_of(p->monitors.next, arb_monitor_t, owner_node);
    arb_monitor_fini(node, m);
  }
  /* Links: remove each from both lists first, then signal the peer. */
  while (!arb_list_empty(&p->links)) {
    arb_link_end_t *e = end_of(p->links.next);
    arb_pid_t peer = e->peer;
    free_link(node, e->link);
    arb_proc_t *q = arb_node_lookup(node, peer);
    if (q) deliver(node, p->pid, q, reason, 1);
  }
  /* Monitors on p: each keeps its DOWN until taken. */
  while (!arb_list_empty(&p->watchers)) {
    arb_monitor_t *m =
        arb_container_of(p->watchers.next, arb_monitor_t, target_node);
    arb_list_remove(&m->target_node);
    m->state = ARB_MONITOR_FIRED;
    m->seq = node->seq++;
    m->reason = arb_reason_retain(reason);
    if (m->selected) {
      arb_proc_t *owner = arb_node_lookup(node, m->owner);
      if (owner) arb_node_wake(node, owner);
    }
  }
}
