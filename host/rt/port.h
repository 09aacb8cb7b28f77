/*
** port.h: OS processes owned by arbor processes (Erlang's ports), on
** uv_spawn.
**
** A port (arb_port_t) is one spawned OS process and the process group it
** leads: UV_PROCESS_DETACHED makes the child call setsid(), so its pid is
** its group's id and a signal sent through the port (arb_port_signal)
** reaches the whole group, grandchildren included.  Its stdin is a pipe
** (or /dev/null, or the host's), its stdout and stderr pipes (or
** inherited, or /dev/null; stderr may share stdout's pipe).  Output is
** framed here, in C: "line" hands over one line at a time (without its
** \n or \r\n; a line over ARB_PORT_LINE_MAX is handed over in pieces of
** that size), "raw" whatever arrived.  Each piece goes to the binding's
** deliver callback as it is framed, and the exit last of all: when the
** leader has exited, what its pipes still hold is read at once, a partial
** last line handed over, the pipes closed (output a lingering group
** member writes after that is dropped), and then the exit.
**
** Ownership: a port belongs to one arbor process, tied to it by an exit
** hook (as host/rt/net.c ties sockets).  When the owner ends, whatever is
** left of the group gets SIGTERM and, ARB_PORT_KILL_AFTER_MS later if
** anything is left, SIGKILL.  At the host's end arb_port_end_all does the
** same for every group still alive, and for every child the host has
** adopted as subreaper (reaper.h), and reaps them all.
**
** Readiness (systemd's protocol): with opts.notify the port gets a Unix
** datagram socket of its own, in a directory of the host's made 0700
** (so only the same user can write to it), named in the child's
** $NOTIFY_SOCKET; each datagram ("READY=1\nSTATUS=...") is handed over
** as it arrives, and what is queued when the leader exits comes before
** the exit.  The socket is removed with the port.
**
** Lifetime: reference-counted: the binding's handle and each open libuv
** handle hold one, so a callback after the owner died finds valid memory.
** libuv and the core; never Lua.
*/
#ifndef ARB_RT_PORT_H
#define ARB_RT_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "list.h"
#include "node.h"

#define ARB_PORT_LINE_MAX (1u << 20)   /* longest line handed over whole */
#define ARB_PORT_KILL_AFTER_MS 5000    /* SIGTERM, then SIGKILL after this */
#define ARB_PORT_WRITE_HIGH (1u << 20) /* queued stdin bytes before writers wait */

/* Where a standard stream goes. */
enum {
  ARB_PORT_IO_PIPE = 0, /* stdin: a pipe; stdout/stderr: "message" */
  ARB_PORT_IO_INHERIT,  /* the host's own stream */
  ARB_PORT_IO_NULL,     /* /dev/null */
  ARB_PORT_IO_STDOUT    /* stderr only: the same pipe as stdout */
};
enum { ARB_PORT_RAW = 0, ARB_PORT_LINE = 1 };
/* What deliver is told. */
enum { ARB_PORT_EV_STDOUT = 0, ARB_PORT_EV_STDERR = 1, ARB_PORT_EV_EXIT = 2,
       ARB_PORT_EV_NOTIFY = 3 };
#define ARB_PORT_NOTIFY_MAX 4096 /* longest notification datagram kept */

typedef struct arb_port_opts_s {
  const char *file;  /* looked up in the child's PATH */
  char **args;       /* argv, NULL-terminated; args[0] is shown as the name */
  char **env;        /* the whole environment, NULL-terminated */
  const char *cwd;   /* NULL: the host's */
  int stdin_mode, stdout_mode, stderr_mode;
  int packet;        /* ARB_PORT_RAW or ARB_PORT_LINE */
  int owner_exit_signal; /* sent to the group when the owner ends (0: TERM) */
  int kill_after_ms;     /* then SIGKILL after this (<0: the default) */
  int notify; /* a notification socket for it, named in $NOTIFY_SOCKET */
} arb_port_opts_t;

typedef struct arb_port_stream_s {
  uv_pipe_t pipe;
  char *buf;
  size_t len, cap;
  uint8_t open; /* the handle is open (not yet closing) */
} arb_port_stream_t;

typedef struct arb_port_s arb_port_t;
typedef void (*arb_port_deliver_fn)(void *ud, arb_port_t *p, int event,
                                    const char *data, size_t len);

struct arb_port_s {
  uv_process_t proc;
  uv_pipe_t in;
  arb_port_stream_t out[2]; /* stdout, stderr */
  uv_timer_t kill_timer;
  uv_poll_t notify_poll; /* the notification socket, when asked for */
  int notify_fd;
  char *notify_path;
  arb_exit_hook_t hook;
  arb_list_t live_node; /* in the list of ports whose group may be alive */
  uv_loop_t *loop;
  arb_node_t *node;
  arb_pid_t owner;
  arb_pid_t write_waiter; /* a writer waiting for the stdin queue to drain */
  pid_t os_pid;
  int refs;
  int packet;
  int exit_status, term_signal; /* once exited */
  int owner_exit_signal, kill_after_ms;
  size_t queued; /* stdin bytes written, not yet taken by the child */
  int write_err; /* sticky stdin error */
  arb_port_deliver_fn deliver;
  void *deliver_ud;
  uint8_t hooked, exited, exit_delivered, in_open, proc_open, timer_open;
  uint8_t live, term_sent, killed, notify_open;
};

/* Spawns a port owned by p; deliver(ud, ...) gets its output and exit.
** Returns 0 with *out set, or a libuv error (UV_ENOENT for a command not
** found) with *out NULL. */
int arb_port_spawn(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                   const arb_port_opts_t *o, arb_port_deliver_fn deliver,
                   void *ud, arb_port_t **out);

/* The binding's handle lets go (the OS process is not touched: its
** owner's end stops it). */
void arb_port_release(arb_port_t *port);

/* Queues data on stdin.  0, or UV_EPIPE once stdin is closed or the child
** stopped reading, or another error. */
int arb_port_write(arb_port_t *port, const char *data, size_t len);
/* Closes stdin: the child reads end of file once the queue is written. */
void arb_port_close_stdin(arb_port_t *port);
/* Stops reading stdout and stderr: what was read is handed over, then
** the pipes close (the child gets EPIPE/SIGPIPE if it writes more). */
void arb_port_close_output(arb_port_t *port);
/* Signals the group.  0, or UV_ESRCH when nothing is left of it. */
int arb_port_signal(arb_port_t *port, int signum);

/* The reaper's owner check: does libuv still own child pid? */
int arb_port_owns(pid_t pid);

/* The host's end: every group still alive and every adopted child gets
** SIGTERM, then SIGKILL when grace_ms has passed with any left; every
** child is reaped and every port's handles closed.  Runs the loop. */
void arb_port_end_all(uv_loop_t *loop, int grace_ms);

#endif
