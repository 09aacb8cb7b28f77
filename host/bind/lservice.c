/*
** lservice.c: the host as a service: its ordered shutdown, signals, the
** control socket and the --watch watcher, and the arbor.core functions
** that lua/arbor/main.lua and lua/arbor/shutdown.lua use for them.
**
** Ordered shutdown: a system process (lua/arbor/shutdown.lua) stops the
** trees main started newest first, each fully before the next, then
** halts.  Main's links are detached before it starts: a link would
** otherwise carry one exit to every tree at once, oldest first.
**
** Commands from outside (a control-socket line, SIGHUP, a watched save)
** arrive in libuv callbacks, outside every core iteration, and become
** messages {cmd = ..., dry_run = ..., json = ..., processes = ..., code =
** ..., timeout_ms = ..., conn = ...} to main's control subject; main (or
** the process it hands an eval to) answers a connection with
** control_reply.  Requests that do not parse never get this far:
** control.c answers them.
**
** The service's state (main's control subject, the control socket, the
** watcher) is this file's own struct, not the shared larb_ctx_t: one
** host per process, like the logger's settings.
*/
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "larb.h"
#include "lhost.h"
#include "lintrospect.h"

/* What the host holds while it serves. */
static struct larb_service_s {
  int control_ref;        /* main's control subject while serving */
  arb_control_t *control; /* the control socket, while serving */
  arb_watch_t *watch;     /* the --watch watcher, while serving */
} svc = {LUA_NOREF, NULL, NULL};

void larb_service_close(void) {
  arb_control_close(svc.control);
  arb_watch_close(svc.watch);
  svc.control = NULL;
  svc.watch = NULL;
  svc.control_ref = LUA_NOREF;
}

/* Spawns the system process that shuts the trees down newest first, then
** halts.  With a live main, main goes last. */
void larb_spawn_shutdown(larb_ctx_t *ctx, lua_State *L,
                         const arb_pid_t *trees, int n) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "arbor.shutdown");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    larb_log_host(LARB_LOG_ERROR, lua_tostring(L, -1));
    lua_pop(L, 1);
    ctx->exit_code = 1;
    ctx->halted = 1;
    arb_rt_stop(ctx->rt);
    return;
  }
  lua_createtable(L, n + 1, 0);
  int k = 1;
  if (ctx->main_pid) {
    larb_push_pid(L, ctx->main_pid);
    lua_rawseti(L, -2, k++);
  }
  for (int i = 0; i < n; i++) {
    larb_push_pid(L, trees[i]);
    lua_rawseti(L, -2, k++);
  }
  arb_proc_t *p = larb_spawn(L, 1);
  p->user_kind = LARB_SYSTEM;
}

/* Begins the ordered shutdown with main still alive (a signal, or
** `arbor stop`): main's trees newest first, then main. */
static void begin_shutdown(larb_ctx_t *ctx, lua_State *L) {
  ctx->shutting_down = 1;
  arb_proc_t *main = arb_node_lookup(ctx->node, ctx->main_pid);
  uint32_t n = main ? arb_links_of(main, NULL, 0) : 0;
  arb_pid_t *trees = n ? arb_malloc(n * sizeof(*trees)) : NULL;
  if (trees) {
    arb_links_of(main, trees, n);
    for (uint32_t i = 0; i < n; i++) arb_unlink(ctx->node, main, trees[i]);
  }
  larb_spawn_shutdown(ctx, L, trees, trees ? (int)n : 0);
  arb_free(trees, n * sizeof(*trees));
}

/* Sends {cmd = cmd, conn = conn, ...} to main's control subject, with
** the request's options (dry_run, json, processes, timeout_ms) and an
** eval's chunk as `code` when req is given.  Called from libuv callbacks,
** outside any core iteration. */
static int send_command(larb_ctx_t *ctx, const char *cmd,
                        const arb_control_req_t *req, uint64_t conn) {
  lua_State *L = ctx->L;
  if (svc.control_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, svc.control_ref);
  larb_subject_t *s = lua_touserdata(L, -1);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, cmd);
  lua_setfield(L, -2, "cmd");
  lua_pushboolean(L, req && req->dry_run);
  lua_setfield(L, -2, "dry_run");
  if (req) {
    lua_pushboolean(L, req->json);
    lua_setfield(L, -2, "json");
    lua_pushboolean(L, req->processes);
    lua_setfield(L, -2, "processes");
    if (req->timeout_ms > 0) {
      lua_pushinteger(L, req->timeout_ms);
      lua_setfield(L, -2, "timeout_ms");
    }
    if (req->body) {
      lua_pushlstring(L, req->body, req->body_len);
      lua_setfield(L, -2, "code");
    }
  }
  if (conn) {
    lua_pushinteger(L, (lua_Integer)conn);
    lua_setfield(L, -2, "conn");
  }
  arb_subject_send(ctx->node, &s->sub, larb_ref_fresh(L, -1));
  lua_pop(L, 2);
  return 1;
}

void larb_host_signal(void *ud, int signum) {
  larb_ctx_t *ctx = ud;
  if (signum == SIGHUP) {
    if (!ctx->shutting_down) send_command(ctx, "reload", NULL, 0);
    return;
  }
  if (ctx->shutting_down) {
    /* A second signal: stop waiting for anyone. */
    ctx->halted = 1;
    arb_rt_stop(ctx->rt);
    return;
  }
  begin_shutdown(ctx, ctx->L);
}

/* A parsed request from the control socket (control.c answers bad ones
** itself). */
static void on_control(void *ud, uint64_t conn, const arb_control_req_t *req) {
  larb_ctx_t *ctx = ud;
  const char *cmd = req->cmd == ARB_CONTROL_STATUS   ? "status"
                    : req->cmd == ARB_CONTROL_RELOAD ? "reload"
                    : req->cmd == ARB_CONTROL_EVAL   ? "eval"
                                                     : "stop";
  if (ctx->shutting_down || !send_command(ctx, cmd, req, conn))
    arb_control_reply(svc.control, conn, 1, "the host is shutting down");
}

static void on_watch(void *ud) {
  larb_ctx_t *ctx = ud;
  if (!ctx->shutting_down) send_command(ctx, "reload", NULL, 0);
}

/* Ends serve's setup with one line on stderr and exit status 1: a
** setup error is the user's to fix (another host, a squatted directory,
** a path too long), not a bug, so it gets no traceback. */
static int serve_failed(lua_State *L, larb_ctx_t *ctx, const char *msg) {
  larb_log_host(LARB_LOG_ERROR, msg);
  ctx->exit_code = 1;
  lua_pushboolean(L, 0);
  return 1;
}

/* arbor.core.serve(subject) -> ok: main serves a root tree.  Listens on
** the control socket, starts --watch, and routes SIGHUP to the subject.
** false when that failed: the reason is printed and the host will exit
** 1, so main just returns. */
static int lservice_serve(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  larb_check_subject(L, 1);
  const larb_host_opts_t *o = ctx->opts;
  char path[ARB_CONTROL_PATH_MAX + 1], err[1024];
  if (o->control_path) {
    if (arb_control_check_path(o->control_path, err, sizeof(err)) != 0)
      return serve_failed(L, ctx, err);
    snprintf(path, sizeof(path), "%s", o->control_path);
  } else if (arb_control_default_path(o->script, 1, path, sizeof(path), err,
                                      sizeof(err)) != 0) {
    return serve_failed(L, ctx, err);
  }
  if (arb_control_listen(&svc.control, &ctx->rt->loop, path, on_control,
                         ctx, err, sizeof(err)) != 0)
    return serve_failed(L, ctx, err);
  if (o->watch) {
    int rc = arb_watch_start(&svc.watch, &ctx->rt->loop, o->script, 50,
                             on_watch, ctx);
    if (rc != 0) {
      snprintf(err, sizeof(err), "cannot watch the folder of %s: %s",
               o->script, uv_strerror(rc));
      return serve_failed(L, ctx, err);
    }
  }
  lua_pushvalue(L, 1);
  svc.control_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 1);
  return 1;
}

/* arbor.core.serving() -> were --watch, --control or --dashboard given? */
static int lservice_serving(lua_State *L) {
  const larb_host_opts_t *o = larb_ctx(L)->opts;
  lua_pushboolean(L, o->watch || o->control_path != NULL ||
                         o->dashboard != NULL);
  return 1;
}

/* arbor.core.dashboard() -> [HOST:]PORT, token file | nil: --dashboard
** and --dashboard-token-file as given (main.c checked the address). */
static int lservice_dashboard(lua_State *L) {
  const larb_host_opts_t *o = larb_ctx(L)->opts;
  if (o->dashboard == NULL) return 0;
  lua_pushstring(L, o->dashboard);
  if (o->dashboard_token_file == NULL) return 1;
  lua_pushstring(L, o->dashboard_token_file);
  return 2;
}

/* arbor.core.control_reply(conn, code, text) */
static int lservice_control_reply(lua_State *L) {
  lua_Integer conn = luaL_checkinteger(L, 1);
  lua_Integer code = luaL_checkinteger(L, 2);
  luaL_argcheck(L, code >= 0 && code <= 255, 2, "an exit code (0 to 255)");
  const char *text = luaL_checkstring(L, 3);
  if (svc.control) arb_control_reply(svc.control, (uint64_t)conn, (int)code, text);
  return 0;
}

/* arbor.core.shutdown(): the ordered shutdown, as SIGTERM does it. */
static int lservice_shutdown(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!ctx->shutting_down) begin_shutdown(ctx, L);
  return 0;
}

/* arbor.core.set_exit_code(n): the status the host exits with, as
** os.exit(n) inside a process asks (lua/arbor/main.lua); n & 0xff, as
** exit(3) would give it. */
static int lservice_set_exit_code(lua_State *L) {
  lua_Integer code = luaL_checkinteger(L, 1);
  larb_ctx(L)->exit_code = (int)(code & 0xff);
  return 0;
}

/* arbor.core.halt(): ends every process but the caller, newest first, and
** stops the host once the caller's slice ends. */
static int lservice_halt(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_node_exit_all(ctx->node, arb_node_current(ctx->node),
                    &arb_reason_killed);
  ctx->halted = 1;
  arb_rt_stop(ctx->rt);
  return 0;
}

const luaL_Reg larb_service_funcs[] = {
    {"serve", lservice_serve},
    {"serving", lservice_serving},
    {"dashboard", lservice_dashboard},
    {"control_reply", lservice_control_reply},
    {"shutdown", lservice_shutdown},
    {"halt", lservice_halt},
    {"set_exit_code", lservice_set_exit_code},
    {"procs", larb_introspect_procs}, /* lintrospect.c */
    {"proc_info", larb_introspect_proc_info},
    {"crash_frame", larb_introspect_crash_frame},
    {NULL, NULL}};
