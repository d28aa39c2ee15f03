/* cache_impl.h - what the thread caches' files share (not installed; the
 * rest of the allocator uses cache.h): the lists of caches and their lock,
 * the operations on those lists, and the helpers that cache.c lends to
 * cachepark.c (parking, thread exit, fork) and cacheverify.c (the
 * verifier). */
#ifndef MHEAP_CACHE_IMPL_H
#define MHEAP_CACHE_IMPL_H

#include "cache.h"
#include "trim.h"

/* mhi_caches.lock guards: the list of live caches, the list of parked ones
 * and the pool of empty ones, a parked cache whole (whoever takes it off
 * the parked list, under the lock, has it to itself), and in cache.c the
 * cache fixalloc and the one-time set-up. */
typedef struct {
    mhi_lock_t lock;
    mhi_cache *live; /* doubly linked through next/prev */
    uint64_t nlive;
    /* Parked caches: newest first, the oldest at parked_last.  At most
     * PARK_MAX; one parked beyond that flushes the oldest. */
    mhi_cache *parked_first, *parked_last;
    uint64_t nparked;
    mhi_cache *pool; /* empty caches, through next */
} mhi_caches_t;
extern mhi_caches_t mhi_caches;

#ifndef PARK_MAX
#define PARK_MAX 16
#endif
#ifndef UNFULL_SHIFT
#define UNFULL_SHIFT 3
#endif

/* Frees between two looks at the background tasks' clock in a process
 * with one thread (mhi_cache.tick): a slow path per this many frees. */
#define MHI_CACHE_TICK 1024

/* What the threads' stashes grew by, in bytes (cache.c). */
extern _Atomic size_t mhi_stash_grown;

/* Entirely free spans a cache keeps on avail for reuse, in bytes: at
 * first MHI_EMPTY_KEEP; a cache that gave spans back for want of room and
 * then has to take one from central doubles its bound, up to
 * MHI_EMPTY_KEEP_MAX, while what all caches' bounds grew by stays within
 * MHI_EMPTY_GROWN_ALL (mhi_empty_grown).  Beyond its bound a cache gives
 * an emptied span back to the page heap at once. */
#ifndef MHI_EMPTY_KEEP
#define MHI_EMPTY_KEEP ((size_t)256 << 10)
#endif
#ifndef MHI_EMPTY_KEEP_MAX
#define MHI_EMPTY_KEEP_MAX ((size_t)4 << 20)
#endif
#ifndef MHI_EMPTY_GROWN_ALL
#define MHI_EMPTY_GROWN_ALL ((size_t)32 << 20)
#endif
extern _Atomic size_t mhi_empty_grown;
/* The cache's lock held, or the cache out of every thread's reach: its
 * bound back to MHI_EMPTY_KEEP, the growth returned to mhi_empty_grown. */
void mhi_cache_empty_keep_reset(mhi_cache *cache);
/* The cache's lock held: it is about to take a span of class c from
 * central; if it gave one of c back for want of room since, its bound
 * doubles (cachekeep.c). */
void mhi_cache_keep_before_central(mhi_cache *cache, size_t c);
/* The trim pass's look at a cache's grown bound (cachekeep.c). */
void mhi_cache_keep_pass(mhi_cache *cache, mhi_trim_pass *tp);

/* mhi_caches.lock held: put c at the front of the live list. */
static inline void mhi_cache_live_push_locked(mhi_cache *c) {
    mhi_lock_assert_held(&mhi_caches.lock);
    mhi_caches.nlive++;
    c->prev = NULL;
    c->next = mhi_caches.live;
    if (mhi_caches.live) mhi_caches.live->prev = c;
    mhi_caches.live = c;
}

/* mhi_caches.lock held: take c off the live list. */
static inline void mhi_cache_live_unlink_locked(mhi_cache *c) {
    mhi_lock_assert_held(&mhi_caches.lock);
    if (c->prev) c->prev->next = c->next;
    else mhi_caches.live = c->next;
    if (c->next) c->next->prev = c->prev;
    mhi_caches.nlive--;
}

/* mhi_caches.lock held: take c off the parked list. */
static inline void mhi_cache_unpark_locked(mhi_cache *c) {
    mhi_lock_assert_held(&mhi_caches.lock);
    if (c->prev) c->prev->next = c->next;
    else mhi_caches.parked_first = c->next;
    if (c->next) c->next->prev = c->prev;
    else mhi_caches.parked_last = c->prev;
    c->parked = false;
    mhi_caches.nparked--;
}

/* Local frees a span on the full list collects before it goes back to
 * avail.  Taking a span back for one free object would cost a trip through
 * the slow paths per allocation when frees scatter over many spans (a pool
 * with random replacement); waiting for an eighth of it bounds the objects
 * left waiting in such spans to about an eighth of the live ones. */
static inline uint32_t mhi_cache_unfull_at(const mhi_span *s) {
    uint32_t n = s->nelems >> UNFULL_SHIFT;
    return n ? n : 1;
}

/* In cache.c, for cachepark.c: */
/* Give up every span the cache owns and empty its stashes; true if a trim
 * pass should be asked for once no allocator lock is held. */
bool mhi_cache_flush_spans(mhi_cache *cache);
/* Send the stash of class c back to its spans (the cache's lock held). */
void mhi_cache_flush_stash(mhi_cache *cache, size_t c);
/* Every stash limit back to its first value. */
void mhi_cache_stash_limits_reset(mhi_cache *cache);
/* The child of fork: no trim pass is pending there, so notices_waiting
 * (cache.c) starts clear, and the first notice on an empty stack asks. */
void mhi_cache_notices_fork_child(void);
/* Give the entirely free spans kept on avail back (the cache's lock held). */
void mhi_cache_drop_empty_spans(mhi_cache *cache, size_t keep);
/* Ask the background thread to flush the parked caches that aged
 * (starting it if it may run; no allocator lock held). */
void mhi_cache_park_request(void);

/* In cachepark.c: the background thread's task that flushes aged parked
 * caches. */
int mhi_cache_park_task(void);

#endif
