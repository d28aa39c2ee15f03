/* test_park_nobg.c - parking when the background thread cannot run: the
 * library's thread start is refused (pthread_create is wrapped at link
 * time, tests/park_nobg.cmake, and fails for a thread with the 64 KiB
 * stack mhi_os_thread_start asks for).  Nothing would flush a parked
 * cache once it aged, so a thread's exit leaves nothing parked: its cache
 * and any parked before the failure go to central at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "cache.h"
#include "check.h"
#include "mheap.h"
#include "pageheap.h"
#include "sizeclass.h"

int __real_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    size_t ss = 0;
    if (a && pthread_attr_getstacksize(a, &ss) == 0 && ss == (64 << 10)) return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

static void *worker(void *arg) {
    void **keep = arg;
    for (int i = 0; i < 64; i++)
        if (!(keep[i] = mhi_cache_alloc(mhi_size_class(100)))) abort();
    return NULL;
}

int main(void) {
    REQUIRE(mh_option_set("background", 1) == 0);
    REQUIRE(mh_option_set("scavenge_delay_ms", 100) == 0);
    void *keep[2][64];
    for (int k = 0; k < 2; k++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, worker, keep[k]) == 0);
        REQUIRE(pthread_join(t, NULL) == 0);
        mhi_cache_counts_t c;
        mhi_cache_counts(&c);
        CHECK_EQ(c.parked, 0);
        /* its spans went to central: none is owned by a cache */
        CHECK(atomic_load(&mhi_heap_span((uintptr_t)keep[k][0])->owner) == NULL);
        CHECK_EQ(mh_heap_verify(), 0);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 64; i++) mhi_cache_free(keep[k][i]);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_park_nobg");
}
