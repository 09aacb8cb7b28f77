/*
** net.h: TCP and Unix-domain stream sockets on the host's loop, for
** processes that wait on them without blocking the host.
**
** A socket (arb_sock_t) wraps one libuv stream handle: a listener, a
** connection, or a connection being made.  It belongs to one process
** (its owner), tied to it by an exit hook: when the owner ends, the
** handle is closed (the peer sees end of stream).  Incoming bytes are
** framed here, in C ("raw", "line", 4-byte big-endian length), so a line
** protocol costs no Lua per byte.  Reading is on demand: the socket starts
** reading when its owner first waits for a packet or arms packets
** (active mode), reads while it waits or has packets armed, and reads
** ahead while less than 64 KiB is buffered (which notices a close, and
** spares stopping and restarting the read per packet), so a fast peer
** cannot fill memory.  A socket with nothing buffered reads into a
** shared scratch buffer and keeps only what arrived.  Sending queues at most ARB_SOCK_SEND_HIGH bytes before the
** senders wait (backpressure).
**
** Lifetime: the struct is reference-counted: the Lua handle, the open
** libuv handle and a name lookup in flight each hold one reference, so a
** callback that arrives after the owner died finds valid memory.  When
** the owner ends, data it queued is still sent before the socket closes
** (a socket left so is an "orphan", closed at the latest by
** arb_net_close_orphans at the host's end); a closed socket's flush is
** bounded by its send timeout (or ARB_SOCK_LINGER_MS), then it is reset,
** as gen_tcp's send_timeout_close would: a peer that never reads cannot
** pin a descriptor and a queue.
**
** Waiters are woken through the node (arb_node_wake of a WAITING pid);
** a woken process re-checks the socket, so a spurious wake is harmless.
** Knows libuv and the core; never Lua.
*/
#ifndef ARB_RT_NET_H
#define ARB_RT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

#define ARB_SOCK_SEND_HIGH (1u << 20) /* queued bytes before senders wait */
#define ARB_SOCK_LINE_MAX (1u << 20)  /* longest line */
#define ARB_SOCK_FRAME_MAX (64u << 20) /* longest 4-byte-prefixed frame */
/* How long a closed socket (or one whose owner ended) may go on sending
** what it had queued when it has no send timeout of its own; then it is
** reset (RST) and freed, so a peer that never reads pins nothing. */
#define ARB_SOCK_LINGER_MS 30000

enum { ARB_PACKET_RAW = 0, ARB_PACKET_LINE = 1, ARB_PACKET_4 = 4 };
enum { ARB_SOCK_TCP = 0, ARB_SOCK_PIPE = 1 };

/* The libuv handle, allocated apart: a connect attempt that failed
** leaves a TCP handle unusable, and the next address needs a fresh one
** while the old one is still closing. */
typedef union arb_sock_handle_u {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} arb_sock_handle_t;

typedef struct arb_sock_s {
  arb_sock_handle_t *hd; /* the current handle */
  uv_getaddrinfo_t gai;
  arb_exit_hook_t hook;
  uv_loop_t *loop;
  arb_node_t *node;
  arb_pid_t owner;
  arb_pid_t waiter; /* the owner, while it waits on receive, accept or connect */
  arb_pid_t *send_waiters;
  int nsend_waiters, send_waiters_cap;
  int refs;
  int kind;   /* ARB_SOCK_TCP or ARB_SOCK_PIPE */
  int packet; /* ARB_PACKET_* */
  int err;    /* sticky: a read error, UV_EOF, or UV_EMSGSIZE */
  int connect_state; /* 0 none/pending, 1 connected, <0 the error */
  int pending_accepts;
  char *buf; /* received, not yet taken */
  size_t len, cap, taken; /* taken: bytes the last packet used */
  size_t queued;          /* bytes written but not yet sent */
  struct addrinfo *addrs, *next_addr;
  int port;
  arb_list_t orphan_node; /* while orphaned */
  int64_t send_timeout_ms; /* -1: none; else how long a send may wait */
  uv_timer_t *linger;      /* while a closed socket flushes: its bound */
  /* Active mode: packets armed to arrive as messages, and the binding's
  ** callback that turns them (and the end of the stream) into messages;
  ** also called once the handle has closed. */
  int active;
  void (*deliver)(void *ud, struct arb_sock_s *s);
  void *deliver_ud;
  uint8_t watching; /* active mode engaged: notice the peer's close */
  uint8_t hooked, handle_open, closing, reading, listener, flushing, orphaned;
} arb_sock_t;

/* A socket of kind owned by p, its handle initialised; NULL on ENOMEM. */
arb_sock_t *arb_sock_new(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                         int kind, int packet);

/* The Lua handle lets go: closes the socket and drops its reference. */
void arb_sock_release(arb_sock_t *s);

/* Closes s (idempotent): its users see it closed at once and waiters
** are woken; data already queued is still sent for at most the send
** timeout (ARB_SOCK_LINGER_MS if none), then the handle closes (reset,
** if the data could not all go out in time). */
void arb_sock_close(arb_sock_t *s);

/* Closes s at once, discarding what is queued: a TCP peer sees a reset
** (SO_LINGER 0).  Also what a lingering close comes to at its bound. */
void arb_sock_abort(arb_sock_t *s);

/* Takes pid off the senders waiting for s's queue to drain (its send
** timed out). */
void arb_sock_unwait_drain(arb_sock_t *s, arb_pid_t pid);

/* Makes p (alive) the owner of s (open), hooked to p from now on. */
void arb_sock_give(arb_sock_t *s, arb_proc_t *p);

/* Closes, now, the sockets whose owners ended while their queued data
** was still being sent; call at the host's end, before closing the loop. */
void arb_net_close_orphans(void);

/* Listens on host:port (numeric address) or on a Unix path.  With
** reuseport, the socket is made with SO_REUSEPORT first, so several
** listeners (each its own process's) share one port and the kernel
** spreads the connections over them: an acceptor pool. */
int arb_sock_listen_tcp(arb_sock_t *s, const char *host, int port,
                        int backlog, int reuseport);
int arb_sock_listen_pipe(arb_sock_t *s, const char *path, int backlog);

/* Accepts a pending connection into client (a fresh socket of the same
** kind); UV_EAGAIN when none is pending (then the caller waits, as
** s->waiter). */
int arb_sock_accept(arb_sock_t *s, arb_sock_t *client);

/* Starts connecting: resolves host with uv_getaddrinfo, then tries each
** address in turn.  Progress is s->connect_state; s->waiter is woken. */
int arb_sock_connect_tcp(arb_sock_t *s, const char *host, int port);
int arb_sock_connect_pipe(arb_sock_t *s, const char *path);

/* The next packet: 1 with *data and *len set (valid until arb_sock_consume),
** 0 if none is complete yet, or a negative error (UV_EOF at end of
** stream, UV_EMSGSIZE for an oversized line or frame). */
int arb_sock_packet(arb_sock_t *s, const char **data, size_t *len);
void arb_sock_consume(arb_sock_t *s);

/* The owner waits for a packet: reading runs until one is complete. */
void arb_sock_want_packet(arb_sock_t *s, arb_pid_t waiter);
/* The owner stops waiting (timeout). */
void arb_sock_unwant(arb_sock_t *s);

/* Active mode: arms n more packets to be handed to deliver(ud, s) as
** they arrive; from then on the socket also reads (a bounded amount)
** while nothing is armed, to notice the peer's close. */
void arb_sock_arm(arb_sock_t *s, int n, void (*deliver)(void *, arb_sock_t *),
                  void *ud);

/* Queues data (with a 4-byte prefix in packet mode 4).  0 or an error. */
int arb_sock_send(arb_sock_t *s, const char *data, size_t len);
/* Records pid as waiting for the send queue to drain; 0 or ENOMEM. */
int arb_sock_wait_drain(arb_sock_t *s, arb_pid_t pid);

/* No more sending: the peer reads end of stream.  0 or an error. */
int arb_sock_shutdown(arb_sock_t *s);

/* Local or peer address: a numeric host and a port, or a path (port
** -1).  0 or an error. */
int arb_sock_name(arb_sock_t *s, int peer, char *host, size_t hostlen,
                  int *port);

#endif
