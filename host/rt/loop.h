/*
** loop.h: the libuv runtime that drives a node.
**
** It owns the uv loop and four handles: an idle handle that is active
** only while processes are runnable (so the loop polls without blocking),
** a prepare handle that decides that before each poll, one uv timer armed
** to the node's earliest deadline, and an async handle woken by its
** signal handlers (SIGINT, SIGTERM, SIGHUP, SIGUSR1).  Processes run in
** slices from the idle callback, a bounded number per loop turn so timers
** and I/O are never starved by a busy run queue.
**
** Running a process is the embedder's job (ops->resume): this layer knows
** libuv and the core, never Lua.
*/
#ifndef ARB_RT_LOOP_H
#define ARB_RT_LOOP_H

#include <uv.h>

#include "node.h"

typedef struct arb_rt_ops_s {
  /* Runs one slice of p, which arb_node_next made current.  Must call
  ** arb_node_release(node, p) before returning. */
  void (*resume)(void *ud, arb_proc_t *p);
  /* A signal the host listens to arrived (SIGINT, SIGTERM, SIGHUP,
  ** SIGUSR1). */
  void (*signal)(void *ud, int signum);
} arb_rt_ops_t;

#define ARB_RT_NSIGNALS 4 /* SIGINT, SIGTERM, SIGHUP, SIGUSR1 */

typedef struct arb_rt_s {
  uv_loop_t loop;
  uv_idle_t idle;
  uv_prepare_t prepare;
  uv_timer_t timer;
  uv_async_t signal_async; /* wakes the loop when a signal arrived */
  arb_node_t *node;
  arb_rt_ops_t ops;
  void *ud;
  uint64_t epoch; /* uv_now at init: node time starts near 0 */
  int stopping;
} arb_rt_t;

/* Initialises rt around node.  Returns 0 or a libuv error code. */
int arb_rt_init(arb_rt_t *rt, arb_node_t *node, const arb_rt_ops_t *ops,
                void *ud);

/* Runs until arb_rt_stop.  Returns 0 or a libuv error code. */
int arb_rt_run(arb_rt_t *rt);

/* Makes arb_rt_run return after the current callback. */
void arb_rt_stop(arb_rt_t *rt);

/* Closes every handle and the loop. */
void arb_rt_close(arb_rt_t *rt);

/* Has SIGINT or SIGTERM arrived and not yet been dispatched?  Safe to
** call from code that cannot return to the loop. */
int arb_rt_stop_requested(void);

/* The node's clock: monotonic milliseconds since arb_rt_init. */
int64_t arb_rt_now(arb_rt_t *rt);

#endif
