/* test_fork_signal.c - fork from a signal handler that interrupted malloc
 * or free, in a process that has only ever had one thread.
 *
 * glibc makes fork safe there with respect to malloc: with one thread its
 * fork takes none of malloc's locks.  mheap's fork handlers do the same
 * (process.c): a lock the handler's own thread holds, half way through the
 * interrupted call, is not waited for.  Three sender processes (not
 * threads: the process must stay single-threaded) send SIGUSR1 to this
 * one at random short intervals; its handler forks, and the child exits
 * at once.  Meanwhile the process frees and allocates a random slot of
 * 1009 (1 B to 70000 B, so that small, medium and large blocks and the
 * page heap's lock are all used) for SECONDS seconds, forking itself at
 * one round in 512 or so.  A fork that waits for a lock held by the call it
 * interrupted never returns: an alarm then ends the test with SIGALRM.
 *
 * Checks: the rounds end; every child exits 0; signals arrived during the
 * rounds; the process still has one thread (mheap started none of its
 * own); the heap verifies.  Skipped under the sanitizers (their runtimes
 * are not async-signal-safe around fork). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mheap.h"
#include "os.h"

enum { SLOTS = 1009, MAX_SIZE = 70000, SENDERS = 3 };
#define SECONDS 5

static volatile sig_atomic_t handler_forks, handler_errors;

/* Fork a child that exits at once and reap it (async-signal-safe):
 * -1 if the fork failed, 0 if the child did not exit 0, 1 if it did. */
static int fork_and_reap(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    int r = fork_and_reap();
    if (r <= 0) handler_errors++;
    if (r >= 0) handler_forks++;
    errno = saved;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_fork_signal: a fork from the signal handler never returned\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void sender(pid_t target, unsigned seed) {
    for (;;) {
        if (kill(target, SIGUSR1) != 0) _exit(0); /* the target is gone */
        struct timespec ts = {0, (long)(rand_r(&seed) % 2000) * 1000};
        nanosleep(&ts, NULL);
    }
}

int main(void) {
    if (MHEAP_TEST_SANITIZED) {
        printf("test_fork_signal: skipped (sanitizer build)\n");
        return 77;
    }
    REQUIRE(mhi_os_single_threaded());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    sa.sa_handler = on_alarm;
    REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0);

    alarm(120); /* (first: the children do not inherit it) */
    pid_t self = getpid(), senders[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        fflush(stdout);
        senders[i] = fork();
        REQUIRE(senders[i] >= 0);
        if (senders[i] == 0) sender(self, 7u + (unsigned)i);
    }
    static void *slot[SLOTS];
    unsigned seed = 1;
    int own_forks = 0, own_bad = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rounds = 0;
    for (t = t0; t.tv_sec - t0.tv_sec < SECONDS; rounds++) {
        int i = rand_r(&seed) % SLOTS;
        size_t size = (size_t)(rand_r(&seed) % MAX_SIZE) + 1;
        if ((rounds & 1023) == 0) clock_gettime(CLOCK_MONOTONIC, &t);
        if (rand_r(&seed) % 512 == 0) {
            int r = fork_and_reap();
            if (r <= 0) own_bad++;
            if (r >= 0) own_forks++;
        }
        mh_free(slot[i]);
        slot[i] = mh_malloc(size);
        REQUIRE(slot[i] != NULL);
        memset(slot[i], rounds & 0xff, size < 64 ? size : 64);
    }
    alarm(0);
    for (int i = 0; i < SENDERS; i++) {
        kill(senders[i], SIGKILL);
        while (waitpid(senders[i], NULL, 0) < 0 && errno == EINTR) {
        }
    }
    printf("test_fork_signal: %d rounds; %d forks from the signal handler, %d of its own; "
           "%d threads\n",
           rounds, (int)handler_forks, own_forks, count_threads());
    CHECK(handler_forks > 0);
    CHECK_EQ(handler_errors, 0);
    CHECK_EQ(own_bad, 0);
    CHECK(own_forks > 0);
    CHECK_EQ(count_threads(), 1);
    CHECK(mhi_os_single_threaded());
    for (int i = 0; i < SLOTS; i++) mh_free(slot[i]);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_fork_signal");
}
