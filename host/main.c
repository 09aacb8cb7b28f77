/*
** main.c: the arbor command line.
**
**   arbor [run] [--watch] [--control PATH] SCRIPT [ARGS...]
**   arbor status [--control PATH] [SCRIPT]
**   arbor reload [--dry-run] [--control PATH] [SCRIPT]
**   arbor stop [--control PATH] [SCRIPT]
**   arbor --help | --version
**
** Exit status: what the host returns (0 after an orderly stop, 1 when the
** main process or the root tree failed), 2 for usage errors and scripts
** that cannot load.  The control commands exit with the host's answer
** code (0 ok, 1 failed), or 1 when no host answers.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb.h"
#include "control.h"
#include "larb.h"

static const char usage[] =
    "usage: arbor [run] [--watch] [--control PATH] SCRIPT [ARGS...]\n"
    "       arbor status [--control PATH] [SCRIPT]\n"
    "       arbor reload [--dry-run] [--control PATH] [SCRIPT]\n"
    "       arbor stop [--control PATH] [SCRIPT]\n"
    "       arbor --help | --version\n"
    "\n"
    "run      runs SCRIPT (Lua 5.4) as the first process of a host.  If the\n"
    "         script returns a supervisor.spec value, the host starts it as\n"
    "         the root tree and serves: it listens on a control socket\n"
    "         (--control PATH, default per script in $XDG_RUNTIME_DIR or\n"
    "         /tmp) and reloads the script on SIGHUP, on `arbor reload`,\n"
    "         and with --watch whenever a .lua file in its folder changes.\n"
    "status   prints the running tree of the host serving SCRIPT.\n"
    "reload   reloads SCRIPT in its host and applies the difference;\n"
    "         --dry-run prints the plan and changes nothing.\n"
    "stop     shuts the host down in order.\n"
    "\n"
    "SIGINT and SIGTERM shut every tree down in order.  Exit status: 0\n"
    "after an orderly stop, 1 if the main process or the root tree failed,\n"
    "2 on a usage error or a script that cannot be loaded.\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "arbor: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return 2;
}

/* arbor status|reload|stop [...]: one request to a running host. */
static int control_command(const char *cmd, int argc, char **argv) {
  const char *control = NULL, *script = NULL;
  int dry_run = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
      control = argv[++i];
    } else if (strcmp(argv[i], "--dry-run") == 0 &&
               strcmp(cmd, "reload") == 0) {
      dry_run = 1;
    } else if (argv[i][0] == '-') {
      return usage_error("unknown option '%s'", argv[i]);
    } else if (script == NULL) {
      script = argv[i];
    } else {
      return usage_error("unexpected argument '%s'", argv[i]);
    }
  }
  char path[512];
  if (control) {
    snprintf(path, sizeof(path), "%s", control);
  } else if (script) {
    arb_control_default_path(script, path, sizeof(path));
  } else {
    return usage_error("%s: give the script or --control PATH", cmd);
  }
  char line[64];
  snprintf(line, sizeof(line), "%s%s", cmd, dry_run ? " --dry-run" : "");
  char *text = NULL;
  int code = arb_control_request(path, line, &text);
  if (code < 0) {
    fprintf(stderr, "arbor %s: %s\n", cmd, text ? text : "failed");
    free(text);
    return 1;
  }
  FILE *out = code == 0 ? stdout : stderr;
  if (text && *text) fprintf(out, "%s\n", text);
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
      strcmp(first, "stop") == 0)
    return control_command(first, argc - 2, argv + 2);

  larb_host_opts_t opts;
  memset(&opts, 0, sizeof(opts));
  int i = strcmp(first, "run") == 0 ? 2 : 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "--watch") == 0) {
      opts.watch = 1;
    } else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
      opts.control_path = argv[++i];
    } else {
      return usage_error("unknown option '%s'", argv[i]);
    }
  }
  if (i >= argc) return usage_error("%s", "run needs a script");
  opts.script = argv[i];
  opts.argc = argc - i;
  opts.argv = argv + i;
  opts.prefix_argc = i;
  opts.prefix_argv = argv;
  return larb_host_run(&opts);
}
