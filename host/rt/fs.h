/*
** fs.h: file operations on libuv's thread pool, for processes that must
** not block the host.
**
** An operation (arb_fs_op_t) is one job queued with uv_queue_work: the
** worker thread does the blocking system calls (a whole-file read, an
** atomic write's temp file + fsync + rename, a mkdir -p walk are each one
** job, so one round trip through the pool); the loop thread gets the
** result in the after-work callback, which wakes the waiting process.
**
** Ownership.  An operation is tied to the process that started it by an
** exit hook.  If that process ends while the job runs, the operation is
** marked abandoned and frees itself when the job completes; a file
** descriptor it produced is closed then.  An open file (arb_fs_file_t)
** is tied to its owner the same way: when the owner ends, its descriptor
** is closed (after any job still using it has finished, never under it).
** Every descriptor is opened close-on-exec.
**
** FIFOs, terminals and other files that are not regular ("streams").
** Opening one could wait for the other end forever and so could reading
** or writing it; a job stuck so would hold one of the pool's 4 threads,
** and a few such jobs would stall every other file job and name lookup
** (getaddrinfo shares the pool) for as long as the other end stays away.
** So no job waits for a stream's other end:
**   - every open is non-blocking; a FIFO opened for writing with no
**     reader yet (ENXIO) ends the job, and the loop queues the open again
**     20 ms later (a timer, no thread held meanwhile);
**   - a descriptor that turns out to be a regular file is made blocking
**     again and used on the pool as before;
**   - a stream is read and written on the loop thread: non-blocking
**     reads and writes, woken by a uv_poll watch (at most 256 KiB read per
**     wake-up, so a fast writer cannot starve the loop).  A read of a
**     FIFO waits for a writer and then reads to its end (the writer
**     closing), as a blocking read would.
** A stream epoll cannot watch (/dev/null, /dev/zero: never waiting) goes
** back to the pool, where each read or write follows a poll(2) of at most
** 100 ms, between which the job looks at its cancel flag.  The owner's
** death stops a watch or a timer at once and closes the descriptor.
**
** Knows libuv and the core; never Lua.
*/
#ifndef ARB_RT_FS_H
#define ARB_RT_FS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

typedef enum {
  ARB_FS_READ,   /* path -> data (whole file) */
  ARB_FS_WRITE,  /* path, data, flags (ARB_FS_APPEND / ARB_FS_ATOMIC) */
  ARB_FS_OPEN,   /* path, flags (ARB_FS_MODE_*) -> fd */
  ARB_FS_STAT,   /* path -> type, size, mtime_ms (lstat) */
  ARB_FS_LIST,   /* path -> sorted names */
  ARB_FS_MKDIR,  /* path, flags (ARB_FS_PARENTS) */
  ARB_FS_REMOVE, /* path (a file, a link or an empty directory) */
  ARB_FS_RENAME, /* path -> path2 */
  ARB_FS_FREAD,  /* file, len -> data ("" at end of file) */
  ARB_FS_FWRITE, /* file, data */
  ARB_FS_FSYNC,  /* file */
  ARB_FS_FCLOSE  /* file (its descriptor, taken by the job) */
} arb_fs_kind_t;

enum { ARB_FS_APPEND = 1, ARB_FS_ATOMIC = 2, ARB_FS_PARENTS = 4 };
enum { ARB_FS_MODE_R = 1, ARB_FS_MODE_W = 2, ARB_FS_MODE_A = 3 };
enum { ARB_FS_TYPE_FILE, ARB_FS_TYPE_DIR, ARB_FS_TYPE_LINK, ARB_FS_TYPE_OTHER };

/* An open file.  Its memory is freed once the handle that refers to it
** (the Lua userdata) has let go and no job uses it. */
typedef struct arb_fs_file_s {
  arb_exit_hook_t hook; /* on the owner while hooked */
  uv_loop_t *loop;
  arb_pid_t owner;
  int fd;        /* -1 once closed (or handed to a closing job) */
  uint8_t hooked;  /* hook is attached to the owner */
  uint8_t busy;    /* a job is using fd */
  uint8_t held;    /* the handle still refers to this struct */
  uint8_t doomed;  /* close fd as soon as no job uses it */
  uint8_t stream;  /* not a regular file: read and written on the loop */
} arb_fs_file_t;

typedef struct arb_fs_op_s {
  uv_work_t work;
  uv_poll_t poll;   /* the loop-side wait on a stream */
  uv_timer_t timer; /* the retry of an open that found no reader */
  arb_exit_hook_t hook; /* on the waiting process while hooked */
  arb_node_t *node;
  uv_loop_t *loop;
  arb_pid_t owner;
  uint8_t kind;      /* arb_fs_kind_t */
  uint8_t done;      /* the job has completed */
  uint8_t abandoned; /* the owner ended first */
  uint8_t hooked;
  uint8_t stage;     /* where the operation waits (fs.c's stage_t) */
  uint8_t stream;    /* the job opened a stream (OPEN: the file is one) */
  uint8_t again;     /* the job found a FIFO without a reader: retry */
  uint8_t on_pool;   /* a stream the loop cannot watch: use the pool */
  uint8_t timer_on;  /* timer initialised (closed with the operation) */
  uint8_t handles;   /* handles whose close callback is pending */
  uint8_t freed;     /* arb_fs_op_free ran: the last close frees it */
  size_t want;       /* loop-side read: the most to read */
  size_t at;         /* loop-side write: bytes written so far */
  size_t cap;        /* loop-side read: bytes allocated for data */
  int cancel; /* set (atomically) when abandoned: a job waiting on a
              ** FIFO or a terminal stops at its next look (<= 100 ms) */
  int flags;
  char *path, *path2;
  char *data; /* input (write) or output (read, list: NUL-separated) */
  size_t len; /* bytes of data; for FREAD the most to read */
  arb_fs_file_t *file;
  /* results */
  int err; /* 0 or a negative errno (libuv's convention) */
  const char *err_path; /* which path err is about (path or path2) */
  int fd;  /* ARB_FS_OPEN */
  int type;
  int64_t size, mtime_ms;
  int mode; /* ARB_FS_STAT: the permission bits (st_mode & 07777) */
  size_t count; /* ARB_FS_LIST: names in data */
} arb_fs_op_t;

/* Reads the umask once, on the loop thread, before any job runs. */
void arb_fs_init(void);

/* A zeroed operation of that kind, or NULL when out of memory.  The
** caller fills path/path2/data (malloc'd: the operation frees them),
** flags, len and file. */
arb_fs_op_t *arb_fs_op_new(arb_fs_kind_t kind);

/* Queues op for process p (which then waits: arb_node_wait) and hooks it
** to p.  Returns 0 or a libuv error (then op is still the caller's). */
int arb_fs_op_start(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                    arb_fs_op_t *op);

/* Frees an operation that has completed (or was never started),
** unhooking it; the caller has taken what it wanted from the results
** (set op->fd = -1 once a descriptor is taken, op->data = NULL once the
** data is taken). */
void arb_fs_op_free(arb_fs_op_t *op);

/* A file owned by p around fd, hooked to p.  NULL when out of memory
** (fd is then closed). */
arb_fs_file_t *arb_fs_file_new(uv_loop_t *loop, arb_proc_t *p, int fd);

/* The handle lets go of f: its descriptor is closed (on the pool) if it
** is still open, and f freed once no job uses it. */
void arb_fs_file_release(arb_fs_file_t *f);

/* Takes f's descriptor for a closing job (-1 if already closed); f is
** unhooked from its owner. */
int arb_fs_file_take_fd(arb_fs_file_t *f);

/* Closes fd on the thread pool; nobody waits for it.  Synchronously when
** loop is NULL or the job cannot be queued. */
void arb_fs_close_later(uv_loop_t *loop, int fd);

/* The kind of a libuv code, the `kind` Lua sees: the POSIX name of a
** negative errno in lower case ("enoent"), as Erlang names it, except
** the three the contract names by what happened: UV_EOF is "closed",
** UV_EAI_NONAME (a name that does not resolve) "nxdomain" and
** UV_ETIMEDOUT "timeout"; "eunknown" for a code libuv does not know. */
const char *arb_err_kind(int err, char buf[32]);

/* The text of a libuv code: uv_strerror's, except UV_EOF, which for a
** socket or file means "closed" rather than "end of file". */
const char *arb_err_text(int err);

#endif
