/* test_keep_decay.c - a thread cache's bound on kept free spans grows for
 * a thread that cycles through more spans than it keeps, and shrinks
 * again, without any call, when the thread cycles through less or stops.
 *
 *   grow     the main thread allocates twice its bound's worth of 64-byte
 *            objects and frees them all, again and again: a cycle that
 *            gave spans back over the bound is followed by one that takes
 *            a span from central, which doubles the bound, up to
 *            MHI_EMPTY_KEEP_MAX, never past it, and never with more kept
 *            than the bound;
 *   limit    at the maximum, cycles of that many bytes pass no span
 *            through the page heap (none given back to central, none
 *            taken from the page heap);
 *   shrink   cycles of 320 KiB (as many bytes of spans taken from the
 *            kept ones and given back) go on every 2 ms: the trim pass
 *            halves the bound after each epoch in which the kept bytes
 *            never fell below MHI_EMPTY_KEEP, so it comes down to at most
 *            twice the cycle (512 KiB), the spans past it given to the
 *            page heap;
 *   idle     then the thread only waits: the bound goes back to
 *            MHI_EMPTY_KEEP, and the growth counter to 0;
 *   held     grown again, then all its kept spans taken and their objects
 *            held while the thread waits: with nothing kept and nothing
 *            taken, the bound still goes back.
 *
 * Each phase fails if it has not happened after 30 seconds.  The
 * scavenger delay is 8 s while the bound grows (the trim pass must not
 * shrink it between slow cycles under a sanitizer), then 200 ms (an epoch
 * is a quarter of it).  The main thread reads its cache under the cache's
 * lock, which the trim pass takes too.  (The background thread does not
 * run where OS pages exceed the heap's, and the bound then never grows:
 * the test is skipped there.) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_impl.h"
#include "central.h"
#include "check.h"
#include "layout.h"
#include "mheap.h"
#include "pageheap.h"
#include "sizeclass.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static mhi_cache *k;
static size_t cls, span_bytes, per;
static void **objs;

static void read_cache(size_t *keep, size_t *kept) {
    mhi_lock(&k->lock);
    *keep = k->empty_keep;
    *kept = k->empty_bytes;
    mhi_unlock(&k->lock);
}

static uint64_t central_freed(void) {
    mhi_lock(&mhi_centrals[cls].lock);
    uint64_t n = mhi_centrals[cls].nspan_free;
    mhi_unlock(&mhi_centrals[cls].lock);
    return n;
}

static uint64_t heap_spans(void) {
    mhi_heap_stats st;
    mhi_heap_stats_get(&st);
    return st.nspan_inuse;
}

/* Only wait, polling, until the bound is back to MHI_EMPTY_KEEP or 30
 * seconds have passed; returns the seconds waited. */
static double wait_for_base(size_t *keep, size_t *kept) {
    double t0 = now_s(), waited = 0;
    while (waited < 30) {
        usleep(10000);
        waited = now_s() - t0;
        read_cache(keep, kept);
        if (*keep == MHI_EMPTY_KEEP) break;
    }
    return waited;
}

/* Allocate and free bytes' worth of whole spans of objects. */
static void cycle(size_t bytes) {
    size_t n = bytes / span_bytes * per;
    for (size_t i = 0; i < n; i++) REQUIRE((objs[i] = mhi_cache_alloc(cls)) != NULL);
    for (size_t i = 0; i < n; i++) mhi_cache_free(objs[i]);
}

int main(void) {
    if ((size_t)sysconf(_SC_PAGESIZE) > MHI_PAGE_SIZE) {
        printf("test_keep_decay: OS pages larger than heap pages (no background thread): "
               "skipped\n");
        return 77;
    }
    REQUIRE(mh_option_set("scavenge_delay_ms", 8000) == 0);
    /* The shrinking is the background thread's, which the default would
     * not start in a process of one thread. */
    REQUIRE(mh_option_set("background", 2) == 0);
    cls = mhi_size_class(64);
    void *first = mhi_cache_alloc(cls);
    REQUIRE(first != NULL);
    k = mhi_tls_cache;
    REQUIRE(!mhi_cache_is_static(k));
    span_bytes = (size_t)mhi_class_npages[cls] * MHI_PAGE_SIZE;
    per = mhi_class_nobjs[cls];
    objs = calloc(2 * MHI_EMPTY_KEEP_MAX / span_bytes * per, sizeof *objs);
    REQUIRE(objs != NULL);

    /* grow */
    size_t keep, kept;
    read_cache(&keep, &kept);
    CHECK_EQ(keep, MHI_EMPTY_KEEP);
    bool doubled = true, bounded = true;
    int cycles = 0;
    while (keep < MHI_EMPTY_KEEP_MAX && cycles < 40) {
        size_t was = keep;
        cycle(2 * keep);
        read_cache(&keep, &kept);
        if (keep != was && keep != 2 * was) doubled = false;
        if (keep > MHI_EMPTY_KEEP_MAX || kept > keep) bounded = false;
        cycles++;
    }
    CHECK(doubled);
    CHECK(bounded);
    CHECK_EQ(keep, MHI_EMPTY_KEEP_MAX);
    CHECK(kept > MHI_EMPTY_KEEP_MAX / 2);
    CHECK_EQ(atomic_load(&mhi_empty_grown), MHI_EMPTY_KEEP_MAX - MHI_EMPTY_KEEP);
    printf("test_keep_decay: bound %zu KiB after %d cycles, %zu KiB of free spans kept\n",
           keep >> 10, cycles, kept >> 10);

    /* limit */
    uint64_t freed0 = central_freed(), spans0 = heap_spans();
    for (int i = 0; i < 3; i++) cycle(MHI_EMPTY_KEEP_MAX);
    CHECK_EQ(central_freed(), freed0);
    CHECK_EQ(heap_spans(), spans0);
    read_cache(&keep, &kept);
    CHECK_EQ(keep, MHI_EMPTY_KEEP_MAX);

    /* shrink: cycling 320 KiB */
    REQUIRE(mh_option_set("scavenge_delay_ms", 200) == 0);
    double t0 = now_s(), waited = 0;
    size_t small = 40 * span_bytes;
    while (waited < 30) {
        cycle(small);
        usleep(2000);
        waited = now_s() - t0;
        read_cache(&keep, &kept);
        if (keep <= 2 * small) break;
    }
    printf("test_keep_decay: cycling %zu KiB: bound %zu KiB, %zu KiB kept, after %.2f s\n",
           small >> 10, keep >> 10, kept >> 10, waited);
    CHECK(keep <= 2 * small);
    CHECK(kept <= keep);

    /* idle */
    waited = wait_for_base(&keep, &kept);
    printf("test_keep_decay: idle: bound %zu KiB, %zu KiB kept, after %.2f s\n", keep >> 10,
           kept >> 10, waited);
    CHECK_EQ(keep, MHI_EMPTY_KEEP);
    CHECK(kept <= MHI_EMPTY_KEEP);
    CHECK_EQ(atomic_load(&mhi_empty_grown), 0);

    /* held: grown again, then every kept span taken and its objects held
     * live while the thread waits: nothing is kept, nothing taken, and
     * the bound still goes back (its growth is free for other caches). */
    REQUIRE(mh_option_set("scavenge_delay_ms", 8000) == 0);
    for (cycles = 0; keep < 4 * MHI_EMPTY_KEEP && cycles < 40; cycles++) {
        cycle(2 * keep);
        read_cache(&keep, &kept);
    }
    REQUIRE(keep >= 4 * MHI_EMPTY_KEEP);
    size_t nheld = 2 * keep / span_bytes * per;
    for (size_t i = 0; i < nheld; i++) REQUIRE((objs[i] = mhi_cache_alloc(cls)) != NULL);
    read_cache(&keep, &kept);
    CHECK_EQ(kept, 0);
    REQUIRE(mh_option_set("scavenge_delay_ms", 200) == 0);
    waited = wait_for_base(&keep, &kept);
    printf("test_keep_decay: held: bound %zu KiB after %.2f s\n", keep >> 10, waited);
    CHECK_EQ(keep, MHI_EMPTY_KEEP);
    CHECK_EQ(atomic_load(&mhi_empty_grown), 0);
    for (size_t i = 0; i < nheld; i++) mhi_cache_free(objs[i]);
    mhi_cache_free(first);
    free(objs);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_keep_decay");
}
