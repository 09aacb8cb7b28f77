/*
** fs.c: file jobs on libuv's thread pool (see fs.h for the ownership
** rules).
**
** The worker functions below run on a pool thread: they only do system
** calls on the operation's own buffers and never touch the node, the
** loop or another operation.  Everything else runs on the loop thread.
*/
#define _GNU_SOURCE /* mkostemp: the temp file is close-on-exec from birth */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

/* open(2) that never waits for the other end of a FIFO: non-blocking,
** retried every 20 ms while a FIFO has no reader (ENXIO), made blocking
** again for a regular file.  The descriptor, or a negative errno. */
static int open_nowait(arb_fs_op_t *op, const char *path, int flags,
                       mode_t mode) {
  for (;;) {
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd >= 0) {
      if (!is_stream(fd)) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    if (errno == EINTR) continue;
    if (errno != ENXIO || (flags & O_ACCMODE) == O_RDONLY) return -errno;
    if (cancelled(op)) return UV_ECANCELED;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
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

static int do_read(arb_fs_op_t *op) {
  int fd = open_nowait(op, op->path, O_RDONLY, 0);
  if (fd < 0) return fd;
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0)
    err = -errno;
  else if (S_ISDIR(st.st_mode))
    err = UV_EISDIR;
  else
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
  int fd = open_nowait(op, op->path, oflags, 0666);
  if (fd < 0) return fd;
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
  op->fd = open_nowait(op, op->path, oflags, 0666);
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

arb_fs_op_t *arb_fs_op_new(arb_fs_kind_t kind) {
  arb_fs_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL) return NULL;
  op->kind = (uint8_t)kind;
  op->fd = -1;
  return op;
}

void arb_fs_op_free(arb_fs_op_t *op) {
  if (op->hooked) arb_node_unhook_exit(&op->hook);
  if (op->fd >= 0) arb_fs_close_later(op->work.loop, op->fd);
  free(op->path);
  free(op->path2);
  free(op->data);
  free(op);
}

static void op_owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                           arb_proc_t *p) {
  (void)node;
  (void)p;
  arb_fs_op_t *op = (arb_fs_op_t *)((char *)hook - offsetof(arb_fs_op_t, hook));
  op->hooked = 0;
  if (op->done) {
    arb_fs_op_free(op);
  } else {
    op->abandoned = 1;
    __atomic_store_n(&op->cancel, 1, __ATOMIC_RELEASE);
  }
}

static void op_done(uv_work_t *w, int status) {
  arb_fs_op_t *op = (arb_fs_op_t *)w;
  (void)status; /* jobs are never cancelled */
  op->done = 1;
  if (op->file) {
    arb_fs_file_t *f = op->file;
    op->file = NULL;
    f->busy = 0;
    file_settle(f);
  }
  if (op->abandoned) {
    arb_fs_op_free(op);
    return;
  }
  arb_proc_t *p = arb_node_lookup(op->node, op->owner);
  if (p) arb_node_wake(op->node, p); /* only a waiting one wakes */
}

int arb_fs_op_start(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                    arb_fs_op_t *op) {
  op->node = node;
  op->owner = p->pid;
  if (op->file) op->file->busy = 1;
  int rc = uv_queue_work(loop, &op->work, op_work, op_done);
  if (rc != 0) {
    if (op->file) op->file->busy = 0;
    return rc;
  }
  op->hook.fn = op_owner_ended;
  op->hooked = 1;
  arb_node_hook_exit(p, &op->hook);
  return 0;
}

/* }====================================================================== */
