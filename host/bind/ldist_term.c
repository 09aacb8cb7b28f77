/*
** ldist_term.c: Lua values and Erlang terms, for the dist module.
**
** Owns the small Lua types that stand for what Lua lacks (atoms, pids,
** references as userdata with __eq and __tostring; tuples, maps and
** improper lists as tables with a marker metatable), the writer of terms
** (ei's ei_x_encode_*, driven by a walk over the Lua value, depth-bounded
** so a cycle is an error) and the reader's visitor: host/dist/term.c
** checks each item against the buffer and the limits, this file builds
** the Lua value from what it visits.  An arbor subject is written as a
** pid of our node (ldist_our_pid) and read back as the same subject.
** The mapping is documented in docs/dist.md.
**
** Depends on ldist_int.h (the state table), ei and term.h; never on the
** node's sockets.
*/
#ifdef ARBOR_HAVE_DIST

#include <stdio.h>
#include <string.h>

#include "ldist_int.h"

/* {======================================================================
** Small Lua types: atoms, pids, refs, tuples, maps
** ======================================================================*/


/* Pushes the interned atom name. */
void ldist_push_atom(lua_State *L, const char *name, size_t len) {
  ldist_state_field(L, "atoms", "v");
  if (lua_getfield(L, -1, name) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  latom_t *a = lua_newuserdatauv(L, sizeof(*a) + len + 1, 0);
  a->len = len;
  memcpy(a->name, name, len);
  a->name[len] = '\0';
  luaL_setmetatable(L, LDIST_ATOM);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, a->name);
  lua_remove(L, -2);
}

/* dist.atom(name) -> atom */
int ldist_l_atom(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, strlen(s) == len, 1, "atom name must not contain \\0");
  size_t chars = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) chars++;
  if (chars > ARB_TERM_ATOM_CHARS)
    return luaL_argerror(L, 1, "atom name over 255 characters");
  ldist_push_atom(L, s, len);
  return 1;
}

static int atom_tostring(lua_State *L) {
  latom_t *a = luaL_checkudata(L, 1, LDIST_ATOM);
  lua_pushlstring(L, a->name, a->len);
  return 1;
}

static void pid_key(lua_State *L, const erlang_pid *p) {
  lua_pushfstring(L, "%s|%d|%d|%d", p->node, (int)p->num, (int)p->serial,
                  (int)p->creation);
}

/* Pushes the interned Pid userdata for p. */
static void push_beam_pid(lua_State *L, const erlang_pid *p) {
  ldist_state_field(L, "pids", "v");
  pid_key(L, p);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  erlang_pid *u = lua_newuserdatauv(L, sizeof(*u), 0);
  *u = *p;
  luaL_setmetatable(L, LDIST_PID);
  pid_key(L, p);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);
}

static int pid_tostring(lua_State *L) {
  erlang_pid *p = luaL_checkudata(L, 1, LDIST_PID);
  lua_pushfstring(L, "<%s.%d.%d>", p->node, (int)p->num, (int)p->serial);
  return 1;
}

static int pid_eq(lua_State *L) {
  erlang_pid *a = luaL_testudata(L, 1, LDIST_PID);
  erlang_pid *b = luaL_testudata(L, 2, LDIST_PID);
  lua_pushboolean(L, a && b && a->num == b->num && a->serial == b->serial &&
                         a->creation == b->creation &&
                         strcmp(a->node, b->node) == 0);
  return 1;
}

static void push_ref(lua_State *L, const erlang_ref *r) {
  erlang_ref *u = lua_newuserdatauv(L, sizeof(*u), 0);
  *u = *r;
  luaL_setmetatable(L, LDIST_REF);
}

static int ref_tostring(lua_State *L) {
  erlang_ref *r = luaL_checkudata(L, 1, LDIST_REF);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "#Ref<");
  luaL_addstring(&b, r->node);
  for (int i = r->len - 1; i >= 0; i--) {
    lua_pushfstring(L, ".%I", (lua_Integer)r->n[i]);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
  return 1;
}

int ldist_ref_equal(const erlang_ref *a, const erlang_ref *b) {
  if (a->len != b->len || a->creation != b->creation ||
      strcmp(a->node, b->node) != 0)
    return 0;
  for (int i = 0; i < a->len; i++)
    if (a->n[i] != b->n[i]) return 0;
  return 1;
}

static int ref_eq(lua_State *L) {
  erlang_ref *a = luaL_testudata(L, 1, LDIST_REF);
  erlang_ref *b = luaL_testudata(L, 2, LDIST_REF);
  lua_pushboolean(L, a && b && ldist_ref_equal(a, b));
  return 1;
}

void ldist_ref_key(lua_State *L, const char *node, const erlang_ref *r) {
  lua_pushfstring(L, "%s|%s|%d|%d|%d|%d", node, r->node, (int)r->n[0],
                  (int)r->n[1], (int)r->n[2], (int)r->creation);
}

/* dist.tuple(...) -> tuple */
int ldist_l_tuple(lua_State *L) {
  int n = lua_gettop(L);
  lua_createtable(L, n, 1);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  luaL_setmetatable(L, LDIST_TUPLE);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Lua values to terms (ei does the writing)
** ======================================================================*/



static void encode_error(lua_State *L, const char *what) {
  luaL_error(L, "cannot encode %s as an Erlang term", what);
}

/* A plain table: a list when its keys are exactly 1..#t (or it is
** empty), else a map. */
static void encode_table(lua_State *L, ei_x_buff *x, int idx, int depth) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  int is_list = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
        lua_tointeger(L, -2) > n)
      is_list = 0;
    lua_pop(L, 1);
  }
  if (count != n) is_list = 0;
  if (is_list) {
    if (n > 0) ei_x_encode_list_header(x, (long)n);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      ldist_encode_value(L, x, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    }
    ei_x_encode_empty_list(x);
    return;
  }
  ei_x_encode_map_header(x, (long)count);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    ldist_encode_value(L, x, top - 1, depth + 1);
    ldist_encode_value(L, x, top, depth + 1);
    lua_pop(L, 1);
  }
}

static void encode_subject(lua_State *L, ei_x_buff *x, int idx,
                           larb_subject_t *s) {
  erlang_pid p;
  if (ldist_our_pid(&p, arb_subject_id(&s->sub)) != 0)
    luaL_error(L, "cannot encode a subject: no node is running "
                  "(dist.start first)");
  ldist_state_field(L, "exported", "v");
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, (lua_Integer)arb_subject_id(&s->sub));
  lua_pop(L, 1);
  ei_x_encode_pid(x, &p);
}

void ldist_encode_value(lua_State *L, ei_x_buff *x, int idx, int depth) {
  if (depth > ENCODE_DEPTH)
    luaL_error(L, "cannot encode a value nested deeper than %d levels (or "
                  "with a cycle) as an Erlang term", ENCODE_DEPTH);
  luaL_checkstack(L, 6, "term too deep");
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      ei_x_encode_boolean(x, lua_toboolean(L, idx));
      return;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        ei_x_encode_longlong(x, (long long)lua_tointeger(L, idx));
      } else {
        double d = lua_tonumber(L, idx);
        if (d != d || d - d != 0) encode_error(L, "NaN or infinity");
        ei_x_encode_double(x, d);
      }
      return;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len > INT32_MAX) encode_error(L, "a string over 2 GiB");
      ei_x_encode_binary(x, s, (int)len);
      return;
    }
    case LUA_TUSERDATA: {
      latom_t *a = luaL_testudata(L, idx, LDIST_ATOM);
      if (a) {
        ei_x_encode_atom_len_as(x, a->name, (int)a->len, ERLANG_UTF8,
                                ERLANG_UTF8);
        return;
      }
      erlang_pid *p = luaL_testudata(L, idx, LDIST_PID);
      if (p) {
        ei_x_encode_pid(x, p);
        return;
      }
      erlang_ref *r = luaL_testudata(L, idx, LDIST_REF);
      if (r) {
        ei_x_encode_ref(x, r);
        return;
      }
      larb_subject_t *s = larb_test_subject(L, idx);
      if (s) {
        encode_subject(L, x, idx, s);
        return;
      }
      encode_error(L, "this userdata");
      return;
    }
    case LUA_TTABLE: {
      idx = lua_absindex(L, idx);
      if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, LDIST_TUPLE);
        luaL_getmetatable(L, LDIST_IMPROPER);
        luaL_getmetatable(L, LDIST_MAP);
        int is_tuple = lua_rawequal(L, -4, -3);
        int is_improper = lua_rawequal(L, -4, -2);
        int is_map = lua_rawequal(L, -4, -1);
        lua_pop(L, 4);
        if (is_tuple || is_improper) {
          lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
          if (is_tuple) {
            lua_getfield(L, idx, "n");
            if (lua_isinteger(L, -1)) n = lua_tointeger(L, -1);
            lua_pop(L, 1);
            if (n < 0 || n > INT32_MAX) encode_error(L, "a tuple of bad size");
            ei_x_encode_tuple_header(x, (long)n);
          } else {
            if (n < 1) encode_error(L, "an improper list without elements");
            ei_x_encode_list_header(x, (long)n);
          }
          for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            if (lua_isnil(L, -1)) encode_error(L, "nil (a hole in a tuple)");
            ldist_encode_value(L, x, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
          }
          if (is_improper) {
            lua_getfield(L, idx, "tail");
            if (lua_isnil(L, -1)) encode_error(L, "an improper list's nil tail");
            ldist_encode_value(L, x, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
          }
          return;
        }
        if (is_map) {
          lua_Integer count = 0;
          lua_pushnil(L);
          while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
          }
          ei_x_encode_map_header(x, (long)count);
          lua_pushnil(L);
          while (lua_next(L, idx)) {
            int top = lua_gettop(L);
            ldist_encode_value(L, x, top - 1, depth + 1);
            ldist_encode_value(L, x, top, depth + 1);
            lua_pop(L, 1);
          }
          return;
        }
      }
      encode_table(L, x, idx, depth);
      return;
    }
    default:
      encode_error(L, lua_typename(L, lua_type(L, idx)));
  }
}

/* Encodes the value at idx with its version byte into x. */
void ldist_encode_term(lua_State *L, ei_x_buff *x, int idx) {
  idx = lua_absindex(L, idx);
  x->index = 0;
  ei_x_encode_version(x);
  ldist_encode_value(L, x, idx, 0);
}

/* }====================================================================== */

/* {======================================================================
** Terms to Lua values (term.c checks, this visitor builds)
** ======================================================================*/

typedef struct frame_s {
  int kind;
  int has_key;
  lua_Integer i;
} frame_t;

typedef struct dec_s {
  lua_State *L;
  int depth;
  frame_t fr[ARB_TERM_DEFAULT_DEPTH + 2];
  const char *err;
} dec_t;

/* The value on top goes into the open container (if any). */
static int place(dec_t *d) {
  lua_State *L = d->L;
  if (d->depth == 0) return 0;
  frame_t *f = &d->fr[d->depth - 1];
  if (f->kind != ARB_TERM_MAP) {
    lua_rawseti(L, -2, ++f->i);
    return 0;
  }
  if (!f->has_key) {
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1)) {
      d->err = "a map key that is NaN";
      return -1;
    }
    f->has_key = 1;
    return 0;
  }
  f->has_key = 0;
  lua_rawset(L, -3);
  return 0;
}

static int v_integer(void *ud, int64_t v) {
  dec_t *d = ud;
  lua_pushinteger(d->L, (lua_Integer)v);
  return place(d);
}

static int v_float(void *ud, double v) {
  dec_t *d = ud;
  lua_pushnumber(d->L, v);
  return place(d);
}

static int v_atom(void *ud, const char *name, size_t len) {
  dec_t *d = ud;
  if (len == 4 && memcmp(name, "true", 4) == 0)
    lua_pushboolean(d->L, 1);
  else if (len == 5 && memcmp(name, "false", 5) == 0)
    lua_pushboolean(d->L, 0);
  else
    ldist_push_atom(d->L, name, len);
  return place(d);
}

static int v_binary(void *ud, const char *data, size_t len) {
  dec_t *d = ud;
  lua_pushlstring(d->L, data, len);
  return place(d);
}

/* Our own pid: the subject it stands for, while there is one. */
static int v_pid(void *ud, const erlang_pid *p) {
  dec_t *d = ud;
  lua_State *L = d->L;
  erlang_pid me;
  if (ldist_our_pid(&me, 0) == 0 && strcmp(p->node, me.node) == 0 &&
      p->creation == me.creation && p->serial == 0) {
    ldist_state_field(L, "exported", "v");
    if (lua_rawgeti(L, -1, (lua_Integer)p->num) == LUA_TUSERDATA) {
      lua_remove(L, -2);
      return place(d);
    }
    lua_pop(L, 2);
  }
  push_beam_pid(L, p);
  return place(d);
}

static int v_ref(void *ud, const erlang_ref *r) {
  dec_t *d = ud;
  push_ref(d->L, r);
  return place(d);
}

static int v_begin(void *ud, int kind, uint32_t n) {
  dec_t *d = ud;
  lua_State *L = d->L;
  if (!lua_checkstack(L, 4)) {
    d->err = "term too deep for the Lua stack";
    return -1;
  }
  lua_createtable(L, kind == ARB_TERM_MAP ? 0 : (int)(n > 1024 ? 1024 : n),
                  kind == ARB_TERM_MAP ? (int)(n > 1024 ? 1024 : n) : 0);
  if (kind == ARB_TERM_TUPLE) luaL_setmetatable(L, LDIST_TUPLE);
  if (kind == ARB_TERM_MAP) luaL_setmetatable(L, LDIST_MAP);
  frame_t *f = &d->fr[d->depth++];
  f->kind = kind;
  f->has_key = 0;
  f->i = 0;
  return 0;
}

static int v_end(void *ud, int kind, uint32_t n, int has_tail) {
  dec_t *d = ud;
  lua_State *L = d->L;
  frame_t *f = &d->fr[--d->depth];
  (void)n;
  if (kind == ARB_TERM_TUPLE) {
    lua_pushinteger(L, f->i);
    lua_setfield(L, -2, "n");
  } else if (kind == ARB_TERM_LIST && has_tail) {
    lua_rawgeti(L, -1, f->i);
    lua_setfield(L, -2, "tail");
    lua_pushnil(L);
    lua_rawseti(L, -2, f->i);
    luaL_setmetatable(L, LDIST_IMPROPER);
  }
  return place(d);
}

static const arb_term_visitor_t visitor = {v_integer, v_float, v_atom,
                                           v_binary,  v_pid,   v_ref,
                                           v_begin,   v_end};

/* Decodes the term at buf[*idx] and pushes it; on failure pushes nothing
** and returns -1 with err. */
int ldist_decode_term(lua_State *L, const char *buf, size_t len,
                       size_t *idx, const arb_term_limits_t *lim, char *err,
                       size_t errlen) {
  dec_t d;
  d.L = L;
  d.depth = 0;
  d.err = NULL;
  int top = lua_gettop(L);
  arb_term_limits_t def;
  if (lim == NULL) {
    arb_term_default_limits(&def);
    lim = &def;
  }
  if (arb_term_decode(buf, len, idx, lim, &visitor, &d, err, errlen) != 0) {
    if (d.err) snprintf(err, errlen, "%s", d.err);
    lua_settop(L, top);
    return -1;
  }
  return 0;
}

/* dist.encode(value) -> binary (external term format, with version) */
int ldist_l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  static ei_x_buff buf; /* kept for the host's life */
  static int ready;
  if (!ready) ready = ei_x_new(&buf) == 0;
  if (!ready) return luaL_error(L, "out of memory");
  ldist_encode_term(L, &buf, 1);
  lua_pushlstring(L, buf.buff, (size_t)buf.index);
  return 1;
}

/* dist.decode(binary [, {max_depth =, max_elements =}]) -> value | nil, err */
int ldist_l_decode(lua_State *L) {
  size_t len, idx = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  arb_term_limits_t lim;
  arb_term_default_limits(&lim);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "max_depth");
    if (!lua_isnil(L, -1)) {
      lua_Integer v = luaL_checkinteger(L, -1);
      luaL_argcheck(L, v >= 0 && v <= ARB_TERM_DEFAULT_DEPTH, 2,
                    "max_depth must be from 0 to 100");
      lim.max_depth = (int)v;
    }
    lua_getfield(L, 2, "max_elements");
    if (!lua_isnil(L, -1)) {
      lua_Integer v = luaL_checkinteger(L, -1);
      luaL_argcheck(L, v > 0, 2, "max_elements must be positive");
      lim.max_elements = (size_t)v;
    }
    lua_pop(L, 2);
  }
  char err[256];
  if (arb_term_version(s, len, &idx, err, sizeof(err)) != 0 ||
      ldist_decode_term(L, s, len, &idx, &lim, err, sizeof(err)) != 0)
    return larb_push_error(L, "badarg", err);
  if (idx != len) {
    lua_pop(L, 1);
    snprintf(err, sizeof(err), "bad term: %zu bytes left after the term",
             len - idx);
    return larb_push_error(L, "badarg", err);
  }
  return 1;
}

/* }====================================================================== */

const void *ldist_pid_mt;

/* Makes the metatables of atoms, pids, refs, tuples, maps and improper
** lists. */
void ldist_open_types(lua_State *L) {
  if (luaL_newmetatable(L, LDIST_ATOM)) {
    lua_pushcfunction(L, atom_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  if (luaL_newmetatable(L, LDIST_PID)) {
    lua_pushcfunction(L, pid_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, pid_eq);
    lua_setfield(L, -2, "__eq");
  }
  if (luaL_newmetatable(L, LDIST_REF)) {
    lua_pushcfunction(L, ref_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, ref_eq);
    lua_setfield(L, -2, "__eq");
  }
  luaL_newmetatable(L, LDIST_TUPLE);
  luaL_newmetatable(L, LDIST_MAP);
  luaL_newmetatable(L, LDIST_IMPROPER);
  luaL_getmetatable(L, LDIST_PID);
  ldist_pid_mt = lua_topointer(L, -1);
  lua_pop(L, 7);
}

#endif /* ARBOR_HAVE_DIST */
