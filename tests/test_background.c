/* test_background.c - memory goes back to the OS without heap calls, and
 * a refused madvise leaves no page wrongly taken for zero.
 *
 *   background: in a process that has made a thread of its own,
 *       scavenge_delay_ms = 100; 32 MiB of large blocks, touched, freed;
 *       then only sleeping and mincore (no heap call): within 3 s the pages
 *       stop being resident and stats.heap_released covers them.
 *   single: in a child that never made a thread, the default makes none
 *       either (the task count and glibc's single-threaded flag stay as
 *       they were): the freed pages stay over 1 s without heap calls, and
 *       go within 3 s of small malloc/free calls (their slow paths run the
 *       scavenger), still without a thread.
 *   always: in a single-threaded child with background = 2, the thread
 *       starts and the pages go without heap calls.
 *   off: in a child with background = 0, the same pages stay resident over
 *       the same wait (nothing but a heap call releases them).
 *   mlock: in a child that locks its memory (mlockall), a trim cannot
 *       release the freed pages; calloc on them must still clear them.
 *       Skipped when mlockall is not permitted.
 *   populate: a fresh 512 KiB block from malloc is resident at once (one
 *       madvise instead of a fault per page) while one from calloc is not
 *       (a zeroed table may be used sparsely).  Skipped on kernels without
 *       MADV_POPULATE_WRITE. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#include "mheap.h"
#include "os.h"

#define MiB ((size_t)1 << 20)
#define NBLK 8
#define BLK (4 * MiB)

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static char *blk[NBLK];

static void fill_and_free(void) {
    for (int i = 0; i < NBLK; i++) {
        blk[i] = mh_malloc(BLK);
        REQUIRE(blk[i] != NULL);
        memset(blk[i], 0x5a, BLK);
    }
    for (int i = 0; i < NBLK; i++) mh_free(blk[i]);
}

static size_t resident_pages(void) {
    size_t n = 0;
    for (int i = 0; i < NBLK; i++) n += mhi_os_resident(blk[i], BLK);
    return n;
}

static size_t total_pages(void) { return NBLK * (BLK / (size_t)getpagesize()); }

/* Wait up to ms for the freed blocks to leave memory; returns the pages
 * still resident at the end. */
static size_t wait_released(long ms) {
    size_t r = resident_pages();
    for (long t = 0; t < ms && r > total_pages() / 64; t += 50) {
        sleep_ms(50);
        r = resident_pages();
    }
    return r;
}

/* The threads of this process (entries of /proc/self/task). */
static int task_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The single child: nothing but the heap calls returns the pages. */
static int single_child(void) {
    if (mh_option_set("scavenge_delay_ms", 100) != 0) return 2;
    if (!mhi_os_single_threaded()) {
        if (MHEAP_TEST_SANITIZED) { /* (a sanitizer's runtime may have made threads) */
            printf("single: skipped (the process is not single-threaded)\n");
            return 77;
        }
        printf("single: the process has more than one thread before the test\n");
        return 1;
    }
    int tasks = task_count();
    fill_and_free();
    size_t before = resident_pages();
    sleep_ms(1000);
    size_t idle = resident_pages();
    int tasks_idle = task_count();
    static void *ring[256];
    long ms = 0;
    size_t r = idle;
    for (unsigned k = 0; ms < 3000 && r > total_pages() / 64; ms += 10) {
        for (int j = 0; j < 20000; j++, k++) {
            mh_free(ring[k % 256]);
            ring[k % 256] = mh_malloc(16 + k % 200);
            if (!ring[k % 256]) return 2;
        }
        sleep_ms(10);
        r = resident_pages();
    }
    for (int j = 0; j < 256; j++) mh_free(ring[j]);
    printf("single: %d thread(s) -> %d; resident %zu -> %zu over 1 s without calls, -> %zu of %zu "
           "pages after %ld ms of calls; still %d thread(s), single-threaded %d\n",
           tasks, tasks_idle, before, idle, r, total_pages(), ms, task_count(),
           (int)mhi_os_single_threaded());
    int bad = 0;
    bad |= tasks_idle != tasks || task_count() != tasks || !mhi_os_single_threaded();
    bad |= idle < total_pages() - total_pages() / 64;
    bad |= r > total_pages() / 64;
    bad |= mh_heap_verify() != 0;
    return bad;
}

/* The always child: background = 2 starts the thread anyway. */
static int always_child(void) {
    if (mh_option_set("background", 2) != 0 || mh_option_set("scavenge_delay_ms", 100) != 0)
        return 2;
    int tasks = task_count();
    fill_and_free();
    size_t before = resident_pages();
    size_t after = wait_released(3000);
    printf("always: %d thread(s) -> %d; resident %zu -> %zu of %zu pages without calls\n", tasks,
           task_count(), before, after, total_pages());
    return task_count() <= tasks || after > total_pages() / 64;
}

static int child_status(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
}

static void test_populate(void) {
    const size_t n = 512 << 10, pages = n / (size_t)getpagesize();
    char *z = mh_calloc(1, n);
    char *m = mh_malloc(n);
    REQUIRE(z != NULL && m != NULL);
    size_t rz = mhi_os_resident(z, n), rm = mhi_os_resident(m, n);
    printf("populate: malloc'd block %zu of %zu pages resident, calloc'd %zu\n", rm, pages, rz);
    if (rm == 0) {
        printf("populate: skipped (no MADV_POPULATE_WRITE here)\n");
    } else {
        CHECK_EQ(rm, pages);
        CHECK(rz < pages / 8);
    }
    for (size_t i = 0; i < n; i += 4096) CHECK(z[i] == 0);
    mh_free(z);
    mh_free(m);
}

static void *nothing(void *arg) { return arg; }

int main(void) {
    /* The children are forked first, while this process has no thread
     * but the main one (the first free of a large block starts the
     * background scavenger; forking beside running threads is what
     * ThreadSanitizer handles worst). */
    pid_t pid;
    int st;
    /* (populate frees large blocks: the thread stays off for it.) */
    CHECK_EQ(mh_option_set("background", 0), 0);
    test_populate();
    CHECK_EQ(mh_option_set("background", 1), 0);

    /* off: background disabled before the first free. */
    fflush(stdout);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (mh_option_set("background", 0) != 0 || mh_option_set("scavenge_delay_ms", 100) != 0)
            _exit(2);
        fill_and_free();
        size_t before = resident_pages();
        sleep_ms(1000);
        size_t after = resident_pages();
        printf("off: resident %zu -> %zu of %zu pages after 1 s\n", before, after, total_pages());
        fflush(stdout);
        _exit(after >= total_pages() - total_pages() / 64 ? 0 : 1);
    }
    st = child_status(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "  off child: exit %d, signal %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                WIFSIGNALED(st) ? WTERMSIG(st) : 0);

    /* mlock: madvise(MADV_DONTNEED) fails on locked pages. */
#if MHEAP_TEST_SANITIZED
    /* mlockall would lock the sanitizer's shadow memory: terabytes. */
    printf("mlock: skipped (sanitizer build)\n");
#else
    fflush(stdout);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mh_option_set("background", 0);
        char *p = mh_malloc(BLK);
        if (!p) _exit(2);
        memset(p, 0xa5, BLK);
        if (mlockall(MCL_CURRENT) != 0) {
            printf("mlock: skipped (mlockall: %s)\n", strerror(errno));
            fflush(stdout);
            _exit(77);
        }
        mh_free(p);
        mh_trim();
        char *q = mh_calloc(1, BLK);
        if (!q) _exit(2);
        size_t bad = 0;
        for (size_t i = 0; i < BLK; i++) bad += q[i] != 0;
        printf("mlock: calloc over %s block: %zu non-zero bytes\n", q == p ? "the same" : "another",
               bad);
        fflush(stdout);
        _exit(bad == 0 ? 0 : 1);
    }
    st = child_status(pid);
    CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77));
    if (!(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77)))
        fprintf(stderr, "  mlock child: exit %d, signal %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                WIFSIGNALED(st) ? WTERMSIG(st) : 0);
#endif
    /* single and always: forked while this process still has one thread. */
    struct {
        const char *name;
        int (*fn)(void);
    } kids[] = {{"single", single_child}, {"always", always_child}};
    for (int i = 0; i < 2; i++) {
        fflush(stdout);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int rc = kids[i].fn();
            fflush(stdout);
            _exit(rc);
        }
        st = child_status(pid);
        bool ok = WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  %s child: exit %d, signal %d\n", kids[i].name,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }

    /* background: the default, in a process that has made a thread. */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, nothing, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    CHECK_EQ(mh_option_get("background"), 1);
    CHECK_EQ(mh_option_set("scavenge_delay_ms", 100), 0);
    mh_stats_t s0, s1;
    mh_stats_get(&s0, sizeof s0);
    fill_and_free();
    size_t before = resident_pages();
    size_t after = wait_released(3000);
    mh_stats_get(&s1, sizeof s1);
    printf("background: resident %zu -> %zu of %zu pages; released %llu -> %llu bytes\n", before,
           after, total_pages(), (unsigned long long)s0.heap_released,
           (unsigned long long)s1.heap_released);
    CHECK(before >= total_pages() - total_pages() / 64);
    CHECK(after <= total_pages() / 64);
    CHECK(s1.heap_released >= s0.heap_released + (uint64_t)NBLK * BLK);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_background");
}
