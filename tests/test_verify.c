/* test_verify.c - the heap verifiers find the broken invariants they name.
 *
 * A real heap state is built first: objects of one size class malloced
 * and every other one freed, so the calling thread's cache owns spans on
 * its avail and full lists, a current span and a stash; a large object
 * holds a span of its own.  mh_heap_verify() must then return 0 and print
 * nothing.  Each case breaks one field by hand, checks that the verifier
 * returns > 0, that every line it printed starts with "mheap: verify: "
 * (one line per violation counted) and that one of them names the fault,
 * then restores the field and checks that the heap verifies clean again.
 *
 * Owned spans (mhi_cache_verify): nfree off by one, owner NULL without the
 * ABANDONED tag, the ABANDONED tag on an owned span, `where` not matching
 * the list, a listed free object without its free mark; the calling
 * thread's stash: a count off by one and a stashed object without its
 * mark.  Unowned spans on central's partial list (mhi_central_verify),
 * after mhi_cache_flush gave them up: nfree off by one, the ABANDONED tag
 * missing, an owner set while the tag is there, `where` wrong.  The page
 * heap (mhi_heap_verify): heap_idle off by one page, specials on a free span (was: in
 * use. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "central.h"
#include "check.h"
#include "malloc.h"
#include "mheap.h"
#include "pageheap.h"

#define OBJ_SIZE 1000 /* class of 1024-byte objects: 8 per one-page span */
#define NOBJ 400

static char out[32768];

/* mh_heap_verify() with fd 2 sent to a temporary file; what it printed
 * is left in out[]. */
static size_t verify_captured(void) {
    fflush(stderr);
    FILE *tmp = tmpfile();
    REQUIRE(tmp != NULL);
    int saved = dup(2);
    REQUIRE(saved >= 0);
    REQUIRE(dup2(fileno(tmp), 2) == 2);
    size_t n = mh_heap_verify();
    REQUIRE(dup2(saved, 2) == 2);
    close(saved);
    rewind(tmp);
    size_t len = fread(out, 1, sizeof out - 1, tmp);
    out[len] = '\0';
    fclose(tmp);
    return n;
}

static void expect_clean(const char *what) {
    size_t n = verify_captured();
    CHECK_EQ(n, 0);
    CHECK(out[0] == '\0');
    if (n != 0 || out[0]) fprintf(stderr, "  %s: %zu violations:\n%s", what, n, out);
}

/* The verifier must count at least one violation, print each counted one
 * (up to its limit of 20 per layer) as a "mheap: verify: " line, and one
 * of the lines must contain want. */
static void expect_report(const char *what, const char *want) {
    size_t n = verify_captured();
    size_t lines = 0;
    bool prefixed = true;
    for (char *l = out; *l;) {
        char *e = strchr(l, '\n');
        if (strncmp(l, "mheap: verify: ", 15) != 0) prefixed = false;
        lines++;
        if (!e) {
            prefixed = false; /* a line without its newline */
            break;
        }
        l = e + 1;
    }
    CHECK(n > 0);
    CHECK(prefixed);
    if (n <= 20) CHECK_EQ(lines, n);
    bool named = strstr(out, want) != NULL;
    CHECK(named);
    if (n == 0 || !prefixed || !named || (n <= 20 && lines != n))
        fprintf(stderr, "  %s: %zu violations, %zu lines, want \"%s\" in:\n%s", what, n, lines,
                want, out);
}

/* The first span of l that has free objects on its free list and is not
 * entirely free. */
static mhi_span *partial_span(mhi_span_list *l) {
    for (mhi_span *s = l->first; s; s = s->next)
        if (s->freelist && s->nfree > 0 && s->nfree < s->nelems) return s;
    return NULL;
}

static void owned_cases(mhi_cache *cache, size_t c) {
    char want[160];

    mhi_span *s = partial_span(&cache->avail[c]);
    REQUIRE(s != NULL);
    CHECK_EQ(s->where, MHI_WHERE_AVAIL);
    CHECK(atomic_load(&s->owner) == (void *)cache);
    CHECK(cache->full[c].count > 0); /* the full list is walked too */
    uintptr_t base = s->base;

    /* nfree one more than the objects listed. */
    mhi_lock(&cache->lock);
    uint32_t nfree = s->nfree;
    s->nfree = nfree + 1;
    mhi_unlock(&cache->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": nfree %u, but %u listed", base,
             nfree + 1, nfree);
    expect_report("owned nfree + 1", want);
    mhi_lock(&cache->lock);
    s->nfree = nfree;
    mhi_unlock(&cache->lock);
    expect_clean("owned nfree restored");

    /* owner NULL, but no ABANDONED tag in xfree. */
    mhi_lock(&cache->lock);
    atomic_store(&s->owner, NULL);
    mhi_unlock(&cache->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": owner 0x0 but ABANDONED tag 0", base);
    expect_report("owned span, owner NULL", want);
    mhi_lock(&cache->lock);
    atomic_store(&s->owner, (void *)cache);
    mhi_unlock(&cache->lock);
    expect_clean("owner restored");

    /* The reverse: the ABANDONED tag on a span that has its owner. */
    mhi_lock(&cache->lock);
    uintptr_t x = atomic_load(&s->xfree);
    CHECK((x & MHI_XF_ABANDONED) == 0);
    atomic_store(&s->xfree, x | MHI_XF_ABANDONED);
    mhi_unlock(&cache->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": owner %p but ABANDONED tag 1", base,
             (void *)cache);
    expect_report("owned span, ABANDONED tag", want);
    mhi_lock(&cache->lock);
    atomic_store(&s->xfree, x);
    mhi_unlock(&cache->lock);
    expect_clean("xfree restored");

    /* where says full while the span sits on avail. */
    mhi_lock(&cache->lock);
    uint8_t where = s->where;
    s->where = MHI_WHERE_FULL;
    mhi_unlock(&cache->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": where %d, found at %d", base,
             MHI_WHERE_FULL, MHI_WHERE_AVAIL);
    expect_report("owned span, where", want);
    mhi_lock(&cache->lock);
    s->where = where;
    mhi_unlock(&cache->lock);
    expect_clean("where restored");

    /* An object on the free list without its free mark. */
    mhi_lock(&cache->lock);
    void *p = s->freelist;
    CHECK(mhi_free_marked(p));
    uintptr_t word1 = ((uintptr_t *)p)[1];
    mhi_mark_clear(p);
    mhi_unlock(&cache->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": free object %p has no free mark", base,
             p);
    expect_report("free object unmarked", want);
    mhi_lock(&cache->lock);
    ((uintptr_t *)p)[1] = word1;
    mhi_unlock(&cache->lock);
    expect_clean("free mark restored");

    /* The stash of the calling thread: its count, and its objects' marks. */
    REQUIRE(cache->stash[c] != NULL);
    uint32_t ns = mhi_stash_count(cache, c), room = cache->stash_room[c];
    CHECK(ns > 0 && ns < cache->stash_lim[c]);
    cache->stash_room[c] = room - 1;
    snprintf(want, sizeof want, "stash of class %zu: count %u, found %u", c, ns + 1, ns);
    expect_report("stash count + 1", want);
    cache->stash_room[c] = cache->stash_lim[c] + 1;
    snprintf(want, sizeof want, "stash of class %zu: room %u over its bound %u", c,
             cache->stash_lim[c] + 1, cache->stash_lim[c]);
    expect_report("stash room over the bound", want);
    cache->stash_room[c] = room;
    expect_clean("stash count restored");

    void *q = cache->stash[c];
    uintptr_t qword1 = ((uintptr_t *)q)[1];
    mhi_mark_clear(q);
    snprintf(want, sizeof want, "stashed object %p has no free mark", q);
    expect_report("stashed object unmarked", want);
    ((uintptr_t *)q)[1] = qword1;
    expect_clean("stash mark restored");
}

static void central_cases(size_t c) {
    char want[160];
    mhi_central *ce = &mhi_centrals[c];

    mhi_lock(&ce->lock);
    mhi_span *s = partial_span(&ce->partial);
    mhi_unlock(&ce->lock);
    REQUIRE(s != NULL);
    uintptr_t base = s->base;
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    CHECK(atomic_load(&s->owner) == NULL);

    /* nfree one fewer than the objects listed. */
    mhi_lock(&ce->lock);
    uint32_t nfree = s->nfree;
    REQUIRE(nfree >= 2); /* so the span still counts as partial */
    s->nfree = nfree - 1;
    mhi_unlock(&ce->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": nfree %u, but %u listed", base,
             nfree - 1, nfree);
    expect_report("unowned nfree - 1", want);
    mhi_lock(&ce->lock);
    s->nfree = nfree;
    mhi_unlock(&ce->lock);
    expect_clean("unowned nfree restored");

    /* Unowned, but the ABANDONED tag is gone. */
    mhi_lock(&ce->lock);
    uintptr_t x = atomic_load(&s->xfree);
    CHECK((x & MHI_XF_ABANDONED) != 0);
    atomic_store(&s->xfree, x & ~MHI_XF_ABANDONED);
    mhi_unlock(&ce->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": owner 0x0 but ABANDONED tag 0", base);
    expect_report("unowned span without ABANDONED", want);
    mhi_lock(&ce->lock);
    atomic_store(&s->xfree, x);
    mhi_unlock(&ce->lock);
    expect_clean("unowned xfree restored");

    /* The reverse: an owner on a span central lists, tag still there. */
    static char fake_owner;
    mhi_lock(&ce->lock);
    atomic_store(&s->owner, (void *)&fake_owner);
    mhi_unlock(&ce->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": owner %p but ABANDONED tag 1", base,
             (void *)&fake_owner);
    expect_report("central span with an owner", want);
    mhi_lock(&ce->lock);
    atomic_store(&s->owner, NULL);
    mhi_unlock(&ce->lock);
    expect_clean("unowned owner restored");

    /* where says full-and-unlisted while it is on the partial list. */
    mhi_lock(&ce->lock);
    uint8_t where = s->where;
    s->where = MHI_WHERE_CFULL;
    mhi_unlock(&ce->lock);
    snprintf(want, sizeof want, "small span %#" PRIxPTR ": where %d, found at %d", base,
             MHI_WHERE_CFULL, MHI_WHERE_CPARTIAL);
    expect_report("central span, where", want);
    mhi_lock(&ce->lock);
    s->where = where;
    mhi_unlock(&ce->lock);
    expect_clean("central where restored");
}

static void heap_cases(void *large) {
    char want[160];

    /* heap_idle one page more than the free pages. */
    mhi_lock(&mhi_heap_.lock);
    uint64_t idle = mhi_heap_.stats.heap_idle;
    mhi_heap_.stats.heap_idle = idle + MHI_PAGE_SIZE;
    mhi_unlock(&mhi_heap_.lock);
    snprintf(want, sizeof want, "idle %" PRIu64 " != free pages %" PRIu64, idle + MHI_PAGE_SIZE,
             idle);
    expect_report("heap_idle + 1 page", want);
    mhi_lock(&mhi_heap_.lock);
    mhi_heap_.stats.heap_idle = idle;
    mhi_unlock(&mhi_heap_.lock);
    expect_clean("heap_idle restored");

    /* Specials on a free span: the first FREE span of the heap, found by
     * walking the spans of the lowest arena in address order. */
    (void)large;
    static long dummy_special;
    mhi_lock(&mhi_heap_.lock);
    mhi_span *s = NULL;
    for (uintptr_t a = mhi_arena_list->base; a < mhi_arena_list->base + MHI_ARENA_SIZE;) {
        mhi_span *t = mhi_heap_page_span(a);
        if (!t || t->base != a) break;
        if (t->state == MHI_SPAN_FREE) {
            s = t;
            break;
        }
        a = mhi_span_end(t);
    }
    REQUIRE(s != NULL);
    CHECK(s->specials == NULL);
    s->specials = (struct mhi_special *)&dummy_special;
    mhi_unlock(&mhi_heap_.lock);
    snprintf(want, sizeof want, "free span %p has specials", (void *)s->base);
    expect_report("specials on a free span", want);
    mhi_lock(&mhi_heap_.lock);
    s->specials = NULL;
    mhi_unlock(&mhi_heap_.lock);
    expect_clean("specials restored");

    /* A free span's page open to free's fast path. */
    mhi_arena *ar = mhi_arena_of(s->base);
    size_t pg = mhi_arena_page(s->base);
    CHECK_EQ(atomic_load(&ar->fast[pg].cls), 0);
    atomic_store(&ar->fast[pg].cls, 1);
    snprintf(want, sizeof want, "page %p of span %p (state %d, kind %d, class 0): fast map class 1",
             (void *)s->base, (void *)s->base, MHI_SPAN_FREE, MHI_KIND_NONE);
    expect_report("fast map entry on a free page", want);
    atomic_store(&ar->fast[pg].cls, 0);
    expect_clean("fast map entry cleared");
}

/* A page of small span s (open to free's fast path) whose fast map entry
 * gives the wrong offset in the span, then the wrong class. */
static void fast_map_cases(mhi_span *s) {
    char want[200];
    REQUIRE(s->npages >= 2 && mhi_span_fast_limit(s) > 0); /* (the last page's off is not 0) */
    uintptr_t q = s->base + (s->npages - 1) * MHI_PAGE_SIZE;
    mhi_arena *ar = mhi_arena_of(q);
    size_t pg = mhi_arena_page(q);
    uint32_t off = ar->fast[pg].off, cls = atomic_load(&ar->fast[pg].cls);
    CHECK_EQ(off, (uint32_t)(q - s->base));
    CHECK_EQ(cls, s->sizeclass);
    ar->fast[pg].off = off + MHI_PAGE_SIZE;
    snprintf(want, sizeof want, "page %p of span %p (state %d, kind %d, class %u): fast map class %u at %x",
             (void *)q, (void *)s->base, MHI_SPAN_INUSE, MHI_KIND_SMALL, (unsigned)s->sizeclass,
             (unsigned)cls, (unsigned)(off + MHI_PAGE_SIZE));
    expect_report("fast map offset wrong", want);
    ar->fast[pg].off = off;
    atomic_store(&ar->fast[pg].cls, cls + 1);
    snprintf(want, sizeof want, "page %p of span %p (state %d, kind %d, class %u): fast map class %u at %x",
             (void *)q, (void *)s->base, MHI_SPAN_INUSE, MHI_KIND_SMALL, (unsigned)s->sizeclass,
             (unsigned)cls + 1, (unsigned)off);
    expect_report("fast map class wrong", want);
    atomic_store(&ar->fast[pg].cls, cls);
    expect_clean("fast map entry restored");
}

int main(void) {
    /* No background thread: nothing may change the heap behind the test. */
    REQUIRE(mh_option_set("background", 0) == 0);

    size_t c = mhi_size_class(OBJ_SIZE);
    REQUIRE(mhi_class_nobjs[c] >= 4);
    static void *objs[NOBJ];
    for (int i = 0; i < NOBJ; i++) {
        objs[i] = mh_malloc(OBJ_SIZE);
        REQUIRE(objs[i] != NULL);
        memset(objs[i], 0x3c, OBJ_SIZE);
    }
    /* Every other object back: the stash fills, grows, and sends its older
     * half back to the spans, which leave the full list for avail. */
    for (int i = 0; i < NOBJ; i += 2) {
        mh_free(objs[i]);
        objs[i] = NULL;
    }
    void *large = mh_malloc(200000);
    REQUIRE(large != NULL);

    mhi_cache *cache = mhi_tls_cache;
    REQUIRE(!mhi_cache_is_static(cache));
    expect_clean("initial state");
    /* An object of the first class whose spans have several pages. */
    size_t mc = 1;
    while (mc < MHI_NUM_CLASSES && mhi_class_npages[mc] < 2) mc++;
    REQUIRE(mc < MHI_NUM_CLASSES);
    void *multi = mh_malloc(mhi_class_size[mc]);
    REQUIRE(multi != NULL);
    fast_map_cases(mhi_heap_page_span((uintptr_t)multi));
    owned_cases(cache, c);

    /* Give every span up: each still has live objects and free ones, so
     * each lands on central's partial list. */
    mhi_cache_flush();
    CHECK(cache->avail[c].count == 0 && cache->full[c].count == 0);
    CHECK(mhi_centrals[c].partial.count > 0);
    expect_clean("after flush");
    central_cases(c);

    heap_cases(large);

    for (int i = 0; i < NOBJ; i++) mh_free(objs[i]);
    mh_free(large);
    expect_clean("at the end");
    mh_trim();
    expect_clean("after trim");
    return check_done("test_verify");
}
