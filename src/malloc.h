/* malloc.h - the malloc layer's entry points, shared by the public mh_*
 * functions (malloc.c) and the libc overrides (override.c). */
#ifndef MHEAP_MALLOC_H
#define MHEAP_MALLOC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "mheap.h"
#include "os.h"
#include "sizeclass.h"

MHI_NOINLINE void *mhi_malloc_large(size_t size, bool zero);
MHI_NOINLINE void *mhi_malloc_oom(size_t size);
void *mhi_calloc(size_t n, size_t size);
void *mhi_realloc(void *p, size_t size);
void *mhi_reallocarray(void *p, size_t n, size_t size);
void *mhi_malloc_aligned(size_t align, size_t size);
MHI_NOINLINE size_t mhi_usable_size_slow(const void *p);
/* Give every held-back large block to the page heap now; false if there
 * was none.  (Statistics, trim and verify call it, so that they see the
 * heap without the delay, and an allocation that finds no memory retries
 * after it.) */
bool mhi_free_large_flush(void);

/* malloc_usable_size: programs that keep count of their memory (Redis
 * does, on every allocation and free) call it as often as malloc. */
static MHI_ALWAYS_INLINE size_t mhi_usable_size(const void *p) {
    mhi_arena *ar;
    size_t c;
    return MHI_LIKELY(mhi_small_object_fast(p, &ar, &c)) ? ar->fastsize[c] : mhi_usable_size_slow(p);
}
/* Everything sized free does not settle inline: NULL, large objects, a
 * size the inline check does not accept (decided exactly here, aborting on
 * a wrong one), and whatever free's own slow path handles. */
MHI_NOINLINE void mhi_free_sized_slow(void *p, size_t size, size_t align);
void mhi_malloc_init(void);
/* Every statistic of mh_stats_t, now (api.c). */
void mhi_stats_collect(mh_stats_t *st);

/* The slow path of a small malloc (a tail call: the fast path saves
 * nothing for it). */
MHI_NOINLINE void *mhi_malloc_small_slow(size_t size);

static MHI_ALWAYS_INLINE void *mhi_malloc(size_t size) {
    size_t c;
    if (MHI_LIKELY(mhi_small_class(size, &c))) {
        void *p = mhi_cache_pop(c);
        if (MHI_LIKELY(p != NULL)) return p;
        return mhi_malloc_small_slow(size);
    }
    return mhi_malloc_large(size, false);
}

/* NULL is not tested first: no arena holds address 0, so its lookup fails
 * and the slow path returns. */
static MHI_ALWAYS_INLINE void mhi_free(void *p) { mhi_cache_free(p); }

/* free_sized, free_aligned_sized and the sized operator deletes (align is
 * 0 for the unaligned forms, and only the slow path reads it): free's fast
 * path with the size checked against the object's size.  Inline it takes
 * a size that does not exceed the object and fills at least half of it:
 * one subtraction and one compare with constants of the class that the
 * arena keeps beside those the object check has just read (arena.h).
 * That is never a wrong size (the slow path's rule accepts every such
 * size: realloc's slack), and every size of the object's class is one,
 * except sizes below 8 for 16-byte objects (tests/test_sizeclass.c).
 * Other sizes (among them aligned sizes far below the class their
 * alignment picks), and NULL, whose lookup fails, go to the slow path,
 * which applies the whole rule with the alignment. */
static MHI_ALWAYS_INLINE void mhi_free_sized(void *p, size_t size, size_t align) {
    mhi_arena *ar;
    size_t c;
    if (MHI_UNLIKELY(!mhi_small_object_fast(p, &ar, &c) ||
                     size > ar->fastsizehi[c] || size < ar->fastsizelo[c] || mhi_free_marked(p))) {
        mhi_free_sized_slow(p, size, align);
        return;
    }
    mhi_cache_free_object(c, p);
}

/* The entry points the public names call (override.c, override_new.c,
 * api.c): the core's own, or in the secure build the checking layer's
 * (secure.h), which calls the core's. */
#if MHEAP_SECURE
#include "secure.h"
#define MHI_ENTRY(name) mhi_secure_##name
#else
#define MHI_ENTRY(name) mhi_##name
#endif

#endif
