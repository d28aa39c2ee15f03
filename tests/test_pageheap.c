/* test_pageheap.c - the page heap (pageheap.h) on its own:
 *
 *   growth    chunks of >= 1 MiB, rounded to 64 KiB;
 *   alloc     spans of every length, in use or manual, and their
 *             statistics; absurd requests fail;
 *   split and coalesce, exact-size lists (newest first, smallest list that
 *             fits), best fit in the tree with ties to the lowest address;
 *   lookups   span_of / lookup / lookup_maybe / inheap / mlookup for in-use,
 *             manual, free and small-object spans;
 *   needzero  fresh, dirty, released and mixed pages;
 *   resize    shrink and grow in place, refusals, needzero, manual spans;
 *   aligned   mhi_heap_alloc_aligned;
 *   stats     a mixed sequence against counts kept here, and the public
 *             snapshot;
 *   pages     the public page-run API.
 *
 * The heap is process-wide, so the checks compare statistics deltas.  Where
 * a test needs a known heap layout it first "drains" the heap: it allocates
 * every free span, then frees one span of the size the layout needs, so
 * that the next allocations are cut from it at adjacent addresses and the
 * only free spans are the ones the test makes.
 * mh_heap_verify() runs after every step. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "mheap.h"
#include "pageheap.h"
#include "pageheap_util.h"
#include "sizeclass.h"

/* The INUSE span holding a, or NULL (mhi_mlookup finds only those). */
static mhi_span *inuse_span(uintptr_t a) {
    mhi_span *s;
    mhi_mlookup(a, NULL, NULL, &s);
    return s;
}

/* ---- draining: allocate every free span (see the comment at the top) ---- */

typedef struct {
    mhi_span **s;
    size_t n, cap;
} spanvec;

static void vec_push(spanvec *v, mhi_span *s) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->s = realloc(v->s, v->cap * sizeof *v->s);
        REQUIRE(v->s != NULL);
    }
    v->s[v->n++] = s;
}

/* Pages of the largest free span (0 if none); reads the heap's free
 * structures under its lock. */
static size_t largest_free(void) {
    mhi_lock(&mhi_heap_.lock);
    size_t n = 0;
    for (mhi_span *t = mhi_heap_.large; t; t = t->tright) n = t->npages;
    if (!n)
        for (size_t i = MHI_FREE_LISTS; i-- > 1;)
            if (mhi_heap_.free[i].count) {
                n = i;
                break;
            }
    mhi_unlock(&mhi_heap_.lock);
    return n;
}

static void drain(spanvec *v) {
    size_t n;
    while ((n = largest_free()) != 0) {
        mhi_heap_stats before = stats();
        mhi_span *s = alloc_inuse(n);
        vec_push(v, s);
        /* The largest free span fits exactly: no growth. */
        CHECK_EQ(stats().heap_sys, before.heap_sys);
    }
    CHECK_EQ(stats().heap_idle, 0);
    CHECK_EQ(stats().nspan_free, 0);
}

/* Make the heap's only free span a run of exactly `total` pages, so that
 * the next allocations (at most `total` pages in all) are cut from its
 * start one after another: adjacent, whatever the arena layout (a fresh
 * arena need not follow the previous one, e.g. under TSan). */
static void region(spanvec *d, size_t total) {
    drain(d);
    mhi_span *r = alloc_inuse(total);
    drain(d);
    mhi_heap_free(r);
    CHECK_EQ(stats().nspan_free, 1);
    CHECK_EQ(largest_free(), total);
}

static void undrain(spanvec *v) {
    for (size_t i = 0; i < v->n; i++) mhi_heap_free(v->s[i]);
    free(v->s);
    memset(v, 0, sizeof *v);
}

/* ==== growth ==== */

static void test_growth(void) {
    mhi_heap_stats s0 = stats();
    mhi_span *s = alloc_inuse(1);
    mhi_heap_stats s1 = stats();
    if (s0.heap_sys == 0) {
        /* A fresh heap: the first page costs a whole chunk. */
        CHECK(s1.heap_sys >= MHI_GROW_MIN);
        CHECK_EQ(s1.heap_sys % MHI_GROW_ROUND, 0);
        CHECK_EQ(s1.ngrow, 1);
        CHECK_EQ(s1.grow_bytes, s1.heap_sys);
        CHECK_EQ(s1.heap_idle, s1.heap_sys - P);
        CHECK_EQ(s1.heap_released, s1.heap_sys - P); /* fresh pages count as released */
        CHECK_EQ(s->needzero, 0);
    } else {
        fprintf(stderr, "note: heap not fresh at start (sys %llu)\n",
                (unsigned long long)s0.heap_sys);
        CHECK(s1.heap_sys == s0.heap_sys || s1.heap_sys - s0.heap_sys >= MHI_GROW_MIN);
    }
    mhi_heap_free(s);
    VERIFY0();

    spanvec d = {0};
    drain(&d);
    VERIFY0();
    /* Nothing free: each allocation grows the heap by max(1 MiB, the
     * request rounded up to 64 KiB). */
    static const size_t sizes[] = {1, 5, 127, 128, 129, 1000, 1001, 1023};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        mhi_heap_stats b = stats();
        mhi_span *t = alloc_inuse(n);
        mhi_heap_stats a = stats();
        uint64_t want = ((uint64_t)n * P + MHI_GROW_ROUND - 1) & ~(uint64_t)(MHI_GROW_ROUND - 1);
        if (want < MHI_GROW_MIN) want = MHI_GROW_MIN;
        CHECK_EQ(a.ngrow, b.ngrow + 1);
        CHECK_EQ(a.grow_bytes - b.grow_bytes, want);
        CHECK_EQ(a.heap_sys - b.heap_sys, want);
        CHECK_EQ((a.heap_sys - b.heap_sys) % MHI_GROW_ROUND, 0);
        CHECK_EQ(a.heap_inuse - b.heap_inuse, n * P);
        CHECK_EQ(a.heap_idle, want - n * P);
        CHECK_EQ(a.heap_released, want - n * P);
        CHECK_EQ(a.nspan_free, want > n * P ? 1 : 0);
        CHECK_EQ(t->needzero, 0);
        vec_push(&d, t);
        drain(&d); /* take the leftover too */
        VERIFY0();
    }
    undrain(&d);
    VERIFY0();
}

/* ==== page heap ==== */

static void test_alloc_basic(void) {
    static const size_t sizes[] = {1, 2, 7, 127, 128, 129, 300, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        for (int manual = 0; manual < 2; manual++) {
            mhi_heap_stats b = stats();
            mhi_span *s = mhi_heap_alloc(n, manual ? MHI_SPAN_MANUAL : MHI_SPAN_INUSE,
                                         MHI_KIND_LARGE, false);
            REQUIRE(s != NULL);
            mhi_heap_stats a = stats();
            CHECK_EQ(s->npages, n);
            CHECK_EQ(s->base % P, 0);
            CHECK_EQ(s->state, manual ? MHI_SPAN_MANUAL : MHI_SPAN_INUSE);
            CHECK_EQ(s->kind, manual ? MHI_KIND_NONE : MHI_KIND_LARGE);
            CHECK_EQ(s->sweepgen, mhi_heap_.sweepgen);
            uint64_t grown = a.heap_sys - b.heap_sys;
            CHECK_EQ(a.grow_bytes - b.grow_bytes, grown);
            CHECK_EQ(a.heap_inuse, b.heap_inuse + n * P);
            CHECK_EQ(a.heap_idle, b.heap_idle + grown - n * P);
            CHECK_EQ(a.heap_manual, b.heap_manual + (manual ? n * P : 0));
            CHECK_EQ(a.nspan_inuse, b.nspan_inuse + !manual);
            CHECK_EQ(a.nspan_manual, b.nspan_manual + manual);
            CHECK_EQ(a.span_allocs, b.span_allocs + 1);
            CHECK(a.heap_released <= b.heap_released + grown);
            /* The in-use bit marks the first page of INUSE spans only. */
            mhi_arena *ar = mhi_arena_of(s->base);
            size_t pg = mhi_arena_page(s->base);
            CHECK_EQ((ar->inuse[pg / 64] >> (pg % 64)) & 1, !manual);
            VERIFY0();

            mhi_heap_free(s);
            mhi_heap_stats c = stats();
            CHECK_EQ(c.heap_inuse, b.heap_inuse);
            CHECK_EQ(c.heap_manual, b.heap_manual);
            CHECK_EQ(c.heap_idle, b.heap_idle + grown);
            CHECK_EQ(c.heap_sys, a.heap_sys);
            CHECK_EQ(c.heap_released, a.heap_released); /* freeing releases nothing by itself */
            CHECK_EQ(c.nspan_inuse, b.nspan_inuse);
            CHECK_EQ(c.nspan_manual, b.nspan_manual);
            CHECK_EQ(c.span_frees, b.span_frees + 1);
            VERIFY0();
        }
    }
    /* Absurd requests fail and change nothing. */
    mhi_heap_stats b = stats();
    CHECK(mhi_heap_alloc(0, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) == NULL);
    CHECK(mhi_heap_alloc(SIZE_MAX, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) == NULL);
    CHECK(mhi_heap_alloc(SIZE_MAX / 2, MHI_SPAN_MANUAL, 0, true) == NULL);
    CHECK(mhi_heap_alloc((((size_t)1 << 47) >> 13) + 1, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) ==
          NULL);
    mhi_heap_stats a = stats();
    CHECK_EQ(a.heap_sys, b.heap_sys);
    CHECK_EQ(a.span_allocs, b.span_allocs);
    CHECK_EQ(a.heap_inuse, b.heap_inuse);
    VERIFY0();
}

static void test_split_coalesce(void) {
    for (int big = 0; big < 2; big++) {
        /* Small spans (exact-size lists) and large ones (the tree). */
        size_t na = big ? 100 : 4, nb = big ? 130 : 5, nc = big ? 140 : 6;
        spanvec d = {0};
        region(&d, na + nb + nc + 1);
        mhi_span *A = alloc_inuse(na), *B = alloc_inuse(nb), *C = alloc_inuse(nc);
        mhi_span *G = alloc_inuse(1);
        REQUIRE(B->base == mhi_span_end(A));
        REQUIRE(C->base == mhi_span_end(B));
        REQUIRE(G->base == mhi_span_end(C));
        uintptr_t a0 = A->base, b0 = B->base, c0 = C->base, end = mhi_span_end(C);
        VERIFY0();

        mhi_heap_stats s0 = stats();
        mhi_heap_free(A);
        mhi_heap_stats s1 = stats();
        CHECK_EQ(s1.nspan_free, s0.nspan_free + 1);
        CHECK_EQ(s1.heap_idle, s0.heap_idle + na * P);
        CHECK_EQ(s1.heap_inuse, s0.heap_inuse - na * P);
        mhi_span *f = mhi_heap_page_span(a0);
        CHECK(f && f->state == MHI_SPAN_FREE && f->base == a0 && f->npages == na);
        CHECK(mhi_heap_page_span(b0 - P) == f);
        VERIFY0();

        mhi_heap_free(C);
        mhi_heap_stats s2 = stats();
        CHECK_EQ(s2.nspan_free, s0.nspan_free + 2);
        f = mhi_heap_page_span(c0);
        CHECK(f && f->state == MHI_SPAN_FREE && f->base == c0 && f->npages == nc);
        VERIFY0();

        mhi_heap_free(B);
        mhi_heap_stats s3 = stats();
        CHECK_EQ(s3.nspan_free, s0.nspan_free + 1); /* three became one */
        CHECK_EQ(s3.heap_idle, s0.heap_idle + (na + nb + nc) * P);
        CHECK_EQ(s3.heap_inuse, s0.heap_inuse - (na + nb + nc) * P);
        CHECK_EQ(s3.nspan_inuse, s0.nspan_inuse - 3);
        f = mhi_heap_page_span(a0);
        CHECK(f && f->state == MHI_SPAN_FREE && f->base == a0 && f->npages == na + nb + nc);
        CHECK(mhi_heap_page_span(end - P) == f);
        CHECK(mhi_heap_span(b0) == NULL);
        CHECK(mhi_heap_span(c0 + P / 2) == NULL);
        CHECK(largest_free() == na + nb + nc);
        VERIFY0();

        /* Splitting it again hands out the head; the tail stays free. */
        mhi_span *X = alloc_inuse(na);
        CHECK_EQ(X->base, a0);
        f = mhi_heap_page_span(a0 + na * P);
        CHECK(f && f->state == MHI_SPAN_FREE && f->npages == nb + nc);
        CHECK(mhi_heap_page_span(end - P) == f);
        CHECK_EQ(stats().nspan_free, s0.nspan_free + 1);
        VERIFY0();
        mhi_heap_free(X);
        mhi_heap_free(G);
        undrain(&d);
        VERIFY0();
    }
}

static void test_exact_lists(void) {
    spanvec d = {0};
    region(&d, 25);
    mhi_span *g0 = alloc_inuse(1);
    mhi_span *X1 = alloc_inuse(5);
    mhi_span *g1 = alloc_inuse(1);
    mhi_span *X2 = alloc_inuse(5);
    mhi_span *g2 = alloc_inuse(1);
    mhi_span *H3 = alloc_inuse(3);
    mhi_span *g3 = alloc_inuse(1);
    mhi_span *H7 = alloc_inuse(7);
    mhi_span *g4 = alloc_inuse(1);
    drain(&d);
    uintptr_t x1 = X1->base, x2 = X2->base, h3 = H3->base, h7 = H7->base;

    /* A freed 5-page span is what the next 5-page allocation gets. */
    mhi_heap_free(X1);
    mhi_span *Y = alloc_inuse(5);
    CHECK_EQ(Y->base, x1);
    CHECK_EQ(Y->npages, 5);
    /* Same-size free spans: newest first. */
    mhi_heap_free(Y);
    mhi_heap_free(X2);
    mhi_span *Y1 = alloc_inuse(5), *Y2 = alloc_inuse(5);
    CHECK_EQ(Y1->base, x2);
    CHECK_EQ(Y2->base, x1);
    VERIFY0();

    /* The smallest list that fits: 2 pages come from the 3-page hole, 4
     * pages from the 7-page hole; the rest of each stays free. */
    mhi_heap_free(H3);
    mhi_heap_free(H7);
    mhi_heap_stats b = stats();
    mhi_span *Z2 = alloc_inuse(2);
    CHECK_EQ(Z2->base, h3);
    CHECK_EQ(stats().nspan_free, b.nspan_free); /* split: one free span replaced by one */
    mhi_span *f = mhi_heap_page_span(h3 + 2 * P);
    CHECK(f && f->state == MHI_SPAN_FREE && f->npages == 1);
    mhi_span *Z4 = alloc_inuse(4);
    CHECK_EQ(Z4->base, h7);
    f = mhi_heap_page_span(h7 + 4 * P);
    CHECK(f && f->state == MHI_SPAN_FREE && f->npages == 3);
    /* Exact fits use the whole hole. */
    mhi_span *Z1 = alloc_inuse(1);
    CHECK_EQ(Z1->base, h3 + 2 * P);
    mhi_span *Z3 = alloc_inuse(3);
    CHECK_EQ(Z3->base, h7 + 4 * P);
    CHECK_EQ(stats().nspan_free, b.nspan_free - 2);
    CHECK_EQ(stats().heap_idle, 0);
    VERIFY0();

    mhi_span *all[] = {g0, g1, g2, g3, g4, Y1, Y2, Z1, Z2, Z3, Z4};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) mhi_heap_free(all[i]);
    undrain(&d);
    VERIFY0();
}

static void test_best_fit(void) {
    spanvec d = {0};
    region(&d, 503);
    mhi_span *A = alloc_inuse(200);
    mhi_span *g1 = alloc_inuse(1);
    mhi_span *B = alloc_inuse(150);
    mhi_span *g2 = alloc_inuse(1);
    mhi_span *C = alloc_inuse(150);
    mhi_span *g3 = alloc_inuse(1);
    drain(&d);
    uintptr_t a = A->base, b = B->base, c = C->base;
    CHECK(a < b && b < c); /* fresh growth ascends */
    mhi_heap_free(A);
    mhi_heap_free(B);
    mhi_heap_free(C);
    CHECK_EQ(stats().nspan_free, 3);
    VERIFY0();

    /* 140: the 150-page holes fit best; of the two, the lower. */
    mhi_span *X = alloc_inuse(140);
    CHECK_EQ(X->base, b);
    /* 150: only the other 150-page hole fits exactly. */
    mhi_span *Y = alloc_inuse(150);
    CHECK_EQ(Y->base, c);
    /* 10: the remainder of B (an exact-size list). */
    mhi_span *Z = alloc_inuse(10);
    CHECK_EQ(Z->base, b + 140 * P);
    /* 160: the 200-page hole. */
    mhi_span *W = alloc_inuse(160);
    CHECK_EQ(W->base, a);
    CHECK_EQ(largest_free(), 40);
    VERIFY0();

    /* Ties to the lowest address regardless of the order of frees. */
    mhi_heap_free(Y);
    mhi_heap_free(X);
    mhi_heap_free(Z);
    mhi_span *V = alloc_inuse(150);
    CHECK_EQ(V->base, b);
    mhi_heap_free(V);
    VERIFY0();

    mhi_heap_free(W);
    mhi_heap_free(g1);
    mhi_heap_free(g2);
    mhi_heap_free(g3);
    undrain(&d);
    VERIFY0();
}

static void test_lookups(void) {
    spanvec d = {0};
    region(&d, 25);
    mhi_span *g0 = alloc_inuse(1);
    mhi_span *S = alloc_inuse(10);
    mhi_span *M = mhi_heap_alloc(6, MHI_SPAN_MANUAL, MHI_KIND_NONE, false);
    REQUIRE(M != NULL);
    mhi_span *F = alloc_inuse(7);
    mhi_span *g1 = alloc_inuse(1);
    drain(&d);
    REQUIRE(S->base == mhi_span_end(g0) && M->base == mhi_span_end(S));
    REQUIRE(F->base == mhi_span_end(M) && g1->base == mhi_span_end(F));
    mhi_heap_free(F); /* between in-use spans: stays a 7-page free span */
    F = NULL;
    uintptr_t sb = S->base, se = mhi_span_end(S);
    uintptr_t mb = M->base, me = mhi_span_end(M);
    VERIFY0();

    /* In use: every address maps to the span. */
    uintptr_t probes[] = {sb, sb + 1, sb + 5 * P + 123, se - P, se - 1};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        CHECK(mhi_heap_span(probes[i]) == S);
        CHECK(inuse_span(probes[i]) == S);
        CHECK(mhi_mlookup(probes[i], NULL, NULL, NULL));
    }
    CHECK(mhi_heap_page_span(sb) == S);
    CHECK(mhi_heap_page_span(se - P) == S);
    CHECK(mhi_heap_span(sb - 1) != S);
    CHECK(mhi_heap_span(se) != S);

    /* Manual: span_of finds it; it is not "in heap" for the GC. */
    uintptr_t mprobes[] = {mb, mb + 8, mb + 3 * P + 4000, me - 1};
    for (size_t i = 0; i < sizeof mprobes / sizeof *mprobes; i++) {
        CHECK(mhi_heap_span(mprobes[i]) == M);
        CHECK(inuse_span(mprobes[i]) == NULL);
        CHECK(!mhi_mlookup(mprobes[i], NULL, NULL, NULL));
        uintptr_t ob = 1;
        size_t osz = 1;
        mhi_span *osp = (mhi_span *)1;
        CHECK(!mhi_mlookup(mprobes[i], &ob, &osz, &osp));
        CHECK(ob == 0 && osz == 0 && osp == NULL);
    }
    CHECK(mhi_heap_page_span(mb) == M);

    /* Free: nothing, but the exact lookup of its ends gives the free span. */
    uintptr_t fb = me, fe = fb + 7 * P;
    mhi_span *f = mhi_heap_page_span(fb);
    REQUIRE(f != NULL);
    CHECK(f->state == MHI_SPAN_FREE && f->base == fb && f->npages == 7);
    CHECK(mhi_heap_page_span(fe - P) == f);
    for (uintptr_t a = fb; a < fe; a += P / 2 + 1) {
        CHECK(mhi_heap_span(a) == NULL);
        CHECK(inuse_span(a) == NULL);
        CHECK(!mhi_mlookup(a, NULL, NULL, NULL));
        CHECK(!mhi_mlookup(a, NULL, NULL, NULL));
    }
    CHECK(mhi_heap_span(fe) == g1);

    /* mlookup of a large object: the whole span, from any interior pointer. */
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        uintptr_t ob = 0;
        size_t osz = 0;
        mhi_span *osp = NULL;
        CHECK(mhi_mlookup(probes[i], &ob, &osz, &osp));
        CHECK_EQ(ob, sb);
        CHECK_EQ(osz, 10 * P);
        CHECK(osp == S);
    }
    /* mlookup of small objects: the object holding the address. */
    size_t cls = mhi_size_class(48);
    mhi_span *Sm = mhi_heap_alloc(mhi_class_npages[cls], MHI_SPAN_INUSE, MHI_KIND_SMALL, false);
    REQUIRE(Sm != NULL);
    Sm->sizeclass = (uint8_t)cls;
    Sm->elemsize = mhi_class_size[cls];
    Sm->divmul = mhi_class_divmul[cls];
    bool small_ok = true;
    for (size_t k = 0; k < mhi_class_nobjs[cls]; k += 7) {
        uintptr_t obj = Sm->base + k * Sm->elemsize;
        uintptr_t ob = 0;
        size_t osz = 0;
        if (!mhi_mlookup(obj + (k % Sm->elemsize), &ob, &osz, NULL) || ob != obj ||
            osz != Sm->elemsize)
            small_ok = false;
    }
    CHECK(small_ok);
    /* A GC span with no element size is one large object. */
    Sm->kind = MHI_KIND_GC;
    Sm->elemsize = 0;
    uintptr_t ob = 0;
    size_t osz = 0;
    CHECK(mhi_mlookup(Sm->base + 100, &ob, &osz, NULL));
    CHECK_EQ(ob, Sm->base);
    CHECK_EQ(osz, Sm->npages * P);
    mhi_heap_free(Sm);

    /* Freed spans are no longer found. */
    mhi_heap_free(S);
    CHECK(mhi_heap_span(sb + 5 * P) == NULL);
    CHECK(!mhi_mlookup(sb + 5 * P, NULL, NULL, NULL));
    mhi_heap_free(M);
    CHECK(mhi_heap_span(mb) == NULL);
    mhi_heap_free(g0);
    mhi_heap_free(g1);
    undrain(&d);
    VERIFY0();
}

static void test_needzero(void) {
    spanvec d = {0};
    enum { N = 8 };
    /* Pages fresh from the OS are known zero. */
    drain(&d);
    mhi_heap_stats b = stats();
    mhi_span *S = alloc_inuse(N);
    CHECK(stats().ngrow == b.ngrow + 1);
    CHECK_EQ(S->needzero, 0);
    CHECK(all_bytes((void *)S->base, N * P, 0));
    vec_push(&d, S);

    region(&d, N + 1);
    S = alloc_inuse(N);
    mhi_span *g = alloc_inuse(1);
    uintptr_t base = S->base;
    memset((void *)base, 0xab, N * P);
    mhi_heap_free(S);

    /* Dirty pages: needzero, unless zeroing was asked for. */
    b = stats();
    S = alloc_inuse(N);
    CHECK_EQ(S->base, base);
    CHECK_EQ(S->needzero, 1);
    CHECK_EQ(stats().heap_released, b.heap_released); /* nothing released was taken */
    mhi_heap_free(S);
    S = mhi_heap_alloc(N, MHI_SPAN_INUSE, MHI_KIND_LARGE, true);
    REQUIRE(S != NULL);
    CHECK_EQ(S->base, base);
    CHECK_EQ(S->needzero, 0);
    CHECK(all_bytes((void *)base, N * P, 0));
    memset((void *)base, 0xcd, N * P);
    mhi_heap_free(S);
    VERIFY0();

    /* Released pages read as zero and need no clearing. */
    b = stats();
    size_t rel = mh_release_memory();
    CHECK(rel >= N * P);
    mhi_heap_stats a = stats();
    CHECK_EQ(a.heap_released, b.heap_released + rel);
    CHECK_EQ(a.heap_released, a.heap_idle);
    CHECK_EQ(a.scavenged, b.scavenged + rel);
    CHECK_EQ(a.nscavenge, b.nscavenge + 1);
    S = alloc_inuse(N);
    CHECK_EQ(S->base, base);
    CHECK_EQ(S->needzero, 0);
    CHECK_EQ(stats().heap_released, a.heap_released - N * P);
    CHECK(all_bytes((void *)base, N * P, 0));
    mhi_heap_free(S);
    VERIFY0();

    /* Spans made of released and dirty pieces.  Three adjacent 64-page
     * pieces, each filled; bit i of `clean` says whether piece i is
     * released before the whole is freed and allocated again, with zeroing
     * asked for or not. */
    mhi_heap_free(g);
    undrain(&d);
    for (int zero = 0; zero < 2; zero++) {
        for (int clean = 1; clean < 7; clean++) {
            region(&d, 193);
            mhi_span *X[3];
            for (int i = 0; i < 3; i++) X[i] = alloc_inuse(64);
            g = alloc_inuse(1);
            drain(&d);
            uintptr_t xb = X[0]->base;
            REQUIRE(X[1]->base == xb + 64 * P && X[2]->base == xb + 128 * P);
            memset((void *)xb, 0x5a, 192 * P);
            for (int i = 0; i < 3; i++)
                if (clean & (1 << i)) mhi_heap_free(X[i]);
            mhi_heap_scavenge(0, SIZE_MAX);
            for (int i = 0; i < 3; i++)
                if (!(clean & (1 << i))) mhi_heap_free(X[i]);
            mhi_span *f = mhi_heap_page_span(xb);
            CHECK(f && f->state == MHI_SPAN_FREE && f->npages == 192);
            VERIFY0();
            b = stats();
            S = mhi_heap_alloc(192, MHI_SPAN_INUSE, MHI_KIND_LARGE, zero);
            REQUIRE(S != NULL);
            CHECK_EQ(S->base, xb);
            size_t nclean = (size_t)__builtin_popcount((unsigned)clean);
            CHECK_EQ(stats().heap_released, b.heap_released - nclean * 64 * P);
            if (zero) {
                CHECK_EQ(S->needzero, 0);
                CHECK(all_bytes((void *)xb, 192 * P, 0));
            } else {
                /* Some page is dirty: needzero.  The released pieces read
                 * as zero, the dirty ones kept their data (not scavenged:
                 * the delay is an hour). */
                CHECK_EQ(S->needzero, 1);
                for (int i = 0; i < 3; i++)
                    CHECK(all_bytes((void *)(xb + (size_t)i * 64 * P), 64 * P,
                                    (clean & (1 << i)) ? 0 : 0x5a));
            }
            mhi_heap_free(S);
            mhi_heap_free(g);
            undrain(&d);
            VERIFY0();
        }
    }
}

static void test_resize(void) {
    spanvec d = {0};
    region(&d, 20);
    mhi_span *S = alloc_inuse(10);
    mhi_span *g = alloc_inuse(1);
    mhi_span *M = mhi_heap_alloc(8, MHI_SPAN_MANUAL, MHI_KIND_NONE, false);
    REQUIRE(M != NULL);
    mhi_span *g2 = alloc_inuse(1);
    drain(&d);
    uintptr_t sb = S->base;
    REQUIRE(g->base == sb + 10 * P);
    S->needzero = 0; /* as if the owner had cleared it: see below */

    /* Shrink: the tail goes back to the heap as one free span. */
    mhi_heap_stats b = stats();
    CHECK(mhi_heap_resize(S, 4));
    mhi_heap_stats a = stats();
    CHECK_EQ(S->npages, 4);
    CHECK_EQ(S->base, sb);
    CHECK_EQ(a.heap_inuse, b.heap_inuse - 6 * P);
    CHECK_EQ(a.heap_idle, b.heap_idle + 6 * P);
    CHECK_EQ(a.heap_sys, b.heap_sys);
    CHECK_EQ(a.nspan_free, b.nspan_free + 1);
    CHECK_EQ(a.nspan_inuse, b.nspan_inuse);
    mhi_span *f = mhi_heap_page_span(sb + 4 * P);
    CHECK(f && f->state == MHI_SPAN_FREE && f->npages == 6);
    CHECK(mhi_heap_span(sb + 3 * P) == S);
    CHECK(mhi_heap_span(sb + 4 * P) == NULL);
    CHECK(mhi_heap_span(sb + 9 * P) == NULL);
    VERIFY0();

    /* Grow into part of the free span after it. */
    CHECK(mhi_heap_resize(S, 7));
    CHECK_EQ(S->npages, 7);
    a = stats();
    CHECK_EQ(a.heap_inuse, b.heap_inuse - 3 * P);
    CHECK_EQ(a.nspan_free, b.nspan_free + 1);
    f = mhi_heap_page_span(sb + 7 * P);
    CHECK(f && f->state == MHI_SPAN_FREE && f->npages == 3);
    CHECK(mhi_heap_span(sb + 6 * P + 5) == S);
    CHECK(mhi_heap_span(sb + 7 * P) == NULL);
    VERIFY0();
    /* Grow by more than is free: refused, nothing changes. */
    CHECK(!mhi_heap_resize(S, 11));
    CHECK_EQ(S->npages, 7);
    CHECK_EQ(stats().heap_inuse, a.heap_inuse);
    /* Grow into all of it. */
    CHECK(mhi_heap_resize(S, 10));
    CHECK_EQ(S->npages, 10);
    a = stats();
    CHECK_EQ(a.heap_inuse, b.heap_inuse);
    CHECK_EQ(a.heap_idle, b.heap_idle);
    CHECK_EQ(a.nspan_free, b.nspan_free);
    CHECK(mhi_heap_span(sb + 9 * P) == S);
    CHECK(mhi_heap_page_span(sb + 9 * P) == S);
    VERIFY0();
    /* The next span is in use: refused. */
    CHECK(!mhi_heap_resize(S, 11));
    CHECK_EQ(S->npages, 10);
    CHECK_EQ(stats().heap_inuse, a.heap_inuse);
    /* Same size: nothing to do; zero: refused. */
    CHECK(mhi_heap_resize(S, 10));
    CHECK(!mhi_heap_resize(S, 0));
    CHECK_EQ(S->npages, 10);
    VERIFY0();

    /* needzero after growing: pages that may hold data set it (the pages
     * grown into above had been part of S, so they count as dirty);
     * released pages leave it as it was. */
    CHECK_EQ(S->needzero, 1);
    memset((void *)sb, 0x11, 10 * P);
    S->needzero = 0; /* the owner has cleared the span */
    CHECK(mhi_heap_resize(S, 2));
    mhi_heap_scavenge(0, SIZE_MAX);
    b = stats();
    CHECK(mhi_heap_resize(S, 10));
    CHECK_EQ(stats().heap_released, b.heap_released - 8 * P);
    CHECK_EQ(S->needzero, 0);
    CHECK(all_bytes((void *)(sb + 2 * P), 8 * P, 0));
    memset((void *)sb, 0x11, 10 * P);
    CHECK(mhi_heap_resize(S, 2));
    CHECK(mhi_heap_resize(S, 10)); /* not released this time */
    CHECK_EQ(S->needzero, 1);
    VERIFY0();
    b = stats();

    /* Manual spans: the manual statistic follows. */
    b = stats();
    CHECK(mhi_heap_resize(M, 3));
    a = stats();
    CHECK_EQ(M->npages, 3);
    CHECK_EQ(M->state, MHI_SPAN_MANUAL);
    CHECK_EQ(a.heap_manual, b.heap_manual - 5 * P);
    CHECK_EQ(a.heap_inuse, b.heap_inuse - 5 * P);
    CHECK_EQ(a.nspan_manual, b.nspan_manual);
    CHECK(mhi_heap_span(M->base + 4 * P) == NULL);
    VERIFY0();
    CHECK(mhi_heap_resize(M, 8));
    a = stats();
    CHECK_EQ(a.heap_manual, b.heap_manual);
    CHECK_EQ(a.heap_inuse, b.heap_inuse);
    CHECK(mhi_heap_span(M->base + 7 * P) == M);
    VERIFY0();

    mhi_heap_free(S);
    mhi_heap_free(g);
    mhi_heap_free(M);
    mhi_heap_free(g2);
    undrain(&d);
    VERIFY0();
}

/* mhi_heap_alloc_aligned: the base is aligned, the span has exactly the
 * pages asked for, the pages cut off to align it go back to the heap. */
static void test_alloc_aligned(void) {
    static const struct {
        size_t npages, align;
    } cases[] = {
        {1, 0},         {1, P},          {1, 2 * P},      {3, 64 << 10},   {1, 64 << 10},
        {10, 1 << 20},  {256, 2 << 20},  {300, 2 << 20}, {1, 64 << 20},   {2, 128 << 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = cases[i].npages, align = cases[i].align;
        for (int manual = 0; manual < 2; manual++) {
            /* A 1-page span first, so the heap is not already aligned. */
            mhi_span *pad = alloc_inuse(1);
            mhi_heap_stats b = stats();
            mhi_span *s = mhi_heap_alloc_aligned(n, align, manual ? MHI_SPAN_MANUAL : MHI_SPAN_INUSE,
                                                 MHI_KIND_LARGE, false);
            REQUIRE(s != NULL);
            mhi_heap_stats a = stats();
            size_t want_align = align < P ? P : align;
            CHECK_EQ(s->base % want_align, 0);
            CHECK_EQ(s->npages, n);
            CHECK_EQ(s->state, manual ? MHI_SPAN_MANUAL : MHI_SPAN_INUSE);
            CHECK_EQ(s->kind, manual ? MHI_KIND_NONE : MHI_KIND_LARGE);
            CHECK(mhi_heap_span(s->base) == s);
            CHECK(mhi_heap_span(mhi_span_end(s) - 1) == s);
            CHECK(mhi_heap_span(s->base - 1) != s);
            CHECK(mhi_heap_span(mhi_span_end(s)) != s);
            CHECK(mhi_heap_page_span(s->base) == s);
            CHECK_EQ(a.heap_inuse, b.heap_inuse + n * P);
            CHECK_EQ(a.heap_manual, b.heap_manual + (manual ? n * P : 0));
            CHECK_EQ(a.nspan_inuse, b.nspan_inuse + !manual);
            CHECK_EQ(a.nspan_manual, b.nspan_manual + manual);
            CHECK_EQ(a.span_allocs, b.span_allocs + 1);
            CHECK_EQ(a.heap_idle, b.heap_idle + (a.heap_sys - b.heap_sys) - n * P);
            if (!s->needzero) /* known zero: check a word of every page */
                for (uintptr_t q = s->base; q < mhi_span_end(s); q += P)
                    if (*(uint64_t *)(q + P - 8) != 0) {
                        CHECK(!"needzero == 0 but the span holds data");
                        break;
                    }
            VERIFY0();
            memset((void *)s->base, 0x99, n * P);
            mhi_heap_free(s);
            mhi_heap_free(pad);
            a = stats();
            CHECK_EQ(a.heap_inuse, b.heap_inuse - P);
            CHECK_EQ(a.heap_manual, b.heap_manual);
            VERIFY0();
            /* Again, zeroed: the dirty pages read as zero. */
            s = mhi_heap_alloc_aligned(n, align, MHI_SPAN_INUSE, MHI_KIND_LARGE, true);
            REQUIRE(s != NULL);
            CHECK_EQ(s->base % want_align, 0);
            CHECK_EQ(s->needzero, 0);
            CHECK(all_bytes((void *)s->base, n * P, 0));
            mhi_heap_free(s);
            VERIFY0();
        }
    }
    /* Absurd sizes and alignments fail and change nothing. */
    mhi_heap_stats b = stats();
    CHECK(mhi_heap_alloc_aligned(0, P, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) == NULL);
    CHECK(mhi_heap_alloc_aligned(SIZE_MAX / 2, P, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) == NULL);
    CHECK(mhi_heap_alloc_aligned(1, (size_t)1 << 62, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) ==
          NULL);
    mhi_heap_stats a = stats();
    CHECK_EQ(a.heap_sys, b.heap_sys);
    CHECK_EQ(a.span_allocs, b.span_allocs);
    VERIFY0();
}

/* Statistics across a mixed sequence, against counts kept here. */
static void test_stats_sequence(void) {
    enum { N = 64 };
    mhi_span *s[N];
    uint64_t rng = 12345;
    mhi_heap_stats base = stats();
    uint64_t inuse = 0, manual = 0, ninuse = 0, nmanual = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 1 + check_rand(&rng) % 200;
        bool man = check_rand(&rng) & 1;
        s[i] = mhi_heap_alloc(n, man ? MHI_SPAN_MANUAL : MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
        REQUIRE(s[i] != NULL);
        inuse += n * P;
        manual += man ? n * P : 0;
        ninuse += !man;
        nmanual += man;
        mhi_heap_stats a = stats();
        CHECK_EQ(a.heap_inuse - base.heap_inuse, inuse);
        CHECK_EQ(a.heap_manual - base.heap_manual, manual);
        CHECK_EQ(a.nspan_inuse - base.nspan_inuse, ninuse);
        CHECK_EQ(a.nspan_manual - base.nspan_manual, nmanual);
        CHECK_EQ(a.heap_sys, a.heap_inuse + a.heap_idle);
        CHECK(a.heap_released <= a.heap_idle);
        CHECK_EQ(a.span_allocs - base.span_allocs, (uint64_t)i + 1);
    }
    VERIFY0();
    for (int i = N; i-- > 0;) {
        size_t j = check_rand(&rng) % (size_t)(i + 1);
        mhi_span *t = s[j];
        s[j] = s[i];
        bool man = t->state == MHI_SPAN_MANUAL;
        inuse -= t->npages * P;
        manual -= man ? t->npages * P : 0;
        ninuse -= !man;
        nmanual -= man;
        mhi_heap_free(t);
        mhi_heap_stats a = stats();
        CHECK_EQ(a.heap_inuse - base.heap_inuse, inuse);
        CHECK_EQ(a.heap_manual - base.heap_manual, manual);
        CHECK_EQ(a.nspan_inuse - base.nspan_inuse, ninuse);
        CHECK_EQ(a.nspan_manual - base.nspan_manual, nmanual);
        CHECK_EQ(a.heap_sys, a.heap_inuse + a.heap_idle);
        CHECK_EQ(a.span_frees - base.span_frees, (uint64_t)(N - i));
        if (i % 8 == 0) VERIFY0();
    }
    mhi_heap_stats a = stats();
    CHECK_EQ(a.heap_inuse, base.heap_inuse);
    CHECK_EQ(a.heap_manual, base.heap_manual);
    /* The public snapshot mirrors the internal one. */
    mh_stats_t ps;
    memset(&ps, 0xff, sizeof ps);
    CHECK_EQ(mh_stats_get(&ps, sizeof ps), sizeof ps);
    CHECK_EQ(ps.version, MH_STATS_VERSION);
    CHECK_EQ(ps.size, sizeof ps);
    CHECK_EQ(ps.heap_sys, a.heap_sys);
    CHECK_EQ(ps.heap_inuse, a.heap_inuse);
    CHECK_EQ(ps.heap_idle, a.heap_idle);
    CHECK_EQ(ps.heap_released, a.heap_released);
    CHECK_EQ(ps.nspan_free, a.nspan_free);
    CHECK_EQ(ps.ngrow, a.ngrow);
    CHECK(ps.reserved >= ps.heap_sys);
    CHECK(ps.meta_sys > 0);
    /* A short buffer gets only the head. */
    unsigned char small[12];
    memset(small, 0xee, sizeof small);
    CHECK_EQ(mh_stats_get((mh_stats_t *)(void *)small, 8), 8);
    CHECK_EQ(small[8], 0xee);
    VERIFY0();
}

/* ==== public page runs ==== */

static void test_pages_api(void) {
    spanvec d = {0};
    region(&d, 3);
    mhi_heap_stats b = stats();
    char *p = mh_pages_alloc(3);
    REQUIRE(p != NULL);
    CHECK_EQ((uintptr_t)p % MH_PAGE_SIZE, 0);
    CHECK_EQ(mh_pages_size(p), 3 * MH_PAGE_SIZE);
    CHECK_EQ(mh_pages_size(p + 1), 0);
    CHECK_EQ(mh_pages_size(p + MH_PAGE_SIZE), 0);
    CHECK_EQ(mh_pages_size(NULL), 0);
    CHECK_EQ(mh_pages_size(&b), 0);
    CHECK(all_bytes(p, 3 * MH_PAGE_SIZE, 0));
    mhi_heap_stats a = stats();
    CHECK_EQ(a.heap_manual, b.heap_manual + 3 * P);
    CHECK_EQ(a.heap_inuse, b.heap_inuse + 3 * P);
    CHECK_EQ(a.nspan_manual, b.nspan_manual + 1);
    mhi_span *s = mhi_heap_span((uintptr_t)p + 2 * P);
    CHECK(s && s->state == MHI_SPAN_MANUAL && s->base == (uintptr_t)p);
    memset(p, 0x77, 3 * MH_PAGE_SIZE);
    mh_pages_free(p);
    a = stats();
    CHECK_EQ(a.heap_manual, b.heap_manual);
    CHECK_EQ(a.heap_inuse, b.heap_inuse);
    CHECK_EQ(mh_pages_size(p), 0);
    VERIFY0();

    /* Reused dirty pages still read as zero. */
    char *q = mh_pages_alloc(3);
    REQUIRE(q != NULL);
    CHECK(q == p); /* the exact-size list hands back the same run */
    CHECK(all_bytes(q, 3 * MH_PAGE_SIZE, 0));
    char *r = mh_pages_alloc(700);
    REQUIRE(r != NULL);
    CHECK_EQ(mh_pages_size(r), 700 * MH_PAGE_SIZE);
    CHECK(all_bytes(r, 700 * MH_PAGE_SIZE, 0));
    /* An in-use (non-manual) span is not a page run. */
    mhi_span *t = alloc_inuse(2);
    CHECK_EQ(mh_pages_size((void *)t->base), 0);
    mhi_heap_free(t);
    mh_pages_free(q);
    mh_pages_free(r);
    undrain(&d);
    VERIFY0();

    /* Failures: NULL, ENOMEM, the heap unchanged. */
    b = stats();
    errno = 0;
    CHECK(mh_pages_alloc(0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_pages_alloc(SIZE_MAX / 2) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_pages_alloc(SIZE_MAX) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_pages_alloc((((size_t)1 << 47) >> 13) + 1) == NULL);
    CHECK_EQ(errno, ENOMEM);
    a = stats();
    CHECK_EQ(a.heap_sys, b.heap_sys);
    CHECK_EQ(a.heap_inuse, b.heap_inuse);
    CHECK_EQ(a.span_allocs, b.span_allocs);
    VERIFY0();
}

int main(void) {
    /* Freed pages must not be scavenged behind the tests' backs: a delay of
     * an hour keeps the scavenger's time check idle.  (Setting an option
     * does not grow the heap: test_growth still finds it fresh.) */
    REQUIRE(mh_option_set("scavenge_delay_ms", 3600000) == 0);
    test_growth(); /* wants the heap fresh */
    VERIFY0();
    test_alloc_basic();
    test_split_coalesce();
    test_exact_lists();
    test_best_fit();
    test_lookups();
    test_needzero();
    test_resize();
    test_alloc_aligned();
    test_stats_sequence();
    test_pages_api();
    VERIFY0();
    return check_done("test_pageheap");
}
