/*
** ltraceback.h: a traceback for crash reports that costs a few
** microseconds (see ltraceback.c).
*/
#ifndef ARB_BIND_LTRACEBACK_H
#define ARB_BIND_LTRACEBACK_H

#include <lua.h>

/* Pushes onto L the traceback of co's stack from level 0, in
** luaL_traceback's format ("stack traceback:\n\t...").  May raise a
** memory error. */
void larb_traceback(lua_State *L, lua_State *co);

#endif
