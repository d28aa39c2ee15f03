/* cache.h - per-thread caches (the seed's mcache) and the small-object fast
 * paths.
 *
 * Each thread has a cache, reached through one initial-exec TLS pointer.
 * Per size class the cache owns one current span and allocates from its
 * free list with no lock and no atomic operation.  A free of an object in
 * the thread's own current span goes straight back on that list.  Other
 * frees wait in the cache's per-class pending list and go to the central
 * list in batches (one lock per batch), which routes each object to its
 * span: an unowned span directly, a span another cache owns through that
 * span's lock-free xfree list, collected by its owner.
 *
 * Before a thread's first allocation its TLS pointer names a static empty
 * cache whose current spans are a static empty span, so the fast path needs
 * no NULL check: its free list is empty and the slow path makes the real
 * cache.  At thread exit (pthread key destructor) the cache's spans and
 * pending frees go back to the central lists and the pointer names the
 * static dead cache: later calls from that thread go to the central lists
 * directly. */
#ifndef MHEAP_CACHE_H
#define MHEAP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "central.h"
#include "sizeclass.h"
#include "span.h"

typedef struct mhi_cache mhi_cache;
struct mhi_cache {
    mhi_span *cur[MHI_NUM_CLASSES];     /* owned current span, or &mhi_span_empty */
    void *pending[MHI_NUM_CLASSES];     /* frees into spans this cache does not own */
    uint32_t npending[MHI_NUM_CLASSES];
    mhi_cache *next;                    /* all caches / the pool of unused ones */
    bool live;
};

extern mhi_span mhi_span_empty;
extern mhi_cache mhi_cache_empty, mhi_cache_dead;
extern __thread mhi_cache *mhi_tls_cache __attribute__((tls_model("initial-exec")));

void *mhi_cache_alloc_slow(size_t c);
void mhi_cache_free_slow(void *p);
uint64_t mhi_cache_count(void); /* live caches */
void mhi_cache_fork_prepare(void);
void mhi_cache_fork_parent(void);
void mhi_cache_fork_child(void);
/* Give the calling thread's spans and pending frees back to the central
 * lists; the cache stays usable. */
void mhi_cache_flush(void);
/* Return the calling thread's cache for good (thread exit). */
void mhi_cache_release(void);

#define MHI_ALWAYS_INLINE __attribute__((always_inline)) inline

/* Allocate one object of class c. */
static MHI_ALWAYS_INLINE void *mhi_cache_alloc(size_t c) {
    mhi_span *s = mhi_tls_cache->cur[c];
    void *p = s->freelist;
    if (MHI_UNLIKELY(!p)) return mhi_cache_alloc_slow(c);
    s->freelist = *(void **)p;
    uint32_t idx = (uint32_t)(((uint64_t)((uintptr_t)p - s->base) * s->divmul) >> 32);
    s->freebits[idx >> 6] &= ~(1ULL << (idx & 63));
    return p;
}

/* Free p (not NULL). */
static MHI_ALWAYS_INLINE void mhi_cache_free(void *p) {
    mhi_arena *ar = mhi_arena_of((uintptr_t)p);
    if (MHI_UNLIKELY(!ar)) {
        mhi_cache_free_slow(p);
        return;
    }
    mhi_span *s = atomic_load_explicit(&ar->spans[mhi_arena_page((uintptr_t)p)],
                                       memory_order_relaxed);
    /* Only this thread's own spans take the fast path: their owner is this
     * thread's cache (the static empty and dead caches own nothing). */
    if (MHI_UNLIKELY(!s || atomic_load_explicit(&s->owner, memory_order_relaxed) !=
                               (void *)mhi_tls_cache)) {
        mhi_cache_free_slow(p);
        return;
    }
    uintptr_t off = (uintptr_t)p - s->base;
    uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
    uint64_t m = 1ULL << (idx & 63);
    if (MHI_UNLIKELY(idx >= s->nelems || (uintptr_t)idx * s->elemsize != off ||
                     ((s->freebits[idx >> 6] |
                       atomic_load_explicit(&s->xfreebits[idx >> 6], memory_order_relaxed)) &
                      m))) {
        mhi_cache_free_slow(p);
        return;
    }
    s->freebits[idx >> 6] |= m;
    *(void **)p = s->freelist;
    s->freelist = p;
}

#endif
