/* gcheap.c - the GC heap's spans: set-up, the per-class lists, the
 * allocation slow paths, sweeping by sweep generation, and reclaim of
 * whole dead spans through the per-arena inuse and marks bitmaps (gc.h). */
#include "gc.h"

#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

mhi_span mhi_gc_span_empty; /* nelems 0: every pop fails */

/* The three first kinds' lists (the others' come from the OS). */
static mhi_gc_lists base_lists[MHI_GC_NKINDS][MHI_NUM_CLASSES];

mhi_gc_kind_info mhi_gc_kinds[MHI_GC_MAXKINDS] = {
    [MHI_GC_SCAN] = {MHI_GC_DS_LENGTH, true, true},
    [MHI_GC_NOSCAN] = {MHI_GC_DS_LENGTH, false, false},
    [MHI_GC_UNCOLL] = {MHI_GC_DS_LENGTH, true, true},
};

void mhi_gc_heap_init_locked(void) {
    mhi_lock_assert_held(&G->lock);
    if (G->inited) return;
    mhi_fixalloc_init(&G->bitsalloc, 2 * MHI_GC_BITWORDS * sizeof(uint64_t), &G->bits_sys);
    atomic_store_explicit(&G->sweepgen, 2, memory_order_relaxed);
    for (int k = 0; k < MHI_GC_NKINDS; k++) G->lists[k] = base_lists[k];
    atomic_store_explicit(&G->nkinds, MHI_GC_NKINDS, memory_order_release);
    G->inited = true;
}

/* Kinds made so far (lock held, or in the pause). */
static inline int nkinds(void) { return atomic_load_explicit(&G->nkinds, memory_order_relaxed); }

int mhi_gc_kind_new(uintptr_t descr, bool adjust, bool clear) {
    mhi_lock(&G->lock);
    mhi_gc_heap_init_locked();
    int k = nkinds();
    mhi_gc_lists *l = NULL;
    if (k < MHI_GC_MAXKINDS) l = mhi_os_alloc(MHI_NUM_CLASSES * sizeof *l, &G->kinds_sys);
    if (l) {
        G->lists[k] = l; /* (zero: empty lists) */
        mhi_gc_kinds[k] = (mhi_gc_kind_info){descr, adjust, clear};
        atomic_store_explicit(&G->nkinds, k + 1, memory_order_release);
    } else {
        k = -1;
    }
    mhi_unlock(&G->lock);
    return k;
}

/* Add to a counter that only GC-lock holders write (and anyone reads):
 * no locked read-modify-write, which would wait for the store buffer. */
static inline void locked_add(_Atomic uint64_t *x, uint64_t v) {
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline uint32_t sweepgen(void) {
    return atomic_load_explicit(&G->sweepgen, memory_order_relaxed);
}


/* (the lists are indexed [kind][class]; spans of one object have class 0,
 * and are never partial) */
#define LISTS(c, k) (&G->lists[k][c])
#define PARTIAL(s) (&LISTS((s)->sizeclass, (s)->gc_kind)->partial)
#define FULL(s) (&LISTS((s)->sizeclass, (s)->gc_kind)->full)
#define UNSWEPT(s) (&LISTS((s)->sizeclass, (s)->gc_kind)->unswept)

/* Which list holds uncached s: MHI_WHERE_CPARTIAL (partial),
 * MHI_WHERE_CFULL (full), MHI_WHERE_AVAIL (unswept), MHI_WHERE_NONE. */
static void unlist(mhi_span *s) {
    mhi_span_list *l = NULL;
    if (s->gc_where == MHI_WHERE_CPARTIAL) l = PARTIAL(s);
    else if (s->gc_where == MHI_WHERE_CFULL) l = FULL(s);
    else if (s->gc_where == MHI_WHERE_AVAIL) l = UNSWEPT(s);
    if (!l) return;
    if (s->gc_where == MHI_WHERE_AVAIL) G->unswept_pages -= s->npages;
    mhi_span_list_remove(l, s);
    s->gc_where = MHI_WHERE_NONE;
}

static void enlist(mhi_span *s, int where) {
    mhi_span_list *l;
    l = where == MHI_WHERE_CPARTIAL ? PARTIAL(s) : where == MHI_WHERE_CFULL ? FULL(s) : UNSWEPT(s);
    if (where == MHI_WHERE_AVAIL) G->unswept_pages += s->npages;
    s->gc_where = (uint8_t)where;
    mhi_span_list_push(l, s);
}

/* A free slot at or past freeindex? */
static bool has_free(const mhi_span *s) {
    uint32_t i = mhi_gc_freeindex(s);
    if (i >= s->nelems) return false;
    uint32_t w = i / 64;
    if (~s->gc_alloc[w] >> (i & 63)) return true;
    for (w++; w < mhi_gc_words(s); w++)
        if (~s->gc_alloc[w]) return true;
    return false;
}

/* File uncached, swept s by whether it has a free slot. */
static void file_swept(mhi_span *s) {
    enlist(s, has_free(s) ? MHI_WHERE_CPARTIAL : MHI_WHERE_CFULL);
}

/* Give s back to the page heap (off every list). */
static void span_free(mhi_span *s) {
    size_t bytes = s->npages << MHI_PAGE_SHIFT;
    if (mhi_gc_span_has_specials(s)) mhi_gc_free_specials_locked(s, 0, true);
    mhi_fixalloc_free(&G->bitsalloc, s->gc_alloc);
    locked_add(&G->heap_bytes, -bytes);
    mhi_heap_free(s); /* (gc lock, then the heap lock) */
}

/* Sweep s (uncached, off every list, needing sweeping): its marked
 * objects, and those allocated since its snapshot, become its allocated
 * ones.  Returns false if nothing was live (s went back to the page
 * heap). */
static bool sweep_span(mhi_span *s) {
    uint32_t nw = mhi_gc_words(s), live = 0, old = mhi_gc_count_allocated(s);
    uint64_t *a = s->gc_alloc, *m = mhi_gc_marks(s);
    if (s->gc_snapped) {
        /* Slots taken from the snapshot on (free at the last sweep, so
         * their alloc bits are clear), and the slot just before it: the
         * owner may have been stopped after it published freeindex =
         * i + 1 for slot i and before it formed the slot's address, so no
         * root held a pointer to it. */
        uint32_t snap = s->gc_snap, end = mhi_gc_freeindex(s);
        for (uint32_t w = snap / 64; w < nw; w++)
            m[w] |= (mhi_gc_below(end, w) & ~mhi_gc_below(snap, w)) & ~a[w];
        if (snap) m[(snap - 1) >> 6] |= 1ULL << ((snap - 1) & 63);
    }
    live = mhi_gc_count(s, m);
    if (s->specials) mhi_gc_sweep_specials_locked(s, m);
    size_t size = mhi_gc_elem_size(s);
    locked_add(&G->swept_bytes, (uint64_t)(old > live ? old - live : 0) * size);
    if (live == 0) {
        span_free(s);
        return false;
    }
    /* In place, a word at a time: a live object's alloc bit stays set
     * throughout, for lock-free readers (mh_gc_base). */
    for (uint32_t w = 0; w < nw; w++) {
        __atomic_store_n(&a[w], m[w] | mhi_gc_tail(s, w), __ATOMIC_RELAXED);
        m[w] = mhi_gc_tail(s, w);
    }
    atomic_store_explicit(&s->gc_freeindex, 0, memory_order_release);
    s->gc_cache = 0;
    s->gc_snapped = 0;
    s->needzero = 1;
    atomic_store_explicit(&s->sweepgen, sweepgen(), memory_order_relaxed);
    return true;
}

/* Sweep the first span of list l (the caller checked it is not empty);
 * returns it if it is still live (filed), else NULL. */
static mhi_span *sweep_first(mhi_span_list *l) {
    mhi_span *s = l->first;
    unlist(s);
    if (!sweep_span(s)) return NULL;
    file_swept(s);
    return s;
}

/* Sweep unswept spans of any class until max spans or npages pages are
 * done (lock held); returns the spans swept. */
static size_t sweep_locked(size_t max, uint64_t npages) {
    size_t n = 0;
    uint64_t pages = 0;
    for (size_t c = 0; c < MHI_NUM_CLASSES && n < max && pages < npages; c++)
        for (int k = 0; k < nkinds() && n < max && pages < npages; k++)
            for (mhi_span_list *l = &LISTS(c, k)->unswept; l->first && n < max && pages < npages; n++) {
                pages += l->first->npages;
                (void)sweep_first(l);
            }
    return n;
}

size_t mhi_gc_sweep_some(size_t max) {
    mhi_lock(&G->lock);
    size_t n = sweep_locked(max, UINT64_MAX);
    size_t left = G->unswept_pages;
    mhi_unlock(&G->lock);
    return left ? n : 0;
}

/* Proportional sweeping (the seed's sweepPagesPerByte): a thread taking
 * bytes of room also sweeps pages in proportion, at the rate set in the
 * pause so that sweeping ends before the heap reaches the next goal
 * (lock held). */
static void sweep_credit_locked(uint64_t bytes) {
    if (!G->unswept_pages || !G->sweep_ppb) return;
    G->sweep_debt += bytes * G->sweep_ppb;
    uint64_t pages = G->sweep_debt >> 16;
    if (!pages) return;
    G->sweep_debt &= 0xffff;
    (void)sweep_locked(SIZE_MAX, pages);
}

void mhi_gc_finish_sweep(void) {
    while (mhi_gc_sweep_some(64)) {
    }
}

/* ---- reclaim: whole dead spans found through the arena bitmaps ---- */

/* Free unswept spans without a mark, found as in-use pages without a
 * marks bit, until at least npages are back (lock held).  Spans a thread
 * cached through the last pause may hold objects allocated after it, and
 * are left to sweeping.  The bitmaps are read under the heap lock, a few
 * candidates at a time, and the spans freed after it is dropped; the
 * search resumes where the last one stopped, so one cycle's reclaims read
 * each bitmap word once (the seed's mHeap_Reclaim walks every span). */
static mhi_arena *reclaim_ar; /* where the last reclaim stopped (lock); */
static size_t reclaim_w;       /* reset by each pause */

static size_t reclaim_locked(size_t npages) {
    size_t got = 0;
    mhi_arena *ar = reclaim_ar;
    size_t w = reclaim_w;
    while (ar && got < npages) {
        mhi_span *found[16 + 64]; /* (whole words: up to 64 more) */
        size_t n = 0;
        mhi_lock(&mhi_heap_.lock);
        for (; ar && n < 16; ar = ar->next, w = 0) {
            for (; w < MHI_ARENA_WORDS && n < 16; w++) {
                /* (a span with specials is swept: its records need it) */
                uint64_t cand = ar->inuse[w] & ~__atomic_load_n(&ar->marks[w], __ATOMIC_RELAXED) &
                                ~__atomic_load_n(&ar->special[w], __ATOMIC_RELAXED);
                for (; cand; cand &= cand - 1) {
                    size_t b = (size_t)__builtin_ctzll(cand);
                    mhi_span *s = mhi_arena_span(ar, ar->base + ((w * 64 + b) << MHI_PAGE_SHIFT));
                    if (s && mhi_span_kind(s) == MHI_KIND_GC && s->gc_where == MHI_WHERE_AVAIL &&
                        !s->gc_snapped && !s->gc_cached && !s->specials)
                        found[n++] = s;
                }
            }
            if (n >= 16) break;
        }
        mhi_unlock(&mhi_heap_.lock);
        reclaim_ar = ar;
        reclaim_w = w;
        if (n == 0) break;
        for (size_t i = 0; i < n; i++) {
            mhi_span *s = found[i];
            uint64_t objs = mhi_gc_count_allocated(s);
            got += s->npages;
            unlist(s);
            locked_add(&G->reclaimed_bytes, objs * mhi_gc_elem_size(s));
            span_free(s);
        }
    }
    return got;
}

/* ---- new spans ---- */

/* Room for npages more pages of GC heap under the limit? */
static bool under_limit(size_t npages, bool *need_gc) {
    uint64_t limit = atomic_load_explicit(&G->limit, memory_order_relaxed);
    if (!limit) return true;
    uint64_t bytes = atomic_load_explicit(&G->heap_bytes, memory_order_relaxed);
    if (bytes + (npages << MHI_PAGE_SHIFT) <= limit) return true;
    *need_gc = true;
    return false;
}

/* A fresh span of class c (0: one object of npages pages) and kind k from
 * the page heap, every object free (lock held). */
static mhi_span *span_new(size_t c, size_t npages, int k, bool *need_gc) {
    if (G->unswept_pages) reclaim_locked(npages);
    if (!under_limit(npages, need_gc)) return NULL;
    uint64_t *bits = mhi_fixalloc_alloc(&G->bitsalloc);
    if (!bits) return NULL;
    /* A large scanned object is zeroed here (where it was used before); a
     * small span keeps needzero, and its scanned objects are zeroed one
     * by one as they are handed out, in lines the program writes next. */
    mhi_span *s = mhi_heap_alloc(npages, MHI_SPAN_INUSE, MHI_KIND_GC, c == 0 && k != MHI_GC_NOSCAN);
    if (!s) {
        mhi_fixalloc_free(&G->bitsalloc, bits);
        *need_gc = true;
        return NULL;
    }
    s->sizeclass = (uint8_t)c;
    s->elemsize = c ? mhi_class_size[c] : 0;
    s->nelems = c ? mhi_class_nobjs[c] : 1;
    s->divmul = c ? mhi_class_divmul[c] : 0;
    s->gc_kind = (uint8_t)k;
    s->gc_cached = 0;
    s->gc_snapped = 0;
    s->gc_recs = 0;
    s->gc_link_objs = s->gc_link_locs = 0;
    s->gc_where = MHI_WHERE_NONE;
    s->gc_alloc = bits;
    for (uint32_t w = 0; w < mhi_gc_words(s); w++) bits[w] = mhi_gc_marks(s)[w] = mhi_gc_tail(s, w);
    atomic_store_explicit(&s->gc_freeindex, 0, memory_order_relaxed);
    s->gc_cache = 0;
    atomic_store_explicit(&s->sweepgen, sweepgen(), memory_order_relaxed);
    locked_add(&G->heap_bytes, npages << MHI_PAGE_SHIFT);
    return s;
}

/* The owner of current span s, its allocation cache empty: take the next
 * free slot at or past freeindex and load the cache with the free slots
 * after it in the same bitmap word; NULL if the span is full. */
static void *take_slot(mhi_span *s) {
    uint32_t i = mhi_gc_freeindex(s);
    for (uint32_t w = i / 64; w < mhi_gc_words(s); w++) {
        uint64_t f = ~s->gc_alloc[w];
        if (w == i / 64) f &= ~0ULL << (i & 63);
        if (!f) continue;
        uint32_t b = (uint32_t)__builtin_ctzll(f), j = w * 64 + b;
        s->gc_cache = (f >> b) >> 1;
        atomic_store_explicit(&s->gc_freeindex, j + 1, memory_order_relaxed);
        return (char *)s->base + (size_t)j * s->elemsize;
    }
    s->gc_cache = 0;
    atomic_store_explicit(&s->gc_freeindex, s->nelems, memory_order_relaxed);
    return NULL;
}

/* Set the first clear alloc bit of s, which keeps exact bits (an
 * uncollectable span, under the lock); NULL if none. */
static void *claim_slot(mhi_span *s) {
    for (uint32_t w = 0; w < mhi_gc_words(s); w++) {
        uint64_t word = s->gc_alloc[w];
        if (!~word) continue;
        uint32_t j = w * 64 + (uint32_t)__builtin_ctzll(~word);
        __atomic_store_n(&s->gc_alloc[w], word | 1ULL << (j & 63), __ATOMIC_RELAXED);
        return (char *)s->base + (size_t)j * s->elemsize;
    }
    return NULL;
}

/* A span of class c, kind k with a free slot, for a thread's cache or for
 * the uncollectable path (lock held): a swept partial one, else one swept
 * now (lazy sweeping), else a new one. */
static mhi_span *span_get(size_t c, int k, bool *need_gc) {
    mhi_span_list *l = &LISTS(c, k)->partial;
    if (l->first) {
        mhi_span *s = l->first;
        unlist(s);
        return s;
    }
    while (LISTS(c, k)->unswept.first) {
        mhi_span *s = sweep_first(&LISTS(c, k)->unswept);
        if (s && s->gc_where == MHI_WHERE_CPARTIAL) {
            unlist(s);
            return s;
        }
    }
    return span_new(c, mhi_class_npages[c], k, need_gc);
}

/* Free bytes of s a thread takes with it (for pacing). */
static uint64_t free_bytes(const mhi_span *s) {
    return (uint64_t)(s->nelems - mhi_gc_count(s, s->gc_alloc)) * s->elemsize;
}

/* s leaves a thread's cache (lock held). */
static void release_cached(mhi_span *s) {
    s->gc_cached = 0;
    s->gc_cache = 0;
    if (atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == sweepgen()) {
        /* The slots it handed out become alloc bits (in place: each slot
         * stays allocated throughout, for lock-free readers). */
        uint32_t fi = mhi_gc_freeindex(s);
        for (uint32_t w = 0; w < mhi_gc_words(s) && w * 64 < fi; w++)
            __atomic_store_n(&s->gc_alloc[w], s->gc_alloc[w] | mhi_gc_below(fi, w), __ATOMIC_RELAXED);
        atomic_store_explicit(&s->gc_freeindex, 0, memory_order_release);
        file_swept(s);
    } else {
        enlist(s, MHI_WHERE_AVAIL); /* cached through a pause: sweep it */
    }
}

void *mhi_gc_refill(mhi_gc_thread *t, size_t c, int k, bool *need_gc) {
    mhi_span *s = t->cur[c][k];
    if (s != &mhi_gc_span_empty) {
        void *p = take_slot(s); /* a free slot further on */
        if (p) {
            if (k == MHI_GC_SCAN && s->needzero) mhi_gc_zero(p, s->elemsize);
            return p;
        }
    }
    mhi_lock(&G->lock);
    mhi_gc_heap_init_locked();
    if (s != &mhi_gc_span_empty) {
        t->cur[c][k] = &mhi_gc_span_empty;
        release_cached(s);
    }
    s = span_get(c, k, need_gc);
    if (s) {
        s->gc_cached = 1;
        t->cur[c][k] = s;
        uint64_t fb = free_bytes(s);
        sweep_credit_locked(fb);
        locked_add(&G->alloc_since, fb);
        locked_add(&G->alloc_bytes, fb);
    }
    mhi_unlock(&G->lock);
    if (!s) return NULL;
    void *p = take_slot(s); /* (it has a free slot) */
    if (p && k == MHI_GC_SCAN && s->needzero) mhi_gc_zero(p, s->elemsize);
    return p;
}

void *mhi_gc_alloc_uncollectable(size_t c) {
    bool need_gc = false;
    mhi_lock(&G->lock);
    mhi_gc_heap_init_locked();
    mhi_span *s = LISTS(c, MHI_GC_UNCOLL)->partial.first;
    if (s) unlist(s);
    else s = span_new(c, mhi_class_npages[c], MHI_GC_UNCOLL, &need_gc);
    void *p = NULL;
    if (s) {
        p = claim_slot(s);
        if (s->needzero) mhi_gc_zero(p, s->elemsize);
        file_swept(s);
        locked_add(&G->alloc_since, s->elemsize);
        locked_add(&G->alloc_bytes, s->elemsize);
    }
    mhi_unlock(&G->lock);
    return p;
}

void *mhi_gc_alloc_kind_small(size_t c, int k, bool *need_gc) {
    mhi_lock(&G->lock);
    /* (a swept span: exact alloc bits, freeindex 0) */
    mhi_span *s = span_get(c, k, need_gc);
    void *p = NULL;
    if (s) {
        p = claim_slot(s); /* (it has a free slot) */
        const mhi_gc_kind_info *ki = &mhi_gc_kinds[k];
        uintptr_t tag = ki->descr & MHI_GC_DS_TAGS;
        if (s->needzero && (ki->clear || tag == MHI_GC_DS_PROC || tag == MHI_GC_DS_PER_OBJECT))
            mhi_gc_zero(p, s->elemsize);
        file_swept(s);
        sweep_credit_locked(s->elemsize);
        locked_add(&G->alloc_since, s->elemsize);
        locked_add(&G->alloc_bytes, s->elemsize);
    }
    mhi_unlock(&G->lock);
    return p;
}

void *mhi_gc_alloc_large(size_t size, int k, bool *need_gc) {
    size_t npages = (size + MHI_PAGE_SIZE - 1) >> MHI_PAGE_SHIFT;
    if (npages == 0 || size > PTRDIFF_MAX) return NULL;
    mhi_lock(&G->lock);
    mhi_gc_heap_init_locked();
    sweep_credit_locked((uint64_t)npages << MHI_PAGE_SHIFT);
    mhi_span *s = span_new(0, npages, k, need_gc);
    void *p = NULL;
    if (s) {
        /* The address is formed before the lock is dropped and kept
         * opaque, so from the first moment the world can stop it is in a
         * register or on the stack, where marking finds it. */
        p = (void *)s->base;
        __asm__ volatile("" : "+r"(p) : : "memory");
        s->gc_alloc[0] |= 1;
        enlist(s, MHI_WHERE_CFULL);
        locked_add(&G->alloc_since, npages << MHI_PAGE_SHIFT);
        locked_add(&G->alloc_bytes, size);
    }
    mhi_unlock(&G->lock);
    return p;
}

void mhi_gc_release_thread_spans_locked(mhi_gc_thread *t) {
    mhi_lock_assert_held(&G->lock);
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++)
        for (int k = 0; k < MHI_GC_NKINDS; k++) {
            mhi_span *s = t->cur[c][k];
            if (s == &mhi_gc_span_empty) continue;
            t->cur[c][k] = &mhi_gc_span_empty;
            release_cached(s);
        }
}

void mhi_gc_release_thread_spans(mhi_gc_thread *t) {
    mhi_lock(&G->lock);
    mhi_gc_release_thread_spans_locked(t);
    mhi_unlock(&G->lock);
}

/* ---- the pause ---- */

/* Move every span of l to the unswept lists. */
static void unsweep_list(mhi_span_list *l) {
    mhi_span *s;
    while ((s = l->first)) {
        unlist(s);
        enlist(s, MHI_WHERE_AVAIL);
    }
}

static void snapshot(mhi_span *s, void *ctx) {
    (void)ctx;
    if (s->gc_cached) s->gc_snap = atomic_load_explicit(&s->gc_freeindex, memory_order_relaxed);
    s->gc_snapped = s->gc_cached;
}

void mhi_gc_start_sweep_locked(void) {
    mhi_lock_assert_held(&G->lock);
    /* This mark covered every object allocated so far: only the spans
     * threads keep allocating from need a snapshot, taken now. */
    mhi_gc_each_span_locked(snapshot, NULL);
    for (int k = 0; k < nkinds(); k++)
        for (size_t c = 0; c < MHI_NUM_CLASSES && k != MHI_GC_UNCOLL; c++) {
            unsweep_list(&LISTS(c, k)->partial);
            unsweep_list(&LISTS(c, k)->full);
        }
    atomic_store_explicit(&G->sweepgen, sweepgen() + 2, memory_order_relaxed);
    /* Sweep credit: every unswept page by the time the heap has grown by
     * half the distance to the next goal (16.16 fixed point). */
    uint64_t goal = atomic_load_explicit(&G->next_gc, memory_order_relaxed);
    uint64_t dist = goal > G->live_bytes ? (goal - G->live_bytes) / 2 : 0;
    if (dist < ((uint64_t)1 << 20)) dist = (uint64_t)1 << 20;
    G->sweep_ppb = (G->unswept_pages << 16) / dist + 1;
    G->sweep_debt = 0;
    reclaim_ar = mhi_arena_list;
    reclaim_w = 0;
    /* Uncollectable spans are never swept: they stay current. */
    for (size_t c = 0; c < MHI_NUM_CLASSES; c++) {
        for (mhi_span *s = LISTS(c, MHI_GC_UNCOLL)->partial.first; s; s = s->next)
            atomic_store_explicit(&s->sweepgen, sweepgen(), memory_order_relaxed);
        for (mhi_span *s = LISTS(c, MHI_GC_UNCOLL)->full.first; s; s = s->next)
            atomic_store_explicit(&s->sweepgen, sweepgen(), memory_order_relaxed);
    }
}

/* ---- objects ---- */

mhi_span *mhi_gc_span_of(const void *p) {
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    if (!s || mhi_span_state(s) != MHI_SPAN_INUSE || mhi_span_kind(s) != MHI_KIND_GC) return NULL;
    return s;
}

long mhi_gc_object_index(mhi_span *s, uintptr_t p) {
    uint32_t i = mhi_span_index(s, (const void *)p);
    if (i >= s->nelems || !mhi_gc_allocated(s, i)) return -1;
    return (long)i;
}

void mhi_gc_free_object(void *p) {
    mhi_span *s = mhi_gc_span_of(p);
    if (!s) mhi_fatal_at("invalid pointer", p);
    long i = mhi_gc_object_index(s, (uintptr_t)p);
    size_t size = mhi_gc_elem_size(s);
    if (i < 0) mhi_fatal_at("double free", p);
    if ((uintptr_t)p != s->base + (uintptr_t)i * size) mhi_fatal_at("invalid pointer", p);
    mhi_lock(&G->lock);
    locked_add(&G->freed_bytes, size);
    if (mhi_gc_span_has_specials(s)) mhi_gc_free_specials_locked(s, (size_t)i * size, false);
    if (s->sizeclass == 0) {
        unlist(s);
        span_free(s);
    } else if (!s->gc_cached && mhi_gc_freeindex(s) == 0) {
        /* Nobody allocates from s and its alloc bits are exact: the slot
         * is free at once. */
        __atomic_store_n(&s->gc_alloc[i >> 6], s->gc_alloc[i >> 6] & ~(1ULL << (i & 63)),
                         __ATOMIC_RELAXED);
        mhi_gc_marks(s)[i >> 6] &= ~(1ULL << (i & 63));
        if (s->gc_where == MHI_WHERE_CFULL) {
            unlist(s);
            enlist(s, MHI_WHERE_CPARTIAL);
        }
        s->needzero = 1;
    } else if (s->gc_kind != MHI_GC_NOSCAN) {
        /* A thread allocates from s, or s waits to be swept with the
         * slots below its freeindex allocated: the slot waits for a sweep
         * after the next mark; meanwhile it holds no pointer. */
        memset(p, 0, size);
    }
    mhi_unlock(&G->lock);
}

/* Bytes a program says it allocated or freed itself (bdwgc's
 * GC_incr_bytes_allocd and GC_incr_bytes_freed): allocated ones count
 * towards the next collection, as bytes handed out do. */
void mhi_gc_count_bytes(uint64_t allocd, uint64_t freed) {
    mhi_lock(&G->lock);
    locked_add(&G->alloc_since, allocd);
    locked_add(&G->alloc_bytes, allocd);
    locked_add(&G->freed_bytes, freed);
    mhi_unlock(&G->lock);
}

/* ---- walking and verifying ---- */

void mhi_gc_each_span_locked(void (*fn)(mhi_span *s, void *ctx), void *ctx) {
    if (!G->inited) return;
    for (size_t c = 0; c < MHI_NUM_CLASSES; c++)
        for (int k = 0; k < nkinds(); k++) {
            mhi_gc_lists *l = LISTS(c, k);
            mhi_span_list *ls[3] = {&l->partial, &l->full, &l->unswept};
            for (int i = 0; i < 3; i++)
                for (mhi_span *s = ls[i]->first; s; s = s->next) fn(s, ctx);
        }
    for (mhi_gc_thread *t = G->threads; t; t = t->next)
        for (size_t c = 1; c < MHI_NUM_CLASSES; c++)
            for (int k = 0; k < MHI_GC_NKINDS; k++)
                if (t->cur[c][k] != &mhi_gc_span_empty) fn(t->cur[c][k], ctx);
}

typedef struct {
    void (*fn)(void *obj, size_t size, void *ctx);
    void *ctx;
} each_object_ctx;

/* The objects of s that the last mark left live, or allocated since: on
 * a swept span its allocated ones; on one waiting for its sweep, what
 * sweep_span will keep (its marks, and from its snapshot on the slots
 * handed out since, with the one before), read without changing it. */
static void each_object(mhi_span *s, void *arg) {
    each_object_ctx *e = arg;
    const uint64_t *a = s->gc_alloc, *m = mhi_gc_marks(s);
    bool swept = atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == sweepgen();
    uint32_t fi = atomic_load_explicit(&s->gc_freeindex, memory_order_acquire), snap = s->gc_snap;
    size_t size = mhi_gc_elem_size(s);
    for (uint32_t w = 0; w < mhi_gc_words(s); w++) {
        uint64_t aw = __atomic_load_n(&a[w], __ATOMIC_RELAXED), live;
        if (swept) {
            live = aw | mhi_gc_below(fi, w);
        } else {
            live = m[w];
            if (s->gc_snapped) {
                live |= (mhi_gc_below(fi, w) & ~mhi_gc_below(snap, w)) & ~aw;
                if (snap && (snap - 1) >> 6 == w) live |= 1ULL << ((snap - 1) & 63);
            }
        }
        for (live &= ~mhi_gc_tail(s, w); live; live &= live - 1) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(live);
            e->fn((void *)(s->base + (uintptr_t)i * size), size, e->ctx);
        }
    }
}

void mhi_gc_each_object(void (*fn)(void *obj, size_t size, void *ctx), void *ctx) {
    mhi_lock_assert_held(&G->world);
    each_object_ctx e = {fn, ctx};
    mhi_lock(&G->lock);
    mhi_gc_each_span_locked(each_object, &e);
    mhi_unlock(&G->lock);
}

typedef struct {
    size_t errors;
    uint64_t bytes;
} verify_ctx;

static void verify_span(mhi_span *s, void *arg) {
    verify_ctx *v = arg;
    size_t *e = &v->errors;
    void *b = (void *)s->base;
    uint32_t h = sweepgen(), sg = atomic_load_explicit(&s->sweepgen, memory_order_relaxed);
    MHI_VERIFY(e, s->state == MHI_SPAN_INUSE && s->kind == MHI_KIND_GC, "gc span %p: state %d kind %d",
               b, s->state, s->kind);
    MHI_VERIFY(e, s->gc_kind < nkinds(), "gc span %p: kind %d", b, s->gc_kind);
    /* (an unswept span may lag several generations: see gc.h) */
    MHI_VERIFY(e, sg == h || ((h - sg) % 2 == 0 && (s->gc_where == MHI_WHERE_AVAIL || s->gc_cached)),
               "gc span %p: sweepgen %u, heap %u", b, sg, h);
    MHI_VERIFY(e, sg == h || s->gc_where == MHI_WHERE_AVAIL || s->gc_cached,
               "gc span %p: needs sweeping but is not on an unswept list", b);
    MHI_VERIFY(e, s->gc_where != MHI_WHERE_AVAIL || sg != h, "gc span %p: swept but unswept", b);
    MHI_VERIFY(e, (s->gc_where == MHI_WHERE_NONE) == (s->gc_cached != 0),
               "gc span %p: cached %d but listed %d", b, s->gc_cached, s->gc_where);
    uint32_t fi = mhi_gc_freeindex(s);
    MHI_VERIFY(e, fi <= s->nelems, "gc span %p: freeindex %u of %u", b, fi, s->nelems);
    MHI_VERIFY(e, s->gc_cached || sg != h || fi == 0,
               "gc span %p: swept and uncached with freeindex %u", b, fi);
    MHI_VERIFY(e, s->gc_cached || s->gc_cache == 0, "gc span %p: uncached with an allocation cache", b);
    if (s->gc_where == MHI_WHERE_CFULL && sg == h) MHI_VERIFY(e, !has_free(s), "gc span %p: full with a free slot", b);
    if (s->gc_where == MHI_WHERE_CPARTIAL) MHI_VERIFY(e, has_free(s), "gc span %p: partial without a free slot", b);
    for (uint32_t w = 0; w < mhi_gc_words(s); w++) {
        uint64_t t = mhi_gc_tail(s, w);
        MHI_VERIFY(e, (s->gc_alloc[w] & t) == t && (mhi_gc_marks(s)[w] & t) == t,
                   "gc span %p: tail bits of word %u", b, w);
    }
    *e += mhi_gc_verify_specials_locked(s);
    v->bytes += s->npages << MHI_PAGE_SHIFT;
}

size_t mhi_gc_verify(void) {
    verify_ctx v = {0, 0};
    mhi_lock(&G->world);
    mhi_lock(&G->lock);
    mhi_gc_each_span_locked(verify_span, &v);
    uint64_t hb = atomic_load_explicit(&G->heap_bytes, memory_order_relaxed);
    MHI_VERIFY(&v.errors, v.bytes == hb, "gc heap holds %llu bytes of spans, counted %llu",
               (unsigned long long)v.bytes, (unsigned long long)hb);
    uint64_t up = 0;
    for (size_t c = 0; c < MHI_NUM_CLASSES && G->inited; c++)
        for (int k = 0; k < nkinds(); k++)
            for (mhi_span *s = LISTS(c, k)->unswept.first; s; s = s->next) up += s->npages;
    MHI_VERIFY(&v.errors, up == G->unswept_pages, "gc: %llu unswept pages listed, %llu counted",
               (unsigned long long)up, (unsigned long long)G->unswept_pages);
    mhi_unlock(&G->lock);
    mhi_unlock(&G->world);
    return v.errors;
}
