/* trim.h - trimming: releasing the free pages inside small-object spans
 * that still hold live objects.
 *
 * A span with few objects (at most 64) can have whole OS pages covered by
 * free objects while other objects in it are live.  mhi_span_trim takes
 * the free objects overlapping such pages off the free list into relmask,
 * marks the span KIND_SMALL_REL and releases the pages (madvise
 * DONTNEED); mhi_span_unrelease puts them back on the free list when the
 * span runs out.  Both need the right to change the span's free list: its
 * owner (under the cache's lock) or central[c]'s lock for an unowned span.
 * The background thread's pass (malloc.c: mhi_malloc_trim_pass) trims the
 * spans no one returned objects to for two trim epochs. */
#ifndef MHEAP_TRIM_H
#define MHEAP_TRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "span.h"

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
    /* (objects never handed out are not on the free list: trim leaves
     * them alone) */
    uint32_t fresh = atomic_load_explicit(&s->fresh, memory_order_relaxed);
    return (size_t)(s->nfree - rel - (s->nelems - fresh)) * s->elemsize >= os_page;
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
    bool force;    /* trim whatever is a candidate, aged or not */
    size_t budget; /* spans it may still trim */
    size_t bytes;  /* released so far */
    bool young;    /* a candidate was left for later */
} mhi_trim_pass;

/* Trim s if it is a candidate that changed since its last trim and that
 * no one returned objects to for two epochs (any candidate when forced);
 * the caller may change its free list.  True if pages were released. */
bool mhi_span_trim_aged(mhi_span *s, mhi_trim_pass *tp);

#endif
