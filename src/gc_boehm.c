/* gc_boehm.c - the bdwgc-compatible entry points of include/gc.h, each a
 * thin call into the mh_gc_* interface of mheap_gc.h. */
#include <stddef.h>

#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "mheap_gc.h"

#define GCB_EXPORT __attribute__((visibility("default")))

GCB_EXPORT void GC_CALL GC_init(void) { (void)mh_gc_register_thread(); }

/* (GC_malloc and GC_malloc_atomic are in gc.c, beside the inline fast
 * path) */

GCB_EXPORT void *GC_CALL GC_malloc_uncollectable(size_t size) {
    return mh_gc_malloc_uncollectable(size);
}

/* bdwgc's rule for a size of 0 is fixed (free, return NULL) where C's
 * realloc leaves it to the implementation, so it is handled here. */
GCB_EXPORT void *GC_CALL GC_realloc(void *old_object, size_t new_size) {
    if (old_object && new_size == 0) {
        mh_gc_free(old_object);
        return NULL;
    }
    return mh_gc_realloc(old_object, new_size);
}

GCB_EXPORT void GC_CALL GC_free(void *p) { mh_gc_free(p); }

GCB_EXPORT void GC_CALL GC_gcollect(void) { mh_gc_collect(0); }

GCB_EXPORT GC_word GC_CALL GC_get_gc_no(void) { return (GC_word)mh_gc_cycles(); }

GCB_EXPORT size_t GC_CALL GC_get_heap_size(void) { return mh_gc_heap_size(); }
