/*
** logfile.c: the log sink (see logfile.h).  Plain POSIX: open, write,
** close.  No buffering of its own, so a line is on disk (or on stderr)
** when the call returns and a crash loses nothing already logged.
*/
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int arb_logfile_open(arb_logfile_t *f, const char *path, char *err,
                     size_t errlen) {
  f->path = NULL;
  f->fd = STDERR_FILENO;
  if (path == NULL) return 0;
  int fd = open_append(path, err, errlen);
  if (fd < 0) return -1;
  f->path = strdup(path);
  if (f->path == NULL) {
    close(fd);
    snprintf(err, errlen, "--log-file: out of memory");
    return -1;
  }
  f->fd = fd;
  return 0;
}

int arb_logfile_reopen(arb_logfile_t *f, char *err, size_t errlen) {
  if (f->path == NULL) return 0;
  int fd = open_append(f->path, err, errlen);
  if (fd < 0) return -1;
  close(f->fd);
  f->fd = fd;
  return 0;
}

void arb_logfile_write(arb_logfile_t *f, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(f->fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data += n;
    len -= (size_t)n;
  }
}

void arb_logfile_close(arb_logfile_t *f) {
  if (f->path) {
    close(f->fd);
    free(f->path);
    f->path = NULL;
  }
  f->fd = STDERR_FILENO;
}
