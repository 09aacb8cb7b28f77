/*
** lchip.c: the C half of the `chip` module (lua/chip.lua adds dispatch).
**
** A registry is a process that only sleeps; the registry data
** (host/core/registry.c) is attached to it and dies with it, which is what
** makes a restarted registry start empty and frees its name.  The handle
** users hold is a subject owned by that process, marked as a registry and
** pointing at the data while it lives.  Every operation is a direct call:
** register takes effect before it returns, members never waits, and a
** member's death delists it inside the core's exit path.
*/
#include <string.h>

#include "larb.h"
#include "registry.h"

/* The registry behind the subject at idx, or NULL if it has ended.
** Raises if the value is not a registry at all. */
static larb_registry_subject_t *registry_handle(lua_State *L, int idx) {
  larb_subject_t *s = larb_test_subject(L, idx);
  if (s == NULL || lua_rawlen(L, idx) != sizeof(larb_registry_subject_t))
    luaL_typeerror(L, idx, "chip registry");
  return (larb_registry_subject_t *)s;
}

static arb_registry_t *check_registry(lua_State *L, int idx) {
  return registry_handle(L, idx)->registry;
}

static arb_registry_key_t check_group(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *str = lua_tolstring(L, idx, &len);
      return arb_registry_key_str(str, len);
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        return arb_registry_key_int(lua_tointeger(L, idx));
      {
        lua_Number n = lua_tonumber(L, idx);
        luaL_argcheck(L, n == n, idx, "group must not be NaN");
        return arb_registry_key_float(n);
      }
    case LUA_TBOOLEAN:
      return arb_registry_key_bool(lua_toboolean(L, idx));
    default:
      luaL_typeerror(L, idx, "group (string, number or boolean)");
      return arb_registry_key_int(0);
  }
}

static void push_key(lua_State *L, const arb_registry_key_t *k) {
  switch (k->kind) {
    case ARB_REGISTRY_KEY_STR:
      lua_pushlstring(L, k->str, k->len);
      break;
    case ARB_REGISTRY_KEY_INT:
      lua_pushinteger(L, (lua_Integer)k->i);
      break;
    case ARB_REGISTRY_KEY_FLOAT:
      lua_pushnumber(L, k->f);
      break;
    default:
      lua_pushboolean(L, (int)k->i);
  }
}

static void release_value(void *ud, intptr_t ref) {
  larb_ctx_t *ctx = ud;
  larb_unref(ctx->L, ref);
}

/* The registry's process ended: forget the pointer.  Only table writes of
** nil here (no allocation, so no finalizer can run mid-exit). */
static void registry_destroyed(void *ud, arb_registry_t *reg) {
  larb_ctx_t *ctx = ud;
  lua_State *L = ctx->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->registries_ref);
  if (lua_rawgetp(L, -1, reg) == LUA_TUSERDATA)
    ((larb_registry_subject_t *)lua_touserdata(L, -1))->registry = NULL;
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawsetp(L, -2, reg);
  lua_pop(L, 1);
}

static const arb_registry_ops_t registry_ops = {release_value,
                                                registry_destroyed};

/* The registry process's body: the data lives beside it in C. */
static int registry_main(lua_State *L) { return larb_sleep_forever(L); }

/* chip.start([name]) -> registry | nil, err */
static int lchip_start(lua_State *L) {
  size_t len = 0;
  const char *name = luaL_optlstring(L, 1, NULL, &len);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *self = larb_self(L);
  if (name && arb_names_lookup(ctx->names, name, len)) {
    lua_pushfstring(L, "a registry named '%s' is already running", name);
    return larb_push_error(L, "name_taken", lua_tostring(L, -1));
  }
  lua_pushcfunction(L, registry_main);
  arb_proc_t *p = larb_spawn(L, 0);
  larb_registry_subject_t *s = lua_newuserdatauv(L, sizeof(*s), 0);
  s->registry = NULL;
  luaL_setmetatable(L, LARB_SUBJECT);
  arb_subject_init(ctx->node, &s->base.sub, p);
  arb_registry_t *reg = arb_registry_new(ctx->node, p, &registry_ops, ctx);
  if (reg == NULL ||
      (name && arb_names_take(ctx->names, reg, name, len) != 0)) {
    arb_node_exit(ctx->node, p, &arb_reason_killed);
    return luaL_error(L, "out of memory");
  }
  s->registry = reg;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->registries_ref);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, reg);
  lua_pop(L, 1);
  if (arb_link(ctx->node, self, p->pid) != 0)
    return luaL_error(L, "out of memory");
  return 1;
}

/* chip.from(name) -> registry | nil */
static int lchip_from(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_registry_t *reg = arb_names_lookup(ctx->names, name, len);
  if (reg == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->registries_ref);
  lua_rawgetp(L, -1, reg);
  return 1;
}

/* chip.register(registry, group, subject) */
static int lchip_register(lua_State *L) {
  arb_registry_t *reg = check_registry(L, 1);
  arb_registry_key_t key = check_group(L, 2);
  larb_subject_t *s = larb_check_subject(L, 3);
  if (reg == NULL) return 0; /* like chip: a dead registry drops it */
  int rc = arb_registry_register(reg, &key, &s->sub, larb_ref(L, 3));
  if (rc < 0) return luaL_error(L, "chip.register: %s", arb_strerror(rc));
  return 0;
}

static arb_registry_t *live_registry(lua_State *L, const char *fn) {
  arb_registry_t *reg = check_registry(L, 1);
  if (reg == NULL) {
    luaL_tolstring(L, 1, NULL);
    luaL_error(L, "chip.%s: registry %s is not running", fn,
               lua_tostring(L, -1));
  }
  return reg;
}

/* chip.members(registry, group [, timeout_ms]) -> {subject, ...} */
static int lchip_members(lua_State *L) {
  arb_registry_t *reg = live_registry(L, "members");
  arb_registry_key_t key = check_group(L, 2);
  luaL_optinteger(L, 3, 5000); /* answered at once: never times out */
  larb_ctx_t *ctx = larb_ctx(L);
  arb_registry_iter_t it;
  uint32_t n = arb_registry_members(reg, &key, &it);
  lua_createtable(L, (int)n, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->values_ref);
  intptr_t ref;
  lua_Integer i = 0;
  while (arb_registry_member_next(&it, NULL, &ref)) {
    lua_rawgeti(L, -1, larb_ref_slot(ref));
    lua_rawseti(L, -3, ++i);
  }
  lua_pop(L, 1);
  return 1;
}

/* chip.groups(registry) -> {group, ...}: groups that have members */
static int lchip_groups(lua_State *L) {
  arb_registry_t *reg = live_registry(L, "groups");
  arb_registry_iter_t it;
  uint32_t n = arb_registry_groups(reg, &it);
  lua_createtable(L, (int)n, 0);
  arb_registry_key_t key;
  uint32_t count;
  lua_Integer i = 0;
  while (arb_registry_group_next(&it, &key, &count)) {
    push_key(L, &key);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* chip.stop(registry): the registry process exits "normal" now. */
static int lchip_stop(lua_State *L) {
  larb_registry_subject_t *s = registry_handle(L, 1);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = arb_node_lookup(ctx->node, s->base.sub.owner);
  if (p) arb_node_exit(ctx->node, p, &arb_reason_normal);
  return larb_finish(L, 0);
}

static const luaL_Reg chip_funcs[] = {
    {"start", lchip_start},     {"from", lchip_from},
    {"register", lchip_register}, {"members", lchip_members},
    {"groups", lchip_groups},   {"stop", lchip_stop},
    {NULL, NULL}};

int larb_open_chip(lua_State *L) {
  luaL_newlib(L, chip_funcs);
  return 1;
}
