/* pageheap_util.h - helpers shared by the tests of the page heap and the
 * layers around it: statistics snapshots, in-use spans that must exist, a
 * byte-pattern check, a heap consistency check, a check of a
 * small-object span's free list, and a small-object span's owner, xfree
 * list and list membership, and one class's central counters.
 *
 * Everything here is static inline, so a test that uses only part of it
 * builds without unused-function warnings. */
#ifndef MHEAP_TEST_PAGEHEAP_UTIL_H
#define MHEAP_TEST_PAGEHEAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "central.h"
#include "check.h"
#include "mheap.h"
#include "pageheap.h"

#define P MHI_PAGE_SIZE

/* The heap passes every invariant check (public entry point). */
#define VERIFY0() CHECK_EQ(mh_heap_verify(), 0)

/* A snapshot of the page heap's statistics. */
static inline mhi_heap_stats stats(void) {
    mhi_heap_stats s;
    mhi_heap_stats_get(&s);
    return s;
}

/* An in-use large span of n pages; the test stops if there is none. */
static inline mhi_span *alloc_inuse(size_t n) {
    mhi_span *s = mhi_heap_alloc(n, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    REQUIRE(s != NULL);
    return s;
}

/* Every one of the len bytes at p is v. */
static inline bool all_bytes(const void *p, size_t len, unsigned char v) {
    const unsigned char *c = p;
    for (size_t i = 0; i < len; i++)
        if (c[i] != v) return false;
    return true;
}

/* The free list of small-object span s holds exactly nfree distinct
 * objects of s, each at an object boundary and carrying the free mark. */
static inline bool freelist_sound(const mhi_span *s) {
    static unsigned char seen[1024];
    if (s->nelems > sizeof seen) return false;
    memset(seen, 0, s->nelems);
    uint32_t n = 0;
    for (void *p = s->freelist; p; p = *(void **)p) {
        uintptr_t off = (uintptr_t)p - s->base;
        if (off >= s->nbytes || off % s->elemsize) return false;
        uint32_t i = (uint32_t)(off / s->elemsize);
        if (i >= s->nelems || seen[i] || !mhi_free_marked(p) || i >= s->fresh) return false;
        seen[i] = 1;
        if (++n > s->nelems) return false;
    }
    /* (objects from fresh on are free, never yet on the list) */
    return n + (s->nelems - s->fresh) == s->nfree;
}

/* A small-object span's xfree word (tags and list) and owner. */
static inline uintptr_t xfree_of(const mhi_span *s) {
    return atomic_load_explicit(&s->xfree, memory_order_acquire);
}
static inline void *owner_of(const mhi_span *s) {
    return atomic_load_explicit(&s->owner, memory_order_relaxed);
}

/* Length of an xfree chain (NULL-terminated, tags off); every object on it
 * marked, else returns UINT32_MAX. */
static inline uint32_t xfree_len(const mhi_span *s) {
    uint32_t n = 0;
    for (void *p = (void *)(xfree_of(s) & ~MHI_XF_TAGS); p; p = *(void **)p)
        if (!mhi_free_marked(p) || ++n > s->nelems) return UINT32_MAX;
    return n;
}

static inline bool on_list(const mhi_span_list *l, const mhi_span *s) {
    for (const mhi_span *t = l->first; t; t = t->next)
        if (t == s) return true;
    return false;
}

/* The central counters of one class, copied. */
typedef struct {
    size_t npartial;
    uint64_t nfull, nspans, nspan_alloc, nspan_free;
} ccount;

static inline ccount central_count(size_t c) {
    mhi_central *ce = &mhi_centrals[c];
    mhi_lock(&ce->lock);
    ccount k = {ce->partial.count, ce->nfull, ce->nspans, ce->nspan_alloc, ce->nspan_free};
    mhi_unlock(&ce->lock);
    return k;
}

#endif
