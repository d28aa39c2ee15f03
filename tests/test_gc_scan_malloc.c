/* test_gc_scan_malloc.c - the option gc_scan_malloc: the live blocks of
 * mheap's malloc heap are roots of the collector.
 *
 * Run without arguments, with MHEAP_OPTIONS=gc_scan_malloc=1 (ctest sets
 * it: tests/gc_scan_malloc.cmake):
 *   kept     a short GC list whose only reference lies in a small malloc'd
 *            block, and another in a large block, survive collections
 *            with their contents;
 *   freed    once the blocks are freed, the lists are freed too (the freed
 *            small block still holds the reference, past the two words
 *            free overwrites: its free mark tells the scan to skip it);
 *   roots    a cycle's root bytes grow by at least the large block's size
 *            when the option is turned on;
 *   threads  while a registered thread keeps GC objects referenced only
 *            from its malloc'd blocks (and replaces them), and a thread
 *            unknown to the collector mallocs, frees and trims, collections
 *            run to the end (no deadlock: an alarm fails the test), the
 *            registered thread's objects all keep their values, and the
 *            heap verifies.
 * Run as "test_gc_scan_malloc off" with gc_scan_malloc=0: the same list,
 * referenced only from a malloc'd block, is not kept.
 *
 * "Freed" and "not kept" are checked only in optimised builds without a
 * sanitizer, as in test_gc.c: unoptimised code leaves stale copies of
 * addresses in stack slots, which a conservative collector must honour. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gc.h" /* src/gc.h (src/ comes first in the tests' include path): mhi_gc_ */
#include "mheap.h"
#include "mheap_gc.h"

/* Addresses kept as numbers that point nowhere near the heap. */
#define DISGUISE (~(uintptr_t)0)

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define CYCLES 15
#else
#define CYCLES 300
#endif

#define LARGE_BLOCK ((size_t)256 << 10)

typedef struct node {
    struct node *next;
    long value;
} node;

static void collect(void) { mh_gc_collect(1); } /* (1: sweeping finishes too) */

static int alive(const void *p) { return mh_gc_base(p, NULL) == p; }

/* Erase the stack below the caller, so no stale copy of an address that
 * only a returned frame saw survives. */
static __attribute__((noinline)) void scrub_stack(void) {
    volatile char buf[262144];
    memset((char *)buf, 0, sizeof buf);
}

/* A list of three GC nodes, values v, v+1, v+2, stored at *slot only;
 * returns its head disguised. */
static __attribute__((noinline)) uintptr_t plant(void **slot, long v) {
    node *h = NULL;
    for (long i = 2; i >= 0; i--) {
        node *n = mh_gc_malloc(sizeof *n);
        REQUIRE(n != NULL);
        n->next = h;
        n->value = v + i;
        h = n;
    }
    *slot = h;
    return (uintptr_t)h ^ DISGUISE;
}

/* Is the list planted with value v at disguised address d alive and
 * intact? */
static __attribute__((noinline)) int intact(uintptr_t d, long v) {
    node *n = (node *)(d ^ DISGUISE);
    for (long i = 0; i < 3; i++, n = n->next)
        if (!n || !alive(n) || n->value != v + i) return 0;
    return n == NULL;
}

static __attribute__((noinline)) int head_alive(uintptr_t d) {
    return alive((void *)(d ^ DISGUISE));
}

/* The blocks (malloc pointers: they keep no GC object by themselves). */
static void **small_block, **large_block;
static uintptr_t small_list, large_list;

static __attribute__((noinline)) void make_blocks(void) {
    small_block = mh_malloc(8 * sizeof(void *));
    large_block = mh_malloc(LARGE_BLOCK);
    REQUIRE(small_block != NULL && large_block != NULL);
    memset(small_block, 0, 8 * sizeof(void *));
    memset(large_block, 0, LARGE_BLOCK);
    /* (word 2 of the small block: free writes only words 0 and 1) */
    small_list = plant(&small_block[2], 100);
    large_list = plant(&large_block[LARGE_BLOCK / sizeof(void *) / 2 + 3], 200);
}

static __attribute__((noinline)) void test_kept(void) {
    make_blocks();
    scrub_stack();
    collect();
    collect();
    CHECK(intact(small_list, 100));
    CHECK(intact(large_list, 200));
    CHECK_EQ(mh_heap_verify(), 0);
}

static __attribute__((noinline)) void free_blocks(void) {
    mh_free(small_block);
    mh_free(large_block);
    small_block = large_block = NULL;
}

static __attribute__((noinline)) void test_freed(void) {
    free_blocks();
    scrub_stack();
    collect();
    int small_kept = head_alive(small_list), large_kept = head_alive(large_list);
#if OPTIMIZED
    CHECK(!small_kept);
    CHECK(!large_kept);
#else
    fprintf(stderr, "freed: small %d, large %d kept (unoptimised build: not checked)\n",
            small_kept, large_kept);
#endif
    CHECK_EQ(mh_heap_verify(), 0);
}

static __attribute__((noinline)) void test_roots(void) {
    void *big = mh_malloc(4 * LARGE_BLOCK);
    REQUIRE(big != NULL);
    memset(big, 0, 4 * LARGE_BLOCK);
    REQUIRE(mh_option_set("gc_scan_malloc", 0) == 0);
    collect();
    uint64_t off = mhi_gc_.roots_bytes;
    REQUIRE(mh_option_set("gc_scan_malloc", 1) == 0);
    collect();
    uint64_t on = mhi_gc_.roots_bytes;
    fprintf(stderr, "roots: %llu KiB without malloc's heap, %llu KiB with it\n",
            (unsigned long long)off >> 10, (unsigned long long)on >> 10);
    CHECK(on >= off + 4 * LARGE_BLOCK);
    mh_free(big);
}

/* ---- threads ---- */

static _Atomic int stop;
static _Atomic long registered_rounds, unknown_rounds, registered_bad;

#define RING 64

/* Registered: a ring of malloc'd blocks, each the only holder of a GC
 * node whose value names the block; each round checks one node and
 * replaces its block and node. */
static void *registered_thread(void *arg) {
    (void)arg;
    mh_gc_register_thread();
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    void ***ring = mh_malloc(RING * sizeof *ring);
    if (!ring) abort();
    long next = 0;
    for (int i = 0; i < RING; i++) {
        ring[i] = NULL;
    }
    while (!atomic_load(&stop)) {
        int i = (int)(check_rand(&rng) % RING);
        if (ring[i]) {
            node *n = ring[i][1];
            if (!n || !alive(n) || n->value != (long)(uintptr_t)ring[i][0])
                atomic_fetch_add(&registered_bad, 1);
            mh_free(ring[i]);
        }
        size_t size = check_rand(&rng) % 8 == 0 ? 40000 + check_rand(&rng) % 100000
                                                : 16 + check_rand(&rng) % 2000;
        void **b = mh_malloc(size);
        node *n = mh_gc_malloc(sizeof *n);
        if (!b || !n) abort();
        n->value = ++next;
        b[0] = (void *)(uintptr_t)next;
        b[1] = n;
        ring[i] = b;
        n = NULL;
        atomic_fetch_add(&registered_rounds, 1);
    }
    for (int i = 0; i < RING; i++) mh_free(ring[i]);
    mh_free(ring);
    return NULL;
}

/* Unknown to the collector: malloc, free and trim, never a GC call. */
static void *unknown_thread(void *arg) {
    (void)arg;
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    void *held[32] = {0};
    long round = 0;
    while (!atomic_load(&stop)) {
        int i = (int)(check_rand(&rng) % 32);
        mh_free(held[i]);
        size_t size = check_rand(&rng) % 16 == 0 ? ((size_t)1 << 20) + check_rand(&rng) % 100000
                                                 : 16 + check_rand(&rng) % 30000;
        held[i] = mh_malloc(size);
        if (!held[i]) abort();
        memset(held[i], (int)i, size < 256 ? size : 256);
        if (++round % 512 == 0) mh_trim();
        atomic_fetch_add(&unknown_rounds, 1);
    }
    for (int i = 0; i < 32; i++) mh_free(held[i]);
    return NULL;
}

static __attribute__((noinline)) void test_threads(void) {
    make_blocks();
    scrub_stack();
    pthread_t r, u;
    REQUIRE(pthread_create(&r, NULL, registered_thread, NULL) == 0);
    REQUIRE(pthread_create(&u, NULL, unknown_thread, NULL) == 0);
    while (atomic_load(&registered_rounds) < 100 || atomic_load(&unknown_rounds) < 100)
        usleep(1000);
    uint64_t c0 = mh_gc_cycles();
    for (int k = 0; k < CYCLES; k++) {
        for (int j = 0; j < 200; j++) (void)mh_gc_malloc(64); /* garbage */
        mh_gc_collect(k % 4 == 0);
        if (k % 10 == 0) usleep(2000);
    }
    atomic_store(&stop, 1);
    REQUIRE(pthread_join(r, NULL) == 0);
    REQUIRE(pthread_join(u, NULL) == 0);
    fprintf(stderr, "threads: %llu cycles, %ld registered and %ld unknown rounds\n",
            (unsigned long long)(mh_gc_cycles() - c0), atomic_load(&registered_rounds),
            atomic_load(&unknown_rounds));
    CHECK(mh_gc_cycles() - c0 >= CYCLES);
    CHECK_EQ(atomic_load(&registered_bad), 0);
    CHECK(intact(small_list, 100));
    CHECK(intact(large_list, 200));
    free_blocks();
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- the option off ---- */

static __attribute__((noinline)) void test_off(void) {
    make_blocks();
    scrub_stack();
    collect();
    int small_kept = head_alive(small_list), large_kept = head_alive(large_list);
#if OPTIMIZED
    CHECK(!small_kept);
    CHECK(!large_kept);
#else
    fprintf(stderr, "off: small %d, large %d kept (unoptimised build: not checked)\n", small_kept,
            large_kept);
#endif
    free_blocks();
    CHECK_EQ(mh_heap_verify(), 0);
}

int main(int argc, char **argv) {
    alarm(300); /* a deadlock fails the test instead of hanging it */
    bool off = argc > 1 && strcmp(argv[1], "off") == 0;
    /* The option as MHEAP_OPTIONS set it. */
    REQUIRE(mh_option_get("gc_scan_malloc") == (off ? 0 : 1));
    mh_gc_register_thread();
    if (off) {
        test_off();
        scrub_stack();
        return check_done("test_gc_scan_malloc off");
    }
    test_kept();
    scrub_stack();
    test_freed();
    scrub_stack();
    test_roots();
    scrub_stack();
    test_threads();
    return check_done("test_gc_scan_malloc");
}
