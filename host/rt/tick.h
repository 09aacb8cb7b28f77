/*
** tick.h: a periodic signal on the host's own thread, the clock that
** tells the scheduler a slice has run too long.
**
** A POSIX timer (CLOCK_MONOTONIC) delivers a real-time signal to the
** thread that called arb_tick_init, never to libuv's pool threads.  The
** handler calls the embedder's function, in signal context; it returns
** whether the tick is still wanted, and when it is not the timer is
** disarmed (so an idle host takes no signals).  arb_tick_arm starts it
** again; it costs a system call only when the timer was disarmed.
**
** It owns the timer and the signal's disposition.  It knows nothing of
** Lua, libuv or the core: what a tick means is the embedder's business
** (host/bind/lguard.c sets a Lua hook on the running thread).
*/
#ifndef ARB_RT_TICK_H
#define ARB_RT_TICK_H

#include <stdint.h>

/* Called in signal context at every tick.  Must be async-signal-safe.
** Returns nonzero to keep ticking, 0 to disarm until arb_tick_arm. */
typedef int (*arb_tick_fn)(void);

/* Creates the timer (disarmed) for the calling thread and installs the
** handler (SA_RESTART, so system calls it interrupts are restarted where
** the kernel can).  Returns 0 or -errno.  Without it arb_tick_arm does
** nothing: code that runs no processes needs no tick. */
int arb_tick_init(int64_t period_us, arb_tick_fn fn);

/* Starts the periodic tick if it is not running.  Main thread only. */
void arb_tick_arm(void);

/* Has a tick arrived since the last call?  (Clears it.)  The loop asks
** between slices, so a run of long slices cannot hold timers back. */
int arb_tick_take(void);

/* Deletes the timer and restores the signal's previous disposition. */
void arb_tick_close(void);

#endif
