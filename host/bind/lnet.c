/*
** lnet.c: the `net` module: TCP and Unix-domain stream sockets, passive
** and active-once mode (host/rt/net.c does the libuv side and the
** framing), and UDP sockets (host/rt/udp.c).
**
** Waiting works as in process.receive: the caller registers as the
** socket's waiter (or as a sender waiting for the queue to drain), waits
** with arb_node_wait (with the deadline of its timeout, if any) and
** yields; the continuation re-checks the socket.  Stack slot 1 holds the
** socket (or listener) while waiting, so it cannot be collected; the
** deadline travels in the continuation context.
**
** A listener or socket belongs to the process that made it (listen,
** connect, accept) until it gives it away (give_to): only the owner may
** accept, receive, shut down, close or give it; others raise.  Any process may send.  When the owner ends the socket
** is closed (net.c's exit hook) and the peer sees end of stream.
**
** Every expected failure is larb_fail's `nil, err` (the one arbor.Error):
** err.kind is the POSIX name in lower case ("econnrefused"), or
** "nxdomain", "timeout", "closed"; the message names the operation, the
** address and the cause ("connect 127.0.0.1:1: connection refused"), and
** err.address holds the address ("host:port", or the path of a Unix
** socket).  A socket or listener remembers its address in its userdata's
** second user value for that.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h" /* arb_err_kind, via larb_fail */
#include "larb.h"
#include "lnet.h"
#include "net.h"
#include "udp.h"

#define LNET_SOCKET "arbor.Socket"
#define LNET_LISTENER "arbor.Listener"
#define LNET_UDP "arbor.Udp"

typedef struct lnet_handle_s {
  arb_sock_t *s;
} lnet_handle_t;

static int64_t now(lua_State *L) { return arb_rt_now(larb_ctx(L)->rt); }

static int64_t opt_deadline(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  lua_Integer ms = luaL_checkinteger(L, idx);
  luaL_argcheck(L, ms >= 0, idx, "timeout must not be negative");
  int64_t t = now(L);
  return ms > INT64_MAX - t ? INT64_MAX : t + ms;
}

/* Waits until woken or the deadline (-1: none), continuing in k. */
static int wait_for(lua_State *L, int64_t deadline, lua_KFunction k) {
  larb_ctx_t *ctx = larb_ctx(L);
  int64_t t = now(L);
  if (arb_node_wait(ctx->node, larb_self(L), t,
                    deadline >= 0 ? deadline - t : -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, (lua_KContext)deadline, k);
}

static int timed_out(lua_State *L, int64_t deadline) {
  return deadline >= 0 && now(L) >= deadline;
}

/* Pushes nil, err for operation `what` failing with rc (a libuv code,
** UV_ETIMEDOUT for a timeout): larb_fail's error, its message "what
** address: cause", with err.address when the address is known (addr may
** be NULL).  Leaves what it pushed first below the two results. */
static int net_fail(lua_State *L, int rc, const char *what, const char *addr) {
  if (addr)
    lua_pushfstring(L, "%s %s", what, addr);
  else
    lua_pushstring(L, what);
  larb_fail(L, rc, lua_tostring(L, -1));
  if (addr) {
    lua_pushstring(L, addr);
    lua_setfield(L, -2, "address");
  }
  return 2;
}

/* Pushes the address remembered by the socket, listener or udp userdata
** at idx (its second user value, or first for udp) and returns it; NULL
** (nil pushed) if none. */
static const char *sock_address(lua_State *L, int idx, int uv) {
  lua_getiuservalue(L, idx, uv);
  return lua_tostring(L, -1);
}

/* A failure of `what` on the socket or listener userdata at idx. */
static int sock_fail(lua_State *L, int idx, int rc, const char *what) {
  return net_fail(L, rc, what, sock_address(L, idx, 2));
}

/* Pushes "host:port" ("[host]:port" for IPv6), or host alone (a path)
** when port is negative. */
static const char *push_name(lua_State *L, const char *host, int port) {
  if (port < 0) return lua_pushstring(L, host);
  return lua_pushfstring(L, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                         port);
}

/* Remembers the socket's own (peer 0) or its peer's (peer 1) address in
** the userdata at idx, if the system can name it; else keeps fallback
** (a stack index, 0 for none). */
static void remember_name(lua_State *L, int idx, arb_sock_t *s, int peer,
                          int fallback) {
  char host[256];
  int port;
  idx = lua_absindex(L, idx);
  if (arb_sock_name(s, peer, host, sizeof(host), &port) == 0 && host[0])
    push_name(L, host, port);
  else if (fallback)
    lua_pushvalue(L, fallback);
  else
    return;
  lua_setiuservalue(L, idx, 2);
}

static arb_sock_t *check_sock(lua_State *L, int idx, const char *mt) {
  lnet_handle_t *h = luaL_checkudata(L, idx, mt);
  return h->s;
}

/* The socket at idx, which the caller must own. */
static arb_sock_t *check_owned(lua_State *L, int idx, const char *mt) {
  arb_sock_t *s = check_sock(L, idx, mt);
  if (s->owner != larb_self(L)->pid)
    luaL_argerror(L, idx, strcmp(mt, LNET_LISTENER) == 0
                              ? "listener is owned by another process"
                              : "socket is owned by another process");
  return s;
}

/* Pushes a handle for a new socket owned by the caller. */
static arb_sock_t *push_new(lua_State *L, const char *mt, int kind,
                            int packet) {
  lnet_handle_t *h = lua_newuserdatauv(L, sizeof(*h), 2);
  h->s = NULL;
  larb_ctx_t *ctx = larb_ctx(L);
  h->s = arb_sock_new(&ctx->rt->loop, ctx->node, larb_self(L), kind, packet);
  if (h->s == NULL) luaL_error(L, "out of memory");
  luaL_setmetatable(L, mt);
  return h->s;
}

/* {======================================================================
** Active mode
**
** The socket userdata's user value is the subject its packets arrive
** on, owned by the socket's owner (made again after give_to).  While in
** active mode the userdata is anchored in the registry table "actives"
** (light userdata of the arb_sock_t -> userdata), so that the loop's
** callback finds it; the anchor goes once the end of the stream has been
** delivered or the handle has closed.
** ======================================================================*/

static const char ACTIVES_KEY = 'a';

/* Pushes the actives table. */
static void push_actives(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ACTIVES_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ACTIVES_KEY);
  }
}

static void set_anchor(lua_State *L, arb_sock_t *s, int ud_idx) {
  ud_idx = lua_absindex(L, ud_idx);
  push_actives(L);
  if (ud_idx)
    lua_pushvalue(L, ud_idx);
  else
    lua_pushnil(L);
  lua_rawsetp(L, -2, s);
  lua_pop(L, 1);
}

/* Pushes the subject of the socket userdata at idx for its owner,
** making it if needed; NULL (nothing pushed) if the owner is gone. */
static larb_subject_t *socket_subject(lua_State *L, int idx, arb_sock_t *s) {
  idx = lua_absindex(L, idx);
  larb_ctx_t *ctx = larb_ctx(L);
  lua_getiuservalue(L, idx, 1);
  larb_subject_t *sub = larb_test_subject(L, -1);
  if (sub && arb_subject_owner(&sub->sub) == s->owner) return sub;
  lua_pop(L, 1);
  arb_proc_t *p = ctx->node ? arb_node_lookup(ctx->node, s->owner) : NULL;
  if (p == NULL) return NULL;
  sub = lua_newuserdatauv(L, sizeof(*sub), 0);
  luaL_setmetatable(L, LARB_SUBJECT);
  arb_subject_init(ctx->node, &sub->sub, p);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, idx, 1);
  return sub;
}

static void send_message(lua_State *L, larb_subject_t *sub) {
  if (!arb_subject_owner_alive(&sub->sub)) {
    lua_pop(L, 1);
    return;
  }
  intptr_t ref = larb_ref_fresh(L, -1); /* a table made just now */
  lua_pop(L, 1);
  arb_subject_send(larb_ctx(L)->node, &sub->sub, ref);
}

/* Stack: the socket userdata at 1.  Sends what is armed and has arrived,
** then the end of the stream once. */
static int deliver_unprotected(lua_State *L) {
  lnet_handle_t *h = lua_touserdata(L, 1);
  arb_sock_t *s = h->s;
  if (s == NULL || larb_ctx(L)->node == NULL) return 0;
  larb_subject_t *sub = socket_subject(L, 1, s);
  if (sub == NULL) {
    set_anchor(L, s, 0);
    return 0;
  }
  int sub_idx = lua_gettop(L);
  const char *data;
  size_t len;
  int rc;
  while (s->active > 0 && (rc = arb_sock_packet(s, &data, &len)) == 1) {
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "socket");
    lua_pushlstring(L, data, len);
    lua_setfield(L, -2, "data");
    arb_sock_consume(s);
    s->active--;
    send_message(L, sub);
  }
  rc = arb_sock_packet(s, &data, &len);
  if (rc < 0 || !s->handle_open) {
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "socket");
    if (rc == UV_EOF || rc == 0 || rc == 1) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "closed");
    } else {
      int msg = lua_gettop(L);
      sock_fail(L, 1, rc, "receive"); /* ..., nil, err */
      lua_setfield(L, msg, "error");
      lua_settop(L, msg);
    }
    send_message(L, sub);
    s->watching = 0;
    set_anchor(L, s, 0);
  }
  lua_settop(L, sub_idx - 1);
  return 0;
}

/* The loop's callback: runs deliver_unprotected under protection (only
** a memory error can happen; the packets then wait for the next one). */
static void deliver(void *ud, arb_sock_t *s) {
  larb_ctx_t *ctx = ud;
  lua_State *L = ctx->L;
  int top = lua_gettop(L);
  push_actives(L);
  if (lua_rawgetp(L, -1, s) == LUA_TUSERDATA) {
    lua_pushcfunction(L, deliver_unprotected);
    lua_insert(L, -2);
    lua_pcall(L, 1, 0, 0);
  }
  lua_settop(L, top);
}

/* socket:receive_as_message([n]) -> true: the next n packets (default
** 1) arrive as messages {socket = s, data = d}; the end of the stream
** as {socket = s, closed = true} or {socket = s, error = err}. */
static int socket_receive_as_message(lua_State *L) {
  arb_sock_t *s = check_owned(L, 1, LNET_SOCKET);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n > 0 && n <= INT32_MAX, 2, "count must be positive");
  lua_settop(L, 1);
  if (socket_subject(L, 1, s) == NULL) return luaL_error(L, "no owner");
  lua_pop(L, 1);
  set_anchor(L, s, 1);
  arb_sock_arm(s, (int)n, deliver, larb_ctx(L));
  lua_pushcfunction(L, deliver_unprotected);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* selector:selecting_socket(socket [, map_fn]) -> selector: the socket's
** messages, through the selector's own selecting. */
static int selector_selecting_socket(lua_State *L) {
  luaL_checkudata(L, 1, LARB_SELECTOR);
  arb_sock_t *s = check_owned(L, 2, LNET_SOCKET);
  lua_settop(L, 3);
  lua_getfield(L, 1, "selecting");
  lua_pushvalue(L, 1);
  if (socket_subject(L, 2, s) == NULL) return luaL_error(L, "no owner");
  lua_pushvalue(L, 3);
  lua_call(L, 3, 1);
  return 1;
}

/* }====================================================================== */

static int handle_gc(lua_State *L) {
  lnet_handle_t *h = lua_touserdata(L, 1);
  if (h->s) arb_sock_release(h->s);
  h->s = NULL;
  return 0;
}

/* {======================================================================
** Options
** ======================================================================*/

typedef struct opts_s {
  const char *host, *path;
  int port, backlog, packet, reuseport;
  int64_t deadline;
  int64_t send_timeout; /* -1: none */
} opts_t;

/* A send timeout at idx: nil (none) or milliseconds >= 0. */
static int64_t check_send_timeout(lua_State *L, int idx, int arg) {
  if (lua_isnil(L, idx)) return -1;
  luaL_argcheck(L, lua_isinteger(L, idx) && lua_tointeger(L, idx) >= 0, arg,
                "send_timeout must be a non-negative integer (ms) or nil");
  return (int64_t)lua_tointeger(L, idx);
}

static void read_opts(lua_State *L, opts_t *o, int is_listen) {
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(o, 0, sizeof(*o));
  o->deadline = -1;
  o->backlog = 128;
  lua_getfield(L, 1, "path");
  o->path = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_getfield(L, 1, "host");
  o->host = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_getfield(L, 1, "port");
  if (!lua_isnil(L, -1)) {
    lua_Integer port = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    luaL_argcheck(L, port >= 0 && port <= 65535, 1,
                  "port must be an integer from 0 to 65535");
    o->port = (int)port;
  } else if (!o->path) {
    luaL_argerror(L, 1, "needs host and port, or path");
  }
  if (!o->path && !o->host) {
    if (!is_listen) luaL_argerror(L, 1, "needs host and port, or path");
    o->host = "127.0.0.1";
  }
  lua_getfield(L, 1, "backlog");
  if (!lua_isnil(L, -1)) {
    lua_Integer b = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    luaL_argcheck(L, b > 0 && b <= 65535, 1, "backlog must be a positive integer");
    o->backlog = (int)b;
  }
  lua_getfield(L, 1, "packet");
  if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TSTRING &&
                           strcmp(lua_tostring(L, -1), "raw") == 0))
    o->packet = ARB_PACKET_RAW;
  else if (lua_type(L, -1) == LUA_TSTRING &&
           strcmp(lua_tostring(L, -1), "line") == 0)
    o->packet = ARB_PACKET_LINE;
  else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) == 4)
    o->packet = ARB_PACKET_4;
  else
    luaL_argerror(L, 1, "packet must be \"raw\", \"line\" or 4");
  lua_getfield(L, 1, "timeout");
  if (!lua_isnil(L, -1)) {
    luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0, 1,
                  "timeout must be a non-negative integer");
    o->deadline = opt_deadline(L, -1);
  }
  lua_getfield(L, 1, "reuseport");
  o->reuseport = lua_toboolean(L, -1);
  lua_getfield(L, 1, "send_timeout");
  o->send_timeout = check_send_timeout(L, -1, 1);
  lua_pop(L, 8);
}

/* Pushes "host:port" or the path, for messages. */
static const char *address_text(lua_State *L, const opts_t *o) {
  return o->path ? lua_pushstring(L, o->path) : push_name(L, o->host, o->port);
}

/* }====================================================================== */

/* {======================================================================
** Listening, accepting, connecting
** ======================================================================*/

/* net.listen{host =, port = [, backlog =] [, packet =]} | {path = ...} */
static int lnet_listen(lua_State *L) {
  opts_t o;
  read_opts(L, &o, 1);
  lua_settop(L, 1);
  arb_sock_t *s = push_new(L, LNET_LISTENER,
                           o.path ? ARB_SOCK_PIPE : ARB_SOCK_TCP, o.packet);
  s->send_timeout_ms = o.send_timeout; /* for the sockets it accepts */
  int rc = o.path ? arb_sock_listen_pipe(s, o.path, o.backlog)
                  : arb_sock_listen_tcp(s, o.host, o.port, o.backlog,
                                        o.reuseport);
  if (rc != 0) {
    arb_sock_close(s);
    return net_fail(L, rc, "listen", address_text(L, &o));
  }
  address_text(L, &o); /* 3 */
  remember_name(L, 2, s, 0, 3); /* the port bound for port 0 */
  lua_settop(L, 2);
  return 1;
}

static int accept_k(lua_State *L, int status, lua_KContext kctx);

/* Stack: 1 listener.  Accepts one pending connection or waits. */
static int accept_step(lua_State *L, int64_t deadline) {
  arb_sock_t *l = check_sock(L, 1, LNET_LISTENER);
  if (l->closing) return sock_fail(L, 1, UV_EOF, "accept");
  if (l->pending_accepts > 0) {
    lua_settop(L, 1);
    arb_sock_t *c = push_new(L, LNET_SOCKET, l->kind, l->packet);
    c->send_timeout_ms = l->send_timeout_ms;
    int rc = arb_sock_accept(l, c);
    if (rc == 0) {
      sock_address(L, 1, 2); /* 3: the listener's, for a nameless peer */
      remember_name(L, 2, c, 1, 3);
      lua_settop(L, 2);
      return 1;
    }
    arb_sock_close(c);
    return sock_fail(L, 1, rc, "accept");
  }
  if (l->err) {
    int err = l->err;
    l->err = 0;
    return sock_fail(L, 1, err, "accept");
  }
  if (timed_out(L, deadline)) return sock_fail(L, 1, UV_ETIMEDOUT, "accept");
  l->waiter = larb_self(L)->pid;
  return wait_for(L, deadline, accept_k);
}

static int accept_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_sock_t *l = check_sock(L, 1, LNET_LISTENER);
  l->waiter = ARB_PID_NONE;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return accept_step(L, (int64_t)kctx);
}

/* net.accept(listener [, timeout_ms]) -> socket | nil, err */
static int lnet_accept(lua_State *L) {
  check_owned(L, 1, LNET_LISTENER);
  int64_t deadline = opt_deadline(L, 2);
  lua_settop(L, 1);
  return accept_step(L, deadline);
}

static int connect_k(lua_State *L, int status, lua_KContext kctx);

/* Stack: 1 options, 2 the socket being connected, 3 the address text. */
static int connect_step(lua_State *L, int64_t deadline) {
  arb_sock_t *s = check_sock(L, 2, LNET_SOCKET);
  if (s->connect_state == 1) {
    lua_settop(L, 2);
    return 1;
  }
  if (s->connect_state < 0 || timed_out(L, deadline)) {
    int err = s->connect_state;
    arb_sock_close(s);
    return net_fail(L, err < 0 ? err : UV_ETIMEDOUT, "connect",
                    lua_tostring(L, 3));
  }
  s->waiter = larb_self(L)->pid;
  return wait_for(L, deadline, connect_k);
}

static int connect_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_sock_t *s = check_sock(L, 2, LNET_SOCKET);
  s->waiter = ARB_PID_NONE;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return connect_step(L, (int64_t)kctx);
}

/* net.connect{host =, port = [, timeout =] [, packet =]} | {path = ...} */
static int lnet_connect(lua_State *L) {
  opts_t o;
  read_opts(L, &o, 0);
  lua_settop(L, 1);
  arb_sock_t *s = push_new(L, LNET_SOCKET,
                           o.path ? ARB_SOCK_PIPE : ARB_SOCK_TCP, o.packet);
  s->send_timeout_ms = o.send_timeout;
  address_text(L, &o); /* 3 */
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 2, 2);
  int rc = o.path ? arb_sock_connect_pipe(s, o.path)
                  : arb_sock_connect_tcp(s, o.host, o.port);
  if (rc != 0) {
    arb_sock_close(s);
    return net_fail(L, rc, "connect", lua_tostring(L, 3));
  }
  return connect_step(L, o.deadline);
}

/* listener:address() -> host, port | path */
static int listener_address(lua_State *L) {
  arb_sock_t *s = check_sock(L, 1, LNET_LISTENER);
  char host[256];
  int port;
  int rc = arb_sock_name(s, 0, host, sizeof(host), &port);
  if (rc != 0) return sock_fail(L, 1, rc, "address");
  lua_pushstring(L, host);
  if (port < 0) return 1;
  lua_pushinteger(L, port);
  return 2;
}

/* }====================================================================== */

/* {======================================================================
** Sockets
** ======================================================================*/

static int receive_k(lua_State *L, int status, lua_KContext kctx);

static int receive_step(lua_State *L, arb_sock_t *s, int64_t deadline) {
  const char *data;
  size_t len;
  int rc = arb_sock_packet(s, &data, &len);
  if (rc == 1) {
    lua_pushlstring(L, data, len);
    arb_sock_consume(s);
    return 1;
  }
  if (rc < 0) return sock_fail(L, 1, rc, "receive");
  if (timed_out(L, deadline)) return sock_fail(L, 1, UV_ETIMEDOUT, "receive");
  arb_sock_want_packet(s, larb_self(L)->pid);
  return wait_for(L, deadline, receive_k);
}

static int receive_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_sock_t *s = check_sock(L, 1, LNET_SOCKET);
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  s->waiter = ARB_PID_NONE;
  int n = receive_step(L, s, (int64_t)kctx);
  if (s->waiter == ARB_PID_NONE) arb_sock_unwant(s);
  return n;
}

/* socket:receive([timeout_ms]) -> data | nil, err */
static int socket_receive(lua_State *L) {
  arb_sock_t *s = check_owned(L, 1, LNET_SOCKET);
  int64_t deadline = opt_deadline(L, 2);
  lua_settop(L, 1);
  return receive_step(L, s, deadline);
}

static int send_k(lua_State *L, int status, lua_KContext kctx);
static int send_first_k(lua_State *L, int status, lua_KContext kctx);

/* Waits (until deadline, -1 none) while more than ARB_SOCK_SEND_HIGH
** bytes are queued, continuing in k; -1 (nothing pushed) once under it.
** A timeout leaves what is queued queued. */
static int send_wait(lua_State *L, arb_sock_t *s, int64_t deadline,
                     lua_KFunction k) {
  if (s->closing) return sock_fail(L, 1, UV_EOF, "send");
  if (s->queued <= ARB_SOCK_SEND_HIGH) return -1;
  if (timed_out(L, deadline)) {
    arb_sock_unwait_drain(s, larb_self(L)->pid);
    return sock_fail(L, 1, UV_ETIMEDOUT, "send");
  }
  arb_sock_unwait_drain(s, larb_self(L)->pid); /* registered once */
  if (arb_sock_wait_drain(s, larb_self(L)->pid) != 0)
    return luaL_error(L, "out of memory");
  return wait_for(L, deadline, k);
}

/* Stack: 1 socket.  After queueing: waits for the queue to drain. */
static int send_drain(lua_State *L, arb_sock_t *s, int64_t deadline) {
  int n = send_wait(L, s, deadline, send_k);
  if (n >= 0) return n;
  if (s->err && s->err != UV_EOF) return sock_fail(L, 1, s->err, "send");
  lua_pushboolean(L, 1);
  return 1;
}

static int send_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return send_drain(L, check_sock(L, 1, LNET_SOCKET), (int64_t)kctx);
}

/* Stack: 1 socket, 2 data.  A send that finds the queue over its mark
** waits first (so a sender that times out adds nothing more), then
** queues and waits for the drain, all within one deadline. */
static int send_step(lua_State *L, arb_sock_t *s, int64_t deadline) {
  int n = send_wait(L, s, deadline, send_first_k);
  if (n >= 0) return n;
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  int rc = arb_sock_send(s, data, len);
  if (rc != 0) return sock_fail(L, 1, rc, "send");
  lua_settop(L, 1);
  return send_drain(L, s, deadline);
}

static int send_first_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return send_step(L, check_sock(L, 1, LNET_SOCKET), (int64_t)kctx);
}

/* socket:send(data) -> true | nil, err (any process may send); with a
** send timeout, a send that would wait longer fails with kind
** "timeout". */
static int socket_send(lua_State *L) {
  arb_sock_t *s = check_sock(L, 1, LNET_SOCKET);
  luaL_checkstring(L, 2);
  larb_self(L);
  lua_settop(L, 2);
  if (s->closing) return sock_fail(L, 1, UV_EOF, "send");
  int64_t deadline = -1;
  if (s->send_timeout_ms >= 0) {
    int64_t t = now(L);
    deadline = s->send_timeout_ms > INT64_MAX - t ? INT64_MAX
                                                  : t + s->send_timeout_ms;
  }
  return send_step(L, s, deadline);
}

/* socket:set_send_timeout(ms | nil) -> true: how long a send may wait
** for the queue to drain (nil: without limit); also bounds how long a
** closed socket goes on sending what it had queued. */
static int socket_set_send_timeout(lua_State *L) {
  arb_sock_t *s = check_owned(L, 1, LNET_SOCKET);
  lua_settop(L, 2);
  if (!lua_isnil(L, 2) && !(lua_isinteger(L, 2) && lua_tointeger(L, 2) >= 0)) {
    /* Named here: called as s.set_send_timeout(s, x) Lua would say '?'. */
    lua_Debug ar;
    int method = lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) &&
                 ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0;
    return luaL_error(L, "bad argument #%d to 'set_send_timeout' "
                         "(send_timeout must be a non-negative integer (ms) "
                         "or nil)", method ? 1 : 2);
  }
  s->send_timeout_ms = check_send_timeout(L, 2, 2);
  lua_pushboolean(L, 1);
  return 1;
}

/* socket:abort() -> true: closes at once, discarding what is queued;
** a TCP peer sees a reset. */
static int socket_abort(lua_State *L) {
  arb_sock_t *s = check_owned(L, 1, LNET_SOCKET);
  arb_sock_abort(s);
  lua_pushboolean(L, 1);
  return 1;
}

/* socket:peer() -> host, port | path */
static int socket_peer(lua_State *L) {
  arb_sock_t *s = check_sock(L, 1, LNET_SOCKET);
  char host[256];
  int port;
  int rc = arb_sock_name(s, 1, host, sizeof(host), &port);
  if (rc != 0) return sock_fail(L, 1, rc, "peer");
  lua_pushstring(L, host);
  if (port < 0) return 1;
  lua_pushinteger(L, port);
  return 2;
}

/* socket:shutdown() -> true | nil, err */
static int socket_shutdown(lua_State *L) {
  arb_sock_t *s = check_owned(L, 1, LNET_SOCKET);
  int rc = arb_sock_shutdown(s);
  if (rc != 0) return sock_fail(L, 1, rc, "shutdown");
  lua_pushboolean(L, 1);
  return 1;
}

static int close_owned(lua_State *L, const char *mt) {
  arb_sock_t *s = check_owned(L, 1, mt);
  arb_sock_close(s);
  lua_pushboolean(L, 1);
  return 1;
}

/* socket:close([{abort = true}]) -> true */
static int socket_close(lua_State *L) {
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "abort");
    int abort = lua_toboolean(L, -1);
    lua_settop(L, 1);
    if (abort) return socket_abort(L);
  } else if (!lua_isnoneornil(L, 2)) {
    luaL_typeerror(L, 2, "table of options or nil");
  }
  return close_owned(L, LNET_SOCKET);
}
static int listener_close(lua_State *L) {
  return close_owned(L, LNET_LISTENER);
}

/* socket:give_to(pid), listener:give_to(pid) -> true | nil, err: the
** owner hands the resource to another live process (Erlang's
** controlling_process). */
static int give_to(lua_State *L, const char *mt) {
  arb_sock_t *s = check_owned(L, 1, mt);
  arb_pid_t pid = larb_check_pid(L, 2);
  if (s->closing) return sock_fail(L, 1, UV_EOF, "give_to");
  arb_proc_t *p = arb_node_lookup(larb_ctx(L)->node, pid);
  if (p == NULL) {
    lua_pushfstring(L, "give_to <0.%d.%d>", (int)arb_pid_slot(pid),
                    (int)arb_pid_gen(pid));
    return larb_fail(L, ARB_ENOPROC, lua_tostring(L, -1));
  }
  arb_sock_give(s, p);
  lua_pushboolean(L, 1);
  return 1;
}

static int socket_give_to(lua_State *L) { return give_to(L, LNET_SOCKET); }
static int listener_give_to(lua_State *L) {
  return give_to(L, LNET_LISTENER);
}

/* socket:owner(), listener:owner() -> pid | nil: who owns it now (any
** process may ask), nil once it is closed.  A process handed a socket
** right after its spawn waits for it with this: the spawner may be
** preempted between the spawn and its give_to (Erlang's
** controlling_process has the same race). */
static int owner_of(lua_State *L, const char *mt) {
  arb_sock_t *s = check_sock(L, 1, mt);
  if (s->closing) return 0;
  larb_push_pid(L, s->owner);
  return 1;
}
static int socket_owner(lua_State *L) { return owner_of(L, LNET_SOCKET); }
static int listener_owner(lua_State *L) {
  return owner_of(L, LNET_LISTENER);
}

static int tostring_of(lua_State *L, const char *mt, const char *name) {
  arb_sock_t *s = check_sock(L, 1, mt);
  lua_pushfstring(L, "%s<%p of <0.%d.%d>%s>", name, (void *)s,
                  (int)arb_pid_slot(s->owner), (int)arb_pid_gen(s->owner),
                  s->closing ? ", closed" : "");
  return 1;
}

static int socket_tostring(lua_State *L) {
  return tostring_of(L, LNET_SOCKET, "Socket");
}
static int listener_tostring(lua_State *L) {
  return tostring_of(L, LNET_LISTENER, "Listener");
}

/* }====================================================================== */

/* {======================================================================
** UDP
** ======================================================================*/

typedef struct lnet_udp_s {
  arb_udp_t *u;
} lnet_udp_t;

static arb_udp_t *check_udp(lua_State *L, int owned) {
  lnet_udp_t *h = luaL_checkudata(L, 1, LNET_UDP);
  if (owned && h->u->owner != larb_self(L)->pid)
    luaL_argerror(L, 1, "udp socket is owned by another process");
  return h->u;
}

/* net.udp{host = "127.0.0.1", port = 0} -> udp | nil, err */
static int lnet_udp(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  const char *host = lua_isnil(L, -1) ? "127.0.0.1" : luaL_checkstring(L, -1);
  lua_getfield(L, 1, "port");
  lua_Integer port = lua_isnil(L, -1) ? 0
                     : lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
  luaL_argcheck(L, port >= 0 && port <= 65535, 1,
                "port must be an integer from 0 to 65535");
  larb_ctx_t *ctx = larb_ctx(L);
  lnet_udp_t *h = lua_newuserdatauv(L, sizeof(*h), 1);
  h->u = NULL;
  int ud = lua_gettop(L);
  int err;
  h->u = arb_udp_new(&ctx->rt->loop, ctx->node, larb_self(L), host, (int)port,
                     &err);
  if (h->u == NULL) return net_fail(L, err, "udp", push_name(L, host, (int)port));
  luaL_setmetatable(L, LNET_UDP);
  char name[64];
  int bound;
  if (arb_udp_name(h->u, name, sizeof(name), &bound) == 0)
    push_name(L, name, bound); /* the port bound for port 0 */
  else
    push_name(L, host, (int)port);
  lua_setiuservalue(L, ud, 1);
  lua_settop(L, ud);
  return 1;
}

static int udp_receive_k(lua_State *L, int status, lua_KContext kctx);

static int udp_receive_step(lua_State *L, arb_udp_t *u, int64_t deadline) {
  arb_dgram_t *d = arb_udp_take(u);
  if (d) {
    char host[64];
    int port;
    arb_udp_from(d, host, sizeof(host), &port);
    lua_pushlstring(L, d->data, d->len);
    free(d);
    lua_pushstring(L, host);
    lua_pushinteger(L, port);
    return 3;
  }
  if (u->closing) return net_fail(L, UV_EOF, "receive", sock_address(L, 1, 1));
  if (u->err) {
    int err = u->err;
    u->err = 0;
    return net_fail(L, err, "receive", sock_address(L, 1, 1));
  }
  if (timed_out(L, deadline))
    return net_fail(L, UV_ETIMEDOUT, "receive", sock_address(L, 1, 1));
  arb_udp_want(u, larb_self(L)->pid);
  return wait_for(L, deadline, udp_receive_k);
}

static int udp_receive_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_udp_t *u = check_udp(L, 0);
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  u->waiter = ARB_PID_NONE;
  int n = udp_receive_step(L, u, (int64_t)kctx);
  if (u->waiter == ARB_PID_NONE) arb_udp_unwant(u);
  return n;
}

/* udp:receive([timeout_ms]) -> data, host, port | nil, err */
static int udp_receive(lua_State *L) {
  arb_udp_t *u = check_udp(L, 1);
  int64_t deadline = opt_deadline(L, 2);
  lua_settop(L, 1);
  return udp_receive_step(L, u, deadline);
}

#define LNET_LOOKUP "arbor.UdpLookup"

static int lookup_gc(lua_State *L) {
  arb_udp_lookup_t **r = lua_touserdata(L, 1);
  if (*r) arb_udp_lookup_release(*r);
  *r = NULL;
  return 0;
}

static int send_to_k(lua_State *L, int status, lua_KContext kctx);

/* Stack: 1 udp, 2 host, 3 port, 4 data, 5 the lookup's handle. */
static int send_to_named_step(lua_State *L) {
  arb_udp_lookup_t **r = lua_touserdata(L, 5);
  if ((*r)->status == 1) {
    (*r)->waiter = larb_self(L)->pid;
    return wait_for(L, -1, send_to_k);
  }
  int rc = (*r)->status;
  arb_udp_lookup_release(*r); /* done with it (its __gc does nothing) */
  *r = NULL;
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return net_fail(L, rc, "send_to",
                  push_name(L, lua_tostring(L, 2), (int)lua_tointeger(L, 3)));
}

static int send_to_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  (void)kctx;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return send_to_named_step(L);
}

/* udp:send_to(host, port, data) -> true | nil, err (any process).  A
** host name is resolved first (uv_getaddrinfo): the sender waits, not
** the host. */
static int udp_send_to(lua_State *L) {
  arb_udp_t *u = check_udp(L, 0);
  const char *host = luaL_checkstring(L, 2);
  lua_Integer port = luaL_checkinteger(L, 3);
  luaL_argcheck(L, port > 0 && port <= 65535, 3, "port must be from 1 to 65535");
  size_t len;
  const char *data = luaL_checklstring(L, 4, &len);
  arb_proc_t *self = larb_self(L);
  if (u->closing)
    return net_fail(L, UV_EOF, "send_to", push_name(L, host, (int)port));
  int rc = arb_udp_send(u, host, (int)port, data, len);
  if (rc == UV_EINVAL) { /* not a numeric address: a name */
    lua_settop(L, 4);
    arb_udp_lookup_t **r = lua_newuserdatauv(L, sizeof(*r), 0);
    *r = NULL;
    luaL_setmetatable(L, LNET_LOOKUP);
    *r = arb_udp_send_named(u, host, (int)port, data, len, self->pid, &rc);
    if (*r) return send_to_named_step(L);
  }
  if (rc != 0) return net_fail(L, rc, "send_to", push_name(L, host, (int)port));
  lua_pushboolean(L, 1);
  return 1;
}

/* udp:address() -> host, port */
static int udp_address(lua_State *L) {
  arb_udp_t *u = check_udp(L, 0);
  char host[64];
  int port;
  int rc = arb_udp_name(u, host, sizeof(host), &port);
  if (rc != 0) return net_fail(L, rc, "address", sock_address(L, 1, 1));
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

static int udp_close(lua_State *L) {
  arb_udp_close(check_udp(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

static int udp_gc(lua_State *L) {
  lnet_udp_t *h = lua_touserdata(L, 1);
  if (h->u) arb_udp_release(h->u);
  h->u = NULL;
  return 0;
}

static int udp_tostring(lua_State *L) {
  arb_udp_t *u = check_udp(L, 0);
  lua_pushfstring(L, "Udp<%p of <0.%d.%d>%s>", (void *)u,
                  (int)arb_pid_slot(u->owner), (int)arb_pid_gen(u->owner),
                  u->closing ? ", closed" : "");
  return 1;
}

static const luaL_Reg udp_methods[] = {{"receive", udp_receive},
                                       {"send_to", udp_send_to},
                                       {"address", udp_address},
                                       {"close", udp_close},
                                       {NULL, NULL}};

/* }====================================================================== */

static const luaL_Reg net_funcs[] = {{"listen", lnet_listen},
                                     {"accept", lnet_accept},
                                     {"connect", lnet_connect},
                                     {"udp", lnet_udp},
                                     {NULL, NULL}};

static const luaL_Reg socket_methods[] = {{"send", socket_send},
                                          {"receive", socket_receive},
                                          {"peer", socket_peer},
                                          {"shutdown", socket_shutdown},
                                          {"close", socket_close},
                                          {"abort", socket_abort},
                                          {"set_send_timeout",
                                           socket_set_send_timeout},
                                          {"give_to", socket_give_to},
                                          {"owner", socket_owner},
                                          {"receive_as_message",
                                           socket_receive_as_message},
                                          {NULL, NULL}};

static const luaL_Reg listener_methods[] = {{"address", listener_address},
                                            {"close", listener_close},
                                            {"give_to", listener_give_to},
                                            {"owner", listener_owner},
                                            {NULL, NULL}};

static void new_type(lua_State *L, const char *mt, const luaL_Reg *methods,
                     lua_CFunction tostring) {
  if (luaL_newmetatable(L, mt)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

int larb_open_net(lua_State *L) {
  new_type(L, LNET_SOCKET, socket_methods, socket_tostring);
  new_type(L, LNET_LISTENER, listener_methods, listener_tostring);
  if (luaL_newmetatable(L, LNET_UDP)) {
    lua_newtable(L);
    luaL_setfuncs(L, udp_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, udp_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, udp_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LNET_LOOKUP)) {
    lua_pushcfunction(L, lookup_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  /* selector:selecting_socket joins the selector's methods. */
  int top = lua_gettop(L);
  if (luaL_getmetatable(L, LARB_SELECTOR) == LUA_TTABLE &&
      lua_getfield(L, -1, "__index") == LUA_TTABLE) {
    lua_pushcfunction(L, selector_selecting_socket);
    lua_setfield(L, -2, "selecting_socket");
  }
  lua_settop(L, top);
  luaL_newlib(L, net_funcs);
  return 1;
}

void larb_net_close(void) {
  arb_net_close_orphans();
  arb_udp_forget_lookups();
}
