/*
** lnotify.h: the arbor.notify module (lnotify.c): the host's messages to
** systemd.
*/
#ifndef ARB_BIND_LNOTIFY_H
#define ARB_BIND_LNOTIFY_H

#include <lua.h>

/* Opens arbor.notify (preloaded); the first open reads $NOTIFY_SOCKET
** and starts the watchdog. */
int larb_open_notify(lua_State *L);

/* Stops the watchdog and closes the socket; call before arb_rt_close. */
void larb_notify_close(void);

#endif
