/*
** dist.c: the local Erlang node's sockets on the loop (see dist.h).
**
** Lifetime.  The node holds a reference for itself until arb_dist_stop,
** one per job on the thread pool and one per open uv handle of its own
** (the listen poll, the tick timer); it is freed when the last goes.  A
** connection is freed in its handle's close callback, or (if it never
** got a handle) when its connect job returns; a job keeps its
** connection's memory by setting job_pending.
*/
#include "dist.h"

#include <arpa/inet.h>
#include <ei.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { JOB_PUBLISH, JOB_CONNECT, JOB_ACCEPT };

struct arb_dist_s {
  uv_loop_t *loop;
  ei_cnode ec;
  char name[ARB_DIST_NAME_MAX];
  int lfd, port;
  uv_poll_t lpoll;
  int accepting;
  int epmd_fd;
  uv_timer_t tick;
  uv_prepare_t flush; /* writes what the slices of this turn sent */
  int flushing;
  arb_dconn_t *conns;
  arb_dist_ops_t ops;
  void *ud;
  unsigned handshake_ms;
  int stopped;
  int refs;
  uint64_t next_id;
};

typedef struct job_s {
  uv_work_t req;
  arb_dist_t *d;
  arb_dconn_t *c;
  ei_cnode ec;
  int kind, fd, err, lfd, port;
  unsigned ms;
  char node[ARB_DIST_NAME_MAX];
  ErlConnect info;
} job_t;

/* Connections in the middle of a connect job carry this mark. */
#define JOB_PENDING ((uint64_t)1 << 63)

/* {======================================================================
** The handshake's flags
**
** ei (OTP 25) does not offer DFLAG_DIST_MONITOR_NAME, and a BEAM node
** then never sends MONITOR_P_EXIT to us (it watches our names only
** through the connection).  We handle named monitors and monitor exits,
** so ei's own socket layer is wrapped: while ei writes the handshake,
** the flags of its name or challenge message ('N': tag, then 8 bytes of
** flags) get both monitor bits.  The digests cover the cookie and the
** challenges only, so the handshake stays valid.  ei's default TCP
** callbacks are exported by libei (not declared in ei.h).
** ======================================================================*/

extern ei_socket_callbacks ei_default_socket_callbacks;

#define DFLAG_DIST_MONITOR 0x08u
#define DFLAG_DIST_MONITOR_NAME 0x20u

static int flagging_write(void *ctx, const char *buf, ssize_t *len,
                          unsigned tmo) {
  /* a handshake packet: 2-byte length, tag 'N', 8 bytes of flags */
  if (*len >= 11 && *len < 1024 && buf[2] == 'N' &&
      ((unsigned char)buf[0] << 8 | (unsigned char)buf[1]) == *len - 2) {
    char copy[1024];
    memcpy(copy, buf, (size_t)*len);
    copy[10] = (char)((unsigned char)copy[10] | DFLAG_DIST_MONITOR |
                      DFLAG_DIST_MONITOR_NAME);
    return ei_default_socket_callbacks.write(ctx, copy, len, tmo);
  }
  return ei_default_socket_callbacks.write(ctx, buf, len, tmo);
}

static ei_socket_callbacks flagging_callbacks;

/* }====================================================================== */

static void unref(arb_dist_t *d) {
  if (--d->refs == 0) {
    if (d->lfd >= 0) close(d->lfd);
    free(d);
  }
}

static void handle_unref(uv_handle_t *h) { unref(h->data); }

static void conn_free(arb_dconn_t *c) {
  free(c->rbuf);
  free(c->pending);
  free(c->obuf);
  free(c);
}

static void unlink_conn(arb_dconn_t *c) {
  arb_dist_t *d = c->d;
  for (arb_dconn_t **p = &d->conns; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      return;
    }
}

static void conn_closed(uv_handle_t *h) {
  arb_dconn_t *c = h->data;
  arb_dist_t *d = c->d;
  conn_free(c);
  unref(d);
}

/* Ends c: one down callback (unless the node is stopping), then the
** handle closes and the memory goes. */
static void conn_down(arb_dconn_t *c, const char *reason, int notify) {
  if (c->state == ARB_DCONN_DOWN) return;
  c->state = ARB_DCONN_DOWN;
  unlink_conn(c);
  arb_dist_t *d = c->d;
  if (notify && !d->stopped && d->ops.down) d->ops.down(d->ud, c, reason);
  if (c->handle_open) {
    c->handle_open = 0;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
  } else if (!(c->id & JOB_PENDING)) {
    conn_free(c);
    unref(d);
  }
}

void arb_dist_close(arb_dconn_t *c, const char *reason) {
  conn_down(c, reason, 1);
}

/* {======================================================================
** Writing
** ======================================================================*/

typedef struct wreq_s {
  uv_write_t req;
  arb_dconn_t *c;
  size_t len;
  char data[];
} wreq_t;

static void written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  arb_dconn_t *c = w->c;
  c->queued -= w->len;
  free(w);
  if (status < 0 && status != UV_ECANCELED && c->state == ARB_DCONN_UP)
    conn_down(c, uv_strerror(status), 1);
}

/* Writes bytes now if the socket takes them, else queues the rest. */
static int write_bytes(arb_dconn_t *c, const char *data, size_t len) {
  if (len == 0) return 0;
  c->last_write = uv_now(c->d->loop);
  size_t done = 0;
  if (c->queued == 0) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0) done = (size_t)n;
    else if (n != UV_EAGAIN && n < 0) {
      conn_down(c, uv_strerror(n), 1);
      return -1;
    }
  }
  if (done == len) return 0;
  if (c->queued + (len - done) > ARB_DIST_QUEUE_MAX) {
    conn_down(c, "output queue overflow (the node does not read)", 1);
    return -1;
  }
  wreq_t *w = malloc(sizeof(*w) + (len - done));
  if (w == NULL) {
    conn_down(c, "out of memory", 1);
    return -1;
  }
  w->c = c;
  w->len = len - done;
  memcpy(w->data, data + done, len - done);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, written);
  if (rc < 0) {
    free(w);
    conn_down(c, uv_strerror(rc), 1);
    return -1;
  }
  c->queued += w->len;
  return 0;
}

static int append(char **buf, size_t *len, size_t *cap, const char *data,
                  size_t n) {
  if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 256;
    while (ncap < *len + n) ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (nb == NULL) return -1;
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  return 0;
}

/* Before the loop polls: each connection's frames of this turn go out
** in one write. */
static void flush_cb(uv_prepare_t *h) {
  arb_dist_t *d = h->data;
  arb_dconn_t *next;
  for (arb_dconn_t *c = d->conns; c; c = next) {
    next = c->next;
    if (c->state != ARB_DCONN_UP || c->olen == 0) continue;
    size_t n = c->olen;
    c->olen = 0;
    write_bytes(c, c->obuf, n);
    if (c->ocap > (1u << 20)) { /* give a big burst's buffer back */
      free(c->obuf);
      c->obuf = NULL;
      c->ocap = 0;
    }
  }
  uv_prepare_stop(h);
  d->flushing = 0;
}

int arb_dist_send(arb_dconn_t *c, const char *ctrl, size_t clen,
                  const char *msg, size_t mlen) {
  if (c->state == ARB_DCONN_DOWN) return -1;
  size_t total = 1 + clen + mlen;
  if (total > ARB_DIST_FRAME_MAX) return -1;
  char hdr[5] = {(char)(total >> 24), (char)(total >> 16), (char)(total >> 8),
                 (char)total, 'p'};
  int connecting = c->state == ARB_DCONN_CONNECTING;
  char **buf = connecting ? &c->pending : &c->obuf;
  size_t *len = connecting ? &c->plen : &c->olen;
  size_t *cap = connecting ? &c->pcap : &c->ocap;
  if (*len + c->queued + 5 + clen + mlen > ARB_DIST_QUEUE_MAX) {
    conn_down(c, "output queue overflow (the node does not read)", 1);
    return -1;
  }
  if (append(buf, len, cap, hdr, 5) != 0 ||
      append(buf, len, cap, ctrl, clen) != 0 ||
      (mlen && append(buf, len, cap, msg, mlen) != 0)) {
    conn_down(c, "out of memory", 1);
    return -1;
  }
  arb_dist_t *d = c->d;
  if (!connecting && !d->flushing) {
    d->flushing = 1;
    uv_prepare_start(&d->flush, flush_cb);
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Reading and framing
** ======================================================================*/

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  arb_dconn_t *c = h->data;
  (void)suggested;
  size_t want = 65536;
  if (c->rcap - c->rlen < want) {
    size_t ncap = c->rcap ? c->rcap : want;
    while (ncap - c->rlen < want) ncap *= 2;
    char *nb = realloc(c->rbuf, ncap);
    if (nb == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->rbuf = nb;
    c->rcap = ncap;
  }
  *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  arb_dconn_t *c = s->data;
  arb_dist_t *d = c->d;
  (void)buf;
  if (n < 0) {
    conn_down(c, n == UV_EOF ? "connection closed" : uv_strerror((int)n), 1);
    return;
  }
  if (n == 0) return;
  c->rlen += (size_t)n;
  c->last_read = uv_now(d->loop);
  size_t off = 0;
  while (c->state == ARB_DCONN_UP && c->rlen - off >= 4) {
    const unsigned char *p = (const unsigned char *)c->rbuf + off;
    uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                   (uint32_t)p[2] << 8 | p[3];
    if (len > ARB_DIST_FRAME_MAX) {
      conn_down(c, "frame over 64 MiB", 1);
      return;
    }
    if (c->rlen - off - 4 < len) break;
    if (len == 0) {
      /* A tick: answer it, as a node that is alive does. */
      static const char tick[4] = {0, 0, 0, 0};
      if (c->queued == 0) write_bytes(c, tick, 4);
    } else if (p[4] == 'p') {
      d->ops.frame(d->ud, c, c->rbuf + off + 5, len - 1);
    } else {
      conn_down(c, "unexpected frame type after the handshake", 1);
      return;
    }
    off += 4 + (size_t)len;
  }
  if (c->state != ARB_DCONN_UP) return;
  memmove(c->rbuf, c->rbuf + off, c->rlen - off);
  c->rlen -= off;
  if (c->rcap > (1u << 20) && c->rlen < c->rcap / 4) {
    /* Give a big frame's buffer back once it is read. */
    char *nb = realloc(c->rbuf, c->rlen ? c->rlen : 1);
    if (nb) {
      c->rbuf = nb;
      c->rcap = c->rlen ? c->rlen : 1;
    }
  }
}

/* Makes c live on fd (a finished handshake). */
static int conn_open(arb_dconn_t *c, int fd) {
  arb_dist_t *d = c->d;
  /* ei keeps a table of the sockets it connected; take our own copy of
  ** the descriptor and let ei forget its one. */
  int mine = dup(fd);
  ei_close_connection(fd);
  if (mine < 0) return -1;
  uv_tcp_init(d->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_tcp_open(&c->tcp, mine) != 0) {
    close(mine);
    uv_close((uv_handle_t *)&c->tcp, NULL);
    return -1;
  }
  c->handle_open = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = ARB_DCONN_UP;
  c->last_read = c->last_write = uv_now(d->loop);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Handshakes and epmd on the thread pool
** ======================================================================*/

static void job_run(uv_work_t *req) {
  job_t *j = req->data;
  erl_errno = 0;
  switch (j->kind) {
    case JOB_PUBLISH:
      j->fd = ei_publish_tmo(&j->ec, j->port, j->ms);
      break;
    case JOB_CONNECT:
      j->fd = ei_connect_tmo(&j->ec, j->node, j->ms);
      break;
    default:
      j->fd = ei_accept_tmo(&j->ec, j->lfd, &j->info, j->ms);
  }
  j->err = erl_errno;
  if (j->err == 0) j->err = errno;
}

static const char *job_error(job_t *j, char *buf, size_t len) {
  if (j->err == ETIMEDOUT)
    snprintf(buf, len, "timed out after %u ms", j->ms);
  else if (j->err == EIO || j->err == 0)
    snprintf(buf, len, "handshake failed (is the node up, and the "
                       "cookie the same?)");
  else
    snprintf(buf, len, "%s", strerror(j->err));
  return buf;
}

static void start_accepting(arb_dist_t *d);

static arb_dconn_t *conn_new(arb_dist_t *d, const char *node, int outgoing) {
  arb_dconn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->d = d;
  c->outgoing = outgoing;
  size_t n = strnlen(node, sizeof(c->node) - 1);
  memcpy(c->node, node, n);
  c->node[n] = '\0';
  c->id = ++d->next_id;
  c->next = d->conns;
  d->conns = c;
  d->refs++;
  return c;
}

static void job_done(uv_work_t *req, int status) {
  job_t *j = req->data;
  arb_dist_t *d = j->d;
  char why[200];
  (void)status;
  if (j->kind == JOB_PUBLISH) {
    if (j->fd >= 0 && d->stopped) {
      close(j->fd);
    } else if (j->fd >= 0) {
      d->epmd_fd = j->fd;
      if (d->ops.published) d->ops.published(d->ud, 1, NULL);
    } else if (!d->stopped && d->ops.published) {
      char buf[240];
      snprintf(buf, sizeof(buf), "cannot register with epmd: %s",
               j->err == ECONNREFUSED
                   ? "epmd is not running (start it with `epmd -daemon`)"
               : j->err == 0 || j->err == EIO
                   ? "the name is taken, or epmd refused it"
                   : job_error(j, why, sizeof(why)));
      d->ops.published(d->ud, 0, buf);
    }
  } else if (j->kind == JOB_CONNECT) {
    arb_dconn_t *c = j->c;
    c->id &= ~JOB_PENDING;
    if (c->state == ARB_DCONN_DOWN) {
      /* Closed (or the node stopped) while connecting. */
      if (j->fd >= 0) ei_close_connection(j->fd);
      conn_free(c);
      unref(d);
    } else if (j->fd < 0) {
      char buf[512];
      snprintf(buf, sizeof(buf), "connect %s: %s", c->node,
               job_error(j, why, sizeof(why)));
      conn_down(c, buf, 1);
    } else if (conn_open(c, j->fd) != 0) {
      conn_down(c, "cannot adopt the socket", 1);
    } else {
      if (d->ops.up) d->ops.up(d->ud, c);
      if (c->state == ARB_DCONN_UP && c->plen) {
        char *p = c->pending;
        size_t n = c->plen;
        c->pending = NULL;
        c->plen = c->pcap = 0;
        write_bytes(c, p, n);
        free(p);
      }
    }
  } else {
    d->accepting = 0;
    if (j->fd >= 0 && d->stopped) {
      ei_close_connection(j->fd);
    } else if (j->fd >= 0) {
      arb_dconn_t *old = arb_dist_find(d, j->info.nodename);
      if (old) conn_down(old, "replaced by a new connection", 1);
      arb_dconn_t *c = conn_new(d, j->info.nodename, 0);
      if (c == NULL) {
        ei_close_connection(j->fd);
      } else if (conn_open(c, j->fd) != 0) {
        conn_down(c, "cannot adopt the socket", 0);
      } else if (d->ops.up) {
        d->ops.up(d->ud, c);
      }
    }
    if (!d->stopped) start_accepting(d);
  }
  free(j);
  unref(d);
}

static job_t *job_new(arb_dist_t *d, int kind) {
  job_t *j = calloc(1, sizeof(*j));
  if (j == NULL) return NULL;
  j->req.data = j;
  j->d = d;
  j->kind = kind;
  j->ec = d->ec;
  j->ms = d->handshake_ms;
  j->lfd = d->lfd;
  j->port = d->port;
  j->fd = -1;
  return j;
}

static int job_queue(job_t *j) {
  if (uv_queue_work(j->d->loop, &j->req, job_run, job_done) != 0) {
    free(j);
    return -1;
  }
  j->d->refs++;
  return 0;
}

static void listen_ready(uv_poll_t *h, int status, int events) {
  arb_dist_t *d = h->data;
  (void)events;
  if (status < 0 || d->stopped || d->accepting) return;
  uv_poll_stop(&d->lpoll);
  job_t *j = job_new(d, JOB_ACCEPT);
  if (j == NULL || job_queue(j) != 0) {
    start_accepting(d);
    return;
  }
  d->accepting = 1;
}

static void start_accepting(arb_dist_t *d) {
  uv_poll_start(&d->lpoll, UV_READABLE, listen_ready);
}

arb_dconn_t *arb_dist_connect(arb_dist_t *d, const char *node) {
  arb_dconn_t *c = arb_dist_find(d, node);
  if (c) return c;
  if (d->stopped || strlen(node) >= ARB_DIST_NAME_MAX) return NULL;
  c = conn_new(d, node, 1);
  if (c == NULL) return NULL;
  job_t *j = job_new(d, JOB_CONNECT);
  if (j == NULL) {
    conn_down(c, "out of memory", 0);
    return NULL;
  }
  j->c = c;
  snprintf(j->node, sizeof(j->node), "%s", node);
  c->id |= JOB_PENDING;
  if (job_queue(j) != 0) {
    c->id &= ~JOB_PENDING;
    conn_down(c, "cannot queue the handshake", 0);
    return NULL;
  }
  return c;
}

/* }====================================================================== */

/* {======================================================================
** The node
** ======================================================================*/

/* Every tick period: drop connections silent for four periods, and
** tick those we have not written to. */
static void tick_cb(uv_timer_t *t) {
  arb_dist_t *d = t->data;
  uint64_t now = uv_now(d->loop);
  static const char tick[4] = {0, 0, 0, 0};
  arb_dconn_t *next;
  for (arb_dconn_t *c = d->conns; c; c = next) {
    next = c->next;
    if (c->state != ARB_DCONN_UP) continue;
    if (now - c->last_read > 4 * (uint64_t)ARB_DIST_TICK_MS)
      conn_down(c, "net_tick_timeout", 1);
    else if (now - c->last_write >= ARB_DIST_TICK_MS && c->queued == 0)
      write_bytes(c, tick, 4);
  }
}

arb_dist_t *arb_dist_start(uv_loop_t *loop, const char *alive,
                           const char *host, const char *cookie,
                           unsigned handshake_ms, const arb_dist_ops_t *ops,
                           void *ud, char *err, size_t errlen) {
  static int ei_ready = 0;
  if (!ei_ready) {
    if (ei_init() != 0) {
      snprintf(err, errlen, "erl_interface failed to initialise");
      return NULL;
    }
    ei_ready = 1;
  }
  arb_dist_t *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  d->loop = loop;
  d->ops = *ops;
  d->ud = ud;
  d->lfd = d->epmd_fd = -1;
  d->handshake_ms = handshake_ms;
  d->refs = 1;
  snprintf(d->name, sizeof(d->name), "%s@%s", alive, host);
  struct in_addr any;
  any.s_addr = htonl(INADDR_LOOPBACK);
  /* A creation that differs between runs, as epmd would hand out. */
  unsigned creation = (unsigned)(uv_hrtime() ^ (uint64_t)getpid()) | 4u;
  flagging_callbacks = ei_default_socket_callbacks;
  flagging_callbacks.write = flagging_write;
  flagging_callbacks.writev = NULL;
  if (ei_connect_xinit_ussi(&d->ec, host, alive, d->name, &any, cookie,
                            creation, &flagging_callbacks,
                            sizeof(flagging_callbacks), NULL) < 0) {
    snprintf(err, errlen, "ei_connect_xinit refused the node name %s",
             d->name);
    free(d);
    return NULL;
  }
  int port = 0;
  d->lfd = ei_listen(&d->ec, &port, 128);
  if (d->lfd < 0) {
    snprintf(err, errlen, "cannot listen: %s", strerror(errno));
    free(d);
    return NULL;
  }
  d->port = port;
  uv_poll_init(loop, &d->lpoll, d->lfd);
  d->lpoll.data = d;
  d->refs++;
  uv_timer_init(loop, &d->tick);
  d->tick.data = d;
  d->refs++;
  uv_prepare_init(loop, &d->flush);
  d->flush.data = d;
  d->refs++;
  uv_timer_start(&d->tick, tick_cb, ARB_DIST_TICK_MS, ARB_DIST_TICK_MS);
  uv_unref((uv_handle_t *)&d->tick);
  start_accepting(d);
  job_t *j = job_new(d, JOB_PUBLISH);
  if (j == NULL || job_queue(j) != 0) {
    snprintf(err, errlen, "cannot queue the epmd registration");
    arb_dist_stop(d);
    return NULL;
  }
  return d;
}

void arb_dist_stop(arb_dist_t *d) {
  if (d->stopped) return;
  d->stopped = 1;
  while (d->conns) conn_down(d->conns, "node stopped", 0);
  if (d->epmd_fd >= 0) close(d->epmd_fd);
  d->epmd_fd = -1;
  uv_poll_stop(&d->lpoll);
  uv_close((uv_handle_t *)&d->lpoll, handle_unref);
  uv_timer_stop(&d->tick);
  uv_close((uv_handle_t *)&d->tick, handle_unref);
  uv_prepare_stop(&d->flush);
  uv_close((uv_handle_t *)&d->flush, handle_unref);
  unref(d);
}

const char *arb_dist_name(const arb_dist_t *d) { return d->name; }
unsigned arb_dist_creation(const arb_dist_t *d) {
  return d->ec.creation;
}
int arb_dist_port(const arb_dist_t *d) { return d->port; }

arb_dconn_t *arb_dist_find(arb_dist_t *d, const char *node) {
  for (arb_dconn_t *c = d->conns; c; c = c->next)
    if (c->state != ARB_DCONN_DOWN && strcmp(c->node, node) == 0) return c;
  return NULL;
}

arb_dconn_t *arb_dist_first(arb_dist_t *d) { return d->conns; }

/* }====================================================================== */
