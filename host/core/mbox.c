/*
** mbox.c: subjects (one FIFO per subject) and the trapped-exit queue.
**
** A process's mailbox is not one list but the set of its subjects' queues
** plus its exit queue.  Global sequence numbers keep "oldest message
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
  sub->id = node->next_id++;
  sub->head = sub->tail = NULL;
  sub->len = 0;
  sub->selected = 0;
  arb_list_insert_tail(&owner->subjects, &sub->owner_node);
}

static void drop_messages(arb_node_t *node, arb_subject_t *sub) {
  arb_msg_t *m = sub->head;
  sub->head = sub->tail = NULL;
  sub->len = 0;
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
  m->next = NULL;
  m->seq = node->seq++;
  m->payload = payload;
  if (sub->tail)
    sub->tail->next = m;
  else
    sub->head = m;
  sub->tail = m;
  sub->len++;
  if (sub->selected) arb_node_wake(node, owner);
  return 0;
}

int arb_subject_take(arb_node_t *node, arb_subject_t *sub, intptr_t *payload) {
  arb_msg_t *m = sub->head;
  if (m == NULL) return ARB_ENOTFOUND;
  sub->head = m->next;
  if (sub->head == NULL) sub->tail = NULL;
  sub->len--;
  *payload = m->payload;
  arb__msg_free(node, m);
  return 0;
}

int arb_exits_take(arb_proc_t *p, arb_pid_t *from, arb_reason_t **reason) {
  arb_exitmsg_t *e = p->exits_head;
  if (e == NULL) return ARB_ENOTFOUND;
  p->exits_head = e->next;
  if (p->exits_head == NULL) p->exits_tail = NULL;
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
  arb_exitmsg_t *e = p->exits_head;
  p->exits_head = p->exits_tail = NULL;
  while (e) {
    arb_exitmsg_t *next = e->next;
    arb_reason_release(node, e->reason);
    arb_free(e, sizeof(*e));
    e = next;
  }
}
