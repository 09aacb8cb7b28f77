/*
** control.h: the running host's control socket and its file watcher.
**
** The control socket is a Unix stream socket (mode 0600).  A client
** writes one command line ("status", "reload", "reload --dry-run",
** "stop"), the host answers "CODE\n" then text, and closes.  A socket file
** left by a dead host is detected (nobody accepts) and replaced; a live
** host on the same path makes listening fail.  The client side is plain
** blocking POSIX, for the `arbor status/reload/stop` commands.
**
** The watcher follows a script's folder (so editors that save by writing
** a new file and renaming it over the old one are seen) and coalesces a
** burst of events into one call.
**
** libuv and libc only; never Lua.
*/
#ifndef ARB_RT_CONTROL_H
#define ARB_RT_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct arb_control_s arb_control_t;
typedef struct arb_watch_s arb_watch_t;

/* A command line arrived on connection conn; answer it with
** arb_control_reply (later is fine). */
typedef void (*arb_control_cb)(void *ud, uint64_t conn, const char *line);

/* Listens on path.  Returns 0, or a negative libuv code with a message in
** err (e.g. another host is serving there). */
int arb_control_listen(arb_control_t **out, uv_loop_t *loop, const char *path,
                       arb_control_cb cb, void *ud, char *err, size_t errlen);

/* Answers connection conn and closes it.  Returns 0, or UV_ENOENT if the
** client has gone. */
int arb_control_reply(arb_control_t *c, uint64_t conn, int code,
                      const char *text);

/* Stops listening, closes open connections, removes the socket file.
** Memory is released by the loop's close callbacks. */
void arb_control_close(arb_control_t *c);

/* Calls cb once per burst of changes to .lua files in the folder of
** file; a burst ends after quiet_ms without events.  Returns 0 or a
** negative libuv code. */
int arb_watch_start(arb_watch_t **out, uv_loop_t *loop, const char *file,
                    int quiet_ms, void (*cb)(void *ud), void *ud);
void arb_watch_close(arb_watch_t *w);

/* The default socket path for a script: $XDG_RUNTIME_DIR (else /tmp,
** with the user id) and a hash of the script's real path. */
void arb_control_default_path(const char *script, char *buf, size_t len);

/* Client: sends line to the host at path and reads its answer.  Returns
** the host's code and a malloc'ed text in *text, or -1 with a message in
** *text when no host answers. */
int arb_control_request(const char *path, const char *line, char **text);

#endif
