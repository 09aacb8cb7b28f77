/*
** pattern.c: Lua 5.4 patterns with a step budget (see pattern.h).
**
** Written from the description in the Lua 5.4 reference manual, section
** 6.4.1, with the same backtracking order as string.find (greedy '*' and
** '+' give back one character at a time, '-' takes one more at a time,
** '?' tries with the character first), so the match found, its bounds
** and its captures are the ones Lua finds.  Every step is counted: a
** pattern item tried at a position, a character tested by a repetition,
** a character of %b's scan, a byte compared by a back-reference.  When
** the budget is spent the match stops where it is and unwinds.
**
** Depends on libc only.
*/
#include "pattern.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ESC '%'

enum { CAP_OPEN = -1, CAP_POSITION = -2 };

/* {======================================================================
** Checking a pattern
** ======================================================================*/

static int is_class_letter(int c) {
  switch (tolower(c)) {
  case 'a': case 'c': case 'd': case 'g': case 'l':
  case 'p': case 's': case 'u': case 'w': case 'x':
    return 1;
  default:
    return 0;
  }
}

static int check_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* The escape at pat[i] ('%' at i - 1) inside or outside a set: a class
** letter or a character that is not alphanumeric. */
static int check_escape(const char *pat, size_t i, char *err, size_t errlen) {
  unsigned char c = (unsigned char)pat[i];
  if (isalnum(c) && !is_class_letter(c))
    return check_fail(err, errlen,
                      "'%%%c' at byte %zu is not a character class "
                      "(classes: %%a %%c %%d %%g %%l %%p %%s %%u %%w %%x; "
                      "%%%% and %%. escape)",
                      c, i);
  return 0;
}

/* The set opened at pat[i] ('['): sets *after to the byte after its ']'.
** As in Lua, the first character after '[' or '[^' belongs to the set
** even when it is ']'. */
static int check_set(const char *pat, size_t plen, size_t i, size_t *after,
                     char *err, size_t errlen) {
  size_t k = i + 1;
  if (k < plen && pat[k] == '^') k++;
  do {
    if (k >= plen)
      return check_fail(err, errlen, "missing ']' (set opened at byte %zu)",
                        i + 1);
    if (pat[k++] == ESC) {
      if (k >= plen)
        return check_fail(err, errlen,
                          "missing ']' (set opened at byte %zu)", i + 1);
      if (check_escape(pat, k, err, errlen)) return -1;
      k++;
    }
  } while (k >= plen || pat[k] != ']');
  *after = k + 1;
  return 0;
}

int arb_pattern_check(const char *pat, size_t plen, char *err,
                      size_t errlen) {
  int open[ARB_PAT_MAX_CAPTURES]; /* capture numbers still open, a stack */
  size_t opened_at[ARB_PAT_MAX_CAPTURES];
  int nopen = 0, ncap = 0;
  int closed[ARB_PAT_MAX_CAPTURES] = {0}, position[ARB_PAT_MAX_CAPTURES] = {0};
  size_t i = (plen > 0 && pat[0] == '^') ? 1 : 0;
  while (i < plen) {
    size_t next;
    switch (pat[i]) {
    case '(':
      if (ncap == ARB_PAT_MAX_CAPTURES)
        return check_fail(err, errlen, "too many captures (at most %d)",
                          ARB_PAT_MAX_CAPTURES);
      if (i + 1 < plen && pat[i + 1] == ')') {
        closed[ncap] = position[ncap] = 1;
        ncap++;
        i += 2;
      } else {
        opened_at[nopen] = i + 1;
        open[nopen++] = ncap++;
        i++;
      }
      continue;
    case ')':
      if (nopen == 0)
        return check_fail(err, errlen, "')' at byte %zu closes no capture",
                          i + 1);
      closed[open[--nopen]] = 1;
      i++;
      continue;
    case ESC:
      if (i + 1 >= plen)
        return check_fail(err, errlen, "pattern ends with '%%'");
      if (pat[i + 1] == 'b') {
        if (i + 3 >= plen)
          return check_fail(err, errlen,
                            "missing arguments to '%%b' at byte %zu", i + 1);
        i += 4;
        continue;
      }
      if (pat[i + 1] == 'f') {
        if (i + 2 >= plen || pat[i + 2] != '[')
          return check_fail(err, errlen,
                            "missing '[' after '%%f' at byte %zu", i + 1);
        if (check_set(pat, plen, i + 2, &i, err, errlen)) return -1;
        continue;
      }
      if (isdigit((unsigned char)pat[i + 1])) {
        int n = pat[i + 1] - '0';
        if (n == 0 || n > ncap || !closed[n - 1])
          return check_fail(err, errlen,
                            "invalid capture index %%%d at byte %zu (no "
                            "capture %d closed before it)",
                            n, i + 1, n);
        if (position[n - 1])
          return check_fail(err, errlen,
                            "%%%d at byte %zu refers to a position capture",
                            n, i + 1);
        i += 2;
        continue;
      }
      if (check_escape(pat, i + 1, err, errlen)) return -1;
      next = i + 2;
      break;
    case '[':
      if (check_set(pat, plen, i, &next, err, errlen)) return -1;
      break;
    default: /* a character, '.', or '^' / '$' where they are not anchors */
      next = i + 1;
      break;
    }
    if (next < plen && strchr("*+-?", pat[next]) && pat[next] != '\0') next++;
    i = next;
  }
  if (nopen > 0)
    return check_fail(err, errlen, "unfinished capture (opened at byte %zu)",
                      opened_at[nopen - 1]);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Matching
** ======================================================================*/

typedef struct state_s {
  const char *s_init, *s_end, *p_end;
  long budget, steps;
  int depth, costly, level;
  struct {
    const char *start;
    ptrdiff_t len; /* CAP_OPEN, CAP_POSITION or the length */
  } cap[ARB_PAT_MAX_CAPTURES];
} state_t;

/* Takes n steps from the budget; 0 (and the state marked) when spent. */
static int spend(state_t *ms, long n) {
  if (ms->costly) return 0;
  if (ms->budget - ms->steps < n) {
    ms->steps = ms->budget;
    ms->costly = 1;
    return 0;
  }
  ms->steps += n;
  return 1;
}

static int class_has(int c, int cl) {
  int in;
  switch (tolower(cl)) {
  case 'a': in = isalpha(c); break;
  case 'c': in = iscntrl(c); break;
  case 'd': in = isdigit(c); break;
  case 'g': in = isgraph(c); break;
  case 'l': in = islower(c); break;
  case 'p': in = ispunct(c); break;
  case 's': in = isspace(c); break;
  case 'u': in = isupper(c); break;
  case 'w': in = isalnum(c); break;
  case 'x': in = isxdigit(c); break;
  default: return cl == c; /* an escaped character stands for itself */
  }
  in = in != 0;
  return isupper(cl) ? !in : in;
}

/* Is c in the set from p ('[') to close (its ']')? */
static int set_has(int c, const char *p, const char *close) {
  int want = 1;
  p++;
  if (*p == '^') {
    want = 0;
    p++;
  }
  for (; p < close; p++) {
    if (*p == ESC) {
      p++;
      if (class_has(c, (unsigned char)*p)) return want;
    } else if (p[1] == '-' && p + 2 < close) {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return want;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return want;
    }
  }
  return !want;
}

/* The end of the single-character class at p (a checked pattern). */
static const char *class_end(const state_t *ms, const char *p) {
  if (*p == ESC) return p + 2;
  if (*p != '[') return p + 1;
  p++;
  if (*p == '^') p++;
  do {
    if (*p++ == ESC) p++;
  } while (p < ms->p_end && *p != ']');
  return p + 1;
}

/* Does the character at s (s < s_end) match the class p..ep? */
static int class_matches(const char *s, const char *p, const char *ep) {
  int c = (unsigned char)*s;
  switch (*p) {
  case '.': return 1;
  case ESC: return class_has(c, (unsigned char)p[1]);
  case '[': return set_has(c, p, ep - 1);
  default: return (unsigned char)*p == c;
  }
}

static const char *match(state_t *ms, const char *s, const char *p);

/* As many as possible, then one fewer at a time. */
static const char *max_expand(state_t *ms, const char *s, const char *p,
                              const char *ep) {
  size_t i = 0;
  while (s + i < ms->s_end && spend(ms, 1) && class_matches(s + i, p, ep)) i++;
  if (ms->costly) return NULL;
  for (;;) {
    const char *r = match(ms, s + i, ep + 1);
    if (r || ms->costly || i == 0) return r;
    i--;
  }
}

/* As few as possible, then one more at a time. */
static const char *min_expand(state_t *ms, const char *s, const char *p,
                              const char *ep) {
  for (;;) {
    const char *r = match(ms, s, ep + 1);
    if (r || ms->costly) return r;
    if (s < ms->s_end && spend(ms, 1) && class_matches(s, p, ep))
      s++;
    else
      return NULL;
  }
}

static const char *open_capture(state_t *ms, const char *s, const char *p,
                                ptrdiff_t what) {
  int l = ms->level;
  ms->cap[l].start = s;
  ms->cap[l].len = what;
  ms->level = l + 1;
  const char *r = match(ms, s, p);
  if (r == NULL) ms->level--;
  return r;
}

static const char *close_capture(state_t *ms, const char *s, const char *p) {
  int l = ms->level - 1;
  while (l > 0 && ms->cap[l].len != CAP_OPEN) l--;
  ms->cap[l].len = s - ms->cap[l].start;
  const char *r = match(ms, s, p);
  if (r == NULL) ms->cap[l].len = CAP_OPEN;
  return r;
}

/* %bxy at s: x, then up to the y that balances it. */
static const char *balance(state_t *ms, const char *s, const char *p) {
  if (s >= ms->s_end || *s != p[0]) return NULL;
  int depth = 1;
  for (const char *q = s + 1; q < ms->s_end; q++) {
    if (!spend(ms, 1)) return NULL;
    if (*q == p[1]) {
      if (--depth == 0) return q + 1;
    } else if (*q == p[0]) {
      depth++;
    }
  }
  return NULL;
}

/* %n at s: the text capture n matched. */
static const char *back_reference(state_t *ms, const char *s, int n) {
  size_t len = (size_t)ms->cap[n - 1].len;
  if ((size_t)(ms->s_end - s) < len) return NULL;
  if (!spend(ms, (long)(len / 8))) return NULL;
  return memcmp(ms->cap[n - 1].start, s, len) == 0 ? s + len : NULL;
}

static const char *match(state_t *ms, const char *s, const char *p) {
  if (ms->depth >= ARB_PAT_MAX_DEPTH) {
    ms->costly = 1;
    return NULL;
  }
  ms->depth++;
  for (;;) {
    if (!spend(ms, 1)) {
      s = NULL;
      break;
    }
    if (p == ms->p_end) break;
    if (*p == '(') {
      s = p + 1 < ms->p_end && p[1] == ')'
              ? open_capture(ms, s, p + 2, CAP_POSITION)
              : open_capture(ms, s, p + 1, CAP_OPEN);
      break;
    }
    if (*p == ')') {
      s = close_capture(ms, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == ms->p_end) {
      if (s != ms->s_end) s = NULL;
      break;
    }
    if (*p == ESC && p[1] == 'b') {
      s = balance(ms, s, p + 2);
      if (s == NULL) break;
      p += 4;
      continue;
    }
    if (*p == ESC && p[1] == 'f') {
      const char *set = p + 2, *ep = class_end(ms, set);
      int before = s == ms->s_init ? 0 : (unsigned char)s[-1];
      int here = s < ms->s_end ? (unsigned char)*s : 0;
      if (set_has(before, set, ep - 1) || !set_has(here, set, ep - 1)) {
        s = NULL;
        break;
      }
      p = ep;
      continue;
    }
    if (*p == ESC && isdigit((unsigned char)p[1])) {
      s = back_reference(ms, s, p[1] - '0');
      if (s == NULL) break;
      p += 2;
      continue;
    }
    /* A single-character class, maybe repeated. */
    const char *ep = class_end(ms, p);
    char rep = ep < ms->p_end ? *ep : '\0';
    int here = s < ms->s_end && class_matches(s, p, ep);
    if (!here) {
      if (rep == '*' || rep == '?' || rep == '-') {
        p = ep + 1;
        continue;
      }
      s = NULL;
      break;
    }
    if (rep == '?') {
      const char *r = match(ms, s + 1, ep + 1);
      if (r || ms->costly) {
        s = r;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (rep == '+' || rep == '*') {
      s = max_expand(ms, rep == '+' ? s + 1 : s, p, ep);
      break;
    }
    if (rep == '-') {
      s = min_expand(ms, s, p, ep);
      break;
    }
    s++;
    p = ep;
  }
  ms->depth--;
  return s;
}

int arb_pattern_find(const char *s, size_t slen, const char *pat,
                     size_t plen, size_t init, long budget,
                     arb_pat_result_t *res) {
  state_t ms;
  int anchored = plen > 0 && pat[0] == '^';
  const char *p = pat + anchored;
  /* ".*" or ".-" first: the first start already tried the rest at every
  ** later position, so later starts cannot match (this keeps ".*ready"
  ** linear in the line instead of quadratic). */
  int leading_any = plen - (size_t)anchored >= 2 && p[0] == '.' &&
                    (p[1] == '*' || p[1] == '-');
  ms.s_init = s;
  ms.s_end = s + slen;
  ms.p_end = pat + plen;
  ms.budget = budget;
  ms.steps = 0;
  ms.costly = 0;
  int outcome = ARB_PAT_NOMATCH;
  if (init <= slen) {
    const char *from = s + init;
    for (;;) {
      ms.level = 0;
      ms.depth = 0;
      const char *e = match(&ms, from, p);
      if (e) {
        outcome = ARB_PAT_MATCH;
        if (res) {
          res->start = (size_t)(from - s);
          res->end = (size_t)(e - s);
          res->ncaptures = ms.level;
          for (int i = 0; i < ms.level; i++) {
            res->captures[i].start = (size_t)(ms.cap[i].start - s);
            res->captures[i].is_position = ms.cap[i].len == CAP_POSITION;
            res->captures[i].len = ms.cap[i].len < 0 ? 0 : (size_t)ms.cap[i].len;
          }
        }
        break;
      }
      if (ms.costly) {
        outcome = ARB_PAT_TOO_COSTLY;
        break;
      }
      if (anchored || leading_any || from == ms.s_end) break;
      from++;
    }
  }
  if (res) res->steps = ms.steps;
  return outcome;
}

/* }====================================================================== */
