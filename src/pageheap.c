/* pageheap.c - the page heap: span allocation, coalescing, growth, lookups,
 * scavenging, statistics and the verifier.  See pageheap.h for the
 * structures and the lock. */
#include "pageheap.h"

#include <stddef.h>
#include <string.h>

#include "print.h"

mhi_heap mhi_heap_ = {.lock = MHI_LOCK_INIT, .scavenge_delay_ms = MHI_SCAVENGE_DELAY_MS_DEFAULT};

#define H (&mhi_heap_)
#define PAGE_ADDR(a) ((a) & ~(MHI_PAGE_SIZE - 1))

static void heap_init_locked(void) {
    if (H->inited) return;
    mhi_fixalloc_init(&H->spanalloc, sizeof(mhi_span), &H->span_sys);
    H->sweepgen = 0;
    H->next_scavenge_ms = mhi_os_millitime() + H->scavenge_delay_ms;
    H->inited = true;
}

void mhi_heap_set_scavenge_delay(int64_t ms) {
    mhi_lock(&H->lock);
    H->scavenge_delay_ms = ms < 0 ? 0 : ms;
    H->next_scavenge_ms = 0;
    mhi_unlock(&H->lock);
}

/* ---- bitmaps and the map over page ranges (ranges may cross arenas) ---- */

enum { BM_FREE, BM_SCAV, BM_INUSE, BM_REL };

static uint64_t *bitmap_of(mhi_arena *ar, int which) {
    switch (which) {
    case BM_FREE: return ar->free;
    case BM_SCAV: return ar->scav;
    case BM_REL: return ar->rel;
    default: return ar->inuse;
    }
}

/* Apply op to the bits of pages [a, a + npages*PAGE): set, clear, or clear
 * and count the bits that were set (returned).  The lowest and highest
 * page whose bit was set are stored in *lo / *hi when counting. */
enum { OP_SET, OP_CLEAR, OP_TAKE };

static size_t bits_range(uintptr_t a, size_t npages, int which, int op, uintptr_t *lo,
                         uintptr_t *hi) {
    size_t count = 0;
    while (npages > 0) {
        mhi_arena *ar = mhi_arena_must(a);
        uint64_t *bm = bitmap_of(ar, which);
        size_t p = mhi_arena_page(a);
        size_t n = MHI_ARENA_PAGES - p;
        if (n > npages) n = npages;
        size_t end = p + n;
        while (p < end) {
            size_t w = p / 64, b = p % 64;
            size_t k = 64 - b;
            if (k > end - p) k = end - p;
            uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << b;
            switch (op) {
            case OP_SET: bm[w] |= mask; break;
            case OP_CLEAR: bm[w] &= ~mask; break;
            default: {
                uint64_t got = bm[w] & mask;
                if (got) {
                    count += (size_t)__builtin_popcountll(got);
                    uintptr_t wbase = ar->base + ((uintptr_t)w * 64 << MHI_PAGE_SHIFT);
                    uintptr_t first = wbase + ((uintptr_t)__builtin_ctzll(got) << MHI_PAGE_SHIFT);
                    uintptr_t last = wbase + ((uintptr_t)(63 - __builtin_clzll(got)) << MHI_PAGE_SHIFT);
                    if (!*lo || first < *lo) *lo = first;
                    if (last > *hi) *hi = last;
                }
                bm[w] &= ~mask;
            }
            }
            p += k;
        }
        a += (uintptr_t)n << MHI_PAGE_SHIFT;
        npages -= n;
    }
    return count;
}

static void bits_set(uintptr_t a, size_t npages, int which) {
    bits_range(a, npages, which, OP_SET, NULL, NULL);
}
static void bits_clear(uintptr_t a, size_t npages, int which) {
    bits_range(a, npages, which, OP_CLEAR, NULL, NULL);
}

static inline void map_set(uintptr_t a, mhi_span *s) {
    mhi_arena *ar = mhi_arena_must(a);
    atomic_store_explicit(&ar->spans[mhi_arena_page(a)], s, memory_order_release);
}

/* Map every page of s to s. */
static void map_all(mhi_span *s) {
    uintptr_t a = s->base;
    size_t npages = s->npages;
    while (npages > 0) {
        mhi_arena *ar = mhi_arena_must(a);
        size_t p = mhi_arena_page(a);
        size_t n = MHI_ARENA_PAGES - p;
        if (n > npages) n = npages;
        for (size_t i = 0; i < n; i++)
            atomic_store_explicit(&ar->spans[p + i], s, memory_order_relaxed);
        a += (uintptr_t)n << MHI_PAGE_SHIFT;
        npages -= n;
    }
    atomic_thread_fence(memory_order_release);
}

/* Map the first and last page of s to s (enough for a free span). */
static void map_ends(mhi_span *s) {
    map_set(s->base, s);
    map_set(mhi_span_end(s) - MHI_PAGE_SIZE, s);
}

/* The span holding the page at a, if that page belongs to the heap. */
static mhi_span *page_span(uintptr_t a) {
    mhi_arena *ar = mhi_arena_of(a);
    if (!ar || mhi_arena_page(a) >= ar->ncommitted) return NULL;
    return mhi_arena_span(ar, a);
}

/* ---- the treap of large free spans, keyed (npages, base) ---- */

static inline bool treap_less(const mhi_span *a, const mhi_span *b) {
    return a->npages < b->npages || (a->npages == b->npages && a->base < b->base);
}

static uint32_t treap_prio(uintptr_t base) {
    uint64_t x = base >> MHI_PAGE_SHIFT;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static mhi_span *treap_insert(mhi_span *root, mhi_span *s) {
    if (!root) return s;
    if (treap_less(s, root)) {
        root->tleft = treap_insert(root->tleft, s);
        if (root->tleft->tprio > root->tprio) { /* rotate right */
            mhi_span *l = root->tleft;
            root->tleft = l->tright;
            l->tright = root;
            return l;
        }
    } else {
        root->tright = treap_insert(root->tright, s);
        if (root->tright->tprio > root->tprio) { /* rotate left */
            mhi_span *r = root->tright;
            root->tright = r->tleft;
            r->tleft = root;
            return r;
        }
    }
    return root;
}

static mhi_span *treap_merge(mhi_span *a, mhi_span *b) {
    /* Every key in a is less than every key in b. */
    if (!a) return b;
    if (!b) return a;
    if (a->tprio > b->tprio) {
        a->tright = treap_merge(a->tright, b);
        return a;
    }
    b->tleft = treap_merge(a, b->tleft);
    return b;
}

static mhi_span *treap_remove(mhi_span *root, mhi_span *s) {
    if (!root) mhi_fatal("free span missing from the large tree: %p", (void *)s->base);
    if (root == s) return treap_merge(s->tleft, s->tright);
    if (treap_less(s, root)) root->tleft = treap_remove(root->tleft, s);
    else root->tright = treap_remove(root->tright, s);
    return root;
}

/* Smallest span with npages >= n; ties to the lowest address. */
static mhi_span *treap_best_fit(mhi_span *t, size_t n) {
    mhi_span *best = NULL;
    while (t) {
        if (t->npages >= n) {
            best = t;
            t = t->tleft;
        } else {
            t = t->tright;
        }
    }
    return best;
}

/* ---- free structures ---- */

static void free_insert(mhi_span *s) {
    if (s->npages < MHI_FREE_LISTS) {
        mhi_span_list_push(&H->free[s->npages], s);
        H->nonempty[s->npages / 64] |= 1ULL << (s->npages % 64);
    } else {
        s->tleft = s->tright = NULL;
        s->tprio = treap_prio(s->base);
        H->large = treap_insert(H->large, s);
    }
    H->stats.nspan_free++;
}

static void free_remove(mhi_span *s) {
    if (s->npages < MHI_FREE_LISTS) {
        mhi_span_list_remove(&H->free[s->npages], s);
        if (H->free[s->npages].count == 0)
            H->nonempty[s->npages / 64] &= ~(1ULL << (s->npages % 64));
    } else {
        H->large = treap_remove(H->large, s);
        s->tleft = s->tright = NULL;
    }
    H->stats.nspan_free--;
}

/* The free span to allocate npages from: the smallest exact-size list that
 * fits (newest span first), else the best fit in the treap. */
static mhi_span *free_find(size_t npages) {
    if (npages < MHI_FREE_LISTS) {
        for (size_t w = npages / 64; w < MHI_FREE_LISTS / 64; w++) {
            uint64_t bits = H->nonempty[w];
            if (w == npages / 64) bits &= ~0ULL << (npages % 64);
            if (bits) return H->free[w * 64 + (size_t)__builtin_ctzll(bits)].first;
        }
    }
    return treap_best_fit(H->large, npages);
}

static mhi_span *span_new(uintptr_t base, size_t npages) {
    mhi_span *s = mhi_fixalloc_alloc(&H->spanalloc);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->base = base;
    s->npages = npages;
    return s;
}

static void span_dead(mhi_span *s) {
    s->state = MHI_SPAN_DEAD;
    mhi_fixalloc_free(&H->spanalloc, s);
}

/* Put the pages of s (not on any list, state ignored) into the free
 * structures as one FREE span, coalescing with free neighbours.  The pages'
 * free bits must already be set. */
static void free_coalesce_locked(mhi_span *s) {
    s->state = MHI_SPAN_FREE;
    s->kind = MHI_KIND_NONE;
    s->sizeclass = 0;
    mhi_span *t = page_span(s->base - MHI_PAGE_SIZE);
    if (t && t->state == MHI_SPAN_FREE && mhi_span_end(t) == s->base) {
        free_remove(t);
        s->base = t->base;
        s->npages += t->npages;
        span_dead(t);
    }
    t = page_span(mhi_span_end(s));
    if (t && t->state == MHI_SPAN_FREE && t->base == mhi_span_end(s)) {
        free_remove(t);
        s->npages += t->npages;
        span_dead(t);
    }
    map_ends(s);
    free_insert(s);
}

/* Add [base, base+len) fresh from the OS: free, zero, not resident. */
static bool heap_add_fresh_locked(uintptr_t base, size_t len) {
    size_t npages = len >> MHI_PAGE_SHIFT;
    mhi_span *s = span_new(base, npages);
    if (!s) return false;
    bits_set(base, npages, BM_FREE);
    bits_set(base, npages, BM_SCAV);
    H->stats.sys += len;
    H->stats.idle += len;
    H->stats.released += len;
    free_coalesce_locked(s);
    return true;
}

/* Take at least npages more pages from the OS (the seed's mHeap_Grow). */
static bool heap_grow_locked(size_t npages) {
    size_t need = npages << MHI_PAGE_SHIFT;
    /* One request larger than the machine could ever back (memory plus
     * swap, or the address-space limit): refuse now, as the kernel's
     * overcommit heuristic refuses such an mmap, instead of reserving arenas
     * and their metadata for it.  Like the kernel's check this is per
     * request: untouched address space taken earlier does not count. */
    if (need > mhi_os_memory_limit()) return false;
    size_t ask = (need + MHI_GROW_ROUND - 1) & ~(MHI_GROW_ROUND - 1);
    /* At least 1 MiB, and an eighth of the heap (up to an arena) so that a
     * growing heap makes few trips to the OS; the pages stay untouched and
     * count as released until used. */
    size_t prop = (size_t)(H->stats.sys / 8) & ~(MHI_GROW_ROUND - 1);
    if (prop > MHI_ARENA_SIZE) prop = MHI_ARENA_SIZE;
    if (ask < prop) ask = prop;
    if (ask < MHI_GROW_MIN) ask = MHI_GROW_MIN;
    uintptr_t tail, base;
    size_t tail_len;
    base = mhi_arena_grow_locked(ask, &tail, &tail_len);
    if (tail_len) heap_add_fresh_locked(tail, tail_len);
    if (!base && ask > need) {
        ask = need;
        base = mhi_arena_grow_locked(ask, &tail, &tail_len);
        if (tail_len) heap_add_fresh_locked(tail, tail_len);
    }
    if (!base) {
        if (H->verbose) mhi_printf(2, "mheap: the OS refused %zu bytes\n", ask);
        return false;
    }
    H->stats.ngrow++;
    H->stats.grow_bytes += ask;
    if (H->verbose)
        mhi_printf(2, "mheap: grew by %zu KiB at %p (heap %zu KiB)\n", ask >> 10, (void *)base,
                   (size_t)((H->stats.sys + ask) >> 10));
    return heap_add_fresh_locked(base, ask);
}

/* The seed's mHeap_AllocSpanLocked: a span of exactly npages pages, off the
 * free structures, state still FREE; zero_lo/zero_hi get the range of pages
 * that may hold old data (zero_lo == 0: none). */
static mhi_span *alloc_span_locked(size_t npages, size_t align, uintptr_t *dirty_lo,
                                   uintptr_t *dirty_hi, uintptr_t *rel_lo, uintptr_t *rel_hi) {
    /* An aligned run is found in a span with room for any misalignment. */
    size_t need = npages + (align > MHI_PAGE_SIZE ? (align >> MHI_PAGE_SHIFT) - 1 : 0);
    mhi_span *s = free_find(need);
    if (!s) {
        if (!heap_grow_locked(need)) return NULL;
        s = free_find(need);
        if (!s) return NULL;
    }
    if (s->state != MHI_SPAN_FREE || s->npages < need)
        mhi_fatal("corrupt free span: %p", (void *)s->base);
    free_remove(s);
    uintptr_t ab = align > MHI_PAGE_SIZE ? (s->base + align - 1) & ~(uintptr_t)(align - 1) : s->base;
    if (ab > s->base) {
        /* Split the head off as a free span; its pages keep their bits.
         * Its left neighbour is not free (free spans are coalesced). */
        mhi_span *h = span_new(s->base, (ab - s->base) >> MHI_PAGE_SHIFT);
        if (!h) {
            free_insert(s);
            return NULL;
        }
        h->state = MHI_SPAN_FREE;
        s->base = ab;
        s->npages -= h->npages;
        map_ends(h);
        free_insert(h);
    }
    if (s->npages > npages) {
        /* Split: the tail goes back as a free span.  Its neighbours are s
         * (about to be in use) and whatever followed s, which was not free
         * (free spans are coalesced), so no coalescing is needed. */
        mhi_span *t = span_new(s->base + (npages << MHI_PAGE_SHIFT), s->npages - npages);
        if (!t) {
            free_insert(s);
            return NULL;
        }
        s->npages = npages;
        t->state = MHI_SPAN_FREE;
        map_ends(t);
        free_insert(t);
    }
    bits_clear(s->base, npages, BM_FREE);
    uintptr_t lo = 0, hi = 0;
    size_t nscav = bits_range(s->base, npages, BM_SCAV, OP_TAKE, &lo, &hi);
    *rel_lo = *rel_hi = 0;
    if (nscav) bits_range(s->base, npages, BM_REL, OP_TAKE, rel_lo, rel_hi);
    H->stats.released -= (uint64_t)nscav << MHI_PAGE_SHIFT;
    H->stats.idle -= (uint64_t)npages << MHI_PAGE_SHIFT;
    H->stats.inuse += (uint64_t)npages << MHI_PAGE_SHIFT;
    /* Pages that were not scavenged may hold old data.  Report the smallest
     * range covering them: everything outside [lo, hi] is known zero. */
    if (nscav == npages) {
        *dirty_lo = *dirty_hi = 0;
    } else if (nscav == 0) {
        *dirty_lo = s->base;
        *dirty_hi = mhi_span_end(s);
    } else {
        /* Clean pages form [lo, hi]; dirty ones may be on either side. */
        uintptr_t end = mhi_span_end(s);
        *dirty_lo = lo > s->base ? s->base : hi + MHI_PAGE_SIZE;
        *dirty_hi = hi + MHI_PAGE_SIZE < end ? end : lo;
        if (nscav != ((hi - lo) >> MHI_PAGE_SHIFT) + 1 || *dirty_lo >= *dirty_hi) {
            *dirty_lo = s->base; /* clean pages not contiguous: clear all */
            *dirty_hi = end;
        }
    }
    return s;
}

static void scavenge_tick_locked(void);

/* Make s (off the free structures) an INUSE or MANUAL span. */
static void span_set_inuse_locked(mhi_span *s, int state, int kind, bool dirty) {
    s->state = (uint8_t)state;
    s->kind = (uint8_t)(state == MHI_SPAN_INUSE ? kind : MHI_KIND_NONE);
    s->sizeclass = 0;
    s->needzero = dirty;
    atomic_store_explicit(&s->sweepgen, H->sweepgen, memory_order_relaxed);
    s->next = s->prev = NULL;
    map_all(s);
    if (state == MHI_SPAN_INUSE) {
        bits_set(s->base, 1, BM_INUSE);
        H->stats.nspan_inuse++;
    } else {
        H->stats.manual += (uint64_t)s->npages << MHI_PAGE_SHIFT;
        H->stats.nspan_manual++;
    }
}

static void free_span_locked(mhi_span *s);
static void bg_kick_locked(void);

/* Give pages [base, base + npages) of an in-use run back to the heap. */
static void carve_free_locked(uintptr_t base, size_t npages, int state) {
    mhi_span *t = span_new(base, npages);
    if (!t) mhi_fatal("out of memory for span metadata: %p", (void *)base);
    span_set_inuse_locked(t, state, MHI_KIND_LARGE, false);
    free_span_locked(t);
}

static bool npages_ok(size_t npages) {
    return npages != 0 && npages <= (((uintptr_t)1 << MHI_ADDR_BITS) >> MHI_PAGE_SHIFT);
}

static mhi_span *heap_alloc(size_t npages, size_t align, int state, int kind, bool zero,
                            mhi_heap_residency *res) {
    uintptr_t lo = 0, hi = 0, rlo = 0, rhi = 0;
    mhi_lock(&H->lock);
    heap_init_locked();
    H->now_ms = mhi_os_millitime();
    mhi_span *s = alloc_span_locked(npages, align, &lo, &hi, &rlo, &rhi);
    if (s) {
        span_set_inuse_locked(s, state, kind, lo != 0);
        H->stats.nalloc++;
    }
    scavenge_tick_locked();
    /* The unlock orders the map writes before any publication of a pointer
     * into s by the caller. */
    mhi_unlock(&H->lock);
    if (s && zero && lo) {
        memset((void *)lo, 0, hi - lo);
        s->needzero = 0;
    }
    if (s && res) {
        /* Pages outside the dirty range [lo, hi) were scavenged: not
         * resident. */
        res->nonresident = !(lo == s->base && hi == mhi_span_end(s));
        res->rel_lo = rlo;
        res->rel_hi = rlo ? rhi + MHI_PAGE_SIZE : 0;
    }
    return s;
}

mhi_span *mhi_heap_alloc_aligned(size_t npages, size_t align, int state, int kind, bool zero) {
    if (align < MHI_PAGE_SIZE) align = MHI_PAGE_SIZE;
    size_t extra = (align >> MHI_PAGE_SHIFT) - 1;
    if (!npages_ok(npages) || !npages_ok(npages + extra)) return NULL;
    return heap_alloc(npages, align, state, kind, zero, NULL);
}

mhi_span *mhi_heap_alloc(size_t npages, int state, int kind, bool zero) {
    if (!npages_ok(npages)) return NULL;
    return heap_alloc(npages, MHI_PAGE_SIZE, state, kind, zero, NULL);
}

mhi_span *mhi_heap_alloc_res(size_t npages, int state, int kind, bool zero,
                             mhi_heap_residency *res) {
    if (!npages_ok(npages)) return NULL;
    return heap_alloc(npages, MHI_PAGE_SIZE, state, kind, zero, res);
}

/* The seed's mHeap_FreeSpanLocked. */
static void free_span_locked(mhi_span *s);

/* free_span_locked, with pages already released marked scavenged. */
static void free_span_released_locked(mhi_span *s, uint64_t released) {
    uintptr_t base = s->base;
    size_t npages = s->npages;
    free_span_locked(s); /* (s may be absorbed by coalescing: base and npages kept) */
    for (size_t i = 0; i < npages && i < 64; i++) {
        if (!(released >> i & 1)) continue;
        /* (an in-use span's pages have no scav bit: allocation took them) */
        uintptr_t a = base + (i << MHI_PAGE_SHIFT);
        bits_set(a, 1, BM_SCAV);
        bits_set(a, 1, BM_REL);
        H->stats.released += MHI_PAGE_SIZE;
    }
}

static void free_span_locked(mhi_span *s) {
    switch (s->state) {
    case MHI_SPAN_INUSE:
        bits_clear(s->base, 1, BM_INUSE);
        H->stats.nspan_inuse--;
        break;
    case MHI_SPAN_MANUAL:
        H->stats.manual -= (uint64_t)s->npages << MHI_PAGE_SHIFT;
        H->stats.nspan_manual--;
        break;
    case MHI_SPAN_FREE:
        mhi_fatal("double free: %p", (void *)s->base);
    default:
        mhi_fatal("invalid pointer: %p", (void *)s->base);
    }
    /* The malloc free fast path reads kind without the lock: only an INUSE
     * span may say SMALL. */
    s->kind = MHI_KIND_NONE;
    H->stats.inuse -= (uint64_t)s->npages << MHI_PAGE_SHIFT;
    H->stats.idle += (uint64_t)s->npages << MHI_PAGE_SHIFT;
    H->stats.nfree++;
    bits_set(s->base, s->npages, BM_FREE);
    /* Stamp the 64-page groups: the scavenger waits for them to age. */
    int64_t now = H->now_ms;
    for (uintptr_t a = s->base; a < mhi_span_end(s);) {
        mhi_arena *ar = mhi_arena_must(a);
        size_t w = mhi_arena_page(a) / 64;
        ar->freed_ms[w] = now;
        a = ar->base + ((uintptr_t)(w + 1) * 64 << MHI_PAGE_SHIFT);
    }
    s->next = s->prev = NULL;
    s->specials = NULL;
    free_coalesce_locked(s);
    bg_kick_locked();
}

void mhi_heap_free(mhi_span *s) { mhi_heap_free_released(s, 0); }

void mhi_heap_free_released(mhi_span *s, uint64_t released) {
    mhi_lock(&H->lock);
    H->now_ms = mhi_os_millitime();
    free_span_released_locked(s, released);
    scavenge_tick_locked();
    mhi_unlock(&H->lock);
}

void mhi_heap_free_manual(void *p) {
    uintptr_t a = (uintptr_t)p;
    mhi_lock(&H->lock);
    H->now_ms = mhi_os_millitime();
    mhi_arena *ar = mhi_arena_of(a);
    if (!ar || (a & (MHI_PAGE_SIZE - 1)) || mhi_arena_page(a) >= ar->ncommitted) {
        mhi_unlock(&H->lock);
        mhi_fatal("invalid pointer: %p", p);
    }
    size_t pg = mhi_arena_page(a);
    if (ar->free[pg / 64] & (1ULL << (pg % 64))) {
        mhi_unlock(&H->lock);
        mhi_fatal("double free: %p", p);
    }
    mhi_span *s = mhi_arena_span(ar, a);
    if (!s || s->base != a || s->state != MHI_SPAN_MANUAL) {
        mhi_unlock(&H->lock);
        mhi_fatal("invalid pointer: %p", p);
    }
    free_span_locked(s);
    scavenge_tick_locked();
    mhi_unlock(&H->lock);
}

void mhi_heap_bad_free(uintptr_t a) {
    bool isfree = false;
    mhi_lock(&H->lock);
    mhi_arena *ar = mhi_arena_of(a);
    if (ar && mhi_arena_page(a) < ar->ncommitted) {
        size_t pg = mhi_arena_page(a);
        isfree = (ar->free[pg / 64] >> (pg % 64)) & 1;
    }
    mhi_unlock(&H->lock);
    if (isfree) mhi_fatal("double free: %p", (void *)a);
    mhi_fatal("invalid pointer: %p", (void *)a);
}

bool mhi_heap_resize(mhi_span *s, size_t npages) {
    if (!npages_ok(npages)) return false;
    if (npages == s->npages) return true;
    bool ok = false;
    mhi_lock(&H->lock);
    H->now_ms = mhi_os_millitime();
    if (s->state != MHI_SPAN_INUSE && s->state != MHI_SPAN_MANUAL) {
        mhi_unlock(&H->lock);
        mhi_fatal("invalid pointer: %p", (void *)s->base);
    }
    if (npages < s->npages) {
        /* Shrink: the tail becomes an in-use span, freed at once. */
        uintptr_t tail = s->base + (npages << MHI_PAGE_SHIFT);
        size_t ntail = s->npages - npages;
        s->npages = npages;
        if (s->state == MHI_SPAN_MANUAL) H->stats.manual -= (uint64_t)ntail << MHI_PAGE_SHIFT;
        carve_free_locked(tail, ntail, s->state);
        ok = true;
    } else {
        size_t more = npages - s->npages;
        mhi_span *t = page_span(mhi_span_end(s));
        if (t && t->state == MHI_SPAN_FREE && t->base == mhi_span_end(s) && t->npages >= more) {
            free_remove(t);
            if (t->npages > more) {
                mhi_span *r = span_new(t->base + (more << MHI_PAGE_SHIFT), t->npages - more);
                if (!r) {
                    free_insert(t);
                    goto out;
                }
                r->state = MHI_SPAN_FREE;
                map_ends(r);
                free_insert(r);
            }
            uintptr_t grown = t->base;
            span_dead(t);
            bits_clear(grown, more, BM_FREE);
            uintptr_t lo = 0, hi = 0;
            size_t nscav = bits_range(grown, more, BM_SCAV, OP_TAKE, &lo, &hi);
            bits_clear(grown, more, BM_REL);
            H->stats.released -= (uint64_t)nscav << MHI_PAGE_SHIFT;
            H->stats.idle -= (uint64_t)more << MHI_PAGE_SHIFT;
            H->stats.inuse += (uint64_t)more << MHI_PAGE_SHIFT;
            if (s->state == MHI_SPAN_MANUAL) H->stats.manual += (uint64_t)more << MHI_PAGE_SHIFT;
            if (nscav != more) s->needzero = 1;
            s->npages = npages;
            map_all(s);
            ok = true;
        }
    }
out:
    mhi_unlock(&H->lock);
    return ok;
}

/* ---- lookups ---- */

mhi_span *mhi_heap_lookup(uintptr_t a) {
    mhi_arena *ar = mhi_arena_of(a);
    return ar ? mhi_arena_span(ar, a) : NULL;
}

mhi_span *mhi_heap_span_of(uintptr_t a) {
    mhi_arena *ar = mhi_arena_of(a);
    if (!ar) return NULL;
    mhi_span *s = mhi_arena_span(ar, a);
    if (!s || a < s->base || a >= mhi_span_end(s)) return NULL;
    if (s->state != MHI_SPAN_INUSE && s->state != MHI_SPAN_MANUAL) return NULL;
    return s;
}

mhi_span *mhi_heap_lookup_maybe(uintptr_t a) {
    mhi_span *s = mhi_heap_span_of(a);
    return s && s->state == MHI_SPAN_INUSE ? s : NULL;
}

bool mhi_mlookup(uintptr_t v, uintptr_t *base, size_t *size, mhi_span **sp) {
    mhi_span *s = mhi_heap_lookup_maybe(v);
    if (sp) *sp = s;
    if (!s) {
        if (base) *base = 0;
        if (size) *size = 0;
        return false;
    }
    if (mhi_kind_small(mhi_span_kind(s)) || (s->kind == MHI_KIND_GC && s->elemsize)) {
        uintptr_t i = (uintptr_t)(((uint64_t)(v - s->base) * s->divmul) >> 32);
        if (base) *base = s->base + i * s->elemsize;
        if (size) *size = s->elemsize;
    } else {
        if (base) *base = s->base;
        if (size) *size = s->npages << MHI_PAGE_SHIFT;
    }
    return true;
}

/* ---- scavenger ---- */

/* madvise [lo, hi), whose scav bits are already set.  If the OS refuses
 * (locked pages: mlockall), the pages keep their data: clear the bits
 * again so that they are not taken for zero, and stop scavenging.  Returns
 * the bytes that were not released. */
static size_t release_run(uintptr_t lo, uintptr_t hi) {
    if (MHI_LIKELY(mhi_os_decommit((void *)lo, hi - lo))) return 0;
    uintptr_t a = 0, b = 0;
    bits_range(lo, (hi - lo) >> MHI_PAGE_SHIFT, BM_SCAV, OP_TAKE, &a, &b);
    bits_clear(lo, (hi - lo) >> MHI_PAGE_SHIFT, BM_REL);
    if (!H->scav_off && H->verbose)
        mhi_printf(2, "mheap: the OS refused to release pages (%p); scavenger off\n", (void *)lo);
    H->scav_off = true;
    return hi - lo;
}

/* Release pages as described in pageheap.h; stop after max_runs separate
 * madvise calls (*more is set when work was left). */
static size_t scavenge_locked(int64_t now, int64_t delay_ms, size_t goal, size_t max_runs,
                              bool *more) {
    size_t runs = 0;
    *more = false;
    /* The seed skips scavenging when OS pages are larger than heap pages
     * (golang.org/issue/9993): releasing one would take neighbours too. */
    if (mhi_os_page_size() > MHI_PAGE_SIZE || H->scav_off) return 0;
    size_t released = 0;
    uintptr_t run_lo = 0, run_hi = 0; /* pending run to release */
    for (mhi_arena *ar = mhi_arena_last; ar && released < goal; ar = ar->prev) {
        size_t nw = (ar->ncommitted + 63) / 64;
        for (size_t w = nw; w-- > 0 && released < goal;) {
            if (runs >= max_runs) {
                *more = true;
                goto done;
            }
            if (delay_ms > 0 && now - ar->freed_ms[w] < delay_ms) continue;
            uint64_t bits = ar->free[w] & ~ar->scav[w];
            if (!bits) continue;
            uintptr_t wbase = ar->base + ((uintptr_t)w * 64 << MHI_PAGE_SHIFT);
            ar->scav[w] |= bits;
            ar->rel[w] |= bits;
            size_t n = (size_t)__builtin_popcountll(bits);
            released += n << MHI_PAGE_SHIFT;
            /* Release runs of set bits, highest first, merging runs that
             * touch across words into one madvise. */
            while (bits) {
                int top = 63 - __builtin_clzll(bits);
                uint64_t below = ~bits & ((top == 63 ? ~0ULL : (2ULL << top) - 1));
                int bot = below ? 64 - __builtin_clzll(below) : 0;
                uintptr_t lo = wbase + ((uintptr_t)bot << MHI_PAGE_SHIFT);
                uintptr_t hi = wbase + ((uintptr_t)(top + 1) << MHI_PAGE_SHIFT);
                if (run_lo && hi == run_lo) {
                    run_lo = lo;
                } else {
                    if (run_lo) released -= release_run(run_lo, run_hi);
                    run_lo = lo;
                    run_hi = hi;
                    runs++;
                }
                bits &= top - bot + 1 == 64 ? 0 : ~((((1ULL << (top - bot + 1)) - 1)) << bot);
            }
        }
    }
done:
    if (run_lo) released -= release_run(run_lo, run_hi);
    if (released) {
        H->stats.released += released;
        H->stats.scavenged += released;
        H->stats.nscavenge++;
        if (H->verbose)
            mhi_printf(2, "mheap: released %zu KiB to the OS (idle %zu KiB, released %zu KiB)\n",
                       released >> 10, (size_t)(H->stats.idle >> 10),
                       (size_t)(H->stats.released >> 10));
    }
    return released;
}

/* The time check on heap slow paths: a pass at most every delay/2, each
 * pass bounded (MHI_SCAVENGE_RUNS_PER_TICK madvise calls) so that no
 * allocation stalls on a fragmented heap; leftover work continues 1 ms
 * later. */
#define MHI_SCAVENGE_RUNS_PER_TICK 64
/* ... and to about this many bytes, so that the heap lock is not held
 * across one huge madvise (releasing 32 MiB takes a few milliseconds). */
#define MHI_SCAVENGE_BYTES_PER_TICK ((size_t)32 << 20)

/* One bounded pass over the pages that have aged; true if work was left. */
static bool scavenge_step_locked(int64_t now, int64_t delay) {
    if (H->stats.idle <= H->stats.released) return false;
    bool more;
    size_t n = scavenge_locked(now, delay > 0 ? delay : 1, MHI_SCAVENGE_BYTES_PER_TICK,
                               MHI_SCAVENGE_RUNS_PER_TICK, &more);
    return more || n >= MHI_SCAVENGE_BYTES_PER_TICK;
}

static void scavenge_tick_locked(void) {
    int64_t now = H->now_ms;
    if (MHI_LIKELY(now < H->next_scavenge_ms)) return;
    int64_t delay = H->scavenge_delay_ms;
    H->next_scavenge_ms = now + (delay / 2 > 10 ? delay / 2 : 10);
    if (scavenge_step_locked(now, delay)) H->next_scavenge_ms = now + 1;
}

/* ---- background scavenger ----
 * One thread, started on demand by the malloc layer.  bg_idle is 1 while it
 * sleeps with nothing to do; a heap free that adds free pages sets it to 0
 * and wakes it.  Otherwise it wakes every quarter of the delay (at most) to
 * release the pages that have aged. */
_Atomic int mhi_heap_bg_started;
static _Atomic uint32_t bg_idle;
int (*mhi_heap_bg_hook)(int64_t delay_ms);
static _Atomic bool bg_work;

static void bg_kick_locked(void) {
    if (MHI_UNLIKELY(atomic_load_explicit(&bg_idle, memory_order_relaxed)) &&
        atomic_exchange_explicit(&bg_idle, 0, memory_order_relaxed))
        mhi_os_futex_wake(&bg_idle);
}

/* No lock: bg_work and bg_idle are written and read in opposite orders
 * here and in bg_main (sequentially consistent), so one side sees the
 * other and no request is slept through. */
void mhi_heap_bg_request(void) {
    if (atomic_load_explicit(&bg_work, memory_order_relaxed)) return;
    atomic_store(&bg_work, true);
    if (atomic_load(&bg_idle) && atomic_exchange(&bg_idle, 0)) mhi_os_futex_wake(&bg_idle);
}

static void *bg_main(void *arg) {
    (void)arg;
    int hook = 0; /* what the hook's last call asked for */
    for (;;) {
        int64_t delay = H->scavenge_delay_ms; /* a racy read: only timing */
        if ((atomic_exchange(&bg_work, false) || hook) && mhi_heap_bg_hook)
            hook = mhi_heap_bg_hook(delay);
        mhi_lock(&H->lock);
        heap_init_locked();
        int64_t now = H->now_ms = mhi_os_millitime();
        delay = H->scavenge_delay_ms;
        /* (the hook's "come back soon" must survive the scavenger's answer) */
        bool more = scavenge_step_locked(now, delay) || hook == 2;
        bool pending = (H->stats.idle > H->stats.released && !H->scav_off) || hook;
        if (!pending) {
            atomic_store(&bg_idle, 1);
            if (atomic_load(&bg_work)) { /* a request raced with the decision */
                atomic_store(&bg_idle, 0);
                pending = more = true;
            }
        }
        mhi_unlock(&H->lock);
        if (!pending) mhi_os_futex_wait(&bg_idle, 1, -1);
        else mhi_os_futex_wait(&bg_idle, 0, more ? 1 : delay / 4 > 10 ? delay / 4 : 10);
    }
    return NULL;
}

void mhi_heap_bg_start(int (*hook)(int64_t delay_ms)) {
    int expect = 0;
    if (atomic_load_explicit(&mhi_heap_bg_started, memory_order_relaxed) ||
        !atomic_compare_exchange_strong(&mhi_heap_bg_started, &expect, 1))
        return;
    mhi_heap_bg_hook = hook; /* before the thread exists (or in a fork child, again) */
    if (mhi_os_page_size() > MHI_PAGE_SIZE) return; /* nothing it could release */
    (void)mhi_os_thread_start(bg_main, NULL);      /* on failure: heap calls still scavenge */
}

size_t mhi_heap_scavenge(int64_t delay_ms, size_t goal) {
    bool more;
    mhi_lock(&H->lock);
    heap_init_locked();
    size_t n = scavenge_locked(mhi_os_millitime(), delay_ms, goal, SIZE_MAX, &more);
    mhi_unlock(&H->lock);
    return n;
}

/* ---- statistics ---- */

void mhi_heap_stats_get(mhi_heap_stats *out) {
    mhi_lock(&H->lock);
    *out = H->stats;
    mhi_unlock(&H->lock);
}

/* ---- fork ---- */

void mhi_heap_fork_prepare(void) { mhi_lock(&H->lock); }
void mhi_heap_fork_parent(void) { mhi_unlock(&H->lock); }
void mhi_heap_fork_child(void) {
    mhi_lock_reset(&H->lock);
    /* The thread did not come along. */
    atomic_store_explicit(&mhi_heap_bg_started, 0, memory_order_relaxed);
    atomic_store_explicit(&bg_idle, 0, memory_order_relaxed);
    atomic_store_explicit(&bg_work, false, memory_order_relaxed);
}

/* ---- verifier ---- */

static size_t verify_errors;

#define VERIFY(cond, ...)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            verify_errors++;                                                    \
            if (verify_errors <= 20) {                                          \
                mhi_printf(2, "mheap: verify: " __VA_ARGS__);                   \
                mhi_printf(2, "\n");                                            \
            }                                                                   \
        }                                                                       \
    } while (0)

static bool bit_at(const uint64_t *bm, size_t p) {
    return (bm[p / 64] >> (p % 64)) & 1;
}

static size_t verify_treap(mhi_span *t, mhi_span **prev, int depth) {
    if (!t) return 0;
    VERIFY(depth < 200, "large tree too deep at %p", (void *)t->base);
    if (depth >= 200) return 0;
    size_t n = verify_treap(t->tleft, prev, depth + 1);
    VERIFY(t->state == MHI_SPAN_FREE, "span in large tree not free: %p", (void *)t->base);
    VERIFY(t->npages >= MHI_FREE_LISTS, "short span in large tree: %p", (void *)t->base);
    VERIFY(!*prev || treap_less(*prev, t), "large tree out of order at %p", (void *)t->base);
    VERIFY(!t->tleft || t->tleft->tprio <= t->tprio, "treap priority at %p", (void *)t->base);
    VERIFY(!t->tright || t->tright->tprio <= t->tprio, "treap priority at %p", (void *)t->base);
    *prev = t;
    return n + 1 + verify_treap(t->tright, prev, depth + 1);
}

size_t mhi_heap_verify(void) {
    mhi_lock(&H->lock);
    heap_init_locked();
    verify_errors = 0;
    uint64_t npg_free = 0, npg_inuse = 0, npg_manual = 0, npg_scav = 0, ncommitted = 0;
    uint64_t nfree = 0, ninuse = 0, nmanual = 0;
    mhi_span *prev = NULL; /* previous span in address order */
    uintptr_t next = 0;    /* end of the previous span */
    for (mhi_arena *ar = mhi_arena_list; ar; ar = ar->next) {
        VERIFY(!ar->prev || ar->prev->base < ar->base, "arena list out of order at %p",
               (void *)ar->base);
        VERIFY(mhi_arena_of(ar->base) == ar, "arena map does not find arena %p", (void *)ar->base);
        ncommitted += ar->ncommitted;
        for (size_t p = ar->ncommitted; p < MHI_ARENA_PAGES; p++) {
            VERIFY(!bit_at(ar->free, p) && !bit_at(ar->scav, p) && !bit_at(ar->inuse, p),
                   "bits set on uncommitted page %p", (void *)(ar->base + (p << MHI_PAGE_SHIFT)));
        }
        size_t p = 0;
        if (next > ar->base) /* a span continues from below */
            p = next >= ar->base + MHI_ARENA_SIZE ? MHI_ARENA_PAGES
                                                  : (next - ar->base) >> MHI_PAGE_SHIFT;
        for (; p < ar->ncommitted;) {
            uintptr_t a = ar->base + (p << MHI_PAGE_SHIFT);
            mhi_span *s = mhi_arena_span(ar, a);
            if (!s || s->base != a) {
                VERIFY(0, "page %p does not start a span (map %p)", (void *)a, (void *)s);
                p++;
                continue;
            }
            VERIFY(s->npages > 0, "empty span at %p", (void *)a);
            uintptr_t end = mhi_span_end(s);
            VERIFY(mhi_heap_lookup(end - MHI_PAGE_SIZE) == s, "last page of %p not mapped",
                   (void *)a);
            mhi_arena *last_ar = mhi_arena_of(end - MHI_PAGE_SIZE);
            VERIFY(last_ar && mhi_arena_page(end - MHI_PAGE_SIZE) < last_ar->ncommitted,
                   "span %p runs past the committed heap", (void *)a);
            if (!last_ar) break;
            bool isfree = s->state == MHI_SPAN_FREE;
            switch (s->state) {
            case MHI_SPAN_FREE:
                nfree++;
                npg_free += s->npages;
                VERIFY(!(prev && prev->state == MHI_SPAN_FREE && mhi_span_end(prev) == a),
                       "free spans %p and %p not coalesced", (void *)prev->base, (void *)a);
                break;
            case MHI_SPAN_INUSE: ninuse++; npg_inuse += s->npages; break;
            case MHI_SPAN_MANUAL: nmanual++; npg_manual += s->npages; break;
            default: VERIFY(0, "span %p has bad state %d", (void *)a, s->state);
            }
            VERIFY(bit_at(ar->inuse, p) == (s->state == MHI_SPAN_INUSE),
                   "in-use bit wrong for span %p", (void *)a);
            for (uintptr_t q = a; q < end; q += MHI_PAGE_SIZE) {
                mhi_arena *qa = mhi_arena_of(q);
                size_t qp = mhi_arena_page(q);
                VERIFY(bit_at(qa->free, qp) == isfree, "free bit wrong at %p (span %p)",
                       (void *)q, (void *)a);
                if (bit_at(qa->scav, qp)) {
                    npg_scav++;
                    VERIFY(isfree, "scavenged bit on in-use page %p", (void *)q);
                }
                VERIFY(!bit_at(qa->rel, qp) || bit_at(qa->scav, qp),
                       "released bit without scavenged bit at %p", (void *)q);
                if (!isfree)
                    VERIFY(mhi_arena_span(qa, q) == s, "page %p of span %p not mapped",
                           (void *)q, (void *)a);
                if (q != a)
                    VERIFY(!bit_at(qa->inuse, qp), "in-use bit inside span %p", (void *)a);
            }
            prev = s;
            next = end;
            if (end > ar->base + MHI_ARENA_SIZE) break; /* continues in the next arena */
            p = (end - ar->base) >> MHI_PAGE_SHIFT;
        }
    }
    /* Free structures hold exactly the free spans. */
    size_t nlisted = 0;
    for (size_t n = 1; n < MHI_FREE_LISTS; n++) {
        size_t c = 0;
        for (mhi_span *s = H->free[n].first; s; s = s->next, c++) {
            VERIFY(s->state == MHI_SPAN_FREE && s->npages == n, "span %p on free list %zu",
                   (void *)s->base, n);
            if (c > H->free[n].count) break;
        }
        VERIFY(c == H->free[n].count, "free list %zu count %zu, found %zu", n,
               (size_t)H->free[n].count, c);
        VERIFY(((H->nonempty[n / 64] >> (n % 64)) & 1) == (c != 0), "free list index bit %zu", n);
        nlisted += c;
    }
    VERIFY(H->free[0].count == 0, "free list 0 not empty");
    mhi_span *tprev = NULL;
    nlisted += verify_treap(H->large, &tprev, 0);
    VERIFY(nlisted == nfree, "free structures hold %zu spans, heap has %zu", nlisted,
           (size_t)nfree);
    /* Statistics add up. */
    const mhi_heap_stats *st = &H->stats;
    VERIFY(st->idle == npg_free << MHI_PAGE_SHIFT, "idle %zu != free pages %zu", (size_t)st->idle,
           (size_t)(npg_free << MHI_PAGE_SHIFT));
    VERIFY(st->inuse == (npg_inuse + npg_manual) << MHI_PAGE_SHIFT, "inuse %zu wrong",
           (size_t)st->inuse);
    VERIFY(st->manual == npg_manual << MHI_PAGE_SHIFT, "manual %zu wrong", (size_t)st->manual);
    VERIFY(st->released == npg_scav << MHI_PAGE_SHIFT, "released %zu != scavenged pages %zu",
           (size_t)st->released, (size_t)(npg_scav << MHI_PAGE_SHIFT));
    VERIFY(st->sys == st->inuse + st->idle, "sys %zu != inuse + idle", (size_t)st->sys);
    VERIFY(st->sys == ncommitted << MHI_PAGE_SHIFT, "sys %zu != committed arena pages",
           (size_t)st->sys);
    VERIFY(st->sys == atomic_load(&mhi_arena_stat.committed), "sys != arena committed bytes");
    VERIFY(st->nspan_free == nfree && st->nspan_inuse == ninuse && st->nspan_manual == nmanual,
           "span counts %zu/%zu/%zu, found %zu/%zu/%zu", (size_t)st->nspan_free,
           (size_t)st->nspan_inuse, (size_t)st->nspan_manual, (size_t)nfree, (size_t)ninuse,
           (size_t)nmanual);
    VERIFY(H->spanalloc.inuse == nfree + ninuse + nmanual,
           "span allocator has %zu live, heap has %zu spans", (size_t)H->spanalloc.inuse,
           (size_t)(nfree + ninuse + nmanual));
    size_t errors = verify_errors;
    mhi_unlock(&H->lock);
    return errors;
}
