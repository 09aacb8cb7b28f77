/*
** procinfo.h: read-only accessors for looking at processes from outside
** the core (arbor status --processes, arbor.introspect, the dashboard).
**
** The binding never reads arb_proc_t's fields to describe a process; it
** asks here, so the process table's layout stays the core's to change.
** Everything is computed on demand from the node's own lists: nothing is
** counted on the hot paths (send, receive, spawn) for the sake of these
** functions, so a call costs O(subjects + links + monitors + queued exit
** signals) of the one process.
**
** Depends on node.h only.  Never allocates, never reads a clock.
*/
#ifndef ARB_CORE_PROCINFO_H
#define ARB_CORE_PROCINFO_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

typedef struct arb_proc_info_s {
  arb_pid_t pid;
  uint8_t state;          /* arb_proc_state_t */
  uint8_t user_kind;      /* the embedder's kind byte */
  uint8_t trap_exit;      /* exit signals become messages */
  uint8_t exits_selected; /* waiting: on its trapped exits */
  uint8_t timer_armed;    /* waiting: a timer will wake it */
  uint32_t subjects;          /* subjects it owns */
  uint32_t selected_subjects; /* waiting: subjects it waits on */
  uint32_t links;
  uint32_t monitors;          /* monitors it holds (active or fired) */
  uint32_t selected_monitors; /* waiting: monitors it waits on */
  uint32_t monitored_by;      /* active monitors on it */
  uint64_t queued;            /* messages queued on its subjects */
  uint32_t exits_queued;      /* trapped exit signals not yet taken */
  uint32_t downs_queued;      /* fired monitors whose DOWN is not taken */
  int64_t wake_at;            /* its wait timer's deadline (ms), or -1 */
  size_t bytes; /* C memory the core holds for it: the process struct,
                ** queued message and exit nodes, its link ends.  Not the
                ** embedder's memory (subjects and monitors live there). */
} arb_proc_info_t;

/* Fills *out for the live process pid.  Returns 0, or ARB_ENOPROC. */
int arb_proc_info(const arb_node_t *node, arb_pid_t pid, arb_proc_info_t *out);

/* Iterates the live processes in slot order: start with *cursor = 0;
** returns the next live pid and advances *cursor, or ARB_PID_NONE at the
** end.  Processes that end between calls are skipped, and ones spawned
** meanwhile may or may not be seen. */
arb_pid_t arb_node_next_live(const arb_node_t *node, uint32_t *cursor);

/* The pid of the running process, or ARB_PID_NONE between slices. */
arb_pid_t arb_node_current_pid(const arb_node_t *node);

#endif
