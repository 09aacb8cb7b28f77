/*
** control.c: the control socket (server and client) and the watcher.
**
** Connections are kept in a list with an id, so an answer can come later
** from Lua (a reload takes a while) and find its client, or find that it
** has gone.  Each connection has a deadline timer: for its request while
** it reads, for the client to take the answer while it writes; none while
** the host works on the request.  Handles are malloc'ed and freed in
** their close callbacks, as libuv requires.
*/
/* SO_PEERCRED's struct ucred, realpath and umask need GNU on top of
** POSIX. */
#define _GNU_SOURCE

#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The peer of a connected Unix socket: its uid, or -1. */
static int peer_uid(int fd, uid_t *uid) {
#ifdef SO_PEERCRED
  struct ucred cred;
  socklen_t n = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) != 0) return -1;
  *uid = cred.uid;
  return 0;
#else
  gid_t gid;
  return getpeereid(fd, uid, &gid);
#endif
}

/* Whom both ends talk to: their own user, and root (who can reach every
** socket anyway). */
static int trusted_uid(uid_t uid) { return uid == geteuid() || uid == 0; }

int arb_control_check_path(const char *path, char *err, size_t errlen) {
  size_t n = strlen(path);
  if (n == 0) {
    snprintf(err, errlen, "the control socket path is empty");
    return -1;
  }
  if (n > ARB_CONTROL_PATH_MAX) {
    snprintf(err, errlen,
             "control socket path too long for a Unix socket (%zu bytes, at "
             "most %zu): %s",
             n, (size_t)ARB_CONTROL_PATH_MAX, path);
    return -1;
  }
  return 0;
}

static void set_addr(struct sockaddr_un *addr, const char *path) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, strlen(path)); /* checked to fit */
}

/* {======================================================================
** Server
** ======================================================================*/

enum { READING, WAITING, WRITING };

typedef struct conn_s {
  uv_pipe_t pipe;
  uv_timer_t deadline;
  struct conn_s *next;
  arb_control_t *owner;
  uint64_t id;
  int state;
  int counted; /* counts toward ARB_CONTROL_MAX_CONNS */
  int closing;
  int open_handles;
  size_t len, cap;
  char *buf; /* small, or a malloc'ed one big enough for an eval */
  char small[ARB_CONTROL_MAX_REQUEST];
} conn_t;

struct arb_control_s {
  uv_pipe_t server;
  arb_control_cb cb;
  void *ud;
  conn_t *conns;
  int nconns;
  uint64_t next_id;
  dev_t dev; /* the socket file this host made */
  ino_t ino;
  char path[ARB_CONTROL_PATH_MAX + 1];
};

static void free_handle(uv_handle_t *h) { free(h->data); }

static void release_conn(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles == 0) {
    if (c->buf != c->small) free(c->buf);
    free(c);
  }
}

/* Makes room for need bytes in c's buffer (at most a request line and an
** eval chunk, the parser's bound).  0, or -1 out of memory. */
static int grow_buffer(conn_t *c, size_t need) {
  if (need <= c->cap) return 0;
  char *big = malloc(need);
  if (big == NULL) return -1;
  memcpy(big, c->buf, c->len);
  if (c->buf != c->small) free(c->buf);
  c->buf = big;
  c->cap = need;
  return 0;
}

static void close_conn(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  arb_control_t *ctl = c->owner;
  for (conn_t **p = &ctl->conns; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  if (c->counted) ctl->nconns--;
  uv_close((uv_handle_t *)&c->pipe, release_conn);
  uv_close((uv_handle_t *)&c->deadline, release_conn);
}

static void write_done(uv_write_t *req, int status) {
  conn_t *c = req->data;
  (void)status;
  free(req);
  close_conn(c); /* a no-op when the close came first */
}

static void deadline_passed(uv_timer_t *t);

/* Writes "CODE\ntext" to c, then closes it; the client has
** ARB_CONTROL_WRITE_MS to take it. */
static void answer(conn_t *c, int code, const char *text) {
  size_t n = strlen(text);
  /* The request and its buffer travel together, freed in write_done. */
  uv_write_t *req = malloc(sizeof(*req) + n + 16);
  if (req == NULL) {
    close_conn(c);
    return;
  }
  char *body = (char *)(req + 1);
  int head = snprintf(body, 16, "%d\n", code);
  memcpy(body + head, text, n);
  uv_buf_t buf = uv_buf_init(body, (unsigned)(head + n));
  req->data = c;
  c->state = WRITING;
  uv_timer_start(&c->deadline, deadline_passed, ARB_CONTROL_WRITE_MS, 0);
  if (uv_write(req, (uv_stream_t *)&c->pipe, &buf, 1, write_done) != 0) {
    free(req);
    close_conn(c);
  }
}

static void deadline_passed(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state == READING) {
    uv_read_stop((uv_stream_t *)&c->pipe);
    char msg[96];
    snprintf(msg, sizeof(msg),
             "bad request: no complete request line within %d s",
             ARB_CONTROL_REQUEST_MS / 1000);
    answer(c, ARB_CONTROL_BAD_REQUEST, msg);
  } else {
    close_conn(c); /* the client does not take its answer */
  }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn_t *c = h->data;
  (void)hint;
  /* Never empty: the parser rejects a full buffer without a newline, and
  ** read_cb grows it for an eval's chunk before it fills. */
  buf->base = c->buf + c->len;
  buf->len = c->cap - c->len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  int at_eof = 0;
  (void)buf;
  if (n == UV_EOF) {
    at_eof = 1;
  } else if (n < 0) {
    close_conn(c);
    return;
  } else if (n == 0) {
    return;
  }
  if (!at_eof) c->len += (size_t)n;
  if (at_eof && c->len == 0) { /* connected and left: a liveness probe */
    close_conn(c);
    return;
  }
  arb_control_req_t req;
  size_t used;
  char err[192];
  int r = arb_control_parse_request(c->buf, c->len, at_eof, &req, &used, err,
                                    sizeof(err));
  if (r == ARB_CONTROL_MORE) {
    if (grow_buffer(c, used) != 0) {
      uv_read_stop(s);
      answer(c, 1, "the host is out of memory");
      return;
    }
    if (c->len < c->cap) return;
    /* Full, and the parser wants no more: never happens (it answers BAD
    ** for a full line buffer and asks for an eval's room); close. */
    uv_read_stop(s);
    close_conn(c);
    return;
  }
  uv_read_stop(s);
  if (r == ARB_CONTROL_BAD) {
    answer(c, ARB_CONTROL_BAD_REQUEST, err);
    return;
  }
  c->state = WAITING;
  uv_timer_stop(&c->deadline);
  c->owner->cb(c->owner->ud, c->id, &req);
}

static void on_connection(uv_stream_t *server, int status) {
  arb_control_t *ctl = server->data;
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return;
  uv_pipe_init(server->loop, &c->pipe, 0);
  uv_timer_init(server->loop, &c->deadline);
  c->pipe.data = c->deadline.data = c;
  c->open_handles = 2;
  c->buf = c->small;
  c->cap = sizeof(c->small);
  c->owner = ctl;
  c->id = ++ctl->next_id;
  c->next = ctl->conns;
  ctl->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
    close_conn(c);
    return;
  }
  uv_os_fd_t fd;
  uid_t uid = (uid_t)-1;
  char msg[128];
  if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 || peer_uid(fd, &uid) != 0 ||
      !trusted_uid(uid)) {
    char whom[48] = "root";
    if (geteuid() != 0)
      snprintf(whom, sizeof(whom), "uid %u and root", (unsigned)geteuid());
    snprintf(msg, sizeof(msg),
             "permission denied: uid %ld may not control this host (only %s)",
             uid == (uid_t)-1 ? -1L : (long)uid, whom);
    answer(c, 1, msg);
    return;
  }
  if (ctl->nconns >= ARB_CONTROL_MAX_CONNS) {
    snprintf(msg, sizeof(msg),
             "the host is busy: %d control connections are open; try again",
             ARB_CONTROL_MAX_CONNS);
    answer(c, 1, msg);
    return;
  }
  c->counted = 1;
  ctl->nconns++;
  c->state = READING;
  uv_timer_start(&c->deadline, deadline_passed, ARB_CONTROL_REQUEST_MS, 0);
  uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* Is a host accepting on path?  1 yes, 0 no (nothing or a stale file).
** Never blocks: a full backlog (EAGAIN) means someone listens. */
static int someone_listens(const char *path) {
  struct sockaddr_un addr;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  set_addr(&addr, path);
  int ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ||
           errno == EAGAIN || errno == EINPROGRESS;
  close(fd);
  return ok;
}

int arb_control_listen(arb_control_t **out, uv_loop_t *loop, const char *path,
                       arb_control_cb cb, void *ud, char *err, size_t errlen) {
  struct stat st;
  if (arb_control_check_path(path, err, errlen) != 0) return UV_ENAMETOOLONG;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen, "%s exists and is not a socket", path);
      return UV_EEXIST;
    }
    if (st.st_uid != geteuid()) {
      snprintf(err, errlen,
               "%s is a socket of uid %u, not yours (uid %u); not replacing it",
               path, (unsigned)st.st_uid, (unsigned)geteuid());
      return UV_EEXIST;
    }
    if (someone_listens(path)) {
      snprintf(err, errlen, "another host is already serving on %s", path);
      return UV_EADDRINUSE;
    }
    unlink(path); /* stale: its host is gone */
  }
  arb_control_t *ctl = calloc(1, sizeof(*ctl));
  if (ctl == NULL) {
    snprintf(err, errlen, "out of memory");
    return UV_ENOMEM;
  }
  memcpy(ctl->path, path, strlen(path) + 1);
  ctl->cb = cb;
  ctl->ud = ud;
  uv_pipe_init(loop, &ctl->server, 0);
  ctl->server.data = ctl;
  mode_t old = umask(0077); /* the socket file is created 0600 */
  int rc = uv_pipe_bind(&ctl->server, path);
  umask(old);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&ctl->server, ARB_CONTROL_MAX_CONNS,
                   on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(rc));
    uv_close((uv_handle_t *)&ctl->server, free_handle);
    return rc;
  }
  chmod(path, 0600);
  if (lstat(path, &st) == 0) {
    ctl->dev = st.st_dev;
    ctl->ino = st.st_ino;
  }
  *out = ctl;
  return 0;
}

int arb_control_reply(arb_control_t *ctl, uint64_t id, int code,
                      const char *text) {
  conn_t *c = ctl->conns;
  while (c && c->id != id) c = c->next;
  if (c == NULL || c->state != WAITING) return UV_ENOENT;
  answer(c, code, text);
  return 0;
}

void arb_control_close(arb_control_t *ctl) {
  if (ctl == NULL) return;
  while (ctl->conns) close_conn(ctl->conns);
  /* Only our own file: another host may serve on the path by now. */
  struct stat st;
  if (lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev &&
      st.st_ino == ctl->ino)
    unlink(ctl->path);
  uv_close((uv_handle_t *)&ctl->server, free_handle);
}

/* }====================================================================== */

/* {======================================================================
** Watching a script's folder
** ======================================================================*/

struct arb_watch_s {
  uv_fs_event_t event;
  uv_timer_t quiet;
  void (*cb)(void *ud);
  void *ud;
  int quiet_ms;
  int open_handles;
};

static void watch_release(uv_handle_t *h) {
  arb_watch_t *w = h->data;
  if (--w->open_handles == 0) free(w);
}

static void quiet_passed(uv_timer_t *t) {
  arb_watch_t *w = t->data;
  w->cb(w->ud);
}

static void fs_changed(uv_fs_event_t *e, const char *name, int events,
                       int status) {
  arb_watch_t *w = e->data;
  (void)events;
  if (status < 0) return;
  size_t n = name ? strlen(name) : 0;
  if (n < 4 || strcmp(name + n - 4, ".lua") != 0) return;
  /* Restarting the timer is what coalesces a burst. */
  uv_timer_start(&w->quiet, quiet_passed, (uint64_t)w->quiet_ms, 0);
}

int arb_watch_start(arb_watch_t **out, uv_loop_t *loop, const char *file,
                    int quiet_ms, void (*cb)(void *ud), void *ud) {
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", file);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  arb_watch_t *w = calloc(1, sizeof(*w));
  if (w == NULL) return UV_ENOMEM;
  w->cb = cb;
  w->ud = ud;
  w->quiet_ms = quiet_ms;
  uv_fs_event_init(loop, &w->event);
  uv_timer_init(loop, &w->quiet);
  w->event.data = w->quiet.data = w;
  w->open_handles = 2;
  int rc = uv_fs_event_start(&w->event, fs_changed, dir, 0);
  if (rc != 0) {
    arb_watch_close(w);
    return rc;
  }
  *out = w;
  return 0;
}

void arb_watch_close(arb_watch_t *w) {
  if (w == NULL) return;
  uv_fs_event_stop(&w->event);
  uv_timer_stop(&w->quiet);
  uv_close((uv_handle_t *)&w->event, watch_release);
  uv_close((uv_handle_t *)&w->quiet, watch_release);
}

/* }====================================================================== */

/* {======================================================================
** The default path
** ======================================================================*/

#define ADVICE "set XDG_RUNTIME_DIR or give --control PATH"

/* $XDG_RUNTIME_DIR: ours, and nobody else may write in it. */
static int check_runtime_dir(const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    snprintf(err, errlen, "XDG_RUNTIME_DIR=%s: %s; fix it or give --control "
             "PATH", dir, strerror(errno));
    return -1;
  }
  const char *why = !S_ISDIR(st.st_mode)      ? "is not a directory"
                    : st.st_uid != geteuid()  ? "is not owned by you"
                    : (st.st_mode & 022) != 0 ? "is writable by others"
                                              : NULL;
  if (why == NULL) return 0;
  snprintf(err, errlen,
           "XDG_RUNTIME_DIR=%s %s (owner uid %u, mode %04o); fix it or give "
           "--control PATH",
           dir, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
  return -1;
}

/* ${TMPDIR:-/tmp}/arbor-UID: made by mkdir 0700, then checked with lstat,
** so a directory or symlink someone else put there first is refused. */
static int private_dir(const char *dir, int create, char *err, size_t errlen) {
  struct stat st;
  if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s; " ADVICE, dir,
             strerror(errno));
    return -1;
  }
  if (lstat(dir, &st) != 0) {
    if (errno == ENOENT && !create) return 0; /* no host has made it */
    snprintf(err, errlen, "%s: %s; " ADVICE, dir, strerror(errno));
    return -1;
  }
  const char *why = S_ISLNK(st.st_mode)            ? "is a symbolic link"
                    : !S_ISDIR(st.st_mode)         ? "is not a directory"
                    : st.st_uid != geteuid()       ? "is not owned by you"
                    : (st.st_mode & 07777) != 0700 ? "does not have mode 0700"
                                                   : NULL;
  if (why == NULL) return 0;
  snprintf(err, errlen,
           "%s %s (owner uid %u, mode %04o): it is not a private directory; "
           "remove it, or " ADVICE,
           dir, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
  return -1;
}

int arb_control_default_path(const char *script, int create, char *buf,
                             size_t len, char *err, size_t errlen) {
  char real[4096], dir[4096];
  const char *name = realpath(script, real) ? real : script;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char *p = name; *p; p++) {
    h ^= (unsigned char)*p;
    h *= 1099511628211ull;
  }
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  const char *tmp = getenv("TMPDIR");
  if (xdg && xdg[0] == '/') {
    if (check_runtime_dir(xdg, err, errlen) != 0) return -1;
    snprintf(dir, sizeof(dir), "%s", xdg);
  } else {
    if (tmp == NULL || tmp[0] != '/') tmp = "/tmp";
    snprintf(dir, sizeof(dir), "%s/arbor-%u", tmp, (unsigned)geteuid());
    if (private_dir(dir, create, err, errlen) != 0) return -1;
  }
  int n = snprintf(buf, len, "%s/arbor-%016llx.sock", dir,
                   (unsigned long long)h);
  if (n < 0 || (size_t)n >= len || (size_t)n > ARB_CONTROL_PATH_MAX) {
    snprintf(err, errlen,
             "the default control socket path in %s is too long for a Unix "
             "socket (%d bytes, at most %zu); give --control PATH",
             dir, n, (size_t)ARB_CONTROL_PATH_MAX);
    return -1;
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Client
** ======================================================================*/

#define MAX_ANSWER (64u << 20)

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready,
** 0 deadline, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

/* Sets *text to a message built from fmt; returns rc. */
static int client_fail(int rc, char **text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int client_fail(int rc, char **text, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  *text = strdup(msg);
  return rc;
}

/* Connects fd to path by the deadline.  0, or -1 with errno set
** (ETIMEDOUT when the deadline passed). */
static int connect_by(int fd, const struct sockaddr_un *addr,
                      int64_t deadline) {
  for (;;) {
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
      return 0;
    if (errno == EAGAIN) { /* the backlog is full: the host is not accepting */
      if (now_ms() >= deadline) break;
      poll(NULL, 0, 10);
      continue;
    }
    if (errno != EINPROGRESS && errno != EINTR) return -1;
    int r = wait_fd(fd, POLLOUT, deadline);
    if (r == 0) break;
    int soerr = 0;
    socklen_t n = sizeof(soerr);
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &n) != 0)
      return -1;
    if (soerr == 0) return 0;
    errno = soerr;
    return -1;
  }
  errno = ETIMEDOUT;
  return -1;
}

static int timed_out(const char *path, int timeout_ms, char **text) {
  return client_fail(ARB_CONTROL_TIMEOUT, text, "no answer from %s within %g s",
                     path, timeout_ms / 1000.0);
}

static int exchange(int fd, const char *path, const arb_control_req_t *req,
                    int timeout_ms, char **text) {
  int64_t deadline = now_ms() + timeout_ms;
  struct sockaddr_un addr;
  set_addr(&addr, path);
  if (connect_by(fd, &addr, deadline) != 0) {
    if (errno == ETIMEDOUT) return timed_out(path, timeout_ms, text);
    return client_fail(-1, text, "no host is serving on %s (%s)", path,
                       strerror(errno));
  }
  uid_t uid;
  if (peer_uid(fd, &uid) != 0)
    return client_fail(-1, text, "cannot tell who serves %s (%s)", path,
                       strerror(errno));
  if (!trusted_uid(uid))
    return client_fail(-1, text,
                       "%s is served by uid %u, not by you (uid %u) or root; "
                       "not talking to it",
                       path, (unsigned)uid, (unsigned)geteuid());

  char head[64];
  size_t hn = arb_control_format_request(req, head, sizeof(head)), sent = 0;
  size_t n = hn + (req->cmd == ARB_CONTROL_EVAL ? req->body_len : 0);
  char *line = malloc(n);
  if (line == NULL) return client_fail(-1, text, "out of memory");
  memcpy(line, head, hn);
  if (n > hn) memcpy(line + hn, req->body, n - hn);
  int hung_up = 0; /* errno of a failed send */
  while (sent < n && !hung_up) {
    ssize_t w = send(fd, line + sent, n - sent, MSG_NOSIGNAL);
    if (w > 0) {
      sent += (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      int r = wait_fd(fd, POLLOUT, deadline);
      if (r <= 0) {
        int e = errno;
        free(line);
        if (r == 0) return timed_out(path, timeout_ms, text);
        return client_fail(-1, text, "cannot write to %s (%s)", path,
                           strerror(e));
      }
    } else {
      /* The host may have answered before it closed (busy, permission
      ** denied): that answer is still ours to read. */
      hung_up = errno;
    }
  }
  free(line);

  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return client_fail(-1, text, "out of memory");
  for (;;) {
    if (len + 1 == cap) {
      char *bigger = cap < MAX_ANSWER ? realloc(buf, cap * 2) : NULL;
      if (bigger == NULL) {
        free(buf);
        return client_fail(-1, text, "the answer from %s is too large (over "
                           "%zu bytes)", path, len);
      }
      buf = bigger;
      cap *= 2;
    }
    ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
    if (got > 0) {
      len += (size_t)got;
      continue;
    }
    /* A host that closes without reading all we sent (a rejection, a
    ** bad request) resets the connection once its answer is read. */
    if (got == 0 || errno == ECONNRESET) break;
    int r = errno == EAGAIN || errno == EINTR ? wait_fd(fd, POLLIN, deadline)
                                              : -1;
    if (r > 0) continue;
    int e = errno;
    free(buf);
    if (r == 0) return timed_out(path, timeout_ms, text);
    return client_fail(-1, text, "cannot read from %s (%s)", path,
                       strerror(e));
  }
  buf[len] = '\0';
  int code;
  size_t at;
  if (len == 0) {
    free(buf);
    if (hung_up)
      return client_fail(-1, text, "the host on %s hung up before taking the "
                         "request (%s)", path, strerror(hung_up));
    return client_fail(-1, text, "the host on %s closed without answering",
                       path);
  }
  if (arb_control_parse_reply(buf, len, &code, &at) != 0) {
    free(buf);
    return client_fail(-1, text, "the host on %s sent a malformed answer",
                       path);
  }
  memmove(buf, buf + at, len - at + 1);
  *text = buf;
  return code;
}

int arb_control_request(const char *path, const arb_control_req_t *req,
                        int timeout_ms, char **text) {
  char err[256];
  *text = NULL;
  if (arb_control_check_path(path, err, sizeof(err)) != 0)
    return client_fail(-1, text, "%s", err);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return client_fail(-1, text, "cannot make a socket (%s)", strerror(errno));
  int code = exchange(fd, path, req, timeout_ms, text);
  close(fd);
  return code;
}

/* }====================================================================== */
