/* test_notice_idle.c - frees into the full spans of a thread that stopped
 * allocating go back without anyone calling a trim.
 *
 * A thread allocates 4096 blocks of 1 KiB (its spans of the class fill,
 * each filed on its full list with a notice armed), hands them over and
 * then only waits.  The main thread frees every block: each span's first
 * remote free puts a notice on the waiting thread's stack, and the first
 * notice on its empty stack asks the background thread for a trim pass,
 * which drains the stack as the owner would (and passes again each period
 * while notices keep coming).  The test polls (nothing but reading, under
 * the owner's lock) until the owner's full list holds no more spans than
 * the objects the main thread's own stash still keeps (each can keep one
 * span from being free), and fails if that has not happened after 30
 * seconds (the scavenger delay here is 200 ms, so a pass comes within
 * 50 ms of the request).  Without the request the spans stay full until
 * the owner's next slow path, which never comes.
 *
 * Two rounds: the owner fills its spans again and waits again, so the
 * second round needs the flag that stops repeated requests to have been
 * cleared once the stacks emptied; each round starts once the passes its
 * allocations asked for are over.  Then everything is verified.  (The
 * background thread does not run where OS pages exceed the heap's: the
 * test is skipped there.) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache.h"
#include "layout.h"
#include "check.h"
#include "mheap.h"
#include "sizeclass.h"

#define NOBJS 4096

static void *objs[NOBJS];
static size_t cls;
static mhi_cache *owner;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int state; /* odd: the owner's blocks are allocated; even: it may go on */

static void wait_state(int want) {
    pthread_mutex_lock(&mu);
    while (state != want) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}
static void set_state(int to) {
    pthread_mutex_lock(&mu);
    state = to;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

#define ROUNDS 2

static void *owner_thread(void *arg) {
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < NOBJS; i++)
            if (!(objs[i] = mhi_cache_alloc(cls))) abort();
        owner = mhi_tls_cache;
        set_state(2 * r + 1);
        wait_state(2 * r + 2);
    }
    return NULL;
}

static size_t owner_full(void) {
    mhi_lock(&owner->lock);
    size_t n = owner->full[cls].count;
    mhi_unlock(&owner->lock);
    return n;
}

int main(void) {
    if (getpagesize() > (int)MHI_PAGE_SIZE) {
        printf("test_notice_idle: skipped (OS page size %d)\n", getpagesize());
        return 0;
    }
    REQUIRE(mh_option_set("background", 1) == 0);
    REQUIRE(mh_option_set("scavenge_delay_ms", 200) == 0);
    cls = mhi_size_class(1024);
    /* main's own cache, allocating nothing of the class */
    void *p = mhi_cache_alloc(mhi_size_class(16));
    REQUIRE(p != NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, owner_thread, NULL) == 0);
    for (int r = 0; r < ROUNDS; r++) {
        wait_state(2 * r + 1);
        /* Until the passes the owner's allocations asked for are over (the
         * count still for 300 ms, six periods), so that only the frees
         * below can bring the next one. */
        uint64_t n0 = mhi_cache_trim_passes(), n1;
        for (int i = 0; i < 100; i++, n0 = n1) {
            usleep(300000);
            if ((n1 = mhi_cache_trim_passes()) == n0) break;
        }
        size_t full0 = owner_full();
        /* every span of the class but the current one */
        CHECK(full0 + 1 >= NOBJS / mhi_class_nobjs[cls]);
        for (int i = 0; i < NOBJS; i++) mhi_cache_free(objs[i]);
        size_t held = mhi_stash_count(mhi_tls_cache, cls), full = full0;
        CHECK(held < full0 / 4);
        for (int ms = 0; ms < 30000 && (full = owner_full()) > held; ms += 10) usleep(10000);
        CHECK(full <= held);
        if (full > held)
            fprintf(stderr, "  round %d: %zu of %zu spans still full (%zu objects stashed here)\n",
                    r + 1, full, full0, held);
        CHECK_EQ(mh_heap_verify(), 0);
        set_state(2 * r + 2);
    }
    REQUIRE(pthread_join(t, NULL) == 0);
    mhi_cache_free(p);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_notice_idle");
}
