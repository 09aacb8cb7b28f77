/*
** loop.c: drives the node's run queue and timers from a libuv loop.
**
** Why idle + prepare: libuv blocks in poll unless an idle handle is
** active.  The prepare callback runs just before each poll, after every
** callback that could have woken a process, so it is the one place that
** needs to decide whether the loop may block and for how long.
*/
#include "loop.h"

#include "logfile.h"
#include "tick.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/* Slices per loop turn: large enough that message passing between
** processes rarely goes back to poll, small enough that a signal is seen
** within a few milliseconds.  Timers are checked more often: every
** SLICES_PER_TIMER_CHECK slices, and after any slice during which the
** preemption tick (tick.c) came, since a busy process's slice lasts up
** to a tick period or two and sixteen of them would hold a timer back
** by tens of milliseconds. */
#define SLICES_PER_TURN 4096
#define SLICES_PER_TIMER_CHECK 16
/* A turn also ends after this long, so a run queue of busy processes
** (each slice a full instruction budget) cannot keep sockets, signals and
** the control plane waiting for hundreds of milliseconds on a loaded
** machine.  Checked with the timers, every SLICES_PER_TIMER_CHECK slices. */
#define TURN_MAX_NS (4 * 1000 * 1000)

static const int handled_signals[ARB_RT_NSIGNALS] = {SIGINT, SIGTERM,
                                                     SIGHUP, SIGUSR1};

static int asks_to_stop(int signum) {
  return signum == SIGINT || signum == SIGTERM;
}

/* Signals are caught by a plain handler rather than uv_signal_t, so that
** code which cannot return to the loop (Lua called back from C) can still
** see that a stop was asked for (arb_rt_stop_requested).  The handler only
** sets a flag and wakes the loop through an async handle, which libuv
** documents as async-signal-safe; the callback then dispatches. */
static arb_rt_t *signal_rt; /* the runtime that receives signals */
static volatile sig_atomic_t pending_signals[ARB_RT_NSIGNALS];
static volatile sig_atomic_t stop_requested;

static void on_os_signal(int signum) {
  int saved = errno;
  for (int i = 0; i < ARB_RT_NSIGNALS; i++)
    if (handled_signals[i] == signum) pending_signals[i] = 1;
  if (asks_to_stop(signum)) stop_requested = 1;
  if (signal_rt) uv_async_send(&signal_rt->signal_async);
  errno = saved;
}

int arb_rt_stop_requested(void) { return stop_requested; }

int64_t arb_rt_now(arb_rt_t *rt) {
  uv_update_time(&rt->loop);
  return (int64_t)(uv_now(&rt->loop) - rt->epoch);
}

static void run_slices(arb_rt_t *rt) {
  arb_node_t *node = rt->node;
  arb_node_run_timers(node, arb_rt_now(rt));
  uint64_t started = uv_hrtime();
  for (int i = 1; i <= SLICES_PER_TURN && !rt->stopping; i++) {
    arb_proc_t *p = arb_node_next(node);
    if (p == NULL) break;
    rt->ops.resume(rt->ud, p);
    if (i % SLICES_PER_TIMER_CHECK == 0 || arb_tick_take()) {
      arb_node_run_timers(node, arb_rt_now(rt));
      if (uv_hrtime() - started > TURN_MAX_NS) break;
    }
  }
}

static void on_idle(uv_idle_t *h) { run_slices(h->data); }

static void on_timer(uv_timer_t *h) {
  arb_rt_t *rt = h->data;
  arb_node_run_timers(rt->node, arb_rt_now(rt));
}

static void on_prepare(uv_prepare_t *h) {
  arb_rt_t *rt = h->data;
  /* The turn's log lines go out before the loop may block in poll. */
  arb_logfile_flush_pending();
  if (rt->stopping) return;
  if (arb_node_has_runnable(rt->node))
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

static void on_signal_async(uv_async_t *h) {
  arb_rt_t *rt = h->data;
  for (int i = 0; i < ARB_RT_NSIGNALS; i++) {
    if (!pending_signals[i]) continue;
    pending_signals[i] = 0;
    if (asks_to_stop(handled_signals[i])) stop_requested = 0;
    if (rt->ops.signal) rt->ops.signal(rt->ud, handled_signals[i]);
  }
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
  uv_async_init(&rt->loop, &rt->signal_async, on_signal_async);
  rt->signal_async.data = rt;
  /* Left referenced: it keeps the loop alive (so uv_run blocks in poll)
  ** while every process waits for something outside the loop's handles. */
  signal_rt = rt;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_os_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < ARB_RT_NSIGNALS; i++)
    sigaction(handled_signals[i], &sa, NULL);
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
  for (int i = 0; i < ARB_RT_NSIGNALS; i++) signal(handled_signals[i], SIG_DFL);
  signal_rt = NULL;
  uv_close((uv_handle_t *)&rt->signal_async, NULL);
  /* A uv_stop made before any uv_run leaves the stop flag set, and the
  ** first uv_run returns at once (clearing it): run until the closes are
  ** done and the loop can be closed. */
  do {
    uv_run(&rt->loop, UV_RUN_DEFAULT);
  } while (uv_loop_close(&rt->loop) == UV_EBUSY);
}
