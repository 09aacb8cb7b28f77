/*
** reaper.h: the host as the reaper of every OS process it started.
**
** At init the host makes itself a child subreaper (PR_SET_CHILD_SUBREAPER),
** so a descendant whose parent ends (a daemon that double-forked, a
** grandchild left by a shell) becomes the host's child instead of init's,
** and watches SIGCHLD with a uv_signal handle of its own (unreferenced).
**
** libuv reaps only the children it spawned, each with waitpid on its own
** pid (src/unix/process.c, uv__chld), and a child reaped by anyone else
** never reaches its exit callback.  So the reaper never reaps blindly: it
** peeks at the next zombie with waitid(P_ALL, WNOWAIT) and reaps it only
** if the owner check says libuv does not own it; at a zombie libuv owns it
** stops, and is run again (arb_reaper_scan) from the port's exit callback,
** once libuv has taken that one.  Children started by Lua's own io.popen
** (lstdlib_io.c) are kept (arb_reaper_keep): their close waits for them.
**
** Also the host's last word on its descendants: arb_reaper_children lists
** the host's live children (from /proc/self/task/T/children, or from every
** /proc/P/stat where the kernel lacks those files), so the end of
** the host can stop those that left every process group it knows.
** libuv and libc only; never Lua, never the core.
*/
#ifndef ARB_RT_REAPER_H
#define ARB_RT_REAPER_H

#include <sys/types.h>
#include <uv.h>

/* Does libuv still own (will it reap) the child pid? */
typedef int (*arb_reaper_owned_fn)(pid_t pid);

/* Makes the host a child subreaper and starts watching SIGCHLD.  0 or a
** libuv error (the subreaper part failing is not an error: the host then
** still reaps its own children). */
int arb_reaper_init(uv_loop_t *loop, arb_reaper_owned_fn owned);

/* Reaps every zombie child libuv does not own, up to the first it owns,
** and never one that is kept. */
void arb_reaper_scan(void);

/* Keeps the reaper's hands off child pid until arb_reaper_unkeep: its
** starter reaps it with waitpid (a popen's close).  0 or UV_ENOMEM. */
int arb_reaper_keep(pid_t pid);
void arb_reaper_unkeep(pid_t pid);

/* Fills pids (up to max) with the host's children still listed by the
** kernel (live or zombie, but for kept ones that have ended: their close
** reaps them); returns how many there are (may exceed max). */
int arb_reaper_children(pid_t *pids, int max);

/* Stops watching (before the loop closes). */
void arb_reaper_close(void);

#endif
