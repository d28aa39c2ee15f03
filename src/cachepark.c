/* cachepark.c - thread caches after their thread: parking at thread
 * exit, the flush of parked caches to central, the caches' counts, and
 * the repairs in the child of fork (cache_impl.h; cache.c holds the rest
 * of a cache's life). */
#include "cache_impl.h"

#include "background.h"
#include "options.h"
#include "pageheap.h"

/* Caches taken off the parked list and being flushed (outside mhi_caches.lock,
 * so that thread start and exit do not wait for a flush); on no list. */
static uint64_t nflushing;
/* 1: a parked cache keeps its stashes for the next thread; 0: an exiting
 * thread sends them back first (docs/benchmarks.md compares the two). */
#ifndef PARK_STASHES
#define PARK_STASHES 1
#endif
/* 1: a cache being parked gives its entirely free spans back first. */
#ifndef PARK_DROP_EMPTY
#define PARK_DROP_EMPTY 1
#endif

/* ---- parked caches ----
 * A thread's cache outlives the thread: at exit it goes, spans, stashes
 * and all, to the front of the parked list, and the next thread to start
 * takes the newest parked cache whole.  Its spans stay owned by it (owner
 * never changes on parking or unparking), so frees by other threads into
 * them still push onto xfree without a lock, and notices go onto its
 * notify stack, which the next owner (or the flush) drains.  A parked
 * cache that waits longer than the scavenger delay, or is the oldest of
 * more than PARK_MAX, or meets mh_trim, is taken off the parked list
 * under mhi_caches.lock (so no thread can take it meanwhile), flushed to
 * central as a thread's exit used to do, with no lock but its own held,
 * and joins the pool of empty caches. */

/* How long a cache may stay parked, in ms. */
static int64_t park_age(void) { return mhi_heap_scavenge_delay(); }

/* mhi_caches.lock held: take parked cache c off the list to be flushed (by
 * flush_to_pool, once mhi_caches.lock is dropped).  Off every list, it is the
 * caller's alone. */
static void unpark_to_flush_locked(mhi_cache *c) {
    mhi_cache_unpark_locked(c);
    nflushing++;
}

/* No lock held: flush c, taken off the parked list, and put it in the
 * empty pool. */
static void flush_to_pool(mhi_cache *c) {
    bool want = mhi_cache_flush_spans(c);
    mhi_lock(&mhi_caches.lock);
    nflushing--;
    c->next = mhi_caches.pool;
    c->prev = NULL;
    mhi_caches.pool = c;
    mhi_unlock(&mhi_caches.lock);
    if (want) mhi_cache_trim_request();
}

size_t mhi_cache_park_expire(int64_t now_ms) {
    int64_t age = park_age();
    for (;;) { /* oldest first, one at a time */
        mhi_lock(&mhi_caches.lock);
        mhi_cache *c = mhi_caches.parked_last;
        if (!c || (now_ms != INT64_MAX && now_ms - c->parked_ms < age)) {
            size_t left = mhi_caches.nparked;
            mhi_unlock(&mhi_caches.lock);
            return left;
        }
        unpark_to_flush_locked(c);
        mhi_unlock(&mhi_caches.lock);
        flush_to_pool(c);
    }
}

/* The background thread's task: flush the parked caches that aged. */
int mhi_cache_park_task(void) {
    return mhi_cache_park_expire(mhi_os_millitime()) ? MHI_BG_LATER : MHI_BG_IDLE;
}

void mhi_cache_release(void) {
    mhi_cache *cache = mhi_tls_cache;
    if (mhi_cache_is_static(cache)) return;
    mhi_tls_cache = &mhi_cache_dead;
    /* Parking needs the background thread, which bounds how long a
     * parked cache keeps its memory; without it, or with no delay, the
     * cache is flushed now. */
    bool park = mhi_option(MHI_OPT_background) && park_age() > 0;
    bool want = false;
    if (!park) {
        want = mhi_cache_flush_spans(cache);
    } else if (!PARK_STASHES || PARK_DROP_EMPTY) {
        mhi_lock(&cache->lock);
        if (!PARK_STASHES) {
            for (size_t c = 1; c < MHI_NUM_CLASSES; c++)
                if (cache->stash[c]) mhi_cache_flush_stash(cache, c);
            mhi_cache_stash_limits_reset(cache);
        }
        if (PARK_DROP_EMPTY) {
            mhi_cache_drop_empty_spans(cache, 0);
            mhi_cache_empty_keep_reset(cache);
        }
        want = cache->bg_wanted;
        cache->bg_wanted = false;
        mhi_unlock(&cache->lock);
    }
    int64_t now = park ? mhi_os_millitime() : 0;
    mhi_cache *oldest = NULL; /* to flush: the parked list was full */
    mhi_lock(&mhi_caches.lock);
    mhi_cache_live_unlink_locked(cache);
    if (park) {
        cache->parked = true;
        /* (the list stays in parking order: another thread may have read
         * the clock after this one and parked first) */
        mhi_cache *newest = mhi_caches.parked_first;
        if (newest && newest->parked_ms > now) now = newest->parked_ms;
        cache->parked_ms = now;
        cache->prev = NULL;
        cache->next = mhi_caches.parked_first;
        if (mhi_caches.parked_first) mhi_caches.parked_first->prev = cache;
        else mhi_caches.parked_last = cache;
        mhi_caches.parked_first = cache;
        mhi_caches.nparked++;
        if (mhi_caches.nparked > PARK_MAX) unpark_to_flush_locked(oldest = mhi_caches.parked_last);
    } else {
        cache->next = mhi_caches.pool;
        mhi_caches.pool = cache;
    }
    mhi_unlock(&mhi_caches.lock);
    if (oldest) flush_to_pool(oldest);
    if (park) {
        mhi_cache_park_request();
        /* Nothing would flush what is parked once it aged: flush it all now. */
        if (mhi_bg_cannot_run()) (void)mhi_cache_park_expire(INT64_MAX);
    }
    if (want) mhi_cache_trim_request();
}

void mhi_cache_counts(mhi_cache_counts_t *out) {
    uint64_t pool = 0;
    mhi_lock(&mhi_caches.lock);
    out->live = mhi_caches.nlive;
    out->parked = mhi_caches.nparked;
    for (mhi_cache *c = mhi_caches.pool; c; c = c->next) pool++;
    pool += nflushing; /* (on their way to the pool) */
    mhi_unlock(&mhi_caches.lock);
    out->pool = pool + out->parked;
    out->stash_grown = atomic_load_explicit(&mhi_stash_grown, memory_order_relaxed);
}

/* In the child of fork: forget a notice another thread was delivering. */
static void forget_notice(mhi_span *s) {
    atomic_fetch_and_explicit(&s->xfree, ~MHI_XF_FREEING, memory_order_relaxed);
    atomic_store_explicit(&s->onstack, 0, memory_order_relaxed);
}

static void repair_after_fork(mhi_cache *cache);

/* Holding mhi_caches.lock also keeps the trim pass out of every cache on
 * a list (it takes their locks only while it holds mhi_caches.lock); a
 * flush holds its cache's lock without it, but that cache is on no list
 * (the child loses it, below). */
void mhi_cache_fork_prepare(void) { mhi_lock_for_fork(&mhi_caches.lock); }
void mhi_cache_fork_parent(void) { mhi_unlock_for_fork(&mhi_caches.lock); }
void mhi_cache_fork_child(void) {
    mhi_lock_reset(&mhi_caches.lock);
    mhi_cache_notices_fork_child();
    /* The other threads' caches: their owners may have been inside a slow
     * path, holding the lock, with spans half updated; no trim pass may
     * touch them in the child. */
    for (mhi_cache *c = mhi_caches.live; c; c = c->next)
        if (c != mhi_tls_cache && !c->orphan) {
            c->orphan = true;
            /* their stashes and kept spans never grow again */
            atomic_fetch_sub_explicit(&mhi_stash_grown, c->stash_bytes, memory_order_relaxed);
            c->stash_bytes = 0;
            c->empty_keep = MHI_EMPTY_KEEP;
            atomic_store_explicit(&c->empty_grown, false, memory_order_relaxed);
        }
    /* What the bounds on kept spans grew by, counted again from the caches
     * the child keeps (a thread left behind may have been between its
     * change of the counter and of its bound). */
    size_t grown = 0;
    if (!mhi_cache_is_static(mhi_tls_cache)) grown += mhi_tls_cache->empty_keep - MHI_EMPTY_KEEP;
    for (mhi_cache *c = mhi_caches.parked_first; c; c = c->next)
        grown += c->empty_keep - MHI_EMPTY_KEEP;
    atomic_store_explicit(&mhi_empty_grown, grown, memory_order_relaxed);
    /* Caches another thread was flushing are lost to the child, like the
     * other threads' own. */
    nflushing = 0;
    /* This thread's cache, and the parked ones (nobody was inside those:
     * parking and taking hold mhi_caches.lock, and a flush takes its cache off
     * the list first), are repaired. */
    if (!mhi_cache_is_static(mhi_tls_cache)) repair_after_fork(mhi_tls_cache);
    for (mhi_cache *c = mhi_caches.parked_first; c; c = c->next) repair_after_fork(c);
}

/* Remote freers in other threads may have been delivering notices to the
 * spans of cache when the fork happened: in the child they never finish.
 * Clear their FREEING and onstack marks, forget the stack, and move full
 * spans back to avail (a notice may be lost). */
static void repair_after_fork(mhi_cache *cache) {
    for (mhi_span *s = atomic_load_explicit(&cache->notify, memory_order_relaxed); s;
         s = s->xnext)
        atomic_store_explicit(&s->onstack, 0, memory_order_relaxed);
    atomic_store_explicit(&cache->notify, NULL, memory_order_relaxed);
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        mhi_span *s = cache->cur[c];
        if (s != &mhi_span_empty) forget_notice(s);
        for (s = cache->avail[c].first; s; s = s->next) forget_notice(s);
        mhi_span_list still_full = {0};
        while ((s = cache->full[c].first)) {
            mhi_span_list_remove(&cache->full[c], s);
            forget_notice(s);
            mhi_span_collect_xfree(s, NULL);
            if (s->nfree > 0) {
                atomic_fetch_and_explicit(&s->xfree, ~MHI_XF_NOTIFY, memory_order_relaxed);
                s->where = MHI_WHERE_AVAIL;
                mhi_span_list_push_back(&cache->avail[c], s);
                if (s->nfree == s->nelems) cache->empty_bytes += s->nbytes;
            } else {
                atomic_fetch_or_explicit(&s->xfree, MHI_XF_NOTIFY, memory_order_relaxed);
                mhi_span_list_push_back(&still_full, s);
            }
        }
        cache->full[c] = still_full;
    }
}
