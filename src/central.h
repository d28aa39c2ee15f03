/* central.h - the central lists: per size class, the spans no thread cache
 * owns (the seed's mcentral, padded to its own cache line as the seed pads
 * mheap.central[]), and the per-span operations both caches and central
 * lists use.
 *
 * central[c].lock guards: the partial list, the count of full spans, the
 * span counters, and the freelist / nfree / where fields of
 * every unowned span of class c.  A span's owner and its ABANDONED tag
 * change only under it.  Lock order: central[c].lock, then the heap lock;
 * never two central locks at once. */
#ifndef MHEAP_CENTRAL_H
#define MHEAP_CENTRAL_H

#include <stddef.h>
#include <stdint.h>

#include "os.h"
#include "sizeclass.h"
#include "span.h"

typedef struct {
    mhi_lock_t lock;
    mhi_span_list partial; /* unowned spans with at least one free object */
    uint64_t nfull;        /* unowned spans with no free object (on no list) */
    uint64_t nspans;       /* spans of this class taken from the page heap, live */
    uint64_t nspan_alloc;  /* spans taken from the page heap, in all */
    uint64_t nspan_free;   /* spans returned to the page heap, in all */
} __attribute__((aligned(MHI_CACHE_LINE))) mhi_central;

extern mhi_central mhi_centrals[MHI_NUM_CLASSES];

/* "mheap: <what>: <p>" and abort. */
MHI_NORETURN void mhi_malloc_fatal(const char *what, const void *p);

static inline uint32_t mhi_span_index(const mhi_span *s, const void *p) {
    return (uint32_t)(((uint64_t)((uintptr_t)p - s->base) * s->divmul) >> 32);
}

/* Abort unless p is the start of an object of s. */
static inline uint32_t mhi_span_check(const mhi_span *s, const void *p) {
    uintptr_t off = (uintptr_t)p - s->base;
    uint32_t idx = mhi_span_index(s, p);
    if (MHI_UNLIKELY(off >= s->nbytes || idx >= s->nelems || (uintptr_t)idx * s->elemsize != off))
        mhi_malloc_fatal("invalid pointer", p);
    return idx;
}

/* The free mark (span.h): word 1 of a free object. */
static inline uintptr_t mhi_mark_of(const void *p) { return (uintptr_t)p ^ MHI_FREE_MARK; }
static inline bool mhi_free_marked(const void *p) {
    return ((const uintptr_t *)p)[1] == mhi_mark_of(p);
}
static inline void mhi_mark_free(void *p) { ((uintptr_t *)p)[1] = mhi_mark_of(p); }
static inline void mhi_mark_clear(void *p) { ((uintptr_t *)p)[1] = 0; }

/* Check and mark the free of object p by a thread that does not own its
 * span.  A marked object is free already (on a free list, an xfree list or
 * a cache's stash): abort.  A plain load and store: two frees of one object
 * by two threads within the same few nanoseconds can both pass (an atomic
 * exchange closes that window, but the locked instruction per cross-thread
 * free took about 4 % of the samples in a perf profile of the server
 * workload). */
static inline void mhi_span_mark_remote(void *p) {
    if (MHI_UNLIKELY(mhi_free_marked(p))) mhi_malloc_fatal("double free", p);
    mhi_mark_free(p);
}

/* Move the objects other threads freed into s onto its free list (owner
 * only; tags are kept).  Returns how many there were. */
size_t mhi_span_collect_xfree(mhi_span *s);

/* Owner: stop notices for s (clear NOTIFY) and wait until no remote freer
 * is delivering one (FREEING), so that no freer pushes s onto the owner's
 * notify stack from now on. */
void mhi_span_quiesce(mhi_span *s);

/* A span of class c for the cache `owner`: an unowned partial span, or a
 * new one from the page heap.  NULL if out of memory. */
mhi_span *mhi_central_take_span(size_t c, void *owner);
/* The owner gives s up (s is on none of its lists): s becomes unowned and
 * is filed as partial, full, or given back to the page heap if every
 * object is free. */
void mhi_central_abandon(mhi_span *s);
/* The owner gives back s, every object of which is free, to the page heap. */
void mhi_central_retire(mhi_span *s);
/* Free the n objects head .. tail of s (linked through their first words,
 * each checked and marked by mhi_span_mark_remote) into s, which was seen
 * unowned.  0 if s has an owner again (the caller then frees through
 * xfree); 1 done; 2 done, and pages may have come free (the caller asks
 * the background thread for a pass). */
int mhi_central_free_unowned(mhi_span *s, void *head, void *tail, uint32_t n);
/* One object of class c without a cache (exiting threads). */
void *mhi_central_alloc_one(size_t c);

/* ---- trimming: releasing free pages inside spans in use ----
 * A span with few objects (at most 64) can have whole OS pages covered by
 * free objects while other objects in it are live.  mhi_span_trim takes
 * the free objects overlapping such pages off the free list into relmask,
 * marks the span KIND_SMALL_REL and releases the pages (madvise
 * DONTNEED); mhi_span_unrelease puts them back on the free list when the
 * span runs out.  Both need the right to change the span's
 * free list: its owner (under the cache's lock) or central[c]'s lock for
 * an unowned span.  The background thread trims spans no one returned
 * objects to for two trim epochs (cache.c: mhi_malloc_trim_pass). */

/* The trim epoch (advanced by the background thread's passes). */
extern _Atomic uint32_t mhi_trim_epoch;
/* Bytes released by trims, and trims that released some, in all. */
extern struct mhi_trim_stat {
    _Atomic uint64_t bytes, spans;
} mhi_trim_stat;

/* Could trimming s release a page: at most 64 objects, and free objects
 * on its list that add up to an OS page at least. */
static inline bool mhi_span_trim_candidate(const mhi_span *s, size_t os_page) {
    if (s->nelems > 64) return false;
    uint32_t rel = (uint32_t)__builtin_popcountll(
        atomic_load_explicit(&s->relmask, memory_order_relaxed));
    return (size_t)(s->nfree - rel) * s->elemsize >= os_page;
}

/* Release the OS pages of s that only free objects overlap; returns the
 * bytes released. */
size_t mhi_span_trim(mhi_span *s);
/* Put the released objects of s back on its free list, their pages
 * brought in with one MADV_POPULATE_WRITE (s has released objects). */
void mhi_span_unrelease(mhi_span *s);
/* The heap pages of s (bit i: page i) that trimming released and nothing
 * touched since: for the page heap when s goes back to it. */
uint64_t mhi_span_released_pages(const mhi_span *s);
/* A free of object idx of s found s KIND_SMALL_REL: abort if the object
 * is one of the released (free) ones. */
void mhi_span_check_released(const mhi_span *s, uint32_t idx, const void *p);
/* One trim pass (the background thread's, or mh_trim's). */
typedef struct {
    uint32_t epoch;
    bool force;     /* trim whatever is a candidate, aged or not */
    size_t budget;  /* spans it may still trim */
    size_t bytes;   /* released so far */
    bool young;     /* a candidate was left for later */
} mhi_trim_pass;

/* Trim s if it is a candidate that changed since its last trim and that
 * no one returned objects to for two epochs (any candidate when forced);
 * the caller may change its free list.  True if pages were released. */
bool mhi_span_trim_aged(mhi_span *s, mhi_trim_pass *tp);
/* Trim the unowned spans of every central list. */
void mhi_central_trim(mhi_trim_pass *tp);

/* Totals over all classes (reads each central under its lock). */
void mhi_central_totals(uint64_t *spans, uint64_t *bytes);
/* Print one line per class in use. */
void mhi_central_print(int fd);

void mhi_central_fork_prepare(void);
void mhi_central_fork_parent(void);
void mhi_central_fork_child(void);

#endif
