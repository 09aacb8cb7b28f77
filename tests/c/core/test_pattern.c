/*
** test_pattern.c: the step-bounded Lua pattern matcher (host/core/pattern.h):
** hand-picked finds with the bounds and captures string.find gives (the
** answers below are Lua 5.4's), the up-front check of malformed patterns,
** and the budget: a catastrophically backtracking pattern stops with
** ARB_PAT_TOO_COSTLY after at most the budget's steps, as does one that
** nests too deep.  (tests/lua/test_command_hostile.lua compares the
** matcher with string.find itself over thousands of random cases.)
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pattern.h"

#define BIG_BUDGET 100000000L

/* Finds pat in s from byte init; the outcome, with *res filled. */
static int find(const char *s, const char *pat, size_t init,
                arb_pat_result_t *res) {
  char err[200];
  int rc = arb_pattern_check(pat, strlen(pat), err, sizeof(err));
  if (rc != 0) fail_msg("pattern %s rejected: %s", pat, err);
  return arb_pattern_find(s, strlen(s), pat, strlen(pat), init, BIG_BUDGET,
                          res);
}

/* Asserts a match of pat in s at 1-based [start, end], like string.find. */
static void found_at(const char *s, const char *pat, size_t start, size_t end) {
  arb_pat_result_t r;
  int rc = find(s, pat, 0, &r);
  if (rc != ARB_PAT_MATCH)
    fail_msg("%s in \"%s\": expected a match, got %d", pat, s, rc);
  if (r.start + 1 != start || r.end != end)
    fail_msg("%s in \"%s\": expected %zu..%zu, got %zu..%zu", pat, s, start,
             end, r.start + 1, r.end);
}

static void not_found(const char *s, const char *pat) {
  arb_pat_result_t r;
  int rc = find(s, pat, 0, &r);
  if (rc != ARB_PAT_NOMATCH)
    fail_msg("%s in \"%s\": expected no match, got %d", pat, s, rc);
}

static void test_pattern_plain_classes_sets_anchors(void **state) {
  (void)state;
  found_at("hello world", "world", 7, 11);
  found_at("hello", "", 1, 0);
  found_at("abc", "$", 4, 3);
  found_at("a.b", "%.", 2, 2);
  found_at("x = 42;", "%d+", 5, 6);
  found_at("  \tword", "%S+", 4, 7);
  found_at("AbC", "%l", 2, 2);
  found_at("AbC", "%u%l%u", 1, 3);
  found_at("key=val", "[%w_]+=", 1, 4);
  found_at("0x1F!", "%x+", 1, 1);
  found_at("0x1F!", "%p", 5, 5);
  found_at("a]b", "[]]", 2, 2);
  found_at("]]x", "[^]]", 3, 3);
  found_at("a-b", "[a-]+", 1, 2);
  found_at("m5", "[0-9]", 2, 2);
  found_at("a^b", "a^", 1, 2);
  found_at("a$b", "$b", 2, 3);
  found_at("server ready", "^server", 1, 6);
  not_found("the server", "^server");
  not_found("ready!", "ready$");
  found_at("x\x01y", "%c", 2, 2);
  found_at("tab\there", "%s", 4, 4);
  found_at("__ab", "%W*%a", 1, 3);
  found_at("!!", "%g%g", 1, 2);
}

static void test_pattern_repetitions_backtrack_as_lua(void **state) {
  (void)state;
  found_at("aaab", "a*b", 1, 4);
  found_at("aaab", "a-b", 1, 4);
  found_at("<a><b>", "<.->", 1, 3);
  found_at("<a><b>", "<.*>", 1, 6);
  found_at("b", "a?b", 1, 1);
  found_at("ab", "a?b", 1, 2);
  not_found("aaa", "a+b");
  found_at("aaa", "a+", 1, 3);
  found_at("xaaa", "a*", 1, 0); /* empty at the first position */
  found_at("listening on port 8080", "port (%d+)", 14, 22);
}

static void test_pattern_captures_balance_frontier_backrefs(void **state) {
  (void)state;
  arb_pat_result_t r;
  assert_int_equal(find("key = value", "(%w+)%s*=%s*(%w+)", 0, &r),
                   ARB_PAT_MATCH);
  assert_int_equal(r.ncaptures, 2);
  assert_int_equal(r.captures[0].start, 0);
  assert_int_equal(r.captures[0].len, 3);
  assert_int_equal(r.captures[1].start, 6);
  assert_int_equal(r.captures[1].len, 5);
  assert_int_equal(find("hello", "()ll()", 0, &r), ARB_PAT_MATCH);
  assert_int_equal(r.ncaptures, 2);
  assert_true(r.captures[0].is_position && r.captures[1].is_position);
  assert_int_equal(r.captures[0].start, 2); /* Lua gives 3 (1-based) */
  assert_int_equal(r.captures[1].start, 4);
  found_at("f(a(b)c) d", "%b()", 2, 8);
  not_found("f(a(b c", "%b()");
  found_at("THE (quick) fox", "%f[%a]%a+", 1, 3);
  found_at("THE (quick) fox", "%f[%l]%a+", 6, 10);
  found_at("hello", "%f[%A]", 6, 5);
  found_at("say \"hi\" now", "([\"'])(.-)%1", 5, 8);
  not_found("say \"hi' now", "([\"'])(.-)%1");
  found_at("abab", "((a)b)%1", 1, 4);
  assert_int_equal(find("abc", "b", 2, &r), ARB_PAT_NOMATCH); /* init */
  assert_int_equal(find("abcb", "b", 2, &r), ARB_PAT_MATCH);
  assert_int_equal(r.start, 3);
  assert_int_equal(find("abc", "", 3, &r), ARB_PAT_MATCH); /* at the end */
  assert_int_equal(find("abc", "", 4, &r), ARB_PAT_NOMATCH); /* past it */
  assert_int_equal(find("xab", "^a", 1, &r), ARB_PAT_MATCH); /* ^ at init */
  /* %f sees the byte before init. */
  assert_int_equal(find("ab", "%f[b]b", 1, &r), ARB_PAT_MATCH);
  assert_int_equal(find("bb", "%f[b]b", 1, &r), ARB_PAT_NOMATCH);
}

/* The check's message for pat (which must be rejected). */
static void rejected(const char *pat, const char *expected_part) {
  char err[300];
  err[0] = '\0';
  if (arb_pattern_check(pat, strlen(pat), err, sizeof(err)) == 0)
    fail_msg("pattern %s accepted", pat);
  if (strstr(err, expected_part) == NULL)
    fail_msg("pattern %s: message \"%s\" lacks \"%s\"", pat, err,
             expected_part);
}

static void test_pattern_check_names_the_mistake(void **state) {
  (void)state;
  rejected("[a-z", "missing ']' (set opened at byte 1)");
  rejected("ab[", "missing ']' (set opened at byte 3)");
  rejected("[%", "missing ']'");
  rejected("50%", "pattern ends with '%'");
  rejected("(a", "unfinished capture (opened at byte 1)");
  rejected("a)", "')' at byte 2 closes no capture");
  rejected("%b(", "missing arguments to '%b' at byte 1");
  rejected("x%fa", "missing '[' after '%f' at byte 2");
  rejected("%f[a", "missing ']'");
  rejected("%1", "invalid capture index %1 at byte 1");
  rejected("(a%1)", "invalid capture index %1");
  rejected("(a)%2", "invalid capture index %2");
  rejected("%0", "invalid capture index %0");
  rejected("()%1", "refers to a position capture");
  rejected("%z", "'%z' at byte 1 is not a character class");
  rejected("%q", "'%q' at byte 1 is not a character class");
  rejected("[%y]", "'%y' at byte 2 is not a character class");
  char many[100] = "";
  for (int i = 0; i < ARB_PAT_MAX_CAPTURES + 1; i++) strcat(many, "()");
  rejected(many, "too many captures");
  char err[100];
  const char *fine[] = {"", "^", "$", "^$", "a*", "*a", "-", "a**", "[]]",
                        "[^]]", "[a-]", "%%", "%]", "[%a-z]", "()", "%bxy",
                        "%f[%w]", "(a)%1", "((a)%2)", "%c?", "^^", "$$",
                        "a$b", "%C", "[%]]"};
  for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
    if (arb_pattern_check(fine[i], strlen(fine[i]), err, sizeof(err)) != 0)
      fail_msg("pattern %s rejected: %s", fine[i], err);
}

static void test_pattern_nul_bytes_are_characters(void **state) {
  (void)state;
  const char s[] = "ab\0cd";
  const char pat[] = "%c(c)";
  arb_pat_result_t r;
  assert_int_equal(arb_pattern_check(pat, 5, NULL, 0), 0);
  assert_int_equal(arb_pattern_find(s, 5, pat, 5, 0, BIG_BUDGET, &r),
                   ARB_PAT_MATCH);
  assert_int_equal(r.start, 2);
  assert_int_equal(r.end, 4);
  const char pat2[] = "b\0c";
  assert_int_equal(arb_pattern_find(s, 5, pat2, 3, 0, BIG_BUDGET, &r),
                   ARB_PAT_MATCH);
  assert_int_equal(r.start, 1);
}

/* The attack: thirty "a*" then "b" against 200,000 'a's. */
static void test_pattern_budget_stops_catastrophic_backtracking(void **state) {
  (void)state;
  size_t n = 200000;
  char *line = malloc(n);
  assert_non_null(line);
  memset(line, 'a', n);
  char pat[64] = "";
  for (int i = 0; i < 30; i++) strcat(pat, "a*");
  strcat(pat, "b");
  assert_int_equal(arb_pattern_check(pat, strlen(pat), NULL, 0), 0);
  arb_pat_result_t r;
  long budget = 100000;
  assert_int_equal(arb_pattern_find(line, n, pat, strlen(pat), 0, budget, &r),
                   ARB_PAT_TOO_COSTLY);
  assert_true(r.steps <= budget);
  assert_true(r.steps >= budget - 1);
  /* The same pattern on a short line that has its 'b' is found within it. */
  const char *ok = "aaab";
  assert_int_equal(arb_pattern_find(ok, 4, pat, strlen(pat), 0, budget, &r),
                   ARB_PAT_MATCH);
  assert_true(r.steps < 1000);
  /* A cheap pattern over the long line fits the budget... */
  assert_int_equal(arb_pattern_find(line, n, "a", 1, 0, 10, &r),
                   ARB_PAT_MATCH);
  /* ...while scanning the whole line costs a step per character. */
  assert_int_equal(arb_pattern_find(line, n, "b", 1, 0, 1000, &r),
                   ARB_PAT_TOO_COSTLY);
  assert_int_equal(arb_pattern_find(line, n, "b", 1, 0, 3 * (long)n, &r),
                   ARB_PAT_NOMATCH);
  /* A leading ".*" tries the first start only (the rest cannot match
  ** where it did not): linear, not quadratic, in the line. */
  assert_int_equal(arb_pattern_find(line, 4096, ".*ready", 7, 0, BIG_BUDGET,
                                    &r),
                   ARB_PAT_NOMATCH);
  assert_true(r.steps < 3 * 4096 + 10);
  assert_int_equal(find("xx ready", ".-(r%a+)", 0, &r), ARB_PAT_MATCH);
  assert_int_equal(r.start, 0);
  assert_int_equal(r.captures[0].start, 3);
  /* %b's scan and back-references count too. */
  memset(line, '(', n);
  assert_int_equal(arb_pattern_find(line, n, "%b()", 4, 0, 1000, &r),
                   ARB_PAT_TOO_COSTLY);
  free(line);
}

/* Nesting deeper than ARB_PAT_MAX_DEPTH (Lua: "pattern too complex"). */
static void test_pattern_depth_is_bounded(void **state) {
  (void)state;
  char pat[1024] = "";
  for (int i = 0; i < 250; i++) strcat(pat, "a?");
  char s[300];
  memset(s, 'a', 250);
  s[250] = '\0';
  arb_pat_result_t r;
  assert_int_equal(arb_pattern_check(pat, strlen(pat), NULL, 0), 0);
  assert_int_equal(arb_pattern_find(s, 250, pat, strlen(pat), 0, BIG_BUDGET,
                                    &r),
                   ARB_PAT_TOO_COSTLY);
  /* 150 of them nest 151 deep: fine. */
  pat[300] = '\0';
  assert_int_equal(arb_pattern_find(s, 150, pat, 300, 0, BIG_BUDGET, &r),
                   ARB_PAT_MATCH);
  assert_int_equal(r.end, 150);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pattern_plain_classes_sets_anchors),
      cmocka_unit_test(test_pattern_repetitions_backtrack_as_lua),
      cmocka_unit_test(test_pattern_captures_balance_frontier_backrefs),
      cmocka_unit_test(test_pattern_check_names_the_mistake),
      cmocka_unit_test(test_pattern_nul_bytes_are_characters),
      cmocka_unit_test(test_pattern_budget_stops_catastrophic_backtracking),
      cmocka_unit_test(test_pattern_depth_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
