/*
** mbox.c: subjects (one FIFO per subject) and the trapped-exit queue.
**
** A process's mailbox is not one list but the set of its subjects' queues
** plus its exit queue, each circular through its newest entry.  Global sequence numbers keep "oldest message
** first" meaningful across them, so a selector compares k queue heads
** instead of scanning everything the process has been sent.
*/
#include "alloc.h"
#include "node.h"

arb_msg_t *arb__msg_alloc(arb_node_t *node) {
  arb_msg_t *m = node->msg_pool;
  if (m) {
    node->msg_pool = m->next;
    return m;
  }
  return arb_malloc(sizeof(*m));
}

void arb__msg_free(arb_node_t *node, arb_msg_t *m) {
  m->next = node->msg_pool;
  node->msg_pool = m;
}

void arb_subject_init(arb_node_t *node, arb_subject_t *sub,
                      arb_proc_t *owner) {
  sub->owner = owner->pid;
  sub->owner_proc = owner;
  sub->id = (uint32_t)node->next_id++;
  sub->tail = NULL;
  sub->len = 0;
  sub->selected = 0;
  arb_list_insert_tail(&owner->subjects, &sub->owner_node);
}

static void drop_messages(arb_node_t *node, arb_subject_t *sub) {
  arb_msg_t *tail = sub->tail;
  sub->tail = NULL;
  sub->len = 0;
  if (tail == NULL) return;
  arb_msg_t *m = tail->next;
  tail->next = NULL; /* break the circle */
  while (m) {
    arb_msg_t *next = m->next;
    if (node->ops.free_payload) node->ops.free_payload(node->ud, m->payload);
    arb__msg_free(node, m);
    m = next;
  }
}

void arb_subject_fini(arb_node_t *node, arb_subject_t *sub) {
  drop_messages(node, sub);
  arb_list_remove(&sub->owner_node);
  sub->owner_proc = NULL;
  sub->selected = 0;
}

int arb_subject_send(arb_node_t *node, arb_subject_t *sub, intptr_t payload) {
  arb_proc_t *owner = sub->owner_proc;
  if (owner == NULL) {
    if (node->ops.free_payload) node->ops.free_payload(node->ud, payload);
    return ARB_ENOPROC;
  }
  arb_msg_t *m = arb__msg_alloc(node);
  if (m == NULL) {
    if (node->ops.free_payload) node->ops.free_payload(node->ud, payload);
    return ARB_ENOMEM;
  }
  m->seq = node->seq++;
  m->payload = payload;
  if (sub->tail) {
    m->next = sub->tail->next;
    sub->tail->next = m;
  } else {
    m->next = m;
  }
  sub->tail = m;
  sub->len++;
  if (sub->selected) arb_node_wake_by_send(node, owner);
  return 0;
}

int arb_subject_take(arb_node_t *node, arb_subject_t *sub, intptr_t *payload) {
  if (sub->tail == NULL) return ARB_ENOTFOUND;
  arb_msg_t *m = sub->tail->next;
  if (m == sub->tail)
    sub->tail = NULL;
  else
    sub->tail->next = m->next;
  sub->len--;
  *payload = m->payload;
  arb__msg_free(node, m);
  return 0;
}

int arb_exits_take(arb_proc_t *p, arb_pid_t *from, arb_reason_t **reason) {
  if (p->exits_tail == NULL) return ARB_ENOTFOUND;
  arb_exitmsg_t *e = p->exits_tail->next;
  if (e == p->exits_tail)
    p->exits_tail = NULL;
  else
    p->exits_tail->next = e->next;
  *from = e->from;
  *reason = e->reason;
  arb_free(e, sizeof(*e));
  return 0;
}

void arb__mbox_owner_ended(arb_node_t *node, arb_proc_t *p) {
  while (!arb_list_empty(&p->subjects)) {
    arb_subject_t *sub =
        arb_container_of(p->subjects.next, arb_subject_t, owner_node);
    arb_subject_fini(node, sub);
  }
  arb_exitmsg_t *e = NULL;
  if (p->exits_tail) {
    e = p->exits_tail->next;
    p->exits_tail->next = NULL; /* break the circle */
    p->exits_tail = NULL;
  }
  while (e) {
    arb_exitmsg_t *next = e->next;
    arb_reason_release(node, e->reason);
    arb_free(e, sizeof(*e));
    e = next;
  }
}
