/* test_locks.c - the debug lock checks (os.h), in Debug builds (MHI_DEBUG).
 * A release build compiles the checks away: the test says so and exits 77
 * (skipped, tests/locks.cmake).
 *
 * Each misuse runs in a forked child whose stderr goes to a pipe; the
 * child must die of SIGABRT having written exactly one line:
 *   - mhi_lock of a lower rank while a higher one is held, and of a second
 *     lock of the rank held      -> "mheap: lock order violated: 0x<second>"
 *   - mhi_lock_assert_held on a lock nobody holds, and on one another
 *     thread holds               -> "mheap: lock not held: 0x<lock>"
 *   - mhi_unlock of a lock another thread holds, and of one nobody holds
 *       -> "mheap: unlock of a lock this thread does not hold: 0x<lock>"
 * What is allowed runs in a child that must exit 0 and print nothing:
 * every rank taken in order (and dropped in any order), a lock of rank
 * NONE under any lock, mhi_trylock out of order, a lock taken again after
 * it was dropped, mhi_lock_assert_held on held locks.
 * Then a workload with the checks on: threads malloc and free through
 * mh_malloc / mh_free (small and large, freeing each other's blocks),
 * call mh_trim, while the main thread forks children that allocate and
 * verify the heap; nothing aborts and mh_heap_verify() is 0 at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "mheap.h"
#include "os.h"

#ifndef MHI_DEBUG

int main(void) {
    printf("skipped: release build\n");
    return 77;
}

#else

static void expect_abort(const char *name, void (*fn)(void), const char *what,
                         const void *lock) {
    child_expect_abort0(name, fn, what, (uintptr_t)lock);
}

static void expect_ok(const char *name, void (*fn)(void)) { child_expect_clean0(name, fn); }

/* The locks the children use: one per rank, a second of one rank, and one
 * set up at run time. */
static mhi_lock_t l_options = MHI_LOCK_INIT(MHI_RANK_OPTIONS);
static mhi_lock_t l_caches = MHI_LOCK_INIT(MHI_RANK_CACHES);
static mhi_lock_t l_cache = MHI_LOCK_INIT(MHI_RANK_CACHE);
static mhi_lock_t l_central = MHI_LOCK_INIT(MHI_RANK_CENTRAL);
static mhi_lock_t l_central2 = MHI_LOCK_INIT(MHI_RANK_CENTRAL);
static mhi_lock_t l_heap = MHI_LOCK_INIT(MHI_RANK_HEAP);
static mhi_lock_t l_special = MHI_LOCK_INIT(MHI_RANK_SPECIAL);
static mhi_lock_t l_persist = MHI_LOCK_INIT(MHI_RANK_PERSIST);
static mhi_lock_t l_none = MHI_LOCK_INIT(MHI_RANK_NONE);
static mhi_lock_t l_runtime;

/* ---- misuse (each aborts) ---- */

static void heap_then_central(void) {
    mhi_lock(&l_heap);
    mhi_lock(&l_central);
}
static void special_then_options(void) {
    mhi_lock(&l_special);
    mhi_lock(&l_options);
}
static void same_rank(void) {
    mhi_lock(&l_central);
    mhi_lock(&l_central2);
}
static void runtime_same_rank(void) {
    mhi_lock_init(&l_runtime, MHI_RANK_PERSIST);
    mhi_lock(&l_persist);
    mhi_lock(&l_runtime);
}
/* The rank held counts only once it is taken: a lock out of order after a
 * trylock of a higher rank. */
static void after_trylock(void) {
    if (!mhi_trylock(&l_heap)) _exit(3);
    mhi_lock(&l_cache);
}
static void assert_unheld(void) {
    mhi_lock(&l_heap);
    mhi_lock_assert_held(&l_heap);
    mhi_lock_assert_held(&l_central);
}

/* A thread that takes a lock and keeps it (it exits holding it). */
static void *take_and_exit(void *arg) {
    mhi_lock((mhi_lock_t *)arg);
    return NULL;
}
static void hold_in_thread(mhi_lock_t *l) {
    pthread_t t;
    if (pthread_create(&t, NULL, take_and_exit, l) != 0) _exit(3);
    if (pthread_join(t, NULL) != 0) _exit(3);
    if (atomic_load(&l->state) == 0) _exit(3);
}
static void unlock_other_threads(void) {
    hold_in_thread(&l_cache);
    mhi_unlock(&l_cache);
}
static void assert_other_threads(void) {
    hold_in_thread(&l_central);
    mhi_lock_assert_held(&l_central);
}
static void unlock_unheld(void) {
    mhi_lock(&l_caches);
    mhi_unlock(&l_caches);
    mhi_unlock(&l_caches);
}

/* ---- allowed (each exits 0) ---- */

static void every_rank_in_order(void) {
    mhi_lock_t *order[] = {&l_options, &l_caches, &l_cache, &l_central,
                           &l_heap, &l_special, &l_persist};
    size_t n = sizeof order / sizeof order[0];
    for (size_t i = 0; i < n; i++) mhi_lock(order[i]);
    for (size_t i = 0; i < n; i++) mhi_lock_assert_held(order[i]);
    /* dropped in an order of their own */
    mhi_unlock(&l_central);
    mhi_unlock(&l_options);
    mhi_unlock(&l_persist);
    mhi_unlock(&l_cache);
    mhi_unlock(&l_heap);
    mhi_unlock(&l_caches);
    mhi_unlock(&l_special);
    /* All dropped: any rank again, and each one twice in turn. */
    mhi_lock(&l_heap);
    mhi_unlock(&l_heap);
    mhi_lock(&l_central);
    mhi_unlock(&l_central);
    mhi_lock(&l_central2);
    mhi_unlock(&l_central2);
    mhi_lock(&l_options);
    mhi_unlock(&l_options);
}

static void rank_none_anywhere(void) {
    mhi_lock(&l_persist);
    mhi_lock(&l_none);
    mhi_lock_assert_held(&l_none);
    mhi_unlock(&l_none);
    mhi_unlock(&l_persist);
}

static void trylock_out_of_order(void) {
    mhi_lock(&l_heap);
    if (!mhi_trylock(&l_central)) _exit(3);
    if (!mhi_trylock(&l_central2)) _exit(3); /* same rank, too */
    mhi_lock_assert_held(&l_central);
    mhi_lock_assert_held(&l_central2);
    if (mhi_trylock(&l_central)) _exit(3); /* held: fails, no abort */
    mhi_unlock(&l_central2);
    mhi_unlock(&l_central);
    mhi_unlock(&l_heap);
    /* Afterwards the order is as before. */
    mhi_lock(&l_options);
    mhi_lock(&l_heap);
    mhi_unlock(&l_heap);
    mhi_unlock(&l_options);
}

static void runtime_init_in_order(void) {
    mhi_lock_init(&l_runtime, MHI_RANK_SPECIAL);
    mhi_lock(&l_heap);
    mhi_lock(&l_runtime);
    mhi_lock_assert_held(&l_runtime);
    mhi_unlock(&l_runtime);
    mhi_unlock(&l_heap);
}

/* ---- the workload ---- */

#define NTHREADS 4
#define NSLOTS 64
#define NSHARED 64

static _Atomic(void *) shared[NSHARED]; /* blocks any thread may free */
static _Atomic int running;

static size_t pick_size(uint64_t *rng) {
    uint64_t r = check_rand(rng);
    if (r % 64 == 0) return 40000 + (size_t)(r >> 8) % 300000; /* large */
    return 1 + (size_t)(r >> 8) % ((r & 32) ? 4096 : 256);
}

static void *worker(void *arg) {
    uint64_t rng = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1);
    void *slots[NSLOTS] = {0};
    for (int i = 0; i < 6000; i++) {
        uint64_t r = check_rand(&rng);
        size_t k = (size_t)(r % NSLOTS);
        if (r & 256) {
            mh_free(slots[k]);
            slots[k] = mh_malloc(pick_size(&rng));
            if (!slots[k]) abort();
            memset(slots[k], 0x5a, 16);
        } else {
            /* Swap a block into the shared slots; free what was there
             * (most likely another thread's). */
            void *p = mh_malloc(pick_size(&rng));
            if (!p) abort();
            mh_free(atomic_exchange(&shared[(r >> 16) % NSHARED], p));
        }
        if (i % 1500 == 1499) mh_trim();
    }
    for (size_t k = 0; k < NSLOTS; k++) mh_free(slots[k]);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

/* In a child of fork while the workers run: the heap works and verifies
 * (the workers' caches are another thread's, left alone). */
static void fork_child_work(void) {
    alarm(20); /* a lock left held across fork: fail, do not hang */
    if (mh_option_set("background", 0) != 0) _exit(2);
    void *p[32];
    for (int i = 0; i < 32; i++) {
        p[i] = mh_malloc((size_t)(i * 97 + 1) * (i % 8 == 0 ? 600 : 1));
        if (!p[i]) _exit(2);
    }
    for (int i = 0; i < 32; i++) mh_free(p[i]);
    if (mh_heap_verify() != 0) _exit(3);
    mh_trim();
    _exit(mh_heap_verify() == 0 ? 0 : 3);
}

static void workload(void) {
    REQUIRE(mh_option_set("scavenge_delay_ms", 1) == 0);
    /* The fork handlers are registered by the first thread that makes a
     * cache (mhi_process_init, which marks itself done before it calls
     * pthread_atfork): make this thread's cache now, so they are in place
     * before any worker can hold a lock across one of the forks below. */
    mh_free(mh_malloc(16));
    /* Grow the heap once, here, well past what the workers keep live, so
     * they do not grow it: heap growth writes each arena's ncommitted
     * under the heap lock while mhi_heap_page_span, called without it
     * (return_list in cache.c), reads it, a race ThreadSanitizer reports
     * and that has nothing to do with the lock checks tested here. */
    void *room = mh_malloc((size_t)48 << 20);
    REQUIRE(room != NULL);
    mh_free(room);
    pthread_t t[NTHREADS];
    atomic_store(&running, NTHREADS);
    for (uintptr_t i = 0; i < NTHREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
    int forks = 0;
    while (forks < 3) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) fork_child_work();
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        CHECK(ok);
        if (!ok) fprintf(stderr, "  fork child %d: status %#x\n", forks, st);
        forks++;
        if (atomic_load(&running) == 0) break;
    }
    for (int i = 0; i < NTHREADS; i++) REQUIRE(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < NSHARED; i++) mh_free(atomic_exchange(&shared[i], NULL));
    mh_trim();
    CHECK_EQ(mh_heap_verify(), 0);
}

int main(void) {
    expect_abort("heap then central", heap_then_central, "lock order violated", &l_central);
    expect_abort("special then options", special_then_options, "lock order violated",
                 &l_options);
    expect_abort("two of one rank", same_rank, "lock order violated", &l_central2);
    expect_abort("two of one rank, one set up at run time", runtime_same_rank,
                 "lock order violated", &l_runtime);
    expect_abort("out of order after a trylock", after_trylock, "lock order violated", &l_cache);
    expect_abort("assert on a lock not held", assert_unheld, "lock not held", &l_central);
    expect_abort("assert on another thread's lock", assert_other_threads, "lock not held",
                 &l_central);
    expect_abort("unlock of another thread's lock", unlock_other_threads,
                 "unlock of a lock this thread does not hold", &l_cache);
    expect_abort("unlock of a lock not held", unlock_unheld,
                 "unlock of a lock this thread does not hold", &l_caches);

    expect_ok("every rank in order", every_rank_in_order);
    expect_ok("rank NONE under any lock", rank_none_anywhere);
    expect_ok("trylock out of order", trylock_out_of_order);
    expect_ok("run-time lock in order", runtime_init_in_order);

    /* The same in this process: nothing was left held by the checks. */
    every_rank_in_order();
    trylock_out_of_order();

    workload();
    return check_done("test_locks");
}

#endif
