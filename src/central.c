/* central.c - per-size-class lists of unowned spans (see central.h). */
#include "central.h"

#include <string.h>

#include "pageheap.h"
#include "print.h"
#include "secure.h"

mhi_central mhi_centrals[MHI_NUM_CLASSES] = {
    [0 ... MHI_NUM_CLASSES - 1] = {.lock = MHI_LOCK_INIT(MHI_RANK_CENTRAL)},
};

/* A fresh unowned span of class c from the page heap, every object free
 * (central lock held). */
static mhi_span *span_new_small(size_t c) {
    mhi_heap_residency res;
#if MHEAP_SECURE
    size_t npages = mhi_class_npages[c] + 1u; /* and a guard page */
#else
    size_t npages = mhi_class_npages[c];
#endif
    mhi_span *s = mhi_heap_alloc_res(npages, MHI_SPAN_INUSE, MHI_KIND_SMALL, false, &res);
    if (!s) return NULL;
    /* The set-up below writes every object: bring a span of several pages
     * in with one call rather than a fault per page. */
#if MHEAP_SECURE
    if (res.nonresident && s->npages > 2) /* (not the guard page) */
        mhi_os_populate((void *)s->base, (s->npages - 1) << MHI_PAGE_SHIFT);
#else
    if (res.nonresident && s->npages > 1)
        mhi_os_populate((void *)s->base, s->npages << MHI_PAGE_SHIFT);
#endif
    uint32_t size = mhi_class_size[c], n = mhi_class_nobjs[c];
    s->sizeclass = (uint8_t)c;
    s->elemsize = size;
    s->nelems = n;
    s->divmul = mhi_class_divmul[c];
    mhi_span_set_fast(s, true);
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->xfree, MHI_XF_ABANDONED, memory_order_relaxed);
    atomic_store_explicit(&s->onstack, 0, memory_order_relaxed);
    s->where = MHI_WHERE_NONE;
    s->relinked = 0;
#if MHEAP_SECURE
    /* Linked in a random order, all at once (no run is carved: a slot
     * never handed out is not told from a freed one here). */
    s->freelist = mhi_secure_span_setup(s, size, n);
    atomic_store_explicit(&s->fresh, n, memory_order_relaxed);
#else
    /* Every object linked in address order and marked free, so a fresh
     * span is handed out front to back and its pages are touched in order;
     * the free list takes the chain a run at a time (mhi_span_carve), so
     * that a free of an object past the last run is told from a double
     * free. */
    char *p = (char *)s->base;
    for (uint32_t i = 0; i < n; i++) {
        char *q = p + (size_t)i * size;
        mhi_link_set(q, i + 1 < n ? q + size : NULL);
    }
    s->freelist = NULL;
    atomic_store_explicit(&s->fresh, 0, memory_order_relaxed);
    (void)mhi_span_carve(s, NULL); /* (fresh: no mark to check) */
#endif
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
    mhi_lock_assert_held(&ce->lock);
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
    mhi_lock_assert_held(&ce->lock);
    if (s->where == MHI_WHERE_CPARTIAL) mhi_span_list_remove(&ce->partial, s);
    else if (s->where == MHI_WHERE_CFULL) ce->nfull--;
    s->where = MHI_WHERE_NONE;
}

/* An unowned span of class c with a free object, taken off its list, or a
 * new one (central lock held). */
static mhi_span *take_locked(mhi_central *ce, size_t c) {
    mhi_lock_assert_held(&ce->lock);
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

void mhi_central_abandon(mhi_span *s) {
    mhi_central *ce = &mhi_centrals[s->sizeclass];
    mhi_span_quiesce(s);
    mhi_lock(&ce->lock);
    /* From here on freers take this lock and find the span unowned; what
     * they pushed before is applied now. */
    uintptr_t list = atomic_exchange_explicit(&s->xfree, MHI_XF_ABANDONED, memory_order_acq_rel) &
                     ~MHI_XF_TAGS;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    mhi_span_splice(s, (void *)list, &ce->lock);
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
        mhi_fatal_at("double free", head);
    }
    /* Checked and marked by the freer (mhi_span_mark_remote). */
    uint32_t was = s->nfree;
    mhi_link_set(tail, s->freelist);
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
        if (!s->freelist && !mhi_span_carve(s, &ce->lock)) mhi_span_unrelease(s);
        p = s->freelist;
        if (MHI_UNLIKELY(!mhi_free_marked(p))) {
            mhi_unlock(&ce->lock); /* (as for a double free: no lock held at the abort) */
            mhi_fatal_at("corrupted free block", p);
        }
        mhi_mark_clear(p);
        s->freelist = mhi_link_get(p);
        s->nfree--;
        file_unowned_locked(ce, s);
    }
    mhi_unlock(&ce->lock);
    return p;
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

void mhi_central_totals(mhi_central_totals_t *out) {
    *out = (mhi_central_totals_t){0};
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        mhi_central *ce = &mhi_centrals[c];
        mhi_lock(&ce->lock);
        uint64_t n = ce->nspans;
        out->partial += ce->partial.count;
        out->full += ce->nfull;
        out->span_allocs += ce->nspan_alloc;
        out->span_frees += ce->nspan_free;
        mhi_unlock(&ce->lock);
        out->spans += n;
        out->bytes += n * ((uint64_t)mhi_class_npages[c] << MHI_PAGE_SHIFT);
    }
}

size_t mhi_central_verify(void) {
    size_t errors = 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        mhi_central *ce = &mhi_centrals[c];
        mhi_lock(&ce->lock);
        uint64_t n = 0;
        for (mhi_span *s = ce->partial.first; s && n <= ce->partial.count; s = s->next, n++) {
            MHI_VERIFY(&errors, s->sizeclass == c, "central %zu holds span %p of class %d", c,
                       (void *)s->base, s->sizeclass);
            mhi_span_verify_small(s, NULL, MHI_WHERE_CPARTIAL, &errors);
            MHI_VERIFY(&errors, s->nfree > 0 && s->nfree < s->nelems,
                       "central %zu: partial span %p has %u of %u objects free", c,
                       (void *)s->base, s->nfree, s->nelems);
        }
        MHI_VERIFY(&errors, n == ce->partial.count, "central %zu: partial count %llu, found %llu",
                   c, (unsigned long long)ce->partial.count, (unsigned long long)n);
        MHI_VERIFY(&errors, ce->nspans == ce->nspan_alloc - ce->nspan_free,
                   "central %zu: %llu live spans, %llu taken and %llu returned", c,
                   (unsigned long long)ce->nspans, (unsigned long long)ce->nspan_alloc,
                   (unsigned long long)ce->nspan_free);
        MHI_VERIFY(&errors, ce->partial.count + ce->nfull <= ce->nspans,
                   "central %zu: %llu unowned spans of %llu live", c,
                   (unsigned long long)(ce->partial.count + ce->nfull),
                   (unsigned long long)ce->nspans);
        mhi_unlock(&ce->lock);
    }
    return errors;
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
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) mhi_lock_for_fork(&mhi_centrals[c].lock);
}
void mhi_central_fork_parent(void) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) mhi_unlock_for_fork(&mhi_centrals[c].lock);
}
void mhi_central_fork_child(void) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) mhi_lock_reset(&mhi_centrals[c].lock);
}
