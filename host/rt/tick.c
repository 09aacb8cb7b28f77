/*
** tick.c: the periodic preemption signal (see tick.h).
**
** Why a signal: Lua 5.4 runs every instruction through its hook
** dispatcher (luaG_traceexec) for as long as any count hook is set on the
** running thread, which cost 12-14% of a message round trip.  With the
** tick the hook is set only on a slice that has already run a whole
** period, from the signal handler, which Lua allows (lua_sethook is
** documented as safe to call from a signal handler; lua.c stops a
** script on SIGINT that way).
**
** Why SIGEV_THREAD_ID: a process-directed signal may be delivered to any
** thread that does not block it, and libuv's pool threads block nothing.
** The signal must interrupt the thread that runs Lua.
*/
#define _GNU_SOURCE
#include "tick.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
  timer_t timer;
  int initialized;
  int signo;
  int64_t period_us;
  arb_tick_fn fn;
  struct sigaction previous;
  volatile sig_atomic_t armed;
  volatile sig_atomic_t arrived; /* a tick since arb_tick_take */
} tick;

static void set_timer(int64_t period_us) {
  struct itimerspec its;
  memset(&its, 0, sizeof(its));
  its.it_value.tv_sec = (time_t)(period_us / 1000000);
  its.it_value.tv_nsec = (long)(period_us % 1000000) * 1000;
  its.it_interval = its.it_value;
  timer_settime(tick.timer, 0, &its, NULL); /* async-signal-safe */
}

static void on_signal(int signo) {
  (void)signo;
  int saved_errno = errno;
  tick.arrived = 1;
  if (tick.armed && !tick.fn()) {
    tick.armed = 0;
    set_timer(0);
  }
  errno = saved_errno;
}

int arb_tick_init(int64_t period_us, arb_tick_fn fn) {
  if (tick.initialized) return -EBUSY;
  if (period_us <= 0 || fn == NULL) return -EINVAL;
  tick.signo = SIGRTMIN + 2;
  tick.period_us = period_us;
  tick.fn = fn;
  tick.armed = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(tick.signo, &sa, &tick.previous) != 0) return -errno;
  struct sigevent sev;
  memset(&sev, 0, sizeof(sev));
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = tick.signo;
  sev._sigev_un._tid = gettid();
  if (timer_create(CLOCK_MONOTONIC, &sev, &tick.timer) != 0) {
    int err = errno;
    sigaction(tick.signo, &tick.previous, NULL);
    return -err;
  }
  tick.initialized = 1;
  return 0;
}

void arb_tick_arm(void) {
  if (!tick.initialized || tick.armed) return;
  tick.armed = 1;
  set_timer(tick.period_us);
}

int arb_tick_take(void) {
  if (!tick.arrived) return 0;
  tick.arrived = 0;
  return 1;
}

void arb_tick_close(void) {
  if (!tick.initialized) return;
  tick.armed = 0;
  timer_delete(tick.timer);
  sigaction(tick.signo, &tick.previous, NULL);
  tick.initialized = 0;
}
