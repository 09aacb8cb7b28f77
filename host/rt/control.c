/*
** control.c: the control socket (server and client) and the watcher.
**
** Connections are kept in a list with an id, so an answer can come later
** from Lua (a reload takes a while) and find its client, or find that it
** has gone.  Handles are malloc'ed and freed in their close callbacks, as
** libuv requires.
*/
/* realpath and umask need X/Open on top of POSIX. */
#define _XOPEN_SOURCE 700

#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LINE 256

typedef struct conn_s {
  uv_pipe_t pipe;
  struct conn_s *next;
  arb_control_t *owner;
  uint64_t id;
  size_t len;
  int answered;
  char line[MAX_LINE];
} conn_t;

struct arb_control_s {
  uv_pipe_t server;
  arb_control_cb cb;
  void *ud;
  conn_t *conns;
  uint64_t next_id;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void free_handle(uv_handle_t *h) { free(h->data); }

static void unlist(conn_t *c) {
  for (conn_t **p = &c->owner->conns; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      return;
    }
  }
}

static void close_conn(conn_t *c) {
  unlist(c);
  c->pipe.data = c;
  uv_close((uv_handle_t *)&c->pipe, free_handle);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn_t *c = h->data;
  (void)hint;
  buf->base = c->line + c->len;
  buf->len = MAX_LINE - 1 - c->len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  (void)buf;
  if (n < 0) {
    close_conn(c);
    return;
  }
  c->len += (size_t)n;
  c->line[c->len] = '\0';
  char *nl = strchr(c->line, '\n');
  if (nl == NULL && c->len < MAX_LINE - 1) return;
  if (nl) *nl = '\0';
  uv_read_stop(s);
  c->owner->cb(c->owner->ud, c->id, c->line);
}

static void on_connection(uv_stream_t *server, int status) {
  arb_control_t *ctl = server->data;
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return;
  uv_pipe_init(server->loop, &c->pipe, 0);
  c->pipe.data = c;
  c->owner = ctl;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
    uv_close((uv_handle_t *)&c->pipe, free_handle);
    return;
  }
  c->id = ++ctl->next_id;
  c->next = ctl->conns;
  ctl->conns = c;
  uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* Is a host accepting on path?  1 yes, 0 no (nothing or a stale file). */
static int someone_listens(const char *path) {
  struct sockaddr_un addr;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
  int ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
  close(fd);
  return ok;
}

int arb_control_listen(arb_control_t **out, uv_loop_t *loop, const char *path,
                       arb_control_cb cb, void *ud, char *err, size_t errlen) {
  struct stat st;
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    snprintf(err, errlen, "control socket path too long: %s", path);
    return UV_ENAMETOOLONG;
  }
  if (stat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen, "%s exists and is not a socket", path);
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
  snprintf(ctl->path, sizeof(ctl->path), "%s", path);
  ctl->cb = cb;
  ctl->ud = ud;
  uv_pipe_init(loop, &ctl->server, 0);
  ctl->server.data = ctl;
  mode_t old = umask(0077); /* the socket file is created 0600 */
  int rc = uv_pipe_bind(&ctl->server, path);
  umask(old);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(rc));
    uv_close((uv_handle_t *)&ctl->server, free_handle);
    return rc;
  }
  chmod(path, 0600);
  *out = ctl;
  return 0;
}

static void write_done(uv_write_t *req, int status) {
  conn_t *c = req->data;
  (void)status;
  free(req);
  close_conn(c);
}

int arb_control_reply(arb_control_t *ctl, uint64_t id, int code,
                      const char *text) {
  conn_t *c = ctl->conns;
  while (c && c->id != id) c = c->next;
  if (c == NULL || c->answered) return UV_ENOENT;
  c->answered = 1;
  size_t n = strlen(text);
  /* The request and its buffer travel together, freed in write_done. */
  uv_write_t *req = malloc(sizeof(*req) + n + 16);
  if (req == NULL) {
    close_conn(c);
    return UV_ENOMEM;
  }
  char *body = (char *)(req + 1);
  int head = snprintf(body, 16, "%d\n", code);
  memcpy(body + head, text, n);
  uv_buf_t buf = uv_buf_init(body, (unsigned)(head + n));
  req->data = c;
  if (uv_write(req, (uv_stream_t *)&c->pipe, &buf, 1, write_done) != 0) {
    free(req);
    close_conn(c);
  }
  return 0;
}

void arb_control_close(arb_control_t *ctl) {
  if (ctl == NULL) return;
  while (ctl->conns) close_conn(ctl->conns);
  unlink(ctl->path);
  uv_close((uv_handle_t *)&ctl->server, free_handle);
}

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
** Client side and the default path
** ======================================================================*/

void arb_control_default_path(const char *script, char *buf, size_t len) {
  char real[4096];
  const char *name = realpath(script, real) ? real : script;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char *p = name; *p; p++) {
    h ^= (unsigned char)*p;
    h *= 1099511628211ull;
  }
  const char *dir = getenv("XDG_RUNTIME_DIR");
  if (dir && *dir)
    snprintf(buf, len, "%s/arbor-%016llx.sock", dir, (unsigned long long)h);
  else
    snprintf(buf, len, "/tmp/arbor-%u-%016llx.sock", (unsigned)getuid(),
             (unsigned long long)h);
}

int arb_control_request(const char *path, const char *line, char **text) {
  struct sockaddr_un addr;
  char msg[512];
  *text = NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    snprintf(msg, sizeof(msg), "no host is serving on %s (%s)", path,
             strerror(errno));
    if (fd >= 0) close(fd);
    *text = strdup(msg);
    return -1;
  }
  size_t n = strlen(line);
  if (write(fd, line, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
    snprintf(msg, sizeof(msg), "cannot write to %s (%s)", path,
             strerror(errno));
    close(fd);
    *text = strdup(msg);
    return -1;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  ssize_t got;
  while (buf && (got = read(fd, buf + len, cap - len - 1)) > 0) {
    len += (size_t)got;
    if (len + 1 == cap) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) break;
      buf = bigger;
      cap *= 2;
    }
  }
  close(fd);
  if (buf == NULL || len == 0) {
    free(buf);
    snprintf(msg, sizeof(msg), "the host on %s closed without answering",
             path);
    *text = strdup(msg);
    return -1;
  }
  buf[len] = '\0';
  int code = atoi(buf);
  char *nl = strchr(buf, '\n');
  *text = strdup(nl ? nl + 1 : "");
  free(buf);
  return code;
}

/* }====================================================================== */
