/*
** main.c: the arbor command line.
**
**   arbor [run] [--watch] [--control PATH] [--max-memory SIZE]
**             [--log-format F] [--log-level L] [--log-file PATH]
**             [--dashboard [HOST:]PORT [--dashboard-token-file PATH]]
**             SCRIPT [ARGS...]
**   arbor status [--json] [--processes] [--control PATH]
**                [--timeout SECONDS] [SCRIPT]
**   arbor eval [--json] [--control PATH] [--timeout SECONDS] [SCRIPT]
**              CODE|-
**   arbor reload [--dry-run] [--control PATH] [--timeout SECONDS] [SCRIPT]
**   arbor stop [--control PATH] [--timeout SECONDS] [SCRIPT]
**   arbor --help | --version
**
** Exit status: what the host returns (0 after an orderly stop, 1 when the
** main process or the root tree failed, or serving could not start), 2
** for usage errors and scripts that cannot load.  The control commands
** exit with the host's answer code (0 ok, 1 failed, 2 a request the host
** did not understand), or 1 when no host they trust answers in time.
*/
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb.h"
#include "control.h"
#include "lhost.h"

static const char usage[] =
    "usage: arbor [run] [--watch] [--control PATH] [--max-memory SIZE]\n"
    "             [--log-format text|json] [--log-level LEVEL]\n"
    "             [--log-file PATH]\n"
    "             [--dashboard [HOST:]PORT [--dashboard-token-file PATH]]\n"
    "             SCRIPT [ARGS...]\n"
    "       arbor status [--json] [--processes] [--control PATH]\n"
    "                    [--timeout SECONDS] [SCRIPT]\n"
    "       arbor eval [--json] [--control PATH] [--timeout SECONDS]\n"
    "                  [SCRIPT] CODE|-\n"
    "       arbor reload [--dry-run] [--control PATH] [--timeout SECONDS] "
    "[SCRIPT]\n"
    "       arbor stop [--control PATH] [--timeout SECONDS] [SCRIPT]\n"
    "       arbor --help | --version\n"
    "\n"
    "run      runs SCRIPT (Lua 5.4) as the first process of a host.  If the\n"
    "         script returns a supervisor.spec value, the host starts it as\n"
    "         the root tree and serves: it listens on a control socket and\n"
    "         reloads the script on SIGHUP, on `arbor reload`, and with\n"
    "         --watch whenever a .lua file in its folder changes.\n"
    "         --max-memory SIZE bounds the Lua heap (bytes, or with K, M\n"
    "         or G): an allocation past it fails in the process that made\n"
    "         it, which ends with \"not enough memory\"; the host goes on.\n"
    "         --log-format text|json (default text), --log-level debug|\n"
    "         info|notice|warning|error (default info), --log-file PATH\n"
    "         (default stderr; reopened on SIGUSR1) set up the logger that\n"
    "         crash and supervisor reports and `logger` events go to.\n"
    "         --dashboard [HOST:]PORT serves a web dashboard of the tree\n"
    "         (HOST defaults to 127.0.0.1); actions need the token it\n"
    "         prints, or the one in --dashboard-token-file PATH (also\n"
    "         $ARBOR_DASHBOARD_TOKEN_FILE).  See docs/dashboard.md.\n"
    "status   prints the running tree of the host serving SCRIPT: each\n"
    "         child's pid, status, restarts, last exit and start failure,\n"
    "         the last reload's result and whether the file on disk differs.\n"
    "         --processes lists every process (mailbox, memory, what it\n"
    "         waits on); --json prints all of it as one JSON object.\n"
    "eval     runs CODE (a Lua chunk; - reads it from stdin) in a new\n"
    "         process of the host serving SCRIPT and prints what it returns\n"
    "         (--json: as a JSON array) and what it printed.  It is killed\n"
    "         after --timeout SECONDS (default 5).\n"
    "reload   reloads SCRIPT in its host and applies the difference;\n"
    "         --dry-run prints the plan and changes nothing.\n"
    "stop     shuts the host down in order.\n"
    "\n"
    "The control socket is --control PATH (at most 107 bytes), else one per\n"
    "script: $XDG_RUNTIME_DIR/arbor-HASH.sock, or without XDG_RUNTIME_DIR\n"
    "${TMPDIR:-/tmp}/arbor-UID/arbor-HASH.sock, in a directory arbor makes\n"
    "with mode 0700 and refuses if it is not yours with that mode.  Host\n"
    "and client talk only to the same user or root.  status and stop wait\n"
    "5 s for an answer, reload 30 s; --timeout SECONDS changes that.  eval\n"
    "waits 2 s more than its timeout.\n"
    "\n"
    "SIGINT and SIGTERM shut every tree down in order.  Exit status: 0\n"
    "after an orderly stop, 1 if the main process or the root tree failed\n"
    "or no host answered, 2 on a usage error or a script that cannot be\n"
    "loaded.\n";

/* Parses --max-memory's SIZE: a positive integer with an optional K, M or
** G suffix (powers of 1024).  Returns 0 for anything else. */
static size_t parse_size(const char *text) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(text, &end, 10);
  if (errno || end == text || text[0] == '-' || n == 0) return 0;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10, end++;
  else if (*end == 'M' || *end == 'm') shift = 20, end++;
  else if (*end == 'G' || *end == 'g') shift = 30, end++;
  if (*end != '\0' || n > (SIZE_MAX >> shift)) return 0;
  return (size_t)n << shift;
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "arbor: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return 2;
}

/* Checks --dashboard's [HOST:]PORT (HOST may be [v6]); 0 if it is one.
** The dashboard (lua/arbor/dashboard.lua) splits it the same way. */
static int check_dashboard_address(const char *text) {
  const char *colon = strrchr(text, ':');
  const char *port = colon ? colon + 1 : text;
  if (colon == text) return -1; /* ":PORT": no host */
  if (text[0] == '[' && (colon == NULL || colon[-1] != ']' || colon == text + 2))
    return -1;
  if (*port == '\0' || strlen(port) > 5) return -1;
  for (const char *c = port; *c; c++)
    if (*c < '0' || *c > '9') return -1;
  return atoi(port) <= 65535 ? 0 : -1;
}

/* A --control PATH that does not fit a socket address is a usage error,
** never cut short. */
static int control_path_error(const char *path) {
  char err[1024];
  if (arb_control_check_path(path, err, sizeof(err)) == 0) return 0;
  fprintf(stderr, "arbor: %s\n", err);
  return 2;
}

/* Parses --timeout's argument into milliseconds; -1 if it is not a
** positive number of seconds (at most a day). */
static int parse_timeout(const char *arg) {
  char *end;
  double s = strtod(arg, &end);
  if (end == arg || *end != '\0' || !isfinite(s) || s < 0.001 || s > 86400)
    return -1;
  return (int)(s * 1000 + 0.5);
}

/* Prints the host's answer; 0, or -1 if stdout is gone (a closed pipe
** gives EPIPE here, not SIGPIPE). */
static int print_answer(FILE *out, const char *text) {
  if (*text && fprintf(out, "%s\n", text) < 0) return -1;
  return fflush(out) == 0 ? 0 : -1;
}

/* arbor status|reload|stop [...]: one request to a running host. */
static int control_request(const char *cmd, const char *control,
                           const char *script, arb_control_req_t *req,
                           int timeout_ms);

/* Reads an eval chunk from stdin into a malloc'ed buffer: its length in
** *len, or NULL with a message printed (too long, unreadable, empty). */
static char *read_chunk(size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      if (cap > ARB_CONTROL_MAX_EVAL) break;
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) break;
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, stdin);
    n += got;
    if (got == 0) {
      if (ferror(stdin)) {
        fprintf(stderr, "arbor eval: cannot read the chunk from stdin: %s\n",
                strerror(errno));
        free(buf);
        return NULL;
      }
      *len = n;
      if (n > 0 && n <= ARB_CONTROL_MAX_EVAL) return buf;
      break;
    }
  }
  fprintf(stderr, "arbor eval: the chunk on stdin is %s (1 to %d bytes)\n",
          n == 0 ? "empty" : "too long", ARB_CONTROL_MAX_EVAL);
  free(buf);
  return NULL;
}

/* arbor status|reload|stop|eval [...]: one request to a running host. */
static int control_command(const char *cmd, int argc, char **argv) {
  const char *control = NULL, *script = NULL, *code_arg = NULL;
  arb_control_req_t req;
  memset(&req, 0, sizeof(req));
  req.cmd = ARB_CONTROL_STATUS;
  if (strcmp(cmd, "reload") == 0) req.cmd = ARB_CONTROL_RELOAD;
  if (strcmp(cmd, "stop") == 0) req.cmd = ARB_CONTROL_STOP;
  if (strcmp(cmd, "eval") == 0) req.cmd = ARB_CONTROL_EVAL;
  int is_eval = req.cmd == ARB_CONTROL_EVAL;
  /* A reload runs every init of the new tree, so it may take a while. */
  int timeout_ms = req.cmd == ARB_CONTROL_RELOAD ? 30000 : 5000;
  const char *positional[2];
  int npositional = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
      control = argv[++i];
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      timeout_ms = parse_timeout(argv[++i]);
      if (timeout_ms < 0)
        return usage_error("--timeout needs a number of seconds "
                           "(0.001 to 86400), not '%s'", argv[i]);
    } else if (strcmp(argv[i], "--dry-run") == 0 &&
               req.cmd == ARB_CONTROL_RELOAD) {
      req.dry_run = 1;
    } else if (strcmp(argv[i], "--json") == 0 &&
               (req.cmd == ARB_CONTROL_STATUS || is_eval)) {
      req.json = 1;
    } else if (strcmp(argv[i], "--processes") == 0 &&
               req.cmd == ARB_CONTROL_STATUS) {
      req.processes = 1;
    } else if (argv[i][0] == '-' && !(is_eval && argv[i][1] == '\0')) {
      return usage_error("unknown option '%s'", argv[i]);
    } else if (npositional < (is_eval ? 2 : 1)) {
      positional[npositional++] = argv[i];
    } else {
      return usage_error("unexpected argument '%s'", argv[i]);
    }
  }
  if (is_eval) {
    /* The chunk comes last: [SCRIPT] CODE. */
    if (npositional == 0)
      return usage_error("%s", "eval: give the Lua code to run (or - to "
                         "read it from stdin)");
    code_arg = positional[npositional - 1];
    if (npositional == 2) script = positional[0];
  } else if (npositional == 1) {
    script = positional[0];
  }
  char *chunk = NULL;
  if (is_eval) {
    if (strcmp(code_arg, "-") == 0) {
      chunk = read_chunk(&req.body_len);
      if (chunk == NULL) return 2;
      req.body = chunk;
    } else {
      req.body = code_arg;
      req.body_len = strlen(code_arg);
      if (req.body_len == 0 || req.body_len > ARB_CONTROL_MAX_EVAL)
        return usage_error("eval: the code must be 1 to 65536 bytes, not "
                           "%s", req.body_len ? "longer" : "empty");
    }
    /* The host stops the chunk at the timeout; the answer may take a
    ** little longer to come back. */
    req.timeout_ms = timeout_ms;
    timeout_ms += 2000;
  }
  int rc = control_request(cmd, control, script, &req, timeout_ms);
  free(chunk);
  return rc;
}

/* Sends req to the host at --control PATH or SCRIPT's default path and
** prints its answer; returns the exit status. */
static int control_request(const char *cmd, const char *control,
                           const char *script, arb_control_req_t *req,
                           int timeout_ms) {
  /* The answer goes to stdout, which may be a pipe whose reader left. */
  signal(SIGPIPE, SIG_IGN);
  char path[ARB_CONTROL_PATH_MAX + 1], err[1024];
  if (control) {
    if (control_path_error(control)) return 2;
    snprintf(path, sizeof(path), "%s", control);
  } else if (script) {
    if (arb_control_default_path(script, 0, path, sizeof(path), err,
                                 sizeof(err)) != 0) {
      fprintf(stderr, "arbor %s: %s\n", cmd, err);
      return 1;
    }
  } else {
    return usage_error("%s: give the script or --control PATH", cmd);
  }
  char *text = NULL;
  int code = arb_control_request(path, req, timeout_ms, &text);
  if (code < 0) {
    fprintf(stderr, "arbor %s: %s%s\n", cmd, text ? text : "out of memory",
            code != ARB_CONTROL_TIMEOUT ? ""
            : req->cmd == ARB_CONTROL_RELOAD
                ? " (the host may still finish the reload; --timeout "
                  "SECONDS waits longer)"
            : req->cmd == ARB_CONTROL_EVAL
                ? " (the chunk may be in code that cannot be preempted, "
                  "such as a gsub callback or a sort comparator; the host "
                  "ends it after 5 s)"
                : "");
    free(text);
    return 1;
  }
  if (print_answer(code == 0 ? stdout : stderr, text) != 0) {
    int e = errno;
    fprintf(stderr, "arbor %s: cannot print the answer: %s\n", cmd,
            strerror(e));
    code = 1;
  }
  free(text);
  return code;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("%s", "no script given");
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(first, "--version") == 0) {
    printf("arbor %s (%s)\n", ARB_VERSION, LUA_RELEASE);
    return 0;
  }
  if (strcmp(first, "status") == 0 || strcmp(first, "reload") == 0 ||
      strcmp(first, "stop") == 0 || strcmp(first, "eval") == 0)
    return control_command(first, argc - 2, argv + 2);

  larb_host_opts_t opts;
  memset(&opts, 0, sizeof(opts));
  int i = strcmp(first, "run") == 0 ? 2 : 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "--watch") == 0) {
      opts.watch = 1;
    } else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
      opts.control_path = argv[++i];
      if (control_path_error(opts.control_path)) return 2;
    } else if (strcmp(argv[i], "--max-memory") == 0 && i + 1 < argc) {
      opts.max_memory = parse_size(argv[++i]);
      if (opts.max_memory == 0)
        return usage_error("--max-memory: '%s' is not a size (bytes, or "
                           "a number with K, M or G)", argv[i]);
    } else if (strcmp(argv[i], "--log-format") == 0 && i + 1 < argc) {
      opts.log_format = argv[++i];
      if (larb_log_format_from(opts.log_format) < 0)
        return usage_error("--log-format: '%s' is not text or json",
                           argv[i]);
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
      opts.log_level = argv[++i];
      if (larb_log_level_from(opts.log_level) < 0)
        return usage_error("--log-level: '%s' is not debug, info, notice, "
                           "warning or error", argv[i]);
    } else if (strcmp(argv[i], "--dashboard") == 0 && i + 1 < argc) {
      opts.dashboard = argv[++i];
      if (check_dashboard_address(opts.dashboard) != 0)
        return usage_error("--dashboard: '%s' is not [HOST:]PORT (a port "
                           "from 0 to 65535)", argv[i]);
    } else if (strcmp(argv[i], "--dashboard-token-file") == 0 &&
               i + 1 < argc) {
      opts.dashboard_token_file = argv[++i];
      if (opts.dashboard_token_file[0] == '\0')
        return usage_error("--dashboard-token-file: '%s' is not a path",
                           argv[i]);
    } else if (strcmp(argv[i], "--log-file") == 0 && i + 1 < argc) {
      opts.log_file = argv[++i];
      if (opts.log_file[0] == '\0')
        return usage_error("--log-file: '%s' is not a path", argv[i]);
    } else {
      return usage_error("unknown option '%s'", argv[i]);
    }
  }
  if (i >= argc) return usage_error("%s", "run needs a script");
  if (opts.dashboard_token_file && !opts.dashboard)
    return usage_error("%s", "--dashboard-token-file needs --dashboard");
  opts.script = argv[i];
  opts.argc = argc - i;
  opts.argv = argv + i;
  opts.prefix_argc = i;
  opts.prefix_argv = argv;
  return larb_host_run(&opts);
}
