/* test_arena.c - the arena map (arena.h): mhi_arena_of finds the arena of
 * every page of a span that crosses arena boundaries, with matching page
 * indexes and map entries, and finds nothing for addresses outside the
 * heap (stack, statics, code, a foreign mmap, out-of-range values); the
 * page heap's lookups agree. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "arena.h"
#include "check.h"
#include "pageheap_util.h"

static int static_var = 42;

static void test_arena(void) {
    /* A span larger than an arena crosses at least one arena boundary. */
    size_t n = MHI_ARENA_PAGES + MHI_ARENA_PAGES / 2;
    mhi_span *s = alloc_inuse(n);
    CHECK(mhi_arena_of(s->base) != mhi_arena_of(mhi_span_end(s) - 1));
    bool ok = true;
    for (uintptr_t a = s->base; a < mhi_span_end(s); a += P) {
        mhi_arena *ar = mhi_arena_of(a);
        mhi_arena *ar2 = mhi_arena_of(a + P - 1); /* same page, last byte */
        if (!ar || ar != ar2 || ar->base != (a & ~(MHI_ARENA_SIZE - 1)) ||
            mhi_arena_page(a) >= ar->ncommitted || mhi_arena_span(ar, a) != s ||
            mhi_arena_page(a) != (a - ar->base) / P)
            ok = false;
    }
    CHECK(ok);
    mhi_heap_free(s);
    VERIFY0();

    int stack_var = 1;
    CHECK(mhi_arena_of((uintptr_t)&stack_var) == NULL);
    CHECK(mhi_arena_of((uintptr_t)&static_var) == NULL);
    CHECK(mhi_arena_of((uintptr_t)&mhi_heap_) == NULL);
    CHECK(mhi_arena_of((uintptr_t)test_arena) == NULL);
    CHECK(mhi_arena_of(0) == NULL);
    CHECK(mhi_arena_of(1) == NULL);
    CHECK(mhi_arena_of((uintptr_t)1 << 47) == NULL);
    CHECK(mhi_arena_of(((uintptr_t)1 << 47) + (uintptr_t)s->base) == NULL);
    CHECK(mhi_arena_of(UINTPTR_MAX) == NULL);
    size_t len = 4 << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    bool none = true;
    for (size_t off = 0; off < len; off += 4096)
        if (mhi_arena_of((uintptr_t)m + off)) none = false;
    CHECK(none);
    munmap(m, len);
    /* The lookups agree. */
    CHECK(mhi_heap_span((uintptr_t)&stack_var) == NULL);
    CHECK(mhi_heap_page_span((uintptr_t)&static_var) == NULL);
    CHECK(!mhi_mlookup(1, NULL, NULL, NULL));
}

int main(void) {
    test_arena();
    VERIFY0();
    return check_done("test_arena");
}
