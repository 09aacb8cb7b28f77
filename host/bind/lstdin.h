/*
** lstdin.h: Lua's own reading of standard input (io.read, io.lines,
** io.stdin:read, io.stdin:lines) made to wait on the loop inside a
** process (lstdin.c, over host/rt/stdin.c).
*/
#ifndef ARB_BIND_LSTDIN_H
#define ARB_BIND_LSTDIN_H

#include <lua.h>

/* Wraps io.read, io.lines and the file methods read and lines; call once
** after luaL_openlibs. */
void larb_stdin_install(lua_State *L);

/* Stops watching standard input; call at the host's end, once every
** process has ended and before arb_rt_close. */
void larb_stdin_close(void);

#endif
