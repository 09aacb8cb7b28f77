/*
** lnet.h: the `net` module (lnet.c): TCP and Unix-domain sockets.
*/
#ifndef ARB_BIND_LNET_H
#define ARB_BIND_LNET_H

#include <lua.h>

/* Opens `net` (preloaded). */
int larb_open_net(lua_State *L);

/* Closes the sockets still sending for owners that have ended; call at
** the host's end, before arb_rt_close. */
void larb_net_close(void);

#endif
