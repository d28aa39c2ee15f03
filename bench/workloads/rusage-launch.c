/* Runs a command and reports its resource usage, for bench/run.py.
 *
 *   rusage-launch OUTFILE PRELOAD -- command [args...]
 *
 * Forks, sets LD_PRELOAD=PRELOAD in the child only (an empty PRELOAD leaves
 * LD_PRELOAD unset), execs the command, waits for it with wait4 and writes
 * one line to OUTFILE:
 *
 *   status=<exit code, or -signal> wall_s=... maxrss_kib=... minflt=...
 *   majflt=... utime_s=... stime_s=...
 *
 * The launcher exists because a process's ru_maxrss includes the peak RSS
 * of the process it was forked from (the kernel carries it across exec):
 * started straight from the Python runner, every workload would report at
 * least the runner's own ~20 MiB.  This small process is the parent instead.
 * The rusage covers the command and the children it waited for (cc1 under
 * gcc).  Exits with the command's exit code (128 + signal when killed).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec * 1e-6; }

int main(int argc, char **argv) {
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr, "usage: rusage-launch OUTFILE PRELOAD -- command [args...]\n");
    return 125;
  }
  const char *out = argv[1], *preload = argv[2];
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 125;
  }
  if (pid == 0) {
    if (preload[0])
      setenv("LD_PRELOAD", preload, 1);
    else
      unsetenv("LD_PRELOAD");
    execvp(argv[4], argv + 4);
    perror(argv[4]);
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
  }
  double wall = now() - t0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  FILE *f = fopen(out, "w");
  if (f) {
    fprintf(f, "status=%d wall_s=%.6f maxrss_kib=%ld minflt=%ld majflt=%ld utime_s=%.6f stime_s=%.6f\n",
            code, wall, ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt, tv(ru.ru_utime), tv(ru.ru_stime));
    fclose(f);
  }
  return code >= 0 ? code : 128 - code;
}
