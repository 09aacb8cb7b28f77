/*
** timer.h: timers as data, on a clock the caller passes in.
**
** A timer is a deadline plus a kind, a pid and a payload that the core
** does not interpret.  Timers live in a slot table (so a timer id, like a
** pid, carries a generation and a stale id finds nothing) and a binary
** min-heap ordered by (deadline, start order): timers that expire together
** fire in the order they were started, as in libuv.
**
** Nothing here reads a clock, allocates per operation once the tables
** have grown, or calls back: the caller pops expired timers and acts.
** Depends on libc and alloc.h only.
*/
#ifndef ARB_CORE_TIMER_H
#define ARB_CORE_TIMER_H

#include <stdint.h>

#include "arb.h"

/* (generation << 32) | slot; 0 is never a valid timer id. */
typedef uint64_t arb_timer_id_t;

typedef struct arb_timer_s {
  int64_t deadline;
  uint64_t seq;        /* start order, breaks deadline ties */
  uint32_t gen;
  uint32_t heap_index; /* position in the heap while pending */
  uint32_t next_free;
  uint8_t pending;
  uint8_t kind;        /* caller-defined */
  arb_pid_t pid;       /* caller-defined */
  intptr_t payload;    /* caller-defined */
} arb_timer_t;

typedef struct arb_timers_s {
  arb_timer_t *slots;
  uint32_t nslots, cap;
  uint32_t free_head; /* UINT32_MAX when empty */
  uint32_t *heap;     /* slot indices */
  uint32_t nheap;
  uint64_t seq;
} arb_timers_t;

/* Initialises an empty set of timers.  Never fails. */
void arb_timers_init(arb_timers_t *t);
/* Frees the tables; pending timers are forgotten. */
void arb_timers_close(arb_timers_t *t);

/* Starts a timer that expires at now + delay (delay < 0 counts as 0).
** Returns its id, or 0 when out of memory. */
arb_timer_id_t arb_timers_start(arb_timers_t *t, int64_t now, int64_t delay,
                                int kind, arb_pid_t pid, intptr_t payload);

/* Cancels a pending timer.  Returns 0 and sets *left (if not NULL) to the
** milliseconds that remained (at least 0), or ARB_ENOTFOUND if the timer
** already fired or was cancelled.  *out (if not NULL) receives a copy of
** the timer so the caller can release its payload. */
int arb_timers_cancel(arb_timers_t *t, arb_timer_id_t id, int64_t now,
                      int64_t *left, arb_timer_t *out);

/* Returns the pending timer with that id, or NULL. */
const arb_timer_t *arb_timers_get(const arb_timers_t *t, arb_timer_id_t id);

/* The earliest deadline, or -1 when no timer is pending. */
int64_t arb_timers_next(const arb_timers_t *t);

/* Removes the earliest timer if it has expired at now: returns its id and
** copies it to *out; returns 0 if none has expired. */
arb_timer_id_t arb_timers_pop_expired(arb_timers_t *t, int64_t now,
                                      arb_timer_t *out);

/* Number of pending timers. */
uint32_t arb_timers_pending(const arb_timers_t *t);

/* Checks the heap invariants; returns 0 when they hold. */
int arb_timers_check(const arb_timers_t *t);

#endif
