/* central.h - the central lists: per size class, the spans no thread cache
 * owns (the seed's mcentral, padded to its own cache line as the seed pads
 * mheap.central[]).
 *
 * central[c].lock guards: the partial list, the count of full spans, and
 * the freelist / freebits / nfree / owner / incentral fields of every
 * unowned span of class c.  Lock order: central[c].lock, then the heap
 * lock; never two central locks at once. */
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

/* Put object p back into span s (owner thread, or central lock held for an
 * unowned span), checking it: an address that is not the start of an
 * object aborts with "invalid pointer", an object already free with
 * "double free". */
static inline void mhi_span_put(mhi_span *s, void *p) {
    uintptr_t off = (uintptr_t)p - s->base;
    uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
    if (MHI_UNLIKELY(off >= s->nbytes || (uintptr_t)idx * s->elemsize != off)) {
        mhi_malloc_fatal("invalid pointer", p);
    }
    uint64_t m = 1ULL << (idx & 63);
    if (MHI_UNLIKELY((s->freebits[idx >> 6] |
                      atomic_load_explicit(&s->xfreebits[idx >> 6], memory_order_relaxed)) &
                     m)) {
        mhi_malloc_fatal("double free", p);
    }
    s->freebits[idx >> 6] |= m;
    *(void **)p = s->freelist;
    s->freelist = p;
}

/* Apply a free made by a thread that did not own s (the object's xfreebits
 * bit is set): clear that bit, then put the object back as mhi_span_put. */
static inline void mhi_span_put_remote(mhi_span *s, void *p) {
    uint32_t idx = (uint32_t)(((uint64_t)((uintptr_t)p - s->base) * s->divmul) >> 32);
    atomic_fetch_and_explicit(&s->xfreebits[idx >> 6], ~(1ULL << (idx & 63)),
                              memory_order_relaxed);
    mhi_span_put(s, p);
}

/* Record the free of object p of s by a thread that does not own s. */
static inline void mhi_span_mark_remote(mhi_span *s, void *p) {
    uint32_t idx = (uint32_t)(((uint64_t)((uintptr_t)p - s->base) * s->divmul) >> 32);
    uint64_t m = 1ULL << (idx & 63);
    if (MHI_UNLIKELY(atomic_fetch_or_explicit(&s->xfreebits[idx >> 6], m,
                                              memory_order_relaxed) &
                     m))
        mhi_malloc_fatal("double free", p);
}

/* Move the objects other threads freed into s (owner only).  Returns how
 * many there were. */
size_t mhi_span_collect_xfree(mhi_span *s);

/* A span of class c for the cache `owner`: an unowned partial span, or a
 * new one from the page heap.  NULL if out of memory. */
mhi_span *mhi_central_cache_span(size_t c, void *owner);
/* The owner gives s up: it becomes unowned (partial, full, or back to the
 * page heap if every object is free). */
void mhi_central_uncache_span(mhi_span *s);
/* Free n objects of class c, linked through their first word, that the
 * thread with cache `self` (may be NULL) freed into spans it does not own. */
void mhi_central_free_list(size_t c, void *list, void *self);
/* One object of class c without a cache (exiting threads). */
void *mhi_central_alloc_one(size_t c);

/* Totals over all classes (reads each central under its lock). */
void mhi_central_totals(uint64_t *spans, uint64_t *bytes);
/* Print one line per class in use. */
void mhi_central_print(int fd);

void mhi_central_fork_prepare(void);
void mhi_central_fork_parent(void);
void mhi_central_fork_child(void);

#endif
