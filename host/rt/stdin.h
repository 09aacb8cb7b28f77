/*
** stdin.h: the host's standard input read on the loop, so a process that
** waits for input blocks only itself.
**
** What it watches.  A pipe, a FIFO, a terminal or a socket on fd 0 is
** watched with a uv_poll on a duplicate of fd 0 (close-on-exec), and read
** with plain read() once the poll says it is readable (FIONREAD sizes the
** read, so it does not wait).  A poll, rather than uv_pipe or uv_tty,
** because both of those change the shared file description: uv_pipe_open
** makes it non-blocking (a child that inherits fd 0 would then see
** EAGAIN) and uv_tty_init reopens the terminal and dup2()s it over fd 0;
** and a description reopened through /proc never sees a pipe's hang-up,
** so end of file would never come.  uv_poll_init also sets O_NONBLOCK, so
** the flags fd 0 had are put back at once.  A regular file or a device
** cannot be polled (epoll refuses them) and never makes a reader wait
** long: arb_stdin_open returns UV_ENOTSUP and the caller keeps Lua's own
** reading.
**
** What it holds.  Bytes read and not yet taken (a buffer the binding
** parses Lua's read formats from), a sticky end of file and error, and a
** queue of the processes that want to read: the head is served (it may
** take bytes and ask for more); the others wait until they are head.  A
** queued process that ends leaves the queue through its exit hook, so a
** reader killed mid-read never blocks the ones after it.  Reading happens
** only while the head asks for more, so input nobody asked for stays in
** the pipe.
**
** Knows libuv and the core; never Lua.
*/
#ifndef ARB_RT_STDIN_H
#define ARB_RT_STDIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

typedef struct arb_stdin_waiter_s {
  arb_exit_hook_t hook; /* on the waiting process */
  struct arb_stdin_s *in;
  arb_pid_t pid;
  struct arb_stdin_waiter_s *next;
} arb_stdin_waiter_t;

typedef struct arb_stdin_s {
  uv_poll_t *poll; /* allocated apart: freed in its close callback */
  uv_loop_t *loop;
  arb_node_t *node;
  int fd;    /* our duplicate of fd 0; -1 when closed */
  char *buf; /* unread bytes are buf[start, start + len) */
  size_t start, len, cap;
  int eof;   /* read() returned 0 (cleared when a read call begins) */
  int err;   /* a read error (negative errno), until reported */
  int polling;
  arb_stdin_waiter_t *head, *tail;
} arb_stdin_t;

/* Starts watching fd 0.  0, or UV_ENOTSUP when fd 0 is not something to
** poll (a regular file, a device, closed), or another libuv error. */
int arb_stdin_open(arb_stdin_t *in, uv_loop_t *loop, arb_node_t *node);

/* Stops watching (at the host's end, before arb_rt_close). */
void arb_stdin_close(arb_stdin_t *in);

/* Queues p to read.  1 if p is the head (it may read now), 0 if it must
** wait (it is woken once it is the head), UV_ENOMEM. */
int arb_stdin_enter(arb_stdin_t *in, arb_proc_t *p);

/* p's read call is over: p leaves the queue and the next is woken. */
void arb_stdin_leave(arb_stdin_t *in, arb_pid_t pid);

/* The head wants more bytes: reading runs until some arrive, or end of
** file, or an error, then the head is woken. */
void arb_stdin_want(arb_stdin_t *in);

/* Drops the first n unread bytes. */
void arb_stdin_consume(arb_stdin_t *in, size_t n);

/* Waits (blocking the host) until at least one more byte, end of file or
** an error is there; for a reader that cannot yield. */
void arb_stdin_fill_now(arb_stdin_t *in);

#endif
