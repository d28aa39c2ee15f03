/* test_span_room.c - what the page heap keeps and refuses in a span struct.
 *
 * 1. Freeing a span whose specials list is not empty aborts with
 *    "mheap: span freed with specials: 0x<base>" (in a forked child, which
 *    must die of SIGABRT with exactly that line on stderr): an INUSE span
 *    from mhi_heap_alloc freed with mhi_heap_free, and a page run freed
 *    with mh_pages_free.  The same frees without specials exit cleanly.
 * 2. sweepgen: a span that goes into use gets the heap's sweepgen; a span
 *    struct that dies (absorbed when its free pages coalesce) keeps the
 *    value it had, and when the span allocator hands the struct out again
 *    as a new free span it still holds that value (not zero) until it goes
 *    into use, when it takes the heap's sweepgen of that moment.  The test
 *    follows one struct through FREE -> DEAD -> FREE -> INUSE. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
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
#include "pageheap.h"

#define P MHI_PAGE_SIZE

static void expect_abort(const char *name, void (*fn)(uintptr_t), uintptr_t arg,
                         uintptr_t base) {
    child_expect_abort(name, fn, arg, "span freed with specials", base);
}

static void expect_exit0(const char *name, void (*fn)(uintptr_t), uintptr_t arg) {
    child_expect_clean(name, fn, arg);
}

static long dummy_special; /* stands for a record; never read */

static void free_with_specials(uintptr_t sp) {
    mhi_span *s = (mhi_span *)sp;
    s->specials = (struct mhi_special *)&dummy_special;
    mhi_heap_free(s);
}

static void free_plain(uintptr_t sp) {
    mhi_heap_free((mhi_span *)sp);
    if (mh_heap_verify() != 0) _exit(4);
}

static void pages_free_with_specials(uintptr_t p) {
    mhi_span *s = mhi_heap_span(p);
    if (!s) _exit(5);
    s->specials = (struct mhi_special *)&dummy_special;
    mh_pages_free((void *)p);
}

static void pages_free_plain(uintptr_t p) {
    mh_pages_free((void *)p);
    if (mh_heap_verify() != 0) _exit(4);
}

static void specials_cases(void) {
    mhi_span *s = mhi_heap_alloc(3, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(s != NULL);
    expect_abort("INUSE span with specials", free_with_specials, (uintptr_t)s, s->base);
    expect_exit0("INUSE span without specials", free_plain, (uintptr_t)s);

    void *p = mh_pages_alloc(2);
    REQUIRE(p != NULL);
    expect_abort("page run with specials", pages_free_with_specials, (uintptr_t)p, (uintptr_t)p);
    expect_exit0("page run without specials", pages_free_plain, (uintptr_t)p);

    /* The parent's spans were never touched. */
    CHECK(s->specials == NULL);
    CHECK_EQ(mh_heap_verify(), 0);
    mhi_heap_free(s);
    mh_pages_free(p);
    CHECK_EQ(mh_heap_verify(), 0);
}

static void set_heap_sweepgen(uint32_t g) {
    mhi_lock(&mhi_heap_.lock);
    mhi_heap_.sweepgen = g;
    mhi_unlock(&mhi_heap_.lock);
}

static uint32_t sweepgen_of(const mhi_span *s) {
    return atomic_load_explicit(&s->sweepgen, memory_order_relaxed);
}

#define G1 40u
#define G2 42u
#define OLD 0x5eed5eedu /* no heap generation: only the test writes it */
#define MAXTRY 64

static void sweepgen_cases(void) {
    /* The heap exists (and has set its sweepgen up) before the test sets
     * one. */
    mhi_span *a = mhi_heap_alloc(1, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(a != NULL);
    set_heap_sweepgen(G1);
    mhi_span *x = mhi_heap_alloc(1, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    mhi_span *y = mhi_heap_alloc(1, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(x && y);
    CHECK_EQ(sweepgen_of(x), G1);
    CHECK_EQ(sweepgen_of(y), G1);
    /* Both come from the front of one free span: y right after x. */
    REQUIRE(y->base == x->base + P);

    set_heap_sweepgen(G2);
    atomic_store_explicit(&x->sweepgen, OLD, memory_order_relaxed);
    mhi_heap_free(x);
    mhi_lock(&mhi_heap_.lock);
    bool x_free = x->state == MHI_SPAN_FREE && mhi_heap_page_span(x->base) == x;
    uint32_t x_sg = sweepgen_of(x);
    mhi_unlock(&mhi_heap_.lock);
    /* (its left neighbour is in use, its right one is y: x stays itself) */
    CHECK(x_free);
    CHECK_EQ(x_sg, OLD);

    /* y's free pages absorb x's: the struct x dies. */
    mhi_heap_free(y);
    mhi_lock(&mhi_heap_.lock);
    uint8_t x_state = x->state;
    x_sg = sweepgen_of(x);
    mhi_span *merged = mhi_heap_page_span(y->base - P);
    mhi_unlock(&mhi_heap_.lock);
    CHECK_EQ(x_state, MHI_SPAN_DEAD);
    CHECK_EQ(x_sg, OLD);
    CHECK(merged != x);

    /* Take single pages until the struct comes back: first as the free
     * tail split off an allocation (the span allocator's new struct), then
     * as the span handed out itself. */
    mhi_span *got[MAXTRY];
    int n = 0;
    bool seen_free = false, seen_inuse = false;
    while (n < MAXTRY && !seen_inuse) {
        mhi_span *s = mhi_heap_alloc(1, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
        REQUIRE(s != NULL);
        got[n++] = s;
        if (s == x) {
            CHECK(seen_free); /* only a free span goes into use */
            CHECK_EQ(sweepgen_of(s), G2);
            CHECK_EQ(s->state, MHI_SPAN_INUSE);
            seen_inuse = true;
            break;
        }
        mhi_lock(&mhi_heap_.lock);
        mhi_span *t = mhi_heap_page_span(mhi_span_end(s));
        if (t == x) {
            CHECK_EQ(t->state, MHI_SPAN_FREE);
            CHECK(t->base == mhi_span_end(s));
            CHECK_EQ(sweepgen_of(t), OLD);
            seen_free = true;
        }
        mhi_unlock(&mhi_heap_.lock);
    }
    CHECK(seen_free);
    CHECK(seen_inuse);
    if (!seen_free || !seen_inuse)
        fprintf(stderr, "  the dead struct did not come back in %d allocations\n", MAXTRY);

    for (int i = 0; i < n; i++) mhi_heap_free(got[i]);
    mhi_heap_free(a);
    set_heap_sweepgen(0);
    CHECK_EQ(mh_heap_verify(), 0);
}

int main(void) {
    /* No background thread: the heap changes only through the test. */
    REQUIRE(mh_option_set("background", 0) == 0);
    sweepgen_cases();
    specials_cases();
    return check_done("test_span_room");
}
