/*
** main.c: the arbor command line.
**
**   arbor run SCRIPT [ARGS...]   run SCRIPT as the main process
**   arbor SCRIPT [ARGS...]       the same
**   arbor --help | --version
**
** Exit status: what the host returns (0 after an orderly stop, 1 when the
** main process failed), 2 for usage errors and scripts that cannot load.
*/
#include <stdio.h>
#include <string.h>

#include "arb.h"
#include "larb.h"

static const char usage[] =
    "usage: arbor [run] SCRIPT [ARGS...]\n"
    "       arbor --help | --version\n"
    "\n"
    "Runs SCRIPT (Lua 5.4) as the first process of an arbor host.  The\n"
    "host serves until every process has ended, or until SIGINT or\n"
    "SIGTERM shuts all trees down in order.\n"
    "\n"
    "Exit status: 0 after an orderly stop, 1 if the main process failed,\n"
    "2 on a usage error or a script that cannot be loaded.\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "arbor: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return 2;
}

int main(int argc, char **argv) {
  int i = 1;
  if (argc < 2) return usage_error("%s", "no script given");
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("arbor %s (%s)\n", ARB_VERSION, LUA_RELEASE);
    return 0;
  }
  if (strcmp(argv[1], "run") == 0) i = 2;
  if (i >= argc) return usage_error("%s", "run needs a script");
  if (argv[i][0] == '-' && argv[i][1] != '\0')
    return usage_error("unknown option '%s'", argv[i]);
  larb_host_opts_t opts;
  opts.script = argv[i];
  opts.argc = argc - i;
  opts.argv = argv + i;
  opts.prefix_argc = i;
  opts.prefix_argv = argv;
  return larb_host_run(&opts);
}
