/* cacheverify.c - the thread caches' verifier (mhi_cache_verify,
 * cache.h): every live and parked cache's lists and the pool of empty
 * ones, under mhi_caches.lock (cache_impl.h). */
#include "cache_impl.h"

#include "pageheap.h"
#include "print.h"


/* The spans of one list of a cache (its lock held). */
static void verify_list(mhi_cache *cache, size_t c, mhi_span_list *l, int where, size_t *e,
                        size_t *empty_bytes) {
    uint64_t n = 0;
    mhi_span *prev = NULL;
    for (mhi_span *s = l->first; s && n <= l->count; prev = s, s = s->next, n++) {
        MHI_VERIFY(e, s->prev == prev, "cache %p class %zu: list links broken at span %p",
                   (void *)cache, c, (void *)s->base);
        MHI_VERIFY(e, s->sizeclass == c, "cache %p class %zu holds span %p of class %d",
                   (void *)cache, c, (void *)s->base, s->sizeclass);
        mhi_span_verify_small(s, cache, where, e);
        if (where == MHI_WHERE_AVAIL) {
            MHI_VERIFY(e, s->nfree > 0, "cache %p: span %p on avail has no free object",
                       (void *)cache, (void *)s->base);
            if (s->nfree == s->nelems) *empty_bytes += s->nbytes;
        } else {
            MHI_VERIFY(e, s->nfree < mhi_cache_unfull_at(s),
                       "cache %p: span %p on full has %u of %u objects free", (void *)cache,
                       (void *)s->base, s->nfree, s->nelems);
        }
    }
    MHI_VERIFY(e, n == l->count && l->last == prev, "cache %p class %zu: list count %llu, found %llu",
               (void *)cache, c, (unsigned long long)l->count, (unsigned long long)n);
}

/* The calling thread's own stashes and current spans. */
static void verify_own(mhi_cache *cache, size_t *e) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        uint32_t n = 0;
        for (void *p = cache->stash[c]; p && n <= cache->stash_lim[c]; p = mhi_link_get(p), n++) {
            mhi_span *s = mhi_heap_span((uintptr_t)p);
            MHI_VERIFY(e, s && mhi_kind_small(mhi_span_kind(s)) && s->sizeclass == c,
                       "stash of class %zu holds %p, not an object of the class", c, p);
            MHI_VERIFY(e, mhi_free_marked(p), "stashed object %p has no free mark", p);
        }
        MHI_VERIFY(e, cache->stash_room[c] <= cache->stash_lim[c],
                   "stash of class %zu: room %u over its bound %u", c, cache->stash_room[c],
                   cache->stash_lim[c]);
        MHI_VERIFY(e, n == mhi_stash_count(cache, c), "stash of class %zu: count %u, found %u", c,
                   mhi_stash_count(cache, c), n);
        mhi_span *s = cache->cur[c];
        if (s != &mhi_span_empty) {
            MHI_VERIFY(e, s->sizeclass == c, "current span %p of class %zu has class %d",
                       (void *)s->base, c, s->sizeclass);
            mhi_span_verify_small(s, cache, MHI_WHERE_CUR, e);
        }
    }
}

/* A live or parked cache's lists (its lock held); own: its current spans
 * and stashes too (the calling thread's cache, or a parked one). */
static void verify_cache(mhi_cache *cache, bool own, size_t *e) {
    size_t empty = 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        verify_list(cache, c, &cache->avail[c], MHI_WHERE_AVAIL, e, &empty);
        verify_list(cache, c, &cache->full[c], MHI_WHERE_FULL, e, &empty);
    }
    MHI_VERIFY(e, empty == cache->empty_bytes, "cache %p keeps %zu bytes of free spans, counted %zu",
               (void *)cache, empty, cache->empty_bytes);
    MHI_VERIFY(e, cache->empty_keep >= MHI_EMPTY_KEEP && cache->empty_keep <= MHI_EMPTY_KEEP_MAX,
               "cache %p: bound on its free spans %zu out of range", (void *)cache,
               cache->empty_keep);
    if (own) verify_own(cache, e);
}

size_t mhi_cache_verify(void) {
    size_t errors = 0;
    mhi_cache *self = mhi_tls_cache;
    mhi_lock(&mhi_caches.lock);
    uint64_t nlive = 0;
    for (mhi_cache *cache = mhi_caches.live; cache; cache = cache->next, nlive++) {
        MHI_VERIFY(&errors, !cache->parked, "live cache %p is marked parked", (void *)cache);
        if (cache->orphan) continue; /* (fork child: may be mid-update) */
        mhi_lock(&cache->lock);
        verify_cache(cache, cache == self, &errors);
        mhi_unlock(&cache->lock);
    }
    MHI_VERIFY(&errors, nlive == mhi_caches.nlive, "%llu live caches listed, %llu counted",
               (unsigned long long)nlive, (unsigned long long)mhi_caches.nlive);
    /* Parked caches: no thread runs their fast paths, and mhi_caches.lock
     * keeps them parked, so their current spans and stashes are read too. */
    uint64_t npark = 0;
    mhi_cache *prev = NULL;
    for (mhi_cache *cache = mhi_caches.parked_first; cache && npark <= mhi_caches.nparked;
         prev = cache, cache = cache->next, npark++) {
        MHI_VERIFY(&errors, cache->parked && cache->prev == prev,
                   "parked cache %p: flag %d, list links broken", (void *)cache, cache->parked);
        MHI_VERIFY(&errors, cache != self, "the calling thread's cache %p is parked",
                   (void *)cache);
        MHI_VERIFY(&errors, !prev || prev->parked_ms >= cache->parked_ms,
                   "parked cache %p is older than the one after it", (void *)prev);
        mhi_lock(&cache->lock);
        verify_cache(cache, true, &errors);
        mhi_unlock(&cache->lock);
    }
    MHI_VERIFY(&errors,
               npark == mhi_caches.nparked && mhi_caches.parked_last == prev && npark <= PARK_MAX,
               "%llu parked caches listed, %llu counted (at most %d)", (unsigned long long)npark,
               (unsigned long long)mhi_caches.nparked, PARK_MAX);
    /* The empty pool: nothing owned, nothing stashed. */
    for (mhi_cache *cache = mhi_caches.pool; cache; cache = cache->next) {
        MHI_VERIFY(&errors, !cache->parked, "pooled cache %p is marked parked", (void *)cache);
        for (size_t c = 1; c < MHI_NUM_CLASSES; c++)
            MHI_VERIFY(&errors,
                       cache->cur[c] == &mhi_span_empty && !cache->avail[c].first &&
                           !cache->full[c].first && !cache->stash[c],
                       "pooled cache %p holds spans or objects of class %zu", (void *)cache, c);
    }
    mhi_unlock(&mhi_caches.lock);
    return errors;
}
