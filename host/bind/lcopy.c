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
**   - A table without an array part (a record) is sized by gathering its
**     pairs on the stack during the one walk that copies them: no
**     counting walk, and a nested record of plain fields is finished
**     when it is met (start_copy).  Tables with an array part are counted
**     from their border, which costs one lua_next for a plain array.
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

/* What start_copy leaves to do. */
enum { COPY_DONE, COPY_FROM_KEY, COPY_ALL };

/* Pushes a copy of the table at orig (an absolute index) made at its
** final size, with the original's metatable, and returns what is left:
** - a table with an array part is counted from its border
**   (new_copy_table): COPY_ALL, nothing copied yet;
** - any other is walked gathering its pairs on the stack while they are
**   plain (no table key or value) and at most GATHER_MAX, so the one walk
**   both counts and copies them: COPY_DONE when that was all of them;
**   else the rest is counted from where the gather stopped, the gathered
**   pairs are set and the key it stopped at is left above the copy:
**   COPY_FROM_KEY, copying goes on from (and with) that key. */
static int start_copy(lua_State *L, int orig) {
  if (lua_rawlen(L, orig) != 0) {
    new_copy_table(L, orig);
    if (lua_getmetatable(L, orig)) lua_setmetatable(L, -2);
    return COPY_ALL;
  }
  luaL_checkstack(L, 8, "copying a message");
  lua_pushnil(L); /* the copy's place */
  int base = lua_gettop(L), npairs = 0, more;
  lua_pushnil(L);
  while ((more = lua_next(L, orig)) != 0) {
    int k = base + 1 + 2 * npairs; /* the key just pushed; its value above */
    if (npairs == GATHER_MAX || lua_type(L, k) == LUA_TTABLE ||
        lua_type(L, k + 1) == LUA_TTABLE)
      break;
    /* Room for the next pairs, asked for as they come: a process's stack
    ** grows only as far as its records need (a grown stack is not given
    ** back in full).  Without room the gather simply stops here. */
    if (npairs % 8 == 0 && !lua_checkstack(L, 2 * 8 + 8)) break;
    npairs++;
    lua_pushvalue(L, k); /* the key again, for lua_next */
  }
  int nrest = 0;
  if (more) {
    lua_pop(L, 1); /* the value: its key is enough to go on from */
    lua_pushvalue(L, -1);
    while (lua_next(L, orig)) {
      lua_pop(L, 1);
      nrest++;
    }
  }
  lua_createtable(L, 0, npairs + more + nrest);
  if (lua_getmetatable(L, orig)) lua_setmetatable(L, -2);
  lua_replace(L, base);
  if (more) lua_rotate(L, base + 1, 1); /* the key under the pairs */
  for (int i = 0; i < npairs; i++) lua_rawset(L, base);
  return more ? COPY_FROM_KEY : COPY_DONE;
}

/* Replaces the table on top with its copy (made now, or the one made
** earlier for it) and, unless the copy is already complete, queues the
** original with the key to go on from (nil: from the start). */
static void copy_nested(lua_State *L, copy_state_t *cs) {
  lua_pushvalue(L, -1);
  if (lua_rawget(L, cs->seen) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  luaL_checkstack(L, 6, "copying a message");
  int orig = lua_gettop(L);
  int left = start_copy(L, orig);
  lua_pushvalue(L, orig);
  lua_pushvalue(L, orig + 1);
  lua_rawset(L, cs->seen);
  if (left != COPY_DONE) {
    if (left == COPY_ALL) lua_pushnil(L);
    lua_pushvalue(L, orig);
    lua_rawseti(L, cs->work, ++cs->nwork);
    lua_rawseti(L, cs->work, ++cs->nwork); /* the key */
  }
  lua_remove(L, orig);
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

/* Copies into the table at copy the fields of the table at orig from the
** key on top on (the key included; nil: all of them); pops the key. */
static void copy_fields_from(lua_State *L, copy_state_t *cs, int orig,
                             int copy, int root, int rootcopy) {
  int k = lua_gettop(L);
  if (!lua_isnil(L, k)) {
    lua_pushvalue(L, k);
    lua_rawget(L, orig);
    k = copy_pair(L, cs, copy, root, rootcopy, k);
  }
  while (lua_next(L, orig)) k = copy_pair(L, cs, copy, root, rootcopy, k);
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
  int left = start_copy(L, idx);
  if (left == COPY_DONE) return;
  if (left == COPY_ALL) lua_pushnil(L);
  copy_fields_from(L, &cs, idx, rootcopy, idx, rootcopy);
  /* The work list holds pairs: an original, then the key to go on from. */
  while (cs.nwork > 0) {
    lua_rawgeti(L, cs.work, cs.nwork - 1);
    int orig = lua_gettop(L);
    lua_pushvalue(L, orig);
    lua_rawget(L, cs.seen);
    lua_rawgeti(L, cs.work, cs.nwork);
    cs.nwork -= 2;
    copy_fields_from(L, &cs, orig, orig + 1, idx, rootcopy);
    lua_pop(L, 2);
  }
  lua_settop(L, rootcopy);
}
