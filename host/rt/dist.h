/*
** dist.h: arbor as a hidden C node of an Erlang cluster, the libuv side.
**
** One local node (arb_dist_t) at a time: a listening socket registered
** with epmd, and connections (arb_dconn_t) to other nodes.  erl_interface
** does the handshakes (ei_publish, ei_connect, ei_accept), which block;
** they run as jobs on libuv's thread pool, each with a copy of the
** ei_cnode, so a slow or dead node keeps a pool thread busy for at most
** the handshake timeout and never the loop.  Once a handshake is done the
** socket is handed to a libuv TCP handle and everything after that runs
** on the loop: 4-byte-length framing, answering ticks, a tick timer that
** drops a connection silent for four tick periods, and a write queue
** bounded by ARB_DIST_QUEUE_MAX (past it the connection is dropped: a
** node that does not read must not fill our memory).
**
** Frames sent during a loop turn are written together just before the
** loop polls (a prepare handle), so a burst costs one write.  A
** connection being made queues what is sent to it and writes it once
** the handshake is done (Erlang's auto-connect on send).  The embedder
** gets each pass-through frame ('p': control term and message term, still
** encoded), and one up and one down per connection.  Connections are
** found by node name; their memory stays valid until the close callback,
** so a callback may close the connection it is called for.
**
** Knows libuv, ei and libc; never Lua, never the core.
*/
#ifndef ARB_RT_DIST_H
#define ARB_RT_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ARB_DIST_FRAME_MAX (64u << 20)  /* longest frame read */
#define ARB_DIST_QUEUE_MAX (64u << 20)  /* unsent bytes before dropping */
#define ARB_DIST_TICK_MS 15000          /* net_ticktime 60 s / 4 */
#define ARB_DIST_NAME_MAX 256

typedef struct arb_dist_s arb_dist_t;
typedef struct arb_dconn_s arb_dconn_t;

enum { ARB_DCONN_CONNECTING = 0, ARB_DCONN_UP, ARB_DCONN_DOWN };

typedef struct arb_dist_ops_s {
  /* A pass-through frame: data is the control term and the message
  ** (each with its version byte), after the 'p'. */
  void (*frame)(void *ud, arb_dconn_t *c, const char *data, size_t len);
  /* The handshake is done (either direction). */
  void (*up)(void *ud, arb_dconn_t *c);
  /* The connection is gone (or was never made): reason is one line. */
  void (*down)(void *ud, arb_dconn_t *c, const char *reason);
  /* A publish job finished: 0 or an error line in reason. */
  void (*published)(void *ud, int ok, const char *reason);
} arb_dist_ops_t;

struct arb_dconn_s {
  arb_dconn_t *next;
  arb_dist_t *d;
  uv_tcp_t tcp;
  int state;         /* ARB_DCONN_* */
  int handle_open;   /* tcp was initialised and not yet closed */
  int outgoing;      /* we connected (else accepted) */
  char node[ARB_DIST_NAME_MAX];
  char *rbuf;        /* bytes read, not yet framed */
  size_t rlen, rcap;
  char *pending;     /* frames queued while connecting */
  size_t plen, pcap;
  char *obuf;        /* frames sent this loop turn, written before polling */
  size_t olen, ocap;
  size_t queued;     /* bytes in uv_write requests not yet done */
  uint64_t last_read, last_write; /* uv_now */
  uint64_t id;       /* counts connections, for the embedder */
};

/* Starts the local node "alive@host" with cookie: listens on an
** ephemeral port (all interfaces) and publishes it to epmd on a pool job
** (ops->published tells how that went).  Returns NULL with a message in
** err if it cannot start at all. */
arb_dist_t *arb_dist_start(uv_loop_t *loop, const char *alive,
                           const char *host, const char *cookie,
                           unsigned handshake_ms, const arb_dist_ops_t *ops,
                           void *ud, char *err, size_t errlen);

/* Stops the node: unpublishes, closes every connection without calling
** ops->down, stops accepting.  Memory goes once pending jobs finish. */
void arb_dist_stop(arb_dist_t *d);

/* Our node's name, "alive@host"; our creation (for pids we make). */
const char *arb_dist_name(const arb_dist_t *d);
unsigned arb_dist_creation(const arb_dist_t *d);
int arb_dist_port(const arb_dist_t *d);

/* The connection to node in any state but DOWN, or NULL. */
arb_dconn_t *arb_dist_find(arb_dist_t *d, const char *node);

/* The connection to node, starting a handshake (a pool job) if there is
** none.  NULL only when out of memory or the name is too long. */
arb_dconn_t *arb_dist_connect(arb_dist_t *d, const char *node);

/* Sends a pass-through frame: the control term and the message (mlen 0:
** none), each already with its version byte.  Queued while connecting;
** dropped when down.  Returns 0, or -1 if the connection was dropped
** (its queue overflowed). */
int arb_dist_send(arb_dconn_t *c, const char *ctrl, size_t clen,
                  const char *msg, size_t mlen);

/* Closes a connection (ops->down is called with reason). */
void arb_dist_close(arb_dconn_t *c, const char *reason);

/* Iterates the connections (any state): first, then c->next. */
arb_dconn_t *arb_dist_first(arb_dist_t *d);

#endif
