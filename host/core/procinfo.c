/*
** procinfo.c: what procinfo.h describes, read from the node's lists.
*/
#include "procinfo.h"

#include <string.h>

static int is_live(const arb_proc_t *p) {
  return p->state == ARB_PROC_RUNNABLE || p->state == ARB_PROC_RUNNING ||
         p->state == ARB_PROC_WAITING;
}

int arb_proc_info(const arb_node_t *node, arb_pid_t pid, arb_proc_info_t *out) {
  const arb_proc_t *p = arb_node_lookup(node, pid);
  if (p == NULL) return ARB_ENOPROC;
  memset(out, 0, sizeof(*out));
  out->pid = p->pid;
  out->state = p->state;
  out->user_kind = p->user_kind;
  out->trap_exit = (p->flags & ARB_PROC_TRAP_EXIT) != 0;
  int waiting = p->state == ARB_PROC_WAITING;
  out->exits_selected = waiting && (p->flags & ARB_PROC_EXITS_SELECTED);
  out->bytes = sizeof(arb_proc_t);
  const arb_list_t *pos;
  arb_list_each(pos, &p->subjects) {
    const arb_subject_t *s = arb_container_of(pos, arb_subject_t, owner_node);
    out->subjects++;
    out->queued += s->len;
    if (waiting && s->selected) out->selected_subjects++;
  }
  out->bytes += out->queued * sizeof(arb_msg_t);
  arb_list_each(pos, &p->links) out->links++;
  /* One link is one allocation shared by its two ends. */
  out->bytes += out->links * (sizeof(arb_link_t) / 2);
  arb_list_each(pos, &p->monitors) {
    const arb_monitor_t *m = arb_container_of(pos, arb_monitor_t, owner_node);
    out->monitors++;
    if (m->state == ARB_MONITOR_FIRED) out->downs_queued++;
    if (waiting && m->selected) out->selected_monitors++;
  }
  arb_list_each(pos, &p->watchers) out->monitored_by++;
  if (p->exits_tail) {
    const arb_exitmsg_t *e = p->exits_tail;
    do {
      out->exits_queued++;
      e = e->next;
    } while (e != p->exits_tail);
  }
  out->bytes += out->exits_queued * sizeof(arb_exitmsg_t);
  out->wake_at = -1;
  if (waiting && p->wait_timer) {
    const arb_timer_t *t = arb_timers_get(&node->timers, p->wait_timer);
    if (t) {
      out->timer_armed = 1;
      out->wake_at = t->deadline;
    }
  }
  return 0;
}

arb_pid_t arb_node_next_live(const arb_node_t *node, uint32_t *cursor) {
  while (*cursor < node->nslots) {
    const arb_proc_t *p = node->slots[(*cursor)++];
    if (p && is_live(p)) return p->pid;
  }
  return ARB_PID_NONE;
}

arb_pid_t arb_node_current_pid(const arb_node_t *node) {
  return node->current ? node->current->pid : ARB_PID_NONE;
}
