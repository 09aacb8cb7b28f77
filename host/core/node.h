/*
** node.h: one arbor node: the process table, the run queue, subjects and
** their mailboxes, links, monitors, exit signals and timers.
**
** Invariants (read these before touching proc.c, mbox.c or link.c):
** - A process is identified by its pid.  Only the node owns arb_proc_t
**   structs; nobody outside the core keeps an arb_proc_t * across a
**   scheduling point: look the pid up again.
** - A process is alive while its state is RUNNABLE, RUNNING or WAITING.
**   When it ends, everything observable happens before arb_node_exit
**   returns, in this order: its exit hooks run (the registry delists it
**   there), its subjects stop accepting messages and drop what is queued,
**   linked processes get their exit signal, monitors fire.  Exits caused by those signals are processed
**   from a worklist, not by recursion, so a chain of 100,000 links is fine.
** - Every message carries a node-wide sequence number.  Each subject keeps
**   its own FIFO, so receiving from one subject costs O(1) whatever else is
**   queued, and a selective receive over k sources costs O(k): it compares
**   the oldest sequence number of each selected source.
** - Subjects and monitors are embedded in memory their user owns (the Lua
**   binding puts them inside userdata).  The node links them into process
**   lists and unlinks them when the owner or the target ends; the user
**   calls arb_subject_fini / arb_monitor_fini before freeing that memory.
** - Message and reason payloads are opaque; the node calls ops->free_payload
**   and ops->free_reason when it drops one undelivered.
**
** Depends on libc, alloc.h, list.h, timer.h.  Never reads a clock (every
** function that needs time takes `now`, in milliseconds), never prints.
*/
#ifndef ARB_CORE_NODE_H
#define ARB_CORE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "arb.h"
#include "list.h"
#include "timer.h"

typedef struct arb_node_s arb_node_t;
typedef struct arb_proc_s arb_proc_t;

typedef enum {
  ARB_PROC_FREE = 0, /* slot struct not in use */
  ARB_PROC_RUNNABLE, /* in the run queue */
  ARB_PROC_RUNNING,  /* the current process */
  ARB_PROC_WAITING,  /* blocked; woken by a selected source or its timer */
  ARB_PROC_DEAD      /* ended while running; freed by arb_node_release */
} arb_proc_state_t;

enum {
  ARB_PROC_TRAP_EXIT = 1 << 0,  /* exit signals become messages */
  ARB_PROC_TIMED_OUT = 1 << 1,  /* its wait timer fired */
  ARB_PROC_EXITS_SELECTED = 1 << 2, /* waiting on trapped exits */
  ARB_PROC_EXITING = 1 << 3     /* queued in the exit worklist */
};

/* A queued message of a subject. */
typedef struct arb_msg_s {
  struct arb_msg_s *next;
  uint64_t seq;
  intptr_t payload;
} arb_msg_t;

/* A trapped exit signal waiting in a process's exit queue. */
typedef struct arb_exitmsg_s {
  struct arb_exitmsg_s *next;
  uint64_t seq;
  arb_pid_t from;
  arb_reason_t *reason; /* one reference held */
} arb_exitmsg_t;

/* A hook run when a process ends, before links and monitors fire.  The
** hook's memory belongs to whoever attached it; the node only unlinks it
** before calling fn. */
typedef struct arb_exit_hook_s {
  arb_list_t node;
  void (*fn)(arb_node_t *node, struct arb_exit_hook_s *hook, arb_proc_t *p);
} arb_exit_hook_t;

/* Field order packs the struct to 144 bytes: it is most of the C memory
** an idle process costs. */
struct arb_proc_s {
  arb_pid_t pid;
  uint8_t state;      /* arb_proc_state_t */
  uint8_t flags;      /* ARB_PROC_* */
  uint8_t user_kind;  /* free for the embedder (e.g. supervisor or worker) */
  uint8_t user_flags; /* free for the embedder */
  uint32_t nlinks;    /* length of links */
  arb_list_t runq;    /* run-queue node */
  arb_list_t subjects;   /* arb_subject_t.owner_node */
  arb_list_t links;      /* arb_link_end_t.node */
  arb_list_t monitors;   /* arb_monitor_t.owner_node: monitors it holds */
  arb_list_t watchers;   /* arb_monitor_t.target_node: monitors on it */
  arb_list_t exit_hooks; /* arb_exit_hook_t.node */
  arb_exitmsg_t *exits_tail; /* circular: exits_tail->next is the oldest */
  arb_timer_id_t wait_timer; /* wakes it from WAITING; 0 if none */
  arb_reason_t *reason;      /* its exit reason once it is ending */
  union {
    void *data;         /* free for the embedder while in use */
    uint32_t next_free; /* pool link while FREE */
  };
};

/* A subject: a mailbox a process owns and anyone may send to.  48 bytes:
** the queue is circular through its newest message (tail->next is the
** oldest), so one pointer serves both ends. */
typedef struct arb_subject_s {
  arb_list_t owner_node;
  arb_pid_t owner;
  arb_proc_t *owner_proc; /* NULL once the owner has ended */
  arb_msg_t *tail;        /* newest message, or NULL when empty */
  uint32_t id;            /* for display; a subject is one object */
  uint32_t len : 31;
  uint32_t selected : 1;  /* the owner waits on it */
} arb_subject_t;

/* The oldest message of sub, or NULL. */
static inline arb_msg_t *arb_subject_head(const arb_subject_t *sub) {
  return sub->tail ? sub->tail->next : NULL;
}

typedef enum {
  ARB_MONITOR_IDLE = 0, /* not watching: demonitored, taken, or owner ended */
  ARB_MONITOR_ACTIVE,   /* watching a live target */
  ARB_MONITOR_FIRED     /* target ended; the DOWN waits to be taken */
} arb_monitor_state_t;

typedef struct arb_monitor_s {
  arb_list_t owner_node;
  arb_list_t target_node;
  arb_pid_t owner, target;
  uint64_t id;
  uint64_t seq;         /* of the DOWN, once fired */
  arb_reason_t *reason; /* of the DOWN, once fired (one reference) */
  uint8_t state;
  uint8_t selected;
} arb_monitor_t;

/* A link between two processes: one allocation, one end in each
** process's link list; each end names the process at the other end. */
typedef struct arb_link_end_s {
  arb_list_t node;
  arb_pid_t peer;
  struct arb_link_s *link;
} arb_link_end_t;

typedef struct arb_link_s {
  arb_link_end_t ends[2];
} arb_link_t;

/* What the embedder provides.  All callbacks are optional but
** free_payload and free_reason leak without them. */
typedef struct arb_node_ops_s {
  /* A message payload is dropped undelivered. */
  void (*free_payload)(void *ud, intptr_t payload);
  /* The last reference to a non-static reason is released. */
  void (*free_reason)(void *ud, intptr_t payload);
  /* p has ended with p->reason: links, monitors and hooks have fired.
  ** The embedder releases what p->data holds.  If p was the running
  ** process, p stays allocated (state DEAD) until arb_node_release. */
  void (*proc_ended)(void *ud, arb_proc_t *p);
  /* A timer started with arb_node_timer_start fired. */
  void (*timer_fired)(void *ud, arb_timer_id_t id, const arb_timer_t *t);
} arb_node_ops_t;

struct arb_node_s {
  arb_node_ops_t ops;
  void *ud;
  /* process table: slot -> (struct, generation) */
  arb_proc_t **slots;
  uint32_t *gens;
  uint32_t nslots, cap;
  uint32_t free_head;
  uint32_t nprocs; /* alive or DEAD-but-unreleased */
  arb_list_t runq;
  /* Run-next slot (Go's runnext): a process a running process's send
  ** woke, dispatched before the run queue for up to ARB_RUNNEXT_BUDGET
  ** dispatches in a row; see arb_node_next. */
  arb_proc_t *runnext;
  uint32_t runnext_streak; /* run-next dispatches since the queue's last */
  arb_proc_t *current;
  arb_list_t exit_worklist;
  int draining;
  int closing; /* arb_node_free is running: no new processes */
  uint64_t seq;        /* message sequence */
  uint64_t next_id;    /* subject and monitor ids */
  arb_msg_t *msg_pool; /* recycled message nodes */
  arb_timers_t timers;
  int64_t now; /* last time passed in, for timers started by the core */
};

/* Timer kinds used by the node itself; embedders use ARB_TIMER_USER+. */
enum { ARB_TIMER_WAKE = 0, ARB_TIMER_USER = 8 };

/* {======================================================================
** Node and processes (proc.c)
** ======================================================================*/

/* Creates a node.  ops is copied.  Returns NULL when out of memory. */
arb_node_t *arb_node_new(const arb_node_ops_t *ops, void *ud);

/* Ends every remaining process with reason "killed" (hooks, links and
** monitors fire as usual), frees pooled memory and the node.  Pending
** timers are dropped without a callback: their payloads must be owned
** elsewhere (the binding anchors them in Lua). */
void arb_node_free(arb_node_t *node);

/* Creates a runnable process at the back of the run queue.  Returns it,
** or NULL when out of memory or while the node is being freed. */
arb_proc_t *arb_node_spawn(arb_node_t *node);

/* A pid scrambled over all 64 bits, one to one (splitmix64's finalizer),
** for hash tables keyed by pids.  A pid's low bits are its slot, and
** slots are reused generation after generation, so a table that hashes an
** integer by its low bits (Lua 5.4.4 does) puts every generation of a
** slot in one chain; spawning a million short-lived processes spent over
** half its time walking such chains. */
static inline uint64_t arb_pid_mix(arb_pid_t pid) {
  uint64_t x = pid;
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

/* The pid the next arb_node_spawn will give, if nothing spawns or frees a
** process in between (ARB_PID_NONE while the node is being freed).  Lets
** the embedder make the pid's handle before the process exists, so that
** only the spawn itself is left to fail; it compares with p->pid after. */
arb_pid_t arb_node_next_pid(const arb_node_t *node);

/* Takes back a process arb_node_spawn made when a later step of its
** creation failed (allocate, then commit): p has not run, and nobody
** links to, monitors or waits on it.  Its exit hooks run and its subjects
** end (so what was attached goes), but ops->proc_ended is not called: for
** everyone else the process never existed.  Its pid goes stale. */
void arb_node_spawn_abort(arb_node_t *node, arb_proc_t *p);

/* Returns the live process with that pid, or NULL (stale, never existed,
** or ended). */
arb_proc_t *arb_node_lookup(const arb_node_t *node, arb_pid_t pid);

/* Like arb_node_lookup, but also finds a process that is ending or ended
** and not yet freed (its lists are still being taken apart). */
arb_proc_t *arb_node_lookup_any(const arb_node_t *node, arb_pid_t pid);

/* Number of live processes. */
uint32_t arb_node_count(const arb_node_t *node);

/* How many dispatches in a row may come from the run-next slot while the
** run queue holds others.  A message-passing pair (each send wakes the
** other) therefore cannot starve the queue: between two dispatches from
** the queue the slot takes at most ARB_RUNNEXT_BUDGET, so a process with
** k others queued ahead of it runs within (k + 1) * (ARB_RUNNEXT_BUDGET +
** 1) dispatches. */
#define ARB_RUNNEXT_BUDGET 32

/* Pops the next runnable process and makes it current (RUNNING), or
** returns NULL when none is runnable.  The run-next slot comes first
** (within its budget), then the run queue in FIFO order. */
arb_proc_t *arb_node_next(arb_node_t *node);

/* True if some process is runnable (run queue or run-next slot). */
static inline int arb_node_has_runnable(const arb_node_t *node) {
  return node->runnext != NULL || !arb_list_empty(&node->runq);
}

/* Called after the current process stopped running.  If it is still
** RUNNING it was preempted and goes to the back of the run queue; if it
** is WAITING it stays blocked; if DEAD its struct is freed now. */
void arb_node_release(arb_node_t *node, arb_proc_t *p);

/* Blocks the current process until a selected source receives something
** or, if timeout_ms >= 0, until the timeout passes (then
** ARB_PROC_TIMED_OUT is set).  Returns ARB_ENOMEM if the timer cannot be
** made. */
int arb_node_wait(arb_node_t *node, arb_proc_t *p, int64_t now,
                  int64_t timeout_ms);

/* Clears what arb_node_wait set up (timer, TIMED_OUT, EXITS_SELECTED) once
** the process runs again. */
void arb_node_wait_done(arb_node_t *node, arb_proc_t *p);

/* Undoes arb_node_wait for the current process p when it cannot block
** after all (its Lua code runs where no yield is possible): the timer and
** flags go as in arb_node_wait_done, and p is RUNNING again.  Without it
** p ran on marked WAITING, so a wake while it ran put it on the run queue
** and a second wake linked it in twice. */
void arb_node_wait_cancel(arb_node_t *node, arb_proc_t *p);

/* Makes a WAITING process runnable, at the back of the run queue. */
void arb_node_wake(arb_node_t *node, arb_proc_t *p);

/* Makes a WAITING process runnable because the running process sent it a
** message: into the run-next slot if that is free (and a process is
** running: a send from a timer or callback queues as arb_node_wake),
** else to the back of the run queue. */
void arb_node_wake_by_send(arb_node_t *node, arb_proc_t *p);

/* Ends p with reason (a reference is taken).  Everything observable
** happens before this returns: see the header.  No effect on a process
** already ending. */
void arb_node_exit(arb_node_t *node, arb_proc_t *p, arb_reason_t *reason);

/* Attaches a hook run when p ends.  p must be alive: a hook attached to
** an ended process never runs.  The hook must stay valid until it runs or
** is detached; a hook may detach other hooks of the same process. */
void arb_node_hook_exit(arb_proc_t *p, arb_exit_hook_t *hook);
void arb_node_unhook_exit(arb_exit_hook_t *hook);

/* Starts a timer of an embedder's kind; returns its id or 0 on ENOMEM. */
arb_timer_id_t arb_node_timer_start(arb_node_t *node, int64_t now,
                                    int64_t delay, int kind, arb_pid_t pid,
                                    intptr_t payload);

/* Cancels a timer; see arb_timers_cancel. */
int arb_node_timer_cancel(arb_node_t *node, arb_timer_id_t id, int64_t now,
                          int64_t *left, arb_timer_t *out);

/* Fires every timer expired at now: wait timers wake their process, the
** others go to ops->timer_fired.  Returns how many fired. */
int arb_node_run_timers(arb_node_t *node, int64_t now);

/* The earliest timer deadline, or -1 when there is none. */
int64_t arb_node_next_deadline(const arb_node_t *node);

/* Creates a reason box holding payload, with one reference.  Returns NULL
** when out of memory. */
arb_reason_t *arb_reason_new(int kind, intptr_t payload);
arb_reason_t *arb_reason_retain(arb_reason_t *r);
void arb_reason_release(arb_node_t *node, arb_reason_t *r);

/* Frees the recycled message nodes the node keeps for reuse (the pool
** grows to the most messages ever queued at once). */
void arb_node_trim(arb_node_t *node);

/* Checks the table, run queue and list invariants; 0 when they hold. */
int arb_node_check(const arb_node_t *node);

/* }====================================================================== */

/* {======================================================================
** Subjects and mailboxes (mbox.c)
** ======================================================================*/

/* Makes sub a subject owned by owner, which must be alive. */
void arb_subject_init(arb_node_t *node, arb_subject_t *sub, arb_proc_t *owner);

/* Drops queued messages and unlinks sub from its owner.  Call before
** freeing sub's memory. */
void arb_subject_fini(arb_node_t *node, arb_subject_t *sub);

/* Queues payload on sub and wakes the owner if it waits on sub.  Always
** consumes payload: if the owner has ended the payload is freed and
** ARB_ENOPROC returned (senders are not told in Lua; send never fails). */
int arb_subject_send(arb_node_t *node, arb_subject_t *sub, intptr_t payload);

/* Sequence number of sub's oldest message, or UINT64_MAX when empty. */
static inline uint64_t arb_subject_peek(const arb_subject_t *sub) {
  return sub->tail ? sub->tail->next->seq : UINT64_MAX;
}

/* Takes sub's oldest message into *payload; returns 0, or ARB_ENOTFOUND
** when the queue is empty. */
int arb_subject_take(arb_node_t *node, arb_subject_t *sub, intptr_t *payload);

/* Sequence number of p's oldest trapped exit, or UINT64_MAX. */
static inline uint64_t arb_exits_peek(const arb_proc_t *p) {
  return p->exits_tail ? p->exits_tail->next->seq : UINT64_MAX;
}

/* Takes p's oldest trapped exit; the caller owns the reason reference.
** Returns 0, or ARB_ENOTFOUND when there is none. */
int arb_exits_take(arb_proc_t *p, arb_pid_t *from, arb_reason_t **reason);

/* }====================================================================== */

/* {======================================================================
** Links, monitors and exit signals (link.c)
** ======================================================================*/

/* Links a (which must be alive) and b (idempotent; linking to oneself is
** a no-op).  Returns 0, ARB_ENOPROC if b is not alive (if a traps exits it
** also gets a trapped exit from b with reason "noproc", as in Erlang), or
** ARB_ENOMEM (nothing changed). */
int arb_link(arb_node_t *node, arb_proc_t *a, arb_pid_t b);

/* Removes the link between a and b if there is one. */
void arb_unlink(arb_node_t *node, arb_proc_t *a, arb_pid_t b);

/* Copies up to max pids that p is linked to, oldest link first; returns
** the number of links. */
uint32_t arb_links_of(const arb_proc_t *p, arb_pid_t *out, uint32_t max);

/* Sends an exit signal from `from` to `to` with Erlang's rules: "kill" is
** untrappable and ends the target with "killed"; a trapping target gets a
** message; "normal" is ignored by a non-trapper unless it sent the signal
** to itself; any other reason ends the target with that reason.  Returns
** ARB_ENOPROC if `to` is not alive. */
int arb_signal_exit(arb_node_t *node, arb_pid_t from, arb_pid_t to,
                    arb_reason_t *reason);

/* Starts monitoring target on behalf of owner (which must be alive).  If
** target is not alive the DOWN is queued at once with reason "noproc". */
void arb_monitor_init(arb_node_t *node, arb_monitor_t *m, arb_proc_t *owner,
                      arb_pid_t target);

/* Stops monitoring and drops a DOWN already queued.  Safe to call in any
** state and more than once; call before freeing m's memory. */
void arb_monitor_fini(arb_node_t *node, arb_monitor_t *m);

/* Takes the DOWN of a fired monitor: returns its reason (the caller owns
** the reference) or NULL if it has not fired. */
arb_reason_t *arb_monitor_take(arb_node_t *node, arb_monitor_t *m);

/* Sequence number of m's DOWN, or UINT64_MAX if it has not fired. */
static inline uint64_t arb_monitor_peek(const arb_monitor_t *m) {
  return m->state == ARB_MONITOR_FIRED ? m->seq : UINT64_MAX;
}

/* }====================================================================== */

/* {======================================================================
** The sealed surface: what rt and bind read and change
**
** Outside host/core nobody touches the fields of arb_node_t, arb_proc_t,
** arb_subject_t or arb_monitor_t (scripts/check-layering.sh enforces it),
** except those marked free for the embedder (data, user_kind,
** user_flags), a process's pid and, in ops->proc_ended, its reason.
** Waking a process is decided here alone: the layers above mark what a
** blocked process selects and the core wakes it when one of those
** receives something.
** ======================================================================*/

/* The running process, or NULL between slices. */
static inline arb_proc_t *arb_node_current(const arb_node_t *node) {
  return node->current;
}

/* True while arb_node_free runs (no new processes; I/O stops). */
static inline int arb_node_closing(const arb_node_t *node) {
  return node->closing;
}

/* True once p has ended while it was running (it stays allocated until
** arb_node_release): code still running for it must not go on. */
static inline int arb_proc_is_dead(const arb_proc_t *p) {
  return p->state == ARB_PROC_DEAD;
}

/* True if p's wait timer fired (set by arb_node_wait's timeout). */
static inline int arb_proc_timed_out(const arb_proc_t *p) {
  return (p->flags & ARB_PROC_TIMED_OUT) != 0;
}

/* Whether p turns exit signals into messages; arb_proc_trap_exits sets it
** and returns the previous setting. */
static inline int arb_proc_traps_exits(const arb_proc_t *p) {
  return (p->flags & ARB_PROC_TRAP_EXIT) != 0;
}
static inline int arb_proc_trap_exits(arb_proc_t *p, int on) {
  int old = arb_proc_traps_exits(p);
  if (on)
    p->flags |= ARB_PROC_TRAP_EXIT;
  else
    p->flags &= (uint8_t)~ARB_PROC_TRAP_EXIT;
  return old;
}

/* A subject's owner (a pid, stale once it ended), whether that owner is
** still alive, and the subject's display id. */
static inline arb_pid_t arb_subject_owner(const arb_subject_t *sub) {
  return sub->owner;
}
static inline int arb_subject_owner_alive(const arb_subject_t *sub) {
  return sub->owner_proc != NULL;
}
static inline uint32_t arb_subject_id(const arb_subject_t *sub) {
  return sub->id;
}

/* A monitor's owner, the process it watches and its display id. */
static inline arb_pid_t arb_monitor_owner(const arb_monitor_t *m) {
  return m->owner;
}
static inline uint64_t arb_monitor_id(const arb_monitor_t *m) {
  return m->id;
}
static inline arb_pid_t arb_monitor_target(const arb_monitor_t *m) {
  return m->target;
}

/* Selection: before blocking in arb_node_wait, the owner marks the
** sources it waits on; a message, a DOWN or (arb_proc_select_exits) a
** trapped exit to a marked source wakes it.  Subjects and monitors are
** unmarked by the caller when it runs again; the exits mark is cleared
** by arb_node_wait_done. */
static inline void arb_subject_select(arb_subject_t *sub, int on) {
  sub->selected = on ? 1u : 0u;
}
static inline void arb_monitor_select(arb_monitor_t *m, int on) {
  m->selected = (uint8_t)(on != 0);
}
static inline void arb_proc_select_exits(arb_proc_t *p) {
  p->flags |= ARB_PROC_EXITS_SELECTED;
}

/* Ends every live process except `except` (may be NULL) with reason,
** newest first, as a supervisor would stop them: how a host halts. */
void arb_node_exit_all(arb_node_t *node, arb_proc_t *except,
                       arb_reason_t *reason);

/* }====================================================================== */

/* Internal, shared by proc.c, mbox.c and link.c. */
void arb__mbox_owner_ended(arb_node_t *node, arb_proc_t *p);
void arb__links_owner_ended(arb_node_t *node, arb_proc_t *p);
arb_msg_t *arb__msg_alloc(arb_node_t *node);
void arb__msg_free(arb_node_t *node, arb_msg_t *m);

#endif
