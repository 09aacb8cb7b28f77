/*
** control_proto.h: the control socket's wire format, parsed.
**
** A client sends one request line and the host answers "CODE\n" then
** text, and closes.  The requests:
**
**   status [--json] [--processes]   the running tree (--json: as JSON;
**                                   --processes: every process too)
**   reload [--dry-run]              load the script again and apply the
**                                   difference
**   stop                            the ordered shutdown
**   eval LEN [--timeout MS] [--json]
**                                   run the LEN bytes that follow the
**                                   line (1 to ARB_CONTROL_MAX_EVAL; any
**                                   bytes) as a Lua chunk in a new process
**                                   of the host, for at most MS ms
**
** Words are separated by spaces or tabs; a trailing "\r" is ignored, so a
** line typed into a terminal tool works.  A NUL or another control byte,
** an unknown word, or a line longer than ARB_CONTROL_MAX_REQUEST bytes is
** a bad request: the host answers ARB_CONTROL_BAD_REQUEST with the
** parser's message and closes.
**
** Pure functions over bytes, libc only: no libuv, no Lua, no I/O, so the
** fuzz targets in tests/fuzz link this file alone.  The server
** (control.c) feeds the request parser what it has read so far after
** every read; the client parses the answer with arb_control_parse_reply.
*/
#ifndef ARB_RT_CONTROL_PROTO_H
#define ARB_RT_CONTROL_PROTO_H

#include <stddef.h>

/* The longest request line, its newline included. */
#define ARB_CONTROL_MAX_REQUEST 256

/* The longest eval chunk, in bytes. */
#define ARB_CONTROL_MAX_EVAL (64 * 1024)

/* The longest eval --timeout, in ms (a day). */
#define ARB_CONTROL_MAX_EVAL_MS 86400000

/* The answer code for a request the host could not parse. */
#define ARB_CONTROL_BAD_REQUEST 2

typedef enum {
  ARB_CONTROL_STATUS = 1,
  ARB_CONTROL_RELOAD,
  ARB_CONTROL_STOP,
  ARB_CONTROL_EVAL
} arb_control_cmd_t;

typedef struct arb_control_req_s {
  arb_control_cmd_t cmd;
  int dry_run;      /* reload --dry-run */
  int json;         /* status --json, eval --json */
  int processes;    /* status --processes */
  int timeout_ms;   /* eval --timeout MS; 0: the host's default */
  size_t body_len;  /* eval: the chunk's length */
  const char *body; /* eval: the chunk, inside the parsed buffer (not
                    ** NUL-terminated); NULL until it has all arrived */
} arb_control_req_t;

/* What arb_control_parse_request found. */
enum {
  ARB_CONTROL_BAD = -1, /* a bad request; the reason is in err */
  ARB_CONTROL_MORE = 0, /* no full line yet: read more */
  ARB_CONTROL_OK = 1    /* *req is filled; *used bytes were the line */
};

/* Parses the bytes buf[0..len) read so far on a connection.  at_eof says
** the client has finished sending: then a line without its newline is
** complete.  On ARB_CONTROL_OK fills *req and sets *used to the bytes of
** the request (its line, newline included, and an eval's chunk); bytes
** after it are not looked at.  On ARB_CONTROL_MORE sets *used to the
** bytes the whole request will take once its line is known (an eval
** whose chunk has not all arrived: the reader must make room for that
** many), else to 0.  On ARB_CONTROL_BAD writes a one-line message into err
** (errlen > 0; at most 160 bytes are ever needed), naming the offending
** byte's offset or quoting the offending word with unprintable bytes
** escaped. */
int arb_control_parse_request(const char *buf, size_t len, int at_eof,
                              arb_control_req_t *req, size_t *used, char *err,
                              size_t errlen);

/* The request line for req, newline included, into buf (at least 64
** bytes).  Returns its length.  An eval's chunk (req->body_len bytes) is
** the caller's to send after the line. */
size_t arb_control_format_request(const arb_control_req_t *req, char *buf,
                                  size_t len);

/* Parses an answer "CODE\nTEXT": CODE is 1 to 3 decimal digits, at most
** 255.  Returns 0 and sets *code and *text_at (where TEXT starts), or -1
** for anything else. */
int arb_control_parse_reply(const char *buf, size_t len, int *code,
                            size_t *text_at);

#endif
