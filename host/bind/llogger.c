/*
** llogger.c: the `logger` module and the host's log events.
**
** Every line the host logs is an event: a UTC time to the millisecond, a
** level, the pid of the process that logged it, a message and fields.
** User code logs with logger.debug|info|notice|warning|error; crash
** reports (lhost.c, lguard.c), supervisor reports (arbor.core.report) and
** reload results (arbor.core.log_reload) are events of the same logger.
**
** It owns the log's settings (format, level) and its sink (an
** arb_logfile_t from host/rt/logfile.c: stderr or --log-file, reopened on
** SIGUSR1, buffered until the loop's turn ends; a line this file prints
** to stderr directly flushes the sink first, so the order holds), the
** two formats, and the describer that turns any Lua value
** into bounded text: tables with their contents (depth, item and size
** limits, cycles marked), values with a __tostring through
** larb_tostring_safe (never unbounded), never "table: 0x...".
**
** Formats.  text: one line per event, "TIME LEVEL PID message key=value
** ...", and for reports the lines that follow (reason, traceback) as
** before.  json: one object per line; strings are escaped so that control
** characters and invalid UTF-8 (as U+FFFD) cannot break a parser.
**
** Building and writing a line is plain C and never raises: the host's
** crash paths call it after every Lua value is already text.  There is
** one log per OS process, as there is one host.
**
** The recent-events ring (off until logger.keep_recent(n) turns it on;
** the dashboard does) keeps the last n events that passed the level, each
** cut to RING_TEXT_MAX bytes, so a reader such as the dashboard can show
** the tail of the log with bounded memory: logger.recent(after_seq).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "larb.h"
#include "lintrospect.h" /* LARB_CRASH_FRAMES */
#include "logfile.h"
#include "ltraceback.h"

/* {======================================================================
** Settings and the sink
** ======================================================================*/

static const char *const level_names[] = {"debug", "info", "notice",
                                          "warning", "error", NULL};

static struct {
  arb_logfile_t sink;
  int json;
  int level;
  int custom; /* json or a file: reload results are events, not lines */
  arb_pid_t main_pid; /* main's, for its exit line once it has ended */
  int labels_ref;     /* registry: weak pid -> {supervisor, child} */
  int quiet;          /* arbor.core.quiet: no crash or supervisor reports */
} lg = {{NULL, 2, NULL, 0, 0}, 0, LARB_LOG_INFO, 0, ARB_PID_NONE, LUA_NOREF,
        0};

void larb_log_set_main_pid(arb_pid_t pid) { lg.main_pid = pid; }

void larb_log_set_quiet(int quiet) { lg.quiet = quiet != 0; }
int larb_log_quiet(void) { return lg.quiet; }
int larb_log_wants_crash(int is_main) { return is_main || !lg.quiet; }

int larb_log_level_from(const char *name) {
  for (int i = 0; level_names[i]; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

int larb_log_format_from(const char *name) {
  if (strcmp(name, "text") == 0) return 0;
  if (strcmp(name, "json") == 0) return 1;
  return -1;
}

int larb_log_setup(const char *format, const char *level, const char *path,
                   char *err, size_t errlen) {
  lg.json = format ? larb_log_format_from(format) == 1 : 0;
  lg.level = level ? larb_log_level_from(level) : LARB_LOG_INFO;
  if (lg.level < 0) lg.level = LARB_LOG_INFO;
  lg.custom = lg.json || path != NULL;
  lg.labels_ref = LUA_NOREF; /* a new Lua state */
  return arb_logfile_open(&lg.sink, path, err, errlen);
}

static void ring_free(void);

void larb_log_close(void) {
  arb_logfile_close(&lg.sink);
  ring_free();
}

void larb_log_reopen(void) {
  char err[512];
  if (arb_logfile_reopen(&lg.sink, err, sizeof(err)) != 0)
    larb_log_report(LARB_LOG_ERROR, ARB_PID_NONE, "log", err, NULL, NULL, 0);
}

/* Before a line goes to stderr by another way than the sink. */
static void flush_log(void) { arb_logfile_flush(&lg.sink); }

int larb_log_enabled(int level) { return level >= lg.level; }

int larb_log_is_custom(void) { return lg.custom; }

int larb_log_is_json(void) { return lg.json; }

/* }====================================================================== */

/* {======================================================================
** The recent-events ring (plain C, never raises)
** ======================================================================*/

/* Bytes of an event's text the ring keeps (the rest is cut, marked). */
#define RING_TEXT_MAX 1024
#define RING_MAX 10000

typedef struct ring_event_s {
  uint64_t seq;
  int64_t time_ms; /* UTC, ms since the epoch */
  int level;
  arb_pid_t pid;
  char kind[16];       /* "", "crash", "supervisor", "reload", ... */
  char supervisor[64]; /* the supervisor's name when the event has one */
  char *text;          /* malloc'd, at most RING_TEXT_MAX + 1 bytes */
  size_t len;
} ring_event_t;

static struct {
  ring_event_t *events; /* cap slots; seq s lives in slot s % cap */
  int cap;
  uint64_t last_seq; /* of the newest event; 0: none yet */
  int claimed;       /* a caller already put the event being written */
} ring = {NULL, 0, 0, 0};

static void ring_free(void) {
  for (int i = 0; i < ring.cap; i++) free(ring.events[i].text);
  free(ring.events);
  ring.events = NULL;
  ring.cap = 0;
}

static void copy_label(char *dst, size_t cap, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= cap) n = cap - 1;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Keeps an event: text (len bytes) and, after a newline, more.  An event
** that cannot get memory is left out of the ring, never the log. */
static void ring_put(int level, arb_pid_t pid, const char *kind,
                     const char *sup, const char *text, size_t len,
                     const char *more) {
  if (ring.cap == 0) return;
  size_t morelen = more ? strlen(more) : 0;
  while (morelen && more[morelen - 1] == '\n') morelen--;
  size_t total = len + (morelen ? 1 + morelen : 0);
  size_t keep = total > RING_TEXT_MAX ? RING_TEXT_MAX : total;
  char *t = malloc(keep + 1);
  if (t == NULL) return;
  size_t a = len < keep ? len : keep;
  memcpy(t, text, a);
  if (morelen && a < keep) {
    t[a++] = '\n';
    memcpy(t + a, more, keep - a);
  }
  t[keep] = '\0';
  uint64_t seq = ++ring.last_seq;
  ring_event_t *e = &ring.events[seq % (uint64_t)ring.cap];
  free(e->text);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  e->seq = seq;
  e->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  e->level = level;
  e->pid = pid;
  copy_label(e->kind, sizeof(e->kind), kind);
  copy_label(e->supervisor, sizeof(e->supervisor), sup);
  e->text = t;
  e->len = keep;
}

/* The "supervisor" field's text among fields, or NULL. */
static const char *field_text(const larb_log_field_t *f, int nf,
                              const char *key) {
  for (int i = 0; i < nf; i++)
    if (strcmp(f[i].key, key) == 0 && !f[i].raw) return f[i].text;
  return NULL;
}

/* }====================================================================== */

/* {======================================================================
** Building lines (plain C, never raises)
** ======================================================================*/

typedef struct line_s {
  char *data;
  size_t len, cap;
  int failed; /* out of memory: the event is dropped */
} line_t;

static void add(line_t *b, const char *s, size_t n) {
  if (b->failed || n == 0) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static void adds(line_t *b, const char *s) { add(b, s, strlen(s)); }

/* The time text of the last event, kept per millisecond: gmtime_r and
** the formatting cost thousands of instructions, and a burst of events
** (a crash report per restart) mostly shares its millisecond.  Within
** one second only the three digits of the milliseconds change. */
static struct {
  long long sec; /* -1: nothing cached */
  int ms;
  size_t len;
  char text[40]; /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
} time_cache = {-1, -1, 0, ""};

static void add_time(line_t *b) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int ms = (int)(ts.tv_nsec / 1000000);
  if ((long long)ts.tv_sec != time_cache.sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(time_cache.text, sizeof(time_cache.text),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ms);
    time_cache.len = n > 0 && (size_t)n < sizeof(time_cache.text) ? (size_t)n
                                                                   : 0;
    time_cache.sec = (long long)ts.tv_sec;
    time_cache.ms = ms;
  } else if (ms != time_cache.ms && time_cache.len >= 5) {
    char *digits = time_cache.text + time_cache.len - 4; /* "mmmZ" */
    digits[0] = (char)('0' + ms / 100);
    digits[1] = (char)('0' + ms / 10 % 10);
    digits[2] = (char)('0' + ms % 10);
    time_cache.ms = ms;
  }
  add(b, time_cache.text, time_cache.len);
}

static void add_pid(line_t *b, arb_pid_t pid) {
  char text[40];
  int n = pid == ARB_PID_NONE
              ? snprintf(text, sizeof(text), "-")
              : snprintf(text, sizeof(text), "<0.%u.%u>", arb_pid_slot(pid),
                         arb_pid_gen(pid));
  add(b, text, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  unsigned cp = c & (0x3F >> (len - 1));
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* A JSON string: quotes, escapes, control characters as \uXXXX, invalid
** UTF-8 as U+FFFD. */
static void add_json_string(line_t *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  add(b, "\"", 1);
  size_t i = 0;
  while (i < n) {
    unsigned char c = u[i];
    size_t run = i;
    while (run < n && u[run] >= 0x20 && u[run] < 0x7F && u[run] != '"' &&
           u[run] != '\\')
      run++;
    if (run > i) {
      add(b, s + i, run - i);
      i = run;
      continue;
    }
    char esc[8];
    switch (c) {
      case '"': adds(b, "\\\""); i++; continue;
      case '\\': adds(b, "\\\\"); i++; continue;
      case '\n': adds(b, "\\n"); i++; continue;
      case '\r': adds(b, "\\r"); i++; continue;
      case '\t': adds(b, "\\t"); i++; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      snprintf(esc, sizeof(esc), "\\u%04x", c);
      adds(b, esc);
      i++;
      continue;
    }
    size_t len = utf8_len(u + i, n - i);
    if (len == 0) {
      adds(b, "\\ufffd");
      i++;
    } else {
      add(b, s + i, len);
      i += len;
    }
  }
  add(b, "\"", 1);
}

/* Text format: a value that needs no quotes is written as is; others
** quoted, with newlines and control characters escaped so the event stays
** on one line. */
static void add_text_value(line_t *b, const char *s, size_t n, int quote) {
  int needs = 0;
  for (size_t i = 0; i < n && !needs; i++) {
    unsigned char c = (unsigned char)s[i];
    needs = c <= ' ' || c == '"' || c == '=' || c == 0x7F;
  }
  if (n == 0) needs = 1;
  if (!quote) needs = 0;
  if (needs) add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '\n') adds(b, "\\n");
    else if (c == '"' && needs) adds(b, "\\\"");
    else if (c == '\\' && needs) adds(b, "\\\\");
    else if ((c < 0x20 && c != '\t') || c == 0x7F) {
      snprintf(esc, sizeof(esc), "\\%03u", c);
      adds(b, esc);
    } else {
      add(b, s + i, 1);
    }
  }
  if (needs) add(b, "\"", 1);
}

static int reserved_key(const char *k) {
  return strcmp(k, "time") == 0 || strcmp(k, "level") == 0 ||
         strcmp(k, "pid") == 0 || strcmp(k, "msg") == 0 ||
         strcmp(k, "kind") == 0;
}

static void build_json(line_t *b, int level, arb_pid_t pid, const char *kind,
                       const char *msg, size_t msglen,
                       const larb_log_field_t *f, int nf) {
  adds(b, "{\"time\":\"");
  add_time(b);
  adds(b, "\",\"level\":\"");
  adds(b, level_names[level]);
  adds(b, "\",\"pid\":\"");
  add_pid(b, pid);
  adds(b, "\"");
  if (kind) {
    adds(b, ",\"kind\":");
    add_json_string(b, kind, strlen(kind));
  }
  adds(b, ",\"msg\":");
  add_json_string(b, msg, msglen);
  for (int i = 0; i < nf; i++) {
    add(b, ",", 1);
    if (reserved_key(f[i].key)) {
      char k[80];
      snprintf(k, sizeof(k), "_%s", f[i].key);
      add_json_string(b, k, strlen(k));
    } else {
      add_json_string(b, f[i].key, strlen(f[i].key));
    }
    add(b, ":", 1);
    if (f[i].raw)
      add(b, f[i].text, f[i].len);
    else
      add_json_string(b, f[i].text, f[i].len);
  }
  adds(b, "}\n");
}

static void build_text_head(line_t *b, int level, arb_pid_t pid) {
  /* level_names padded to 7, as "%-7s " would, without a format call */
  static const char *const padded[] = {"debug   ", "info    ", "notice  ",
                                       "warning ", "error   "};
  add_time(b);
  add(b, " ", 1);
  adds(b, padded[level]);
  add_pid(b, pid);
  add(b, " ", 1);
}

static void write_line(line_t *b) {
  if (!b->failed) arb_logfile_write(&lg.sink, b->data, b->len);
  free(b->data);
}

void larb_log_emit(int level, arb_pid_t pid, const char *msg, size_t msglen,
                   const larb_log_field_t *fields, int nfields) {
  if (level < lg.level) return;
  line_t b = {NULL, 0, 0, 0};
  if (ring.cap && !ring.claimed) {
    /* The message and its fields as the text format shows them. */
    add(&b, msg, msglen);
    for (int i = 0; i < nfields; i++) {
      add(&b, " ", 1);
      adds(&b, fields[i].key);
      add(&b, "=", 1);
      add_text_value(&b, fields[i].text, fields[i].len, 1);
    }
    if (!b.failed)
      ring_put(level, pid, NULL, field_text(fields, nfields, "supervisor"),
               b.data ? b.data : "", b.len, NULL);
    b.len = 0;
    b.failed = 0;
  }
  if (lg.json) {
    build_json(&b, level, pid, NULL, msg, msglen, fields, nfields);
  } else {
    build_text_head(&b, level, pid);
    add_text_value(&b, msg, msglen, 0);
    for (int i = 0; i < nfields; i++) {
      add(&b, " ", 1);
      adds(&b, fields[i].key);
      add(&b, "=", 1);
      add_text_value(&b, fields[i].text, fields[i].len, 1);
    }
    add(&b, "\n", 1);
  }
  write_line(&b);
}

void larb_log_report(int level, arb_pid_t pid, const char *kind,
                     const char *head, const char *body,
                     const larb_log_field_t *fields, int nfields) {
  if (level < lg.level) return;
  if (!ring.claimed)
    ring_put(level, pid, kind, field_text(fields, nfields, "supervisor"),
             head, strlen(head), body);
  line_t b = {NULL, 0, 0, 0};
  if (lg.json) {
    build_json(&b, level, pid, kind, head, strlen(head), fields, nfields);
  } else {
    build_text_head(&b, level, pid);
    adds(&b, head);
    add(&b, "\n", 1);
    if (body && *body) {
      adds(&b, body);
      if (body[strlen(body) - 1] != '\n') add(&b, "\n", 1);
    }
  }
  write_line(&b);
}

static void crash_text_report(arb_pid_t pid, char *head, size_t headcap,
                              const char *reason, const char *traceback,
                              const char *sup, const char *child);

/* A crash report from text already made.  For main, the line "arbor:
** <reason>" (and the traceback) goes to stderr as the command line's
** contract says, unless stderr carries JSON; it is an event too when the
** log is not the default.  sup and child: the supervisor's name and the
** child's id when a supervisor started the process, else NULL. */
/* What the crashed process was doing, described (larb_log_crash sets it
** around crash_event when the dead coroutine has a frame marked with
** arbor.core.crash_frame, as an actor's loop is): its last message and
** its state, as OTP's gen_server reports them.  NULL: not known. */
static struct {
  const char *message, *state;
} crash_ctx;

static void crash_event(arb_pid_t pid, int is_main, const char *verb,
                        const char *reason, const char *traceback,
                        const char *sup, const char *child) {
  char head[256];
  if (is_main) {
    if (!(lg.json && lg.sink.path == NULL)) {
      flush_log(); /* buffered lines come before this one */
      fprintf(stderr, "arbor: %s\n", reason);
      if (traceback) fprintf(stderr, "%s\n", traceback);
      fflush(stderr);
    }
    if (!lg.custom) return;
    snprintf(head, sizeof(head), "main process %s", verb);
  } else {
    snprintf(head, sizeof(head), "process <0.%u.%u> %s", arb_pid_slot(pid),
             arb_pid_gen(pid), verb);
  }
  if (ring.cap && LARB_LOG_ERROR >= lg.level) {
    line_t t = {NULL, 0, 0, 0};
    adds(&t, head);
    if (sup && child) {
      adds(&t, " (child ");
      adds(&t, child);
      adds(&t, " of ");
      adds(&t, sup);
      adds(&t, ")");
    }
    adds(&t, ": ");
    adds(&t, reason);
    if (!t.failed)
      ring_put(LARB_LOG_ERROR, pid, "crash", sup, t.data, t.len, traceback);
    free(t.data);
  }
  ring.claimed = 1;
  larb_log_field_t f[6];
  int nf = 0;
  if (child) f[nf++] = (larb_log_field_t){"child", child, strlen(child), 0};
  f[nf++] = (larb_log_field_t){"reason", reason, strlen(reason), 0};
  if (crash_ctx.message)
    f[nf++] = (larb_log_field_t){"last_message", crash_ctx.message,
                                 strlen(crash_ctx.message), 0};
  if (crash_ctx.state)
    f[nf++] = (larb_log_field_t){"state", crash_ctx.state,
                                 strlen(crash_ctx.state), 0};
  if (sup) f[nf++] = (larb_log_field_t){"supervisor", sup, strlen(sup), 0};
  if (traceback)
    f[nf++] = (larb_log_field_t){"traceback", traceback, strlen(traceback), 0};
  if (lg.json)
    larb_log_report(LARB_LOG_ERROR, pid, "crash", head, NULL, f, nf);
  else
    crash_text_report(pid, head, sizeof(head), reason, traceback, sup,
                      child);
  ring.claimed = 0;
}

/* The text format's crash report (head has room for the child's label). */
static void crash_text_report(arb_pid_t pid, char *head, size_t headcap,
                              const char *reason, const char *traceback,
                              const char *sup, const char *child) {
  if (sup && child) {
    size_t n = strlen(head);
    snprintf(head + n, headcap - n, " (child %.80s of %.80s)", child, sup);
  }
  line_t text = {NULL, 0, 0, 0}, body = {NULL, 0, 0, 0};
  adds(&text, "=CRASH REPORT==== ");
  adds(&text, head);
  add(&text, "", 1); /* the terminating zero */
  adds(&body, "reason: ");
  adds(&body, reason);
  if (crash_ctx.message) {
    adds(&body, "\nlast message: ");
    adds(&body, crash_ctx.message);
  }
  if (crash_ctx.state) {
    adds(&body, "\nstate: ");
    adds(&body, crash_ctx.state);
  }
  if (traceback) {
    add(&body, "\n", 1);
    adds(&body, traceback);
  }
  add(&body, "", 1);
  if (!text.failed && !body.failed)
    larb_log_report(LARB_LOG_ERROR, pid, "crash", text.data, body.data, NULL,
                    0);
  free(text.data);
  free(body.data);
}

void larb_log_crash_text(arb_pid_t pid, int is_main, const char *verb,
                         const char *reason, const char *traceback) {
  crash_ctx.message = crash_ctx.state = NULL; /* (a failed larb_log_crash) */
  crash_event(pid, is_main, verb, reason, traceback, NULL, NULL);
}

void larb_log_host(int level, const char *msg) {
  if (!(lg.json && lg.sink.path == NULL)) {
    flush_log(); /* buffered lines come before this one */
    fprintf(stderr, "arbor: %s\n", msg);
    fflush(stderr);
  }
  if (lg.custom) larb_log_emit(level, ARB_PID_NONE, msg, strlen(msg), NULL, 0);
}

void larb_log_main_exit_text(arb_pid_t pid, const char *reason) {
  if (pid == ARB_PID_NONE) pid = lg.main_pid;
  if (!(lg.json && lg.sink.path == NULL)) {
    flush_log(); /* buffered lines come before this one */
    fprintf(stderr, "arbor: main process exited: %s\n", reason);
    fflush(stderr);
  }
  if (!lg.custom) return;
  larb_log_field_t f = {"reason", reason, strlen(reason), 0};
  if (lg.json) {
    larb_log_report(LARB_LOG_ERROR, pid, "exit", "main process exited", NULL,
                    &f, 1);
  } else {
    line_t b = {NULL, 0, 0, 0};
    adds(&b, "main process exited: ");
    adds(&b, reason);
    add(&b, "", 1);
    if (!b.failed)
      larb_log_report(LARB_LOG_ERROR, pid, "exit", b.data, NULL, NULL, 0);
    free(b.data);
  }
}

/* }====================================================================== */

/* {======================================================================
** Describing Lua values
** ======================================================================*/

#define DESCRIBE_MAX_DEPTH 5
#define DESCRIBE_MAX_ITEMS 50
#define TRUNCATED "...(truncated)"

typedef struct desc_s {
  size_t len, cap;
  int full;
  char data[LARB_LOG_VALUE_MAX];
} desc_t;

static void put(desc_t *d, const char *s, size_t n) {
  if (d->full) return;
  if (d->len + n > d->cap) {
    n = d->cap - d->len;
    d->full = 1;
  }
  memcpy(d->data + d->len, s, n);
  d->len += n;
}

static void puts_(desc_t *d, const char *s) { put(d, s, strlen(s)); }

static void put_quoted(desc_t *d, const char *s, size_t n) {
  put(d, "\"", 1);
  for (size_t i = 0; i < n && !d->full; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c;
      put(d, esc, 2);
    } else if (c == '\n') {
      put(d, "\\n", 2);
    } else if (c < 0x20 || c == 0x7F) {
      snprintf(esc, sizeof(esc), "\\%u", c);
      puts_(d, esc);
    } else {
      put(d, s + i, 1);
    }
  }
  put(d, "\"", 1);
}

static int is_identifier(const char *s, size_t n) {
  if (n == 0 || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')))
    return 0;
  for (size_t i = 1; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= '0' && c <= '9') ||
          ((c | 32) >= 'a' && (c | 32) <= 'z')))
      return 0;
  }
  return 1;
}

/* Appends the text of the value at idx.  quoted: strings in quotes (inside
** a table).  visited: a table of the tables on the current path. */
static void describe(lua_State *L, desc_t *d, int idx, int depth, int visited,
                     int quoted) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "describing a value");
  size_t n;
  const char *s;
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &n);
    if (quoted) put_quoted(d, s, n);
    else put(d, s, n);
    return;
  }
  if (t != LUA_TTABLE ||
      luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL ||
      luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
    if (t == LUA_TTABLE) lua_pop(L, 1); /* the metafield */
    s = larb_tostring_safe(L, idx);
    n = lua_rawlen(L, -1);
    put(d, s, n);
    lua_pop(L, 1);
    return;
  }
  if (depth >= DESCRIBE_MAX_DEPTH) {
    puts_(d, "{...}");
    return;
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, visited) != LUA_TNIL) {
    lua_pop(L, 1);
    puts_(d, "<cycle>");
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, visited);
  put(d, "{", 1);
  lua_Unsigned len = lua_rawlen(L, idx);
  int count = 0, stopped = 0;
  for (lua_Unsigned i = 1; i <= len && !d->full; i++) {
    if (count == DESCRIBE_MAX_ITEMS) {
      puts_(d, ", ...");
      stopped = 1;
      break;
    }
    if (count++) put(d, ", ", 2);
    lua_rawgeti(L, idx, (lua_Integer)i);
    describe(L, d, -1, depth + 1, visited, 1);
    lua_pop(L, 1);
  }
  int top = lua_gettop(L);
  lua_pushnil(L);
  while (!stopped && !d->full && lua_next(L, idx)) {
    if (lua_isinteger(L, -2)) {
      lua_Integer k = lua_tointeger(L, -2);
      if (k >= 1 && (lua_Unsigned)k <= len) {
        lua_pop(L, 1);
        continue;
      }
    }
    if (count == DESCRIBE_MAX_ITEMS) {
      puts_(d, ", ...");
      lua_pop(L, 2);
      break;
    }
    if (count++) put(d, ", ", 2);
    if (lua_type(L, -2) == LUA_TSTRING &&
        is_identifier(lua_tostring(L, -2), lua_rawlen(L, -2))) {
      put(d, lua_tostring(L, -2), lua_rawlen(L, -2));
    } else {
      put(d, "[", 1);
      describe(L, d, -2, depth + 1, visited, 1);
      put(d, "]", 1);
    }
    put(d, " = ", 3);
    describe(L, d, -1, depth + 1, visited, 1);
    lua_pop(L, 1);
  }
  lua_settop(L, top); /* a key left when the text filled up */
  put(d, "}", 1);
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, visited);
}

const char *larb_log_describe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING &&
      lua_rawlen(L, idx) <= LARB_LOG_VALUE_MAX) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  desc_t *d = lua_newuserdatauv(L, sizeof(desc_t), 0);
  d->len = 0;
  d->cap = LARB_LOG_VALUE_MAX - sizeof(TRUNCATED);
  d->full = 0;
  lua_newtable(L);
  int top = lua_gettop(L);
  describe(L, d, idx, 0, top, 0);
  lua_settop(L, top);
  if (d->full) {
    d->cap = LARB_LOG_VALUE_MAX;
    d->full = 0;
    put(d, TRUNCATED, sizeof(TRUNCATED) - 1);
  }
  lua_pushlstring(L, d->data, d->len);
  lua_replace(L, top - 1);
  lua_settop(L, top - 1);
  return lua_tostring(L, -1);
}

/* Pushes the table of supervisor labels (pid -> {supervisor, child}). */
static void push_labels(lua_State *L) {
  if (lg.labels_ref == LUA_NOREF) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lg.labels_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, lg.labels_ref);
}

/* A crash report's last message and state are cut to this many bytes:
** enough to recognise them, as OTP's reports trim a gen_server's. */
#define CRASH_CONTEXT_MAX 1024

/* larb_log_describe, cut to CRASH_CONTEXT_MAX bytes (at a UTF-8 boundary)
** with "...(truncated)"; the text is left on L's stack. */
static const char *describe_context(lua_State *L, int idx) {
  size_t n;
  larb_log_describe(L, idx);
  const char *s = lua_tolstring(L, -1, &n);
  if (n <= CRASH_CONTEXT_MAX) return s;
  size_t cut = CRASH_CONTEXT_MAX;
  while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
  lua_pushlstring(L, s, cut);
  lua_pushliteral(L, "...(truncated)");
  lua_concat(L, 2);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* Finds the innermost frame of co whose function is marked in the
** LARB_CRASH_FRAMES table and sets crash_ctx from its locals named
** last_message and state, described (bounded) and left on L's stack. */
static void crash_context(lua_State *L, lua_State *co) {
  if (co == NULL || !lua_checkstack(co, 2) ||
      lua_getfield(L, LUA_REGISTRYINDEX, LARB_CRASH_FRAMES) != LUA_TTABLE)
    return; /* (the non-table stays on the stack; the caller resets it) */
  int frames = lua_gettop(L);
  lua_Debug ar;
  for (int level = 0; level < 256 && lua_getstack(co, level, &ar); level++) {
    if (!lua_getinfo(co, "f", &ar)) continue;
    lua_xmove(co, L, 1);
    int marked = lua_rawget(L, frames) != LUA_TNIL;
    lua_pop(L, 1);
    if (!marked) continue;
    const char *name;
    for (int n = 1; (name = lua_getlocal(co, &ar, n)) != NULL; n++) {
      lua_xmove(co, L, 1);
      if (strcmp(name, "last_message") == 0)
        crash_ctx.message = describe_context(L, -1);
      else if (strcmp(name, "state") == 0)
        crash_ctx.state = describe_context(L, -1);
      else
        lua_pop(L, 1);
    }
    return;
  }
}

/* The crash report of pid: the error value at ridx, the traceback of co.
** May raise a memory error: call under protection. */
/* The reason text of a crash whose error value is nil. */
#define LARB_LOG_NIL_ERROR "nil (error object is a nil value)"

void larb_log_crash(lua_State *L, arb_pid_t pid, int is_main, int ridx,
                    lua_State *co) {
  int top = lua_gettop(L);
  ridx = lua_absindex(L, ridx);
  const char *sup = NULL, *child = NULL;
  push_labels(L);
  larb_push_pid(L, pid);
  if (lua_rawget(L, -2) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    sup = lua_tostring(L, -1);
    lua_rawgeti(L, -2, 2);
    child = lua_tostring(L, -1);
  }
  /* error() and error(nil): the reason stays nil, but a bare "nil"
  ** reads like a missing field; say what happened, as lua.c does. */
  const char *reason = lua_isnil(L, ridx) ? LARB_LOG_NIL_ERROR
                                          : larb_log_describe(L, ridx);
  crash_ctx.message = crash_ctx.state = NULL;
  crash_context(L, co);
  larb_traceback(L, co); /* luaL_traceback costs ~100k instructions */
  crash_event(pid, is_main, "crashed", reason, lua_tostring(L, -1), sup,
              child);
  crash_ctx.message = crash_ctx.state = NULL;
  lua_settop(L, top);
}

/* For arbor.core.compact: the labels table rebuilt at the size of what it
** holds now (a weak table keeps its largest size after its entries go). */
void larb_log_compact(lua_State *L) {
  if (lg.labels_ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, lg.labels_ref);
  lua_newtable(L);
  lua_getmetatable(L, -2);
  lua_setmetatable(L, -2);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, lg.labels_ref);
  lua_pop(L, 1);
}

/* arbor.core.log_label(pid, supervisor_name, child_id): the supervisor
** that started pid, for its crash report.  Kept in a table with weak
** keys: the label goes when nobody holds the pid any more.  Also
** log_label(pid, {supervisor_name, child_id}): that pair itself is kept
** (the caller never changes it), so a supervisor restarting a child
** passes the child's one pair and allocates nothing. */
int larb_log_lua_label(lua_State *L) {
  larb_check_pid(L, 1);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_rawgeti(L, 2, 1);
    lua_rawgeti(L, 2, 2);
    luaL_argcheck(L, lua_isstring(L, -2) && lua_isstring(L, -1), 2,
                  "{supervisor name, child id} strings expected");
    push_labels(L);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
    return 0;
  }
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  push_labels(L);
  lua_pushvalue(L, 1);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, 2);
  lua_rawset(L, -3);
  return 0;
}

/* arbor.core.log_label_of(pid) -> child id or nil: the id pid was
** labelled with.  The one copy of the labels, so that no module keeps a
** weak table of its own beside it (compact rebuilds this one; a weak table
** it does not know keeps a size that depends on when garbage was
** collected, which breaks exact memory accounting). */
int larb_log_lua_label_of(lua_State *L) {
  larb_check_pid(L, 1);
  push_labels(L);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pushnil(L);
    return 1;
  }
  lua_rawgeti(L, -1, 2);
  return 1;
}

/* The line for main ended by an exit signal (reason at ridx). */
void larb_log_main_exit(lua_State *L, arb_pid_t pid, int ridx) {
  larb_log_main_exit_text(pid, larb_log_describe(L, ridx));
  lua_pop(L, 1);
}

/* }====================================================================== */

/* {======================================================================
** Events made from Lua values
** ======================================================================*/

#define MAX_FIELDS 64

static arb_pid_t current_pid(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = ctx->node ? arb_node_current(ctx->node) : NULL;
  return p ? p->pid : ARB_PID_NONE;
}

/* A field's value: numbers and booleans stay JSON values (NaN and
** infinities are text); anything else is described.  Pushes one string. */
static larb_log_field_t field_value(lua_State *L, int idx, const char *key) {
  larb_log_field_t f = {key, NULL, 0, 0};
  int t = lua_type(L, idx);
  if (t == LUA_TBOOLEAN ||
      (t == LUA_TNUMBER &&
       (lua_isinteger(L, idx) || isfinite(lua_tonumber(L, idx))))) {
    f.raw = 1;
    f.text = luaL_tolstring(L, idx, &f.len);
  } else {
    f.text = larb_log_describe(L, idx);
    f.len = lua_rawlen(L, -1);
  }
  return f;
}

static int compare_fields(const void *a, const void *b) {
  return strcmp(((const larb_log_field_t *)a)->key,
                ((const larb_log_field_t *)b)->key);
}

/* Collects the fields of the table at idx (all but skip_a and skip_b),
** sorted by name; their texts stay on the stack.  Returns the count. */
static int collect_fields(lua_State *L, int idx, larb_log_field_t *f,
                          const char *skip_a, const char *skip_b) {
  int nf = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
      lua_pop(L, 1);
      continue; /* only names and numbers are field names */
    }
    lua_pushvalue(L, -2);
    const char *key = lua_tostring(L, -1); /* a copy: lua_next needs the key */
    if ((skip_a && strcmp(key, skip_a) == 0) ||
        (skip_b && strcmp(key, skip_b) == 0) || nf == MAX_FIELDS) {
      lua_pop(L, 2);
      continue;
    }
    /* stack: key, value, key copy.  Keep the copy and the text below the
    ** iteration key. */
    luaL_checkstack(L, 4, "logging fields");
    f[nf] = field_value(L, -2, key);
    lua_rotate(L, -4, 2); /* key copy, text, key, value */
    lua_pop(L, 1);
    nf++;
  }
  qsort(f, (size_t)nf, sizeof(*f), compare_fields);
  return nf;
}

/* logger.<level>(fmt, ...) or logger.<level>{msg = ..., key = value} */
static int log_at(lua_State *L) {
  int level = (int)lua_tointeger(L, lua_upvalueindex(1));
  if (level < lg.level) return 0;
  int n = lua_gettop(L);
  arb_pid_t pid = current_pid(L);
  if (n == 1 && lua_type(L, 1) == LUA_TTABLE &&
      !luaL_getmetafield(L, 1, "__tostring")) {
    larb_log_field_t f[MAX_FIELDS];
    lua_pushliteral(L, "msg");
    lua_rawget(L, 1);
    const char *msg = lua_isnil(L, -1) ? "" : larb_log_describe(L, -1);
    size_t msglen = strlen(msg);
    int nf = collect_fields(L, 1, f, "msg", NULL);
    larb_log_emit(level, pid, msg, msglen, f, nf);
    return 0;
  }
  if (n == 1 && lua_type(L, 1) == LUA_TTABLE) lua_pop(L, 1); /* metafield */
  luaL_checkany(L, 1);
  if (lua_type(L, 1) != LUA_TSTRING) {
    /* One value that is not a format: logged as its description. */
    const char *s = larb_log_describe(L, 1);
    larb_log_emit(level, pid, s, lua_rawlen(L, -1), NULL, 0);
    return 0;
  }
  lua_pushvalue(L, lua_upvalueindex(2)); /* string.format */
  lua_insert(L, 1);
  lua_call(L, n, 1);
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  if (len > LARB_LOG_VALUE_MAX) msg = larb_log_describe(L, -1);
  larb_log_emit(level, pid, msg, strlen(msg), NULL, 0);
  return 0;
}

/* logger.set_level(name) -> previous level's name */
static int log_set_level(lua_State *L) {
  int level = luaL_checkoption(L, 1, NULL, level_names);
  lua_pushstring(L, level_names[lg.level]);
  lg.level = level;
  return 1;
}

/* logger.level() -> the current level's name */
static int log_level(lua_State *L) {
  lua_pushstring(L, level_names[lg.level]);
  return 1;
}

/* logger.describe(value) -> text: how the logger prints a value. */
static int log_describe(lua_State *L) {
  luaL_checkany(L, 1);
  larb_log_describe(L, 1);
  return 1;
}

/* logger.keep_recent(n): from now on the last n events (1 to RING_MAX)
** are kept for logger.recent; 0 stops keeping them.  Events kept so far
** are dropped when n changes. */
static int log_keep_recent(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= RING_MAX, 1, "0 to 10000 events");
  if (n == ring.cap) return 0;
  ring_event_t *events = n ? calloc((size_t)n, sizeof(*events)) : NULL;
  if (n && events == NULL) return luaL_error(L, "not enough memory");
  ring_free();
  ring.events = events;
  ring.cap = (int)n;
  return 0;
}

/* logger.recent([after_seq]) -> {{seq=, time=, level=, pid=, kind=,
** supervisor=, text=}, ...}, last_seq: the kept events newer than
** after_seq (default 0: all), oldest first; time is UTC in ms since the
** epoch; kind and supervisor only when the event has them. */
static int log_recent(lua_State *L) {
  lua_Integer after = luaL_optinteger(L, 1, 0);
  uint64_t from = after < 0 ? 1 : (uint64_t)after + 1;
  uint64_t last = ring.last_seq;
  if (ring.cap && last >= (uint64_t)ring.cap &&
      from <= last - (uint64_t)ring.cap)
    from = last - (uint64_t)ring.cap + 1; /* older ones are gone */
  lua_createtable(L, from <= last ? (int)(last - from + 1) : 0, 0);
  int k = 1;
  for (uint64_t seq = from; ring.cap && seq <= last; seq++) {
    ring_event_t *e = &ring.events[seq % (uint64_t)ring.cap];
    if (e->seq != seq || e->text == NULL) continue;
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)e->seq);
    lua_setfield(L, -2, "seq");
    lua_pushinteger(L, (lua_Integer)e->time_ms);
    lua_setfield(L, -2, "time");
    lua_pushstring(L, level_names[e->level]);
    lua_setfield(L, -2, "level");
    if (e->pid != ARB_PID_NONE) {
      lua_pushfstring(L, "<0.%d.%d>", (int)arb_pid_slot(e->pid),
                      (int)arb_pid_gen(e->pid));
      lua_setfield(L, -2, "pid");
    }
    if (e->kind[0]) {
      lua_pushstring(L, e->kind);
      lua_setfield(L, -2, "kind");
    }
    if (e->supervisor[0]) {
      lua_pushstring(L, e->supervisor);
      lua_setfield(L, -2, "supervisor");
    }
    lua_pushlstring(L, e->text, e->len);
    lua_setfield(L, -2, "text");
    lua_rawseti(L, -2, k++);
  }
  lua_pushinteger(L, (lua_Integer)last);
  return 2;
}

int larb_open_logger(lua_State *L) {
  lua_createtable(L, 0, 10);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  lua_remove(L, -2);
  int fmt = lua_gettop(L);
  for (int i = 0; level_names[i]; i++) {
    lua_pushinteger(L, i);
    lua_pushvalue(L, fmt);
    lua_pushcclosure(L, log_at, 2);
    lua_setfield(L, -3, level_names[i]);
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, log_set_level);
  lua_setfield(L, -2, "set_level");
  lua_pushcfunction(L, log_level);
  lua_setfield(L, -2, "level");
  lua_pushcfunction(L, log_describe);
  lua_setfield(L, -2, "describe");
  lua_pushcfunction(L, log_keep_recent);
  lua_setfield(L, -2, "keep_recent");
  lua_pushcfunction(L, log_recent);
  lua_setfield(L, -2, "recent");
  return 1;
}

/* arbor.core.report(text [, fields]): a report block ("=NAME==== ...\n
** lines") as an event; fields (supervisor, child, restarts, reason, level
** ...) become the event's fields.  Nothing when quiet. */
int larb_log_lua_report(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  if (lg.quiet) return 0;
  int level = LARB_LOG_ERROR;
  larb_log_field_t f[MAX_FIELDS];
  int nf = 0;
  const char *kind = "report";
  if (lua_type(L, 2) == LUA_TTABLE) {
    if (lua_getfield(L, 2, "level") == LUA_TSTRING) {
      int lv = larb_log_level_from(lua_tostring(L, -1));
      if (lv >= 0) level = lv;
    }
    if (lua_getfield(L, 2, "kind") == LUA_TSTRING) kind = lua_tostring(L, -1);
    nf = collect_fields(L, 2, f, "level", "kind");
  }
  if (level < lg.level) return 0;
  arb_pid_t pid = current_pid(L);
  const char *nl = strchr(text, '\n');
  size_t headlen = nl ? (size_t)(nl - text) : strlen(text);
  ring_put(level, pid, kind, field_text(f, nf, "supervisor"), text, headlen,
           nl ? nl + 1 : NULL);
  if (lg.json) {
    /* msg: the lines after the header, joined. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *p = nl ? nl + 1 : text;
    int first = 1;
    while (*p) {
      while (*p == ' ') p++;
      const char *e = strchr(p, '\n');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      if (n) {
        if (!first) luaL_addstring(&b, "; ");
        luaL_addlstring(&b, p, n);
        first = 0;
      }
      p += n + (e ? 1 : 0);
    }
    luaL_pushresult(&b);
    ring.claimed = 1; /* (nothing between here and 0 raises) */
    larb_log_report(level, pid, kind, lua_tostring(L, -1), NULL, f, nf);
  } else {
    lua_pushlstring(L, text, headlen);
    ring.claimed = 1;
    larb_log_report(level, pid, kind, lua_tostring(L, -1), nl ? nl + 1 : NULL,
                    NULL, 0);
  }
  ring.claimed = 0;
  return 0;
}

/* arbor.core.log_reload(code, text) -> logged: with json or a log file a
** reload's result is an event (info if code is 0, else error) and this
** returns true; otherwise the caller prints the line as before. */
int larb_log_lua_reload(lua_State *L) {
  lua_Integer code = luaL_checkinteger(L, 1);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  if (!lg.custom) {
    lua_pushboolean(L, 0);
    return 1;
  }
  larb_log_field_t f = {"code", NULL, 0, 1};
  f.text = luaL_tolstring(L, 1, &f.len);
  int level = code == 0 ? LARB_LOG_INFO : LARB_LOG_ERROR;
  if (level >= lg.level) {
    if (lg.json) {
      line_t b = {NULL, 0, 0, 0};
      build_json(&b, level, current_pid(L), "reload", text, len, &f, 1);
      write_line(&b);
    } else {
      larb_log_emit(level, current_pid(L), text, len, &f, 1);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* }====================================================================== */
