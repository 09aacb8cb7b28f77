/*
** lchip.c: the `chip` module's functions (lua/chip.lua is its Lua half).
**
** A registry is a process that only sleeps; the registry data
** (host/core/registry.c) is attached to it and dies with it, which is what
** makes a restarted registry start empty and frees its name.  The handle
** users hold is a subject owned by that process, marked as a registry and
** pointing at the data while it lives.  Every operation is a direct call:
** register takes effect before it returns, members never waits, and a
** member's death delists it inside the core's exit path.
**
** members answers from a cache of read-only snapshots, one per group,
** kept in the handle's user value: group -> proxy.  A proxy is an empty
** table whose metatable reads through to the list (__index is the list
** table, so reads stay in the VM) and raises on writes; the metatable
** also holds the core's change stamp for the group the list was built
** at.  While the stamp is unchanged a call returns the same proxy and
** allocates nothing, which matters in a large heap where every fresh
** table brings the next collection closer.  Entries of groups that have
** gone are dropped when asked for again or by a sweep once the cache
** outgrows the live groups, and the whole cache goes with the registry.
*/
#include <string.h>

#include "larb.h"
#include "ldist.h"
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

/* The registry's process ended: forget the pointer and the members
** cache.  Only writes of nil here (no allocation, so no finalizer can run
** mid-exit). */
static void registry_destroyed(void *ud, arb_registry_t *reg) {
  larb_ctx_t *ctx = ud;
  lua_State *L = ctx->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->registries_ref);
  if (lua_rawgetp(L, -1, reg) == LUA_TUSERDATA) {
    ((larb_registry_subject_t *)lua_touserdata(L, -1))->registry = NULL;
    lua_pushnil(L);
    lua_setiuservalue(L, -2, 1);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawsetp(L, -2, reg);
  lua_pop(L, 1);
}

static const arb_registry_ops_t registry_ops = {release_value,
                                                registry_destroyed};

/* The registry process's body: the data lives beside it in C. */
static int registry_main(lua_State *L) { return larb_sleep_forever(L); }

/* registries[reg] = handle: (reg lightuserdata, handle) -> (); under
** protection, since growing the table may run out of memory. */
static int store_handle(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, larb_ctx(L)->registries_ref);
  lua_pushvalue(L, 2);
  lua_rawsetp(L, -2, lua_touserdata(L, 1));
  return 0;
}

/* chip.start([name]) -> registry | nil, err
** Allocate, then commit: the handle (Lua) first, then the process, its
** registry, its name, the handle's place in the registries table and the
** link, each undone if a later one fails, so a failure leaves nothing. */
static int lchip_start(lua_State *L) {
  size_t len = 0;
  const char *name = luaL_optlstring(L, 1, NULL, &len);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *self = larb_self(L);
  if (name && arb_names_lookup(ctx->names, name, len)) {
    lua_pushfstring(L, "a registry named '%s' is already running", name);
    return larb_push_error(L, "name_taken", lua_tostring(L, -1));
  }
  /* No metatable (so no __gc) until its subject is made. */
  larb_registry_subject_t *s = lua_newuserdatauv(L, sizeof(*s), 1);
  s->registry = NULL;
  s->base.finalized = 0;
  lua_pushcfunction(L, registry_main);
  arb_proc_t *p = larb_spawn(L, 0);
  arb_subject_init(ctx->node, &s->base.sub, p);
  luaL_setmetatable(L, LARB_SUBJECT);
  int rc = ARB_ENOMEM;
  arb_registry_t *reg = arb_registry_new(ctx->node, p, &registry_ops, ctx);
  if (reg == NULL) goto fail;
  if (name && (rc = arb_names_take(ctx->names, reg, name, len)) != 0)
    goto fail;
  lua_pushcfunction(L, store_handle);
  lua_pushlightuserdata(L, reg);
  lua_pushvalue(L, -3);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    rc = ARB_ENOMEM;
    goto fail;
  }
  if ((rc = arb_link(ctx->node, self, p->pid)) != 0) goto fail;
  s->registry = reg;
  return 1;
fail:
  /* Taking the process back runs its exit hook: the registry, its name
  ** and its registries entry go with it. */
  larb_unspawn(L, p);
  if (rc == ARB_ENOMEM) return luaL_error(L, "chip.start: %s", arb_strerror(rc));
  lua_pushfstring(L, "chip.start: registry '%s'", name ? name : "");
  return larb_fail(L, rc, lua_tostring(L, -1));
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

/* Pushes "chip.<fn>: registry <handle> is not running", the one text of
** the calls that raise on a registry that has ended. */
static const char *push_not_running(lua_State *L, const char *fn) {
  luaL_tolstring(L, 1, NULL);
  lua_pushfstring(L, "chip.%s: registry %s is not running", fn,
                  lua_tostring(L, -1));
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* chip.register(registry, group, subject)
** A registry that has ended drops it silently, as chip's cast to a dead
** actor is dropped (the API contract); every other call on it raises
** push_not_running's text.  Bad arguments raise either way. */
static int lchip_register(lua_State *L) {
  arb_registry_t *reg = check_registry(L, 1);
  arb_registry_key_t key = check_group(L, 2);
  larb_subject_t *s = larb_check_subject(L, 3);
  if (reg == NULL) return 0;
  int rc = arb_registry_register(reg, &key, &s->sub, larb_ref(L, 3));
  if (rc < 0) return luaL_error(L, "chip.register: %s", arb_strerror(rc));
  if (rc == ARB_REGISTRY_ADDED) larb_dist_chip_registered(L, 1, 2, 3);
  return 0;
}

/* The registry at 1, or raises "chip.<fn>: registry ... is not running". */
static arb_registry_t *live_registry(lua_State *L, const char *fn) {
  arb_registry_t *reg = check_registry(L, 1);
  if (reg == NULL) {
    luaL_where(L, 1);
    push_not_running(L, fn);
    lua_concat(L, 2);
    lua_error(L);
  }
  return reg;
}

/* {======================================================================
** members: read-only snapshots, cached per group
** ======================================================================*/

/* Keys of the cache table that no group can be (groups are strings,
** numbers and booleans): the shared empty list and the entry count.
** Not const, so no compiler may fold the two into one address. */
static char EMPTY_KEY, COUNT_KEY;

/* Where a snapshot's metatable keeps the stamp it was built at. */
#define STAMP_SLOT 1

static const char READ_ONLY[] = "chip.members list is read-only";

/* __newindex: every write raises. */
static int snapshot_write(lua_State *L) {
  return luaL_error(L, "%s (copy it to change it)", READ_ONLY);
}

/* Pushes the list table behind the snapshot at idx. */
static void push_list(lua_State *L, int idx) {
  lua_getmetatable(L, idx);
  lua_getfield(L, -1, "__index"); /* the metatable has none: a raw get */
  lua_remove(L, -2);
}

/* __len */
static int snapshot_len(lua_State *L) {
  push_list(L, 1);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* The iterator __pairs returns: (list, i) -> i + 1, list[i + 1]. */
static int snapshot_next(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 2) + 1;
  if (lua_rawgeti(L, 1, i) == LUA_TNIL) return 1;
  lua_pushinteger(L, i);
  lua_insert(L, -2);
  return 2;
}

/* __pairs: the members in order, as ipairs gives them. */
static int snapshot_pairs(lua_State *L) {
  lua_pushcfunction(L, snapshot_next);
  push_list(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}

/* Turns a list table (top of the stack) into a read-only snapshot built
** at stamp, replacing the list by the snapshot. */
static void seal_list(lua_State *L, uint64_t stamp) {
  lua_createtable(L, 0, 0);         /* the snapshot: always empty */
  lua_createtable(L, 1, 6);         /* its metatable */
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, snapshot_write);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, snapshot_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, snapshot_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushstring(L, READ_ONLY);     /* getmetatable's answer; no setmetatable */
  lua_setfield(L, -2, "__metatable");
  lua_pushstring(L, "chip.members");
  lua_setfield(L, -2, "__name");
  lua_pushinteger(L, (lua_Integer)stamp);
  lua_rawseti(L, -2, STAMP_SLOT);
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

/* The stamp a snapshot (at idx) was built at. */
static uint64_t snapshot_stamp(lua_State *L, int idx) {
  lua_getmetatable(L, idx);
  lua_rawgeti(L, -1, STAMP_SLOT);
  uint64_t stamp = (uint64_t)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return stamp;
}

/* A cache key back as a group key; 0 for the cache's own keys. */
static int cache_key(lua_State *L, int idx, arb_registry_key_t *key) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *str = lua_tolstring(L, idx, &len);
      *key = arb_registry_key_str(str, len);
      return 1;
    }
    case LUA_TNUMBER:
      *key = lua_isinteger(L, idx)
                 ? arb_registry_key_int(lua_tointeger(L, idx))
                 : arb_registry_key_float(lua_tonumber(L, idx));
      return 1;
    case LUA_TBOOLEAN:
      *key = arb_registry_key_bool(lua_toboolean(L, idx));
      return 1;
    default:
      return 0;
  }
}

/* Drops the entries (from the cache at idx) whose group has changed or
** gone, and returns how many are left.  Clearing fields during next is
** allowed; nothing is added. */
static lua_Integer cache_sweep(lua_State *L, int idx, arb_registry_t *reg) {
  lua_Integer left = 0;
  arb_registry_key_t key;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (cache_key(L, -2, &key)) {
      if (arb_registry_stamp(reg, &key) != snapshot_stamp(L, -1)) {
        lua_pushvalue(L, -2);
        lua_pushnil(L);
        lua_rawset(L, idx);
      } else {
        left++;
      }
    }
    lua_pop(L, 1);
  }
  return left;
}

/* Pushes the members cache of the registry handle at 1, making it on
** first use. */
static void push_cache(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_createtable(L, 0, 0);
  seal_list(L, 0);
  lua_rawsetp(L, -2, &EMPTY_KEY);
  lua_pushinteger(L, 0);
  lua_rawsetp(L, -2, &COUNT_KEY);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 1);
}

/* Pushes the read-only members list of the group at 2 in the registry at
** 1 (fn names the caller in errors); the stack holds c - 1 values, and c
** and c + 1 are used on the way. */
static void push_members(lua_State *L, const char *fn, int c) {
  arb_registry_t *reg = live_registry(L, fn);
  arb_registry_key_t key = check_group(L, 2);
  uint64_t stamp = arb_registry_stamp(reg, &key);
  push_cache(L);                   /* c */
  lua_pushvalue(L, 2);
  int cached = lua_rawget(L, c) == LUA_TTABLE; /* c + 1 */
  if (stamp == 0) {                /* unknown: the shared empty list */
    if (cached) {
      lua_pushvalue(L, 2);
      lua_pushnil(L);
      lua_rawset(L, c);
      lua_rawgetp(L, c, &COUNT_KEY);
      lua_Integer n = lua_tointeger(L, -1) - 1;
      lua_pop(L, 1);
      lua_pushinteger(L, n);
      lua_rawsetp(L, c, &COUNT_KEY);
    }
    lua_rawgetp(L, c, &EMPTY_KEY);
    return;
  }
  if (cached && snapshot_stamp(L, c + 1) == stamp) return;
  lua_pop(L, 1);
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
  seal_list(L, stamp);             /* c + 1 */
  if (!cached) {
    /* A new entry: sweep once the cache holds more than twice the live
    ** groups (plus slack), so stale entries cost O(1) amortised. */
    lua_rawgetp(L, c, &COUNT_KEY);
    lua_Integer count = lua_tointeger(L, -1) + 1;
    lua_pop(L, 1);
    if (count > 2 * (lua_Integer)arb_registry_ngroups(reg) + 16)
      count = cache_sweep(L, c, reg) + 1;
    lua_pushinteger(L, count);
    lua_rawsetp(L, c, &COUNT_KEY);
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, c + 1);
  lua_rawset(L, c);
}

/* chip.members(registry, group [, timeout_ms]) -> {subject, ...}, a
** read-only list shared by every call while the group is unchanged. */
static int lchip_members(lua_State *L) {
  luaL_optinteger(L, 3, 5000); /* answered at once: never times out */
  lua_settop(L, 2);
  push_members(L, "members", 3);
  return 1;
}

/* Calls the function at 3 with each subject of the list at 4 after the
** i-th; fn may block (lua_callk comes back here). */
static int dispatch_from(lua_State *L, int status, lua_KContext i) {
  (void)status;
  for (;;) {
    lua_settop(L, 4);
    lua_pushvalue(L, 3);
    if (lua_rawgeti(L, 4, (lua_Integer)++i) == LUA_TNIL) return 0;
    lua_callk(L, 1, 0, i, dispatch_from);
  }
}

/* chip.dispatch(registry, group, fn): fn(subject) for each member, in
** registration order, over the snapshot taken when it starts; fn runs in
** the caller and may block. */
static int lchip_dispatch(lua_State *L) {
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  push_members(L, "dispatch", 4);
  lua_getmetatable(L, -1); /* the snapshot's list, read raw */
  lua_getfield(L, -1, "__index");
  lua_replace(L, 4);
  return dispatch_from(L, LUA_OK, 0);
}

/* }====================================================================== */

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
  arb_proc_t *p = arb_node_lookup(ctx->node, arb_subject_owner(&s->base.sub));
  if (p) arb_node_exit(ctx->node, p, &arb_reason_normal);
  return larb_finish(L, 0);
}

static const luaL_Reg chip_funcs[] = {
    {"start", lchip_start},     {"from", lchip_from},
    {"register", lchip_register}, {"members", lchip_members},
    {"groups", lchip_groups},   {"stop", lchip_stop},
    {"dispatch", lchip_dispatch},
    {NULL, NULL}};

int larb_open_chip(lua_State *L) {
  luaL_newlib(L, chip_funcs);
  return 1;
}
