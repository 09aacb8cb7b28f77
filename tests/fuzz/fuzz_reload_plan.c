/*
** fuzz_reload_plan.c: libFuzzer target for the reload path's decision
** step: each input is a service script, loaded, checked, resolved and
** diffed against a fixed running tree by the code `arbor reload` runs
** (lua/arbor/reload.lua's loader process), in a real host.
**
** Every input gets a host of its own (larb_host_run, as `arbor run`
** starts one), whose main script is reload_driver.lua: it hands the input
** file to arbor.reload's loader, waits for the answer with a deadline
** (killing an overdue loader, as the main process does), and checks the
** answer (see the driver's header).  A failed check makes the host exit
** non-zero, and this target aborts: libFuzzer reports the input.  The
** binding, runtime and core are compiled into the target with the
** sanitizers, so a memory error anywhere below the Lua code is caught
** too.  A host per input keeps inputs apart: whatever one does to the
** Lua state (globals, processes left running) ends with its host.
**
** The input goes to a file in a private folder made once; stdout is sent
** to /dev/null (inputs may print).
*/
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lhost.h" /* larb_host_run and its options */

#ifndef RELOAD_DRIVER
#error "RELOAD_DRIVER: the path of reload_driver.lua (set by CMake)"
#endif

static char input_dir[200], input_path[256];

static void remove_input(void) {
  unlink(input_path);
  rmdir(input_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *tmp = getenv("TMPDIR");
  snprintf(input_dir, sizeof(input_dir), "%s/arbor-fuzz-reload.XXXXXX",
           tmp && *tmp && strlen(tmp) < 150 ? tmp : "/tmp");
  if (mkdtemp(input_dir) == NULL) {
    perror("fuzz_reload_plan: mkdtemp");
    abort();
  }
  snprintf(input_path, sizeof(input_path), "%s/service.lua", input_dir);
  atexit(remove_input);
  int devnull = open("/dev/null", O_WRONLY);
  if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0) {
    perror("fuzz_reload_plan: /dev/null");
    abort();
  }
  close(devnull);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(input_path, "wb");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
    perror("fuzz_reload_plan: writing the input");
    abort();
  }
  char *argv[] = {(char *)RELOAD_DRIVER, input_path, NULL};
  larb_host_opts_t opts;
  memset(&opts, 0, sizeof(opts));
  opts.script = RELOAD_DRIVER;
  opts.argc = 2;
  opts.argv = argv;
  int code = larb_host_run(&opts);
  if (code != 0) {
    fprintf(stderr, "fuzz_reload_plan: the host exited %d\n", code);
    abort();
  }
  return 0;
}
