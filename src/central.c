/* central.c - per-size-class lists of unowned spans (see central.h). */
#include "central.h"

#include <string.h>

#include "pageheap.h"
#include "print.h"

mhi_central mhi_centrals[MHI_NUM_CLASSES];

void mhi_malloc_fatal(const char *what, const void *p) {
    mhi_fatal("%s: %p", what, p);
}

size_t mhi_span_collect_xfree(mhi_span *s) {
    uintptr_t list = atomic_exchange_explicit(&s->xfree, 0, memory_order_acquire);
    size_t n = 0;
    while (list) {
        void *p = (void *)list;
        list = (uintptr_t) * (void **)p;
        mhi_span_put_remote(s, p);
        /* A cycle in the list means an object was pushed twice. */
        if (++n > s->nelems) mhi_malloc_fatal("double free", p);
    }
    return n;
}

/* A fresh span of class c from the page heap, every object free. */
static mhi_span *span_new_small(size_t c) {
    mhi_span *s = mhi_heap_alloc(mhi_class_npages[c], MHI_SPAN_INUSE, MHI_KIND_SMALL, false);
    if (!s) return NULL;
    uint32_t size = mhi_class_size[c], n = mhi_class_nobjs[c];
    s->sizeclass = (uint8_t)c;
    s->elemsize = size;
    s->nelems = n;
    s->divmul = mhi_class_divmul[c];
    s->nbytes = s->npages << MHI_PAGE_SHIFT;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    s->incentral = 0;
    atomic_store_explicit(&s->xfree, 0, memory_order_relaxed);
    /* Free list in address order, so a fresh span is handed out front to
     * back and its pages are touched in order. */
    char *p = (char *)s->base;
    for (uint32_t i = 0; i + 1 < n; i++) *(void **)(p + (size_t)i * size) = p + (size_t)(i + 1) * size;
    *(void **)(p + (size_t)(n - 1) * size) = NULL;
    s->freelist = p;
    memset(s->freebits, 0, sizeof s->freebits);
    for (size_t i = 0; i < 8; i++) atomic_store_explicit(&s->xfreebits[i], 0, memory_order_relaxed);
    for (uint32_t i = 0; i < n / 64; i++) s->freebits[i] = ~0ULL;
    if (n % 64) s->freebits[n / 64] = (1ULL << (n % 64)) - 1;
    s->nfree = n;
    mhi_centrals[c].nspans++;
    mhi_centrals[c].nspan_alloc++;
    return s;
}

static uint32_t count_free(const mhi_span *s) {
    uint32_t n = 0;
    for (size_t i = 0; i < 8; i++) n += (uint32_t)__builtin_popcountll(s->freebits[i]);
    return n;
}

/* Central lock held: s is unowned; file it by its free count. */
static void file_unowned_locked(mhi_central *ce, mhi_span *s) {
    if (s->nfree == s->nelems) {
        ce->nspans--;
        ce->nspan_free++;
        mhi_heap_free(s); /* lock order: central, then heap */
    } else if (s->nfree > 0) {
        s->incentral = 1;
        mhi_span_list_push(&ce->partial, s);
    } else {
        ce->nfull++;
    }
}

mhi_span *mhi_central_cache_span(size_t c, void *owner) {
    mhi_central *ce = &mhi_centrals[c];
    mhi_lock(&ce->lock);
    mhi_span *s = ce->partial.first;
    if (s) {
        mhi_span_list_remove(&ce->partial, s);
        s->incentral = 0;
    } else {
        s = span_new_small(c);
    }
    if (s) atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
    mhi_unlock(&ce->lock);
    return s;
}

void mhi_central_uncache_span(mhi_span *s) {
    mhi_central *ce = &mhi_centrals[s->sizeclass];
    mhi_lock(&ce->lock);
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    /* No thread pushes onto xfree once owner is NULL (pushes happen under
     * this lock after checking owner), so this collects the last of them. */
    mhi_span_collect_xfree(s);
    s->nfree = count_free(s);
    file_unowned_locked(ce, s);
    mhi_unlock(&ce->lock);
}

void mhi_central_free_list(size_t c, void *list, void *self) {
    mhi_central *ce = &mhi_centrals[c];
    mhi_lock(&ce->lock);
    while (list) {
        void *p = list;
        list = *(void **)p;
        mhi_span *s = mhi_heap_lookup_maybe((uintptr_t)p);
        if (!s || s->kind != MHI_KIND_SMALL || s->sizeclass != c) {
            mhi_unlock(&ce->lock);
            mhi_heap_bad_free((uintptr_t)p);
        }
        void *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (owner == NULL) {
            mhi_span_put_remote(s, p);
            s->nfree++;
            if (s->nfree == 1 || s->nfree == s->nelems) {
                if (s->incentral) {
                    mhi_span_list_remove(&ce->partial, s);
                    s->incentral = 0;
                } else {
                    ce->nfull--;
                }
                file_unowned_locked(ce, s);
            }
        } else if (owner == self) {
            mhi_span_put_remote(s, p); /* our own current span: we are its owner */
        } else {
            uintptr_t head = atomic_load_explicit(&s->xfree, memory_order_relaxed);
            do {
                *(void **)p = (void *)head;
            } while (!atomic_compare_exchange_weak_explicit(&s->xfree, &head, (uintptr_t)p,
                                                            memory_order_release,
                                                            memory_order_relaxed));
        }
    }
    mhi_unlock(&ce->lock);
}

void *mhi_central_alloc_one(size_t c) {
    mhi_central *ce = &mhi_centrals[c];
    mhi_lock(&ce->lock);
    mhi_span *s = ce->partial.first;
    if (s) {
        mhi_span_list_remove(&ce->partial, s);
        s->incentral = 0;
    } else {
        s = span_new_small(c);
    }
    void *p = NULL;
    if (s) {
        p = s->freelist;
        s->freelist = *(void **)p;
        uint32_t idx = (uint32_t)(((uint64_t)((uintptr_t)p - s->base) * s->divmul) >> 32);
        s->freebits[idx >> 6] &= ~(1ULL << (idx & 63));
        s->nfree--;
        file_unowned_locked(ce, s);
    }
    mhi_unlock(&ce->lock);
    return p;
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
