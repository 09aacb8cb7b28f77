/*
** fuzz_control_request.c: libFuzzer target for the control socket's
** request parser (host/rt/control_proto.c), the first code a client's
** bytes reach in a running host.
**
** Beyond "no crash, no sanitizer report", every input is checked against
** what the server relies on:
**   - the verdict is one of MORE, OK, BAD; MORE only while no newline,
**     NUL or length limit was seen and more bytes may come, or after an
**     eval's line while its chunk is incomplete (and then the size the
**     reader must make room for is given, and bounded);
**   - OK: the line is at most ARB_CONTROL_MAX_REQUEST bytes of the input,
**     ends in a newline unless at end of input, an eval's chunk is the
**     bytes right after it (1 to ARB_CONTROL_MAX_EVAL), and its request
**     formats back to a line that parses to the same request;
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
    const char *nl = memchr(buf, '\n', len);
    if (v->used == 0) {
      CHECK(len < ARB_CONTROL_MAX_REQUEST);
      CHECK(nl == NULL && memchr(buf, '\0', len) == NULL);
    } else {
      /* An eval line has arrived; its chunk has not, all of it. */
      CHECK(nl != NULL && (size_t)(nl - buf) < ARB_CONTROL_MAX_REQUEST);
      CHECK(memchr(buf, '\0', (size_t)(nl - buf)) == NULL);
      CHECK(v->used > len);
      CHECK(v->used <= ARB_CONTROL_MAX_REQUEST + ARB_CONTROL_MAX_EVAL);
    }
  } else if (v->r == ARB_CONTROL_OK) {
    const arb_control_req_t *q = &v->req;
    CHECK(v->used >= 1 && v->used <= len);
    size_t line_len = v->used - (q->cmd == ARB_CONTROL_EVAL ? q->body_len : 0);
    CHECK(line_len >= 1 && line_len <= ARB_CONTROL_MAX_REQUEST);
    CHECK(memchr(buf, '\0', line_len) == NULL);
    const char *nl = memchr(buf, '\n', line_len);
    if (at_eof && nl == NULL)
      CHECK(line_len == len && q->cmd != ARB_CONTROL_EVAL);
    else
      CHECK(nl == buf + line_len - 1);
    CHECK(q->cmd == ARB_CONTROL_STATUS || q->cmd == ARB_CONTROL_RELOAD ||
          q->cmd == ARB_CONTROL_STOP || q->cmd == ARB_CONTROL_EVAL);
    CHECK(q->dry_run == 0 || (q->dry_run == 1 && q->cmd == ARB_CONTROL_RELOAD));
    CHECK(q->processes == 0 ||
          (q->processes == 1 && q->cmd == ARB_CONTROL_STATUS));
    CHECK(q->json == 0 || (q->json == 1 && (q->cmd == ARB_CONTROL_STATUS ||
                                            q->cmd == ARB_CONTROL_EVAL)));
    if (q->cmd == ARB_CONTROL_EVAL) {
      CHECK(q->body_len >= 1 && q->body_len <= ARB_CONTROL_MAX_EVAL);
      CHECK(q->body == buf + line_len);
      CHECK(q->timeout_ms >= 0 && q->timeout_ms <= ARB_CONTROL_MAX_EVAL_MS);
    } else {
      CHECK(q->body_len == 0 && q->body == NULL && q->timeout_ms == 0);
    }
    /* The line formats back to one that parses to the same request (an
    ** eval's chunk follows it). */
    char line[64 + ARB_CONTROL_MAX_EVAL];
    size_t n = arb_control_format_request(q, line, 64);
    CHECK(n < 64);
    memcpy(line + n, q->body ? q->body : "", q->body_len);
    verdict_t again;
    parse(line, n + q->body_len, 0, &again);
    CHECK(again.r == ARB_CONTROL_OK && again.used == n + q->body_len);
    CHECK(again.req.cmd == q->cmd && again.req.dry_run == q->dry_run &&
          again.req.json == q->json && again.req.processes == q->processes &&
          again.req.timeout_ms == q->timeout_ms &&
          again.req.body_len == q->body_len);
    CHECK(q->body_len == 0 ||
          memcmp(again.req.body, q->body, q->body_len) == 0);
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
           a->req.dry_run == b->req.dry_run && a->req.json == b->req.json &&
           a->req.processes == b->req.processes &&
           a->req.timeout_ms == b->req.timeout_ms &&
           a->req.body_len == b->req.body_len;
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
