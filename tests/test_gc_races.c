/* test_gc_races.c - collections racing with what other threads do to the
 * process around them (each part once stopped the collector or crashed it):
 *
 *   markers    a registered thread keeps taking the page heap's lock
 *              (large mallocs) while another thread's collections need
 *              marker threads started: the collections complete (marker
 *              threads are created outside the pause, where creating one
 *              cannot wait for a lock a stopped thread holds);
 *   roots      a thread adds a root range, removes it and unmaps it, over
 *              and over, while collections run: none scans it unmapped;
 *   dlclose    a thread loads and unloads a library with 8 MiB of data
 *              and bss, over and over, while collections run: none scans
 *              its unmapped data (not under ASan, whose interceptors of
 *              the loader's calls have hung it under contention).
 *
 * A hang fails by the test's timeout; a crash fails it outright.  The
 * library's path comes from the build (GC_RACE_LIB). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "check.h"
#include "mheap.h"
#include "mheap_gc.h"

/* In the threads: check.h's counters are not for threads. */
#define ENSURE(cond)                                                              \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                              \
        }                                                                         \
    } while (0)

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ROUNDS 200
#else
#define ROUNDS 2000
#endif

typedef struct node {
    struct node *next;
    long value;
} node;

static atomic_int stop, started;

static void *churn_malloc(void *arg) {
    (void)arg;
    mh_gc_register_thread();
    atomic_store(&started, 1);
    while (!atomic_load(&stop)) {
        void *volatile p = malloc((size_t)300 << 10);
        free(p);
    }
    return NULL;
}

static node *volatile keep;

static void *collect_with_markers(void *arg) {
    (void)arg;
    long n = 0;
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i < 4000; i++) {
            node *x = mh_gc_malloc(sizeof *x);
            ENSURE(x != NULL);
            x->next = keep;
            x->value = n++;
            keep = x;
        }
        mh_gc_collect(0);
    }
    return NULL;
}

static void test_markers(void) {
    pthread_t b, c;
    REQUIRE(pthread_create(&b, NULL, churn_malloc, NULL) == 0);
    while (!atomic_load(&started)) {
    }
    REQUIRE(pthread_create(&c, NULL, collect_with_markers, NULL) == 0);
    REQUIRE(pthread_join(c, NULL) == 0);
    atomic_store(&stop, 1);
    REQUIRE(pthread_join(b, NULL) == 0);
    long expect = 20 * 4000 - 1, ok = 1;
    for (node *x = keep; x; x = x->next) ok &= x->value == expect--;
    CHECK(ok && expect == -1);
    mh_gc_stats_t st;
    mh_gc_stats_get(&st, sizeof st);
    CHECK(st.markers >= 2); /* (MHEAP_OPTIONS=gc_markers=2: the threads were started) */
    keep = NULL;
    atomic_store(&stop, 0);
}

static void *churn_roots(void *arg) {
    (void)arg;
    size_t len = (size_t)1 << 20;
    while (!atomic_load(&stop)) {
        char *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ENSURE(r != MAP_FAILED);
        ENSURE(mh_gc_add_roots(r, r + len) == 0);
        mh_gc_remove_roots(r, r + len);
        ENSURE(munmap(r, len) == 0);
    }
    return NULL;
}

static const char *lib_path;

static __attribute__((unused)) void *churn_dlopen(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        void *h = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "dlopen %s: %s\n", lib_path, dlerror());
            exit(2);
        }
        ENSURE(dlclose(h) == 0);
    }
    return NULL;
}

static void collect_while(void *(*churn)(void *)) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, churn, NULL) == 0);
    node *live = NULL;
    for (int i = 0; i < 1000; i++) {
        node *x = mh_gc_malloc(sizeof *x);
        REQUIRE(x != NULL);
        x->next = live;
        x->value = i;
        live = x;
    }
    for (int r = 0; r < ROUNDS; r++) mh_gc_collect(0);
    atomic_store(&stop, 1);
    REQUIRE(pthread_join(t, NULL) == 0);
    atomic_store(&stop, 0);
    long expect = 999, ok = 1;
    for (node *x = live; x; x = x->next) ok &= x->value == expect--;
    CHECK(ok && expect == -1);
    CHECK_EQ(mh_heap_verify(), 0);
}

int main(void) {
    lib_path = GC_RACE_LIB;
    mh_gc_register_thread();
    test_markers();
    collect_while(churn_roots);
#if defined(__SANITIZE_ADDRESS__)
    /* (not under ASan: its runtime intercepts dlopen, dlclose and
     * dl_iterate_phdr, and with the CPU contended the part has hung there,
     * a collection running inside the loader's lock) */
    fprintf(stderr, "test_gc_races: the dlclose part does not run under ASan\n");
#else
    collect_while(churn_dlopen);
#endif
    return check_done("test_gc_races");
}
