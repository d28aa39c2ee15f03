/* gc/gc_inline.h - bdwgc 8.2's inline allocation macros on mheap's
 * collector.  A program written for them builds unchanged; they give
 * objects of the same kinds and sizes.
 *
 * Where mheap differs: bdwgc's macros pop objects from a free-list array
 * the caller owns (tiny_fl, GC_TINY_FREELISTS entries), refilled with
 * GC_generic_malloc_many.  mheap's own allocation already takes objects
 * from the calling thread's span without a lock, so the macros allocate
 * with default_expr every time (GC_malloc_kind for the ones below) and
 * leave tiny_fl untouched: it may stay zeroed, and the objects are never
 * kept on a list the collector could not see (a list of pointer-free
 * objects is linked through words it does not scan).  num_direct is not
 * used.  init runs on each object allocated; every object of GC_I_NORMAL
 * comes zeroed.
 *
 * GC_generic_malloc_many, GC_malloc_kind, GC_malloc_kind_global and
 * GC_I_PTRFREE / GC_I_NORMAL are declared in gc/gc_mark.h, included here.
 * GC_print_free_list (there are no free lists) is not declared. */
#ifndef GC_INLINE_H
#define GC_INLINE_H

#include "gc_mark.h"
#include "gc_tiny_fl.h"

#if defined(__GNUC__)
#define GC_EXPECT(expr, outcome) __builtin_expect(expr, outcome)
#define GC_PREFETCH_FOR_WRITE(x) __builtin_prefetch((x), 1)
#else
#define GC_EXPECT(expr, outcome) (expr)
#define GC_PREFETCH_FOR_WRITE(x) (void)0
#endif

/* result = an object of granules granules and kind kind: default_expr
 * (evaluated once), then init when it is not NULL. */
#define GC_FAST_MALLOC_GRANS(result, granules, tiny_fl, num_direct, kind, default_expr, init) \
    do {                                                                                    \
        (void)(tiny_fl);                                                                    \
        (void)(num_direct);                                                                 \
        (void)(kind);                                                                       \
        (result) = (default_expr);                                                          \
        if ((result) != NULL) {                                                             \
            init;                                                                           \
        }                                                                                   \
    } while (0)

#define GC_WORDS_TO_WHOLE_GRANULES(n) GC_WORDS_TO_GRANULES((n) + GC_GRANULE_WORDS - 1)

/* An object of n words of kind kind (GC_I_NORMAL: its first word zeroed
 * by init, as in bdwgc; mheap zeroes the whole object anyway). */
#define GC_MALLOC_WORDS_KIND(result, n, tiny_fl, kind, init)                                \
    do {                                                                                    \
        size_t gc_grans_ = GC_WORDS_TO_WHOLE_GRANULES(n);                                   \
        GC_FAST_MALLOC_GRANS(result, gc_grans_, tiny_fl, 0, kind,                           \
                             GC_malloc_kind(gc_grans_ * GC_GRANULE_BYTES, kind), init);     \
    } while (0)

#define GC_MALLOC_WORDS(result, n, tiny_fl)                                                 \
    GC_MALLOC_WORDS_KIND(result, n, tiny_fl, GC_I_NORMAL, *(void **)(result) = 0)
#define GC_MALLOC_ATOMIC_WORDS(result, n, tiny_fl)                                          \
    GC_MALLOC_WORDS_KIND(result, n, tiny_fl, GC_I_PTRFREE, (void)0)

/* result = a two-word scanned object holding first and second. */
#define GC_CONS(result, first, second, tiny_fl)                                             \
    do {                                                                                    \
        void *gc_l_ = (void *)(first);                                                      \
        void *gc_r_ = (void *)(second);                                                     \
        GC_MALLOC_WORDS_KIND(result, 2, tiny_fl, GC_I_NORMAL, (void)0);                     \
        if ((result) != NULL) {                                                             \
            *(void **)(result) = gc_l_;                                                     \
            GC_PTR_STORE_AND_DIRTY((void **)(result) + 1, gc_r_);                           \
            GC_reachable_here(gc_l_);                                                       \
        }                                                                                   \
    } while (0)

#endif
