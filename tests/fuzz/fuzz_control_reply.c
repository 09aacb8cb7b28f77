/*
** fuzz_control_reply.c: libFuzzer target for the control client's answer
** parser (arb_control_parse_reply in host/rt/control_proto.c): the bytes
** a host sends `arbor status/reload/stop`.
**
** The answer format is small enough to state independently: 1 to 3
** decimal digits worth at most 255, then a newline.  Every input is
** checked both ways: what the parser accepts has that form and the code
** it reports, and what has that form is accepted.  A broken check aborts,
** which libFuzzer reports with the input.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "control_proto.h"

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                 \
      abort();                                                        \
    }                                                                 \
  } while (0)

/* The format, stated plainly: the code, or -1. */
static int expected_code(const uint8_t *d, size_t n, size_t *text_at) {
  size_t digits = 0;
  int value = 0;
  while (digits < n && d[digits] >= '0' && d[digits] <= '9') {
    if (digits == 3) return -1;
    value = value * 10 + (d[digits] - '0');
    digits++;
  }
  if (digits == 0 || digits == n || d[digits] != '\n' || value > 255)
    return -1;
  *text_at = digits + 1;
  return value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int code = -7;
  size_t at = (size_t)-1, want_at = 0;
  int r = arb_control_parse_reply((const char *)data, size, &code, &at);
  int want = expected_code(data, size, &want_at);
  CHECK(r == 0 || r == -1);
  if (want < 0) {
    CHECK(r == -1);
  } else {
    CHECK(r == 0);
    CHECK(code == want);
    CHECK(at == want_at && at <= size);
  }
  return 0;
}
