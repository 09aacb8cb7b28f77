/*
** sup.h: the supervisor restart engine (a planner, no processes).
**
** An arb_sup_t holds one supervisor's children in start order with their
** restart type, kind, status and restart count, plus the strategy and the
** intensity window.  Given an event (a child exit, a retry, a management
** call, a live edit) it returns a plan: an ordered list of SHUTDOWN, START
** and DROP steps naming children by stable key, and an outcome.  A separate
** executor (the supervisor process) carries the steps out in order and
** reports each one back; only those reports change a child's status, so the
** engine and the executor cannot drift apart.  While a plan has unreported
** steps every other mutating call fails with ARB_SUP_EBUSY (except
** arb_sup_stop, which abandons it).
**
** Backoff.  A child may carry a backoff (initial, max, reset_after, in
** ms): then a restart it needs is not planned at once but scheduled.  The
** exit's plan (outcome WAIT) only shuts down the running members of the
** strategy's set; they and the child are "restarting" and wait.  The
** delay is initial, doubling with each consecutive restart up to max; a
** child that ran at least reset_after ms before ending starts again from
** initial.  The engine owns the schedule (arb_sup_next_due says when to
** call arb_sup_due); the restart counts toward intensity when it happens.
**
** The engine owns its children and the current plan; it never owns or
** touches the `user` values.  Planning never allocates: memory is reserved
** when children are added.  Pure C11 on libc, alloc.h and list.h: no Lua,
** no libuv, no clock (time comes in as now_ms, a monotonic millisecond
** clock), no printing.
*/
#ifndef ARB_CORE_SUP_H
#define ARB_CORE_SUP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Error codes (0 is success): the engine's names for codes of err.h's
** one map (ENOTFOUND here means no such child). */
enum {
  ARB_SUP_ENOTFOUND = ARB_ENOTFOUND,
  ARB_SUP_ERUNNING = ARB_ERUNNING,
  ARB_SUP_ERESTARTING = ARB_ERESTARTING,
  ARB_SUP_ESTOPPED = ARB_ESTOPPED,
  ARB_SUP_ENOMEM = ARB_ENOMEM,
  ARB_SUP_EINVAL = ARB_EINVAL,
  ARB_SUP_EBUSY = ARB_EBUSY,
  ARB_SUP_ESTEP = ARB_ESTEP,
  ARB_SUP_ECORRUPT = ARB_ECORRUPT
};

/* Strategies.  REST_FOR_ONE is the default, as in gleam_otp. */
enum { ARB_SUP_REST_FOR_ONE, ARB_SUP_ONE_FOR_ONE, ARB_SUP_ONE_FOR_ALL };

/* Restart types: always, only after an abnormal exit, never (dropped). */
enum { ARB_SUP_PERMANENT, ARB_SUP_TRANSIENT, ARB_SUP_TEMPORARY };

/* Child kinds, for count_children. */
enum { ARB_SUP_WORKER, ARB_SUP_SUPERVISOR };

/* Child status: a live process, none but one is wanted, none. */
enum { ARB_SUP_RUNNING, ARB_SUP_RESTARTING, ARB_SUP_STOPPED };

/* Exit classes: "normal"; "shutdown" or {shutdown=true}; anything else,
** including "killed". */
enum { ARB_EXIT_NORMAL, ARB_EXIT_SHUTDOWN, ARB_EXIT_ABNORMAL };

/* Plan steps. */
enum { ARB_SUP_SHUTDOWN, ARB_SUP_START, ARB_SUP_DROP };

/* Plan outcomes: what the executor does once the steps are done.
** NONE: nothing more.  RESTART: nothing more (a restart happened; report
** it).  RETRY: send yourself a retry message for child `key`, and call
** arb_sup_retry when it arrives.  GIVE_UP: exit with reason "shutdown"
** (too many restarts).  FAIL: the request failed because child `key`
** failed to start; return nil, err naming it.
** WAIT: nothing more now; a restart of child `key` (and of the members
** of its set, which wait with it) is due at plan.due_ms: call arb_sup_due
** then (arb_sup_next_due tells the earliest such time). */
enum { ARB_SUP_NONE, ARB_SUP_RESTART, ARB_SUP_RETRY, ARB_SUP_GIVE_UP,
       ARB_SUP_FAIL, ARB_SUP_WAIT };

/* Limits of the flags, which bindings check (and report) before calling:
** max_restarts 0 .. ARB_SUP_MAX_INTENSITY (the window holds max_restarts+1
** times, allocated up front), period_ms ARB_SUP_MIN_PERIOD_MS ..
** ARB_SUP_MAX_PERIOD_MS (one billion seconds, about 31 years: exact in a
** double, so a period given in seconds converts without rounding
** surprises, and far from int64 overflow). */
#define ARB_SUP_MAX_INTENSITY (1 << 20)
#define ARB_SUP_MIN_PERIOD_MS 1
#define ARB_SUP_MAX_PERIOD_MS ((int64_t)1000 * 1000 * 1000 * 1000)
/* Backoff times (initial, max, reset_after) are 0 .. ARB_SUP_MAX_BACKOFF_MS
** (the same billion seconds): now + delay cannot overflow. */
#define ARB_SUP_MAX_BACKOFF_MS ARB_SUP_MAX_PERIOD_MS

typedef struct arb_sup_s arb_sup_t;

typedef struct arb_sup_flags_s {
  int strategy;      /* ARB_SUP_REST_FOR_ONE, ... */
  int max_restarts;  /* 0 .. ARB_SUP_MAX_INTENSITY */
  int64_t period_ms; /* a restart counts while now - t <= period_ms */
} arb_sup_flags_t;

/* A child's backoff: initial 0 means none (restarts are planned at once);
** otherwise 1 <= initial <= max and 0 <= reset_after, all at most
** ARB_SUP_MAX_BACKOFF_MS. */
typedef struct arb_sup_backoff_s {
  int64_t initial_ms, max_ms, reset_after_ms;
} arb_sup_backoff_t;

typedef struct arb_sup_spec_s {
  int restart;    /* ARB_SUP_PERMANENT, ARB_SUP_TRANSIENT, ARB_SUP_TEMPORARY */
  int kind;       /* ARB_SUP_WORKER or ARB_SUP_SUPERVISOR */
  uintptr_t user; /* the executor's value; the engine never touches it */
  arb_sup_backoff_t backoff; /* all 0: no backoff */
} arb_sup_spec_t;

typedef struct arb_sup_info_s {
  uint32_t key;      /* stable, never 0, never reused by this supervisor */
  size_t index;      /* position in start order (shifts on insert/drop) */
  int restart;
  int kind;
  int status;        /* ARB_SUP_RUNNING, ARB_SUP_RESTARTING, ARB_SUP_STOPPED */
  uint32_t restarts; /* times restarted by exits, retries and spec changes */
  uintptr_t user;
  int waiting;       /* a backoff restart is scheduled for it (restarting) */
  int64_t due_ms;    /* when, if waiting */
  int64_t backoff_ms; /* the delay of its latest backoff wait, 0 if none */
} arb_sup_info_t;

typedef struct arb_sup_counts_s {
  size_t specs, active, workers, supervisors;
} arb_sup_counts_t;

typedef struct arb_sup_step_s {
  int op;         /* ARB_SUP_SHUTDOWN, ARB_SUP_START or ARB_SUP_DROP */
  uint32_t key;   /* the child */
  uintptr_t user; /* its user value, so a DROP can release it */
} arb_sup_step_t;

typedef struct arb_sup_plan_s {
  int outcome;       /* ARB_SUP_NONE, ... */
  uint32_t key;      /* the child the plan is about, 0 for start/stop */
  int strategy;      /* the strategy that made the plan */
  int restarts;      /* restarts in the window incl. this one; 0 if the
                        plan did not count toward intensity */
  int max_restarts;  /* the limit, for "restart 2 of 5 in 1 s" */
  int64_t period_ms;
  int64_t due_ms;    /* WAIT: when the restart is due */
  int64_t delay_ms;  /* WAIT: the backoff delay chosen (due_ms - now) */
  size_t nsteps;
  const arb_sup_step_t *steps; /* in execution order */
} arb_sup_plan_t;

/* {====== Lifetime and flags */

/* Creates an empty supervisor in *out.  Returns 0, ARB_SUP_EINVAL for bad
** flags or ARB_SUP_ENOMEM (then *out is untouched).  Free it with
** arb_sup_free. */
int arb_sup_new(arb_sup_t **out, const arb_sup_flags_t *flags);

/* Frees the supervisor, its children and its plan.  User values are not
** touched: release them first (arb_sup_which_children lists them). */
void arb_sup_free(arb_sup_t *s);

/* Changes strategy, max_restarts and period in place, keeping the newest
** recorded restarts.  Returns 0, ARB_SUP_EINVAL, ARB_SUP_EBUSY or
** ARB_SUP_ENOMEM (then nothing changed). */
int arb_sup_set_flags(arb_sup_t *s, const arb_sup_flags_t *flags);

/* Copies the current flags into *out. */
void arb_sup_get_flags(const arb_sup_t *s, arb_sup_flags_t *out);

/* }====== */

/* {====== Children: adding, editing, queries */

/* Inserts a stopped child at start-order position pos (0 .. count; count
** appends) and stores its new key in *key (may be NULL).  Returns 0,
** ARB_SUP_EINVAL, ARB_SUP_EBUSY or ARB_SUP_ENOMEM (nothing changed).
** Start it with arb_sup_start (initially) or arb_sup_restart_child. */
int arb_sup_insert(arb_sup_t *s, size_t pos, const arb_sup_spec_t *spec,
                   uint32_t *key);

/* Same as arb_sup_insert at the end of the start order. */
int arb_sup_add(arb_sup_t *s, const arb_sup_spec_t *spec, uint32_t *key);

/* Replaces child key's restart type, kind, backoff and user value,
** changing nothing else (pair it with arb_sup_changed to restart it); a
** changed backoff starts again from its initial delay.  Returns 0,
** ARB_SUP_ENOTFOUND, ARB_SUP_EINVAL or ARB_SUP_EBUSY. */
int arb_sup_update(arb_sup_t *s, uint32_t key, const arb_sup_spec_t *spec);

/* Deletes a stopped child at once (OTP delete_child); the caller releases
** its user value.  Returns 0, ARB_SUP_ENOTFOUND, ARB_SUP_ERUNNING,
** ARB_SUP_ERESTARTING or ARB_SUP_EBUSY. */
int arb_sup_delete(arb_sup_t *s, uint32_t key);

/* Fills *out for child key.  Returns 0 or ARB_SUP_ENOTFOUND. */
int arb_sup_lookup(const arb_sup_t *s, uint32_t key, arb_sup_info_t *out);

/* Returns the key of the child at start-order position index, or 0. */
uint32_t arb_sup_key_at(const arb_sup_t *s, size_t index);

/* Writes up to cap children, in start order, to out (may be NULL when cap
** is 0) and returns the number of children. */
size_t arb_sup_which_children(const arb_sup_t *s, arb_sup_info_t *out,
                              size_t cap);

/* Fills *out: specs (children), active (running), workers, supervisors. */
void arb_sup_count_children(const arb_sup_t *s, arb_sup_counts_t *out);

/* Validates every invariant (list links, unique keys, statuses, window,
** plan).  Returns 0 or ARB_SUP_ECORRUPT. */
int arb_sup_check(const arb_sup_t *s);

/* Returns a static message / name ("ENOTFOUND") for an ARB_SUP_E* code. */
const char *arb_sup_strerror(int err);
const char *arb_sup_err_name(int err);

/* }====== */

/* {====== Events that make plans
** Each stores in *plan a pointer to the supervisor's current plan, valid
** until the next mutating call on s (NULL is allowed if the caller does
** not want it).  They return 0 or a negative code, in which case nothing
** changed and *plan is untouched; none of them allocates. */

/* Initial start: START every child in order (all must be stopped, else
** ARB_SUP_ERUNNING).  A start failure gives a FAIL plan shutting down the
** started children newest first. */
int arb_sup_start(arb_sup_t *s, const arb_sup_plan_t **plan);

/* Child key's process exited with exit class cls at now_ms.  Returns
** ARB_SUP_ENOTFOUND, ARB_SUP_ERESTARTING or ARB_SUP_ESTOPPED if it was not
** running, ARB_SUP_EINVAL for a bad class, ARB_SUP_EBUSY.  The plan is
** NONE (no restart; a temporary child is dropped, a transient one stops),
** RESTART (one intensity event) or GIVE_UP.  A RESTART takes key (one for
** one), key and every child after it (rest for one) or every child (one
** for all), as OTP does: members that are stopped (a transient child that
** ended normally, one stopped by terminate_child) start again too, and
** temporary members other than key are dropped.  Running members are shut
** down newest first, then the kept ones start in order. */
int arb_sup_exit(arb_sup_t *s, uint32_t key, int cls, int64_t now_ms,
                 const arb_sup_plan_t **plan);

/* The retry message for child key arrived at now_ms.  If the child is
** still restarting this counts toward intensity and plans RESTART of the
** same set as arb_sup_exit (one for one: key; rest for one: key and the
** ones after it; one for all: all) or GIVE_UP; otherwise (gone, running,
** stopped, or waiting for a backoff restart) the plan is NONE.  Returns 0
** or ARB_SUP_EBUSY. */
int arb_sup_retry(arb_sup_t *s, uint32_t key, int64_t now_ms,
                  const arb_sup_plan_t **plan);

/* Stores in *due_ms the earliest time a backoff restart is due and
** returns 1, or returns 0 if none waits. */
int arb_sup_next_due(const arb_sup_t *s, int64_t *due_ms);

/* Time now_ms has come: the earliest waiting group whose restart is due
** (ties: start order) restarts, counted toward intensity, as arb_sup_exit
** would plan it for the first of them in start order (RESTART or
** GIVE_UP).  NONE if nothing is due yet (call again at arb_sup_next_due;
** call again after each plan, more may be due).  Returns 0 or
** ARB_SUP_EBUSY. */
int arb_sup_due(arb_sup_t *s, int64_t now_ms, const arb_sup_plan_t **plan);

/* terminate_child: plan SHUTDOWN key if running, then DROP if temporary;
** the child ends stopped (a restart loop on it ends).  Like OTP, a later
** restart of a set it belongs to starts it again.  Returns 0,
** ARB_SUP_ENOTFOUND or ARB_SUP_EBUSY. */
int arb_sup_terminate_child(arb_sup_t *s, uint32_t key,
                            const arb_sup_plan_t **plan);

/* restart_child: plan START key (not counted toward intensity); a failure
** gives a FAIL plan and leaves it stopped.  Returns 0, ARB_SUP_ENOTFOUND,
** ARB_SUP_ERUNNING, ARB_SUP_ERESTARTING or ARB_SUP_EBUSY. */
int arb_sup_restart_child(arb_sup_t *s, uint32_t key,
                          const arb_sup_plan_t **plan);

/* Live edit, child removed: plan SHUTDOWN key (if running), DROP key.
** Returns 0, ARB_SUP_ENOTFOUND or ARB_SUP_EBUSY. */
int arb_sup_remove(arb_sup_t *s, uint32_t key, const arb_sup_plan_t **plan);

/* Live edit, child key's spec changed: if it is running, plan RESTART of
** the same set as arb_sup_exit, without counting toward intensity (the
** child itself restarts even if temporary; temporary bystanders are
** dropped); otherwise NONE.  Returns 0, ARB_SUP_ENOTFOUND or
** ARB_SUP_EBUSY. */
int arb_sup_changed(arb_sup_t *s, uint32_t key,
                    const arb_sup_plan_t **plan);

/* Orderly stop (supervisor.stop, parent exit): abandons any plan in
** progress and plans SHUTDOWN of every running child newest first;
** restarting children become stopped.  Always returns 0. */
int arb_sup_stop(arb_sup_t *s, const arb_sup_plan_t **plan);

/* }====== */

/* {====== Reports from the executor */

/* The plan's next step, on child key, is done: after SHUTDOWN the child is
** stopped or restarting (the executor must discard any pending exit of
** the old process), after START it is running, after DROP it is gone
** (its user value is the caller's to release).  Returns 0 or ARB_SUP_ESTEP
** if key is not the next step's child.  The start time is not known here:
** the child's next exit counts as ending a stable run (backoff resets). */
int arb_sup_step_done(arb_sup_t *s, uint32_t key);

/* arb_sup_step_done, telling when: a START reported at now_ms is when the
** child's run began, which its backoff's reset_after is measured from. */
int arb_sup_step_done_at(arb_sup_t *s, uint32_t key, int64_t now_ms);

/* The plan's next step, START of child key, failed.  Abandons the plan and
** stores the new one: FAIL after arb_sup_start (shut down the started
** ones) or arb_sup_restart_child; otherwise RETRY (the child is
** restarting), or WAIT if the child has a backoff (its next delay; the
** members of its set that are restarting wait with it).  Returns 0 or ARB_SUP_ESTEP if the next step is not START
** key. */
int arb_sup_start_failed(arb_sup_t *s, uint32_t key,
                         const arb_sup_plan_t **plan);
/* arb_sup_start_failed at now_ms (a WAIT's due time is counted from it). */
int arb_sup_start_failed_at(arb_sup_t *s, uint32_t key, int64_t now_ms,
                            const arb_sup_plan_t **plan);

/* {====== Reading the current plan
** The plan the latest event (or start failure) stored, read in place, so
** an executor can walk it without copying it: the step to carry out next
** and the plan's outcome and figures. */

/* Copies the current plan's next unreported step into *out (may be NULL)
** and returns 1, or returns 0 when every step is reported (or there is no
** plan).  Changes nothing. */
int arb_sup_next_step(const arb_sup_t *s, arb_sup_step_t *out);

/* The current plan: the one the latest event call stored (an empty NONE
** plan before any).  Valid until the next mutating call on s. */
const arb_sup_plan_t *arb_sup_current_plan(const arb_sup_t *s);

/* }====== */

#endif
