/* cache.h - per-thread caches (the seed's mcache) and the small-object fast
 * paths.
 *
 * Each thread has a cache, reached through one initial-exec TLS pointer.
 * A cache owns spans: per size class one current span, which allocation
 * pops objects from, and lists of other spans it took earlier (those with
 * free objects, and those it found full).  A free of an object in any span
 * the thread owns goes straight onto that span's free list with no lock and
 * no atomic operation.  A free into a span another cache owns is pushed
 * onto the span's xfree list with one CAS; the owner collects it when it
 * needs objects.  When a span the owner filed as full receives such a free,
 * the freer also pushes the span onto the owner's notify stack, so the
 * owner finds it again without scanning.  Spans nobody owns (their owner
 * exited) take frees under their central list's lock.  Before any of that,
 * a free into a span the thread does not own waits in the thread's stash
 * for the class, where the thread's next allocation of that class takes it
 * (tcmalloc's reuse, without touching the owner's span); a full stash goes
 * back to the spans in runs, one CAS per run of objects of one span.
 *
 * Before a thread's first allocation its TLS pointer names a static empty
 * cache whose current spans are a static empty span, so the fast path needs
 * no NULL check: its free list is empty and the slow path makes the real
 * cache.  At thread exit (pthread key destructor) the cache's spans go to
 * the central lists and the pointer names the static dead cache: later
 * calls from that thread use the central lists directly. */
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
    /* Objects this thread freed into spans it does not own, kept (marked
     * free) for its own next allocations of the class, up to a bound; then
     * they go back to their spans in runs (cache.c). */
    void *stash[MHI_NUM_CLASSES];
    mhi_span *cur[MHI_NUM_CLASSES];       /* owned current span, or &mhi_span_empty */
    /* The length of stash[c].  (Counting only on free and recounting at the
     * limit saves an instruction per pair, but the recount reads every
     * stashed object, cold by then: 0.9 M more first-level misses in the
     * pool workload.) */
    uint32_t nstash[MHI_NUM_CLASSES];
    uint32_t stash_lim[MHI_NUM_CLASSES]; /* a free past this grows it or sends the older half back */
    mhi_span_list avail[MHI_NUM_CLASSES]; /* owned, with free objects; entirely free ones last */
    mhi_span_list full[MHI_NUM_CLASSES];  /* owned, no free object when filed; notice armed */
    /* Spans of this cache's full lists that received a remote free, pushed
     * by the freer (a Treiber stack through mhi_span.xnext), taken whole. */
    mhi_span *_Atomic notify;
    size_t empty_bytes;                   /* bytes of entirely free spans kept on avail */
    size_t stash_bytes;                   /* what the stash limits grew by, in bytes */
    /* Held by the owner in its slow paths (everything but the fast paths,
     * which touch only stash and cur) and by the background thread while
     * it trims spans of avail (never cur). */
    mhi_lock_t lock;
    bool bg_wanted; /* wake the background thread once the lock is dropped */
    bool orphan;    /* (child of fork) another thread's cache: never trimmed */
    mhi_cache *next, *prev;               /* live caches / the pool of unused ones */
    bool live;
};

extern mhi_span mhi_span_empty;
extern mhi_cache mhi_cache_empty, mhi_cache_dead;
extern __thread mhi_cache *mhi_tls_cache __attribute__((tls_model("initial-exec")));

void *mhi_cache_alloc_slow(size_t c);
void mhi_cache_free_slow(void *p);
/* The stash of class c is full: send its older half back. */
void mhi_cache_stash_full(size_t c);
uint64_t mhi_cache_count(void); /* live caches */
void mhi_cache_fork_prepare(void);
void mhi_cache_fork_parent(void);
void mhi_cache_fork_child(void);
/* Give the calling thread's spans back to the central lists; the cache
 * stays usable. */
void mhi_cache_flush(void);
/* Return the calling thread's cache for good (thread exit). */
void mhi_cache_release(void);
/* One trim pass of the background thread over every cache's and central
 * list's spans (the page heap's bg hook: 0 done, 1 spans still too young,
 * 2 budget spent). */
int mhi_malloc_trim_pass(int64_t delay_ms);
/* Trim every candidate span now, aged or not (caches busy in a slow path
 * are skipped); returns the bytes released. */
size_t mhi_malloc_trim_now(void);

#define MHI_ALWAYS_INLINE __attribute__((always_inline)) inline

/* The static empty and dead caches: no spans, no stash. */
static inline bool mhi_cache_is_static(const mhi_cache *cache) {
    return cache == &mhi_cache_empty || cache == &mhi_cache_dead;
}

/* Push p (checked, marked) onto the stash of class c, which has room. */
static MHI_ALWAYS_INLINE void mhi_stash_push(mhi_cache *cache, size_t c, void *p) {
    *(void **)p = cache->stash[c];
    cache->stash[c] = p;
    cache->nstash[c]++;
}

/* Take one object of class c without a slow path: from the stash first
 * (objects recently freed here, warm in this core's cache), else the
 * current span; NULL when both are empty. */
static MHI_ALWAYS_INLINE void *mhi_cache_pop(size_t c) {
    mhi_cache *cache = mhi_tls_cache;
    void *p = cache->stash[c];
    if (MHI_UNLIKELY(p != NULL)) {
        cache->stash[c] = *(void **)p;
        cache->nstash[c]--;
        mhi_mark_clear(p);
        return p;
    }
    mhi_span *s = cache->cur[c];
    p = s->freelist;
    if (MHI_UNLIKELY(!p)) return NULL;
    s->freelist = *(void **)p;
    mhi_mark_clear(p);
    s->nfree--;
    return p;
}

/* Allocate one object of class c (NULL: out of memory). */
static MHI_ALWAYS_INLINE void *mhi_cache_alloc(size_t c) {
    void *p = mhi_cache_pop(c);
    return MHI_LIKELY(p != NULL) ? p : mhi_cache_alloc_slow(c);
}

/* The span of p if p starts an object of a small-object span without
 * released pages; NULL otherwise (the caller takes its full path).  Only
 * small-object spans in use say KIND_SMALL (the page heap clears kind when
 * a span is freed, and a span dies only once free), so a stale map entry
 * fails here; the object check also rules out addresses outside the span. */
static MHI_ALWAYS_INLINE mhi_span *mhi_small_span_fast(const void *p) {
    mhi_arena *ar = mhi_arena_of((uintptr_t)p);
    if (MHI_UNLIKELY(!ar)) return NULL;
    mhi_span *s = atomic_load_explicit(&ar->spans[mhi_arena_page((uintptr_t)p)],
                                       memory_order_relaxed);
    if (MHI_UNLIKELY(!s || mhi_span_kind(s) != MHI_KIND_SMALL)) return NULL;
    uintptr_t off = (uintptr_t)p - s->base;
    uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
    if (MHI_UNLIKELY(idx >= s->nelems || (uintptr_t)idx * s->elemsize != off)) return NULL;
    return s;
}

/* Free p (not NULL): onto this thread's stash for its class, whoever owns
 * its span.  Checks: an object of a small span, not marked free (the slow
 * path reports a marked one), and room in the stash (the static empty and
 * dead caches have none, so threads without a cache take the slow path
 * too). */
static MHI_ALWAYS_INLINE void mhi_cache_free(void *p) {
    mhi_span *s = mhi_small_span_fast(p);
    if (MHI_UNLIKELY(!s || mhi_free_marked(p))) {
        mhi_cache_free_slow(p);
        return;
    }
    mhi_cache *cache = mhi_tls_cache;
    size_t c = s->sizeclass;
    if (MHI_UNLIKELY(cache->nstash[c] >= cache->stash_lim[c])) {
        mhi_cache_free_slow(p);
        return;
    }
    mhi_mark_free(p);
    mhi_stash_push(cache, c, p);
}

#endif
