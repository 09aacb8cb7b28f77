/*
** lhost.h: what the three parts of the host share, and nothing else.
**
** lhost.c is the host's main (lua.c's shape: setup runs as pmain under
** lua_pcall, so a setup error prints "arbor: message"); lsched.c is the
** scheduler glue (resuming slices, the thread pool, the node's and the
** runtime's callbacks, crash reports); lpreload.c is the table of
** built-in modules (linit.c's shape).  Besides them only lservice.c (the
** serving options), host/main.c and the generated embedded.c include
** this header: nothing every binding needs is here.
*/
#ifndef ARB_BIND_LHOST_H
#define ARB_BIND_LHOST_H

#include "larb.h"

/* The host (lhost.c): set up a state, run a script, tear down.  Also read
** by lservice.c (the serving options). */
typedef struct larb_host_opts_s {
  const char *script;
  int argc;    /* argv[0] is the script; argv[1..] its arguments */
  char **argv;
  int prefix_argc; /* arguments before the script, for arg[-n] */
  char **prefix_argv;
  int watch;                /* --watch */
  const char *control_path; /* --control PATH, or NULL for the default */
  size_t max_memory;        /* --max-memory: Lua heap limit, 0 = none */
  const char *log_format;   /* --log-format text|json, NULL: text */
  const char *log_level;    /* --log-level NAME, NULL: info */
  const char *log_file;     /* --log-file PATH, NULL: stderr */
  const char *dashboard;    /* --dashboard [HOST:]PORT, or NULL */
  const char *dashboard_token_file; /* --dashboard-token-file, or NULL */
} larb_host_opts_t;

/* Runs a script as the main process and serves until the host stops.
** Returns the process exit status (0, 1 or 2). */
int larb_host_run(const larb_host_opts_t *opts);

/* The embedded Lua modules (generated at build time). */
typedef struct larb_embedded_s {
  const char *name;
  const char *chunkname;
  const unsigned char *data;
  size_t size;
} larb_embedded_t;
extern const larb_embedded_t larb_embedded[];

/* lservice.c: closes the control socket and the watcher, if serving. */
void larb_service_close(void);

/* lsched.c: the callbacks the node and the runtime are created with; ud
** is the host's larb_ctx_t. */
extern const arb_node_ops_t larb_sched_node_ops;
extern const arb_rt_ops_t larb_sched_rt_ops;

/* lpreload.c: puts every built-in module in package.preload. */
void larb_preload_modules(lua_State *L);

/* lhost.c: sets the Lua heap limit (--max-memory; 0: none) and returns
** the previous one.  The scheduler lifts it while it reports a crash. */
size_t larb_lua_limit_swap(size_t limit);

#endif
