/*
** ldist_int.h: what the two halves of the dist binding share: ldist.c
** (the node, control messages, proxies) and ldist_term.c (Lua values
** and Erlang terms).  Built only with erl_interface (ARBOR_HAVE_DIST).
*/
#ifndef ARB_BIND_LDIST_INT_H
#define ARB_BIND_LDIST_INT_H

#include <ei.h>
#include <stdint.h>

#include "larb.h"
#include "term.h"

#define LDIST_ATOM "dist.Atom"
#define LDIST_PID "dist.Pid"
#define LDIST_REF "dist.Ref"
#define LDIST_TUPLE "dist.Tuple"
#define LDIST_MAP "dist.Map"
#define LDIST_IMPROPER "dist.ImproperList"
#define ENCODE_DEPTH 100

/* An atom: interned, so == and table keys work. */
typedef struct latom_s {
  size_t len;
  char name[];
} latom_t;

/* ldist.c: the module's state, a Lua table in the registry with named
** sub-tables; pushes S[name] (made with the weak mode, if any). */
void ldist_state_field(lua_State *L, const char *name, const char *mode);
/* Fills p with our pid number num; -1 when no node runs. */
int ldist_our_pid(erlang_pid *p, uint32_t num);

/* ldist_term.c */
void ldist_open_types(lua_State *L);
/* The Pid metatable's address once the types exist, else NULL. */
extern const void *ldist_pid_mt;
void ldist_push_atom(lua_State *L, const char *name, size_t len);
int ldist_ref_equal(const erlang_ref *a, const erlang_ref *b);
/* Pushes a string key for the reference r seen on node's connection. */
void ldist_ref_key(lua_State *L, const char *node, const erlang_ref *r);
/* Writes the value at idx (raises on a value with no term). */
void ldist_encode_value(lua_State *L, ei_x_buff *x, int idx, int depth);
/* Resets x (made with ei_x_new) to the value at idx with its version. */
void ldist_encode_term(lua_State *L, ei_x_buff *x, int idx);
/* Decodes the term at buf[*idx] and pushes it; -1 with err (nothing
** pushed) when it is refused. */
int ldist_decode_term(lua_State *L, const char *buf, size_t len, size_t *idx,
                      const arb_term_limits_t *lim, char *err, size_t errlen);
/* The Lua functions dist.atom, tuple, encode, decode, is_*. */
int ldist_l_atom(lua_State *L);
int ldist_l_tuple(lua_State *L);
int ldist_l_encode(lua_State *L);
int ldist_l_decode(lua_State *L);
int ldist_l_is_pid(lua_State *L);
int ldist_l_is_ref(lua_State *L);
int ldist_l_is_atom(lua_State *L);
int ldist_l_is_tuple(lua_State *L);

#endif
