/*
** lfs.h: the `fs` module (lfs.c): files on libuv's thread pool.
*/
#ifndef ARB_BIND_LFS_H
#define ARB_BIND_LFS_H

#include <lua.h>

/* Opens `fs` (preloaded). */
int larb_open_fs(lua_State *L);

#endif
