/*
** lport.h: the `port` module (lport.c): OS processes owned by arbor
** processes.
*/
#ifndef ARB_BIND_LPORT_H
#define ARB_BIND_LPORT_H

#include <lua.h>

#include "larb.h"

/* Opens `port` (preloaded); adds selector:selecting_port. */
int larb_open_port(lua_State *L);

/* The host's start: makes it a subreaper and starts reaping.  Call once
** the runtime is up. */
void larb_port_init(larb_ctx_t *ctx);

/* The host's end: stops every OS process still running (SIGTERM, then
** SIGKILL after 5 s), reaps them all and closes the ports' handles.
** Call after the run, before the node and the loop go. */
void larb_port_close(larb_ctx_t *ctx);

/* lstdlib_io.c: Lua's io functions that open files (io.open, io.lines,
** io.input, io.output, io.tmpfile) made to give close-on-exec files, so
** no descriptor leaks into a child.  Call after luaL_openlibs. */
void larb_stdlib_io_install(lua_State *L);

#endif
