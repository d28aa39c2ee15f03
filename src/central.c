/* central.c - per-size-class lists of unowned spans (see central.h). */
#include "central.h"

#include <string.h>

#include "pageheap.h"
#include "print.h"

mhi_central mhi_centrals[MHI_NUM_CLASSES];

void mhi_malloc_fatal(const char *what, const void *p) {
    mhi_fatal("%s: %p", what, p);
}

/* Splice an xfree chain (objects marked by their freers) onto s's free
 * list; returns its length.  A chain longer than the span means an object
 * was pushed twice (two frees racing): a double free. */
static uint32_t splice_xfree(mhi_span *s, uintptr_t list) {
    uint32_t n = 0;
    if (list) s->touched = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed);
    while (list) {
        void *p = (void *)list;
        list = (uintptr_t) * (void **)p;
        if (MHI_UNLIKELY(s->nfree >= s->nelems)) mhi_malloc_fatal("double free", p);
        n++;
        *(void **)p = s->freelist;
        s->freelist = p;
        s->nfree++;
    }
    return n;
}

size_t mhi_span_collect_xfree(mhi_span *s) {
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_acquire);
    do {
        if (!(x & ~MHI_XF_TAGS)) return 0;
    } while (!atomic_compare_exchange_weak_explicit(&s->xfree, &x, x & MHI_XF_TAGS,
                                                    memory_order_acquire, memory_order_acquire));
    return splice_xfree(s, x & ~MHI_XF_TAGS);
}

/* A fresh unowned span of class c from the page heap, every object free
 * (central lock held). */
static mhi_span *span_new_small(size_t c) {
    mhi_heap_residency res;
    mhi_span *s = mhi_heap_alloc_res(mhi_class_npages[c], MHI_SPAN_INUSE, MHI_KIND_SMALL, false,
                                     &res);
    if (!s) return NULL;
    /* The set-up below writes every object: bring a span of several pages
     * in with one call rather than a fault per page. */
    if (res.nonresident && s->npages > 1)
        mhi_os_populate((void *)s->base, s->npages << MHI_PAGE_SHIFT);
    uint32_t size = mhi_class_size[c], n = mhi_class_nobjs[c];
    s->sizeclass = (uint8_t)c;
    s->elemsize = size;
    s->nelems = n;
    s->divmul = mhi_class_divmul[c];
    s->nbytes = s->npages << MHI_PAGE_SHIFT;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->xfree, MHI_XF_ABANDONED, memory_order_relaxed);
    atomic_store_explicit(&s->onstack, 0, memory_order_relaxed);
    s->where = MHI_WHERE_NONE;
    /* Free list in address order, so a fresh span is handed out front to
     * back and its pages are touched in order. */
    char *p = (char *)s->base;
    for (uint32_t i = 0; i < n; i++) {
        char *q = p + (size_t)i * size;
        *(void **)q = i + 1 < n ? q + size : NULL;
        mhi_mark_free(q);
    }
    s->freelist = p;
    s->nfree = n;
    atomic_store_explicit(&s->relmask, 0, memory_order_relaxed);
    s->touched = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed);
    s->trimmed = s->touched - 1;
    mhi_centrals[c].nspans++;
    mhi_centrals[c].nspan_alloc++;
    return s;
}

/* Central lock held: s is unowned and on no list; file it by its free
 * count. */
static void file_unowned_locked(mhi_central *ce, mhi_span *s) {
    if (s->nfree == s->nelems) {
        ce->nspans--;
        ce->nspan_free++;
        s->where = MHI_WHERE_NONE;
        mhi_heap_free_released(s, mhi_span_released_pages(s)); /* central, then heap */
    } else if (s->nfree > 0) {
        s->where = MHI_WHERE_CPARTIAL;
        mhi_span_list_push(&ce->partial, s);
    } else {
        s->where = MHI_WHERE_CFULL;
        ce->nfull++;
    }
}

/* Central lock held: take unowned s off its list. */
static void unfile_locked(mhi_central *ce, mhi_span *s) {
    if (s->where == MHI_WHERE_CPARTIAL) mhi_span_list_remove(&ce->partial, s);
    else if (s->where == MHI_WHERE_CFULL) ce->nfull--;
    s->where = MHI_WHERE_NONE;
}

/* An unowned span of class c with a free object, taken off its list, or a
 * new one (central lock held). */
static mhi_span *take_locked(mhi_central *ce, size_t c) {
    mhi_span *s = ce->partial.first;
    if (s) unfile_locked(ce, s);
    else s = span_new_small(c);
    return s;
}

mhi_span *mhi_central_take_span(size_t c, void *owner) {
    mhi_central *ce = &mhi_centrals[c];
    mhi_lock(&ce->lock);
    mhi_span *s = take_locked(ce, c);
    if (s) {
        /* Freers that saw the span unowned wait for this lock, then find
         * the owner and push onto xfree instead. */
        atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
        atomic_store_explicit(&s->xfree, 0, memory_order_release);
    }
    mhi_unlock(&ce->lock);
    return s;
}

/* Owner: stop notices for s and wait until no remote freer is delivering
 * one, so that nothing refers to s through the owner's notify stack. */
void mhi_span_quiesce(mhi_span *s) {
    atomic_fetch_and_explicit(&s->xfree, ~MHI_XF_NOTIFY, memory_order_relaxed);
    while (atomic_load_explicit(&s->xfree, memory_order_acquire) & MHI_XF_FREEING) mhi_os_yield();
}

void mhi_central_abandon(mhi_span *s) {
    mhi_central *ce = &mhi_centrals[s->sizeclass];
    mhi_span_quiesce(s);
    mhi_lock(&ce->lock);
    /* From here on freers take this lock and find the span unowned; what
     * they pushed before is applied now. */
    uintptr_t list = atomic_exchange_explicit(&s->xfree, MHI_XF_ABANDONED, memory_order_acq_rel) &
                     ~MHI_XF_TAGS;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    splice_xfree(s, list);
    s->where = MHI_WHERE_NONE;
    file_unowned_locked(ce, s);
    mhi_unlock(&ce->lock);
}

void mhi_central_retire(mhi_span *s) {
    mhi_central *ce = &mhi_centrals[s->sizeclass];
    mhi_span_quiesce(s);
    mhi_lock(&ce->lock);
    atomic_store_explicit(&s->xfree, MHI_XF_ABANDONED, memory_order_relaxed);
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    s->where = MHI_WHERE_NONE;
    ce->nspans--;
    ce->nspan_free++;
    mhi_unlock(&ce->lock);
    mhi_heap_free_released(s, mhi_span_released_pages(s));
}

int mhi_central_free_unowned(mhi_span *s, void *head, void *tail, uint32_t n) {
    mhi_central *ce = &mhi_centrals[s->sizeclass];
    mhi_lock(&ce->lock);
    if (atomic_load_explicit(&s->owner, memory_order_relaxed) != NULL) {
        mhi_unlock(&ce->lock);
        return 0;
    }
    if (MHI_UNLIKELY(s->nfree + n > s->nelems)) {
        mhi_unlock(&ce->lock);
        mhi_malloc_fatal("double free", head);
    }
    /* Checked and marked by the freer (mhi_span_mark_remote). */
    uint32_t was = s->nfree;
    *(void **)tail = s->freelist;
    s->freelist = head;
    s->nfree += n;
    s->touched = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed);
    bool whole = s->nfree == s->nelems;
    if (was == 0 || whole) {
        unfile_locked(ce, s);
        file_unowned_locked(ce, s); /* a whole span goes back to the page heap */
    }
    int r = whole || mhi_span_trim_candidate(s, mhi_os_page_size()) ? 2 : 1;
    mhi_unlock(&ce->lock);
    return r;
}

void *mhi_central_alloc_one(size_t c) {
    mhi_central *ce = &mhi_centrals[c];
    mhi_lock(&ce->lock);
    mhi_span *s = take_locked(ce, c);
    void *p = NULL;
    if (s) {
        if (!s->freelist) mhi_span_unrelease(s);
        p = s->freelist;
        s->freelist = *(void **)p;
        mhi_mark_clear(p);
        s->nfree--;
        file_unowned_locked(ce, s);
    }
    mhi_unlock(&ce->lock);
    return p;
}

/* ---- trimming ---- */

_Atomic uint32_t mhi_trim_epoch;
struct mhi_trim_stat mhi_trim_stat;
/* Set when the OS refused a release (mlockall): released objects may then
 * sit on pages that kept their data, so no trim runs any more and no page
 * is reported released to the page heap. */
static _Atomic bool trim_off;

/* Bits a..b (a <= b < 64). */
static inline uint64_t bits_between(uint32_t a, uint32_t b) {
    return (b - a == 63 ? ~0ULL : (2ULL << (b - a)) - 1) << a;
}

/* The objects of s (at most 64, OS pages no larger than heap pages) that
 * overlap its OS page i; 0 for a page past the last object. */
static uint64_t page_objects(const mhi_span *s, size_t i, size_t ps) {
    size_t size = s->elemsize, used = (size_t)s->nelems * size, lo = i * ps;
    if (lo >= used) return 0;
    size_t hi = lo + ps < used ? lo + ps : used;
    return bits_between((uint32_t)(lo / size), (uint32_t)((hi - 1) / size));
}

/* The OS pages of s (bit i: page i) all of whose objects are in mask;
 * never a page past the last object. */
static uint64_t pages_within(const mhi_span *s, uint64_t mask, size_t ps) {
    uint64_t out = 0;
    for (size_t i = 0; i < s->nbytes / ps && i < 64; i++) {
        uint64_t m = page_objects(s, i, ps);
        if (m && (mask & m) == m) out |= 1ULL << i;
    }
    return out;
}

size_t mhi_span_trim(mhi_span *s) {
    size_t ps = mhi_os_page_size();
    if (s->nelems > 64 || ps > MHI_PAGE_SIZE ||
        atomic_load_explicit(&trim_off, memory_order_relaxed))
        return 0;
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed), onlist = 0;
    for (void *p = s->freelist; p; p = *(void **)p) onlist |= 1ULL << mhi_span_index(s, p);
    /* The pages whose objects are all free, less those whose objects are
     * all released (released with them already). */
    uint64_t pages = pages_within(s, onlist | rel, ps) & ~pages_within(s, rel, ps), take = 0;
    for (uint64_t m = pages; m; m &= m - 1)
        take |= page_objects(s, (size_t)__builtin_ctzll(m), ps) & onlist;
    if (!take) return 0;
    /* Off the list first: the links live in the pages about to go. */
    void **pp = &s->freelist;
    while (*pp) {
        void *p = *pp;
        if (take >> mhi_span_index(s, p) & 1) *pp = *(void **)p;
        else pp = (void **)p;
    }
    atomic_store_explicit(&s->relmask, rel | take, memory_order_relaxed);
    /* release: a freer that sees SMALL_REL sees relmask (acquire in
     * mhi_cache_free_slow) */
    __atomic_store_n(&s->kind, (uint8_t)MHI_KIND_SMALL_REL, __ATOMIC_RELEASE);
    /* A refused madvise leaves the data: harmless, the objects are
     * relinked and re-marked when they come back. */
    size_t released = 0;
    while (pages) {
        uint32_t lo = (uint32_t)__builtin_ctzll(pages), hi = lo;
        while (hi + 1 < 64 && (pages >> (hi + 1) & 1)) hi++;
        pages &= ~bits_between(lo, hi);
        if (mhi_os_decommit((void *)(s->base + lo * ps), (size_t)(hi - lo + 1) * ps))
            released += (size_t)(hi - lo + 1) * ps;
        else
            atomic_store_explicit(&trim_off, true, memory_order_relaxed);
    }
    if (released) {
        atomic_fetch_add_explicit(&mhi_trim_stat.bytes, released, memory_order_relaxed);
        atomic_fetch_add_explicit(&mhi_trim_stat.spans, 1, memory_order_relaxed);
    }
    return released;
}

void mhi_span_unrelease(mhi_span *s) {
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed);
    size_t ps = mhi_os_page_size(), size = s->elemsize;
    /* The span is about to hand these objects out: bring their pages in
     * with one call rather than a fault per page. */
    uintptr_t lo = (s->base + (size_t)__builtin_ctzll(rel) * size) & ~(uintptr_t)(ps - 1);
    uintptr_t hi = s->base + (size_t)(64 - __builtin_clzll(rel)) * size;
    if (hi - lo > ps) mhi_os_populate((void *)lo, hi - lo);
    /* Highest first, so that the list runs in address order. */
    for (uint64_t m = rel; m;) {
        uint32_t i = 63 - (uint32_t)__builtin_clzll(m);
        m &= ~(1ULL << i);
        char *q = (char *)s->base + (size_t)i * size;
        *(void **)q = s->freelist;
        mhi_mark_free(q);
        s->freelist = q;
    }
    atomic_store_explicit(&s->relmask, 0, memory_order_relaxed);
    __atomic_store_n(&s->kind, (uint8_t)MHI_KIND_SMALL, __ATOMIC_RELAXED);
}

uint64_t mhi_span_released_pages(const mhi_span *s) {
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed);
    if (!rel || atomic_load_explicit(&trim_off, memory_order_relaxed)) return 0;
    /* An OS page whose objects are all released was released with the
     * last of them to leave the free list (mhi_span_trim releases every
     * page whose objects are all free), and nothing wrote to it since.  A
     * heap page counts when all its OS pages do.  (rel != 0: the span was
     * trimmed, so OS pages are no larger than heap pages.) */
    size_t ps = mhi_os_page_size(), per = MHI_PAGE_SIZE / ps;
    uint64_t os = pages_within(s, rel, ps), all = per == 64 ? ~0ULL : (1ULL << per) - 1, out = 0;
    for (size_t j = 0; j < s->npages; j++)
        if ((os >> (j * per) & all) == all) out |= 1ULL << j;
    return out;
}

void mhi_span_check_released(const mhi_span *s, uint32_t idx, const void *p) {
    if (atomic_load_explicit(&s->relmask, memory_order_relaxed) >> idx & 1)
        mhi_malloc_fatal("double free", p);
}

bool mhi_span_trim_aged(mhi_span *s, mhi_trim_pass *tp) {
    if (s->trimmed == s->touched || !mhi_span_trim_candidate(s, mhi_os_page_size())) return false;
    if (!tp->force && tp->epoch - s->touched < 2) {
        tp->young = true;
        return false;
    }
    s->trimmed = s->touched;
    size_t n = mhi_span_trim(s);
    tp->bytes += n;
    if (n && tp->budget) tp->budget--;
    return n > 0;
}

void mhi_central_trim(mhi_trim_pass *tp) {
    for (size_t c = 1; c < MHI_NUM_CLASSES && tp->budget; c++) {
        if (mhi_class_nobjs[c] > 64) continue;
        mhi_central *ce = &mhi_centrals[c];
        mhi_lock(&ce->lock);
        for (mhi_span *s = ce->partial.first; s && tp->budget; s = s->next)
            (void)mhi_span_trim_aged(s, tp);
        mhi_unlock(&ce->lock);
    }
}

void mhi_central_totals(uint64_t *spans, uint64_t *bytes) {
    *spans = *bytes = 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        mhi_lock(&mhi_centrals[c].lock);
        uint64_t n = mhi_centrals[c].nspans;
        mhi_unlock(&mhi_centrals[c].lock);
        *spans += n;
        *bytes += n * ((uint64_t)mhi_class_npages[c] << MHI_PAGE_SHIFT);
    }
}

void mhi_central_print(int fd) {
    mhi_printf(fd, "  %6s %6s %8s %8s %8s %10s %10s\n", "class", "size", "spans", "partial", "full",
               "spans_in", "spans_out");
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        mhi_central *ce = &mhi_centrals[c];
        mhi_lock(&ce->lock);
        uint64_t n = ce->nspans, np = ce->partial.count, nf = ce->nfull, na = ce->nspan_alloc,
                 nfr = ce->nspan_free;
        mhi_unlock(&ce->lock);
        if (na == 0) continue;
        mhi_printf(fd, "  %6zu %6u %8llu %8llu %8llu %10llu %10llu\n", c, mhi_class_size[c],
                   (unsigned long long)n, (unsigned long long)np, (unsigned long long)nf,
                   (unsigned long long)na, (unsigned long long)nfr);
    }
}

void mhi_central_fork_prepare(void) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) mhi_lock(&mhi_centrals[c].lock);
}
void mhi_central_fork_parent(void) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) mhi_unlock(&mhi_centrals[c].lock);
}
void mhi_central_fork_child(void) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) mhi_lock_reset(&mhi_centrals[c].lock);
}
