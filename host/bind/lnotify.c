/*
** lnotify.c: arbor.notify, the host's side of systemd's notification
** protocol (the socket and the watchdog timer are host/rt/notify.c's).
**
**   notify.ready([status])      READY=1: the root tree is up (again)
**   notify.reloading([status])  RELOADING=1 with MONOTONIC_USEC=
**   notify.stopping([status])   STOPPING=1: the ordered shutdown began
**   notify.status(text)         STATUS=text alone
**   notify.socket()             $NOTIFY_SOCKET as read, or nil
**   notify.watchdog()           the watchdog interval (µs, 0: none) and
**                               the pings sent so far
**
** Each sender returns true when the datagram went out, false when the
** host is not under systemd, and nil plus a message when sending failed
** (also printed once on stderr: a host whose manager is gone keeps
** running).  Status texts are single-lined and bounded (notify.h).
**
** One host per OS process: the notifier is this file's state, opened by
** the first require (the watchdog starts then) and closed by the host's
** teardown (larb_notify_close).
*/
#include "lnotify.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "larb.h"
#include "notify.h"

static arb_notify_t *notifier;
static int opened;      /* the environment has been read */
static int send_warned; /* a failed send has been reported */

/* Room for the longest message: a state line, MONOTONIC_USEC and a
** STATUS line of ARB_NOTIFY_STATUS_MAX bytes. */
#define MESSAGE_MAX (ARB_NOTIFY_STATUS_MAX + 128)

static int send_message(lua_State *L, const char *state, int status_arg,
                        int monotonic) {
  const char *status = luaL_optstring(L, status_arg, NULL);
  if (notifier == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  char buf[MESSAGE_MAX];
  int len = snprintf(buf, sizeof(buf), "%s", state ? state : "");
  if (monotonic)
    len += snprintf(buf + len, sizeof(buf) - (size_t)len,
                    "MONOTONIC_USEC=%llu\n",
                    (unsigned long long)arb_notify_monotonic_usec());
  if (status)
    len = (int)arb_notify_add_status(buf, (size_t)len, sizeof(buf), status);
  int rc = arb_notify_send(notifier, buf);
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "cannot notify systemd at %s: %s",
                  arb_notify_name(notifier), strerror(-rc));
  if (!send_warned) {
    send_warned = 1;
    lua_pushfstring(L, "%s (further failures are not reported)",
                    lua_tostring(L, -1));
    larb_log_host(LARB_LOG_WARNING, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return 2;
}

static int notify_ready(lua_State *L) {
  return send_message(L, "READY=1\n", 1, 0);
}

static int notify_reloading(lua_State *L) {
  return send_message(L, "RELOADING=1\n", 1, 1);
}

static int notify_stopping(lua_State *L) {
  return send_message(L, "STOPPING=1\n", 1, 0);
}

static int notify_status(lua_State *L) {
  luaL_checkstring(L, 1);
  return send_message(L, NULL, 1, 0);
}

static int notify_socket(lua_State *L) {
  if (notifier == NULL)
    lua_pushnil(L);
  else
    lua_pushstring(L, arb_notify_name(notifier));
  return 1;
}

static int notify_watchdog(lua_State *L) {
  lua_pushinteger(L, notifier ? (lua_Integer)arb_notify_watchdog_usec(notifier)
                              : 0);
  lua_pushinteger(L, notifier ? (lua_Integer)arb_notify_watchdog_pings(notifier)
                              : 0);
  return 2;
}

int larb_open_notify(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"ready", notify_ready},       {"reloading", notify_reloading},
      {"stopping", notify_stopping}, {"status", notify_status},
      {"socket", notify_socket},     {"watchdog", notify_watchdog},
      {NULL, NULL}};
  larb_ctx_t *ctx = larb_ctx(L);
  if (!opened && ctx->rt) {
    opened = 1;
    char err[256];
    if (arb_notify_open(&notifier, &ctx->rt->loop, err, sizeof(err)) != 0) {
      char msg[300];
      snprintf(msg, sizeof(msg), "%s; not notifying systemd", err);
      larb_log_host(LARB_LOG_WARNING, msg);
    }
  }
  luaL_newlib(L, funcs);
  return 1;
}

void larb_notify_close(void) {
  arb_notify_close(notifier);
  notifier = NULL;
  opened = 0;
  send_warned = 0;
}
