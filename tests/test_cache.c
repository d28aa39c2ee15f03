/* test_cache.c - the thread cache (cache.h) through mhi_cache_alloc,
 * mhi_cache_free, mhi_cache_flush and mhi_cache_release:
 *
 *   order     allocation takes the stash first (newest free first), then
 *             the current span's free list; a free goes to the stash, not
 *             to the span, even for the thread's own objects;
 *   remote    frees by another thread land on the span's xfree list (or in
 *             that thread's stash until it flushes) and come back on the
 *             owner's next slow path; a span on the full list that gets one
 *             is pushed onto the owner's notify stack, once, and goes back
 *             to avail on the owner's next slow path;
 *   overflow  a full stash grows up to its bound, then sends its older half
 *             back to the spans (their free counts rise by that much);
 *   keep      spans whose objects all came back stay on avail up to the
 *             keep limit; past it they go back to the page heap;
 *   keep_fixed  without the background thread the limit never grows
 *             (test_keep_decay covers its growth, with the thread);
 *   flush     every span goes to central, filed by free count; the cache is
 *             empty and still usable;
 *   fork      in the child of fork, full spans whose objects another thread
 *             freed meanwhile go back to avail, and an entirely free one is
 *             counted among the free spans the cache keeps;
 *   release   the thread's calls then go to the central lists directly.
 *
 * The background thread is off and the scavenger delay long, so nothing
 * but the calls made here changes the spans.  Each section uses its own
 * size class.  The verifiers (mhi_heap_verify, mhi_central_verify,
 * mhi_cache_verify) and a walk of the cache's lists here run after every
 * step. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "cache_impl.h"
#include "central.h"
#include "check.h"
#include "pageheap.h"
#include "pageheap_util.h"
#include "sizeclass.h"


/* Bytes of entirely free spans a new cache keeps (cache_impl.h). */
#define KEEP_BYTES MHI_EMPTY_KEEP

/* The stash limits of a new cache, recorded at its first allocation. */
static uint32_t first_lim[MHI_NUM_CLASSES];

static mhi_cache *me(void) { return mhi_tls_cache; }


/* Allocate n objects of class c (into objs unless NULL); false if one
 * allocation failed. */
static bool alloc_n(size_t c, void **objs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        void *p = mhi_cache_alloc(c);
        if (!p) return false;
        if (objs) objs[i] = p;
    }
    return true;
}

static bool on_freelist(const mhi_span *s, const void *p) {
    for (void *q = s->freelist; q; q = *(void **)q)
        if (q == p) return true;
    return false;
}

/* Free objects over the spans this thread owns for class c. */
static uint64_t owned_nfree(size_t c) {
    mhi_cache *k = me();
    uint64_t n = k->cur[c] != &mhi_span_empty ? k->cur[c]->nfree : 0;
    for (mhi_span *s = k->avail[c].first; s; s = s->next) n += s->nfree;
    for (mhi_span *s = k->full[c].first; s; s = s->next) n += s->nfree;
    return n;
}

static size_t owned_spans(size_t c) {
    mhi_cache *k = me();
    return (k->cur[c] != &mhi_span_empty) + k->avail[c].count + k->full[c].count;
}

static uint64_t central_freed(size_t c) {
    mhi_lock(&mhi_centrals[c].lock);
    uint64_t n = mhi_centrals[c].nspan_free;
    mhi_unlock(&mhi_centrals[c].lock);
    return n;
}

/* Every list of the calling thread's cache is what it claims to be:
 * stashes hold mhi_stash_count marked objects within the limit; cur, avail and
 * full spans are owned, say where they are and have sound free lists;
 * avail spans have free objects, the entirely free ones last, adding up
 * to empty_bytes; full spans have their notice armed or are on the notify
 * stack. */
static void cache_sound(const char *when) {
    mhi_cache *k = me();
    bool ok = true;
    size_t empty = 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES && ok; c++) {
        uint32_t n = 0;
        for (void *p = k->stash[c]; p && n <= mhi_stash_count(k, c); p = *(void **)p, n++)
            if (!mhi_free_marked(p)) ok = false;
        if (n != mhi_stash_count(k, c) || mhi_stash_count(k, c) > k->stash_lim[c]) ok = false;
        mhi_span *s = k->cur[c];
        if (s != &mhi_span_empty &&
            (owner_of(s) != k || s->where != MHI_WHERE_CUR || !freelist_sound(s)))
            ok = false;
        bool seen_empty = false;
        for (s = k->avail[c].first; s; s = s->next) {
            if (owner_of(s) != k || s->where != MHI_WHERE_AVAIL || !freelist_sound(s) ||
                s->nfree == 0)
                ok = false;
            if (s->nfree == s->nelems) {
                seen_empty = true;
                empty += s->nbytes;
            } else if (seen_empty) {
                ok = false; /* a partly used span after an entirely free one */
            }
        }
        for (s = k->full[c].first; s; s = s->next)
            if (owner_of(s) != k || s->where != MHI_WHERE_FULL || !freelist_sound(s) ||
                !((xfree_of(s) & MHI_XF_NOTIFY) || atomic_load(&s->onstack)))
                ok = false;
    }
    if (empty != k->empty_bytes) ok = false;
    CHECK(ok);
    if (!ok) fprintf(stderr, "  cache lists unsound %s\n", when);
    VERIFY0();
}

/* Give every span to central, and check that nothing is left. */
static void flush_all(void) {
    mhi_cache_flush();
    mhi_cache *k = me();
    bool empty = atomic_load(&k->notify) == NULL && k->empty_bytes == 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++)
        if (k->cur[c] != &mhi_span_empty || k->avail[c].count || k->full[c].count ||
            k->stash[c] || mhi_stash_count(k, c) || k->stash_lim[c] != first_lim[c])
            empty = false;
    CHECK(empty);
    VERIFY0();
}

/* ---- a thread that frees objects of this thread's spans ---- */

typedef struct {
    void **objs;
    size_t n;
    size_t cls_own;  /* with_cache: a class it allocates from first */
    bool with_cache; /* allocate first (a cache of its own), flush at the end */
    /* results, read after join */
    bool cache_made, stashed, flushed_out, first_stashed;
    uint32_t lim_after, nstash_after; /* without a cache: the class's stash at the end */
} freer_job;

static void *freer_main(void *arg) {
    freer_job *j = arg;
    void *own = NULL;
    if (j->with_cache) {
        own = mhi_cache_alloc(j->cls_own);
        if (!own) return NULL;
    }
    for (size_t i = 0; i < j->n; i++) mhi_cache_free(j->objs[i]);
    if (j->with_cache) {
        mhi_cache *k = mhi_tls_cache;
        size_t c = mhi_heap_span((uintptr_t)j->objs[0])->sizeclass;
        j->stashed = mhi_stash_count(k, c) == j->n && k->stash[c] == j->objs[j->n - 1];
        mhi_cache_free(own);
        mhi_cache_flush();
        j->flushed_out = k->stash[c] == NULL && mhi_stash_count(k, c) == 0;
        /* the cache goes at thread exit */
    } else {
        /* The first free made the cache and went back to its span (not
         * onto the new stash: no passive false sharing); the others wait
         * in its stash until the thread exits. */
        mhi_cache *k = mhi_tls_cache;
        size_t c = mhi_heap_span((uintptr_t)j->objs[0])->sizeclass;
        j->cache_made = !mhi_cache_is_static(k);
        j->stashed = j->cache_made && mhi_stash_count(k, c) == j->n - 1 &&
                     k->stash[c] == j->objs[j->n - 1];
        for (void *q = k->stash[c]; q; q = *(void **)q) j->first_stashed |= q == j->objs[0];
        j->lim_after = k->stash_lim[c];
        j->nstash_after = mhi_stash_count(k, c);
    }
    return NULL;
}

static void run_freer(freer_job *j) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, freer_main, j) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
}

/* ---- order ---- */

static void test_order(void) {
    size_t c = mhi_size_class(32);
    void *p0 = mhi_cache_alloc(c);
    REQUIRE(p0 != NULL);
    mhi_cache *k = me();
    REQUIRE(!mhi_cache_is_static(k)); /* the first allocation made the cache */
    memcpy(first_lim, k->stash_lim, sizeof first_lim);
    mhi_span *s = k->cur[c];
    REQUIRE(s != &mhi_span_empty);
    CHECK(owner_of(s) == k);
    CHECK_EQ(s->where, MHI_WHERE_CUR);
    CHECK(mhi_heap_span((uintptr_t)p0) == s);
    CHECK((uintptr_t)p0 == s->base); /* a fresh span, front first */
    CHECK(!mhi_free_marked(p0));
    CHECK_EQ(s->nfree, s->nelems - 1);
    void *p1 = mhi_cache_alloc(c);
    CHECK((uintptr_t)p1 == (uintptr_t)p0 + s->elemsize);
    CHECK_EQ(s->nfree, s->nelems - 2);
    cache_sound("after the first allocations");

    /* A free goes to the stash, not the span; the next allocation takes it. */
    mhi_cache_free(p0);
    CHECK_EQ(mhi_stash_count(k, c), 1);
    CHECK(k->stash[c] == p0);
    CHECK(mhi_free_marked(p0));
    CHECK_EQ(s->nfree, s->nelems - 2);
    CHECK(!on_freelist(s, p0));
    CHECK(mhi_cache_alloc(c) == p0);
    CHECK_EQ(mhi_stash_count(k, c), 0);
    CHECK(!mhi_free_marked(p0));
    CHECK_EQ(s->nfree, s->nelems - 2);

    /* Newest first. */
    mhi_cache_free(p0);
    mhi_cache_free(p1);
    CHECK_EQ(mhi_stash_count(k, c), 2);
    cache_sound("with two stashed");
    CHECK(mhi_cache_alloc(c) == p1);
    CHECK(mhi_cache_alloc(c) == p0);
    CHECK_EQ(mhi_stash_count(k, c), 0);

    /* Stash empty: the head of the current span's free list. */
    void *head = s->freelist;
    uint32_t nf = s->nfree;
    void *p2 = mhi_cache_alloc(c);
    CHECK(p2 == head);
    CHECK_EQ(s->nfree, nf - 1);
    CHECK(!mhi_free_marked(p2));
    CHECK(k->cur[c] == s);
    mhi_cache_free(p2);
    mhi_cache_free(p1);
    mhi_cache_free(p0);
    CHECK_EQ(mhi_stash_count(k, c), 3);
    cache_sound("after the order checks");
}

/* ---- remote frees ---- */

static void test_remote(void) {
    size_t c = mhi_size_class(80);
    mhi_cache *k = me();
    REQUIRE(owned_spans(c) == 0 && mhi_stash_count(k, c) == 0);
    enum { MAXO = 512 };
    static void *objs[MAXO];
    objs[0] = mhi_cache_alloc(c);
    REQUIRE(objs[0] != NULL);
    mhi_span *s = k->cur[c];
    uint32_t n = s->nelems;
    REQUIRE(n >= 16 && n <= MAXO);
    for (uint32_t i = 1; i < n; i++) objs[i] = mhi_cache_alloc(c);
    CHECK(k->cur[c] == s);
    CHECK_EQ(s->nfree, 0);
    bool mine = true;
    for (uint32_t i = 0; i < n; i++)
        if (mhi_heap_span((uintptr_t)objs[i]) != s) mine = false;
    REQUIRE(mine);

    /* A thread that never allocated frees five: its first free makes its
     * cache and goes straight onto xfree, the other four go to its stash,
     * and its exit sends them back onto xfree too (one run). */
    enum { K = 5 };
    freer_job j = {.objs = objs, .n = K};
    run_freer(&j);
    CHECK(j.cache_made);
    CHECK(j.stashed);
    CHECK(!j.first_stashed);
    CHECK_EQ(s->nfree, 0);
    CHECK_EQ(xfree_len(s), K);
    CHECK_EQ(xfree_of(s) & MHI_XF_TAGS, 0); /* cur: no notice armed */
    CHECK(atomic_load(&k->notify) == NULL);
    cache_sound("after remote frees into cur");

    /* The owner's next allocation runs out and collects them. */
    bool from_remote = true, unmarked = true;
    for (int i = 0; i < K; i++) {
        void *p = mhi_cache_alloc(c);
        bool found = false;
        for (int m = 0; m < K; m++) found |= p == objs[m];
        if (!found) from_remote = false;
        if (mhi_free_marked(p)) unmarked = false;
        if (i == 0) {
            CHECK_EQ(s->nfree, K - 1);
            CHECK_EQ(xfree_of(s), 0);
        }
    }
    CHECK(from_remote);
    CHECK(unmarked);
    CHECK(k->cur[c] == s);
    CHECK_EQ(s->nfree, 0);
    cache_sound("after collecting");

    /* One more: s is filed full with its notice armed; a new current span. */
    void *extra = mhi_cache_alloc(c);
    REQUIRE(extra != NULL);
    mhi_span *s2 = k->cur[c];
    CHECK(s2 != s && s2 != &mhi_span_empty);
    CHECK(mhi_heap_span((uintptr_t)extra) == s2);
    CHECK_EQ(s->where, MHI_WHERE_FULL);
    CHECK(on_list(&k->full[c], s));
    CHECK_EQ(xfree_of(s), MHI_XF_NOTIFY);
    CHECK_EQ(atomic_load(&s->onstack), 0);
    cache_sound("with a full span");

    /* A remote free into it: the span goes onto the notify stack. */
    j = (freer_job){.objs = &objs[K], .n = 1};
    run_freer(&j);
    CHECK(atomic_load(&k->notify) == s);
    CHECK_EQ(atomic_load(&s->onstack), 1);
    CHECK(s->xnext == NULL);
    CHECK_EQ(xfree_of(s) & MHI_XF_TAGS, 0); /* NOTIFY used up, FREEING done */
    CHECK_EQ(xfree_len(s), 1);
    CHECK_EQ(s->where, MHI_WHERE_FULL);
    CHECK_EQ(s->nfree, 0);
    /* A second one: no second notice. */
    j = (freer_job){.objs = &objs[K + 1], .n = 1};
    run_freer(&j);
    CHECK(atomic_load(&k->notify) == s);
    CHECK(s->xnext == NULL);
    CHECK_EQ(xfree_len(s), 2);
    cache_sound("with a notified span");

    /* The owner's next slow path (a first allocation in another class)
     * takes the notice: s back on avail with the two objects. */
    size_t other = mhi_size_class(208);
    REQUIRE(k->cur[other] == &mhi_span_empty && mhi_stash_count(k, other) == 0);
    void *o = mhi_cache_alloc(other);
    REQUIRE(o != NULL);
    CHECK(atomic_load(&k->notify) == NULL);
    CHECK_EQ(atomic_load(&s->onstack), 0);
    CHECK_EQ(s->where, MHI_WHERE_AVAIL);
    CHECK(k->avail[c].first == s);
    CHECK(!on_list(&k->full[c], s));
    CHECK_EQ(s->nfree, 2);
    CHECK_EQ(xfree_of(s), 0);
    CHECK(on_freelist(s, objs[K]) && on_freelist(s, objs[K + 1]));
    cache_sound("after the notice");

    /* A thread with a cache of its own: its frees wait in its stash, and
     * reach xfree when it flushes. */
    j = (freer_job){.objs = &objs[K + 2], .n = 2, .with_cache = true,
                    .cls_own = mhi_size_class(16)};
    run_freer(&j);
    CHECK(j.stashed);
    CHECK(j.flushed_out);
    CHECK_EQ(xfree_len(s), 2);
    CHECK_EQ(xfree_of(s) & MHI_XF_TAGS, 0);
    CHECK_EQ(s->nfree, 2);
    cache_sound("after a flushed remote stash");

    /* Run s2 out: s (avail) becomes current; its two free objects first,
     * then the two on xfree. */
    uint32_t left = s2->nfree;
    REQUIRE(alloc_n(c, NULL, left));
    void *q[4];
    for (int i = 0; i < 4; i++) q[i] = mhi_cache_alloc(c);
    CHECK(k->cur[c] == s);
    CHECK(s2->where == MHI_WHERE_FULL);
    CHECK((q[0] == objs[K] && q[1] == objs[K + 1]) || (q[0] == objs[K + 1] && q[1] == objs[K]));
    CHECK((q[2] == objs[K + 2] && q[3] == objs[K + 3]) ||
          (q[2] == objs[K + 3] && q[3] == objs[K + 2]));
    CHECK_EQ(s->nfree, 0);
    CHECK_EQ(xfree_of(s), 0);
    cache_sound("after the remote objects came back");
}

/* ---- stash overflow ---- */

/* ---- a thread that only frees ----
 * Its stash batches the frees but never grows: it holds at most its first
 * limit, and the rest went back to the owner's spans. */
static void test_consumer(void) {
    size_t c = mhi_size_class(256);
    enum { MAXO = 512 };
    static void *objs[MAXO];
    uint32_t lim = first_lim[c], n = 4 * lim;
    REQUIRE(n <= MAXO && n > lim);
    for (uint32_t i = 0; i < n; i++) REQUIRE((objs[i] = mhi_cache_alloc(c)) != NULL);
    freer_job j = {.objs = objs, .n = n};
    run_freer(&j);
    CHECK(j.cache_made);
    CHECK_EQ(j.lim_after, lim);
    CHECK(j.nstash_after <= lim);
    cache_sound("after a consumer's frees");
}

static void test_overflow(void) {
    size_t c = mhi_size_class(64);
    flush_all();
    mhi_cache *k = me();
    REQUIRE(owned_spans(c) == 0);
    enum { N = 3000 };
    static void *objs[N];
    REQUIRE(alloc_n(c, objs, N));
    /* Few enough spans that all of them fit under the keep limit once empty. */
    CHECK(owned_spans(c) * mhi_class_npages[c] * P <= KEEP_BYTES);
    cache_sound("after filling");
    uint64_t freed0 = central_freed(c);

    int grows = 0, sends = 0;
    bool bounded = true, plain_ok = true, grow_ok = true, send_ok = true, first_ok = true,
         returned_ok = true;
    for (int i = 0; i < N; i++) {
        uint32_t n0 = mhi_stash_count(k, c), l0 = k->stash_lim[c];
        uint64_t f0 = owned_nfree(c);
        mhi_cache_free(objs[i]);
        uint32_t n1 = mhi_stash_count(k, c), l1 = k->stash_lim[c];
        uint64_t f1 = owned_nfree(c);
        if (n1 > l1) bounded = false;
        if (l1 != l0) {
            grows++;
            if (!(n0 == l0 && l1 > l0 && l1 <= 2 * l0 && n1 == n0 + 1 && f1 == f0))
                grow_ok = false;
        } else if (n0 == l0) {
            /* The older half went back to the spans. */
            uint32_t keep = l0 / 2;
            if (!(n1 == keep + 1 && f1 == f0 + (l0 - keep))) send_ok = false;
            if (sends++ == 0) {
                /* Until now every free sat in the stash: it held objs[0..i),
                 * newest first; it keeps the newest half, and objs[i]. */
                if ((uint32_t)i != l0) first_ok = false;
                void *p = k->stash[c];
                for (int m = i; m >= i - (int)keep && first_ok; m--) {
                    if (p != objs[m]) first_ok = false;
                    else p = *(void **)p;
                }
                if (first_ok && p != NULL) first_ok = false;
                for (int m = 0; m < i - (int)keep; m++) {
                    mhi_span *s = mhi_heap_span((uintptr_t)objs[m]);
                    if (!mhi_free_marked(objs[m]) || !on_freelist(s, objs[m]))
                        returned_ok = false;
                }
            }
        } else if (!(n1 == n0 + 1 && f1 == f0)) {
            plain_ok = false;
        }
    }
    CHECK(grows > 0);
    CHECK(sends > 0);
    CHECK(bounded);
    CHECK(plain_ok);
    CHECK(grow_ok);
    CHECK(send_ok);
    CHECK(first_ok);
    CHECK(returned_ok);
    CHECK_EQ(central_freed(c), freed0); /* within the keep limit: nothing retired */
    /* What the stash and the spans hold adds up to everything freed. */
    CHECK_EQ(owned_nfree(c) + mhi_stash_count(k, c), (uint64_t)owned_spans(c) * mhi_class_nobjs[c]);
    cache_sound("after the overflow");

    /* The newest free is the next allocation. */
    CHECK(mhi_cache_alloc(c) == objs[N - 1]);
    CHECK(mhi_cache_alloc(c) == objs[N - 2]);
    cache_sound("after reallocating");
}

/* ---- the keep limit ---- */

static void test_keep(void) {
    size_t c = mhi_size_class(48);
    flush_all();
    mhi_cache *k = me();
    REQUIRE(owned_spans(c) == 0);
    CHECK_EQ(k->empty_bytes, 0);
    size_t span_bytes = (size_t)mhi_class_npages[c] * P;
    /* Twice the keep limit in spans. */
    size_t n = 2 * KEEP_BYTES / span_bytes * mhi_class_nobjs[c];
    void **objs = calloc(n, sizeof *objs);
    REQUIRE(objs != NULL);
    mhi_heap_stats b = stats();
    REQUIRE(alloc_n(c, objs, n));
    size_t taken = owned_spans(c);
    CHECK_EQ(taken, 2 * KEEP_BYTES / span_bytes);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse + taken);
    cache_sound("after filling");

    uint64_t freed0 = central_freed(c);
    b = stats();
    bool within = true, retire_ok = true;
    for (size_t i = 0; i < n; i++) {
        size_t e0 = k->empty_bytes;
        uint64_t r0 = central_freed(c);
        mhi_cache_free(objs[i]);
        size_t e1 = k->empty_bytes;
        if (e1 > KEEP_BYTES || e1 < e0) within = false;
        /* A span goes back to the page heap only when keeping it would
         * pass the limit.  (One free can empty several spans, when the
         * stash sends its older half back: those kept come first, and
         * empty_bytes only grows while objects come back.) */
        if (central_freed(c) != r0 && e1 + span_bytes <= KEEP_BYTES) retire_ok = false;
    }
    CHECK(within);
    CHECK(retire_ok);
    uint64_t retired = central_freed(c) - freed0;
    CHECK(retired > 0);
    CHECK_EQ(k->empty_bytes, KEEP_BYTES); /* full up: more spans emptied than kept */
    CHECK_EQ(owned_spans(c) + retired, taken);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse - retired);
    size_t empty = 0;
    for (mhi_span *s = k->avail[c].first; s; s = s->next) empty += s->nfree == s->nelems;
    CHECK_EQ(empty * span_bytes, KEEP_BYTES);
    cache_sound("after emptying");
    free(objs);
}

/* ---- the keep limit without the background thread ----
 * Cycles of allocating twice the limit's worth of objects and freeing
 * them all give spans back and take them again, which would grow the
 * limit where the background thread runs (test_keep_decay); here, where
 * nothing could shrink it again, the limit stays. */
static void test_keep_fixed(void) {
    size_t c = mhi_size_class(48);
    flush_all();
    mhi_cache *k = me();
    REQUIRE(owned_spans(c) == 0);
    size_t span_bytes = (size_t)mhi_class_npages[c] * P, per = mhi_class_nobjs[c];
    size_t n = 2 * KEEP_BYTES / span_bytes * per;
    void **objs = calloc(n, sizeof *objs);
    REQUIRE(objs != NULL);
    uint64_t freed0 = central_freed(c);
    for (int cycle = 0; cycle < 4; cycle++) {
        REQUIRE(alloc_n(c, objs, n));
        for (size_t i = 0; i < n; i++) mhi_cache_free(objs[i]);
    }
    CHECK(central_freed(c) > freed0); /* spans were given back */
    CHECK_EQ(k->empty_keep, KEEP_BYTES);
    CHECK_EQ(k->empty_bytes, KEEP_BYTES);
    CHECK_EQ(atomic_load(&mhi_empty_grown), 0);
    cache_sound("after cycles without the background thread");
    free(objs);
}

/* ---- flush ---- */

static void test_flush(void) {
    flush_all();
    mhi_cache *k = me();
    size_t c = mhi_size_class(96), ce = mhi_size_class(112);
    REQUIRE(owned_spans(c) == 0 && owned_spans(ce) == 0);
    /* Class c: one span with no free object (on full), and the current
     * span with five objects out.  Class ce: a span whose one object is in
     * the stash. */
    uint32_t n = mhi_class_nobjs[c];
    REQUIRE(alloc_n(c, NULL, n + 5));
    mhi_span *full = k->full[c].first, *cur = k->cur[c];
    REQUIRE(full != NULL && k->full[c].count == 1 && cur != &mhi_span_empty);
    CHECK_EQ(full->nfree, 0);
    CHECK_EQ(cur->nfree, n - 5);
    void *p = mhi_cache_alloc(ce);
    REQUIRE(p != NULL);
    mhi_cache_free(p);
    CHECK_EQ(mhi_stash_count(k, ce), 1);
    cache_sound("before the flush");

    ccount c0 = central_count(c), e0 = central_count(ce);
    mhi_heap_stats b = stats();
    flush_all();
    ccount c1 = central_count(c), e1 = central_count(ce);
    CHECK_EQ(full->where, MHI_WHERE_CFULL);
    CHECK(owner_of(full) == NULL);
    CHECK(xfree_of(full) & MHI_XF_ABANDONED);
    CHECK_EQ(cur->where, MHI_WHERE_CPARTIAL);
    CHECK(owner_of(cur) == NULL);
    CHECK(xfree_of(cur) & MHI_XF_ABANDONED);
    CHECK(on_list(&mhi_centrals[c].partial, cur));
    CHECK_EQ(c1.nfull, c0.nfull + 1);
    CHECK_EQ(c1.npartial, c0.npartial + 1);
    CHECK_EQ(c1.nspans, c0.nspans);
    /* The entirely free span went back to the page heap. */
    CHECK_EQ(e1.nspans, e0.nspans - 1);
    CHECK_EQ(e1.nspan_free, e0.nspan_free + 1);
    CHECK_EQ(e1.npartial, e0.npartial);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse - 1);
    CHECK(mhi_free_marked(p));

    /* Still usable: the next allocation takes the partial span back. */
    void *q = mhi_cache_alloc(c);
    REQUIRE(q != NULL);
    CHECK(k->cur[c] == cur);
    CHECK(owner_of(cur) == k);
    CHECK_EQ(cur->where, MHI_WHERE_CUR);
    CHECK_EQ(xfree_of(cur), 0);
    CHECK(mhi_heap_span((uintptr_t)q) == cur);
    CHECK_EQ(central_count(c).npartial, c0.npartial);
    cache_sound("after the flush");
}

/* ---- release ---- */

static void test_release(void) {
    size_t c = mhi_size_class(96);
    mhi_cache_counts_t n0, n1;
    mhi_cache_counts(&n0);
    mhi_cache *k = me();
    REQUIRE(k->cur[c] != &mhi_span_empty);
    mhi_span *s = k->cur[c];
    mhi_cache_release();
    CHECK(mhi_tls_cache == &mhi_cache_dead);
    mhi_cache_counts(&n1);
    CHECK_EQ(n1.live, n0.live - 1);
    CHECK_EQ(n1.pool, n0.pool + 1); /* kept for the next thread */
    CHECK(owner_of(s) == NULL);
    CHECK_EQ(s->where, MHI_WHERE_CPARTIAL);
    VERIFY0();

    /* Allocation: from central's partial span, no cache made. */
    REQUIRE(mhi_centrals[c].partial.first == s);
    uint32_t nf = s->nfree;
    void *p = mhi_cache_alloc(c);
    REQUIRE(p != NULL);
    CHECK(mhi_tls_cache == &mhi_cache_dead);
    CHECK(mhi_heap_span((uintptr_t)p) == s);
    CHECK(!mhi_free_marked(p));
    CHECK_EQ(s->nfree, nf - 1);
    CHECK(owner_of(s) == NULL);
    /* Free: straight back to the unowned span, nothing stashed. */
    mhi_cache_free(p);
    CHECK(mhi_tls_cache == &mhi_cache_dead);
    CHECK_EQ(s->nfree, nf);
    CHECK(mhi_free_marked(p));
    CHECK(on_freelist(s, p));
    CHECK(mhi_cache_dead.stash[c] == NULL);
    CHECK_EQ(mhi_stash_count(&mhi_cache_dead, c), 0);
    CHECK(freelist_sound(s));
    VERIFY0();

    /* A class with no partial span: a new one, unowned. */
    size_t c2 = mhi_size_class(4096);
    REQUIRE(mhi_centrals[c2].partial.count == 0);
    mhi_heap_stats b = stats();
    void *r = mhi_cache_alloc(c2);
    REQUIRE(r != NULL);
    mhi_span *t = mhi_heap_span((uintptr_t)r);
    REQUIRE(t != NULL);
    CHECK_EQ(t->sizeclass, c2);
    CHECK(owner_of(t) == NULL);
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse + 1);
    mhi_cache_free(r); /* the span's only object out: back to the page heap */
    CHECK_EQ(stats().nspan_inuse, b.nspan_inuse);
    CHECK(mhi_tls_cache == &mhi_cache_dead);
    VERIFY0();
}

/* Another thread frees the objects handed to it, then exits (flushing its
 * stash into the owner's spans' xfree lists). */
static void *free_all(void *arg) {
    void **objs = arg;
    for (int i = 0; objs[i]; i++) mhi_cache_free(objs[i]);
    mhi_cache_release();
    return NULL;
}

static void test_fork(void) {
    size_t c = mhi_size_class(1000);
    uint32_t per = mhi_class_nobjs[c];
    /* Three spans' worth: the first two fill and are filed as full. */
    void *objs[3 * 64 + 1] = {0};
    REQUIRE(3 * per <= 3 * 64);
    for (uint32_t i = 0; i < 3 * per; i++) REQUIRE((objs[i] = mhi_cache_alloc(c)) != NULL);
    mhi_span *first = mhi_heap_span((uintptr_t)objs[0]);
    REQUIRE(first != NULL);
    CHECK_EQ(first->where, MHI_WHERE_FULL);
    /* Every object of the first two spans is freed by another thread. */
    void *gone[2 * 64 + 1] = {0};
    memcpy(gone, objs, 2 * per * sizeof *objs);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, free_all, gone) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child repaired the full spans: those now entirely free are
         * on avail and counted as kept free bytes (the verifier checks the
         * count), and allocating from them keeps the count right. */
        size_t errors = mhi_heap_verify() + mhi_central_verify() + mhi_cache_verify();
        bool on_avail = first->where == MHI_WHERE_AVAIL && first->nfree == first->nelems;
        for (uint32_t i = 0; i < 2 * per; i++)
            if (!mhi_cache_alloc(c)) errors++;
        errors += mhi_cache_verify();
        _exit(errors == 0 && on_avail ? 0 : 1);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (uint32_t i = 2 * per; i < 3 * per; i++) mhi_cache_free(objs[i]);
    VERIFY0();
}

int main(void) {
    REQUIRE(mh_option_set("background", 0) == 0);
    REQUIRE(mh_option_set("scavenge_delay_ms", 3600000) == 0);
    CHECK(mhi_tls_cache == &mhi_cache_empty); /* no cache before the first allocation */
    test_order();
    test_remote();
    test_consumer();
    test_overflow();
    test_keep();
    test_keep_fixed();
    test_flush();
    test_fork();
    test_release();
    VERIFY0();
    return check_done("test_cache");
}
