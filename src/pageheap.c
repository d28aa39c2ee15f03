/* pageheap.c - the page heap: span allocation, freeing and coalescing,
 * growth, resizing, lookups, statistics and fork.  The free structures are
 * in freespans.c, the scavenger in scavenge.c, the verifier in verify.c;
 * pageheap.h describes the structures and the lock. */
#include "pageheap.h"

#include <stddef.h>
#include <string.h>

#include "background.h"
#include "print.h"
#include "secure.h"

mhi_heap mhi_heap_ = {.lock = MHI_LOCK_INIT(MHI_RANK_HEAP),
                      .scavenge_delay_ms = MHI_SCAVENGE_DELAY_MS_DEFAULT};

#define H MHI_H

void mhi_scavenge_register_locked(void);

void mhi_heap_init_locked(void) {
    mhi_lock_assert_held(&H->lock);
    if (H->inited) return;
    mhi_fixalloc_init(&H->spanalloc, sizeof(mhi_span), &H->span_sys);
    H->sweepgen = 0;
    H->next_scavenge_ms = mhi_os_millitime() + H->scavenge_delay_ms;
    mhi_scavenge_register_locked();
    mhi_bg_set_period(H->scavenge_delay_ms / 4);
    H->inited = true;
}

static inline void map_ends(mhi_span *s) {
    mhi_arena_map_set(s->base, s);
    mhi_arena_map_set(mhi_span_end(s) - MHI_PAGE_SIZE, s);
}

/* A span struct for [base, base + npages pages), every field zero but its
 * sweep generation, which survives reuse (span.h). */
static mhi_span *span_new(uintptr_t base, size_t npages) {
    mhi_span *s = mhi_fixalloc_alloc(&H->spanalloc);
    if (!s) return NULL;
    /* Clear around sweepgen without reading it: a first read of a fresh
     * metadata page would map the zero page and fault again on the write. */
    size_t sg = offsetof(mhi_span, sweepgen), sg_end = sg + sizeof s->sweepgen;
    /* (and kind and fast_limit, side by side, with atomic stores: lookups
     * of stale map entries may be reading them) */
    size_t kd = offsetof(mhi_span, kind), kd_end = offsetof(mhi_span, fast_limit) + sizeof s->fast_limit;
    static_assert(offsetof(mhi_span, fast_limit) == offsetof(mhi_span, kind) + 1,
                  "kind and fast_limit side by side");
    memset(s, 0, kd);
    /* (A span dies closed to free's fast path, and its pages' entries in
     * the fast map were cleared then: mhi_span_set_kind.) */
    __atomic_store_n(&s->fast_limit, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->kind, (uint8_t)MHI_KIND_NONE, __ATOMIC_RELAXED);
    memset((char *)s + kd_end, 0, sg - kd_end);
    memset((char *)s + sg_end, 0, sizeof *s - sg_end);
    s->base = base;
    s->npages = npages;
    return s;
}

static void span_dead(mhi_span *s) {
    mhi_span_publish(s, MHI_SPAN_DEAD);
    mhi_fixalloc_free(&H->spanalloc, s);
}

/* Put the pages of s (not on any list, state ignored) into the free
 * structures as one FREE span, coalescing with free neighbours.  The pages'
 * free bits must already be set. */
static void free_coalesce_locked(mhi_span *s) {
    mhi_lock_assert_held(&H->lock);
    mhi_span_publish(s, MHI_SPAN_FREE);
    mhi_span_set_kind(s, MHI_KIND_NONE);
    s->sizeclass = 0;
    mhi_span *t = mhi_heap_page_span(s->base - MHI_PAGE_SIZE);
    if (t && t->state == MHI_SPAN_FREE && mhi_span_end(t) == s->base) {
        mhi_free_remove_locked(t);
        s->base = t->base;
        s->npages += t->npages;
        span_dead(t);
    }
    t = mhi_heap_page_span(mhi_span_end(s));
    if (t && t->state == MHI_SPAN_FREE && t->base == mhi_span_end(s)) {
        mhi_free_remove_locked(t);
        s->npages += t->npages;
        span_dead(t);
    }
    map_ends(s);
    mhi_free_insert_locked(s);
}

/* Add [base, base+len) fresh from the OS: free, zero, not resident. */
static bool heap_add_fresh_locked(uintptr_t base, size_t len) {
    mhi_lock_assert_held(&H->lock);
    size_t npages = len >> MHI_PAGE_SHIFT;
    mhi_span *s = span_new(base, npages);
    if (!s) return false;
    mhi_arena_bits_set(base, npages, MHI_BM_FREE);
    mhi_arena_bits_set(base, npages, MHI_BM_SCAV);
    H->stats.heap_sys += len;
    H->stats.heap_idle += len;
    H->stats.heap_released += len;
    free_coalesce_locked(s);
    return true;
}

/* Take at least npages more pages from the OS (the seed's mHeap_Grow). */
static bool heap_grow_locked(size_t npages) {
    mhi_lock_assert_held(&H->lock);
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
    size_t prop = (size_t)(H->stats.heap_sys / 8) & ~(MHI_GROW_ROUND - 1);
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
                   (size_t)((H->stats.heap_sys + ask) >> 10));
    return heap_add_fresh_locked(base, ask);
}

/* The seed's mHeap_AllocSpanLocked: a span of exactly npages pages, off the
 * free structures, state still FREE; *dirty_lo / *dirty_hi get the range
 * of pages that may hold old data (*dirty_lo == 0: none), *rel_lo /
 * *rel_hi the first and last page the scavenger had released (0: none). */
static mhi_span *alloc_span_locked(size_t npages, size_t align, uintptr_t *dirty_lo,
                                   uintptr_t *dirty_hi, uintptr_t *rel_lo, uintptr_t *rel_hi) {
    mhi_lock_assert_held(&H->lock);
    /* An aligned run is found in a span with room for any misalignment. */
    size_t need = npages + (align > MHI_PAGE_SIZE ? (align >> MHI_PAGE_SHIFT) - 1 : 0);
    mhi_span *s = mhi_free_find_locked(need);
    if (!s) {
        if (!heap_grow_locked(need)) return NULL;
        s = mhi_free_find_locked(need);
        if (!s) return NULL;
    }
    if (s->state != MHI_SPAN_FREE || s->npages < need)
        mhi_fatal("corrupt free span: %p", (void *)s->base);
    mhi_free_remove_locked(s);
    uintptr_t ab = align > MHI_PAGE_SIZE ? (s->base + align - 1) & ~(uintptr_t)(align - 1) : s->base;
    if (ab > s->base) {
        /* Split the head off as a free span; its pages keep their bits.
         * Its left neighbour is not free (free spans are coalesced). */
        mhi_span *h = span_new(s->base, (ab - s->base) >> MHI_PAGE_SHIFT);
        if (!h) {
            mhi_free_insert_locked(s);
            return NULL;
        }
        mhi_span_publish(h, MHI_SPAN_FREE);
        s->base = ab;
        s->npages -= h->npages;
        map_ends(h);
        mhi_free_insert_locked(h);
    }
    if (s->npages > npages) {
        /* Split: the tail goes back as a free span.  Its neighbours are s
         * (about to be in use) and whatever followed s, which was not free
         * (free spans are coalesced), so no coalescing is needed. */
        mhi_span *t = span_new(s->base + (npages << MHI_PAGE_SHIFT), s->npages - npages);
        if (!t) {
            mhi_free_insert_locked(s);
            return NULL;
        }
        s->npages = npages;
        mhi_span_publish(t, MHI_SPAN_FREE);
        map_ends(t);
        mhi_free_insert_locked(t);
    }
    mhi_arena_bits_clear(s->base, npages, MHI_BM_FREE);
    uintptr_t lo = 0, hi = 0;
    size_t nscav = mhi_arena_bits(s->base, npages, MHI_BM_SCAV, MHI_BITS_TAKE, &lo, &hi);
    *rel_lo = *rel_hi = 0;
    if (nscav) mhi_arena_bits(s->base, npages, MHI_BM_REL, MHI_BITS_TAKE, rel_lo, rel_hi);
    H->stats.heap_released -= (uint64_t)nscav << MHI_PAGE_SHIFT;
    H->stats.heap_idle -= (uint64_t)npages << MHI_PAGE_SHIFT;
    H->stats.heap_inuse += (uint64_t)npages << MHI_PAGE_SHIFT;
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

/* Make s (off the free structures) an INUSE or MANUAL span: its fields,
 * then its map entries, then its state (published last, span.h). */
static void span_set_inuse_locked(mhi_span *s, int state, int kind, bool dirty) {
    mhi_lock_assert_held(&H->lock);
    mhi_span_set_kind(s, (uint8_t)(state == MHI_SPAN_INUSE ? kind : MHI_KIND_NONE));
    s->sizeclass = 0;
    s->needzero = dirty;
    atomic_store_explicit(&s->sweepgen, H->sweepgen, memory_order_relaxed);
    s->next = s->prev = NULL;
    s->nbytes = s->npages << MHI_PAGE_SHIFT;
    mhi_arena_map_range(s->base, s->npages, s);
    mhi_span_publish(s, (uint8_t)state);
    if (state == MHI_SPAN_INUSE) {
        mhi_arena_bits_set(s->base, 1, MHI_BM_INUSE);
        H->stats.nspan_inuse++;
    } else {
        H->stats.heap_manual += (uint64_t)s->npages << MHI_PAGE_SHIFT;
        H->stats.nspan_manual++;
    }
}

static void free_span_locked(mhi_span *s);

/* Give pages [base, base + npages) of an in-use run back to the heap. */
static void carve_free_locked(uintptr_t base, size_t npages, int state) {
    mhi_lock_assert_held(&H->lock);
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
    mhi_heap_init_locked();
    H->now_ms = mhi_os_millitime();
    mhi_span *s = alloc_span_locked(npages, align, &lo, &hi, &rlo, &rhi);
    if (s) {
        span_set_inuse_locked(s, state, kind, lo != 0);
        H->stats.span_allocs++;
    }
    mhi_scavenge_tick_locked();
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

/* free_span_locked, with pages already released marked scavenged. */
static void free_span_released_locked(mhi_span *s, uint64_t released) {
    mhi_lock_assert_held(&H->lock);
    uintptr_t base = s->base;
    size_t npages = s->npages;
    free_span_locked(s); /* (s may be absorbed by coalescing: base and npages kept) */
    for (size_t i = 0; i < npages && i < 64; i++) {
        if (!(released >> i & 1)) continue;
        /* (an in-use span's pages have no scav bit: allocation took them) */
        uintptr_t a = base + (i << MHI_PAGE_SHIFT);
        mhi_arena_bits_set(a, 1, MHI_BM_SCAV);
        mhi_arena_bits_set(a, 1, MHI_BM_REL);
        H->stats.heap_released += MHI_PAGE_SIZE;
    }
}

/* The seed's mHeap_FreeSpanLocked: validate, account, coalesce, file. */
static void free_span_locked(mhi_span *s) {
    mhi_lock_assert_held(&H->lock);
    switch (s->state) {
    case MHI_SPAN_INUSE:
        mhi_arena_bits_clear(s->base, 1, MHI_BM_INUSE);
        H->stats.nspan_inuse--;
        break;
    case MHI_SPAN_MANUAL:
        H->stats.heap_manual -= (uint64_t)s->npages << MHI_PAGE_SHIFT;
        H->stats.nspan_manual--;
        break;
    case MHI_SPAN_FREE:
        mhi_fatal("double free: %p", (void *)s->base);
    default:
        mhi_fatal("invalid pointer: %p", (void *)s->base);
    }
    /* The malloc free fast path reads kind without the lock: only an INUSE
     * span may say SMALL. */
    mhi_span_set_kind(s, MHI_KIND_NONE);
    H->stats.heap_inuse -= (uint64_t)s->npages << MHI_PAGE_SHIFT;
    H->stats.heap_idle += (uint64_t)s->npages << MHI_PAGE_SHIFT;
    H->stats.span_frees++;
    mhi_arena_bits_set(s->base, s->npages, MHI_BM_FREE);
    /* Stamp the 64-page groups: the scavenger waits for them to age. */
    int64_t now = H->now_ms;
    for (uintptr_t a = s->base; a < mhi_span_end(s);) {
        mhi_arena *ar = mhi_arena_must(a);
        size_t w = mhi_arena_page(a) / 64;
        ar->freed_ms[w] = now;
        a = ar->base + ((uintptr_t)(w + 1) * 64 << MHI_PAGE_SHIFT);
    }
    /* Records of objects that no longer exist: the layer that owns the
     * span must have released them. */
    if (s->specials) mhi_fatal("span freed with specials: %p", (void *)s->base);
    s->next = s->prev = NULL;
    free_coalesce_locked(s);
    mhi_bg_request(mhi_scavenge_task); /* pages to release once they age */
}

void mhi_heap_free(mhi_span *s) { mhi_heap_free_released(s, 0); }

void mhi_heap_free_released(mhi_span *s, uint64_t released) {
#if MHEAP_SECURE
    if (s->guard != MHI_GUARD_NONE) mhi_secure_unguard(s); /* (outside the lock: a kernel call) */
#endif
    mhi_lock(&H->lock);
    H->now_ms = mhi_os_millitime();
    free_span_released_locked(s, released);
    mhi_scavenge_tick_locked();
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
    mhi_scavenge_tick_locked();
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
        s->nbytes = npages << MHI_PAGE_SHIFT;
        if (s->state == MHI_SPAN_MANUAL) H->stats.heap_manual -= (uint64_t)ntail << MHI_PAGE_SHIFT;
        carve_free_locked(tail, ntail, s->state);
        ok = true;
    } else {
        size_t more = npages - s->npages;
        mhi_span *t = mhi_heap_page_span(mhi_span_end(s));
        if (t && t->state == MHI_SPAN_FREE && t->base == mhi_span_end(s) && t->npages >= more) {
            mhi_free_remove_locked(t);
            if (t->npages > more) {
                mhi_span *r = span_new(t->base + (more << MHI_PAGE_SHIFT), t->npages - more);
                if (!r) {
                    mhi_free_insert_locked(t);
                    goto out;
                }
                mhi_span_publish(r, MHI_SPAN_FREE);
                map_ends(r);
                mhi_free_insert_locked(r);
            }
            uintptr_t grown = t->base;
            span_dead(t);
            mhi_arena_bits_clear(grown, more, MHI_BM_FREE);
            uintptr_t lo = 0, hi = 0;
            size_t nscav = mhi_arena_bits(grown, more, MHI_BM_SCAV, MHI_BITS_TAKE, &lo, &hi);
            mhi_arena_bits_clear(grown, more, MHI_BM_REL);
            H->stats.heap_released -= (uint64_t)nscav << MHI_PAGE_SHIFT;
            H->stats.heap_idle -= (uint64_t)more << MHI_PAGE_SHIFT;
            H->stats.heap_inuse += (uint64_t)more << MHI_PAGE_SHIFT;
            if (s->state == MHI_SPAN_MANUAL) H->stats.heap_manual += (uint64_t)more << MHI_PAGE_SHIFT;
            if (nscav != more) s->needzero = 1;
            s->npages = npages;
            s->nbytes = npages << MHI_PAGE_SHIFT;
            mhi_arena_map_range(s->base, s->npages, s);
            ok = true;
        }
    }
out:
    mhi_unlock(&H->lock);
    return ok;
}

/* ---- lookups ---- */

mhi_span *mhi_heap_span(uintptr_t a) {
    mhi_arena *ar = mhi_arena_of(a);
    if (!ar) return NULL;
    mhi_span *s = mhi_arena_span(ar, a);
    if (!s) return NULL;
    uint8_t st = mhi_span_state(s);
    if (st != MHI_SPAN_INUSE && st != MHI_SPAN_MANUAL) return NULL;
    if (a < s->base || a >= mhi_span_end(s)) return NULL;
    return s;
}

bool mhi_mlookup(uintptr_t v, uintptr_t *base, size_t *size, mhi_span **sp) {
    mhi_span *s = mhi_heap_span(v);
    if (s && mhi_span_state(s) != MHI_SPAN_INUSE) s = NULL;
    if (sp) *sp = s;
    if (!s) {
        if (base) *base = 0;
        if (size) *size = 0;
        return false;
    }
    if (mhi_kind_small(mhi_span_kind(s)) || (s->kind == MHI_KIND_GC && s->elemsize)) {
        uintptr_t i = mhi_span_index(s, (const void *)v);
        if (base) *base = s->base + i * s->elemsize;
        if (size) *size = s->elemsize;
    } else {
        if (base) *base = s->base;
        if (size) *size = s->npages << MHI_PAGE_SHIFT;
    }
    return true;
}

/* ---- statistics ---- */

void mhi_heap_stats_get(mhi_heap_stats *out) {
    mhi_lock(&H->lock);
    *out = H->stats;
    mhi_unlock(&H->lock);
}

/* ---- fork ---- */

void mhi_heap_fork_prepare(void) { mhi_lock_for_fork(&H->lock); }
void mhi_heap_fork_parent(void) { mhi_unlock_for_fork(&H->lock); }
void mhi_heap_fork_child(void) { mhi_lock_reset(&H->lock); }

