/* test_misuse_pageheap.c - misuse of the page heap aborts with an exact
 * message.
 *
 * Each misuse runs in a forked child whose stderr goes to a pipe; the
 * parent checks that the child died of SIGABRT and that what it wrote is
 * exactly "mheap: <what>: 0x<hex>\n" (lower-case hex, no padding):
 *   - mh_pages_free twice on a page run (also after it was coalesced with
 *     a free neighbour)                                -> double free
 *   - mh_pages_free of an interior pointer (page-aligned or not), a stack
 *     address, a static variable, (void *)1, NULL, a foreign mmap, an
 *     in-use (non-manual) span, a reserved but uncommitted heap page
 *                                                      -> invalid pointer
 *   - mhi_heap_free of a span that is already free     -> double free
 *   - mhi_heap_bad_free of a free page / anything else -> double free /
 *                                                         invalid pointer
 *   - with abort_on_oom, a failing mh_pages_alloc      -> out of memory
 * The parent's heap is unaffected: its spans are still there and
 * mh_heap_verify() == 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "mheap.h"
#include "pageheap.h"

#define P MHI_PAGE_SIZE

typedef void (*misuse_fn)(uintptr_t arg);

static void expect_abort(const char *name, misuse_fn fn, uintptr_t arg, const char *what,
                         uintptr_t addr) {
    child_expect_abort(name, fn, arg, what, addr);
}

/* ---- the misuses (run in the child) ---- */

static void pages_free_twice(uintptr_t p) {
    mh_pages_free((void *)p);
    mh_pages_free((void *)p);
}

static void pages_free(uintptr_t p) { mh_pages_free((void *)p); }

/* arg: two adjacent runs q, r (q below r): free r, then q twice. */
static uintptr_t coalesce_q, coalesce_r;
static void pages_free_coalesced_twice(uintptr_t unused) {
    (void)unused;
    mh_pages_free((void *)coalesce_r);
    mh_pages_free((void *)coalesce_q); /* coalesces with r */
    mh_pages_free((void *)coalesce_q);
}

static void heap_free_twice(uintptr_t s) {
    mhi_heap_free((mhi_span *)s);
    mhi_heap_free((mhi_span *)s);
}

static void bad_free(uintptr_t a) { mhi_heap_bad_free(a); }

static void oom_abort(uintptr_t npages) {
    if (mh_option_set("abort_on_oom", 1) != 0) _exit(2);
    mh_pages_alloc((size_t)npages);
    _exit(3); /* returned instead of aborting */
}

static int static_var;

int main(void) {
    char *p = mh_pages_alloc(4);
    REQUIRE(p != NULL);
    memset(p, 0x42, 4 * P);
    uintptr_t pa = (uintptr_t)p;

    /* Double free. */
    expect_abort("double free", pages_free_twice, pa, "double free", pa);

    /* A run freed after coalescing with its free neighbour. */
    char *q = mh_pages_alloc(2), *r = mh_pages_alloc(2);
    REQUIRE(q && r);
    if (r < q) {
        char *x = q;
        q = r;
        r = x;
    }
    if ((uintptr_t)r == (uintptr_t)q + 2 * P) {
        coalesce_q = (uintptr_t)q;
        coalesce_r = (uintptr_t)r;
        expect_abort("double free after coalescing", pages_free_coalesced_twice, 0, "double free",
                     (uintptr_t)q);
    } else {
        fprintf(stderr, "note: runs not adjacent, coalescing case skipped\n");
    }

    /* Invalid pointers. */
    int stack_var = 0;
    expect_abort("interior page", pages_free, pa + P, "invalid pointer", pa + P);
    expect_abort("interior last page", pages_free, pa + 3 * P, "invalid pointer", pa + 3 * P);
    expect_abort("unaligned interior", pages_free, pa + 16, "invalid pointer", pa + 16);
    expect_abort("stack", pages_free, (uintptr_t)&stack_var, "invalid pointer",
                 (uintptr_t)&stack_var);
    expect_abort("static", pages_free, (uintptr_t)&static_var, "invalid pointer",
                 (uintptr_t)&static_var);
    expect_abort("one", pages_free, 1, "invalid pointer", 1);
    expect_abort("NULL", pages_free, 0, "invalid pointer", 0);
    char *m = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    uintptr_t ma = ((uintptr_t)m + P - 1) & ~(P - 1); /* page-aligned, like a run */
    expect_abort("foreign mmap", pages_free, ma, "invalid pointer", ma);
    munmap(m, 4 * P);
    mhi_span *in = mhi_heap_alloc(3, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(in != NULL);
    expect_abort("in-use span", pages_free, in->base, "invalid pointer", in->base);
    /* A page of a heap arena that is reserved but not yet committed. */
    mhi_arena *last = mhi_arena_last;
    REQUIRE(last != NULL);
    if (last->ncommitted < MHI_ARENA_PAGES) {
        uintptr_t unc = last->base + (uintptr_t)(MHI_ARENA_PAGES - 1) * P;
        CHECK(mhi_arena_of(unc) == last);
        expect_abort("uncommitted", pages_free, unc, "invalid pointer", unc);
    }

    /* mhi_heap_free of a free span.  Its lower neighbour must be in use, or
     * freeing would merge it down and move its base. */
    mhi_span *g = mhi_heap_alloc(1, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    mhi_span *x = mhi_heap_alloc(2, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(g && x);
    REQUIRE(mhi_heap_span(x->base - 1) != NULL);
    expect_abort("heap double free", heap_free_twice, (uintptr_t)x, "double free", x->base);

    /* mhi_heap_bad_free (the malloc layer's verdict on a pointer it could
     * not validate): a free page is a double free, anything else invalid. */
    mhi_span *z = mhi_heap_alloc(2, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(z != NULL);
    uintptr_t za = z->base;
    mhi_heap_free(z);
    expect_abort("bad_free of a free page", bad_free, za + P + 8, "double free", za + P + 8);
    expect_abort("bad_free of a run", bad_free, pa + 16, "invalid pointer", pa + 16);
    expect_abort("bad_free of the stack", bad_free, (uintptr_t)&stack_var, "invalid pointer",
                 (uintptr_t)&stack_var);
    expect_abort("bad_free of NULL", bad_free, 0, "invalid pointer", 0);

    {
        char want[128], got[256];
        snprintf(want, sizeof want, "mheap: out of memory: %zu pages\n", SIZE_MAX / 2);
        int st = child_run(oom_abort, SIZE_MAX / 2, got, sizeof got);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
        CHECK(strcmp(got, want) == 0);
        if (strcmp(got, want) != 0) fprintf(stderr, "  oom: got \"%s\"\n", got);
    }

    /* The parent is untouched by what the children did. */
    CHECK_EQ(mh_pages_size(p), 4 * P);
    CHECK_EQ(p[0], 0x42);
    CHECK_EQ(p[4 * P - 1], 0x42);
    CHECK(mhi_heap_span(x->base) == x);
    CHECK_EQ(x->state, MHI_SPAN_INUSE);
    CHECK_EQ(mh_option_get("abort_on_oom"), 0);
    CHECK_EQ(mh_heap_verify(), 0);
    mh_pages_free(p);
    mh_pages_free(q);
    mh_pages_free(r);
    mhi_heap_free(in);
    mhi_heap_free(g);
    mhi_heap_free(x);
    mhi_heap_stats st;
    mhi_heap_stats_get(&st);
    CHECK_EQ(st.heap_inuse, 0);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_misuse_pageheap");
}
