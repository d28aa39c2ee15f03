/* test_pageheap_model.c - randomized test of the page heap against a
 * reference model.
 *
 * The model is the set of live spans (base, npages), kept sorted by base.
 * Random operations:
 *   - allocate 1..512 pages (mostly small), now and then 513..8192, as
 *     INUSE spans (kind LARGE), MANUAL spans, or public page runs
 *     (mh_pages_alloc), with or without zeroing, a few of them aligned
 *     (mhi_heap_alloc_aligned, 16 KiB .. 2 MiB);
 *   - free a random live span (in random order);
 *   - look up random interior addresses of live spans (mhi_heap_span
 *     must give that span, mhi_mlookup its base and size, or nothing for
 *     manual spans) and random addresses of freed spans (whatever the model
 *     says is there now: a live span or nothing);
 *   - resize a random live span (shrink always works; grow must fail when
 *     the model has a span right after it);
 *   - scavenge everything or up to a random goal.
 * Checked on every operation: a new span never overlaps a live one;
 * stats.inuse / manual / span counts equal the model's; each span's first,
 * last and one middle word carry a tag written when it was allocated and
 * checked before it is freed or resized; a span the heap says needs no
 * zeroing (or that was asked zeroed) reads zero at those words.
 * mh_heap_verify() runs every 5,000 operations and at the end.
 *
 * MHEAP_TEST_OPS sets the number of operations (default 1,000,000),
 * MHEAP_TEST_SEED the seed, MHEAP_TEST_MAX_PAGES the cap on live pages
 * (default 64k: 512 MiB of address space).  Only three words per span are
 * written and zeroing is kept to short spans, so the resident set stays
 * small; scavenges return the touched pages.  (tests/pageheap_model.cmake
 * lowers the operations and the cap under TSan, whose shadow memory grows
 * with the heap.) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mheap.h"
#include "pageheap.h"

#define P MHI_PAGE_SIZE
static size_t CAP_PAGES = (size_t)64 << 10; /* MHEAP_TEST_MAX_PAGES */
#define VERIFY_EVERY 5000
#define FREED_RING 256

/* Stop after a few failures: a broken heap fails millions of checks. */
#define MCHECK(cond)                                                           \
    do {                                                                       \
        CHECK(cond);                                                           \
        if (!(cond)) failed_at(op);                                            \
    } while (0)
#define MCHECK_EQ(a, b)                                                        \
    do {                                                                       \
        unsigned long long mca_ = (unsigned long long)(a),                     \
                           mcb_ = (unsigned long long)(b);                     \
        CHECK_EQ(mca_, mcb_);                                                  \
        if (mca_ != mcb_) failed_at(op);                                       \
    } while (0)

static unsigned long long op;

static void failed_at(unsigned long long at) {
    fprintf(stderr, "  (at operation %llu)\n", at);
    if (check_nfail >= 20) {
        fprintf(stderr, "too many failures, stopping\n");
        exit(check_done("test_pageheap_model"));
    }
}

enum { K_INUSE, K_MANUAL, K_PAGES };

typedef struct {
    uintptr_t base;
    size_t npages;
    mhi_span *s;
    uint64_t tag;
    size_t mid;   /* byte offset of the middle tag word */
    uint8_t kind; /* K_* */
} live_t;

static live_t *live;
static size_t nlive, live_cap;
static size_t model_pages, model_manual, model_ninuse, model_nmanual;

static inline uintptr_t end_of(const live_t *l) { return l->base + l->npages * P; }

/* Index of the first live span with base > a. */
static size_t upper_bound(uintptr_t a) {
    size_t lo = 0, hi = nlive;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (live[mid].base <= a) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The live span containing a, or -1. */
static long model_find(uintptr_t a) {
    size_t i = upper_bound(a);
    if (i == 0) return -1;
    return a < end_of(&live[i - 1]) ? (long)(i - 1) : -1;
}

static void model_account(const live_t *l, int sign) {
    model_pages += (size_t)sign * l->npages;
    if (l->kind != K_INUSE) {
        model_manual += (size_t)sign * l->npages;
        model_nmanual += (size_t)sign;
    } else {
        model_ninuse += (size_t)sign;
    }
}

/* Insert, checking that the new span overlaps no live span. */
static void model_insert(const live_t *l) {
    size_t i = upper_bound(l->base);
    MCHECK(i == 0 || end_of(&live[i - 1]) <= l->base);
    MCHECK(i == nlive || live[i].base >= end_of(l));
    if (nlive == live_cap) {
        live_cap = live_cap ? 2 * live_cap : 1024;
        live = realloc(live, live_cap * sizeof *live);
        REQUIRE(live != NULL);
    }
    memmove(&live[i + 1], &live[i], (nlive - i) * sizeof *live);
    live[i] = *l;
    nlive++;
    model_account(l, 1);
}

static void model_remove(size_t i) {
    model_account(&live[i], -1);
    memmove(&live[i], &live[i + 1], (nlive - i - 1) * sizeof *live);
    nlive--;
}

static inline uint64_t *word_at(uintptr_t a) { return (uint64_t *)a; }

static uint64_t tag_of(const live_t *l, int which) {
    return (l->tag ^ (l->base * 0x9e3779b97f4a7c15ULL)) + (uint64_t)which * 0x51ed27;
}

static void write_tags(const live_t *l) {
    *word_at(l->base) = tag_of(l, 0);
    *word_at(l->base + l->mid) = tag_of(l, 1);
    *word_at(end_of(l) - 8) = tag_of(l, 2);
}

static void check_tags(const live_t *l) {
    MCHECK_EQ(*word_at(l->base), tag_of(l, 0));
    MCHECK_EQ(*word_at(l->base + l->mid), tag_of(l, 1));
    MCHECK_EQ(*word_at(end_of(l) - 8), tag_of(l, 2));
}

static uint64_t rng;
static uint64_t rnd(uint64_t n) { return check_rand(&rng) % n; }

/* A word strictly between the first and the last word of n pages. */
static size_t rand_mid(size_t n) { return 8 + (size_t)rnd((n * P - 16) / 8) * 8; }

static size_t rand_size(void) {
    uint64_t r = rnd(1000);
    if (r < 20) return 513 + rnd(8192 - 512);
    r = rnd(100);
    if (r < 50) return 1 + rnd(8);
    if (r < 80) return 9 + rnd(119);
    return 128 + rnd(385);
}

static uint64_t next_tag = 1;
static uintptr_t freed[FREED_RING][2]; /* base, end */
static size_t nfreed;

/* What the heap says about address a must match the model. */
static void check_address(uintptr_t a) {
    long i = model_find(a);
    mhi_span *s = mhi_heap_span(a);
    uintptr_t ob = 1;
    size_t osz = 1;
    mhi_span *osp = (mhi_span *)1;
    bool found = mhi_mlookup(a, &ob, &osz, &osp);
    if (i < 0) {
        MCHECK(s == NULL);
        MCHECK(!found);
        MCHECK(ob == 0 && osz == 0 && osp == NULL);
        MCHECK(!mhi_mlookup(a, NULL, NULL, NULL));
        return;
    }
    const live_t *l = &live[i];
    MCHECK(s == l->s);
    if (l->kind == K_INUSE) {
        MCHECK(found);
        MCHECK_EQ(ob, l->base);
        MCHECK_EQ(osz, l->npages * P);
        MCHECK(osp == l->s);
        MCHECK(mhi_mlookup(a, NULL, NULL, NULL));
        MCHECK_EQ(mh_pages_size((void *)l->base), 0);
    } else {
        MCHECK(!found);
        MCHECK(!mhi_mlookup(a, NULL, NULL, NULL));
        MCHECK_EQ(mh_pages_size((void *)l->base), l->npages * P);
    }
}

static unsigned long long naligned;

static void do_alloc(void) {
    size_t n = rand_size();
    size_t align = P;
    if (model_pages + n > CAP_PAGES) return;
    live_t l = {0};
    /* Zeroing touches every page that may be dirty: keep it to rare, short
     * spans (page runs are always zeroed), so that the run stays fast and
     * its resident set small. */
    uint64_t k = rnd(100);
    l.kind = k < 70 ? K_INUSE : k < 92 || n > 64 ? K_MANUAL : K_PAGES;
    bool zero = l.kind == K_PAGES || (n <= 64 && rnd(100) < 5);
    if (l.kind == K_PAGES) {
        void *p = mh_pages_alloc(n);
        REQUIRE(p != NULL);
        l.s = mhi_heap_span((uintptr_t)p);
        MCHECK(l.s != NULL && l.s->base == (uintptr_t)p);
        if (!l.s) return;
    } else if (rnd(100) < 3) {
        /* Aligned: 16 KiB .. 2 MiB. */
        align = (size_t)P << (1 + rnd(8));
        l.s = mhi_heap_alloc_aligned(n, align, l.kind == K_INUSE ? MHI_SPAN_INUSE : MHI_SPAN_MANUAL,
                                     MHI_KIND_LARGE, zero);
        REQUIRE(l.s != NULL);
        naligned++;
    } else {
        l.s = mhi_heap_alloc(n, l.kind == K_INUSE ? MHI_SPAN_INUSE : MHI_SPAN_MANUAL,
                             MHI_KIND_LARGE, zero);
        REQUIRE(l.s != NULL);
    }
    mhi_span *s = l.s;
    l.base = s->base;
    l.npages = n;
    l.tag = next_tag++;
    l.mid = rand_mid(n);
    MCHECK_EQ(s->npages, n);
    MCHECK_EQ(s->base % align, 0);
    MCHECK_EQ(s->state, l.kind == K_INUSE ? MHI_SPAN_INUSE : MHI_SPAN_MANUAL);
    if (zero) MCHECK_EQ(s->needzero, 0);
    if (!s->needzero) {
        /* Known zero: the words the tags go to (old tags of freed spans
         * included) must read zero. */
        MCHECK_EQ(*word_at(l.base), 0);
        MCHECK_EQ(*word_at(l.base + l.mid), 0);
        MCHECK_EQ(*word_at(end_of(&l) - 8), 0);
    }
    model_insert(&l);
    write_tags(&l);
    MCHECK(mhi_heap_span(l.base) == s);
    MCHECK(mhi_heap_span(end_of(&l) - 1) == s);
}

static void do_free(void) {
    if (!nlive) return;
    size_t i = (size_t)rnd(nlive);
    live_t l = live[i];
    check_tags(&l);
    model_remove(i);
    if (l.kind == K_PAGES) mh_pages_free((void *)l.base);
    else mhi_heap_free(l.s);
    freed[nfreed % FREED_RING][0] = l.base;
    freed[nfreed % FREED_RING][1] = end_of(&l);
    nfreed++;
    /* Nothing was allocated since: the pages are free. */
    MCHECK(mhi_heap_span(l.base) == NULL);
    MCHECK(mhi_heap_span(end_of(&l) - 1) == NULL);
    MCHECK(!mhi_mlookup(l.base + l.mid, NULL, NULL, NULL));
    mhi_span *f = mhi_heap_page_span(l.base);
    MCHECK(f && f->state == MHI_SPAN_FREE && f->base <= l.base &&
           mhi_span_end(f) >= end_of(&l));
}

static void do_lookup(void) {
    if (nlive && rnd(4) != 0) {
        const live_t *l = &live[rnd(nlive)];
        check_address(l->base + (uintptr_t)rnd(l->npages * P));
        check_address(l->base);
        check_address(end_of(l) - 1);
    } else if (nfreed) {
        size_t k = (size_t)rnd(nfreed < FREED_RING ? nfreed : FREED_RING);
        uintptr_t b = freed[k][0], e = freed[k][1];
        check_address(b + (uintptr_t)rnd(e - b));
    }
}

static void do_resize(void) {
    if (!nlive) return;
    size_t i = (size_t)rnd(nlive);
    live_t *l = &live[i];
    check_tags(l);
    mhi_heap_stats b;
    mhi_heap_stats_get(&b);
    if (l->npages > 1 && rnd(2)) {
        size_t n = 1 + (size_t)rnd(l->npages - 1);
        bool ok = mhi_heap_resize(l->s, n);
        MCHECK(ok); /* shrinking always works */
        if (!ok) return;
        model_account(l, -1);
        uintptr_t old_end = end_of(l);
        l->npages = n;
        model_account(l, 1);
        MCHECK_EQ(l->s->npages, n);
        MCHECK(mhi_heap_span(end_of(l)) == NULL);
        MCHECK(mhi_heap_span(old_end - 1) == NULL);
    } else {
        size_t more = 1 + (size_t)rnd(64);
        if (model_pages + more > CAP_PAGES) return;
        bool blocked = i + 1 < nlive && live[i + 1].base == end_of(l);
        uint8_t nz = l->s->needzero;
        bool ok = mhi_heap_resize(l->s, l->npages + more);
        if (blocked) MCHECK(!ok);
        if (!ok) {
            MCHECK_EQ(l->s->npages, l->npages);
            return;
        }
        /* The grown pages must not belong to a live span. */
        MCHECK(i + 1 == nlive || live[i + 1].base >= end_of(l) + more * P);
        uintptr_t old_end = end_of(l);
        model_account(l, -1);
        l->npages += more;
        model_account(l, 1);
        MCHECK_EQ(l->s->npages, l->npages);
        MCHECK(mhi_heap_span(end_of(l) - 1) == l->s);
        MCHECK(mhi_heap_span(old_end) == l->s);
        /* needzero only ever gets set by growing; if it stayed clear, the
         * new pages are zero. */
        MCHECK(l->s->needzero >= nz);
        if (!l->s->needzero) MCHECK_EQ(*word_at(end_of(l) - 8), 0);
    }
    /* The middle tag may now be past (or at) the last word. */
    if (l->mid >= l->npages * P - 8) l->mid = rand_mid(l->npages);
    write_tags(l);
}

static void do_scavenge(bool all) {
    mhi_heap_stats b, a;
    mhi_heap_stats_get(&b);
    size_t goal = all ? SIZE_MAX : (size_t)(1 + rnd(1024)) * P;
    size_t got = mhi_heap_scavenge(0, goal);
    mhi_heap_stats_get(&a);
    MCHECK_EQ(a.heap_released - b.heap_released, got);
    MCHECK_EQ(a.scavenged - b.scavenged, got);
    MCHECK_EQ(got % P, 0);
    uint64_t dirty = b.heap_idle - b.heap_released;
    if (all) {
        MCHECK_EQ(got, dirty);
        MCHECK_EQ(a.heap_released, a.heap_idle);
    } else {
        /* At least the goal (or everything there was), at most one 64-page
         * group more than the goal. */
        MCHECK(got >= (goal < dirty ? goal : dirty));
        MCHECK(got < goal + 64 * P);
    }
}

static void check_stats(void) {
    mhi_heap_stats st;
    mhi_heap_stats_get(&st);
    MCHECK_EQ(st.heap_inuse, model_pages * P);
    MCHECK_EQ(st.heap_manual, model_manual * P);
    MCHECK_EQ(st.nspan_inuse, model_ninuse);
    MCHECK_EQ(st.nspan_manual, model_nmanual);
    MCHECK_EQ(st.heap_sys, st.heap_inuse + st.heap_idle);
    MCHECK(st.heap_released <= st.heap_idle);
}

int main(void) {
    rng = check_seed(0x6d6f64656cULL);
    if (!rng) rng = 1;
    unsigned long long nops = 1000000;
    const char *e = getenv("MHEAP_TEST_OPS");
    if (e) nops = strtoull(e, NULL, 0);
    e = getenv("MHEAP_TEST_MAX_PAGES");
    if (e) CAP_PAGES = strtoull(e, NULL, 0);
    REQUIRE(CAP_PAGES >= 8192);
    fprintf(stderr, "ops=%llu max live pages=%zu (set MHEAP_TEST_OPS, MHEAP_TEST_MAX_PAGES)\n",
            nops, CAP_PAGES);

    mhi_heap_stats start;
    mhi_heap_stats_get(&start);
    REQUIRE(start.heap_inuse == 0);
    CHECK_EQ(mh_heap_verify(), 0);
    unsigned long long counts[6] = {0};

    for (op = 0; op < nops; op++) {
        uint64_t r = rnd(10000);
        if (r < 4500) {
            if (model_pages + 512 <= CAP_PAGES || rnd(4) == 0) {
                do_alloc();
                counts[0]++;
            } else {
                do_free();
                counts[1]++;
            }
        } else if (r < 8000) {
            do_free();
            counts[1]++;
        } else if (r < 9500) {
            do_lookup();
            counts[2]++;
        } else if (r < 9950) {
            do_resize();
            counts[3]++;
        } else if (r < 9995) {
            do_scavenge(false);
            counts[4]++;
        } else {
            do_scavenge(true);
            counts[5]++;
        }
        check_stats();
        if ((op + 1) % VERIFY_EVERY == 0) MCHECK_EQ(mh_heap_verify(), 0);
    }
    MCHECK_EQ(mh_heap_verify(), 0);
    fprintf(stderr,
            "allocs %llu frees %llu lookups %llu resizes %llu partial scavenges %llu "
            "full scavenges %llu; %llu allocations aligned; live spans %zu, pages %zu\n",
            counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], naligned, nlive,
            model_pages);

    /* Free everything: the heap is back to empty. */
    while (nlive) do_free();
    check_stats();
    mhi_heap_stats end;
    mhi_heap_stats_get(&end);
    CHECK_EQ(end.heap_inuse, 0);
    CHECK_EQ(end.heap_manual, 0);
    CHECK_EQ(end.nspan_inuse, 0);
    CHECK_EQ(end.nspan_manual, 0);
    CHECK_EQ(end.heap_idle, end.heap_sys);
    CHECK(mh_release_memory() == end.heap_idle - end.heap_released);
    CHECK_EQ(mh_heap_verify(), 0);
    mh_stats_t ps;
    mh_stats_get(&ps, sizeof ps);
    fprintf(stderr, "heap sys %.1f MiB, grew %llu times, %llu scavenger passes\n",
            ps.heap_sys / 1048576.0, (unsigned long long)ps.ngrow,
            (unsigned long long)ps.nscavenge);
    free(live);
    return check_done("test_pageheap_model");
}
