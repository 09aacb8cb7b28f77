/*
** term.h: Erlang's external term format, read with bounds and limits.
**
** erl_interface's ei_decode_* functions trust their input: they take no
** buffer length and read wherever a length field points.  Terms from
** another node are hostile input, so this module walks a term itself,
** checking every header and payload against the bytes there are and
** against limits (nesting depth, element count, atom length, integer
** width), and only then hands each checked item to ei to decode.  What
** it decodes goes to a visitor in pre-order, so the caller (the Lua
** binding) builds its own values without this file knowing Lua.
**
** Encoding needs no checks of that kind and is ei's ei_x_encode_* as is;
** this file adds only the helpers the distribution layer shares (atom
** names for pids, the version byte).
**
** Depends on libc and ei.h (Debian's erlang-dev); no Lua, no libuv.
*/
#ifndef ARB_DIST_TERM_H
#define ARB_DIST_TERM_H

#include <stddef.h>
#include <stdint.h>

#include <ei.h>

/* Limits a decode is held to. */
typedef struct arb_term_limits_s {
  int max_depth;          /* nesting of tuples, lists and maps */
  size_t max_elements;    /* items in the whole term */
  size_t max_atom_chars;  /* Erlang's own limit is 255 */
} arb_term_limits_t;

#define ARB_TERM_DEFAULT_DEPTH 100
#define ARB_TERM_DEFAULT_ELEMENTS (1u << 20)
#define ARB_TERM_ATOM_CHARS 255

enum { ARB_TERM_TUPLE = 1, ARB_TERM_LIST, ARB_TERM_MAP };

/* Called for each item; each returns 0 to go on or -1 to stop (then
** the decode fails with the visitor's own message in err, if it set
** one).  A container is announced by begin (with its count: pairs for
** a map) and closed by end after its items; a list whose tail is not
** [] ends with the tail as one more item and end's has_tail set. */
typedef struct arb_term_visitor_s {
  int (*integer)(void *ud, int64_t v);
  int (*flt)(void *ud, double v);
  int (*atom)(void *ud, const char *name, size_t len);
  int (*binary)(void *ud, const char *data, size_t len);
  int (*pid)(void *ud, const erlang_pid *p);
  int (*ref)(void *ud, const erlang_ref *r);
  int (*begin)(void *ud, int kind, uint32_t n);
  int (*end)(void *ud, int kind, uint32_t n, int has_tail);
} arb_term_visitor_t;

/* Decodes one term at buf[*idx] (no version byte), at most len bytes in
** all, advancing *idx past it.  Returns 0, or -1 with a one-line reason
** in err ("truncated term: ... at byte 12", "term nested deeper than
** 100 levels", "atom of 300 characters (limit 255)", "integer does not
** fit in 64 bits", "unsupported term: a fun"...). */
int arb_term_decode(const char *buf, size_t len, size_t *idx,
                    const arb_term_limits_t *limits,
                    const arb_term_visitor_t *v, void *ud, char *err,
                    size_t errlen);

/* As arb_term_decode, but skips the term without a visitor: checks it
** and advances *idx. */
int arb_term_skip(const char *buf, size_t len, size_t *idx,
                  const arb_term_limits_t *limits, char *err, size_t errlen);

/* Reads the version byte (131) at buf[*idx]; -1 with err if absent. */
int arb_term_version(const char *buf, size_t len, size_t *idx, char *err,
                     size_t errlen);

/* The default limits. */
void arb_term_default_limits(arb_term_limits_t *l);

#endif
