/*
** fs.c: file jobs on libuv's thread pool, and the loop-side waits on
** FIFOs and terminals (see fs.h for the ownership rules and the streams).
**
** The worker functions below run on a pool thread: they only do system
** calls on the operation's own buffers and never touch the node, the
** loop or another operation.  Everything else (the stream reads and
** writes included) runs on the loop thread.
*/
#define _GNU_SOURCE /* mkostemp: the temp file is close-on-exec from birth */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mode_t process_umask = 022;

void arb_fs_init(void) {
  mode_t m = umask(022);
  umask(m);
  process_umask = m;
}

const char *arb_err_kind(int err, char buf[32]) {
  if (err == UV_EOF) return "closed";
  if (err == UV_EAI_NONAME) return "nxdomain";
  if (err == UV_ETIMEDOUT) return "timeout";
  const char *name = uv_err_name(err);
  size_t i = 0;
  if (name == NULL || strncmp(name, "Unknown", 7) == 0) return "eunknown";
  for (; name[i] && i < 31; i++)
    buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  buf[i] = '\0';
  return buf;
}

const char *arb_err_text(int err) {
  return err == UV_EOF ? "closed" : uv_strerror(err);
}

/* {======================================================================
** Closing descriptors off the loop thread
** ======================================================================*/

typedef struct close_job_s {
  uv_work_t work;
  int fd;
} close_job_t;

static void close_work(uv_work_t *w) { close(((close_job_t *)w)->fd); }

static void close_done(uv_work_t *w, int status) {
  (void)status;
  free(w);
}

void arb_fs_close_later(uv_loop_t *loop, int fd) {
  if (fd < 0) return;
  close_job_t *job = loop ? malloc(sizeof(*job)) : NULL;
  if (job) {
    job->fd = fd;
    if (uv_queue_work(loop, &job->work, close_work, close_done) == 0) return;
    free(job);
  }
  close(fd);
}

/* }====================================================================== */

/* {======================================================================
** Files
** ======================================================================*/

/* Closes f's descriptor once nothing uses it and it is doomed; frees f
** once nobody refers to it. */
static void file_settle(arb_fs_file_t *f) {
  if (f->doomed && !f->busy && f->fd >= 0) {
    arb_fs_close_later(f->loop, f->fd);
    f->fd = -1;
  }
  if (!f->held && !f->busy && f->fd < 0) free(f);
}

static void file_owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                             arb_proc_t *p) {
  (void)node;
  (void)p;
  arb_fs_file_t *f = (arb_fs_file_t *)((char *)hook -
                                       offsetof(arb_fs_file_t, hook));
  f->hooked = 0;
  f->doomed = 1;
  file_settle(f);
}

arb_fs_file_t *arb_fs_file_new(uv_loop_t *loop, arb_proc_t *p, int fd) {
  arb_fs_file_t *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    arb_fs_close_later(loop, fd);
    return NULL;
  }
  f->loop = loop;
  f->owner = p->pid;
  f->fd = fd;
  f->held = 1;
  f->hooked = 1;
  f->hook.fn = file_owner_ended;
  arb_node_hook_exit(p, &f->hook);
  return f;
}

void arb_fs_file_release(arb_fs_file_t *f) {
  if (f->hooked) arb_node_unhook_exit(&f->hook);
  f->hooked = 0;
  f->held = 0;
  f->doomed = 1;
  file_settle(f);
}

int arb_fs_file_take_fd(arb_fs_file_t *f) {
  if (f->hooked) arb_node_unhook_exit(&f->hook);
  f->hooked = 0;
  f->doomed = 1;
  int fd = f->fd;
  f->fd = -1;
  return fd;
}

/* }====================================================================== */

/* {======================================================================
** Worker side (pool threads)
** ======================================================================*/

static int cancelled(arb_fs_op_t *op) {
  return __atomic_load_n(&op->cancel, __ATOMIC_ACQUIRE);
}

/* Waits until fd is ready for events (POLLIN or POLLOUT; a hang-up counts
** as ready), looking at op's cancel flag every 100 ms.  0 or an error. */
static int wait_ready(arb_fs_op_t *op, int fd, short events) {
  for (;;) {
    if (cancelled(op)) return UV_ECANCELED;
    struct pollfd pfd = {.fd = fd, .events = events};
    int rc = poll(&pfd, 1, 100);
    if (rc > 0) return 0;
    if (rc < 0 && errno != EINTR) return -errno;
  }
}

/* Is fd something other than a regular file (a FIFO, a terminal...)? */
static int is_stream(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* What open_nowait returns for a FIFO opened for writing that has no
** reader yet (never a descriptor, never an errno). */
#define NO_READER INT_MIN

/* open(2) that never waits for the other end of a FIFO: non-blocking,
** made blocking again for a regular file.  The descriptor, a negative
** errno, or NO_READER (the loop tries again 20 ms later). */
static int open_nowait(const char *path, int flags, mode_t mode) {
  for (;;) {
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd >= 0) {
      if (!is_stream(fd)) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    if (errno == EINTR) continue;
    if (errno != ENXIO || (flags & O_ACCMODE) == O_RDONLY) return -errno;
    /* ENXIO is also what a socket file gives: that one never opens. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) return NO_READER;
    return UV_ENXIO;
  }
}

static int write_all(arb_fs_op_t *op, int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -errno;
      int err = wait_ready(op, fd, POLLOUT);
      if (err) return err;
      continue;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads up to max bytes (until end of file) into a new buffer.  From a
** stream, each read follows a poll, so that a FIFO nobody has opened for
** writing yet is waited on (its read would say end of file) and the wait
** can be cancelled. */
static int read_upto(arb_fs_op_t *op, int fd, size_t max, size_t hint,
                     char **out, size_t *outlen) {
  int stream = is_stream(fd);
  size_t cap = hint < max ? hint : max, len = 0;
  if (cap == 0) cap = 1;
  char *buf = malloc(cap);
  if (buf == NULL) return UV_ENOMEM;
  while (len < max) {
    if (len == cap) {
      size_t ncap = cap > max / 2 ? max : cap * 2;
      char *nbuf = realloc(buf, ncap);
      if (nbuf == NULL) {
        free(buf);
        return UV_ENOMEM;
      }
      buf = nbuf;
      cap = ncap;
    }
    int err = stream ? wait_ready(op, fd, POLLIN) : 0;
    ssize_t n = err ? -1 : read(fd, buf + len, cap - len);
    if (n < 0) {
      if (!err && (errno == EINTR || errno == EAGAIN)) continue;
      if (!err) err = -errno;
      free(buf);
      return err;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

/* Reads and closes the stream op->fd: one the loop cannot watch. */
static int read_stream_here(arb_fs_op_t *op) {
  int err = read_upto(op, op->fd, SIZE_MAX, 4096, &op->data, &op->len);
  close(op->fd);
  op->fd = -1;
  return err;
}

static int do_read(arb_fs_op_t *op) {
  if (op->on_pool) return read_stream_here(op);
  int fd = open_nowait(op->path, O_RDONLY, 0);
  if (fd < 0) return fd;
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0) {
    err = -errno;
  } else if (S_ISDIR(st.st_mode)) {
    err = UV_EISDIR;
  } else if (is_stream(fd)) {
    op->fd = fd; /* the loop reads it */
    op->stream = 1;
    return 0;
  } else
    err = read_upto(op, fd, SIZE_MAX,
                    st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, &op->data,
                    &op->len);
  close(fd);
  return err;
}

/* Writes into a temp file beside path, syncs it, renames it over path and
** syncs the folder, so a reader sees the old content or the new. */
static int do_atomic_write(arb_fs_op_t *op) {
  const char *slash = strrchr(op->path, '/');
  size_t dirlen = slash ? (size_t)(slash - op->path) : 0;
  const char *base = slash ? slash + 1 : op->path;
  if (*base == '\0') return UV_EISDIR;
  size_t n = strlen(op->path) + 16;
  char *tmp = malloc(n);
  if (tmp == NULL) return UV_ENOMEM;
  if (slash)
    memcpy(tmp, op->path, dirlen + 1);
  tmp[slash ? dirlen + 1 : 0] = '\0';
  strcat(tmp, ".");
  strcat(tmp, base);
  strcat(tmp, ".XXXXXX");
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    int err = -errno;
    free(tmp);
    return err;
  }
  int err = 0;
  struct stat st;
  mode_t mode = (0666 & ~process_umask);
  if (stat(op->path, &st) == 0) mode = st.st_mode & 07777;
  if (fchmod(fd, mode) != 0) err = -errno;
  if (!err) err = write_all(op, fd, op->data, op->len);
  if (!err && fsync(fd) != 0) err = -errno;
  if (close(fd) != 0 && !err) err = -errno;
  if (!err && rename(tmp, op->path) != 0) err = -errno;
  if (err) {
    unlink(tmp);
  } else {
    /* The rename is durable once the folder is synced. */
    char *dir = slash ? strndup(op->path, dirlen ? dirlen : 1) : strdup(".");
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    free(dir);
  }
  free(tmp);
  return err;
}

static int do_write(arb_fs_op_t *op) {
  if (op->flags & ARB_FS_ATOMIC) return do_atomic_write(op);
  int oflags = O_WRONLY | O_CREAT |
               (op->flags & ARB_FS_APPEND ? O_APPEND : O_TRUNC);
  if (op->on_pool) { /* a stream the loop cannot watch */
    int err = write_all(op, op->fd, op->data, op->len);
    if (close(op->fd) != 0 && !err) err = -errno;
    op->fd = -1;
    return err;
  }
  int fd = open_nowait(op->path, oflags, 0666);
  if (fd == NO_READER) {
    op->again = 1;
    return 0;
  }
  if (fd < 0) return fd;
  if (is_stream(fd)) {
    op->fd = fd; /* the loop writes it */
    op->stream = 1;
    return 0;
  }
  int err = write_all(op, fd, op->data, op->len);
  if (close(fd) != 0 && !err) err = -errno;
  return err;
}

static int do_open(arb_fs_op_t *op) {
  int oflags;
  switch (op->flags) {
    case ARB_FS_MODE_R: oflags = O_RDONLY; break;
    case ARB_FS_MODE_W: oflags = O_WRONLY | O_CREAT | O_TRUNC; break;
    default: oflags = O_WRONLY | O_CREAT | O_APPEND; break;
  }
  op->fd = open_nowait(op->path, oflags, 0666);
  if (op->fd == NO_READER) {
    op->fd = -1;
    op->again = 1;
    return 0;
  }
  if (op->fd < 0) {
    int err = op->fd;
    op->fd = -1;
    return err;
  }
  if (op->flags == ARB_FS_MODE_R) {
    struct stat st;
    if (fstat(op->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      close(op->fd);
      op->fd = -1;
      return UV_EISDIR;
    }
  }
  op->stream = (uint8_t)is_stream(op->fd);
  return 0;
}

static int do_stat(arb_fs_op_t *op) {
  struct stat st;
  if (lstat(op->path, &st) != 0) return -errno;
  op->type = S_ISREG(st.st_mode)   ? ARB_FS_TYPE_FILE
             : S_ISDIR(st.st_mode) ? ARB_FS_TYPE_DIR
             : S_ISLNK(st.st_mode) ? ARB_FS_TYPE_LINK
                                   : ARB_FS_TYPE_OTHER;
  op->size = (int64_t)st.st_size;
  op->mode = (int)(st.st_mode & 07777);
  op->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
                 st.st_mtim.tv_nsec / 1000000;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names, sorted, packed one after another with their NULs. */
static int do_list(arb_fs_op_t *op) {
  DIR *d = opendir(op->path); /* glibc opens it close-on-exec */
  if (d == NULL) return -errno;
  char **names = NULL;
  size_t n = 0, cap = 0, total = 0;
  int err = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 32;
      char **nn = realloc(names, ncap * sizeof(*nn));
      if (nn == NULL) {
        err = UV_ENOMEM;
        break;
      }
      names = nn;
      cap = ncap;
    }
    if ((names[n] = strdup(e->d_name)) == NULL) {
      err = UV_ENOMEM;
      break;
    }
    total += strlen(names[n]) + 1;
    n++;
    errno = 0;
  }
  if (!err && errno != 0) err = -errno;
  closedir(d);
  if (!err) {
    if (n) qsort(names, n, sizeof(*names), cmp_names);
    op->data = malloc(total ? total : 1);
    if (op->data == NULL) err = UV_ENOMEM;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    if (!err) {
      size_t l = strlen(names[i]) + 1;
      memcpy(op->data + at, names[i], l);
      at += l;
    }
    free(names[i]);
  }
  free(names);
  op->len = at;
  op->count = err ? 0 : n;
  return err;
}

/* mkdir -p: each missing ancestor is made in turn; one that exists must
** be a folder. */
static int do_mkdir(arb_fs_op_t *op) {
  if (!(op->flags & ARB_FS_PARENTS))
    return mkdir(op->path, 0777) == 0 ? 0 : -errno;
  char *p = op->path;
  size_t len = strlen(p);
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    if (p[i - 1] == '/') continue;
    char saved = p[i];
    p[i] = '\0';
    int rc = mkdir(p, 0777), err = rc == 0 ? 0 : errno;
    struct stat st;
    if (err == EEXIST) err = stat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    p[i] = saved;
    if (err) return -err;
  }
  return 0;
}

static int do_remove(arb_fs_op_t *op) {
  struct stat st;
  if (lstat(op->path, &st) != 0) return -errno;
  int rc = S_ISDIR(st.st_mode) ? rmdir(op->path) : unlink(op->path);
  return rc == 0 ? 0 : -errno;
}

static void op_work(uv_work_t *w) {
  arb_fs_op_t *op = (arb_fs_op_t *)w;
  int err = 0;
  int fd = op->file ? op->file->fd : -1;
  switch ((arb_fs_kind_t)op->kind) {
    case ARB_FS_READ: err = do_read(op); break;
    case ARB_FS_WRITE: err = do_write(op); break;
    case ARB_FS_OPEN: err = do_open(op); break;
    case ARB_FS_STAT: err = do_stat(op); break;
    case ARB_FS_LIST: err = do_list(op); break;
    case ARB_FS_MKDIR: err = do_mkdir(op); break;
    case ARB_FS_REMOVE: err = do_remove(op); break;
    case ARB_FS_RENAME:
      err = rename(op->path, op->path2) == 0 ? 0 : -errno;
      break;
    case ARB_FS_FREAD:
      err = read_upto(op, fd, op->len, op->len < 65536 ? op->len : 65536,
                      &op->data, &op->len);
      break;
    case ARB_FS_FWRITE: err = write_all(op, fd, op->data, op->len); break;
    case ARB_FS_FSYNC: err = fsync(fd) == 0 ? 0 : -errno; break;
    case ARB_FS_FCLOSE:
      err = close(op->fd) == 0 ? 0 : -errno;
      op->fd = -1; /* closed even on error (Linux) */
      break;
  }
  op->err = err;
}

/* }====================================================================== */

/* {======================================================================
** Loop side
** ======================================================================*/

/* Where an operation waits: a job on the pool, a watch on the loop (a
** stream), a timer (an open retried), or nowhere (completed). */
typedef enum { STAGE_POOL, STAGE_POLL, STAGE_TIMER, STAGE_DONE } stage_t;

/* How much one wake-up of a loop-side read takes before it lets the loop
** go on (the watch is level-triggered: the rest comes next turn). */
#define LOOP_READ_BUDGET (256 * 1024)
/* A loop-side step that has to wait for the next wake-up. */
#define WAIT_MORE 1
/* How long a FIFO without a reader waits before the open is tried again. */
#define OPEN_RETRY_MS 20

arb_fs_op_t *arb_fs_op_new(arb_fs_kind_t kind) {
  arb_fs_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL) return NULL;
  op->kind = (uint8_t)kind;
  op->fd = -1;
  op->stage = STAGE_POOL;
  return op;
}

static void handle_closed(uv_handle_t *h) {
  arb_fs_op_t *op = h->data;
  if (--op->handles == 0 && op->freed) free(op);
}

/* The operation lets go of its file (which it kept busy). */
static void release_file(arb_fs_op_t *op) {
  arb_fs_file_t *f = op->file;
  if (f == NULL) return;
  op->file = NULL;
  f->busy = 0;
  file_settle(f);
}

/* Stops a loop-side wait (the watch is closed, the timer stopped). */
static void leave_wait(arb_fs_op_t *op) {
  if (op->stage == STAGE_POLL)
    uv_close((uv_handle_t *)&op->poll, handle_closed);
  else if (op->stage == STAGE_TIMER)
    uv_timer_stop(&op->timer);
  op->stage = STAGE_DONE;
}

void arb_fs_op_free(arb_fs_op_t *op) {
  if (op->hooked) arb_node_unhook_exit(&op->hook);
  op->hooked = 0;
  leave_wait(op); /* (the owner ended while it waited) */
  release_file(op);
  if (op->timer_on) {
    op->timer_on = 0;
    uv_close((uv_handle_t *)&op->timer, handle_closed);
  }
  if (op->fd >= 0) arb_fs_close_later(op->loop, op->fd);
  op->fd = -1;
  free(op->path);
  free(op->path2);
  free(op->data);
  op->path = op->path2 = op->data = NULL;
  if (op->handles)
    op->freed = 1; /* the last close callback frees it */
  else
    free(op);
}

/* The operation has its result: its process wakes (or, abandoned, it is
** freed). */
static void complete(arb_fs_op_t *op) {
  op->done = 1;
  op->stage = STAGE_DONE;
  release_file(op);
  if (op->abandoned) {
    arb_fs_op_free(op);
    return;
  }
  arb_proc_t *p = arb_node_lookup(op->node, op->owner);
  if (p) arb_node_wake(op->node, p); /* only a waiting one wakes */
}

static int is_read(const arb_fs_op_t *op) {
  return op->kind == ARB_FS_READ || op->kind == ARB_FS_FREAD;
}

/* The stream descriptor a loop-side step uses. */
static int stream_fd(const arb_fs_op_t *op) {
  return op->file ? op->file->fd : op->fd;
}

/* Reads what is there without waiting: 0 at the end (the writer closed,
** or as many bytes as wanted), WAIT_MORE, or an error. */
static int loop_read(arb_fs_op_t *op) {
  int fd = stream_fd(op);
  size_t budget = LOOP_READ_BUDGET;
  while (op->len < op->want) {
    if (op->len == op->cap) {
      size_t ncap = op->cap ? op->cap * 2 : 4096;
      if (ncap > op->want || ncap < op->cap) ncap = op->want;
      char *n = realloc(op->data, ncap);
      if (n == NULL) return UV_ENOMEM;
      op->data = n;
      op->cap = ncap;
    }
    ssize_t n = read(fd, op->data + op->len, op->cap - op->len);
    if (n > 0) {
      op->len += (size_t)n;
      if ((size_t)n >= budget) return op->len < op->want ? WAIT_MORE : 0;
      budget -= (size_t)n;
    } else if (n == 0) {
      return 0;
    } else if (errno == EAGAIN) {
      return WAIT_MORE;
    } else if (errno != EINTR) {
      return -errno;
    }
  }
  return 0;
}

/* Writes what the stream takes without waiting: 0 once all is written,
** WAIT_MORE, or an error (UV_EPIPE: the reader went away). */
static int loop_write(arb_fs_op_t *op) {
  int fd = stream_fd(op);
  while (op->at < op->len) {
    ssize_t n = write(fd, op->data + op->at, op->len - op->at);
    if (n >= 0)
      op->at += (size_t)n;
    else if (errno == EAGAIN)
      return WAIT_MORE;
    else if (errno != EINTR)
      return -errno;
  }
  return 0;
}

/* Ends a loop-side wait with err (0: done). */
static void finish_stream(arb_fs_op_t *op, int err) {
  leave_wait(op);
  op->err = err;
  if (err && is_read(op)) {
    free(op->data);
    op->data = NULL;
    op->len = 0;
  }
  if (op->file == NULL) { /* fs.read, fs.write: their own descriptor */
    arb_fs_close_later(op->loop, op->fd);
    op->fd = -1;
  }
  complete(op);
}

static void on_ready(uv_poll_t *h, int status, int events) {
  (void)events;
  arb_fs_op_t *op = h->data;
  /* An error status (a write end whose reader left: EPOLLERR) still
  ** tries the call, which names the cause (EPIPE). */
  int rc = is_read(op) ? loop_read(op) : loop_write(op);
  if (rc == WAIT_MORE && status < 0) rc = status;
  if (rc != WAIT_MORE) finish_stream(op, rc);
}

/* Starts the loop-side wait on the operation's stream; an error when the
** loop cannot watch it (epoll refuses /dev/null, /dev/zero...). */
static int start_watch(arb_fs_op_t *op) {
  int rc = uv_poll_init(op->loop, &op->poll, stream_fd(op));
  if (rc != 0) return rc;
  op->poll.data = op;
  op->handles++;
  rc = uv_poll_start(&op->poll, is_read(op) ? UV_READABLE : UV_WRITABLE,
                     on_ready);
  if (rc != 0) { /* (never seen) the pool takes it, as for /dev/null */
    uv_close((uv_handle_t *)&op->poll, handle_closed);
    return rc;
  }
  op->stage = STAGE_POLL;
  if (is_read(op)) {
    op->want = op->kind == ARB_FS_FREAD ? op->len : SIZE_MAX;
    op->len = 0;
    op->cap = 0;
  } else {
    op->at = 0;
  }
  return 0;
}

static void op_done(uv_work_t *w, int status);

static int queue_job(arb_fs_op_t *op) {
  op->stage = STAGE_POOL;
  return uv_queue_work(op->loop, &op->work, op_work, op_done);
}

static void on_retry(uv_timer_t *t) {
  arb_fs_op_t *op = t->data;
  op->stage = STAGE_DONE;
  int rc = queue_job(op);
  if (rc != 0) {
    op->err = rc;
    complete(op);
  }
}

/* A FIFO without a reader: the open is tried again OPEN_RETRY_MS later. */
static int retry_later(arb_fs_op_t *op) {
  if (!op->timer_on) {
    int rc = uv_timer_init(op->loop, &op->timer);
    if (rc != 0) return rc;
    op->timer.data = op;
    op->timer_on = 1;
    op->handles++;
  }
  op->stage = STAGE_TIMER;
  return uv_timer_start(&op->timer, on_retry, OPEN_RETRY_MS, 0);
}

static void op_owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                           arb_proc_t *p) {
  (void)node;
  (void)p;
  arb_fs_op_t *op = (arb_fs_op_t *)((char *)hook - offsetof(arb_fs_op_t, hook));
  op->hooked = 0;
  if (op->stage == STAGE_POOL) {
    op->abandoned = 1;
    __atomic_store_n(&op->cancel, 1, __ATOMIC_RELEASE);
  } else {
    arb_fs_op_free(op); /* a watch or a timer stops at once */
  }
}

static void op_done(uv_work_t *w, int status) {
  arb_fs_op_t *op = (arb_fs_op_t *)w;
  (void)status; /* jobs are never cancelled */
  op->stage = STAGE_DONE;
  if (op->abandoned) {
    complete(op);
    return;
  }
  int rc = 0;
  if (op->again) {
    op->again = 0;
    if ((rc = retry_later(op)) == 0) return;
  } else if (op->stream && !op->on_pool && op->err == 0 &&
             (op->kind == ARB_FS_READ || op->kind == ARB_FS_WRITE)) {
    if (start_watch(op) == 0) return;
    op->on_pool = 1; /* a stream the loop cannot watch: the pool reads */
    if ((rc = queue_job(op)) == 0) return;
  }
  if (rc != 0) op->err = rc;
  complete(op);
}

int arb_fs_op_start(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                    arb_fs_op_t *op) {
  op->node = node;
  op->loop = loop;
  op->owner = p->pid;
  if (op->file) op->file->busy = 1;
  int rc = 1;
  if (op->file && op->file->stream &&
      (op->kind == ARB_FS_FREAD || op->kind == ARB_FS_FWRITE))
    rc = start_watch(op);
  if (rc != 0) rc = queue_job(op);
  if (rc != 0) {
    if (op->file) op->file->busy = 0;
    op->stage = STAGE_DONE;
    return rc;
  }
  op->hook.fn = op_owner_ended;
  op->hooked = 1;
  arb_node_hook_exit(p, &op->hook);
  return 0;
}

/* }====================================================================== */
