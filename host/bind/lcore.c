/*
** lcore.c: arbor.core, the host's own functions for the modules in lua/
** (supervisor, actor, the shutdown and main modules) and for tests and
** benchmarks: the clock, process kinds, reports, exit_self, memory
** accounting.  Users write against process, chip, supervisor and actor;
** nothing here is part of that contract.
*/
#include <stdio.h>

#include "alloc.h"
#include "larb.h"

/* arbor.core.memory() -> lua_bytes, c_bytes: what the host holds now. */
static int host_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)larb_lua_bytes());
  lua_pushinteger(L, (lua_Integer)arb_alloc_in_use());
  return 2;
}

/* arbor.core.cached_subjects() -> n: how many subjects larb_check_subject
** remembers (for test_guard: a collected subject must not stay). */
static int host_cached_subjects(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_pushinteger(L, (ctx->subject_cache[0] != NULL) +
                         (ctx->subject_cache[1] != NULL));
  return 1;
}

/* arbor.core.preempt(): passes a yield for the scheduler (a preemption,
** a blocked receive) up one level; see lua/arbor/coroutine.lua. */
static int host_preempt(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!lua_isyieldable(L)) {
    larb_guard_cannot_yield(L);
    return 0;
  }
  if (L != ctx->current_co) ctx->passing_up = L;
  return lua_yield(L, 0);
}

/* arbor.core.is_supervisor(pid) */
static int host_is_supervisor(lua_State *L) {
  arb_proc_t *p = arb_node_lookup(larb_ctx(L)->node, larb_check_pid(L, 1));
  lua_pushboolean(L, p && p->user_kind == LARB_SUPERVISOR);
  return 1;
}

/* arbor.core.set_kind("supervisor" | "worker") marks the caller. */
static int host_set_kind(lua_State *L) {
  static const char *const kinds[] = {"worker", "supervisor", NULL};
  arb_proc_t *p = larb_self(L);
  p->user_kind = (uint8_t)luaL_checkoption(L, 1, NULL, kinds);
  return 0;
}

/* arbor.core.quiet([flag]) -> flag: no crash or supervisor reports (for
** benchmarks); without an argument, only tells. */
static int host_quiet(lua_State *L) {
  if (!lua_isnone(L, 1)) larb_log_set_quiet(lua_toboolean(L, 1));
  lua_pushboolean(L, larb_log_quiet());
  return 1;
}

/* arbor.core.now() -> the node's monotonic clock in ms */
static int host_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)arb_rt_now(larb_ctx(L)->rt));
  return 1;
}

/* arbor.core.exit_self(reason): ends the caller with reason, trapping or
** not (Erlang's exit/1). */
static int host_exit(lua_State *L) {
  luaL_checkany(L, 1);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *self = larb_self(L);
  arb_reason_t *r = larb_reason_from(L, 1);
  if (r->kind == ARB_REASON_KILL) r = &arb_reason_killed;
  arb_node_exit(ctx->node, self, r);
  arb_reason_release(ctx->node, r);
  return larb_finish(L, 0);
}

/* arbor.core.is_subject(value) -> boolean */
static int host_is_subject(lua_State *L) {
  lua_pushboolean(L, larb_test_subject(L, 1) != NULL);
  return 1;
}

/* Replaces the registry table at ref by a copy sized to its contents
** (same metatable).  C code reaches these tables only through their
** registry refs, so the swap is invisible to it. */
static void compact_table(lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_newtable(L);
  if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  lua_pop(L, 1);
}

/* arbor.core.compact(): gives back the memory the host's own tables and
** the core's message pool kept from their busiest moment.  Memory
** accounting after it is exact.
**
** Order matters.  A full collection runs first, so the weak pid cache has
** dropped the entries of pids nobody holds and every freed reference is
** gone; only then are the tables rebuilt, each sized to what is really
** live.  Rebuilding first would size the pid cache by entries that were
** about to be collected, and Lua never shrinks a table's node array
** afterwards: the figure would jump by a power of two depending on how
** much garbage happened to be pending (which depends on the allocation
** history, down to the length of the script's path).  A last collection
** frees the old tables.
**
** Only the tables listed here (and the logger's) are rebuilt.  A Lua
** module must not keep a table of its own whose keys come and go with
** processes (a weak table keyed by pids, say): its size would depend on
** when the collector ran, and the exact gates of tests/soak would drift
** by a few hundred bytes.  Such state belongs in one of these tables,
** read through the binding (arbor.core.log_label_of is one such). */
static int host_compact(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_newtable(L); /* the thread pool refills as processes end */
  lua_rawseti(L, LUA_REGISTRYINDEX, ctx->pool_ref);
  ctx->npool = 0;
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCCOLLECT); /* finalizers of the first round ran; collect
                            ** what they released */
  const int refs[] = {ctx->values_ref, ctx->procs_ref, ctx->pids_ref,
                      ctx->timers_ref, ctx->registries_ref};
  for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
    compact_table(L, refs[i]);
  larb_log_compact(L);
  arb_node_trim(ctx->node);
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

/* arbor.core.process_count() */
static int host_process_count(lua_State *L) {
  lua_pushinteger(L, arb_node_count(larb_ctx(L)->node));
  return 1;
}

static const luaL_Reg core_funcs[] = {
    {"is_supervisor", host_is_supervisor},
    {"set_kind", host_set_kind},
    {"quiet", host_quiet},
    {"memory", host_memory},
    {"process_count", host_process_count},
    {"now", host_now},
    {"compact", host_compact},
    {"exit_self", host_exit},
    {"cached_subjects", host_cached_subjects},
    {"preempt", host_preempt},
    {"is_subject", host_is_subject},
    {"error", larb_lua_error_new}, /* larb.c */
    {"classify", larb_lua_classify}, /* larb.c */
    {"report", larb_log_lua_report}, /* llogger.c */
    {"log_reload", larb_log_lua_reload},
    {"log_label", larb_log_lua_label},
    {"log_label_of", larb_log_lua_label_of},
    {NULL, NULL}};

/* arbor.core: these and the service functions (lservice.c). */
int larb_open_core(lua_State *L) {
  luaL_newlib(L, core_funcs);
  luaL_setfuncs(L, larb_service_funcs, 0);
  larb_guard_open_core(L);
  return 1;
}
