/* test_pageheap_threads.c - the page heap under concurrent use.
 *
 * Four worker threads allocate and free spans of 1..64 pages at random:
 * INUSE spans through mhi_heap_alloc / mhi_heap_free, manual ones through
 * the public mh_pages_alloc / mh_pages_free, now and then resizing one in
 * place.  Each keeps up to 200 live spans and writes a pattern unique to the
 * thread and the span into the span's first and last word, checked before
 * the span is freed or resized; zeroed spans must read zero before that;
 * lock-free lookups of its own spans must find them.  A fifth thread
 * scavenges all the while.  Afterwards: mh_heap_verify() == 0 and the
 * statistics are back where they started.
 *
 * Failures inside threads are counted per thread (check.h's counters are
 * not thread-safe) and reported by main.  Must be clean under TSan. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "mheap.h"
#include "pageheap.h"

#define P MHI_PAGE_SIZE
#define NTHREADS 4
#define MAXLIVE 200
#define DEFAULT_OPS 80000 /* per thread */

typedef struct {
    uintptr_t base;
    size_t npages;
    mhi_span *s;
    uint64_t serial;
    bool pages; /* from mh_pages_alloc */
} tspan;

typedef struct {
    int id;
    uint64_t seed;
    unsigned long ops;
    pthread_t thr;
    /* results */
    unsigned long nfail, nalloc, nfree, nresize;
} worker_t;

static atomic_bool done;
static atomic_ulong scav_passes;
static _Atomic uint64_t scav_bytes;

#define TCHECK(w, cond)                                                          \
    do {                                                                         \
        if (!(cond)) {                                                           \
            if ((w)->nfail++ < 10)                                               \
                fprintf(stderr, "%s:%d: thread %d: CHECK failed: %s\n", __FILE__, \
                        __LINE__, (w)->id, #cond);                               \
        }                                                                        \
    } while (0)

static uint64_t pattern(const worker_t *w, const tspan *t, int which) {
    return ((uint64_t)(w->id + 1) << 56) ^ (t->serial << 8) ^ (t->base >> 13) ^
           (which ? 0xa5a5a5a5a5a5ULL : 0);
}

static uint64_t *first_word(const tspan *t) { return (uint64_t *)t->base; }
static uint64_t *last_word(const tspan *t) {
    return (uint64_t *)(t->base + t->npages * P - 8);
}

static void check_pattern(worker_t *w, const tspan *t) {
    TCHECK(w, *first_word(t) == pattern(w, t, 0));
    TCHECK(w, *last_word(t) == pattern(w, t, 1));
}

static void write_pattern(const worker_t *w, const tspan *t) {
    *first_word(t) = pattern(w, t, 0);
    *last_word(t) = pattern(w, t, 1);
}

static void *worker(void *arg) {
    worker_t *w = arg;
    uint64_t rng = w->seed;
    tspan live[MAXLIVE];
    size_t nlive = 0;
    uint64_t serial = 0;
    for (unsigned long op = 0; op < w->ops; op++) {
        uint64_t r = check_rand(&rng) % 100;
        if (nlive < MAXLIVE && (nlive == 0 || r < 50)) {
            tspan t = {0};
            size_t n = 1 + check_rand(&rng) % 64;
            bool zero = false;
            if (check_rand(&rng) % 6 == 0) {
                void *p = mh_pages_alloc(n);
                TCHECK(w, p != NULL);
                if (!p) continue;
                t.base = (uintptr_t)p;
                t.s = mhi_heap_span(t.base);
                t.pages = true;
                zero = true;
                TCHECK(w, mh_pages_size(p) == n * P);
            } else {
                zero = check_rand(&rng) % 16 == 0;
                t.s = mhi_heap_alloc(n, MHI_SPAN_INUSE, MHI_KIND_LARGE, zero);
                TCHECK(w, t.s != NULL);
                if (!t.s) continue;
                t.base = t.s->base;
                TCHECK(w, t.s->state == MHI_SPAN_INUSE);
            }
            TCHECK(w, t.s != NULL && t.s->npages == n && t.s->base == t.base);
            if (!t.s) continue;
            t.npages = n;
            t.serial = ++serial;
            if (zero || !t.s->needzero) {
                TCHECK(w, *first_word(&t) == 0);
                TCHECK(w, *last_word(&t) == 0);
            }
            write_pattern(w, &t);
            live[nlive++] = t;
            w->nalloc++;
        } else if (r < 90 || nlive == MAXLIVE) {
            size_t i = check_rand(&rng) % nlive;
            tspan t = live[i];
            live[i] = live[--nlive];
            check_pattern(w, &t);
            /* Lock-free lookups of an address this thread owns. */
            uintptr_t a = t.base + check_rand(&rng) % (t.npages * P);
            TCHECK(w, mhi_heap_span(a) == t.s);
            if (t.pages) {
                TCHECK(w, !mhi_mlookup(a, NULL, NULL, NULL));
                mh_pages_free((void *)t.base);
            } else {
                uintptr_t ob = 0;
                size_t osz = 0;
                TCHECK(w, mhi_mlookup(a, &ob, &osz, NULL) && ob == t.base && osz == t.npages * P);
                mhi_heap_free(t.s);
            }
            w->nfree++;
        } else {
            /* Resize in place: shrink always works; growing may not. */
            tspan *t = &live[check_rand(&rng) % nlive];
            check_pattern(w, t);
            size_t n = 1 + check_rand(&rng) % 64;
            bool ok = mhi_heap_resize(t->s, n);
            if (n <= t->npages) TCHECK(w, ok);
            if (ok) {
                t->npages = n;
                write_pattern(w, t);
            }
            TCHECK(w, t->s->npages == t->npages);
            TCHECK(w, mhi_heap_span(t->base + t->npages * P - 1) == t->s);
            w->nresize++;
        }
    }
    while (nlive) {
        tspan t = live[--nlive];
        check_pattern(w, &t);
        if (t.pages) mh_pages_free((void *)t.base);
        else mhi_heap_free(t.s);
        w->nfree++;
    }
    return NULL;
}

static void *scavenger(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg | 1;
    while (!atomic_load(&done)) {
        size_t goal = check_rand(&rng) % 2 ? SIZE_MAX : (1 + check_rand(&rng) % 256) * P;
        size_t got = mhi_heap_scavenge(0, goal);
        atomic_fetch_add(&scav_bytes, got);
        atomic_fetch_add(&scav_passes, 1);
        struct timespec ts = {0, 200 * 1000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void) {
    uint64_t seed = check_seed(0x7468726561647321ULL);
    unsigned long ops = DEFAULT_OPS;
    const char *e = getenv("MHEAP_TEST_OPS");
    if (e) ops = strtoul(e, NULL, 0);
    fprintf(stderr, "ops per thread=%lu (set MHEAP_TEST_OPS to change)\n", ops);

    /* Read the options before the threads start: their lazy first read
     * (mhi_option -> mhi_options_init) is not thread-safe, a data race TSan
     * reports when two threads make their first mh_pages_alloc at once. */
    (void)mh_option_get("scavenge_delay_ms");

    mhi_heap_stats before;
    mhi_heap_stats_get(&before);
    worker_t w[NTHREADS];
    pthread_t scav;
    REQUIRE(pthread_create(&scav, NULL, scavenger, (void *)(uintptr_t)seed) == 0);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].seed = (seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1))) | 1;
        w[i].ops = ops;
        REQUIRE(pthread_create(&w[i].thr, NULL, worker, &w[i]) == 0);
    }
    unsigned long nalloc = 0, nfree = 0, nresize = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(w[i].thr, NULL);
        CHECK_EQ(w[i].nfail, 0);
        CHECK_EQ(w[i].nalloc, w[i].nfree);
        nalloc += w[i].nalloc;
        nfree += w[i].nfree;
        nresize += w[i].nresize;
    }
    atomic_store(&done, true);
    pthread_join(scav, NULL);
    fprintf(stderr, "allocs %lu frees %lu resizes %lu; scavenger: %lu passes, %llu MiB\n",
            nalloc, nfree, nresize, (unsigned long)atomic_load(&scav_passes),
            (unsigned long long)(atomic_load(&scav_bytes) >> 20));

    CHECK_EQ(mh_heap_verify(), 0);
    mhi_heap_stats after;
    mhi_heap_stats_get(&after);
    fprintf(stderr, "heap sys %.1f MiB\n", after.heap_sys / 1048576.0);
    CHECK_EQ(after.heap_inuse, before.heap_inuse);
    CHECK_EQ(after.heap_manual, before.heap_manual);
    CHECK_EQ(after.nspan_inuse, before.nspan_inuse);
    CHECK_EQ(after.nspan_manual, before.nspan_manual);
    CHECK_EQ(after.heap_sys, after.heap_inuse + after.heap_idle);
    CHECK_EQ(after.span_allocs - before.span_allocs, nalloc);
    CHECK(atomic_load(&scav_passes) > 0);
    /* Every span was written and freed: somebody released those pages. */
    size_t last = mh_release_memory();
    CHECK(atomic_load(&scav_bytes) + last > 0);
    mhi_heap_stats_get(&after);
    CHECK_EQ(after.heap_released, after.heap_idle);
    /* (The heap's own time-based scavenging may have released more.) */
    CHECK(after.scavenged - before.scavenged >= atomic_load(&scav_bytes) + last);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_pageheap_threads");
}
