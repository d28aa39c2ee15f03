/* test_placement.c - the heap is placed at random: the same program,
 * started several times, gets its first arena at different addresses,
 * with the kernel's address randomisation on and off; arenas stay 64 MiB
 * aligned and the heap stays compact; a fork child keeps its parent's.
 *
 * `test_placement --print` prints the first heap address it gets (and
 * the address of a second, large block) and exits: the test runs itself
 * that way in children, through /proc/self/exe. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "layout.h"
#include "mheap.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#endif

static int print_addresses(void) {
    void *small = mh_malloc(64);
    void *big = mh_malloc((size_t)3 << 20);
    if (!small || !big) return 1;
    printf("%llx %llx\n", (unsigned long long)(uintptr_t)small,
           (unsigned long long)(uintptr_t)big);
    return 0;
}

/* Start this program with --print, ASLR off if asked; its two addresses. */
static int run_self(int no_aslr, uintptr_t *small, uintptr_t *big) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (no_aslr && personality(ADDR_NO_RANDOMIZE) == -1) _exit(3);
        execl("/proc/self/exe", "test_placement", "--print", (char *)NULL);
        _exit(2);
    }
    close(fds[1]);
    char buf[128];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    unsigned long long a = 0, b = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(buf, "%llx %llx", &a, &b) != 2) {
        fprintf(stderr, "child: status %#x, output '%s'\n", status, buf);
        return -1;
    }
    *small = (uintptr_t)a;
    *big = (uintptr_t)b;
    return 0;
}

#define RUNS 4

static void check_runs(int no_aslr) {
    uintptr_t small[RUNS], big[RUNS];
    for (int i = 0; i < RUNS; i++) {
        int rc = run_self(no_aslr, &small[i], &big[i]);
        CHECK(rc == 0);
        if (rc != 0) return;
        /* One heap: both blocks in the first reservation's arenas. */
        uintptr_t a0 = small[i] & ~(MHI_ARENA_SIZE - 1), a1 = big[i] & ~(MHI_ARENA_SIZE - 1);
        CHECK(a1 - a0 < 4 * MHI_ARENA_SIZE || a0 - a1 < 4 * MHI_ARENA_SIZE);
        CHECK(small[i] < ((uintptr_t)1 << 47));
    }
    /* Every run's arena differs from the others' (2^20 places, so two
     * equal among four runs is a chance of about 6 in a million). */
    int distinct = 1;
    for (int i = 0; i < RUNS; i++)
        for (int j = i + 1; j < RUNS; j++)
            if ((small[i] & ~(MHI_ARENA_SIZE - 1)) == (small[j] & ~(MHI_ARENA_SIZE - 1)))
                distinct = 0;
    if (!distinct)
        for (int i = 0; i < RUNS; i++) fprintf(stderr, "run %d: %#lx\n", i, (unsigned long)small[i]);
    CHECK(distinct);
}

static void check_fork_inherits(void) {
    char *p = mh_malloc(100);
    REQUIRE(p != NULL);
    uintptr_t arena = (uintptr_t)p & ~(MHI_ARENA_SIZE - 1);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child's heap is its parent's: the parent's block is there,
         * and new blocks come from the same arenas. */
        char *q = mh_malloc(100);
        uintptr_t qa = (uintptr_t)q & ~(MHI_ARENA_SIZE - 1);
        char ok = (q && qa == arena && mh_usable_size(p) >= 100) ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char ok = 0;
    CHECK(read(fds[0], &ok, 1) == 1);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(ok == 'y');
    mh_free(p);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--print") == 0) return print_addresses();
    check_runs(0);
#ifndef UNDER_TSAN
    /* With the kernel's randomisation off, mheap's own choice still moves
     * the heap.  (ThreadSanitizer allows the program's mappings only in
     * its own ranges, so mheap asks for no address there, and the kernel
     * alone places the heap.) */
    if (personality(0xffffffff) != -1) check_runs(1);
#endif
    check_fork_inherits();
    return check_done("test_placement");
}
