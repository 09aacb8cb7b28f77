/*
** lintrospect.c: arbor.core.procs() and arbor.core.proc_info(pid), the
** raw facts lua/arbor/introspect.lua shapes into `arbor status
** --processes`, `arbor status --json` and the dashboard's tables.
**
** What a process is, how many messages wait for it and what it waits on
** come from the core's accessors (host/core/procinfo.h): this file never
** reads the process table's fields.  What only Lua knows comes from the
** process's coroutine, read without running it: the function it is
** blocked in (level 0 of a suspended coroutine is the C function that
** yielded: receive, select, sleep, a socket's or a file's call) and the
** innermost Lua function with its current line.  Nothing is recorded on
** the hot paths for this: the cost is paid only when someone looks.
**
** Also arbor.core.crash_frame, which marks the frames whose locals a
** crash report shows (llogger.c).
**
** Depends on the core's procinfo.h and larb.h; never changes a process.
*/
#include <stdlib.h>
#include <string.h>

#include "lintrospect.h"
#include "procinfo.h"

static const char *state_name(uint8_t state) {
  switch (state) {
    case ARB_PROC_RUNNABLE: return "runnable";
    case ARB_PROC_RUNNING: return "running";
    case ARB_PROC_WAITING: return "waiting";
    default: return "ended";
  }
}

static const char *kind_name(uint8_t kind) {
  return kind == LARB_SUPERVISOR ? "supervisor"
         : kind == LARB_SYSTEM   ? "system"
                                 : "worker";
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* Adds what the coroutine co tells to the table on top of L: blocked_in
** (the C function it yielded from, a function value) and blocked_name,
** current ("file:line" of the innermost Lua function) and current_name,
** and depth (its call frames). */
static void add_stack(lua_State *L, lua_State *co) {
  lua_Debug ar;
  if (!lua_getstack(co, 0, &ar)) {
    set_bool(L, "not_started", lua_status(co) == LUA_OK);
    return;
  }
  if (lua_getinfo(co, "Snf", &ar)) { /* pushes the function on co */
    if (ar.what[0] == 'C') {
      lua_xmove(co, L, 1);
      lua_setfield(L, -2, "blocked_in");
      if (ar.name) {
        lua_pushstring(L, ar.name);
        lua_setfield(L, -2, "blocked_name");
      }
    } else {
      lua_pop(co, 1);
    }
  }
  int level = 0, found = 0;
  while (lua_getstack(co, level, &ar)) {
    if (!found && lua_getinfo(co, "Sln", &ar) && ar.what[0] != 'C' &&
        ar.currentline >= 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      lua_setfield(L, -2, "current");
      if (ar.name) {
        lua_pushstring(L, ar.name);
        lua_setfield(L, -2, "current_name");
      }
      found = 1;
    }
    level++;
    if (level >= 1000) break; /* deep enough to say so */
  }
  set_int(L, "depth", level);
}

/* Pushes the table for pid, or nothing and returns 0 if it has ended. */
static int push_info(lua_State *L, larb_ctx_t *ctx, arb_pid_t pid, int procs) {
  arb_proc_info_t in;
  if (arb_proc_info(ctx->node, pid, &in) != 0) return 0;
  lua_createtable(L, 0, 24);
  larb_push_pid(L, pid);
  lua_setfield(L, -2, "pid");
  lua_pushstring(L, state_name(in.state));
  lua_setfield(L, -2, "state");
  lua_pushstring(L, kind_name(in.user_kind));
  lua_setfield(L, -2, "kind");
  set_bool(L, "main", pid == ctx->main_pid);
  set_bool(L, "trap_exit", in.trap_exit);
  set_int(L, "messages", (lua_Integer)(in.queued + in.exits_queued +
                                       in.downs_queued));
  set_int(L, "subject_messages", (lua_Integer)in.queued);
  set_int(L, "exits_queued", in.exits_queued);
  set_int(L, "downs_queued", in.downs_queued);
  set_int(L, "subjects", in.subjects);
  set_int(L, "links", in.links);
  set_int(L, "monitors", in.monitors);
  set_int(L, "monitored_by", in.monitored_by);
  /* The host's C memory for it: the core's part and the subjects and
  ** monitors the binding embeds in userdata. */
  set_int(L, "memory", (lua_Integer)(in.bytes +
                                     in.subjects * sizeof(larb_subject_t) +
                                     in.monitors * sizeof(larb_monitor_t)));
  if (in.state == ARB_PROC_WAITING) {
    set_int(L, "selected_subjects", in.selected_subjects);
    set_int(L, "selected_monitors", in.selected_monitors);
    set_bool(L, "exits_selected", in.exits_selected);
    if (in.timer_armed) {
      int64_t left = in.wake_at - arb_rt_now(ctx->rt);
      set_int(L, "wakes_in", left > 0 ? left : 0);
    }
  }
  lua_rawgeti(L, procs, (lua_Integer)arb_pid_slot(pid));
  lua_State *co = lua_tothread(L, -1);
  lua_pop(L, 1);
  /* The caller's own stack is running: its frames are this call. */
  if (co && co != L) add_stack(L, co);
  return 1;
}

/* A process ranked for a listing that cannot hold them all. */
typedef struct ranked_s {
  arb_pid_t pid;
  uint64_t messages;
  size_t bytes;
} ranked_t;

/* Busiest first: most queued, then most memory, then oldest slot. */
static int by_load(const void *a, const void *b) {
  const ranked_t *x = a, *y = b;
  if (x->messages != y->messages) return x->messages < y->messages ? 1 : -1;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  return arb_pid_slot(x->pid) < arb_pid_slot(y->pid) ? -1 : 1;
}

/* arbor.core.procs([limit]) -> {info, ...}, total: every live process in
** slot order (see proc_info for the fields), or, when there are more than
** limit, the limit busiest (most messages queued, then most memory) in
** that order.  total counts them all.  The ranking reads only the
** core's counts, so a host of millions of processes makes tables for
** `limit` of them, never for all. */
int larb_introspect_procs(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_Integer limit = luaL_optinteger(L, 1, LUA_MAXINTEGER);
  luaL_argcheck(L, limit >= 0, 1, "a count >= 0");
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->procs_ref);
  int procs = lua_gettop(L);
  uint32_t total = arb_node_count(ctx->node);
  uint32_t cursor = 0;
  lua_Integer n = 0;
  arb_pid_t pid;
  if ((lua_Integer)total <= limit) {
    lua_createtable(L, (int)total, 0);
    while ((pid = arb_node_next_live(ctx->node, &cursor)) != ARB_PID_NONE) {
      if (push_info(L, ctx, pid, procs)) lua_rawseti(L, -2, ++n);
    }
    lua_pushinteger(L, (lua_Integer)n);
    return 2;
  }
  /* The ranking array is a userdata, so an error frees it. */
  ranked_t *r = lua_newuserdatauv(L, total * sizeof(*r), 0);
  uint32_t k = 0;
  arb_proc_info_t in;
  while (k < total &&
         (pid = arb_node_next_live(ctx->node, &cursor)) != ARB_PID_NONE) {
    if (arb_proc_info(ctx->node, pid, &in) != 0) continue;
    r[k].pid = pid;
    r[k].messages = in.queued + in.exits_queued + in.downs_queued;
    r[k].bytes = in.bytes;
    k++;
  }
  qsort(r, k, sizeof(*r), by_load);
  lua_createtable(L, (int)limit, 0);
  for (uint32_t i = 0; i < k && n < limit; i++) {
    if (push_info(L, ctx, r[i].pid, procs)) lua_rawseti(L, -2, ++n);
  }
  lua_pushinteger(L, (lua_Integer)k);
  return 2;
}

/* arbor.core.proc_info(pid) -> info | nil: pid, state (runnable, running,
** waiting), kind (worker, supervisor, system), main, trap_exit, messages
** (everything queued for it: subject messages, trapped exits, DOWNs) and
** each part, subjects, links, monitors, monitored_by, memory (C bytes),
** while waiting selected_subjects, selected_monitors, exits_selected and
** wakes_in (ms, when a timer will wake it), and from its coroutine
** blocked_in/blocked_name, current/current_name, depth, not_started. */
int larb_introspect_proc_info(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_pid_t pid = larb_check_pid(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->procs_ref);
  if (!push_info(L, ctx, pid, lua_gettop(L))) lua_pushnil(L);
  return 1;
}


/* arbor.core.crash_frame(fn): marks fn (an actor's loop runner) so that
** a crash report of a process that dies with fn on its stack adds the
** values of fn's locals named last_message and state, described and
** bounded (llogger.c reads them from the dead coroutine: nothing is
** recorded while the process runs).  Weak keys: a marked function can
** still be collected. */
int larb_introspect_crash_frame(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LARB_CRASH_FRAMES) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LARB_CRASH_FRAMES);
  }
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}
