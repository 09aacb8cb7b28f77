/*
** pattern.h: Lua 5.4 patterns (the manual's section 6.4.1) matched with a
** step budget.
**
** Lua's own matcher backtracks without limit inside one C call: a
** pattern such as "a*a*a*...b" against a long line of 'a's runs for
** minutes, and nothing (no hook, no signal) can stop it.  This matcher
** gives the same answers as string.find for every pattern it accepts,
** but counts its steps (one per pattern item tried, one per character
** tested) and gives up with ARB_PAT_TOO_COSTLY once a budget is spent,
** or when the backtracking nests deeper than ARB_PAT_MAX_DEPTH (where
** Lua raises "pattern too complex").  One shortcut keeps a common ready
** pattern cheap: an unanchored pattern that starts with ".*" or ".-" is
** tried from the first start position only (the rest of it was already
** tried at every later position, so no later start can match).
**
** arb_pattern_check validates a whole pattern up front, more strictly
** than Lua (which finds some mistakes only when the matcher reaches
** them): an unclosed set or capture, a stray ')', a '%' at the end,
** %b without its two characters, %f without a set, a back-reference to
** a capture not closed before it (or to a position capture), more than
** ARB_PAT_MAX_CAPTURES captures, and '%' before a letter or digit that
** names no class.  arb_pattern_find assumes a checked pattern.
**
** Pure C11 and libc (<ctype.h> classes, as Lua uses them); no Lua, no
** libuv, nothing allocated.
*/
#ifndef ARB_CORE_PATTERN_H
#define ARB_CORE_PATTERN_H

#include <stddef.h>

#define ARB_PAT_MAX_CAPTURES 32 /* as LUA_MAXCAPTURES */
#define ARB_PAT_MAX_DEPTH 200   /* nested backtracking, as Lua's MAXCCALLS */

enum { ARB_PAT_NOMATCH = 0, ARB_PAT_MATCH = 1, ARB_PAT_TOO_COSTLY = 2 };

/* One capture of a match: bytes [start, start + len) of the subject, or
** a position capture (is_position; start is the 0-based position). */
typedef struct arb_pat_capture_s {
  size_t start, len;
  int is_position;
} arb_pat_capture_t;

typedef struct arb_pat_result_s {
  size_t start, end; /* the match: bytes [start, end) */
  int ncaptures;
  arb_pat_capture_t captures[ARB_PAT_MAX_CAPTURES];
  long steps; /* steps spent, whatever the outcome */
} arb_pat_result_t;

/* 0 if pat[0..plen) is a valid pattern; otherwise -1 with a message in
** err ("missing ']' (set opened at byte 3)"), bytes counted from 1. */
int arb_pattern_check(const char *pat, size_t plen, char *err,
                      size_t errlen);

/* Finds the first match of the checked pattern in s[0..slen) starting at
** byte init (0-based; init <= slen), as string.find(s, pat, init + 1)
** does.  Returns ARB_PAT_MATCH (res filled), ARB_PAT_NOMATCH, or
** ARB_PAT_TOO_COSTLY when more than budget steps were needed (or the
** backtracking nested too deep).  res may be NULL. */
int arb_pattern_find(const char *s, size_t slen, const char *pat,
                     size_t plen, size_t init, long budget,
                     arb_pat_result_t *res);

#endif
