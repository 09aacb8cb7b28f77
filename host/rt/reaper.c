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

/* Children someone else waits for with waitpid (Lua's io.popen outside a
** process: its close needs the exit status).  A handful at most. */
static pid_t *kept;
static size_t nkept, capkept;

int arb_reaper_keep(pid_t pid) {
  if (nkept == capkept) {
    size_t ncap = capkept ? capkept * 2 : 8;
    pid_t *n = realloc(kept, ncap * sizeof(*n));
    if (n == NULL) return UV_ENOMEM;
    kept = n;
    capkept = ncap;
  }
  kept[nkept++] = pid;
  return 0;
}

void arb_reaper_unkeep(pid_t pid) {
  for (size_t i = 0; i < nkept; i++) {
    if (kept[i] != pid) continue;
    kept[i] = kept[--nkept];
    break;
  }
  if (nkept == 0) {
    free(kept);
    kept = NULL;
    capkept = 0;
  }
}

static int is_kept(pid_t pid) {
  for (size_t i = 0; i < nkept; i++)
    if (kept[i] == pid) return 1;
  return 0;
}

static int waited_for_elsewhere(pid_t pid) {
  return is_kept(pid) || (owned_by_libuv && owned_by_libuv(pid));
}

static void reap(pid_t pid) {
  pid_t got;
  do
    got = waitpid(pid, NULL, WNOHANG);
  while (got == -1 && errno == EINTR);
}

/* Child by child: a kept zombie may stay for as long as its popen is
** open, so the zombies behind it are found through the children list
** (which holds zombies until they are reaped) rather than waitid(P_ALL),
** which would keep answering with the kept one. */
static int list_children(pid_t *pids, int max);

static void scan_each(void) {
  enum { MAX_CHILDREN = 1024 };
  pid_t *pids = malloc(MAX_CHILDREN * sizeof(*pids));
  if (pids == NULL) return; /* the next SIGCHLD tries again */
  int n = list_children(pids, MAX_CHILDREN);
  if (n > MAX_CHILDREN) n = MAX_CHILDREN;
  for (int i = 0; i < n; i++) {
    if (waited_for_elsewhere(pids[i])) continue;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int rc;
    do
      rc = waitid(P_PID, (id_t)pids[i], &si, WEXITED | WNOHANG | WNOWAIT);
    while (rc == -1 && errno == EINTR);
    if (rc == 0 && si.si_pid == pids[i]) reap(pids[i]);
  }
  free(pids);
}

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
    if (is_kept(si.si_pid)) {
      scan_each();
      return;
    }
    reap(si.si_pid);
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

/* Has the kept child pid ended (a zombie its popen's close will reap)? */
static int kept_and_ended(pid_t pid) {
  if (!is_kept(pid)) return 0;
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         si.si_pid == pid;
}

/* Drops the kept children that have ended from pids[0..n) (n <= max):
** nothing is left to stop there, and only their close may reap them. */
static int drop_ended_kept(pid_t *pids, int n, int max) {
  if (nkept == 0) return n;
  int stored = n < max ? n : max, out = 0, dropped = 0;
  for (int i = 0; i < stored; i++) {
    if (kept_and_ended(pids[i]))
      dropped++;
    else
      pids[out++] = pids[i];
  }
  return n - dropped;
}

int arb_reaper_children(pid_t *pids, int max) {
  return drop_ended_kept(pids, list_children(pids, max), max);
}

static int list_children(pid_t *pids, int max) {
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
