/*
** ldist.c: the C half of the `dist` module: arbor as a hidden node of an
** Erlang cluster (lua/dist.lua adds the pg scope and the proxies' code).
**
** What it owns: the one local node (host/rt/dist.c does its sockets),
** registered names, the handling of each control message, the monitors
** BEAM processes hold on arbor subjects, and the proxies that stand for
** BEAM pids.  Lua values and Erlang terms are ldist_term.c's.
**
** Addresses.  An arbor subject, when it travels in a term, is a pid of
** this node whose number is the subject's id; a message to that pid
** lands in the subject.  A BEAM pid is a Pid userdata.  A "proxy" is a
** small arbor process (lua/dist.lua) owning a subject that forwards
** whatever it receives to one BEAM pid; process.monitor on a BEAM pid
** monitors such a proxy, which the node ends with the DOWN's reason when
** the BEAM process ends or the connection drops.  The proxy's pid is
** interned as the BEAM pid, so a DOWN (and subject_owner of its subject)
** names the BEAM pid.
**
** Callbacks from the loop (frames, up, down) run Lua under protection on
** the main thread, never inside a process slice.  Exit hooks (a watched
** subject's owner ended) cannot run Lua, so they queue the DOWN and a
** zero-delay timer sends it.
**
** Depends on larb.h, ldist_int.h, host/rt/dist.h and host/dist/term.h.
*/
#include <stdlib.h>
#include <string.h>

#include "larb.h"
#include "ldist.h"

#ifndef ARBOR_HAVE_DIST

static int no_dist(lua_State *L) {
  return luaL_error(L, "dist: this arbor was built without Erlang "
                       "distribution (erl_interface from Debian's "
                       "erlang-dev was not found at build time; install "
                       "erlang-dev and build again)");
}

int larb_open_dist(lua_State *L) { return no_dist(L); }

arb_pid_t larb_dist_monitor_target(lua_State *L, int idx) {
  return larb_check_pid(L, idx);
}

void larb_dist_chip_registered(lua_State *L, int reg_idx, int group_idx,
                               int sub_idx) {
  (void)L, (void)reg_idx, (void)group_idx, (void)sub_idx;
}

#else

#include <errno.h>
#include <ei.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"
#include "ldist_int.h"


/* Control message operations (the distribution protocol). */
enum {
  OP_LINK = 1, OP_SEND = 2, OP_EXIT = 3, OP_REG_SEND = 6, OP_SEND_TT = 12,
  OP_REG_SEND_TT = 16, OP_MONITOR_P = 19, OP_DEMONITOR_P = 20,
  OP_MONITOR_P_EXIT = 21
};

/* A monitor a BEAM process holds on one of our subjects (or names). */
typedef struct rmon_s {
  struct rmon_s *next;
  arb_exit_hook_t hook;
  char node[ARB_DIST_NAME_MAX];
  erlang_pid from;
  erlang_ref ref;
  uint32_t target_id;   /* our pid number, or 0 for a name */
  char name[MAXATOMLEN_UTF8];
  arb_reason_t *reason; /* once fired */
} rmon_t;

typedef struct ldist_s {
  arb_dist_t *d;
  larb_ctx_t *ctx;
  arb_pid_t owner;
  arb_exit_hook_t owner_hook;
  int publish_state; /* 0 waiting, 1 done, -1 failed */
  char publish_err[256];
  rmon_t *rmons, *fired;
  arb_pid_t *proxies; /* every proxy made (some may have ended) */
  size_t nproxies, proxies_cap;
  arb_reason_t *noconnection;
} ldist_t;

/* Runs what exit hooks cannot (they may not run Lua) on the next loop
** turn; one timer for the host's life. */
static uv_timer_t later_;
static int later_ready;

static ldist_t *node_;            /* the running node, or NULL */
static int state_ref_ = LUA_NOREF; /* kept across nodes: atoms, pids */
static ei_x_buff xctrl_, xmsg_;
static int xready_;

static void xreset(ei_x_buff *x) {
  if (!xready_) {
    ei_x_new(&xctrl_);
    ei_x_new(&xmsg_);
    xready_ = 1;
  }
  x->index = 0;
}

/* {======================================================================
** State: one Lua table in the registry with named sub-tables
** ======================================================================*/

/* Pushes S[name], making it (with weak mode, if given) when absent. */
void ldist_state_field(lua_State *L, const char *name, const char *mode) {
  if (state_ref_ == LUA_NOREF) {
    lua_newtable(L);
    state_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, state_ref_);
  if (lua_getfield(L, -1, name) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    if (mode) {
      lua_createtable(L, 0, 1);
      lua_pushstring(L, mode);
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
  }
  lua_remove(L, -2);
}

static int64_t now_ms(lua_State *L) { return arb_rt_now(larb_ctx(L)->rt); }

static void wake_pid(larb_ctx_t *ctx, arb_pid_t pid) {
  arb_proc_t *p = arb_node_lookup(ctx->node, pid);
  if (p) arb_node_wake(ctx->node, p); /* only a waiting one wakes */
}

static void log_warning(const char *fmt, const char *a, const char *b) {
  char msg[600];
  int n = snprintf(msg, sizeof(msg), fmt, a, b);
  if (n < 0) return;
  larb_log_emit(LARB_LOG_WARNING, ARB_PID_NONE, msg,
                (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, NULL,
                0);
}

/* }====================================================================== */

/* Fills p with our pid number num (0: the node's own pid, the sender of
** what no subject sends).  -1 when no node runs. */
int ldist_our_pid(erlang_pid *p, uint32_t num) {
  if (node_ == NULL) return -1;
  memset(p, 0, sizeof(*p));
  snprintf(p->node, sizeof(p->node), "%s", arb_dist_name(node_->d));
  p->num = num;
  p->serial = 0;
  p->creation = arb_dist_creation(node_->d);
  return 0;
}

/* {======================================================================
** Sending
** ======================================================================*/

static int send_ctrl(arb_dconn_t *c, ei_x_buff *ctrl, ei_x_buff *msg) {
  return arb_dist_send(c, ctrl->buff, (size_t)ctrl->index,
                       msg ? msg->buff : NULL, msg ? (size_t)msg->index : 0);
}

/* Sends the message in xmsg_ to pid. */
static void send_to_pid(const erlang_pid *to) {
  arb_dconn_t *c = arb_dist_connect(node_->d, to->node);
  if (c == NULL) return;
  xreset(&xctrl_);
  ei_x_encode_version(&xctrl_);
  ei_x_encode_tuple_header(&xctrl_, 3);
  ei_x_encode_long(&xctrl_, OP_SEND);
  ei_x_encode_atom(&xctrl_, "");
  ei_x_encode_pid(&xctrl_, to);
  send_ctrl(c, &xctrl_, &xmsg_);
}

static void send_to_name(const char *node, const char *name, size_t nlen) {
  arb_dconn_t *c = arb_dist_connect(node_->d, node);
  if (c == NULL) return;
  erlang_pid from;
  ldist_our_pid(&from, 0);
  xreset(&xctrl_);
  ei_x_encode_version(&xctrl_);
  ei_x_encode_tuple_header(&xctrl_, 4);
  ei_x_encode_long(&xctrl_, OP_REG_SEND);
  ei_x_encode_pid(&xctrl_, &from);
  ei_x_encode_atom(&xctrl_, "");
  ei_x_encode_atom_len_as(&xctrl_, name, (int)nlen, ERLANG_UTF8, ERLANG_UTF8);
  send_ctrl(c, &xctrl_, &xmsg_);
}

static ldist_t *check_node(lua_State *L) {
  if (node_ == NULL)
    luaL_error(L, "dist: no node is running (call dist.start first)");
  return node_;
}

/* Reads a string or an atom at idx. */
static const char *name_at(lua_State *L, int idx, size_t *len) {
  latom_t *a = luaL_testudata(L, idx, LDIST_ATOM);
  if (a) {
    *len = a->len;
    return a->name;
  }
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tolstring(L, idx, len);
  return NULL;
}

/* dist.send(dest, msg) -> true: dest is a BEAM pid, a subject, or
** {name, node} (strings or atoms, a table or a tuple).  Never blocks;
** connects on first use; a message to a node that cannot be reached is
** dropped, as Erlang drops it. */
static int ldist_send(lua_State *L) {
  luaL_checkany(L, 2);
  if (lua_isnil(L, 2))
    return luaL_argerror(L, 2, "message must not be nil");
  larb_subject_t *s = larb_test_subject(L, 1);
  if (s) {
    larb_ctx_t *ctx = larb_ctx(L);
    arb_subject_send(ctx->node, &s->sub, larb_ref(L, 2));
    lua_pushboolean(L, 1);
    return 1;
  }
  check_node(L);
  erlang_pid *p = luaL_testudata(L, 1, LDIST_PID);
  if (p) {
    xreset(&xmsg_);
    ldist_encode_term(L, &xmsg_, 2);
    send_to_pid(p);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (lua_istable(L, 1)) {
    lua_rawgeti(L, 1, 1);
    lua_rawgeti(L, 1, 2);
    size_t nlen, hlen;
    const char *name = name_at(L, -2, &nlen);
    const char *host = name_at(L, -1, &hlen);
    if (name && host && nlen <= 1020 && hlen < ARB_DIST_NAME_MAX) {
      xreset(&xmsg_);
    ldist_encode_term(L, &xmsg_, 2);
      if (strcmp(host, arb_dist_name(node_->d)) == 0) {
        /* A name of our own node: straight to the subject. */
        ldist_state_field(L, "names", NULL);
        lua_pushlstring(L, name, nlen);
        if (lua_rawget(L, -2) == LUA_TUSERDATA) {
          larb_subject_t *to = larb_test_subject(L, -1);
          arb_subject_send(larb_ctx(L)->node, &to->sub, larb_ref(L, 2));
        }
      } else {
        send_to_name(host, name, nlen);
      }
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  return luaL_typeerror(L, 1, "BEAM pid, subject or {name, node}");
}

/* }====================================================================== */

/* {======================================================================
** Monitors BEAM processes hold on our subjects and names
** ======================================================================*/

static void rmon_free(rmon_t *r) {
  if (r->reason) arb_reason_release(node_->ctx->node, r->reason);
  free(r);
}

static void rmon_unlink(rmon_t **list, rmon_t *r) {
  for (rmon_t **p = list; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      return;
    }
}

/* Makes a reference of our node. */
static void make_ref(erlang_ref *r) {
  static uint32_t counter;
  counter++;
  memset(r, 0, sizeof(*r));
  snprintf(r->node, sizeof(r->node), "%s", arb_dist_name(node_->d));
  r->len = 3;
  r->n[0] = counter & 0x3ffff;
  r->n[1] = counter >> 18;
  r->n[2] = (uint32_t)uv_hrtime();
  r->creation = arb_dist_creation(node_->d);
}

/* Sends MONITOR_P_EXIT for r with the reason value on top of L; with
** plain_only, a reason that is not one of the named ones goes as the
** atom 'unknown' (encoding it raised). */
static void send_monitor_exit(lua_State *L, rmon_t *r, int plain_only) {
  arb_dconn_t *c = arb_dist_find(node_->d, r->node);
  if (c == NULL) return;
  int reason = lua_gettop(L);
  xreset(&xctrl_);
  ei_x_encode_version(&xctrl_);
  ei_x_encode_tuple_header(&xctrl_, 5);
  ei_x_encode_long(&xctrl_, OP_MONITOR_P_EXIT);
  if (r->target_id) {
    erlang_pid me;
    ldist_our_pid(&me, r->target_id);
    ei_x_encode_pid(&xctrl_, &me);
  } else {
    ei_x_encode_atom(&xctrl_, r->name);
  }
  ei_x_encode_pid(&xctrl_, &r->from);
  ei_x_encode_ref(&xctrl_, &r->ref);
  /* The reasons that name themselves go as atoms, others as terms. */
  static const char *const named[] = {"normal", "shutdown", "killed",
                                      "noproc", "noconnection", NULL};
  const char *plain = NULL;
  if (lua_type(L, reason) == LUA_TSTRING)
    for (int i = 0; named[i]; i++)
      if (strcmp(lua_tostring(L, reason), named[i]) == 0) plain = named[i];
  if (plain)
    ei_x_encode_atom(&xctrl_, plain);
  else if (plain_only)
    ei_x_encode_atom(&xctrl_, "unknown");
  else
    ldist_encode_value(L, &xctrl_, reason, 1);
  send_ctrl(c, &xctrl_, NULL);
}

static int send_fired_unprotected(lua_State *L) {
  rmon_t *r = lua_touserdata(L, 1);
  int plain_only = lua_toboolean(L, 2);
  larb_push_reason(L, r->reason);
  send_monitor_exit(L, r, plain_only);
  return 0;
}

static void later_cb(uv_timer_t *t) {
  ldist_t *ld = t->data;
  lua_State *L = ld->ctx->L;
  while (ld->fired) {
    rmon_t *r = ld->fired;
    ld->fired = r->next;
    for (int plain_only = 0; plain_only < 2; plain_only++) {
      int top = lua_gettop(L);
      lua_pushcfunction(L, send_fired_unprotected);
      lua_pushlightuserdata(L, r);
      lua_pushboolean(L, plain_only);
      int ok = lua_pcall(L, 2, 0, 0) == LUA_OK;
      lua_settop(L, top);
      if (ok) break;
    }
    rmon_free(r);
  }
}

static void rmon_fired(arb_node_t *node, arb_exit_hook_t *hook,
                       arb_proc_t *p) {
  (void)node;
  rmon_t *r = (rmon_t *)((char *)hook - offsetof(rmon_t, hook));
  ldist_t *ld = node_;
  if (ld == NULL) return;
  rmon_unlink(&ld->rmons, r);
  r->reason = arb_reason_retain(p->reason);
  r->next = ld->fired;
  ld->fired = r;
  uv_timer_start(&later_, later_cb, 0, 0);
}

/* The subject the target at idx stands for: our pid (decoded as the
** subject) or a registered name; pushes it (or nil). */
static larb_subject_t *push_target(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  larb_subject_t *s = larb_test_subject(L, idx);
  if (s) {
    lua_pushvalue(L, idx);
    return s;
  }
  latom_t *a = luaL_testudata(L, idx, LDIST_ATOM);
  if (a == NULL) {
    lua_pushnil(L);
    return NULL;
  }
  ldist_state_field(L, "names", NULL);
  lua_getfield(L, -1, a->name);
  lua_remove(L, -2);
  return larb_test_subject(L, -1);
}

/* MONITOR_P {19, From, To, Ref}: the control tuple at ctrl. */
static void on_monitor(lua_State *L, arb_dconn_t *c, int ctrl) {
  lua_rawgeti(L, ctrl, 2);
  lua_rawgeti(L, ctrl, 3);
  lua_rawgeti(L, ctrl, 4);
  erlang_pid *from = luaL_testudata(L, -3, LDIST_PID);
  erlang_ref *ref = luaL_testudata(L, -1, LDIST_REF);
  if (from == NULL || ref == NULL) return;
  rmon_t *r = calloc(1, sizeof(*r));
  if (r == NULL) return;
  snprintf(r->node, sizeof(r->node), "%s", c->node);
  r->from = *from;
  r->ref = *ref;
  larb_subject_t *s = larb_test_subject(L, -2);
  latom_t *a = luaL_testudata(L, -2, LDIST_ATOM);
  erlang_pid *dead = luaL_testudata(L, -2, LDIST_PID);
  if (s) r->target_id = arb_subject_id(&s->sub);
  else if (a) snprintf(r->name, sizeof(r->name), "%s", a->name);
  else if (dead) r->target_id = dead->num;
  larb_subject_t *t = push_target(L, -2);
  arb_proc_t *owner = NULL;
  if (t && arb_subject_owner_alive(&t->sub))
    owner = arb_node_lookup(larb_ctx(L)->node, arb_subject_owner(&t->sub));
  lua_pop(L, 1);
  if (owner == NULL) {
    lua_pushliteral(L, "noproc");
    send_monitor_exit(L, r, 1);
    lua_pop(L, 1);
    free(r);
    return;
  }
  r->hook.fn = rmon_fired;
  arb_node_hook_exit(owner, &r->hook);
  r->next = node_->rmons;
  node_->rmons = r;
}

static void on_demonitor(lua_State *L, arb_dconn_t *c, int ctrl) {
  lua_rawgeti(L, ctrl, 4);
  erlang_ref *ref = luaL_testudata(L, -1, LDIST_REF);
  if (ref == NULL) return;
  for (rmon_t *r = node_->rmons; r; r = r->next)
    if (ldist_ref_equal(&r->ref, ref) && strcmp(r->node, c->node) == 0) {
      rmon_unlink(&node_->rmons, r);
      arb_node_unhook_exit(&r->hook);
      rmon_free(r);
      return;
    }
}

/* Drops the monitors held from node (NULL: all). */
static void drop_rmons(const char *node) {
  rmon_t **p = &node_->rmons;
  while (*p) {
    rmon_t *r = *p;
    if (node == NULL || strcmp(r->node, node) == 0) {
      *p = r->next;
      arb_node_unhook_exit(&r->hook);
      rmon_free(r);
    } else {
      p = &r->next;
    }
  }
}

/* }====================================================================== */

/* {======================================================================
** Proxies: arbor processes standing for BEAM pids
** ======================================================================*/

/* Spawns fn(args..., subject) as a system process with a subject it
** owns; the function and nargs arguments are on top (popped).  Pushes
** the subject and returns the process. */
static arb_proc_t *spawn_with_subject(lua_State *L, int nargs) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = larb_spawn(L, nargs);
  p->user_kind = LARB_SYSTEM;
  larb_subject_t *s = lua_newuserdatauv(L, sizeof(*s), 0);
  s->finalized = 0;
  luaL_setmetatable(L, LARB_SUBJECT);
  arb_subject_init(ctx->node, &s->sub, p);
  lua_State *co = p->data;
  lua_pushvalue(L, -1);
  lua_xmove(L, co, 1);
  return p;
}

/* dist._spawn_with_subject(fn, ...) -> pid, subject */
static int ldist_spawn_with_subject(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  arb_proc_t *p = spawn_with_subject(L, lua_gettop(L) - 1);
  larb_push_pid(L, p->pid);
  lua_insert(L, -2);
  return 2;
}

static void note_proxy(ldist_t *ld, arb_pid_t pid);
static void end_proxy(lua_State *L, arb_pid_t pid, int ridx);
static arb_proc_t *new_proxy(lua_State *L, int idx);

/* Pushes the Lua half's function name. */
static void push_lua_fn(lua_State *L, const char *name) {
  ldist_state_field(L, "lua", NULL);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* The proxy for the BEAM pid at idx, made (and the BEAM process
** monitored) if there is none alive; pushes its subject, returns its
** pid. */
static arb_pid_t proxy_for(lua_State *L, int idx) {
  larb_ctx_t *ctx = larb_ctx(L);
  idx = lua_absindex(L, idx);
  erlang_pid *bp = luaL_checkudata(L, idx, LDIST_PID);
  check_node(L);
  ldist_state_field(L, "proxy_of", NULL);
  int tbl = lua_gettop(L);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, tbl) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    arb_pid_t pid = (arb_pid_t)lua_tointeger(L, -1);
    if (arb_node_lookup(ctx->node, pid)) {
      lua_rawgeti(L, -2, 2);
      lua_replace(L, tbl);
      lua_settop(L, tbl);
      return pid;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  arb_proc_t *p = new_proxy(L, idx);
  arb_pid_t pid = p->pid;
  int sub = lua_gettop(L);
  /* proxy_of[beam pid] = {proxy pid, subject} */
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, (lua_Integer)pid);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, sub);
  lua_rawseti(L, -2, 2);
  lua_pushvalue(L, idx);
  lua_insert(L, -2);
  lua_rawset(L, tbl);
  /* Watch the BEAM process: its DOWN ends the proxy. */
  erlang_ref ref;
  make_ref(&ref);
  ldist_state_field(L, "monrefs", NULL);
  ldist_ref_key(L, bp->node, &ref);
  lua_pushinteger(L, (lua_Integer)pid);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  arb_dconn_t *c = arb_dist_connect(node_->d, bp->node);
  if (c) {
    erlang_pid from;
    ldist_our_pid(&from, 0);
    xreset(&xctrl_);
    ei_x_encode_version(&xctrl_);
    ei_x_encode_tuple_header(&xctrl_, 4);
    ei_x_encode_long(&xctrl_, OP_MONITOR_P);
    ei_x_encode_pid(&xctrl_, &from);
    ei_x_encode_pid(&xctrl_, bp);
    ei_x_encode_ref(&xctrl_, &ref);
    send_ctrl(c, &xctrl_, NULL);
  }
  lua_replace(L, tbl);
  lua_settop(L, tbl);
  return pid;
}

/* Ends a proxy with the reason value at ridx. */
static void end_proxy(lua_State *L, arb_pid_t pid, int ridx) {
  larb_ctx_t *ctx = larb_ctx(L);
  ridx = lua_absindex(L, ridx);
  ldist_state_field(L, "proxy_nodes", NULL);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)pid);
  lua_pop(L, 1);
  arb_proc_t *p = arb_node_lookup(ctx->node, pid);
  if (p == NULL) return;
  arb_reason_t *r = larb_reason_from(L, ridx);
  arb_node_exit(ctx->node, p, r);
  arb_reason_release(ctx->node, r);
}

/* MONITOR_P_EXIT {21, FromProc, To, Ref, Reason}: a watched BEAM
** process ended. */
static void on_monitor_exit(lua_State *L, arb_dconn_t *c, int ctrl) {
  lua_rawgeti(L, ctrl, 4);
  erlang_ref *ref = luaL_testudata(L, -1, LDIST_REF);
  if (ref == NULL) return;
  ldist_state_field(L, "monrefs", NULL);
  ldist_ref_key(L, c->node, ref);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) != LUA_TNUMBER) return;
  arb_pid_t pid = (arb_pid_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_rawgeti(L, ctrl, 5);
  latom_t *a = luaL_testudata(L, -1, LDIST_ATOM);
  if (a) lua_pushlstring(L, a->name, a->len);
  end_proxy(L, pid, -1);
}

/* The node is gone (NULL: every node): its proxies end with
** "noconnection", at once, so monitors fire and chip delists them before
** anything else runs. */
static void end_proxies_of(lua_State *L, const char *node) {
  ldist_state_field(L, "proxy_nodes", NULL);
  int tbl = lua_gettop(L);
  lua_newtable(L);
  int doomed = tbl + 1, n = 0;
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    if (node == NULL || strcmp(lua_tostring(L, -1), node) == 0) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, doomed, ++n);
    }
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "noconnection");
  int reason = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, doomed, i);
    arb_pid_t pid = (arb_pid_t)lua_tointeger(L, -1);
    lua_pushnil(L);
    lua_rawset(L, tbl);
    end_proxy(L, pid, reason);
  }
  lua_settop(L, tbl - 1);
}

/* A new proxy process for the BEAM pid at idx: remembered under its
** node (so a lost connection ends it) and interned as that pid (so a
** DOWN and subject_owner name the BEAM pid).  Pushes its subject. */
static arb_proc_t *new_proxy(lua_State *L, int idx) {
  larb_ctx_t *ctx = larb_ctx(L);
  idx = lua_absindex(L, idx);
  erlang_pid *bp = luaL_checkudata(L, idx, LDIST_PID);
  push_lua_fn(L, "_proxy_loop");
  lua_pushvalue(L, idx);
  arb_proc_t *p = spawn_with_subject(L, 1);
  note_proxy(node_, p->pid);
  ldist_state_field(L, "proxy_nodes", NULL);
  lua_pushstring(L, bp->node);
  lua_rawseti(L, -2, (lua_Integer)p->pid);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->pids_ref); /* larb_push_pid's key */
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, (lua_Integer)arb_pid_mix(p->pid));
  lua_pop(L, 1);
  arb_dist_connect(node_->d, bp->node);
  return p;
}

/* dist._new_proxy(beam_pid) -> subject of a new proxy (a pg member's;
** its pid reads as the BEAM pid, so it is ended through the subject) */
static int ldist_new_proxy(lua_State *L) {
  check_node(L);
  new_proxy(L, 1);
  return 1;
}

/* dist._end_proxy(subject): the proxy owning it ends ("normal"). */
static int ldist_end_proxy(lua_State *L) {
  larb_subject_t *s = larb_check_subject(L, 1);
  lua_pushliteral(L, "normal");
  end_proxy(L, arb_subject_owner(&s->sub), lua_gettop(L));
  return larb_finish(L, 0);
}

/* process.monitor's hook. */
arb_pid_t larb_dist_monitor_target(lua_State *L, int idx) {
  /* By the metatable's address: looking it up by name would intern a
  ** string on every monitor of an arbor pid. */
  const void *mt = NULL;
  if (ldist_pid_mt && lua_getmetatable(L, idx)) {
    mt = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  if (mt == NULL || mt != ldist_pid_mt) return larb_check_pid(L, idx);
  arb_pid_t pid = proxy_for(L, idx);
  lua_pop(L, 1);
  return pid;
}

/* dist.subject(beam_pid) -> subject: messages to it go to the pid. */
static int ldist_subject(lua_State *L) {
  luaL_checkudata(L, 1, LDIST_PID);
  proxy_for(L, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Incoming frames, connections up and down
** ======================================================================*/

/* Delivers the message at msg to the subject at sub.  A gen_server call
** {'$gen_call', {Pid, Tag}, Request} arrives as {call = Request, reply =
** subject, from = Pid}: what is sent to reply goes back as {Tag, Reply}. */
static void deliver(lua_State *L, int sub, int msg) {
  larb_ctx_t *ctx = larb_ctx(L);
  larb_subject_t *s = larb_test_subject(L, sub);
  if (s == NULL || !arb_subject_owner_alive(&s->sub)) return;
  if (lua_istable(L, msg) && lua_getmetatable(L, msg)) {
    int is_tuple;
    luaL_getmetatable(L, LDIST_TUPLE);
    is_tuple = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (is_tuple && lua_rawlen(L, msg) == 3) {
      lua_rawgeti(L, msg, 1);
      latom_t *a = luaL_testudata(L, -1, LDIST_ATOM);
      lua_rawgeti(L, msg, 2);
      int from = lua_gettop(L);
      if (a && strcmp(a->name, "$gen_call") == 0 && lua_istable(L, from) &&
          lua_rawlen(L, from) == 2) {
        lua_rawgeti(L, from, 1);
        if (luaL_testudata(L, -1, LDIST_PID)) {
          push_lua_fn(L, "_reply_forwarder");
          lua_pushvalue(L, -2);          /* pid */
          lua_rawgeti(L, from, 2);       /* tag */
          larb_push_pid(L, arb_subject_owner(&s->sub)); /* the callee */
          spawn_with_subject(L, 3);
          int reply = lua_gettop(L);
          lua_createtable(L, 0, 3);
          lua_rawgeti(L, msg, 3);
          lua_setfield(L, -2, "call");
          lua_pushvalue(L, reply);
          lua_setfield(L, -2, "reply");
          lua_pushvalue(L, reply - 1);
          lua_setfield(L, -2, "from");
          lua_replace(L, msg);
        }
      }
    }
  }
  arb_subject_send(ctx->node, &s->sub, larb_ref_fresh(L, msg));
}

static int frame_unprotected(lua_State *L) {
  arb_dconn_t *c = lua_touserdata(L, 1);
  const char *buf = lua_touserdata(L, 2);
  size_t len = (size_t)lua_tointeger(L, 3);
  size_t idx = 0;
  char err[256];
  arb_term_limits_t lim;
  arb_term_default_limits(&lim);
  if (arb_term_version(buf, len, &idx, err, sizeof(err)) != 0 ||
      ldist_decode_term(L, buf, len, &idx, &lim, err, sizeof(err)) != 0) {
    log_warning("dist: dropped a frame from %s: control: %s", c->node, err);
    return 0;
  }
  int ctrl = lua_gettop(L);
  if (!lua_istable(L, ctrl)) return 0;
  lua_rawgeti(L, ctrl, 1);
  lua_Integer op = lua_tointeger(L, -1);
  lua_pop(L, 1);
  int has_msg = op == OP_SEND || op == OP_SEND_TT || op == OP_REG_SEND ||
                op == OP_REG_SEND_TT;
  if (has_msg) {
    if (arb_term_version(buf, len, &idx, err, sizeof(err)) != 0 ||
        ldist_decode_term(L, buf, len, &idx, &lim, err, sizeof(err)) != 0) {
      log_warning("dist: dropped a message from %s: %s", c->node, err);
      return 0;
    }
    int msg = lua_gettop(L);
    if (op == OP_SEND || op == OP_SEND_TT) {
      lua_rawgeti(L, ctrl, 3);
    } else {
      lua_rawgeti(L, ctrl, 4);
      push_target(L, -1);
    }
    deliver(L, lua_gettop(L), msg);
    return 0;
  }
  switch (op) {
    case OP_MONITOR_P:
      on_monitor(L, c, ctrl);
      break;
    case OP_DEMONITOR_P:
      on_demonitor(L, c, ctrl);
      break;
    case OP_MONITOR_P_EXIT:
      on_monitor_exit(L, c, ctrl);
      break;
    default:
      /* Links, exit signals and the rest: not supported (docs/dist.md). */
      break;
  }
  return 0;
}

static void on_frame(void *ud, arb_dconn_t *c, const char *data,
                     size_t len) {
  ldist_t *ld = ud;
  lua_State *L = ld->ctx->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, frame_unprotected);
  lua_pushlightuserdata(L, c);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)len);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK)
    log_warning("dist: dropped a frame from %s: %s", c->node,
                lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
  lua_settop(L, top);
}

/* Wakes the processes waiting for node's connection. */
static void wake_waiters(lua_State *L, const char *node) {
  ldist_state_field(L, "waiters", NULL);
  if (lua_getfield(L, -1, node) == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      wake_pid(larb_ctx(L), (arb_pid_t)lua_tointeger(L, -1));
      lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setfield(L, -3, node);
  }
  lua_pop(L, 2);
}

/* Tells the node watchers: {node = name, event = "up" | "down"
** [, reason = text]}. */
static void notify_watchers(lua_State *L, const char *node, const char *ev,
                            const char *reason) {
  ldist_state_field(L, "watchers", NULL);
  int w = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, w)) {
    lua_pop(L, 1);
    larb_subject_t *s = larb_test_subject(L, -1);
    if (s == NULL || !arb_subject_owner_alive(&s->sub)) {
      /* Its owner has ended: forget it (safe: assigning nil to an
      ** existing field during traversal). */
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, w);
      continue;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, node);
    lua_setfield(L, -2, "node");
    lua_pushstring(L, ev);
    lua_setfield(L, -2, "event");
    if (reason) {
      lua_pushstring(L, reason);
      lua_setfield(L, -2, "reason");
    }
    arb_subject_send(larb_ctx(L)->node, &s->sub, larb_ref_fresh(L, -1));
    lua_pop(L, 1);
  }
  lua_settop(L, w - 1);
}

static int up_unprotected(lua_State *L) {
  arb_dconn_t *c = lua_touserdata(L, 1);
  wake_waiters(L, c->node);
  notify_watchers(L, c->node, "up", NULL);
  return 0;
}

static int down_unprotected(lua_State *L) {
  arb_dconn_t *c = lua_touserdata(L, 1);
  const char *reason = lua_tostring(L, 2);
  ldist_state_field(L, "results", NULL);
  lua_pushstring(L, reason);
  lua_setfield(L, -2, c->node);
  lua_pop(L, 1);
  wake_waiters(L, c->node);
  drop_rmons(c->node);
  end_proxies_of(L, c->node);
  if (c->handle_open) notify_watchers(L, c->node, "down", reason);
  return 0;
}

static void run_protected(ldist_t *ld, lua_CFunction fn, arb_dconn_t *c,
                          const char *reason) {
  lua_State *L = ld->ctx->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, c);
  lua_pushstring(L, reason ? reason : "");
  if (lua_pcall(L, 2, 0, 0) != LUA_OK)
    log_warning("dist: %s: %s", c->node,
                lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
  lua_settop(L, top);
}

static void on_up(void *ud, arb_dconn_t *c) {
  run_protected(ud, up_unprotected, c, NULL);
}

static void on_down(void *ud, arb_dconn_t *c, const char *reason) {
  run_protected(ud, down_unprotected, c, reason);
}

static void on_published(void *ud, int ok, const char *reason) {
  ldist_t *ld = ud;
  ld->publish_state = ok ? 1 : -1;
  if (!ok) snprintf(ld->publish_err, sizeof(ld->publish_err), "%s", reason);
  wake_pid(ld->ctx, ld->owner);
}

/* }====================================================================== */

/* {======================================================================
** Starting and stopping the node
** ======================================================================*/

static ldist_t node_storage;

/* Stops the node.  C only, so that the owner's exit hook can run it:
** sockets close, the monitors BEAM processes hold on us are dropped,
** and every proxy ends with "noconnection" (so monitors on BEAM pids
** fire, as they do on a BEAM node when distribution stops). */
static void stop_node(void) {
  ldist_t *ld = node_;
  if (ld == NULL) return;
  arb_node_unhook_exit(&ld->owner_hook);
  arb_dist_stop(ld->d);
  drop_rmons(NULL);
  while (ld->fired) {
    rmon_t *r = ld->fired;
    ld->fired = r->next;
    rmon_free(r);
  }
  arb_node_t *node = ld->ctx->node;
  node_ = NULL;
  for (size_t i = 0; i < ld->nproxies; i++) {
    arb_proc_t *p = arb_node_lookup(node, ld->proxies[i]);
    if (p) arb_node_exit(node, p, ld->noconnection);
  }
  free(ld->proxies);
  ld->proxies = NULL;
  ld->nproxies = ld->proxies_cap = 0;
  arb_reason_release(node, ld->noconnection);
  ld->noconnection = NULL;
  uv_timer_stop(&later_);
  uv_close((uv_handle_t *)&later_, NULL);
  later_ready = 0;
}

/* Remembers a proxy for stop_node (dropping ended ones when full). */
static void note_proxy(ldist_t *ld, arb_pid_t pid) {
  if (ld->nproxies == ld->proxies_cap) {
    size_t live = 0;
    for (size_t i = 0; i < ld->nproxies; i++)
      if (arb_node_lookup(ld->ctx->node, ld->proxies[i]))
        ld->proxies[live++] = ld->proxies[i];
    ld->nproxies = live;
  }
  if (ld->nproxies == ld->proxies_cap) {
    size_t cap = ld->proxies_cap ? 2 * ld->proxies_cap : 64;
    arb_pid_t *np = realloc(ld->proxies, cap * sizeof(*np));
    if (np == NULL) return; /* it still ends on its node's noconnection */
    ld->proxies = np;
    ld->proxies_cap = cap;
  }
  ld->proxies[ld->nproxies++] = pid;
}

static void owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                        arb_proc_t *p) {
  (void)node, (void)hook, (void)p;
  stop_node();
}

/* Reads ~/.erlang.cookie as erl does: the first line, owner-only file;
** made with 20 random capitals when missing, as erl makes it. */
static int home_cookie(lua_State *L, char *out, size_t outlen) {
  const char *home = getenv("HOME");
  if (home == NULL || *home == '\0') {
    lua_pushliteral(L, "no cookie: pass cookie=, set ARBOR_COOKIE, or set "
                       "HOME so ~/.erlang.cookie can be read");
    return -1;
  }
  char path[1024];
  snprintf(path, sizeof(path), "%s/.erlang.cookie", home);
  FILE *f = fopen(path, "r");
  if (f == NULL && errno == ENOENT) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0400);
    if (fd >= 0) {
      char cookie[21];
      uint64_t seed = uv_hrtime() ^ (uint64_t)getpid() << 32;
      for (int i = 0; i < 20; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        cookie[i] = (char)('A' + (seed >> 33) % 26);
      }
      cookie[20] = '\0';
      ssize_t w = write(fd, cookie, 20);
      close(fd);
      if (w == 20) f = fopen(path, "r");
    }
  }
  if (f == NULL) {
    lua_pushfstring(L, "cannot read the cookie file %s: %s", path,
                    strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
    fclose(f);
    lua_pushfstring(L, "cookie file %s must be accessible by owner only",
                    path);
    return -1;
  }
  if (fgets(out, (int)outlen, f) == NULL) out[0] = '\0';
  fclose(f);
  size_t n = strlen(out);
  while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' ||
               out[n - 1] == ' ' || out[n - 1] == '\t'))
    out[--n] = '\0';
  if (n == 0) {
    lua_pushfstring(L, "cookie file %s is empty", path);
    return -1;
  }
  return 0;
}

static int start_k(lua_State *L, int status, lua_KContext kctx);

static int start_step(lua_State *L) {
  ldist_t *ld = &node_storage;
  if (node_ != ld) return larb_push_error(L, "stopped", "dist.start: the "
                                          "node stopped while starting");
  if (ld->publish_state == 1) {
    lua_pushstring(L, arb_dist_name(ld->d));
    return 1;
  }
  if (ld->publish_state < 0) {
    char msg[600];
    snprintf(msg, sizeof(msg), "dist.start %s: %s", arb_dist_name(ld->d),
             ld->publish_err);
    stop_node();
    return larb_push_error(L, strstr(msg, "not running") ? "econnrefused"
                                                         : "name_taken",
                           msg);
  }
  larb_ctx_t *ctx = larb_ctx(L);
  if (arb_node_wait(ctx->node, larb_self(L), now_ms(L), -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, 0, start_k);
}

static int start_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status, (void)kctx;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return start_step(L);
}

/* dist.start{name = "arbor" | "arbor@host" [, cookie =]
** [, handshake_timeout = ms]} -> node name | nil, err */
static int ldist_start(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  arb_proc_t *self = larb_self(L);
  larb_ctx_t *ctx = larb_ctx(L);
  lua_getfield(L, 1, "name");
  const char *name = luaL_optstring(L, -1, "arbor");
  lua_getfield(L, 1, "cookie");
  const char *cookie = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_getfield(L, 1, "handshake_timeout");
  lua_Integer hs = luaL_optinteger(L, -1, 5000);
  luaL_argcheck(L, hs > 0 && hs < 3600000, 1,
                "handshake_timeout must be a positive number of ms");
  if (node_)
    return larb_push_error(L, "already_started",
                           "dist.start: a node is already running");
  char alive[ARB_DIST_NAME_MAX], host[ARB_DIST_NAME_MAX];
  const char *at = strchr(name, '@');
  if (at) {
    snprintf(alive, sizeof(alive), "%.*s", (int)(at - name), name);
    snprintf(host, sizeof(host), "%s", at + 1);
  } else {
    snprintf(alive, sizeof(alive), "%s", name);
    if (gethostname(host, sizeof(host)) != 0) strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    char *dot = strchr(host, '.');
    if (dot) *dot = '\0';
  }
  if (alive[0] == '\0' || host[0] == '\0' || strlen(alive) > 200 ||
      strlen(host) > 200 || strpbrk(alive, " @") || strpbrk(host, " @"))
    return luaL_argerror(L, 1, "name must be \"alive\" or \"alive@host\"");
  char cookie_buf[EI_MAX_COOKIE_SIZE + 1];
  if (cookie == NULL) cookie = getenv("ARBOR_COOKIE");
  if (cookie == NULL || *cookie == '\0') {
    if (home_cookie(L, cookie_buf, sizeof(cookie_buf)) != 0)
      return larb_push_error(L, "nocookie", lua_tostring(L, -1));
    cookie = cookie_buf;
  }
  if (strlen(cookie) > EI_MAX_COOKIE_SIZE)
    return luaL_argerror(L, 1, "cookie over 512 bytes");
  static const arb_dist_ops_t ops = {on_frame, on_up, on_down, on_published};
  ldist_t *ld = &node_storage;
  memset(ld, 0, sizeof(*ld));
  ld->ctx = ctx;
  ld->owner = self->pid;
  char err[300];
  ld->d = arb_dist_start(&ctx->rt->loop, alive, host, cookie, (unsigned)hs,
                         &ops, ld, err, sizeof(err));
  if (ld->d == NULL) return larb_push_error(L, "einval", err);
  uv_timer_init(&ctx->rt->loop, &later_);
  later_ready = 1;
  later_.data = ld;
  lua_pushliteral(L, "noconnection");
  ld->noconnection = larb_reason_from(L, -1);
  /* A new node: names, proxies and monitor references start afresh. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, state_ref_);
  lua_pushnil(L);
  lua_setfield(L, -2, "names");
  lua_pushnil(L);
  lua_setfield(L, -2, "proxy_of");
  lua_pushnil(L);
  lua_setfield(L, -2, "proxy_nodes");
  lua_pushnil(L);
  lua_setfield(L, -2, "monrefs");
  ld->owner_hook.fn = owner_ended;
  arb_node_hook_exit(self, &ld->owner_hook);
  node_ = ld;
  lua_settop(L, 0);
  return start_step(L);
}

/* dist.stop(): the owner stops the node. */
static int ldist_stop(lua_State *L) {
  if (node_ == NULL) return 0;
  if (node_->owner != larb_self(L)->pid)
    return luaL_error(L, "dist.stop: the node belongs to another process");
  stop_node();
  return larb_finish(L, 0);
}

/* }====================================================================== */

/* {======================================================================
** Connections, names, node events
** ======================================================================*/

static int connect_k(lua_State *L, int status, lua_KContext kctx);
static int connect_retry_k(lua_State *L, int status, lua_KContext kctx);
#define CONNECT_RETRY_MS 100
#define CONNECT_DEFAULT_MS 5000

/* Stack: 1 node name. */
static int connect_step(lua_State *L, int64_t deadline) {
  const char *node = lua_tostring(L, 1);
  if (node_ == NULL)
    return larb_push_error(L, "stopped", "dist.connect: the node stopped");
  arb_dconn_t *c = arb_dist_find(node_->d, node);
  if (c && c->state == ARB_DCONN_UP) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (c == NULL && deadline >= 0 && now_ms(L) + CONNECT_RETRY_MS < deadline) {
    /* Failed, with time left: try again shortly (the node may still be
    ** coming up, or still closing our previous connection). */
    larb_ctx_t *ctx = larb_ctx(L);
    if (arb_node_wait(ctx->node, larb_self(L), now_ms(L), CONNECT_RETRY_MS))
      return luaL_error(L, "out of memory");
    return larb_yield(L, (lua_KContext)deadline, connect_retry_k);
  }
  if (c == NULL) {
    ldist_state_field(L, "results", NULL);
    lua_getfield(L, -1, node);
    const char *why = lua_tostring(L, -1);
    lua_pushfstring(L, "%s", why ? why : "connection failed");
    return larb_push_error(L, "noconnection", lua_tostring(L, -1));
  }
  if (deadline >= 0 && now_ms(L) >= deadline) {
    /* Out of time while retrying: the last failure says more than
    ** "timed out". */
    ldist_state_field(L, "results", NULL);
    lua_getfield(L, -1, node);
    if (lua_isstring(L, -1))
      return larb_push_error(L, "noconnection", lua_tostring(L, -1));
    lua_pushfstring(L, "dist.connect %s: timed out", node);
    return larb_push_error(L, "timeout", lua_tostring(L, -1));
  }
  ldist_state_field(L, "waiters", NULL);
  if (lua_getfield(L, -1, node) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, node);
  }
  lua_pushinteger(L, (lua_Integer)larb_self(L)->pid);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_settop(L, 1);
  larb_ctx_t *ctx = larb_ctx(L);
  int64_t t = now_ms(L);
  if (arb_node_wait(ctx->node, larb_self(L), t,
                    deadline >= 0 ? deadline - t : -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, (lua_KContext)deadline, connect_k);
}

static int connect_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return connect_step(L, (int64_t)kctx);
}

static int connect_retry_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  if (node_ && arb_dist_connect(node_->d, lua_tostring(L, 1)) == NULL)
    return luaL_error(L, "out of memory");
  return connect_step(L, (int64_t)kctx);
}

/* dist.connect(node [, timeout_ms]) -> true | nil, err: retries a
** failed attempt every 100 ms until the timeout (default 5000). */
static int ldist_connect(lua_State *L) {
  size_t len;
  const char *node = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, strchr(node, '@') && len < ARB_DIST_NAME_MAX, 1,
                "node name \"alive@host\" expected");
  lua_Integer ms = luaL_optinteger(L, 2, CONNECT_DEFAULT_MS);
  luaL_argcheck(L, ms >= 0, 2, "timeout must not be negative");
  int64_t deadline = now_ms(L) + ms;
  larb_self(L);
  check_node(L);
  lua_settop(L, 1);
  ldist_state_field(L, "results", NULL);
  lua_pushnil(L);
  lua_setfield(L, -2, node);
  lua_pop(L, 1);
  if (arb_dist_connect(node_->d, node) == NULL)
    return luaL_error(L, "out of memory");
  return connect_step(L, deadline);
}

/* dist.disconnect(node) -> true | false */
static int ldist_disconnect(lua_State *L) {
  const char *node = luaL_checkstring(L, 1);
  check_node(L);
  arb_dconn_t *c = arb_dist_find(node_->d, node);
  if (c) arb_dist_close(c, "disconnected");
  lua_pushboolean(L, c != NULL);
  return 1;
}

/* dist.nodes() -> { "name@host", ... } (connected) */
static int ldist_nodes(lua_State *L) {
  lua_newtable(L);
  if (node_ == NULL) return 1;
  int n = 0;
  for (arb_dconn_t *c = arb_dist_first(node_->d); c; c = c->next)
    if (c->state == ARB_DCONN_UP) {
      lua_pushstring(L, c->node);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

/* dist.node() -> our name | nil */
static int ldist_node(lua_State *L) {
  if (node_ == NULL) return 0;
  lua_pushstring(L, arb_dist_name(node_->d));
  return 1;
}

/* dist.register(name, subject) -> true | nil, err */
static int ldist_register(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  larb_subject_t *s = larb_check_subject(L, 2);
  luaL_argcheck(L, len > 0 && len <= 255 && strlen(name) == len, 1,
                "name must be 1 to 255 bytes");
  check_node(L);
  (void)s;
  ldist_state_field(L, "names", NULL);
  lua_getfield(L, -1, name);
  larb_subject_t *held = larb_test_subject(L, -1);
  if (held && held != s && arb_subject_owner_alive(&held->sub)) {
    lua_pushfstring(L, "dist.register: the name %s is taken", name);
    return larb_push_error(L, "name_taken", lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, name);
  lua_pushboolean(L, 1);
  return 1;
}

/* dist.unregister(name) */
static int ldist_unregister(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  ldist_state_field(L, "names", NULL);
  lua_pushnil(L);
  lua_setfield(L, -2, name);
  return 0;
}

/* dist.whereis(name) -> subject | nil */
static int ldist_whereis(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  ldist_state_field(L, "names", NULL);
  lua_getfield(L, -1, name);
  larb_subject_t *s = larb_test_subject(L, -1);
  if (s == NULL || !arb_subject_owner_alive(&s->sub)) return 0;
  return 1;
}

/* dist.monitor_nodes(subject [, false]) */
static int ldist_monitor_nodes(lua_State *L) {
  larb_check_subject(L, 1);
  int on = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  ldist_state_field(L, "watchers", NULL);
  lua_pushvalue(L, 1);
  if (on)
    lua_pushboolean(L, 1);
  else
    lua_pushnil(L);
  lua_rawset(L, -3);
  return 0;
}

/* dist.node_of(pid) -> "name@host" (a BEAM pid, or a subject: ours) */
static int ldist_node_of(lua_State *L) {
  erlang_pid *p = luaL_testudata(L, 1, LDIST_PID);
  if (p) {
    lua_pushstring(L, p->node);
    return 1;
  }
  larb_check_subject(L, 1);
  return ldist_node(L);
}

/* dist.is_pid(v), dist.is_ref(v), dist.is_atom(v), dist.is_tuple(v) */
static int is_type(lua_State *L, const char *mt) {
  lua_pushboolean(L, luaL_testudata(L, 1, mt) != NULL);
  return 1;
}
int ldist_l_is_pid(lua_State *L) { return is_type(L, LDIST_PID); }
int ldist_l_is_ref(lua_State *L) { return is_type(L, LDIST_REF); }
int ldist_l_is_atom(lua_State *L) { return is_type(L, LDIST_ATOM); }
int ldist_l_is_tuple(lua_State *L) {
  int yes = 0;
  if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, LDIST_TUPLE);
    yes = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

/* dist._mirror(registry, scope_subject | nil): chip.register on the
** registry tells the scope. */
static int ldist_mirror(lua_State *L) {
  larb_check_subject(L, 1);
  ldist_state_field(L, "mirrors", "k");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  return 0;
}

void larb_dist_chip_registered(lua_State *L, int reg_idx, int group_idx,
                               int sub_idx) {
  if (state_ref_ == LUA_NOREF) return;
  reg_idx = lua_absindex(L, reg_idx);
  group_idx = lua_absindex(L, group_idx);
  sub_idx = lua_absindex(L, sub_idx);
  ldist_state_field(L, "mirrors", "k");
  lua_pushvalue(L, reg_idx);
  lua_rawget(L, -2);
  larb_subject_t *scope = larb_test_subject(L, -1);
  if (scope && arb_subject_owner_alive(&scope->sub)) {
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, group_idx);
    lua_setfield(L, -2, "join");
    lua_pushvalue(L, sub_idx);
    lua_setfield(L, -2, "subject");
    arb_subject_send(larb_ctx(L)->node, &scope->sub, larb_ref_fresh(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* }====================================================================== */

static const luaL_Reg dist_funcs[] = {
    {"start", ldist_start},
    {"stop", ldist_stop},
    {"node", ldist_node},
    {"nodes", ldist_nodes},
    {"connect", ldist_connect},
    {"disconnect", ldist_disconnect},
    {"register", ldist_register},
    {"unregister", ldist_unregister},
    {"whereis", ldist_whereis},
    {"send", ldist_send},
    {"subject", ldist_subject},
    {"monitor_nodes", ldist_monitor_nodes},
    {"node_of", ldist_node_of},
    {"atom", ldist_l_atom},
    {"tuple", ldist_l_tuple},
    {"encode", ldist_l_encode},
    {"decode", ldist_l_decode},
    {"is_pid", ldist_l_is_pid},
    {"is_ref", ldist_l_is_ref},
    {"is_atom", ldist_l_is_atom},
    {"is_tuple", ldist_l_is_tuple},
    {"_spawn_with_subject", ldist_spawn_with_subject},
    {"_mirror", ldist_mirror},
    {"_new_proxy", ldist_new_proxy},
    {"_end_proxy", ldist_end_proxy},
    {NULL, NULL}};

int larb_open_dist(lua_State *L) {
  ldist_open_types(L);
  luaL_newlib(L, dist_funcs);
  luaL_getmetatable(L, LDIST_TUPLE);
  lua_setfield(L, -2, "Tuple");
  luaL_getmetatable(L, LDIST_MAP);
  lua_setfield(L, -2, "Map");
  luaL_getmetatable(L, LDIST_IMPROPER);
  lua_setfield(L, -2, "ImproperList");
  /* The Lua half's functions are found here by the C half. */
  ldist_state_field(L, "lua", NULL);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, state_ref_);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "lua");
  lua_pop(L, 1);
  return 1;
}

#endif /* ARBOR_HAVE_DIST */
