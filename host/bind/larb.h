/*
** larb.h: what every Lua binding file needs (luv's private.h): the
** per-state context, the userdata types and the helpers that move values
** between Lua and the core.  What only the host's own files share (the
** options, the embedded modules, the scheduler's callbacks) is in
** lhost.h; a module's own state is that module's (the service's in
** lservice.c, the logger's in llogger.c), never a field here.
**
** The binding is the only layer that includes Lua headers.  One lua_State
** holds every process (each a coroutine).  The context lives in the main
** thread's extra space; lua_newthread copies that space, so every
** coroutine finds the context in O(1) with larb_ctx(L).
**
** Lua values the core holds (message payloads, exit reasons) are
** references into one table (the "values" table), released through the
** node's free callbacks.  Nothing here may call Lua code while the core
** iterates a list: the callbacks only touch tables.
*/
#ifndef ARB_BIND_LARB_H
#define ARB_BIND_LARB_H

#include <lauxlib.h>
#include <stdint.h>
#include <lua.h>

#include "control.h"
#include "loop.h"
#include "node.h"

#define LARB_PID "arbor.Pid"
#define LARB_SUBJECT "arbor.Subject"
#define LARB_MONITOR "arbor.Monitor"
#define LARB_SELECTOR "arbor.Selector"
#define LARB_TIMER "arbor.Timer"
#define LARB_ERROR "arbor.Error"

/* The preemption tick's period: a slice still running at the second tick
** it meets (so after one to two periods) is preempted at its next
** instruction (lguard.c). */
#define LARB_SLICE_US 500

/* Instructions between two looks at code that cannot be preempted (the
** runaway limit), and a user-hooked thread's preemption budget. */
#define LARB_BUDGET 20000

/* How long Lua code that cannot be preempted (called back from C) may run
** before its process is ended, by default. */
#define LARB_RUNAWAY_LIMIT_MS 5000

/* Finished coroutines kept to run new processes: spawning reuses one
** instead of allocating a thread and its stack for the collector. */
#define LARB_POOL_MAX 4096

/* Kinds of process, kept in arb_proc_t.user_kind. */
enum { LARB_WORKER = 0, LARB_SUPERVISOR = 1, LARB_SYSTEM = 2 };

/* arb_proc_t.user_flags: its coroutine has been resumed once (before
** that, its stack holds the function and its arguments). */
enum { LARB_STARTED = 1 };

/* Kinds of timer the binding starts. */
enum { LARB_TIMER_SEND = ARB_TIMER_USER };

typedef struct larb_ctx_s {
  lua_State *L; /* the main thread */
  arb_node_t *node;
  arb_rt_t *rt;
  int values_ref; /* table: ref -> message or reason value */
  int *free_refs; /* recycled slots of the values table (a stack) */
  int nfree, free_cap, next_ref;
  const void *subject_mt, *pid_mt, *monitor_mt; /* metatables, by address */
  int procs_ref;  /* table: slot -> thread of a live process */
  int pids_ref;   /* weak table: pid integer -> pid userdata */
  int timers_ref; /* table: timer id -> {subject, message} */
  int registries_ref; /* table: registry pointer -> its subject */
  int pool_ref;       /* table: finished threads kept for reuse */
  int npool;
  struct arb_names_s *names; /* chip registry names */
  lua_State *current_co; /* the coroutine now running, or NULL */
  arb_pid_t main_pid;
  arb_reason_t *main_reason; /* why main was killed, until reported */
  int exit_code;     /* what arbor exits with */
  int shutting_down; /* the ordered shutdown has begun */
  int halted;
  /* The coroutine a process made that last yielded for the scheduler
  ** (preempted, or blocked in receive/sleep), until arbor.core.resume
  ** hands that back to its resumer; NULL otherwise.  A pointer, not a
  ** flag: with a flag, a middle level preempted between its resume and
  ** its look at the flag took the inner level's mark. */
  lua_State *passing_up;
  /* The last two subjects larb_check_subject checked in full (a process
  ** sends to one and receives from another).  An entry is dropped by the
  ** subject's __gc, which runs before Lua frees it (handles' metatables
  ** cannot be changed from Lua: lguard.c), so it never names freed
  ** memory. */
  void *subject_cache[2];
  const struct larb_host_opts_s *opts; /* lhost.h */
  /* lguard.c keeps its own state; the host makes this one for it */
  arb_reason_t *runaway_reason; /* why a runaway process ended */
  arb_reason_t *oom_reason; /* used when even a reason cannot be made */
} larb_ctx_t;

typedef struct larb_subject_s {
  arb_subject_t sub;
  unsigned char finalized; /* its __gc has run: never cached again */
} larb_subject_t;

/* A chip registry's handle: a subject with the registry behind it.  Same
** metatable as any subject; told apart by its size, so plain subjects
** (one per mailbox, the common case) pay nothing for it. */
typedef struct larb_registry_subject_s {
  larb_subject_t base;
  struct arb_registry_s *registry; /* NULL once the registry has ended */
} larb_registry_subject_t;

typedef struct larb_monitor_s {
  arb_monitor_t mon;
} larb_monitor_t;

/* A thread's extra space holds the context's address, with the low bit
** set on a process's own thread (the context is aligned, so the bit is
** free).  lua_newthread copies the main thread's space, so a coroutine a
** process makes is never marked: only the host marks its threads. */
static inline larb_ctx_t *larb_ctx(lua_State *L) {
  return (larb_ctx_t *)(*(uintptr_t *)lua_getextraspace(L) & ~(uintptr_t)1);
}

static inline void larb_set_ctx(lua_State *L, larb_ctx_t *ctx,
                                int process_thread) {
  *(uintptr_t *)lua_getextraspace(L) =
      (uintptr_t)ctx | (uintptr_t)(process_thread != 0);
}

/* Whether L is the thread a process runs on (not a coroutine it made). */
static inline int larb_is_process_thread(lua_State *L) {
  return (int)(*(uintptr_t *)lua_getextraspace(L) & 1);
}

/* The running process, or a Lua error if the caller is not one. */
arb_proc_t *larb_self(lua_State *L);

/* Pushes the (interned) pid userdata for pid. */
void larb_push_pid(lua_State *L, arb_pid_t pid);
arb_pid_t larb_check_pid(lua_State *L, int idx);
larb_subject_t *larb_check_subject(lua_State *L, int idx);
larb_monitor_t *larb_check_monitor(lua_State *L, int idx);
/* The subject at idx, or NULL if the value is not one. */
larb_subject_t *larb_test_subject(lua_State *L, int idx);
/* Creates the metatable of a type (liolib.c's createmeta): name (what
** luaL_checkudata and type errors use), the metamethods in meta (every
** type has __tostring) and, if methods is not NULL, a method table as
** __index.  Leaves the stack as it was. */
void larb_createmeta(lua_State *L, const char *name, const luaL_Reg *meta,
                     const luaL_Reg *methods);
/* Records the metatables' addresses for the fast checks above; call once
** all of them exist. */
void larb_cache_metatables(lua_State *L);

/* Pushes a deep copy of the value at idx if it is a table (raw access,
** metatables kept, shared sub-tables and cycles kept), else the value. */
void larb_push_copy(lua_State *L, int idx);

/* Stores the value at idx in the values table (a copy, for a table);
** returns its reference. */
intptr_t larb_ref(lua_State *L, int idx);
/* Payloads made here are tagged intptr_t values (larb.c); a byte payload
** made outside Lua (core/payload.h, arb_bytes_new) is accepted by
** larb_push_unref, larb_push_ref and larb_unref as well and becomes one
** Lua string when received.
** Pushes the value behind ref and releases the reference. */
void larb_push_unref(lua_State *L, intptr_t ref);
/* larb_ref for a value the host made itself and nobody else holds (a
** command table, a packet, a timer's message already copied when it was
** set): stored as it is, without a second copy. */
intptr_t larb_ref_fresh(lua_State *L, int idx);
/* Pushes the value behind ref (a copy, for a table) and keeps it. */
void larb_push_ref(lua_State *L, intptr_t ref);
/* The values-table slot of a reference to a non-inline value (a table,
** a userdata...), for reading many of them with one table on the stack. */
#define larb_ref_slot(ref) ((lua_Integer)((ref) >> 2))

/* Releases ref without pushing its value. */
void larb_unref(lua_State *L, intptr_t ref);

/* Makes an exit reason from the Lua value at idx (a reference is owned by
** the caller).  "normal", "shutdown", "kill", "killed" and "noproc" map to
** the built-in reasons; a table with shutdown = true is a shutdown. */
arb_reason_t *larb_reason_from(lua_State *L, int idx);
/* The arb_reason_kind_t larb_reason_from would give the value at idx;
** allocates nothing. */
int larb_reason_kind(lua_State *L, int idx);
/* arbor.core.classify(reason) -> "normal" | "shutdown" | "abnormal". */
int larb_lua_classify(lua_State *L);
/* Pushes the Lua value of a reason. */
void larb_push_reason(lua_State *L, const arb_reason_t *r);

/* Yields the calling process out of a blocking call, continuing in k
** (NULL: never resumed).  From a coroutine the process made, the yield is
** flagged so that coroutine.resume passes it up to the scheduler. */
int larb_yield(lua_State *L, lua_KContext kctx, lua_KFunction k);

/* After a call that may have ended the caller (an exit signal that came
** back through a link, exit(self())): if the caller is dead, yield out of
** it for good.  Returns the count to return to Lua otherwise. */
int larb_finish(lua_State *L, int nresults);

/* Spawns a process running the function at the top of L's stack with the
** nargs values above it (all popped).  Returns the process or raises; a
** raise leaves no process behind. */
arb_proc_t *larb_spawn(lua_State *L, int nargs);
/* Takes back a process larb_spawn just made, before it ran and before
** anyone links to or monitors it (the step after the spawn failed): what
** is attached to it (subjects, exit hooks) goes with it and its pid is
** never seen. */
void larb_unspawn(lua_State *L, arb_proc_t *p);
/* Pushes the pid of p, just spawned; if that runs out of memory, p is
** taken back (larb_unspawn) and the error raised. */
void larb_push_spawned(lua_State *L, arb_proc_t *p);

/* The one error type (LARB_ERROR, "arbor.Error"): a table with a string
** `kind` ("noproc", "name_taken", "econnrefused"...), a one-line
** `message` that __tostring gives, and any fields the failure adds
** (`path`, `address`, `reason`...).  Bindings return it as the `nil, err`
** of an expected failure; the Lua modules make theirs with
** arbor.core.error.  Misuse raises instead (luaL_check*).
**
** larb_fail pushes nil and the error for code rc (ours from err.h, or
** libuv's): kind from the code, message "detail: <the code's message>"
** (just the code's message when detail is NULL).  The error is left on
** top, so a caller can add fields with lua_setfield(L, -2, ...) before
** returning.  Returns 2. */
int larb_fail(lua_State *L, int rc, const char *detail);
/* larb_fail for an operation on a file system path (files, Unix
** sockets, commands): message "what path: cause" ("what from -> to:
** cause" when to is given), with err.path (and err.to) set when known;
** path may be NULL.  Leaves the detail string below the two results.
** Returns 2. */
int larb_fail_path(lua_State *L, int rc, const char *what, const char *path,
                   const char *to);
/* Pushes nil and an error {kind = kind, message = msg}; returns 2. */
int larb_push_error(lua_State *L, const char *kind, const char *msg);
/* Pushes the error {kind = kind, message = msg} alone (to raise it). */
void larb_push_error_value(lua_State *L, const char *kind, const char *msg);
/* arbor.core.error(t) -> t made an arbor.Error (t.kind must be a
** string). */
int larb_lua_error_new(lua_State *L);

/* process.sleep_forever(), callable from other binding functions. */
int larb_sleep_forever(lua_State *L);

/* A subject is being finalized: it leaves larb_check_subject's cache. */
void larb_forget_subject(larb_ctx_t *ctx, larb_subject_t *s);

/* lguard.c: the preemption hook and what guards the host against code
** that cannot be preempted (see the file's header). */
void larb_preempt_hook(lua_State *L, lua_Debug *ar);
/* Installs the guarded pcall, xpcall and debug.sethook/gethook. */
void larb_guard_init(lua_State *L);
/* Adds describe, self_ended and set_runaway_limit to arbor.core. */
void larb_guard_open_core(lua_State *L);
/* Starts and stops the preemption tick (host/rt/tick.c).  Start returns
** 0 or -errno. */
int larb_guard_start_tick(void);
void larb_guard_stop_tick(void);
/* A slice of co begins: the runaway clock starts afresh and the tick
** watches co.  It ends: nothing is watched, the tick's hook is taken
** off. */
void larb_guard_slice_begins(larb_ctx_t *ctx, lua_State *co);
void larb_guard_slice_ends(larb_ctx_t *ctx, lua_State *co);
/* A preemption passed up reached code that cannot yield: counts toward
** the runaway limit (may end the process and raise). */
void larb_guard_cannot_yield(lua_State *L);
/* Gives a pooled thread no hook (and no user hook) back. */
void larb_guard_reset_thread(larb_ctx_t *ctx, lua_State *co);
/* Pushes a one-line text for the value at idx and returns it.  Never
** runs a __tostring unbounded: one that raises, yields, loops or returns
** a non-string gives "(error object is a <type> value)".  May raise only
** a memory error, so call it under protection. */
const char *larb_tostring_safe(lua_State *L, int idx);

/* Module openers (one per binding file).  larb_open_process and
** larb_open_chip push the C half of `process` and `chip`; the embedded
** Lua half completes the same table. */
int larb_open_process(lua_State *L);
void larb_open_mbox(lua_State *L); /* adds to the table on top */
void larb_open_types(lua_State *L);
int larb_open_chip(lua_State *L);
int luaopen_arbor_core_sup(lua_State *L);

/* The ordered shutdown (lservice.c): spawns the system process that
** stops trees (oldest first in the array; stopped newest first), then
** halts. */
void larb_spawn_shutdown(larb_ctx_t *ctx, lua_State *L,
                         const arb_pid_t *trees, int n);
/* The runtime's signal callback: SIGHUP reloads, SIGINT/SIGTERM stop. */
void larb_host_signal(void *ud, int signum);
/* arbor.core's service functions, merged into it by larb_open_core. */
extern const luaL_Reg larb_service_funcs[];
/* Pushes the arbor.core module. */
int larb_open_core(lua_State *L);
/* Bytes the Lua state holds (lhost.c's allocator counts them). */
size_t larb_lua_bytes(void);

/* The logger (llogger.c): levels, events, the describer of values. */
enum { LARB_LOG_DEBUG, LARB_LOG_INFO, LARB_LOG_NOTICE, LARB_LOG_WARNING,
       LARB_LOG_ERROR };
/* Bytes a described value may take in an event. */
#define LARB_LOG_VALUE_MAX 4096
typedef struct larb_log_field_s {
  const char *key;
  const char *text;
  size_t len;
  int raw; /* a number or boolean: a JSON value as it is */
} larb_log_field_t;
/* A level's or format's index from its name, or -1. */
int larb_log_level_from(const char *name);
int larb_log_format_from(const char *name); /* 0 text, 1 json */
/* Sets the log up from the options; -1 with a message if the file cannot
** be opened. */
int larb_log_setup(const char *format, const char *level, const char *path,
                   char *err, size_t errlen);
void larb_log_close(void);
/* SIGUSR1: the log file is opened again at its path. */
void larb_log_reopen(void);
/* Events from text already made (plain C, never raise). */
void larb_log_emit(int level, arb_pid_t pid, const char *msg, size_t msglen,
                   const larb_log_field_t *fields, int nfields);
void larb_log_report(int level, arb_pid_t pid, const char *kind,
                     const char *head, const char *body,
                     const larb_log_field_t *fields, int nfields);
void larb_log_crash_text(arb_pid_t pid, int is_main, const char *verb,
                         const char *reason, const char *traceback);
void larb_log_main_exit_text(arb_pid_t pid, const char *reason);
/* The host's own messages (setup errors, a service that cannot start, a
** notify socket that fails): "arbor: msg" on stderr unless the log is
** JSON there, and an event when the log is a file or JSON.  Every
** report and crash leaves through this file: these, larb_log_emit and
** larb_log_report are its only ways out. */
void larb_log_host(int level, const char *msg);
/* arbor.core.quiet: no crash reports (but main's) and no supervisor
** reports, for benchmarks.  larb_log_wants_crash says whether a crash
** report of a process (main or not) would be written. */
void larb_log_set_quiet(int quiet);
int larb_log_quiet(void);
int larb_log_wants_crash(int is_main);
/* Main's pid, for the events about main once it has ended. */
void larb_log_set_main_pid(arb_pid_t pid);
/* Pushes the bounded text of the value at idx (tables with contents) and
** returns it.  May raise a memory error only. */
const char *larb_log_describe(lua_State *L, int idx);
/* Crash reports from Lua values; may raise a memory error only. */
void larb_log_crash(lua_State *L, arb_pid_t pid, int is_main, int ridx,
                    lua_State *co);
void larb_log_main_exit(lua_State *L, arb_pid_t pid, int ridx);
/* The logger module, arbor.core.report and arbor.core.log_reload. */
int larb_open_logger(lua_State *L);
int larb_log_lua_report(lua_State *L);
int larb_log_lua_reload(lua_State *L);
int larb_log_lua_label(lua_State *L);
int larb_log_lua_label_of(lua_State *L);
/* arbor.core.compact's part: the logger's tables sized to their contents. */
void larb_log_compact(lua_State *L);

#endif
