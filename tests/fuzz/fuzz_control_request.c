/*
** fuzz_control_request.c: libFuzzer target for the control socket's
** request parser (host/rt/control_proto.c), the first code a client's
** bytes reach in a running host.
**
** Beyond "no crash, no sanitizer report", every input is checked against
** what the server relies on:
**   - the verdict is one of MORE, OK, BAD; MORE only while no newline,
**     NUL or length limit was seen and more bytes may come;
**   - OK: the line is at most ARB_CONTROL_MAX_REQUEST bytes of the input,
**     ends in a newline unless at end of input, and its request formats
**     back to a line that parses to the same request;
**   - BAD: the message is one non-empty line of printable ASCII (it goes
**     back to the client, maybe to a terminal);
**   - reading the input in pieces, as the server does, gives the same
**     verdict, request and message as reading it whole.
** A broken check aborts, which libFuzzer reports with the input.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                 \
      abort();                                                        \
    }                                                                 \
  } while (0)

typedef struct {
  int r;
  arb_control_req_t req;
  size_t used;
  char err[192];
} verdict_t;

static void parse(const char *buf, size_t len, int at_eof, verdict_t *v) {
  memset(v, 0, sizeof(*v));
  v->used = (size_t)-1;
  /* A poisoned message buffer: the parser must write a terminated one. */
  memset(v->err, 'x', sizeof(v->err));
  v->r = arb_control_parse_request(buf, len, at_eof, &v->req, &v->used,
                                   v->err, sizeof(v->err));
}

static void check_verdict(const char *buf, size_t len, int at_eof,
                          const verdict_t *v) {
  CHECK(v->r == ARB_CONTROL_MORE || v->r == ARB_CONTROL_OK ||
        v->r == ARB_CONTROL_BAD);
  if (v->r == ARB_CONTROL_MORE) {
    CHECK(!at_eof);
    CHECK(len < ARB_CONTROL_MAX_REQUEST);
    CHECK(memchr(buf, '\n', len) == NULL && memchr(buf, '\0', len) == NULL);
  } else if (v->r == ARB_CONTROL_OK) {
    CHECK(v->used >= 1 && v->used <= len);
    CHECK(v->used <= ARB_CONTROL_MAX_REQUEST);
    CHECK(memchr(buf, '\0', v->used) == NULL);
    const char *nl = memchr(buf, '\n', v->used);
    if (at_eof && nl == NULL)
      CHECK(v->used == len);
    else
      CHECK(nl == buf + v->used - 1);
    CHECK(v->req.cmd == ARB_CONTROL_STATUS ||
          v->req.cmd == ARB_CONTROL_RELOAD || v->req.cmd == ARB_CONTROL_STOP);
    CHECK(v->req.dry_run == 0 ||
          (v->req.dry_run == 1 && v->req.cmd == ARB_CONTROL_RELOAD));
    char line[64];
    size_t n = arb_control_format_request(&v->req, line, sizeof(line));
    verdict_t again;
    parse(line, n, 0, &again);
    CHECK(again.r == ARB_CONTROL_OK && again.used == n);
    CHECK(again.req.cmd == v->req.cmd && again.req.dry_run == v->req.dry_run);
  } else {
    size_t n = strnlen(v->err, sizeof(v->err));
    CHECK(n > 0 && n < sizeof(v->err));
    for (size_t i = 0; i < n; i++)
      CHECK(v->err[i] >= 0x20 && v->err[i] < 0x7f);
  }
}

static int same(const verdict_t *a, const verdict_t *b) {
  if (a->r != b->r) return 0;
  if (a->r == ARB_CONTROL_OK)
    return a->used == b->used && a->req.cmd == b->req.cmd &&
           a->req.dry_run == b->req.dry_run;
  if (a->r == ARB_CONTROL_BAD) return strcmp(a->err, b->err) == 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  verdict_t whole, at_end;
  parse(buf, size, 0, &whole);
  check_verdict(buf, size, 0, &whole);
  parse(buf, size, 1, &at_end);
  check_verdict(buf, size, 1, &at_end);
  /* End of input only completes a line that was still open. */
  if (whole.r != ARB_CONTROL_MORE) CHECK(same(&whole, &at_end));

  /* The server's way: parse after each read, stop at the first verdict.
  ** Read sizes cycle through a few lengths, the first one from the data,
  ** so libFuzzer can steer where the pieces split. */
  static const size_t steps[] = {1, 2, 3, 5, 8, 13, 64};
  size_t k = 0, s = size ? data[0] % 7 : 0;
  verdict_t piece = {0};
  piece.r = ARB_CONTROL_MORE;
  while (k < size && piece.r == ARB_CONTROL_MORE) {
    k += steps[s++ % 7];
    if (k > size) k = size;
    parse(buf, k, 0, &piece);
    check_verdict(buf, k, 0, &piece);
  }
  CHECK(same(&piece, &whole));
  return 0;
}
