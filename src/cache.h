/* cache.h - per-thread caches (the seed's mcache) and the small-object
 * fast paths: mhi_cache_pop (allocation) and mhi_cache_free.  malloc.c
 * opens with the overview of how malloc and free use them; the fields
 * below say who may touch what. */
#ifndef MHEAP_CACHE_H
#define MHEAP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "sizeclass.h"
#include "span.h"

typedef struct mhi_cache mhi_cache;
struct mhi_cache {
    /* Objects this thread freed into spans it does not own, kept (marked
     * free) for its own next allocations of the class, up to a bound; then
     * they go back to their spans in runs (cache.c). */
    void *stash[MHI_NUM_CLASSES];
    mhi_span *cur[MHI_NUM_CLASSES];       /* owned current span, or &mhi_span_empty */
    /* Frees left before one takes the slow path (counted down by free's
     * fast path, never in the static caches): there, while the background
     * thread's start is deferred (a process with one thread,
     * background.h), heap calls run its tasks once due, so that a program
     * that only cycles a few blocks from its stashes still gives idle
     * pages back; MHI_CACHE_TICK frees until the thread runs, then
     * INT32_MAX. */
    int32_t tick;
    /* The room left in stash[c]: stash_lim[c] minus its length
     * (mhi_stash_count), 0 in the static caches.  Free tests it for zero
     * and counts it down, without reading stash_lim's line.  (Counting only
     * on free and recounting at the limit would save an instruction, but
     * the recount reads every stashed object, cold by then: 0.9 M more
     * first-level misses in the pool workload.) */
    uint32_t stash_room[MHI_NUM_CLASSES];
    uint32_t stash_lim[MHI_NUM_CLASSES]; /* a free past this grows it or sends the older half back */
    mhi_span_list avail[MHI_NUM_CLASSES]; /* owned, with free objects; entirely free ones last */
    mhi_span_list full[MHI_NUM_CLASSES];  /* owned, no free object when filed; notice armed */
    /* Spans of this cache's full lists that received a remote free, pushed
     * by the freer (a Treiber stack through mhi_span.xnext), taken whole. */
    mhi_span *_Atomic notify;
    size_t empty_bytes;                   /* bytes of entirely free spans kept on avail */
    /* The bound on empty_bytes (from MHI_EMPTY_KEEP up to MHI_EMPTY_KEEP_MAX,
     * cache_impl.h); bit c of empty_gave: a span of class c went back to
     * the page heap for want of room under it since the cache last took a
     * span of class c from central; empty_low and empty_takes: the least
     * empty_bytes, and the kept spans taken, since the trim pass last
     * looked at the bound, in epoch empty_look (the pass halves a grown
     * bound that more than half stayed unused, or none of which was
     * taken).  The cache's lock guards all five. */
    size_t empty_keep;
    uint64_t empty_gave[(MHI_NUM_CLASSES + 63) / 64];
    size_t empty_low;
    uint32_t empty_takes;
    uint32_t empty_look;
    /* empty_keep is above MHI_EMPTY_KEEP (written under the lock, read
     * without it by the trim pass, which then takes the lock). */
    _Atomic bool empty_grown;
    size_t stash_bytes;                   /* what the stash limits grew by, in bytes */
    /* Held by the owner in its slow paths (everything but the fast paths,
     * which touch only stash and cur) and by the background thread while
     * it trims spans of avail (never cur). */
    mhi_lock_t lock;
    bool bg_wanted; /* wake the background thread once the lock is dropped */
    bool orphan;    /* (child of fork) another thread's cache: never trimmed */
    /* Parked: its thread exited and it kept its spans (and stashes) for
     * the next thread; no thread runs its fast paths.  Written under
     * mhi_caches.lock (cache_impl.h), with the lists below. */
    bool parked;
    int64_t parked_ms; /* when it was parked (mhi_os_millitime) */
    /* live caches (doubly linked), parked ones (doubly linked, newest
     * first) or the pool of empty ones (through next) */
    mhi_cache *next, *prev;
};

extern mhi_span mhi_span_empty;
extern mhi_cache mhi_cache_empty, mhi_cache_dead;
extern __thread mhi_cache *mhi_tls_cache __attribute__((tls_model("initial-exec")));

void *mhi_cache_alloc_slow(size_t c);
void mhi_cache_free_slow(void *p);
/* Once, at load (process.c), or at the first thread cache: the caches'
 * allocator and the thread key whose destructor gives a cache back at
 * thread exit.  Made at load, the key is among the process's first: glibc
 * keeps keys 32 and up in a block per thread that it allocates in the
 * thread's first pthread_setspecific of such a key, and where that is the
 * thread's first allocation, a cache key in the same block had its value
 * overwritten when the outer call's allocation returned (contract row
 * thread_key_late). */
void mhi_cache_setup(void);
/* Free large object s (its span, in use), for the free slow path: a block
 * of 256 KiB or more waits for the next such free before its pages go
 * back, so the next malloc of the size gets other pages (malloc.c;
 * docs/design.md, "Freed large blocks held back"). */
void mhi_free_large(mhi_span *s);
/* The stash of class c is full: send its older half back. */
void mhi_cache_stash_full(size_t c);
/* Live caches, caches kept for threads yet to start (parked ones and empty
 * ones), of those the parked ones, and the bytes all stashes grew by. */
typedef struct {
    uint64_t live, pool, parked, stash_grown;
} mhi_cache_counts_t;
void mhi_cache_counts(mhi_cache_counts_t *out);
void mhi_cache_fork_prepare(void);
void mhi_cache_fork_parent(void);
void mhi_cache_fork_child(void);
/* Give the calling thread's spans back to the central lists; the cache
 * stays usable. */
void mhi_cache_flush(void);
/* Return the calling thread's cache for good (thread exit): parked with
 * its spans for the next thread when the background thread may run (it
 * flushes parked caches once they have aged), else flushed to central. */
void mhi_cache_release(void);
/* Flush to central every parked cache parked at or before now_ms minus
 * the parking bound (the scavenger delay), oldest first; INT64_MAX
 * flushes them all.  Returns how many stay parked.  (The background
 * thread's task calls it with the time; tests call it directly.) */
size_t mhi_cache_park_expire(int64_t now_ms);
/* Flush every parked cache, then trim every candidate span of every cache
 * and central list now, aged or not (caches busy in a slow path are
 * skipped); returns the bytes released.  (The background thread's pass is a task of cache.c's.) */
size_t mhi_cache_trim_now(void);
/* How many trim passes (the background thread's and mh_trim's) have run. */
uint64_t mhi_cache_trim_passes(void);
/* ... and how many have ended (the central lists' part included). */
uint64_t mhi_cache_trim_passes_done(void);
/* Ask the background thread for a trim pass (starting it if it may run;
 * no allocator lock held). */
void mhi_cache_trim_request(void);
/* Check the thread caches: every live and parked cache's avail and full
 * spans (under its lock: mhi_span_verify_small, list counts, the bytes of
 * entirely free spans kept), and, for the calling thread's own cache and
 * every parked one, its current spans and its stashes (each object marked
 * free, counts equal to the lists, within bounds); the counts of live and
 * parked caches; caches in the empty pool hold nothing.  Other threads'
 * current spans and stashes belong to their owners' fast paths and are
 * not read.  Returns the number of
 * violations, printed as "mheap: verify: ...". */
size_t mhi_cache_verify(void);

#define MHI_ALWAYS_INLINE __attribute__((always_inline)) inline

/* The static empty and dead caches: no spans, no stash. */
static inline bool mhi_cache_is_static(const mhi_cache *cache) {
    return cache == &mhi_cache_empty || cache == &mhi_cache_dead;
}

/* The number of objects on the stash of class c. */
static inline uint32_t mhi_stash_count(const mhi_cache *cache, size_t c) {
    return cache->stash_lim[c] - cache->stash_room[c];
}

/* Push p (checked) onto the stash of class c, which has room: link and
 * mark it. */
static MHI_ALWAYS_INLINE void mhi_stash_push(mhi_cache *cache, size_t c, void *p) {
    mhi_link_set(p, cache->stash[c]);
    cache->stash[c] = p;
    cache->stash_room[c]--;
}

/* Take one object of class c without a slow path: from the stash first
 * (objects recently freed here, warm in this core's cache), else the
 * current span; NULL when both are empty, or when the head's free mark is
 * damaged (mhi_cache_alloc_slow then names it). */
static MHI_ALWAYS_INLINE void *mhi_cache_pop(size_t c) {
    mhi_cache *cache = mhi_tls_cache;
    void *p = cache->stash[c];
    if (MHI_UNLIKELY(p != NULL)) {
        if (MHI_UNLIKELY(!mhi_free_marked(p))) return NULL; /* (the slow path names it) */
        cache->stash[c] = mhi_link_get(p);
        cache->stash_room[c]++;
        mhi_mark_clear(p);
        return p;
    }
    mhi_span *s = cache->cur[c];
    p = s->freelist;
    if (MHI_UNLIKELY(!p || !mhi_free_marked(p))) return NULL; /* (empty, or damaged) */
    s->freelist = mhi_link_get(p);
    mhi_mark_clear(p);
    s->nfree--;
    return p;
}

/* Allocate one object of class c (NULL: out of memory). */
static MHI_ALWAYS_INLINE void *mhi_cache_alloc(size_t c) {
    void *p = mhi_cache_pop(c);
    return MHI_LIKELY(p != NULL) ? p : mhi_cache_alloc_slow(c);
}

/* The free fast path's lookup: true if p starts an object of a
 * small-object span open to the fast path, with its size class in *cp and
 * its arena in *arp; false otherwise (the caller takes its full path).  It
 * reads the page's entry in the arena's fast map and the class constants
 * beside it, not the span (arena.h): only a small-object span in use with
 * a fast_limit above 0 has its pages' entries set (mhi_span_set_fast sets
 * them with the limit, and clears them before the kind changes from SMALL
 * or trimming releases pages), and the object check rules out addresses
 * past the span's objects.  (The arena number is compared with the map's
 * range, not masked to it: nothing read after the map entry holds the
 * high bits of p.) */
static MHI_ALWAYS_INLINE bool mhi_small_object_fast(const void *p, mhi_arena **arp, size_t *cp) {
    mhi_arena *ar = mhi_arena_of((uintptr_t)p);
    if (MHI_UNLIKELY(!ar)) return false;
    /* (Through pointers to the first entries: gcc 12 then folds the
     * arrays' offsets into the loads instead of adding them to the index.) */
    __typeof__(&ar->fast[0]) fast = ar->fast, e = fast + mhi_arena_page((uintptr_t)p);
    /* (A closed page's class, 0, has limit 0, so the range check below
     * turns it away: no test of its own.) */
    size_t c = atomic_load_explicit(&e->cls, memory_order_acquire);
    /* p's offset in its span: in the page, plus the page's in the span */
    uint32_t off = ((uint32_t)(uintptr_t)p & (uint32_t)(MHI_PAGE_SIZE - 1)) + e->off;
    /* below the objects' end, then a multiple of elemsize by one multiply
     * (span.h) */
    const uint32_t *limit = ar->fastlimit, *divmul = ar->fastdivmul;
    if (MHI_UNLIKELY(off >= limit[c] || off * divmul[c] >= divmul[c])) return false;
    *arp = ar;
    *cp = c;
    return true;
}

/* The span of p if p starts an object of a small-object span open to the
 * fast path (mhi_small_object_fast), else NULL: for the callers that need
 * the span's fields, not only its class. */
static MHI_ALWAYS_INLINE mhi_span *mhi_small_span_fast(const void *p) {
    mhi_arena *ar;
    size_t c;
    if (MHI_UNLIKELY(!mhi_small_object_fast(p, &ar, &c))) return NULL;
    return atomic_load_explicit(&ar->spans[mhi_arena_page((uintptr_t)p)], memory_order_relaxed);
}

/* The end of the free fast path, once p is known to start an unmarked
 * object of class c (of a small span): mark it and push it on this
 * thread's stash for its class, whoever owns the span, if the stash has
 * room (the static empty and dead caches have none, so threads without a
 * cache take the slow path too, before the tick is counted) and the tick
 * has not run out. */
static MHI_ALWAYS_INLINE void mhi_cache_free_object(size_t c, void *p) {
    mhi_cache *cache = mhi_tls_cache;
    if (MHI_UNLIKELY(cache->stash_room[c] == 0 || --cache->tick < 0)) {
        mhi_cache_free_slow(p);
        return;
    }
    mhi_stash_push(cache, c, p); /* (marks it) */
}

/* Free p (NULL too: the slow path returns) onto this thread's stash for
 * its class.  Checks: an object of a small span, not marked free (the slow
 * path reports a marked one), and room in the stash. */
static MHI_ALWAYS_INLINE void mhi_cache_free(void *p) {
    mhi_arena *ar;
    size_t c;
    if (MHI_UNLIKELY(!mhi_small_object_fast(p, &ar, &c) || mhi_free_marked(p))) {
        mhi_cache_free_slow(p);
        return;
    }
    mhi_cache_free_object(c, p);
}

#endif
