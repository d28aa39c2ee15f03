/* cachekeep.c - the bound on the entirely free spans a thread cache keeps
 * (empty_keep): it grows for a cache that gives spans back for want of
 * room and then takes new ones, and the trim pass shrinks it again
 * (docs/design.md, "Free spans kept, and their bound"). */
#include "cache_impl.h"

#include "background.h"
#include "options.h"
#include "os.h"
#include "trim.h"

_Atomic size_t mhi_empty_grown;

void mhi_cache_empty_keep_reset(mhi_cache *cache) {
    atomic_fetch_sub_explicit(&mhi_empty_grown, cache->empty_keep - MHI_EMPTY_KEEP,
                              memory_order_relaxed);
    cache->empty_keep = MHI_EMPTY_KEEP;
    for (size_t i = 0; i < sizeof cache->empty_gave / sizeof cache->empty_gave[0]; i++)
        cache->empty_gave[i] = 0;
    cache->empty_low = 0;
    cache->empty_takes = 0;
    atomic_store_explicit(&cache->empty_grown, false, memory_order_relaxed);
}

static bool empty_gave_take(mhi_cache *cache, size_t c) {
    uint64_t bit = (uint64_t)1 << (c % 64);
    bool was = cache->empty_gave[c / 64] & bit;
    cache->empty_gave[c / 64] &= ~bit;
    return was;
}

/* The cache's lock held: it is about to take a span from central after it
 * gave spans of the class back for want of room (a thread whose spans come
 * back in bursts, from the threads it hands its objects to, and which then
 * allocates them again): double its bound while the bounds allow, so that
 * the spans it cycles through stay with it instead of passing through the
 * page heap's lock twice each.  Only where the trim pass can set it back
 * (the background thread runs). */
static void empty_keep_grow(mhi_cache *cache) {
    if (!mhi_option(MHI_OPT_background) || mhi_bg_cannot_run() ||
        mhi_os_page_size() > MHI_PAGE_SIZE)
        return;
    size_t add = cache->empty_keep;
    if (cache->empty_keep + add > MHI_EMPTY_KEEP_MAX) return;
    size_t was = atomic_fetch_add_explicit(&mhi_empty_grown, add, memory_order_relaxed);
    if (was + add > MHI_EMPTY_GROWN_ALL) {
        atomic_fetch_sub_explicit(&mhi_empty_grown, add, memory_order_relaxed);
        return;
    }
    cache->empty_keep += add;
    cache->empty_low = cache->empty_bytes;
    cache->empty_takes = 1; /* (this epoch it needed more than it kept) */
    atomic_store_explicit(&cache->empty_grown, true, memory_order_relaxed);
    cache->bg_wanted = true; /* (the trim pass shrinks the bound once unused) */
}

/* The cache's lock held, its bound grown: halve it. */
static void empty_keep_halve(mhi_cache *cache) {
    size_t cut = cache->empty_keep / 2;
    if (cache->empty_keep - cut < MHI_EMPTY_KEEP) cut = cache->empty_keep - MHI_EMPTY_KEEP;
    atomic_fetch_sub_explicit(&mhi_empty_grown, cut, memory_order_relaxed);
    cache->empty_keep -= cut;
    if (cache->empty_keep == MHI_EMPTY_KEEP)
        atomic_store_explicit(&cache->empty_grown, false, memory_order_relaxed);
}

void mhi_cache_keep_before_central(mhi_cache *cache, size_t c) {
    if (empty_gave_take(cache, c)) empty_keep_grow(cache);
}

/* The trim pass's look at cache (mhi_caches.lock held, the cache's lock
 * not): a bound on kept free spans that grew is halved, and the spans
 * past it given to the page heap, after an epoch in which more
 * than half of it stayed unused (the cache cycled through less
 * than it keeps; the least it kept is counted over all classes,
 * so a class left idle with a few spans does not make it shrink
 * a bound another class cycles through), or in which it took none
 * of its kept spans (it stopped); a forced pass sets it back at
 * once.  The pass comes back while a bound is grown: an idle
 * cache's is back within four epochs. */
void mhi_cache_keep_pass(mhi_cache *cache, mhi_trim_pass *tp) {
    if (!atomic_load_explicit(&cache->empty_grown, memory_order_relaxed)) return;
    if (!mhi_trylock(&cache->lock)) {
        tp->young = true;
        return;
    }
    if (cache->empty_keep > MHI_EMPTY_KEEP && tp->force) {
        mhi_cache_empty_keep_reset(cache);
        mhi_cache_drop_empty_spans(cache, MHI_EMPTY_KEEP);
    } else if (cache->empty_keep > MHI_EMPTY_KEEP && tp->epoch != cache->empty_look) {
        cache->empty_look = tp->epoch;
        if (cache->empty_low > cache->empty_keep / 2 || cache->empty_takes == 0) {
            empty_keep_halve(cache);
            mhi_cache_drop_empty_spans(cache, cache->empty_keep);
        }
        cache->empty_low = cache->empty_bytes;
        cache->empty_takes = 0;
    }
    if (cache->empty_keep > MHI_EMPTY_KEEP || cache->bg_wanted) tp->young = true;
    cache->bg_wanted = false;
    mhi_unlock(&cache->lock);
}
