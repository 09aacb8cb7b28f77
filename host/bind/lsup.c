/*
** lsup.c: the restart engine (host/core/sup.c) as a Lua object, for the
** supervisor process in lua/supervisor.lua.
**
** The engine decides; Lua carries out.  Each event method returns the
** plan's outcome ("restart", ...) and the key it is about; the plan stays
** in the engine, and the executor walks it in place: step() names the
** next step (op, key), which it reports back with step_done or
** start_failed (a failure puts a new plan in place); each of the three
** answers with the step after it, or with nil, outcome, key once the
** plan that finished is done.  So a restart makes no Lua table, and a
** one-child restart is three calls: exit, step, step_done.  plan() copies the current plan into
** a table {outcome = "restart", key = k, restarts = n, max = m,
** period_ms = p, strategy = s, {op = "shutdown", key = k}, ...} for what
** is rare (reports, a live edit reading its steps ahead).  Child keys are
** the engine's stable integers.  adopt() is the start handshake's checks
** on a start function's result (subject, owner, link) in one call.  Errors from the engine raise:
** the executor only sends events that are valid by construction, so an
** error here is a bug worth a crash report.  Flags are the exception: new
** and set_flags return nil, err for flags outside the engine's limits
** (exported as MAX_INTENSITY, MIN_PERIOD_MS and MAX_PERIOD_MS, which spec
** validation checks against), so a bad flag can never take a supervisor,
** or the host reloading it, down.  Backoff times are checked against
** MAX_BACKOFF_MS the same way.  The executor passes its clock (now, ms) to
** every timed call; the engine owns the backoff schedule (next_due, due).
*/
#include <string.h>

#include "larb.h"
#include "sup.h"

#define LSUP "arbor.Sup"

static const char *const strategies[] = {"rest_for_one", "one_for_one",
                                         "one_for_all", NULL};
static const char *const restarts[] = {"permanent", "transient", "temporary",
                                       NULL};
static const char *const kinds[] = {"worker", "supervisor", NULL};
static const char *const classes[] = {"normal", "shutdown", "abnormal", NULL};
static const char *const statuses[] = {"running", "restarting", "stopped"};
static const char *const outcomes[] = {"none", "restart", "retry", "give_up",
                                       "fail", "wait"};
static const char *const ops[] = {"shutdown", "start", "drop"};

/* The engine at 1.  Methods carry the engine metatable as upvalue 1, so
** the common case is one metatable comparison, not a registry lookup by
** name (luaL_checkudata) on every call of a restart's path. */
static arb_sup_t *check_sup(lua_State *L) {
  arb_sup_t **s = lua_touserdata(L, 1);
  int ours = s != NULL && lua_getmetatable(L, 1);
  if (ours) {
    ours = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
  }
  if (!ours) s = luaL_checkudata(L, 1, LSUP); /* raises the usual error */
  luaL_argcheck(L, *s != NULL, 1, "supervisor engine is closed");
  return *s;
}

static int check_rc(lua_State *L, int rc) {
  if (rc < 0) return luaL_error(L, "restart engine: %s", arb_sup_strerror(rc));
  return rc;
}

/* Reads strategy, max_restarts and period_ms at idx .. idx + 2.  Anything
** the engine would not accept (an unknown strategy, a number that is not
** a whole one or is outside the limits) gives ARB_SUP_EINVAL: never a
** raise inside a running supervisor, never a truncation to fit an int. */
static int read_flags(lua_State *L, int idx, arb_sup_flags_t *f) {
  const char *name = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx)
                                                      : "";
  int max_ok = 0, period_ok = 0;
  lua_Integer max = 0, period = 0;
  if (lua_type(L, idx + 1) == LUA_TNUMBER)
    max = lua_tointegerx(L, idx + 1, &max_ok);
  if (lua_type(L, idx + 2) == LUA_TNUMBER)
    period = lua_tointegerx(L, idx + 2, &period_ok);
  f->strategy = -1;
  for (int i = 0; strategies[i]; i++)
    if (strcmp(name, strategies[i]) == 0) f->strategy = i;
  if (f->strategy < 0 || !max_ok || !period_ok || max < 0 ||
      max > ARB_SUP_MAX_INTENSITY || period < ARB_SUP_MIN_PERIOD_MS ||
      period > ARB_SUP_MAX_PERIOD_MS)
    return ARB_SUP_EINVAL;
  f->max_restarts = (int)max;
  f->period_ms = (int64_t)period;
  return 0;
}

/* Pushes nil, a message and the error's name for a flags failure. */
static int flags_error(lua_State *L, int rc) {
  lua_pushnil(L);
  if (rc == ARB_SUP_EINVAL)
    lua_pushfstring(L,
                    "restart engine: invalid flags (strategy must be "
                    "rest_for_one, one_for_one or one_for_all, "
                    "max_restarts an integer from 0 to %d, period_ms an "
                    "integer from %d to %I)",
                    ARB_SUP_MAX_INTENSITY, ARB_SUP_MIN_PERIOD_MS,
                    (lua_Integer)ARB_SUP_MAX_PERIOD_MS);
  else
    lua_pushfstring(L, "restart engine: %s", arb_sup_strerror(rc));
  lua_pushstring(L, arb_sup_err_name(rc));
  return 3;
}

/* restart, kind [, backoff initial, max, reset_after] at idx .. idx + 4. */
static void read_spec(lua_State *L, int idx, arb_sup_spec_t *spec) {
  spec->restart = luaL_checkoption(L, idx, NULL, restarts);
  spec->kind = luaL_checkoption(L, idx + 1, NULL, kinds);
  spec->user = 0;
  spec->backoff.initial_ms = (int64_t)luaL_optinteger(L, idx + 2, 0);
  spec->backoff.max_ms = (int64_t)luaL_optinteger(L, idx + 3, 0);
  spec->backoff.reset_after_ms = (int64_t)luaL_optinteger(L, idx + 4, 0);
}

static int push_plan(lua_State *L, const arb_sup_plan_t *p) {
  lua_createtable(L, (int)p->nsteps, 6);
  lua_pushstring(L, outcomes[p->outcome]);
  lua_setfield(L, -2, "outcome");
  lua_pushinteger(L, p->key);
  lua_setfield(L, -2, "key");
  lua_pushstring(L, strategies[p->strategy]);
  lua_setfield(L, -2, "strategy");
  lua_pushinteger(L, p->restarts);
  lua_setfield(L, -2, "restarts");
  lua_pushinteger(L, p->max_restarts);
  lua_setfield(L, -2, "max");
  lua_pushinteger(L, (lua_Integer)p->period_ms);
  lua_setfield(L, -2, "period_ms");
  if (p->outcome == ARB_SUP_WAIT) {
    lua_pushinteger(L, (lua_Integer)p->due_ms);
    lua_setfield(L, -2, "due_ms");
    lua_pushinteger(L, (lua_Integer)p->delay_ms);
    lua_setfield(L, -2, "delay_ms");
  }
  for (size_t i = 0; i < p->nsteps; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ops[p->steps[i].op]);
    lua_setfield(L, -2, "op");
    lua_pushinteger(L, p->steps[i].key);
    lua_setfield(L, -2, "key");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* arbor.core.sup.new(strategy, max_restarts, period_ms)
**   -> engine | nil, err, name */
static int lsup_new(lua_State *L) {
  arb_sup_flags_t f;
  int rc = read_flags(L, 1, &f);
  if (rc < 0) return flags_error(L, rc);
  arb_sup_t **ud = lua_newuserdatauv(L, sizeof(*ud), 0);
  *ud = NULL;
  luaL_setmetatable(L, LSUP);
  rc = arb_sup_new(ud, &f);
  if (rc < 0) return flags_error(L, rc);
  return 1;
}

static int lsup_gc(lua_State *L) {
  arb_sup_t **s = luaL_checkudata(L, 1, LSUP);
  arb_sup_free(*s);
  *s = NULL;
  return 0;
}

/* RestartEngine<n children> (or <closed>) */
static int lsup_tostring(lua_State *L) {
  arb_sup_t **s = luaL_checkudata(L, 1, LSUP);
  if (*s == NULL) {
    lua_pushliteral(L, "RestartEngine<closed>");
    return 1;
  }
  arb_sup_counts_t c;
  arb_sup_count_children(*s, &c);
  lua_pushfstring(L, "RestartEngine<%I children>", (lua_Integer)c.specs);
  return 1;
}

static const luaL_Reg engine_meta[] = {
    {"__gc", lsup_gc}, {"__tostring", lsup_tostring}, {NULL, NULL}};

/* engine:set_flags(strategy, max_restarts, period_ms)
**   -> true | nil, err, name (nothing changed) */
static int lsup_set_flags(lua_State *L) {
  arb_sup_flags_t f;
  arb_sup_t *s = check_sup(L);
  int rc = read_flags(L, 2, &f);
  if (rc == 0) rc = arb_sup_set_flags(s, &f);
  if (rc < 0) return flags_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* A key out of uint32_t's range names no child: 0 (never a key). */
static uint32_t check_key(lua_State *L, int idx) {
  lua_Integer key = luaL_checkinteger(L, idx);
  return key > 0 && key <= (lua_Integer)UINT32_MAX ? (uint32_t)key : 0;
}

static int64_t check_now(lua_State *L, int idx) {
  return (int64_t)luaL_checkinteger(L, idx);
}

/* engine:add(restart, kind [, initial, max, reset_after]) -> key */
static int lsup_add(lua_State *L) {
  arb_sup_spec_t spec;
  arb_sup_t *s = check_sup(L);
  read_spec(L, 2, &spec);
  uint32_t key;
  check_rc(L, arb_sup_add(s, &spec, &key));
  lua_pushinteger(L, key);
  return 1;
}

/* engine:insert(position, restart, kind [, initial, max, reset_after])
**   -> key (position from 1) */
static int lsup_insert(lua_State *L) {
  arb_sup_spec_t spec;
  arb_sup_t *s = check_sup(L);
  lua_Integer pos = luaL_checkinteger(L, 2);
  luaL_argcheck(L, pos >= 1, 2, "position starts at 1");
  read_spec(L, 3, &spec);
  uint32_t key;
  check_rc(L, arb_sup_insert(s, (size_t)pos - 1, &spec, &key));
  lua_pushinteger(L, key);
  return 1;
}

/* engine:update(key, restart, kind [, initial, max, reset_after]) */
static int lsup_update(lua_State *L) {
  arb_sup_spec_t spec;
  arb_sup_t *s = check_sup(L);
  uint32_t key = check_key(L, 2);
  read_spec(L, 3, &spec);
  check_rc(L, arb_sup_update(s, key, &spec));
  return 0;
}

/* Pushes a plan's outcome and the key it is about (0: none). */
static int push_outcome(lua_State *L, const arb_sup_plan_t *p) {
  lua_pushstring(L, outcomes[p->outcome]);
  lua_pushinteger(L, p->key);
  return 2;
}

/* Event methods: each returns the new plan's outcome and key, or nil and
** an arbor.Error whose kind is the engine's ("running", "restarting",
** "not_found", ...) for the management calls. */
static int plan_or_error(lua_State *L, int rc, const arb_sup_plan_t *plan) {
  if (rc < 0) return larb_fail(L, rc, NULL);
  return push_outcome(L, plan);
}

/* What the executor does next: op, key of the current plan's next
** unreported step, or nil, outcome, key once every step is reported. */
static int push_next(lua_State *L, const arb_sup_t *s) {
  arb_sup_step_t st;
  if (!arb_sup_next_step(s, &st)) {
    lua_pushnil(L);
    push_outcome(L, arb_sup_current_plan(s));
    return 3;
  }
  lua_pushstring(L, ops[st.op]);
  lua_pushinteger(L, st.key);
  return 2;
}

static int lsup_start(lua_State *L) {
  const arb_sup_plan_t *p;
  int rc = arb_sup_start(check_sup(L), &p);
  return plan_or_error(L, rc, p);
}

/* The exit class of the reason at idx, as arbor.core.classify reads it
** ("normal", "shutdown" and "abnormal" are their own classes). */
static int reason_class(lua_State *L, int idx) {
  luaL_checkany(L, idx);
  switch (larb_reason_kind(L, idx)) {
    case ARB_REASON_NORMAL:
      return ARB_EXIT_NORMAL;
    case ARB_REASON_SHUTDOWN:
      return ARB_EXIT_SHUTDOWN;
    default:
      return ARB_EXIT_ABNORMAL;
  }
}

/* engine:exit(key, reason, now) -> outcome, key, class: child key's
** process ended with reason (classified here, so the executor makes one
** call per exit) */
static int lsup_exit(lua_State *L) {
  const arb_sup_plan_t *p;
  arb_sup_t *s = check_sup(L);
  int cls = reason_class(L, 3);
  int rc = arb_sup_exit(s, check_key(L, 2), cls, check_now(L, 4), &p);
  if (rc < 0) return larb_fail(L, rc, NULL);
  push_outcome(L, p);
  lua_pushstring(L, classes[cls]);
  return 3;
}

static int lsup_retry(lua_State *L) {
  const arb_sup_plan_t *p;
  arb_sup_t *s = check_sup(L);
  int rc = arb_sup_retry(s, check_key(L, 2), check_now(L, 3), &p);
  return plan_or_error(L, rc, p);
}

#define KEY_EVENT(name, fn)                      \
  static int name(lua_State *L) {                \
    const arb_sup_plan_t *p;                     \
    arb_sup_t *s = check_sup(L);                 \
    int rc = fn(s, check_key(L, 2), &p);         \
    return plan_or_error(L, rc, p);              \
  }
KEY_EVENT(lsup_terminate_child, arb_sup_terminate_child)
KEY_EVENT(lsup_restart_child, arb_sup_restart_child)
KEY_EVENT(lsup_remove, arb_sup_remove)
KEY_EVENT(lsup_changed, arb_sup_changed)

/* engine:start_failed(key [, now]) -> the first step of the plan put in
** its place (as step()) */
static int lsup_start_failed(lua_State *L) {
  arb_sup_t *s = check_sup(L);
  uint32_t key = check_key(L, 2);
  check_rc(L, lua_isnoneornil(L, 3)
                  ? arb_sup_start_failed(s, key, NULL)
                  : arb_sup_start_failed_at(s, key, check_now(L, 3), NULL));
  return push_next(L, s);
}

/* engine:due(now) -> plan (outcome "none" if nothing is due yet) */
static int lsup_due(lua_State *L) {
  const arb_sup_plan_t *p;
  arb_sup_t *s = check_sup(L);
  int rc = arb_sup_due(s, check_now(L, 2), &p);
  return plan_or_error(L, rc, p);
}

/* arbor.core.sup.adopt(value) -> pid | false | nil, why: the start
** handshake's checks on what a start function returned, in one call.
** value must be a subject (else nil and what it was).  A subject the
** caller owns is a child without a process of its own: false.  Otherwise
** its owner is linked to the caller (start functions normally link
** already; linking here as well means a plain spawn is supervised too)
** and its pid returned.  An owner that has already exited is still
** started, as in OTP (start returned it): its exit is on its way, the
** real reason if the start function linked, and in any case the
** "noproc" exit arb_link gives a trapping caller. */
static int lsup_adopt(lua_State *L) {
  larb_subject_t *sub = larb_test_subject(L, 1);
  if (sub == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "start function returned a %s, expected a subject",
                    luaL_typename(L, 1));
    return 2;
  }
  arb_proc_t *self = larb_self(L);
  arb_pid_t owner = arb_subject_owner(&sub->sub);
  if (owner == self->pid) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int rc = arb_link(larb_ctx(L)->node, self, owner);
  if (rc == ARB_ENOMEM) return luaL_error(L, "out of memory");
  larb_push_pid(L, owner);
  return 1;
}

/* engine:next_due() -> ms | nil: when the earliest backoff restart is due */
static int lsup_next_due(lua_State *L) {
  int64_t due;
  if (!arb_sup_next_due(check_sup(L), &due)) return 0;
  lua_pushinteger(L, (lua_Integer)due);
  return 1;
}

static int lsup_stop(lua_State *L) {
  const arb_sup_plan_t *p;
  arb_sup_stop(check_sup(L), &p);
  return push_outcome(L, p);
}

/* engine:plan() -> the current plan as a table (every step, reported or
** not) */
static int lsup_plan(lua_State *L) {
  return push_plan(L, arb_sup_current_plan(check_sup(L)));
}

/* engine:step() -> op, key | nil, outcome, key (see push_next) */
static int lsup_step(lua_State *L) { return push_next(L, check_sup(L)); }

/* engine:step_done(key [, now]) -> the next step (as step())
** (now: when a START's run began) */
static int lsup_step_done(lua_State *L) {
  arb_sup_t *s = check_sup(L);
  uint32_t key = check_key(L, 2);
  check_rc(L, lua_isnoneornil(L, 3)
                  ? arb_sup_step_done(s, key)
                  : arb_sup_step_done_at(s, key, check_now(L, 3)));
  return push_next(L, s);
}

/* engine:children() -> {{key=, status=, restarts=, kind=, restart=
**   [, backoff_ms = latest backoff delay] [, due_ms = if waiting]}, ...} */
static int lsup_children(lua_State *L) {
  arb_sup_t *s = check_sup(L);
  arb_sup_counts_t counts;
  arb_sup_count_children(s, &counts);
  size_t n = counts.specs;
  arb_sup_info_t *info = lua_newuserdatauv(L, (n ? n : 1) * sizeof(*info), 0);
  n = arb_sup_which_children(s, info, n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, info[i].key);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, statuses[info[i].status]);
    lua_setfield(L, -2, "status");
    lua_pushinteger(L, info[i].restarts);
    lua_setfield(L, -2, "restarts");
    lua_pushstring(L, kinds[info[i].kind]);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, restarts[info[i].restart]);
    lua_setfield(L, -2, "restart");
    if (info[i].backoff_ms > 0) {
      lua_pushinteger(L, (lua_Integer)info[i].backoff_ms);
      lua_setfield(L, -2, "backoff_ms");
    }
    if (info[i].waiting) {
      lua_pushinteger(L, (lua_Integer)info[i].due_ms);
      lua_setfield(L, -2, "due_ms");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* engine:counts() -> {specs=, active=, workers=, supervisors=} */
static int lsup_counts(lua_State *L) {
  arb_sup_counts_t c;
  arb_sup_count_children(check_sup(L), &c);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)c.specs);
  lua_setfield(L, -2, "specs");
  lua_pushinteger(L, (lua_Integer)c.active);
  lua_setfield(L, -2, "active");
  lua_pushinteger(L, (lua_Integer)c.workers);
  lua_setfield(L, -2, "workers");
  lua_pushinteger(L, (lua_Integer)c.supervisors);
  lua_setfield(L, -2, "supervisors");
  return 1;
}

static const luaL_Reg engine_methods[] = {
    {"set_flags", lsup_set_flags},
    {"add", lsup_add},
    {"insert", lsup_insert},
    {"update", lsup_update},
    {"start", lsup_start},
    {"exit", lsup_exit},
    {"retry", lsup_retry},
    {"due", lsup_due},
    {"next_due", lsup_next_due},
    {"terminate_child", lsup_terminate_child},
    {"restart_child", lsup_restart_child},
    {"remove", lsup_remove},
    {"changed", lsup_changed},
    {"stop", lsup_stop},
    {"step", lsup_step},
    {"plan", lsup_plan},
    {"step_done", lsup_step_done},
    {"start_failed", lsup_start_failed},
    {"children", lsup_children},
    {"counts", lsup_counts},
    {NULL, NULL}};

int luaopen_arbor_core_sup(lua_State *L) {
  luaL_newmetatable(L, LSUP);
  luaL_setfuncs(L, engine_meta, 0);
  lua_createtable(L, 0, (int)(sizeof(engine_methods) /
                              sizeof(engine_methods[0])));
  lua_pushvalue(L, -2); /* the metatable: every method's upvalue 1 */
  luaL_setfuncs(L, engine_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_createtable(L, 0, 7);
  lua_pushcfunction(L, lsup_new);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, lsup_adopt);
  lua_setfield(L, -2, "adopt");
  lua_pushinteger(L, ARB_SUP_MAX_INTENSITY);
  lua_setfield(L, -2, "MAX_INTENSITY");
  lua_pushinteger(L, ARB_SUP_MIN_PERIOD_MS);
  lua_setfield(L, -2, "MIN_PERIOD_MS");
  lua_pushinteger(L, (lua_Integer)ARB_SUP_MAX_PERIOD_MS);
  lua_setfield(L, -2, "MAX_PERIOD_MS");
  lua_pushinteger(L, (lua_Integer)ARB_SUP_MAX_BACKOFF_MS);
  lua_setfield(L, -2, "MAX_BACKOFF_MS");
  return 1;
}
