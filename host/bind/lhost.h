/*
** lhost.h: what the three parts of the host share, and nothing else.
**
** lhost.c is the host's main (lua.c's shape: setup runs as pmain under
** lua_pcall, so a setup error prints "arbor: message"); lsched.c is the
** scheduler glue (resuming slices, the thread pool, the node's and the
** runtime's callbacks, crash reports); lpreload.c is the table of
** built-in modules (linit.c's shape).  No other binding file includes
** this header.
*/
#ifndef ARB_BIND_LHOST_H
#define ARB_BIND_LHOST_H

#include "larb.h"

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
