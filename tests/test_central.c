/* test_central.c - the central lists (central.h) on their own, with no
 * thread cache involved:
 *
 *   take      mhi_central_take_span hands out a fresh span: owner set, no
 *             xfree tags, every object free and marked, in address order;
 *   abandon   a span with some objects out is filed partial, one with none
 *             free is counted full, an entirely free one goes back to the
 *             page heap; objects other threads pushed onto xfree before
 *             are applied; a partial span is what the next take gets;
 *   unowned   mhi_central_free_unowned returns objects: a full span turns
 *             partial, the last object sends the span to the page heap, an
 *             owned span is refused; misuse (a push past nelems, a second
 *             free of a marked object) aborts with "mheap: double free";
 *   alloc_one objects without a cache, filed by free count;
 *   totals    mhi_central_totals against the central counters and the
 *             page heap's statistics.
 *
 * Objects are taken from a span by hand as mhi_central_alloc_one does:
 * pop the free list, clear the mark.  No test here makes large spans, so
 * every in-use span of the page heap is a central one.
 * The verifiers (mhi_heap_verify, mhi_central_verify, mhi_cache_verify)
 * run after every step. */
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

#include "cache.h"
#include "central.h"
#include "check.h"
#include "child.h"
#include "pageheap.h"
#include "pageheap_util.h"
#include "sizeclass.h"


/* Stands in for a thread cache: take_span only records it. */
static char fake_owner;

/* Pop one object off s's free list, as mhi_central_alloc_one does. */
static void *obj_take(mhi_span *s) {
    if (!s->freelist) (void)mhi_span_carve(s, NULL);
    void *p = s->freelist;
    REQUIRE(p != NULL);
    s->freelist = mhi_link_get(p);
    mhi_mark_clear(p);
    s->nfree--;
    return p;
}

/* Link objs[0..n) into a chain for mhi_central_free_unowned, checking and
 * marking each as a remote freer does; returns the head. */
static void *chain(void **objs, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        mhi_span_mark_remote(objs[i]);
        mhi_link_set(objs[i], i + 1 < n ? objs[i + 1] : NULL);
    }
    return objs[0];
}

static bool on_partial(const mhi_central *ce, const mhi_span *s) {
    for (const mhi_span *t = ce->partial.first; t; t = t->next)
        if (t == s) return true;
    return false;
}


/* ---- take ---- */

static void test_take_fresh(void) {
    size_t c = mhi_size_class(64);
    ccount k0 = central_count(c);
    REQUIRE(k0.npartial == 0); /* so the take makes a new span */
    mhi_heap_stats b = stats();
    mhi_span *s = mhi_central_take_span(c, &fake_owner);
    REQUIRE(s != NULL);
    mhi_heap_stats a = stats();
    ccount k1 = central_count(c);

    CHECK(owner_of(s) == &fake_owner);
    CHECK_EQ(xfree_of(s), 0); /* owned: no ABANDONED, no NOTIFY, no objects */
    CHECK_EQ(s->state, MHI_SPAN_INUSE);
    CHECK_EQ(s->kind, MHI_KIND_SMALL);
    CHECK_EQ(s->sizeclass, c);
    CHECK_EQ(s->elemsize, mhi_class_size[c]);
    CHECK_EQ(s->nelems, mhi_class_nobjs[c]);
    CHECK_EQ(s->npages, mhi_class_npages[c]);
    CHECK_EQ(s->nbytes, s->npages * P);
    CHECK_EQ(s->nfree, s->nelems);
    CHECK_EQ(s->where, MHI_WHERE_NONE);
    CHECK_EQ(atomic_load(&s->relmask), 0);
    CHECK(mhi_heap_span(s->base) == s);
    /* Every object free and marked; the first 4 KiB of them on the free
     * list, front to back, the rest never handed out yet (fresh). */
    bool in_order = true, marked = true;
    uint32_t n = 0;
    for (char *p = s->freelist; p; p = *(char **)p, n++) {
        if ((uintptr_t)p != s->base + (uintptr_t)n * s->elemsize) in_order = false;
        if (n > s->nelems) break;
    }
    for (uint32_t i = 0; i < s->nelems; i++)
        if (!mhi_free_marked((char *)s->base + (size_t)i * s->elemsize)) marked = false;
    CHECK_EQ(n, 4096 / s->elemsize);
    CHECK_EQ(s->fresh, n);
    CHECK(in_order);
    CHECK(marked);
    CHECK(freelist_sound(s));
    /* The next call takes the rest (below twice 4 KiB), in order. */
    void *head = s->freelist;
    s->freelist = NULL;
    CHECK(mhi_span_carve(s, NULL));
    CHECK_EQ(s->fresh, s->nelems);
    CHECK(s->freelist == (void *)(s->base + 4096));
    CHECK(!mhi_span_carve(s, NULL));
    uint32_t m = 0;
    for (char *p = s->freelist; p && m <= s->nelems; p = *(char **)p, m++)
        if ((uintptr_t)p != s->base + 4096 + (uintptr_t)m * s->elemsize) in_order = false;
    CHECK_EQ(m, s->nelems - n);
    CHECK(in_order);
    /* Both runs back on the list, as before. */
    char *last = head;
    while (*(char **)last) last = *(char **)last;
    *(void **)last = s->freelist;
    mhi_mark_free(last);
    s->freelist = head;
    CHECK(freelist_sound(s));
    /* Counted by central and by the page heap. */
    CHECK_EQ(k1.nspans, k0.nspans + 1);
    CHECK_EQ(k1.nspan_alloc, k0.nspan_alloc + 1);
    CHECK_EQ(k1.npartial, 0);
    CHECK_EQ(a.nspan_inuse, b.nspan_inuse + 1);
    CHECK_EQ(a.heap_inuse, b.heap_inuse + s->npages * P);
    CHECK_EQ(a.span_allocs, b.span_allocs + 1);
    VERIFY0();

    /* Given up untouched: straight back to the page heap. */
    mhi_central_abandon(s);
    a = stats();
    ccount k2 = central_count(c);
    CHECK_EQ(a.nspan_inuse, b.nspan_inuse);
    CHECK_EQ(a.heap_inuse, b.heap_inuse);
    CHECK_EQ(a.span_frees, b.span_frees + 1);
    CHECK_EQ(k2.nspans, k0.nspans);
    CHECK_EQ(k2.nspan_free, k0.nspan_free + 1);
    CHECK_EQ(k2.npartial, 0);
    CHECK_EQ(k2.nfull, k0.nfull);
    VERIFY0();
}

/* ---- abandon ---- */

static void test_abandon_partial(void) {
    size_t c = mhi_size_class(64);
    mhi_central *ce = &mhi_centrals[c];
    mhi_span *s = mhi_central_take_span(c, &fake_owner);
    REQUIRE(s != NULL);
    enum { K = 10 };
    void *objs[K];
    for (int i = 0; i < K; i++) objs[i] = obj_take(s);
    CHECK(!mhi_free_marked(objs[0]) && !mhi_free_marked(objs[K - 1]));
    CHECK_EQ(s->nfree, s->nelems - K);
    /* A remote freer pushed objs[K-1] onto xfree before the owner gave up
     * the span: abandon applies it. */
    mhi_span_mark_remote(objs[K - 1]);
    mhi_link_set(objs[K - 1], NULL);
    atomic_store(&s->xfree, (uintptr_t)objs[K - 1]);
    ccount k0 = central_count(c);
    mhi_heap_stats b = stats();

    mhi_central_abandon(s);
    ccount k1 = central_count(c);
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    CHECK(owner_of(s) == NULL);
    CHECK(xfree_of(s) & MHI_XF_ABANDONED);
    CHECK_EQ(xfree_of(s) & ~MHI_XF_TAGS, 0); /* the pushed object was taken */
    CHECK_EQ(xfree_of(s) & (MHI_XF_NOTIFY | MHI_XF_FREEING), 0);
    CHECK_EQ(s->nfree, s->nelems - (K - 1));
    CHECK(freelist_sound(s));
    CHECK(on_partial(ce, s));
    CHECK(ce->partial.first == s);
    CHECK_EQ(k1.npartial, k0.npartial + 1);
    CHECK_EQ(k1.nfull, k0.nfull);
    CHECK_EQ(k1.nspans, k0.nspans); /* still central's */
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse);
    VERIFY0();

    /* The next take of the class gets it back, as it was, without the
     * page heap. */
    mhi_span *t = mhi_central_take_span(c, &fake_owner);
    ccount k2 = central_count(c);
    CHECK(t == s);
    CHECK(owner_of(s) == &fake_owner);
    CHECK_EQ(xfree_of(s), 0);
    CHECK_EQ(s->where, MHI_WHERE_NONE);
    CHECK_EQ(s->nfree, s->nelems - (K - 1));
    CHECK(!on_partial(ce, s));
    CHECK_EQ(k2.npartial, k0.npartial);
    CHECK_EQ(k2.nspan_alloc, k1.nspan_alloc);
    CHECK_EQ(stats().span_allocs, b.span_allocs);
    VERIFY0();

    /* Objects back by hand (the owner's own frees), then given up whole:
     * the page heap takes it. */
    for (int i = 0; i < K - 1; i++) {
        mhi_link_set(objs[i], s->freelist);
        s->freelist = objs[i];
        s->nfree++;
    }
    CHECK(freelist_sound(s));
    mhi_central_abandon(s);
    ccount k3 = central_count(c);
    CHECK_EQ(k3.nspans, k0.nspans - 1);
    CHECK_EQ(k3.nspan_free, k0.nspan_free + 1);
    CHECK_EQ(k3.npartial, k0.npartial);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse - 1);
    VERIFY0();
}

/* A span with no free object: counted full, on no list; the frees that
 * follow move it to partial and, with the last one, to the page heap. */
static void test_full_and_unowned(void) {
    size_t c = mhi_size_class(1024);
    mhi_central *ce = &mhi_centrals[c];
    mhi_span *s = mhi_central_take_span(c, &fake_owner);
    REQUIRE(s != NULL);
    uint32_t n = s->nelems;
    REQUIRE(n >= 6 && n <= 64);
    void *objs[64];
    for (uint32_t i = 0; i < n; i++) objs[i] = obj_take(s);
    CHECK_EQ(s->nfree, 0);
    CHECK(s->freelist == NULL);
    ccount k0 = central_count(c);
    mhi_heap_stats b = stats();

    mhi_central_abandon(s);
    ccount k1 = central_count(c);
    CHECK_EQ(s->where, MHI_WHERE_CFULL);
    CHECK(owner_of(s) == NULL);
    CHECK(xfree_of(s) & MHI_XF_ABANDONED);
    CHECK(!on_partial(ce, s));
    CHECK_EQ(k1.nfull, k0.nfull + 1);
    CHECK_EQ(k1.npartial, k0.npartial);
    CHECK_EQ(k1.nspans, k0.nspans);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse);
    VERIFY0();

    /* One object back: full -> partial. */
    void *h = chain(&objs[0], 1);
    int r = mhi_central_free_unowned(s, h, objs[0], 1);
    ccount k2 = central_count(c);
    CHECK(r == 1 || r == 2);
    CHECK_EQ(s->nfree, 1);
    CHECK(s->freelist == objs[0]);
    CHECK(mhi_free_marked(objs[0]));
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    CHECK(on_partial(ce, s));
    CHECK_EQ(k2.nfull, k0.nfull);
    CHECK_EQ(k2.npartial, k0.npartial + 1);
    CHECK(freelist_sound(s));
    VERIFY0();

    /* A run of three: stays partial. */
    h = chain(&objs[1], 3);
    r = mhi_central_free_unowned(s, h, objs[3], 3);
    CHECK(r == 1 || r == 2);
    CHECK_EQ(s->nfree, 4);
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    CHECK_EQ(central_count(c).npartial, k0.npartial + 1);
    CHECK(freelist_sound(s));
    VERIFY0();

    /* An owned span is refused (the caller then frees through xfree),
     * and nothing changes. */
    mhi_span *o = mhi_central_take_span(c, &fake_owner);
    REQUIRE(o == s); /* the only partial span of the class */
    uint32_t nf = s->nfree;
    void *q = obj_take(s); /* an object the owner holds */
    mhi_span_mark_remote(q);
    mhi_link_set(q, NULL);
    CHECK_EQ(mhi_central_free_unowned(s, q, q, 1), 0);
    CHECK_EQ(s->nfree, nf - 1);
    CHECK(owner_of(s) == &fake_owner);
    CHECK(freelist_sound(s)); /* q is not on it */
    /* The owner's own free of q (marked already), then given up again:
     * partial. */
    mhi_link_set(q, s->freelist);
    s->freelist = q;
    s->nfree++;
    mhi_central_abandon(s);
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    CHECK_EQ(s->nfree, 4);
    VERIFY0();

    /* The rest: the last one sends the span back to the page heap. */
    b = stats();
    ccount k3 = central_count(c);
    uintptr_t base = s->base;
    h = chain(&objs[4], n - 4);
    r = mhi_central_free_unowned(s, h, objs[n - 1], n - 4);
    s = NULL; /* back in the page heap: may be reused */
    CHECK_EQ(r, 2);
    mhi_heap_stats a = stats();
    ccount k4 = central_count(c);
    CHECK_EQ(k4.nspans, k3.nspans - 1);
    CHECK_EQ(k4.nspan_free, k3.nspan_free + 1);
    CHECK_EQ(k4.npartial, k3.npartial - 1);
    CHECK_EQ(k4.nfull, k3.nfull);
    CHECK_EQ(a.nspan_inuse, b.nspan_inuse - 1);
    CHECK_EQ(a.span_frees, b.span_frees + 1);
    CHECK(mhi_heap_span(base) == NULL);
    VERIFY0();
}

/* ---- misuse, in a child ---- */

typedef void (*misuse_fn)(void);

static void expect_double_free(const char *name, misuse_fn fn, const void *addr) {
    child_expect_abort0(name, fn, "double free", (uintptr_t)addr);
}

/* The parent sets these up; the children misuse them. */
static mhi_span *mis_span;
static void *mis_out, *mis_free; /* an object held, one on the free list */

/* Two objects pushed where only one is out: the count goes past nelems. */
static void push_past_nelems(void) {
    mhi_link_set(mis_out, mis_free);
    mhi_central_free_unowned(mis_span, mis_out, mis_free, 2);
}

/* A second free of an object already on the free list: the mark says so. */
static void free_marked(void) { mhi_span_mark_remote(mis_free); }

static void test_misuse(void) {
    size_t c = mhi_size_class(64);
    mhi_span *s = mhi_central_take_span(c, &fake_owner);
    REQUIRE(s != NULL);
    void *p = obj_take(s);
    mhi_central_abandon(s);
    REQUIRE(s->where == MHI_WHERE_CPARTIAL && s->nfree + 1 == s->nelems);
    mis_span = s;
    mis_out = p;
    mis_free = s->freelist;
    expect_double_free("push past nelems", push_past_nelems, p);
    expect_double_free("free of a marked object", free_marked, mis_free);
    /* The parent's span is untouched; its one object goes back properly
     * and the span with it. */
    CHECK_EQ(s->nfree, s->nelems - 1);
    CHECK(!mhi_free_marked(p));
    CHECK(freelist_sound(s));
    VERIFY0();
    uint64_t nspans = central_count(c).nspans;
    void *h = chain(&p, 1);
    CHECK_EQ(mhi_central_free_unowned(s, h, p, 1), 2);
    CHECK_EQ(central_count(c).nspans, nspans - 1);
    VERIFY0();
}

/* ---- alloc_one ---- */

static void test_alloc_one(void) {
    size_t c = mhi_size_class(1100); /* a class of spans of several pages */
    REQUIRE(mhi_class_npages[c] > 1);
    uint32_t n = mhi_class_nobjs[c];
    REQUIRE(n >= 2 && n <= 64);
    mhi_central *ce = &mhi_centrals[c];
    ccount k0 = central_count(c);
    REQUIRE(k0.npartial == 0);
    mhi_heap_stats b = stats();

    void *objs[2 * 64 + 1];
    objs[0] = mhi_central_alloc_one(c);
    REQUIRE(objs[0] != NULL);
    mhi_span *s = mhi_heap_span((uintptr_t)objs[0]);
    REQUIRE(s != NULL);
    ccount k1 = central_count(c);
    CHECK_EQ(k1.nspan_alloc, k0.nspan_alloc + 1);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse + 1);
    CHECK_EQ(s->kind, MHI_KIND_SMALL);
    CHECK_EQ(s->sizeclass, c);
    CHECK((uintptr_t)objs[0] == s->base); /* a fresh span, front first */
    CHECK(!mhi_free_marked(objs[0]));
    CHECK(owner_of(s) == NULL);
    CHECK(xfree_of(s) & MHI_XF_ABANDONED);
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    CHECK_EQ(s->nfree, n - 1);
    CHECK(on_partial(ce, s));
    CHECK(freelist_sound(s));
    VERIFY0();

    /* The rest of the span, in address order, then full. */
    bool same = true, order = true, clear = true;
    for (uint32_t i = 1; i < n; i++) {
        objs[i] = mhi_central_alloc_one(c);
        REQUIRE(objs[i] != NULL);
        if (mhi_heap_span((uintptr_t)objs[i]) != s) same = false;
        if ((uintptr_t)objs[i] != s->base + (uintptr_t)i * s->elemsize) order = false;
        if (mhi_free_marked(objs[i])) clear = false;
    }
    CHECK(same);
    CHECK(order);
    CHECK(clear);
    ccount k2 = central_count(c);
    CHECK_EQ(s->nfree, 0);
    CHECK_EQ(s->where, MHI_WHERE_CFULL);
    CHECK(!on_partial(ce, s));
    CHECK_EQ(k2.nfull, k0.nfull + 1);
    CHECK_EQ(k2.npartial, k0.npartial);
    CHECK_EQ(k2.nspan_alloc, k1.nspan_alloc);
    VERIFY0();

    /* The next one needs a new span. */
    objs[n] = mhi_central_alloc_one(c);
    REQUIRE(objs[n] != NULL);
    mhi_span *s2 = mhi_heap_span((uintptr_t)objs[n]);
    CHECK(s2 != NULL && s2 != s);
    CHECK_EQ(central_count(c).nspan_alloc, k0.nspan_alloc + 2);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse + 2);
    VERIFY0();

    /* Every object back: both spans go to the page heap. */
    for (uint32_t i = 0; i <= n; i++) {
        void *h = chain(&objs[i], 1);
        int r = mhi_central_free_unowned(mhi_heap_span((uintptr_t)objs[i]), h, h, 1);
        if (r != 1 && r != 2) CHECK(!"free_unowned refused an unowned span");
    }
    ccount k3 = central_count(c);
    CHECK_EQ(k3.nspans, k0.nspans);
    CHECK_EQ(k3.nspan_free, k0.nspan_free + 2);
    CHECK_EQ(k3.npartial, 0);
    CHECK_EQ(k3.nfull, k0.nfull);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse);
    VERIFY0();
}

/* ---- totals ---- */

static mhi_central_totals_t totals(void) {
    mhi_central_totals_t t;
    memset(&t, 0xee, sizeof t);
    mhi_central_totals(&t);
    return t;
}

/* The totals against the per-class counters, and against the page heap:
 * only central spans are in use in this program. */
static void totals_match(void) {
    mhi_central_totals_t t = totals(), want = {0};
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        ccount k = central_count(c);
        want.spans += k.nspans;
        want.bytes += k.nspans * mhi_class_npages[c] * P;
        want.partial += k.npartial;
        want.full += k.nfull;
        want.span_allocs += k.nspan_alloc;
        want.span_frees += k.nspan_free;
    }
    CHECK_EQ(t.spans, want.spans);
    CHECK_EQ(t.bytes, want.bytes);
    CHECK_EQ(t.partial, want.partial);
    CHECK_EQ(t.full, want.full);
    CHECK_EQ(t.span_allocs, want.span_allocs);
    CHECK_EQ(t.span_frees, want.span_frees);
    CHECK_EQ(t.span_allocs - t.span_frees, t.spans);
    mhi_heap_stats a = stats();
    CHECK_EQ(t.spans, a.nspan_inuse);
    CHECK_EQ(t.bytes, a.heap_inuse);
}

static void test_totals(void) {
    totals_match();
    mhi_central_totals_t t0 = totals();
    /* One span each of a one-page class and a larger one. */
    size_t c1 = mhi_size_class(16), c2 = mhi_size_class(20000);
    mhi_span *s1 = mhi_central_take_span(c1, &fake_owner);
    mhi_span *s2 = mhi_central_take_span(c2, &fake_owner);
    REQUIRE(s1 && s2);
    REQUIRE(s2->npages > 1);
    mhi_central_totals_t t1 = totals();
    CHECK_EQ(t1.spans, t0.spans + 2);
    CHECK_EQ(t1.bytes, t0.bytes + (s1->npages + s2->npages) * P);
    CHECK_EQ(t1.span_allocs, t0.span_allocs + 2);
    CHECK_EQ(t1.partial, t0.partial); /* owned: on no central list */
    totals_match();
    /* A partial span counts as much as an owned one. */
    void *p = obj_take(s1);
    mhi_central_abandon(s1);
    t1 = totals();
    CHECK_EQ(t1.spans, t0.spans + 2);
    CHECK_EQ(t1.partial, t0.partial + 1);
    totals_match();
    /* Spans back in the page heap do not. */
    mhi_central_abandon(s2);
    CHECK_EQ(mhi_central_free_unowned(s1, chain(&p, 1), p, 1), 2);
    t1 = totals();
    CHECK_EQ(t1.spans, t0.spans);
    CHECK_EQ(t1.bytes, t0.bytes);
    CHECK_EQ(t1.partial, t0.partial);
    CHECK_EQ(t1.span_frees, t0.span_frees + 2);
    totals_match();
    VERIFY0();
}

int main(void) {
    /* No page may be scavenged behind a test's back. */
    REQUIRE(mh_option_set("scavenge_delay_ms", 3600000) == 0);
    VERIFY0();
    test_take_fresh();
    test_abandon_partial();
    test_full_and_unowned();
    test_misuse();
    test_alloc_one();
    test_totals();
    totals_match();
    VERIFY0();
    return check_done("test_central");
}
