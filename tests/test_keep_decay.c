/* test_keep_decay.c - a thread cache's grown bound on kept free spans goes
 * back once the thread stops cycling through them, without any call.
 *
 * The main thread allocates twice its bound's worth of 64-byte objects
 * and frees them all, again and again: each cycle that gives spans back
 * over the bound and then takes one from central doubles the bound (see
 * test_cache's keep_grows), up to MHI_EMPTY_KEEP_MAX.  Then it stops
 * allocating and only polls its own cache (under the cache's lock, which
 * the trim pass takes too): within two trim epochs of the last use (the
 * scavenger delay is 8 s while the bound grows, so that slow cycles
 * under a sanitizer do not see it go back, then 200 ms, an epoch a
 * quarter of it) the
 * background thread's pass sets the bound back to MHI_EMPTY_KEEP and
 * gives the free spans past it to the page heap.  The test fails if that
 * has not happened after 30 seconds.  Without the pass's look at grown
 * bounds the bound stays at the maximum, and 4 MiB of free spans stay
 * with the thread, for good.  (The background thread does not run where
 * OS pages exceed the heap's: the test is skipped there.) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_impl.h"
#include "check.h"
#include "layout.h"
#include "mheap.h"
#include "sizeclass.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    if ((size_t)sysconf(_SC_PAGESIZE) > MHI_PAGE_SIZE) {
        printf("test_keep_decay: OS pages larger than heap pages (no background thread): "
               "skipped\n");
        return 77;
    }
    /* A long delay while the bound grows (the cycles may be slow under a
     * sanitizer), a short one for the wait. */
    REQUIRE(mh_option_set("scavenge_delay_ms", 8000) == 0);
    size_t c = mhi_size_class(64);
    void *first = mhi_cache_alloc(c);
    REQUIRE(first != NULL);
    mhi_cache *k = mhi_tls_cache;
    REQUIRE(!mhi_cache_is_static(k));
    size_t span_bytes = (size_t)mhi_class_npages[c] * MHI_PAGE_SIZE, per = mhi_class_nobjs[c];
    size_t nmax = 2 * MHI_EMPTY_KEEP_MAX / span_bytes * per;
    void **objs = calloc(nmax, sizeof *objs);
    REQUIRE(objs != NULL);
    int cycles = 0;
    for (;;) {
        mhi_lock(&k->lock);
        size_t keep = k->empty_keep;
        mhi_unlock(&k->lock);
        if (keep >= MHI_EMPTY_KEEP_MAX || cycles >= 40) break;
        size_t n = 2 * keep / span_bytes * per;
        for (size_t i = 0; i < n; i++) REQUIRE((objs[i] = mhi_cache_alloc(c)) != NULL);
        for (size_t i = 0; i < n; i++) mhi_cache_free(objs[i]);
        cycles++;
    }
    mhi_lock(&k->lock);
    size_t grown = k->empty_keep, kept = k->empty_bytes;
    mhi_unlock(&k->lock);
    CHECK_EQ(grown, MHI_EMPTY_KEEP_MAX);
    CHECK(kept > MHI_EMPTY_KEEP);
    printf("test_keep_decay: bound %zu KiB after %d cycles, %zu KiB of free spans kept\n",
           grown >> 10, cycles, kept >> 10);

    /* Now only wait. */
    REQUIRE(mh_option_set("scavenge_delay_ms", 200) == 0);
    double t0 = now_s(), waited = 0;
    size_t keep = grown, empty = kept;
    while (waited < 30) {
        usleep(10000);
        waited = now_s() - t0;
        mhi_lock(&k->lock);
        keep = k->empty_keep;
        empty = k->empty_bytes;
        mhi_unlock(&k->lock);
        if (keep == MHI_EMPTY_KEEP) break;
    }
    printf("test_keep_decay: bound %zu KiB, %zu KiB kept, after %.2f s\n", keep >> 10,
           empty >> 10, waited);
    CHECK_EQ(keep, MHI_EMPTY_KEEP);
    CHECK(empty <= MHI_EMPTY_KEEP);
    CHECK_EQ(atomic_load(&mhi_empty_grown), 0);
    mhi_cache_free(first);
    free(objs);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_keep_decay");
}
