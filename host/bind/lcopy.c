/*
** lcopy.c: the deep copy that isolates messages and exit reasons
** (larb_push_copy, declared in larb.h).
**
** A table sent as a message (or an exit reason) is copied, so what either
** side changes afterwards the other never sees, as in Erlang.  The copy is
** made in C with raw access only (no metamethod runs, not even __pairs or
** __index): nested tables are copied too, a table reached twice is copied
** once (shared sub-tables and cycles keep their shape), and each copy gets
** the original's metatable.  Everything else travels as itself: strings
** and numbers are values, userdata (pids, subjects...), functions and
** threads are handles.
**
** It owns nothing between calls: every table it makes is on the Lua stack
** or returned.  It uses only the public Lua C API (the Debian package
** ships no internal headers) and depends on nothing else in arbor.
**
** Why it is shaped as it is (callgrind, tests/bench/copy.lua): through the
** public API each field costs a lua_next, which looks the previous key up
** again, and an insertion; growing a copy one rehash at a time costs more
** than the copy, so every copy is created at its final size.
**   - A root table without an array part (a record) is sized by gathering
**     its pairs on the stack during the one walk that copies it: no
**     counting walk.  Tables with an array part are counted from their
**     border, which costs one lua_next for a plain array.
**   - `seen` (original -> copy) and the work list exist only once a nested
**     table turns up: a flat record or array costs one table.
**   - The walk over nested tables is iterative (a work list in a Lua
**     table), so nesting depth costs no C stack.
** Iteration is lua_next from nil over every table: the manual leaves the
** order unspecified, and no public call tells whether the border's key
** lives in the array part, so a walk that starts elsewhere could skip
** fields.
*/
#include "larb.h"

#include <limits.h>

/* A record with at most this many fields is gathered on the stack (two
** slots a field) before its copy is made. */
#define GATHER_MAX 64

typedef struct copy_state_s {
  int seen, work; /* stack indices, 0 until needed */
  lua_Integer nwork;
} copy_state_t;

/* Makes the copier's bookkeeping tables on first need, while a table's
** fields are walked (a key and a value on top); root is the index of the
** original root table, rootcopy of its copy. */
static void need_bookkeeping(lua_State *L, copy_state_t *cs, int root,
                             int rootcopy) {
  if (cs->seen) return;
  lua_newtable(L);
  lua_pushvalue(L, root);
  lua_pushvalue(L, rootcopy);
  lua_rawset(L, -3);
  lua_newtable(L);
  /* Called in the middle of a lua_next walk: slide the two tables under
  ** the key and value being visited. */
  lua_rotate(L, -4, 2);
  cs->seen = lua_gettop(L) - 3;
  cs->work = lua_gettop(L) - 2;
}

/* Pushes an empty table sized for a copy of the table at idx.  The hash
** part is counted walking from the border (the array part's end): exact
** when the border's key is in the array part, an underestimate (the copy
** then grows) when it is not. */
static void new_copy_table(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_Integer narr = (lua_Integer)lua_rawlen(L, idx);
  int nrec = 0;
  if (narr > 0)
    lua_pushinteger(L, narr);
  else
    lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    nrec++;
  }
  lua_createtable(L, narr > INT_MAX ? INT_MAX : (int)narr, nrec);
}

/* Replaces the table on top with its copy (made now, or the one made
** earlier for it) and, for a new copy, queues the original. */
static void copy_nested(lua_State *L, copy_state_t *cs) {
  lua_pushvalue(L, -1);
  if (lua_rawget(L, cs->seen) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  luaL_checkstack(L, 6, "copying a message");
  new_copy_table(L, -1);
  if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_rawset(L, cs->seen);
  lua_pushvalue(L, -2);
  lua_rawseti(L, cs->work, ++cs->nwork);
  lua_remove(L, -2);
}

/* The slow path of a pair (a table key or value): the pair is on top;
** sets its copy into the table at copy and pops the value.  Out of line,
** so the walk's loop stays small.  Returns the key's index, which moves
** when the bookkeeping tables are made (slid in under the pair). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int copy_nested_pair(lua_State *L, copy_state_t *cs, int copy,
                            int root, int rootcopy) {
  need_bookkeeping(L, cs, root, rootcopy);
  lua_pushvalue(L, -2);
  if (lua_type(L, -1) == LUA_TTABLE) copy_nested(L, cs);
  lua_pushvalue(L, -2);
  if (lua_type(L, -1) == LUA_TTABLE) copy_nested(L, cs);
  lua_rawset(L, copy);
  lua_pop(L, 1);
  return lua_gettop(L);
}

/* Copies the pair on top (a key, then its value) into the table at copy
** and pops the value: the key stays for lua_next.  k is the key's
** (absolute) index, the value's is k + 1; returns the key's index after
** (see copy_nested_pair). */
static inline int copy_pair(lua_State *L, copy_state_t *cs, int copy,
                             int root, int rootcopy, int k) {
  int key_type = lua_type(L, k), value_type = lua_type(L, k + 1);
  if (key_type == LUA_TNUMBER && value_type != LUA_TTABLE) {
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, k, &isint);
    if (isint) { /* an array element, most often: no generic set */
      lua_rawseti(L, copy, i);
      return k;
    }
    /* a float key (never integral: Lua normalises those) */
  } else if (key_type == LUA_TTABLE || value_type == LUA_TTABLE) {
    return copy_nested_pair(L, cs, copy, root, rootcopy);
  }
  lua_pushvalue(L, k + 1); /* k v v */
  lua_copy(L, k, k + 1);   /* k k v */
  lua_rawset(L, copy);
  return k;
}

/* Copies into the table at copy every field of the table at orig that
** lua_next visits after the key on top (nil: all of them); pops the key. */
static void copy_fields_from(lua_State *L, copy_state_t *cs, int orig,
                             int copy, int root, int rootcopy) {
  int k = lua_gettop(L);
  while (lua_next(L, orig)) k = copy_pair(L, cs, copy, root, rootcopy, k);
}

/* Pushes the root's copy, made at its final size, and fills it.  For a
** table without an array part the fields are gathered on the stack while
** they are plain (no table key or value) and the table is small, so one
** walk both counts and copies them; what is left after the gather (a
** nested table turned up, or the record is large) is counted from where
** the gather stopped and then copied as any table is. */
static void copy_root(lua_State *L, copy_state_t *cs, int idx) {
  if (lua_rawlen(L, idx) != 0) {
    new_copy_table(L, idx);
    int rootcopy = lua_gettop(L);
    if (lua_getmetatable(L, idx)) lua_setmetatable(L, rootcopy);
    lua_pushnil(L);
    copy_fields_from(L, cs, idx, rootcopy, idx, rootcopy);
    return;
  }
  luaL_checkstack(L, 2 * GATHER_MAX + 8, "copying a message");
  int base = lua_gettop(L) + 1, npairs = 0, more;
  lua_pushnil(L);
  while ((more = lua_next(L, idx)) != 0) {
    int k = base + 2 * npairs; /* the key just pushed; its value above */
    if (npairs == GATHER_MAX || lua_type(L, k) == LUA_TTABLE ||
        lua_type(L, k + 1) == LUA_TTABLE)
      break;
    npairs++;
    lua_pushvalue(L, k); /* the key again, for lua_next */
  }
  /* base: npairs pairs, then (more) the pair the gather stopped at */
  int nrest = 0;
  if (more) {
    lua_pushvalue(L, -2);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      nrest++;
    }
  }
  lua_createtable(L, 0, npairs + more + nrest);
  lua_rotate(L, base, 1); /* the copy under the pairs */
  int rootcopy = base;
  if (lua_getmetatable(L, idx)) lua_setmetatable(L, rootcopy);
  if (more) lua_rotate(L, base + 1, 2); /* the stopped-at pair next to it */
  for (int i = 0; i < npairs; i++) lua_rawset(L, rootcopy);
  if (more) {
    copy_pair(L, cs, rootcopy, idx, rootcopy, lua_gettop(L) - 1);
    copy_fields_from(L, cs, idx, rootcopy, idx, rootcopy);
  }
}

void larb_push_copy(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushvalue(L, idx);
    return;
  }
  luaL_checkstack(L, 12, "copying a message");
  copy_state_t cs = {0, 0, 0};
  int rootcopy = lua_gettop(L) + 1;
  copy_root(L, &cs, idx);
  while (cs.nwork > 0) {
    lua_rawgeti(L, cs.work, cs.nwork);
    lua_pushnil(L);
    lua_rawseti(L, cs.work, cs.nwork--);
    int orig = lua_gettop(L);
    lua_pushvalue(L, orig);
    lua_rawget(L, cs.seen);
    lua_pushnil(L);
    copy_fields_from(L, &cs, orig, orig + 1, idx, rootcopy);
    lua_pop(L, 2);
  }
  lua_settop(L, rootcopy);
}
