/*
** control_proto.c: parsing the control socket's requests and answers.
**
** Every message names what was wrong and where, and quotes at most a
** short, escaped piece of the input: the text goes back to the client
** and may reach a terminal, so it never carries the client's raw bytes.
*/
#include "control_proto.h"

#include <stdio.h>
#include <string.h>

#define QUOTE_MAX 32 /* input bytes quoted in a message */

/* Writes word[0..n) into out (at least QUOTE_MAX * 4 + 4 bytes) with
** bytes outside printable ASCII as \xNN, cut after QUOTE_MAX bytes. */
static void quote(const char *word, size_t n, char *out) {
  size_t k = 0;
  for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
    unsigned char c = (unsigned char)word[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out[k++] = (char)c;
    } else {
      snprintf(out + k, 5, "\\x%02x", c);
      k += 4;
    }
  }
  if (n > QUOTE_MAX) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = '\0';
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* The next word of line[*at..n): sets *w and returns its length (0 at the
** end). */
static size_t next_word(const char *line, size_t n, size_t *at,
                        const char **w) {
  size_t i = *at;
  while (i < n && is_space(line[i])) i++;
  size_t start = i;
  while (i < n && !is_space(line[i])) i++;
  *w = line + start;
  *at = i;
  return i - start;
}

static int word_is(const char *w, size_t n, const char *lit) {
  return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

/* A decimal number of 1 to 9 digits in w[0..n), from 1 to max, into
** *out; 0 if it is one, else -1. */
static int parse_count(const char *w, size_t n, long max, long *out) {
  if (n == 0 || n > 9) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (w[i] < '0' || w[i] > '9') return -1;
    v = v * 10 + (w[i] - '0');
  }
  if (v < 1 || v > max) return -1;
  *out = v;
  return 0;
}

#define EXPECTED "(expected status, reload [--dry-run], stop or eval LEN)"

/* Parses one complete line (no newline, no NUL). */
static int parse_line(const char *line, size_t n, arb_control_req_t *req,
                      char *err, size_t errlen) {
  char q[QUOTE_MAX * 4 + 4];
  if (n > 0 && line[n - 1] == '\r') n--;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)line[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      snprintf(err, errlen, "bad request: control byte 0x%02x at offset %zu",
               c, i);
      return ARB_CONTROL_BAD;
    }
  }
  size_t at = 0;
  const char *w;
  size_t wn = next_word(line, n, &at, &w);
  if (wn == 0) {
    snprintf(err, errlen, "bad request: the line is empty");
    return ARB_CONTROL_BAD;
  }
  memset(req, 0, sizeof(*req));
  if (word_is(w, wn, "status")) {
    req->cmd = ARB_CONTROL_STATUS;
  } else if (word_is(w, wn, "reload")) {
    req->cmd = ARB_CONTROL_RELOAD;
  } else if (word_is(w, wn, "stop")) {
    req->cmd = ARB_CONTROL_STOP;
  } else if (word_is(w, wn, "eval")) {
    req->cmd = ARB_CONTROL_EVAL;
  } else {
    quote(w, wn, q);
    snprintf(err, errlen, "unknown request '%s' " EXPECTED, q);
    return ARB_CONTROL_BAD;
  }
  const char *cmd = w;
  size_t cmdn = wn;
  if (req->cmd == ARB_CONTROL_EVAL) {
    long v;
    wn = next_word(line, n, &at, &w);
    if (parse_count(w, wn, ARB_CONTROL_MAX_EVAL, &v) != 0) {
      quote(w, wn, q);
      snprintf(err, errlen,
               "bad request: eval needs the chunk's length in bytes (1 to "
               "%d), got '%s'",
               ARB_CONTROL_MAX_EVAL, q);
      return ARB_CONTROL_BAD;
    }
    req->body_len = (size_t)v;
  }
  while ((wn = next_word(line, n, &at, &w)) > 0) {
    if (req->cmd == ARB_CONTROL_RELOAD && word_is(w, wn, "--dry-run")) {
      req->dry_run = 1;
      continue;
    }
    if (req->cmd == ARB_CONTROL_STATUS && word_is(w, wn, "--processes")) {
      req->processes = 1;
      continue;
    }
    if ((req->cmd == ARB_CONTROL_STATUS || req->cmd == ARB_CONTROL_EVAL) &&
        word_is(w, wn, "--json")) {
      req->json = 1;
      continue;
    }
    if (req->cmd == ARB_CONTROL_EVAL && word_is(w, wn, "--timeout")) {
      long v;
      wn = next_word(line, n, &at, &w);
      if (parse_count(w, wn, ARB_CONTROL_MAX_EVAL_MS, &v) != 0) {
        quote(w, wn, q);
        snprintf(err, errlen,
                 "bad request: eval --timeout needs milliseconds (1 to %d), "
                 "got '%s'",
                 ARB_CONTROL_MAX_EVAL_MS, q);
        return ARB_CONTROL_BAD;
      }
      req->timeout_ms = (int)v;
      continue;
    }
    quote(w, wn, q);
    snprintf(err, errlen, "bad request: unknown argument '%s' for %.*s", q,
             (int)cmdn, cmd);
    return ARB_CONTROL_BAD;
  }
  return ARB_CONTROL_OK;
}

/* The request whose line is buf[0..line_len) (newline included) parsed
** into *req: complete once an eval's chunk has arrived too. */
static int with_body(const char *buf, size_t len, int at_eof, size_t line_len,
                     arb_control_req_t *req, size_t *used, char *err,
                     size_t errlen) {
  size_t need = line_len + req->body_len;
  if (len < need) {
    if (at_eof) {
      snprintf(err, errlen,
               "bad request: the eval chunk ended after %zu of its %zu bytes",
               len - line_len, req->body_len);
      return ARB_CONTROL_BAD;
    }
    *used = need;
    return ARB_CONTROL_MORE;
  }
  if (req->body_len) req->body = buf + line_len;
  *used = need;
  return ARB_CONTROL_OK;
}

int arb_control_parse_request(const char *buf, size_t len, int at_eof,
                              arb_control_req_t *req, size_t *used, char *err,
                              size_t errlen) {
  size_t limit = len < ARB_CONTROL_MAX_REQUEST ? len : ARB_CONTROL_MAX_REQUEST;
  *used = 0;
  for (size_t i = 0; i < limit; i++) {
    if (buf[i] == '\0') {
      snprintf(err, errlen, "bad request: NUL byte at offset %zu", i);
      return ARB_CONTROL_BAD;
    }
    if (buf[i] == '\n') {
      int r = parse_line(buf, i, req, err, errlen);
      if (r != ARB_CONTROL_OK) return r;
      return with_body(buf, len, at_eof, i + 1, req, used, err, errlen);
    }
  }
  if (len >= ARB_CONTROL_MAX_REQUEST) {
    snprintf(err, errlen,
             "bad request: no newline within %d bytes (requests are one "
             "short line)",
             ARB_CONTROL_MAX_REQUEST);
    return ARB_CONTROL_BAD;
  }
  if (!at_eof) return ARB_CONTROL_MORE;
  int r = parse_line(buf, len, req, err, errlen);
  if (r != ARB_CONTROL_OK) return r;
  /* A line cut by the end of input leaves no room for an eval's chunk. */
  return with_body(buf, len, at_eof, len, req, used, err, errlen);
}

size_t arb_control_format_request(const arb_control_req_t *req, char *buf,
                                  size_t len) {
  switch (req->cmd) {
    case ARB_CONTROL_STATUS:
      snprintf(buf, len, "status%s%s\n", req->json ? " --json" : "",
               req->processes ? " --processes" : "");
      break;
    case ARB_CONTROL_STOP:
      snprintf(buf, len, "stop\n");
      break;
    case ARB_CONTROL_EVAL:
      if (req->timeout_ms > 0)
        snprintf(buf, len, "eval %zu --timeout %d%s\n", req->body_len,
                 req->timeout_ms, req->json ? " --json" : "");
      else
        snprintf(buf, len, "eval %zu%s\n", req->body_len,
                 req->json ? " --json" : "");
      break;
    default:
      snprintf(buf, len, "%s\n", req->dry_run ? "reload --dry-run" : "reload");
  }
  return strlen(buf);
}

int arb_control_parse_reply(const char *buf, size_t len, int *code,
                            size_t *text_at) {
  size_t i = 0;
  int value = 0;
  while (i < len && i < 3 && buf[i] >= '0' && buf[i] <= '9')
    value = value * 10 + (buf[i++] - '0');
  if (i == 0 || i >= len || buf[i] != '\n' || value > 255) return -1;
  *code = value;
  *text_at = i + 1;
  return 0;
}
