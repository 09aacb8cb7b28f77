/*
** loop.c: drives the node's run queue and timers from a libuv loop.
**
** Why idle + prepare: libuv blocks in poll unless an idle handle is
** active.  The prepare callback runs just before each poll, after every
** callback that could have woken a process, so it is the one place that
** needs to decide whether the loop may block and for how long.
*/
#include "loop.h"

#include <signal.h>

/* Slices per loop turn: large enough that message passing between
** processes rarely goes back to poll, small enough that a signal is seen
** within a few milliseconds.  Timers are checked more often, every
** SLICES_PER_TIMER_CHECK slices, since a busy process's slice is a full
** instruction budget. */
#define SLICES_PER_TURN 4096
#define SLICES_PER_TIMER_CHECK 16

static const int handled_signals[3] = {SIGINT, SIGTERM, SIGHUP};

int64_t arb_rt_now(arb_rt_t *rt) {
  uv_update_time(&rt->loop);
  return (int64_t)(uv_now(&rt->loop) - rt->epoch);
}

static void run_slices(arb_rt_t *rt) {
  arb_node_t *node = rt->node;
  arb_node_run_timers(node, arb_rt_now(rt));
  for (int i = 1; i <= SLICES_PER_TURN && !rt->stopping; i++) {
    arb_proc_t *p = arb_node_next(node);
    if (p == NULL) break;
    rt->ops.resume(rt->ud, p);
    if (i % SLICES_PER_TIMER_CHECK == 0)
      arb_node_run_timers(node, arb_rt_now(rt));
  }
}

static void on_idle(uv_idle_t *h) { run_slices(h->data); }

static void on_timer(uv_timer_t *h) {
  arb_rt_t *rt = h->data;
  arb_node_run_timers(rt->node, arb_rt_now(rt));
}

static void on_prepare(uv_prepare_t *h) {
  arb_rt_t *rt = h->data;
  if (rt->stopping) return;
  if (!arb_list_empty(&rt->node->runq))
    uv_idle_start(&rt->idle, on_idle);
  else
    uv_idle_stop(&rt->idle);
  int64_t next = arb_node_next_deadline(rt->node);
  if (next < 0) {
    uv_timer_stop(&rt->timer);
    return;
  }
  int64_t delay = next - arb_rt_now(rt);
  uv_timer_start(&rt->timer, on_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

static void on_signal(uv_signal_t *h, int signum) {
  arb_rt_t *rt = h->data;
  if (rt->ops.signal) rt->ops.signal(rt->ud, signum);
}

int arb_rt_init(arb_rt_t *rt, arb_node_t *node, const arb_rt_ops_t *ops,
                void *ud) {
  /* A write to a closed pipe (a control client that hung up, stdout piped
  ** into `head`) must fail with EPIPE, not end the whole host. */
  signal(SIGPIPE, SIG_IGN);
  int rc = uv_loop_init(&rt->loop);
  if (rc) return rc;
  rt->node = node;
  rt->ops = *ops;
  rt->ud = ud;
  rt->stopping = 0;
  uv_idle_init(&rt->loop, &rt->idle);
  uv_prepare_init(&rt->loop, &rt->prepare);
  uv_timer_init(&rt->loop, &rt->timer);
  rt->idle.data = rt->prepare.data = rt->timer.data = rt;
  uv_prepare_start(&rt->prepare, on_prepare);
  /* The prepare handle must not by itself keep the loop alive. */
  uv_unref((uv_handle_t *)&rt->prepare);
  for (int i = 0; i < 3; i++) {
    uv_signal_init(&rt->loop, &rt->signals[i]);
    rt->signals[i].data = rt;
    uv_signal_start(&rt->signals[i], on_signal, handled_signals[i]);
  }
  uv_update_time(&rt->loop);
  rt->epoch = uv_now(&rt->loop);
  return 0;
}

int arb_rt_run(arb_rt_t *rt) {
  /* Run what is already runnable before the first poll. */
  run_slices(rt);
  while (!rt->stopping) {
    uv_run(&rt->loop, UV_RUN_ONCE);
  }
  return 0;
}

void arb_rt_stop(arb_rt_t *rt) {
  rt->stopping = 1;
  uv_stop(&rt->loop);
}

void arb_rt_close(arb_rt_t *rt) {
  uv_idle_stop(&rt->idle);
  uv_prepare_stop(&rt->prepare);
  uv_timer_stop(&rt->timer);
  uv_close((uv_handle_t *)&rt->idle, NULL);
  uv_close((uv_handle_t *)&rt->prepare, NULL);
  uv_close((uv_handle_t *)&rt->timer, NULL);
  for (int i = 0; i < 3; i++) uv_close((uv_handle_t *)&rt->signals[i], NULL);
  /* A uv_stop made before any uv_run leaves the stop flag set, and the
  ** first uv_run returns at once (clearing it): run until the closes are
  ** done and the loop can be closed. */
  do {
    uv_run(&rt->loop, UV_RUN_DEFAULT);
  } while (uv_loop_close(&rt->loop) == UV_EBUSY);
}
