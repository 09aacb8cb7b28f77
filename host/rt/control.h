/*
** control.h: the running host's control socket and its file watcher.
**
** The control socket is a Unix stream socket (mode 0600).  A client
** writes one request line (control_proto.h), followed by the chunk for
** an eval, the host answers "CODE\n" then text, and closes.  A
** connection's buffer is the line's size until an eval's line asks for
** room for its chunk (at most ARB_CONTROL_MAX_EVAL bytes).  A socket file left by a dead host is detected
** (nobody accepts) and replaced; a live host on the same path, or a file
** there that is not our socket, makes listening fail.
**
** Trust.  Both ends talk only to their own user or root: the server
** checks each connection's peer uid (SO_PEERCRED) and answers any other
** uid "permission denied"; the client checks the server's uid the same
** way before it sends anything.  The default path lives in a directory
** only we can write (see arb_control_default_path), so nobody else can
** take it first.
**
** Bounds.  At most ARB_CONTROL_MAX_CONNS connections are open at once
** (one more is answered "busy" and closed); a request line must arrive
** within ARB_CONTROL_REQUEST_MS and an answer be taken within
** ARB_CONTROL_WRITE_MS; a bad request (NUL byte, unknown word, too long)
** is answered with the parser's message and closed.  The wait for the
** host's own answer (a reload can take a while) is the client's to bound.
**
** The client side is plain POSIX with a deadline over the whole exchange,
** for the `arbor status/reload/stop/eval` commands; it never raises SIGPIPE.
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
#include <sys/un.h>
#include <uv.h>

#include "control_proto.h"

/* The longest socket path, in bytes (sun_path less its NUL). */
#define ARB_CONTROL_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

#define ARB_CONTROL_MAX_CONNS 16
#define ARB_CONTROL_REQUEST_MS 5000
#define ARB_CONTROL_WRITE_MS 5000

/* arb_control_request's result when the deadline passed. */
#define ARB_CONTROL_TIMEOUT (-2)

typedef struct arb_control_s arb_control_t;
typedef struct arb_watch_s arb_watch_t;

/* A request arrived on connection conn; answer it with arb_control_reply
** (later is fine). */
typedef void (*arb_control_cb)(void *ud, uint64_t conn,
                               const arb_control_req_t *req);

/* Listens on path.  Returns 0, or a negative libuv code with a one-line
** message in err (e.g. another host is serving there). */
int arb_control_listen(arb_control_t **out, uv_loop_t *loop, const char *path,
                       arb_control_cb cb, void *ud, char *err, size_t errlen);

/* Answers connection conn and closes it.  Returns 0, or UV_ENOENT if the
** client has gone. */
int arb_control_reply(arb_control_t *c, uint64_t conn, int code,
                      const char *text);

/* Stops listening, closes open connections, removes the socket file if it
** is still the one this host made.  Memory is released by the loop's
** close callbacks. */
void arb_control_close(arb_control_t *c);

/* Calls cb once per burst of changes to .lua files in the folder of
** file; a burst ends after quiet_ms without events.  Returns 0 or a
** negative libuv code. */
int arb_watch_start(arb_watch_t **out, uv_loop_t *loop, const char *file,
                    int quiet_ms, void (*cb)(void *ud), void *ud);
void arb_watch_close(arb_watch_t *w);

/* 0 if path fits a Unix socket address, else -1 with a message in err:
** a path is never cut short. */
int arb_control_check_path(const char *path, char *err, size_t errlen);

/* The default socket path for a script, into buf: arbor-HASH.sock, HASH
** from the script's real path, in $XDG_RUNTIME_DIR if it is set (it must
** be a directory of ours that nobody else can write), else in
** ${TMPDIR:-/tmp}/arbor-UID, which must be a real directory (not a
** symlink) owned by us with mode 0700.  create (the server) makes that
** directory if it is missing.  Returns 0, or -1 with a one-line message
** in err naming the directory and what is wrong with it. */
int arb_control_default_path(const char *script, int create, char *buf,
                             size_t len, char *err, size_t errlen);

/* Client: sends req to the host at path and reads its answer, all within
** timeout_ms.  Returns the host's code with a malloc'ed text in *text; or
** -1 (no trusted host answered) or ARB_CONTROL_TIMEOUT, with a malloc'ed
** message in *text (NULL if even that failed). */
int arb_control_request(const char *path, const arb_control_req_t *req,
                        int timeout_ms, char **text);

#endif
