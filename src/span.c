/* span.c - operations on one small-object span that the thread caches,
 * the central lists and trimming share (see span.h). */
#include "span.h"

#include "trim.h"

uint32_t mhi_span_splice(mhi_span *s, void *chain, mhi_lock_t *held) {
    if (!chain) return 0;
    s->touched = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed);
    /* Read the chain to its tail, counting, and link the tail alone: the
     * other objects keep their links and marks, and their lines, last
     * written by the freers, are only read.  (The count stops at the room
     * left, so a chain looped by two racing frees ends too.) */
    uint32_t room = s->nelems - s->nfree, n = 1;
    if (MHI_UNLIKELY(room == 0)) mhi_fatal_at_unlock(held, "double free", chain);
    void *tail = chain;
    for (;;) {
        void *q = mhi_link_follow(tail, held);
        if (!q) break;
        if (MHI_UNLIKELY(++n > room)) mhi_fatal_at_unlock(held, "double free", q);
        tail = q;
    }
    mhi_link_set(tail, s->freelist);
    s->freelist = chain;
    s->nfree += n;
    return n;
}

bool mhi_span_carve(mhi_span *s, mhi_lock_t *held) {
    uint32_t i = atomic_load_explicit(&s->fresh, memory_order_relaxed), n = s->nelems;
    if (i >= n) return false;
    /* The objects that start below lim, at least 4, at most the rest. */
    size_t size = s->elemsize, off = (size_t)i * size, lim = off < 4096 ? 4096 : 2 * off;
    size_t end = (lim + size - 1) / size;
    if (end < (size_t)i + 4) end = (size_t)i + 4;
    if (end > n) end = n;
    /* They are still linked front to back, and marked, as the set-up left
     * them (nothing writes an object never handed out): the list ends at
     * the run's last object now, marked again with its new link.  In a
     * relinked span they carry the links of their last time on the free
     * list (and marks that match): the run is linked here, each object's
     * mark checked first, as a pop would (a free mark gone means a write
     * after free, or a double free that made the span look entirely free
     * while an object of it is live: it must not be handed out again). */
    char *first = (char *)s->base + off, *last = (char *)s->base + (end - 1) * size;
    if (s->relinked) {
        for (char *q = first; q <= last; q += size)
            if (MHI_UNLIKELY(!mhi_free_marked(q)))
                mhi_fatal_at_unlock(held, "corrupted free block", q);
        for (char *q = first; q < last; q += size) mhi_link_set(q, q + size);
    }
    mhi_link_set(last, s->freelist);
    s->freelist = first;
    atomic_store_explicit(&s->fresh, (uint32_t)end, memory_order_relaxed);
    return true;
}

void mhi_span_relink(mhi_span *s, mhi_lock_t *held) {
    s->freelist = NULL;
    s->relinked = 1;
    atomic_store_explicit(&s->fresh, 0, memory_order_relaxed);
    (void)mhi_span_carve(s, held);
}

size_t mhi_span_collect_xfree(mhi_span *s, mhi_lock_t *held) {
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_acquire);
    do {
        if (!(x & ~MHI_XF_TAGS)) return 0;
    } while (!atomic_compare_exchange_weak_explicit(&s->xfree, &x, x & MHI_XF_TAGS,
                                                    memory_order_acquire, memory_order_acquire));
    return mhi_span_splice(s, (void *)(x & ~MHI_XF_TAGS), held);
}

void mhi_span_quiesce(mhi_span *s) {
    atomic_fetch_and_explicit(&s->xfree, ~MHI_XF_NOTIFY, memory_order_relaxed);
    while (atomic_load_explicit(&s->xfree, memory_order_acquire) & MHI_XF_FREEING) mhi_os_yield();
}

void mhi_span_verify_small(const mhi_span *s, const void *owner, int where, size_t *errors) {
    void *base = (void *)s->base;
    MHI_VERIFY(errors, s->state == MHI_SPAN_INUSE && mhi_kind_small(mhi_span_kind(s)),
               "small span %p: state %d kind %d", base, s->state, s->kind);
    MHI_VERIFY(errors, s->sizeclass > 0 && s->nelems > 0 && s->nbytes == s->npages << MHI_PAGE_SHIFT,
               "small span %p: class %d, %u objects, %zu bytes", base, s->sizeclass, s->nelems,
               (size_t)s->nbytes);
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    const void *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
    MHI_VERIFY(errors, o == owner, "small span %p: owner %p, listed by %p", base, o, owner);
    MHI_VERIFY(errors, (o == NULL) == ((x & MHI_XF_ABANDONED) != 0),
               "small span %p: owner %p but ABANDONED tag %d", base, o,
               (int)((x & MHI_XF_ABANDONED) != 0));
    MHI_VERIFY(errors, s->where == where, "small span %p: where %d, found at %d", base, s->where,
               where);
    MHI_VERIFY(errors, s->nfree <= s->nelems, "small span %p: nfree %u > nelems %u", base,
               s->nfree, s->nelems);
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed);
    MHI_VERIFY(errors, !rel || s->nelems <= 64, "small span %p: relmask on a span of %u objects",
               base, s->nelems);
    MHI_VERIFY(errors, (rel != 0) == (mhi_span_kind(s) == MHI_KIND_SMALL_REL),
               "small span %p: relmask %llx with kind %d", base, (unsigned long long)rel, s->kind);
    uint32_t fastl = mhi_span_fast_limit(s);
    MHI_VERIFY(errors,
               fastl == (mhi_span_kind(s) == MHI_KIND_SMALL ? (uint32_t)s->nelems * s->elemsize : 0),
               "small span %p: fast limit %u with kind %d and %u objects of %u bytes", base, fastl,
               s->kind, s->nelems, s->elemsize);
    uint32_t n = 0, fresh = atomic_load_explicit(&s->fresh, memory_order_relaxed);
    uint64_t seen = 0;
    for (void *p = s->freelist; p && n <= s->nelems; p = mhi_link_get(p), n++) {
        uintptr_t off = (uintptr_t)p - s->base;
        uint32_t idx = mhi_span_index(s, p);
        if (off >= s->nbytes || idx >= s->nelems || (uintptr_t)idx * s->elemsize != off) {
            mhi_verify_report(errors, "small span %p: free list holds %p, not an object", base, p);
            return;
        }
        MHI_VERIFY(errors, mhi_free_marked(p), "small span %p: free object %p has no free mark",
                   base, p);
        MHI_VERIFY(errors, idx < fresh, "small span %p: free list holds %p, past fresh %u", base,
                   p, fresh);
        if (idx < 64) {
            MHI_VERIFY(errors, !(rel >> idx & 1) && !(seen >> idx & 1),
                       "small span %p: object %p listed twice or also released", base, p);
            seen |= 1ULL << idx;
        }
    }
    uint32_t nrel = (uint32_t)__builtin_popcountll(rel);
    MHI_VERIFY(errors, fresh <= s->nelems, "small span %p: fresh %u > nelems %u", base, fresh,
               s->nelems);
    MHI_VERIFY(errors, fresh >= 64 || !(rel >> fresh),
               "small span %p: an object never handed out (from %u on) released", base, fresh);
    uint32_t nnew = fresh <= s->nelems ? s->nelems - fresh : 0;
    MHI_VERIFY(errors, n + nrel + nnew == s->nfree,
               "small span %p: nfree %u, but %u listed, %u released and %u never handed out", base,
               s->nfree, n, nrel, nnew);
}
