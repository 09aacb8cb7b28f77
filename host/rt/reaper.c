/*
** reaper.c: reaping descendants without stealing libuv's children (see
** reaper.h).
*/
#define _DEFAULT_SOURCE /* prctl's header, dirent's d_type */
#include "reaper.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static uv_signal_t sigchld;
static int watching;
static arb_reaper_owned_fn owned_by_libuv;

void arb_reaper_scan(void) {
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int rc;
    do
      rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
    while (rc == -1 && errno == EINTR);
    if (rc == -1 || si.si_pid == 0) return; /* no children, or none ended */
    if (owned_by_libuv && owned_by_libuv(si.si_pid)) return;
    pid_t got;
    do
      got = waitpid(si.si_pid, NULL, WNOHANG);
    while (got == -1 && errno == EINTR);
    if (got <= 0) return; /* taken meanwhile (cannot happen on one thread) */
  }
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  arb_reaper_scan();
}

int arb_reaper_init(uv_loop_t *loop, arb_reaper_owned_fn owned) {
  owned_by_libuv = owned;
  (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (watching) return 0;
  int rc = uv_signal_init(loop, &sigchld);
  if (rc == 0) rc = uv_signal_start(&sigchld, on_sigchld, SIGCHLD);
  if (rc != 0) return rc;
  uv_unref((uv_handle_t *)&sigchld);
  watching = 1;
  /* Children that ended before the handler was there. */
  arb_reaper_scan();
  return 0;
}

void arb_reaper_close(void) {
  if (!watching) return;
  watching = 0;
  uv_signal_stop(&sigchld);
  uv_close((uv_handle_t *)&sigchld, NULL);
}

/* Adds the pids in one /proc/self/task/T/children file. */
static int read_children(const char *path, pid_t *pids, int n, int max) {
  FILE *f = fopen(path, "re");
  if (f == NULL) return n;
  long pid;
  while (fscanf(f, "%ld", &pid) == 1) {
    if (n < max) pids[n] = (pid_t)pid;
    n++;
  }
  fclose(f);
  return n;
}

/* Without /proc/.../children (a kernel built without
** CONFIG_PROC_CHILDREN): every process whose parent is the host. */
static int scan_all(pid_t *pids, int max) {
  DIR *d = opendir("/proc");
  if (d == NULL) return 0;
  pid_t self = getpid();
  int n = 0;
  struct dirent *e;
  char path[300];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "re");
    if (f == NULL) continue;
    char buf[512];
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *close_paren = strrchr(buf, ')'); /* the name may hold spaces */
    long ppid;
    if (close_paren && sscanf(close_paren + 1, " %*c %ld", &ppid) == 1 &&
        ppid == (long)self) {
      if (n < max) pids[n] = (pid_t)atol(e->d_name);
      n++;
    }
  }
  closedir(d);
  return n;
}

int arb_reaper_children(pid_t *pids, int max) {
  char path[300];
  snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
  if (access(path, R_OK) != 0) return scan_all(pids, max);
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
    n = read_children(path, pids, n, max);
  }
  closedir(d);
  return n;
}
