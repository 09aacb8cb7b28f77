/*
** logfile.c: the log sink (see logfile.h).  Plain POSIX: open, write,
** poll, close.
**
** Why a buffer: a crash report used to cost two write(2) calls; with
** restarts by the thousand that was most of a report's cost.  Lines now
** wait in one buffer until the loop's turn ends (the loop calls
** arb_logfile_flush_pending before it may block, so a quiet host never
** sits on unwritten lines), the buffer passes its bound, or the host
** exits (teardown closes the log; os.exit goes through the atexit
** handler).  What a crash of the host itself (a fatal signal) would lose
** is at most one turn's lines.
**
** Why poll on EAGAIN: stderr may be a pipe another program made
** non-blocking; retrying write at once would spin, and dropping would
** lose lines.  Waiting until the pipe takes more is what a blocking
** descriptor does, and keeps every line in order.
*/
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one log that is open (one log per OS process), for the loop's
** per-turn flush and the atexit handler. */
static arb_logfile_t *open_log;
static int atexit_registered;

static int open_append(const char *path, char *err, size_t errlen) {
  int fd;
  do {
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    snprintf(err, errlen, "--log-file %s: cannot open (%s)", path,
             strerror(errno));
  return fd;
}

static void flush_at_exit(void) {
  if (open_log) arb_logfile_flush(open_log);
}

static void became_open(arb_logfile_t *f) {
  open_log = f;
  if (!atexit_registered && atexit(flush_at_exit) == 0) atexit_registered = 1;
}

int arb_logfile_open(arb_logfile_t *f, const char *path, char *err,
                     size_t errlen) {
  f->path = NULL;
  f->fd = STDERR_FILENO;
  f->buf = NULL;
  f->len = 0;
  f->dropped = 0;
  if (path == NULL) {
    became_open(f);
    return 0;
  }
  int fd = open_append(path, err, errlen);
  if (fd < 0) return -1;
  f->path = strdup(path);
  if (f->path == NULL) {
    close(fd);
    snprintf(err, errlen, "--log-file: out of memory");
    return -1;
  }
  f->fd = fd;
  became_open(f);
  return 0;
}

/* Writes all of data to fd, waiting out EAGAIN and EINTR.  Returns 0, or
** -1 on a write error (the rest is not written). */
static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLOUT, 0};
      int r = poll(&p, 1, -1);
      if (r < 0 && errno != EINTR) return -1;
      if (r > 0 && (p.revents & (POLLERR | POLLNVAL))) return -1;
      continue; /* POLLHUP: the write reports the error (EPIPE) */
    }
    return -1; /* an error, or a write of 0 bytes: never retried */
  }
  return 0;
}

void arb_logfile_flush(arb_logfile_t *f) {
  if (f->len == 0) return;
  if (write_all(f->fd, f->buf, f->len) != 0) f->dropped += f->len;
  f->len = 0;
}

void arb_logfile_flush_pending(void) {
  if (open_log && open_log->len) arb_logfile_flush(open_log);
}

int arb_logfile_reopen(arb_logfile_t *f, char *err, size_t errlen) {
  if (f->path == NULL) return 0;
  arb_logfile_flush(f); /* into the file that was rotated away */
  int fd = open_append(f->path, err, errlen);
  if (fd < 0) return -1;
  close(f->fd);
  f->fd = fd;
  return 0;
}

void arb_logfile_write(arb_logfile_t *f, const char *data, size_t len) {
  if (len == 0) return;
  /* Only the open log buffers: nothing would flush another (one not yet
  ** opened, or already closed, writes at once). */
  if (f->buf == NULL && open_log == f) f->buf = malloc(ARB_LOGFILE_BOUND);
  if (f->len + len > ARB_LOGFILE_BOUND) arb_logfile_flush(f);
  if (f->buf == NULL || len >= ARB_LOGFILE_BOUND) {
    /* No buffer, or a line that fills one by itself: written at once,
    ** after what was buffered, so the order holds. */
    arb_logfile_flush(f);
    if (write_all(f->fd, data, len) != 0) f->dropped += len;
    return;
  }
  memcpy(f->buf + f->len, data, len);
  f->len += len;
}

void arb_logfile_close(arb_logfile_t *f) {
  arb_logfile_flush(f);
  if (open_log == f) open_log = NULL;
  free(f->buf);
  f->buf = NULL;
  if (f->path) {
    close(f->fd);
    free(f->path);
    f->path = NULL;
  }
  f->fd = STDERR_FILENO;
}
