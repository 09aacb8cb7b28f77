/*
** term.c: a bounded walk over Erlang's external term format (term.h).
**
** Every item is checked here before ei reads it: the tag, then the
** header bytes, then the payload length against what is left of the
** buffer.  Counts announced by a header (tuple arity, list length, map
** size) are checked against the bytes left too (each item takes at
** least one byte), so a hostile count cannot make the caller allocate
** for elements that are not there.
*/
#include "term.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Tags of the external term format. */
enum {
  TAG_NEW_FLOAT = 70,
  TAG_BIT_BINARY = 77,
  TAG_ATOM_CACHE_REF = 82,
  TAG_NEW_PID = 88,
  TAG_NEW_PORT = 89,
  TAG_NEWER_REFERENCE = 90,
  TAG_SMALL_INTEGER = 97,
  TAG_INTEGER = 98,
  TAG_FLOAT = 99,
  TAG_ATOM = 100,
  TAG_REFERENCE = 101,
  TAG_PORT = 102,
  TAG_PID = 103,
  TAG_SMALL_TUPLE = 104,
  TAG_LARGE_TUPLE = 105,
  TAG_NIL = 106,
  TAG_STRING = 107,
  TAG_LIST = 108,
  TAG_BINARY = 109,
  TAG_SMALL_BIG = 110,
  TAG_LARGE_BIG = 111,
  TAG_NEW_FUN = 112,
  TAG_EXPORT = 113,
  TAG_NEW_REFERENCE = 114,
  TAG_SMALL_ATOM = 115,
  TAG_MAP = 116,
  TAG_FUN = 117,
  TAG_ATOM_UTF8 = 118,
  TAG_SMALL_ATOM_UTF8 = 119,
  TAG_V4_PORT = 120,
  TAG_LOCAL = 121,
  TAG_VERSION = 131
};

typedef struct walk_s {
  const unsigned char *buf;
  size_t len;
  size_t idx;
  size_t elements;
  const arb_term_limits_t *lim;
  const arb_term_visitor_t *v; /* NULL: only check */
  void *ud;
  char *err;
  size_t errlen;
} walk_t;

static int fail(walk_t *w, size_t at, const char *fmt, ...) {
  if (w->err && w->errlen) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(w->err, w->errlen, "%s at byte %zu", msg, at);
  }
  return -1;
}

/* The visitor refused: keep its message, or say so. */
static int refused(walk_t *w, size_t at) {
  if (w->err && w->errlen && w->err[0] == '\0')
    return fail(w, at, "term refused");
  return -1;
}

static int need(walk_t *w, size_t at, size_t n, const char *what) {
  if (n > w->len - w->idx)
    return fail(w, at, "truncated term: %s needs %zu bytes, %zu left", what,
                n, w->len - w->idx);
  return 0;
}

static uint32_t be16(const unsigned char *p) {
  return (uint32_t)p[0] << 8 | p[1];
}
static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int count(walk_t *w, size_t at) {
  if (++w->elements > w->lim->max_elements)
    return fail(w, at, "term too large (more than %zu elements)",
                w->lim->max_elements);
  return 0;
}

/* A count announced by a header must fit in the bytes left, each item
** taking at least min_bytes. */
static int plausible(walk_t *w, size_t at, uint64_t n, size_t min_bytes,
                     const char *what) {
  if (n * min_bytes > w->len - w->idx)
    return fail(w, at, "truncated term: %s of %llu items in %zu bytes", what,
                (unsigned long long)n, w->len - w->idx);
  if (n > w->lim->max_elements)
    return fail(w, at, "term too large (%s of %llu items, limit %zu)", what,
                (unsigned long long)n, w->lim->max_elements);
  return 0;
}

/* Checks the atom at w->idx without moving; stores its byte length and
** header size. */
static int check_atom(walk_t *w, size_t *hdr, size_t *nbytes, int *utf8) {
  size_t at = w->idx;
  if (need(w, at, 1, "an atom") != 0) return -1;
  unsigned tag = w->buf[at];
  const unsigned char *p = w->buf + at + 1;
  switch (tag) {
    case TAG_ATOM:
    case TAG_ATOM_UTF8:
      if (need(w, at, 3, "an atom header") != 0) return -1;
      *hdr = 3;
      *nbytes = be16(p);
      break;
    case TAG_SMALL_ATOM:
    case TAG_SMALL_ATOM_UTF8:
      if (need(w, at, 2, "an atom header") != 0) return -1;
      *hdr = 2;
      *nbytes = p[0];
      break;
    default:
      return fail(w, at, "bad term: an atom expected, tag %u found", tag);
  }
  *utf8 = tag == TAG_ATOM_UTF8 || tag == TAG_SMALL_ATOM_UTF8;
  if (need(w, at, *hdr + *nbytes, "an atom") != 0) return -1;
  size_t chars = 0;
  const unsigned char *s = w->buf + at + *hdr;
  for (size_t i = 0; i < *nbytes; i++)
    if (!*utf8 || (s[i] & 0xC0) != 0x80) chars++;
  if (chars > w->lim->max_atom_chars)
    return fail(w, at, "atom of %zu characters (limit %zu)", chars,
                w->lim->max_atom_chars);
  if (*nbytes > 4 * ARB_TERM_ATOM_CHARS)
    return fail(w, at, "atom of %zu bytes (limit %d)", *nbytes,
                4 * ARB_TERM_ATOM_CHARS);
  return 0;
}

static int walk(walk_t *w, int depth);

/* An atom item: decoded by ei into UTF-8. */
static int walk_atom(walk_t *w) {
  size_t at = w->idx, hdr = 0, nbytes = 0;
  int utf8 = 0;
  if (check_atom(w, &hdr, &nbytes, &utf8) != 0) return -1;
  if (w->v) {
    char name[MAXATOMLEN_UTF8];
    int i = (int)at;
    if (ei_decode_atom_as((const char *)w->buf, &i, name, sizeof(name),
                          ERLANG_UTF8, NULL, NULL) < 0)
      return fail(w, at, "bad term: an atom that is not valid %s",
                  utf8 ? "UTF-8" : "Latin-1");
    if (w->v->atom(w->ud, name, strlen(name)) != 0) return refused(w, at);
  }
  w->idx = at + hdr + nbytes;
  return 0;
}

/* Pids and references: a node atom inside, checked like any atom. */
static int walk_pid(walk_t *w, unsigned tag) {
  size_t at = w->idx, hdr = 0, nbytes = 0;
  int utf8 = 0;
  w->idx++;
  if (check_atom(w, &hdr, &nbytes, &utf8) != 0) return -1;
  w->idx += hdr + nbytes;
  size_t rest = tag == TAG_NEW_PID ? 12 : 9;
  if (need(w, at, rest, "a pid") != 0) return -1;
  if (w->v) {
    erlang_pid pid;
    int i = (int)at;
    if (ei_decode_pid((const char *)w->buf, &i, &pid) < 0)
      return fail(w, at, "bad term: a pid ei cannot read");
    if (w->v->pid(w->ud, &pid) != 0) return refused(w, at);
  }
  w->idx += rest;
  return 0;
}

static int walk_ref(walk_t *w, unsigned tag) {
  size_t at = w->idx, hdr = 0, nbytes = 0;
  int utf8 = 0;
  uint32_t words = 1;
  w->idx++;
  if (tag != TAG_REFERENCE) {
    if (need(w, at, 2, "a reference header") != 0) return -1;
    words = be16(w->buf + w->idx);
    if (words == 0 || words > 5)
      return fail(w, at, "bad term: a reference of %u words (1 to 5)",
                  (unsigned)words);
    w->idx += 2;
  }
  if (check_atom(w, &hdr, &nbytes, &utf8) != 0) return -1;
  w->idx += hdr + nbytes;
  size_t rest = tag == TAG_REFERENCE       ? 5
                : tag == TAG_NEW_REFERENCE ? 1 + 4 * (size_t)words
                                           : 4 + 4 * (size_t)words;
  if (need(w, at, rest, "a reference") != 0) return -1;
  if (w->v) {
    erlang_ref ref;
    int i = (int)at;
    if (ei_decode_ref((const char *)w->buf, &i, &ref) < 0)
      return fail(w, at, "bad term: a reference ei cannot read");
    if (w->v->ref(w->ud, &ref) != 0) return refused(w, at);
  }
  w->idx += rest;
  return 0;
}

/* Integers of any width: wider than 64 bits is an error. */
static int walk_integer(walk_t *w, unsigned tag) {
  size_t at = w->idx;
  int64_t value;
  const unsigned char *p = w->buf + at + 1;
  if (tag == TAG_SMALL_INTEGER) {
    if (need(w, at, 2, "an integer") != 0) return -1;
    value = p[0];
    w->idx += 2;
  } else if (tag == TAG_INTEGER) {
    if (need(w, at, 5, "an integer") != 0) return -1;
    value = (int32_t)be32(p);
    w->idx += 5;
  } else {
    size_t hdr = tag == TAG_SMALL_BIG ? 3 : 6;
    if (need(w, at, hdr, "a big integer header") != 0) return -1;
    uint64_t n = tag == TAG_SMALL_BIG ? p[0] : be32(p);
    unsigned sign = p[hdr - 2];
    if (n > w->len - w->idx - hdr)
      return fail(w, at, "truncated term: a big integer of %llu bytes",
                  (unsigned long long)n);
    const unsigned char *d = p + hdr - 1;
    uint64_t mag = 0;
    for (uint64_t i = n; i > 0; i--) {
      if (mag >> 56) return fail(w, at, "integer does not fit in 64 bits");
      mag = mag << 8 | d[i - 1];
    }
    if (sign ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
      return fail(w, at, "integer does not fit in 64 bits");
    if (w->v) {
      /* Checked: ei reads it the same way. */
      long long ll;
      int i = (int)at;
      if (ei_decode_longlong((const char *)w->buf, &i, &ll) < 0)
        return fail(w, at, "integer does not fit in 64 bits");
      value = ll;
    } else {
      value = 0;
    }
    w->idx += hdr + n;
  }
  if (w->v && w->v->integer(w->ud, value) != 0) return refused(w, at);
  return 0;
}

static int walk_float(walk_t *w, unsigned tag) {
  size_t at = w->idx, n = tag == TAG_NEW_FLOAT ? 9 : 32;
  if (need(w, at, n, "a float") != 0) return -1;
  if (w->v) {
    double d;
    int i = (int)at;
    if (ei_decode_double((const char *)w->buf, &i, &d) < 0)
      return fail(w, at, "bad term: a float ei cannot read");
    if (w->v->flt(w->ud, d) != 0) return refused(w, at);
  }
  w->idx += n;
  return 0;
}

static int begin(walk_t *w, size_t at, int kind, uint32_t n) {
  if (w->v && w->v->begin(w->ud, kind, n) != 0) return refused(w, at);
  return 0;
}

static int end(walk_t *w, size_t at, int kind, uint32_t n, int tail) {
  if (w->v && w->v->end(w->ud, kind, n, tail) != 0) return refused(w, at);
  return 0;
}

static int walk_tuple(walk_t *w, unsigned tag, int depth) {
  size_t at = w->idx;
  size_t hdr = tag == TAG_SMALL_TUPLE ? 2 : 5;
  if (need(w, at, hdr, "a tuple header") != 0) return -1;
  uint32_t n = hdr == 2 ? w->buf[at + 1] : be32(w->buf + at + 1);
  w->idx += hdr;
  if (plausible(w, at, n, 1, "a tuple") != 0) return -1;
  if (begin(w, at, ARB_TERM_TUPLE, n) != 0) return -1;
  for (uint32_t i = 0; i < n; i++)
    if (walk(w, depth + 1) != 0) return -1;
  return end(w, at, ARB_TERM_TUPLE, n, 0);
}

static int walk_list(walk_t *w, int depth) {
  size_t at = w->idx;
  if (need(w, at, 5, "a list header") != 0) return -1;
  uint32_t n = be32(w->buf + at + 1);
  w->idx += 5;
  if (plausible(w, at, (uint64_t)n + 1, 1, "a list") != 0) return -1;
  if (begin(w, at, ARB_TERM_LIST, n) != 0) return -1;
  for (uint32_t i = 0; i < n; i++)
    if (walk(w, depth + 1) != 0) return -1;
  if (need(w, at, 1, "a list's tail") != 0) return -1;
  if (w->buf[w->idx] == TAG_NIL) {
    w->idx++;
    return end(w, at, ARB_TERM_LIST, n, 0);
  }
  if (walk(w, depth + 1) != 0) return -1;
  return end(w, at, ARB_TERM_LIST, n, 1);
}

/* STRING_EXT: a list of bytes, as Erlang sends "abc". */
static int walk_string(walk_t *w) {
  size_t at = w->idx;
  if (need(w, at, 3, "a string header") != 0) return -1;
  uint32_t n = be16(w->buf + at + 1);
  if (need(w, at, 3 + (size_t)n, "a string") != 0) return -1;
  if (n > w->lim->max_elements - w->elements)
    return fail(w, at, "term too large (more than %zu elements)",
                w->lim->max_elements);
  w->elements += n;
  if (begin(w, at, ARB_TERM_LIST, n) != 0) return -1;
  for (uint32_t i = 0; w->v && i < n; i++)
    if (w->v->integer(w->ud, w->buf[at + 3 + i]) != 0) return refused(w, at);
  w->idx += 3 + (size_t)n;
  return end(w, at, ARB_TERM_LIST, n, 0);
}

static int walk_map(walk_t *w, int depth) {
  size_t at = w->idx;
  if (need(w, at, 5, "a map header") != 0) return -1;
  uint32_t n = be32(w->buf + at + 1);
  w->idx += 5;
  if (plausible(w, at, n, 2, "a map") != 0) return -1;
  if (begin(w, at, ARB_TERM_MAP, n) != 0) return -1;
  for (uint64_t i = 0; i < 2 * (uint64_t)n; i++)
    if (walk(w, depth + 1) != 0) return -1;
  return end(w, at, ARB_TERM_MAP, n, 0);
}

static int walk(walk_t *w, int depth) {
  size_t at = w->idx;
  if (depth > w->lim->max_depth)
    return fail(w, at, "term nested deeper than %d levels", w->lim->max_depth);
  if (need(w, at, 1, "a term") != 0) return -1;
  if (count(w, at) != 0) return -1;
  unsigned tag = w->buf[at];
  switch (tag) {
    case TAG_SMALL_INTEGER:
    case TAG_INTEGER:
    case TAG_SMALL_BIG:
    case TAG_LARGE_BIG:
      return walk_integer(w, tag);
    case TAG_NEW_FLOAT:
    case TAG_FLOAT:
      return walk_float(w, tag);
    case TAG_ATOM:
    case TAG_ATOM_UTF8:
    case TAG_SMALL_ATOM:
    case TAG_SMALL_ATOM_UTF8:
      return walk_atom(w);
    case TAG_BINARY: {
      if (need(w, at, 5, "a binary header") != 0) return -1;
      uint32_t n = be32(w->buf + at + 1);
      if (need(w, at, 5 + (size_t)n, "a binary") != 0) return -1;
      if (w->v && w->v->binary(w->ud, (const char *)w->buf + at + 5, n) != 0)
        return refused(w, at);
      w->idx += 5 + (size_t)n;
      return 0;
    }
    case TAG_SMALL_TUPLE:
    case TAG_LARGE_TUPLE:
      return walk_tuple(w, tag, depth);
    case TAG_NIL:
      w->idx++;
      if (begin(w, at, ARB_TERM_LIST, 0) != 0) return -1;
      return end(w, at, ARB_TERM_LIST, 0, 0);
    case TAG_STRING:
      return walk_string(w);
    case TAG_LIST:
      return walk_list(w, depth);
    case TAG_MAP:
      return walk_map(w, depth);
    case TAG_PID:
    case TAG_NEW_PID:
      return walk_pid(w, tag);
    case TAG_REFERENCE:
    case TAG_NEW_REFERENCE:
    case TAG_NEWER_REFERENCE:
      return walk_ref(w, tag);
    case TAG_BIT_BINARY:
      return fail(w, at, "unsupported term: a bitstring that is not whole "
                         "bytes");
    case TAG_PORT:
    case TAG_NEW_PORT:
    case TAG_V4_PORT:
      return fail(w, at, "unsupported term: a port");
    case TAG_NEW_FUN:
    case TAG_EXPORT:
    case TAG_FUN:
      return fail(w, at, "unsupported term: a fun");
    case TAG_ATOM_CACHE_REF:
    case TAG_LOCAL:
      return fail(w, at, "unsupported term: tag %u", tag);
    default:
      return fail(w, at, "bad term: unknown tag %u", tag);
  }
}

void arb_term_default_limits(arb_term_limits_t *l) {
  l->max_depth = ARB_TERM_DEFAULT_DEPTH;
  l->max_elements = ARB_TERM_DEFAULT_ELEMENTS;
  l->max_atom_chars = ARB_TERM_ATOM_CHARS;
}

static int run(const char *buf, size_t len, size_t *idx,
               const arb_term_limits_t *limits, const arb_term_visitor_t *v,
               void *ud, char *err, size_t errlen) {
  arb_term_limits_t def;
  if (limits == NULL) {
    arb_term_default_limits(&def);
    limits = &def;
  }
  if (err && errlen) err[0] = '\0';
  /* ei's indices are ints. */
  if (len > INT_MAX) len = INT_MAX;
  walk_t w = {(const unsigned char *)buf, len, *idx, 0, limits, v, ud,
              err, errlen};
  if (*idx > len) return fail(&w, *idx, "truncated term");
  if (walk(&w, 0) != 0) return -1;
  *idx = w.idx;
  return 0;
}

int arb_term_decode(const char *buf, size_t len, size_t *idx,
                    const arb_term_limits_t *limits,
                    const arb_term_visitor_t *v, void *ud, char *err,
                    size_t errlen) {
  return run(buf, len, idx, limits, v, ud, err, errlen);
}

int arb_term_skip(const char *buf, size_t len, size_t *idx,
                  const arb_term_limits_t *limits, char *err, size_t errlen) {
  return run(buf, len, idx, limits, NULL, NULL, err, errlen);
}

int arb_term_version(const char *buf, size_t len, size_t *idx, char *err,
                     size_t errlen) {
  if (*idx >= len || (unsigned char)buf[*idx] != TAG_VERSION) {
    if (err && errlen)
      snprintf(err, errlen, "bad term: no version byte (131) at byte %zu",
               *idx);
    return -1;
  }
  (*idx)++;
  return 0;
}
