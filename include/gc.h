/* gc.h - a source-compatible subset of the Boehm-Demers-Weiser collector's
 * interface (bdwgc 8.2, gc.h), on mheap's garbage-collected heap
 * (mheap_gc.h).  A program that uses only the names below builds against
 * mheap unchanged: compile with -I<mheap>/include and link libmheap.
 *
 * The functions have bdwgc's names and C signatures and the macros expand
 * to them as bdwgc's do when GC_DEBUG is not defined.  What differs:
 *
 *   - Threads.  bdwgc, built with thread support, needs GC_THREADS defined
 *     before this header so that pthread_create is redirected to
 *     GC_pthread_create.  Here GC_THREADS is ignored: a thread is
 *     registered by its first GC call and unregistered when it exits.  A
 *     thread that holds GC pointers before its first GC call (for example
 *     its only reference to its start argument) calls
 *     mh_gc_register_thread() first.
 *   - GC_get_heap_size() is the GC heap's bytes as mheap counts them (spans
 *     held by the GC heap), which need not match bdwgc's figure for the
 *     same program.
 *   - GC_INIT() is optional: every GC function initialises the heap.  It
 *     still registers the calling thread at once.
 *
 * MHEAP_GC_BOEHM_COMPAT is defined so that a program can tell this header
 * from bdwgc's. */
#ifndef GC_H
#define GC_H

#include <stddef.h>

#define MHEAP_GC_BOEHM_COMPAT 1

#ifdef __cplusplus
extern "C" {
#endif

/* Unsigned and signed integers of a pointer's width. */
typedef unsigned long GC_word;
typedef long GC_signed_word;
typedef void *GC_PTR;

#ifndef GC_API
#if defined(__GNUC__)
#define GC_API extern __attribute__((visibility("default")))
#else
#define GC_API extern
#endif
#endif
#ifndef GC_CALL
#define GC_CALL
#endif
#ifndef GC_CALLBACK
#define GC_CALLBACK GC_CALL
#endif

#ifndef GC_ATTR_MALLOC
#if defined(__GNUC__)
#define GC_ATTR_MALLOC __attribute__((__malloc__))
#else
#define GC_ATTR_MALLOC
#endif
#endif
#ifndef GC_ATTR_ALLOC_SIZE
#if defined(__GNUC__)
#define GC_ATTR_ALLOC_SIZE(argnum) __attribute__((__alloc_size__(argnum)))
#else
#define GC_ATTR_ALLOC_SIZE(argnum)
#endif
#endif

/* Initialise the collector and register the calling thread; repeated
 * calls do nothing more. */
GC_API void GC_CALL GC_init(void);

/* Scanned, zeroed memory. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc(size_t /* size_in_bytes */);
/* Memory that holds no pointers: never scanned, not zeroed. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_atomic(size_t /* size_in_bytes */);
/* Scanned, zeroed, never collected; released only by GC_free. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_uncollectable(size_t /* size_in_bytes */);
/* Resize, keeping the object's kind.  NULL old_object: GC_malloc; a new
 * size of 0 with a non-NULL old_object: GC_free, and NULL is returned. */
GC_API void *GC_CALL GC_realloc(void * /* old_object */, size_t /* new_size_in_bytes */)
    GC_ATTR_ALLOC_SIZE(2);
/* Release an object now; GC_free(0) does nothing. */
GC_API void GC_CALL GC_free(void *);

/* A full collection now. */
GC_API void GC_CALL GC_gcollect(void);
/* Collections completed so far. */
GC_API GC_word GC_CALL GC_get_gc_no(void);
/* Bytes of the GC heap. */
GC_API size_t GC_CALL GC_get_heap_size(void);

#define GC_INIT() \
    { GC_init(); }
#define GC_MALLOC(sz) GC_malloc(sz)
#define GC_MALLOC_ATOMIC(sz) GC_malloc_atomic(sz)
#define GC_MALLOC_UNCOLLECTABLE(sz) GC_malloc_uncollectable(sz)
#define GC_REALLOC(old, sz) GC_realloc(old, sz)
#define GC_FREE(p) GC_free(p)

#define GC_NEW(t) ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t) ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
#define GC_NEW_UNCOLLECTABLE(t) ((t *)GC_MALLOC_UNCOLLECTABLE(sizeof(t)))

#ifdef __cplusplus
}
#endif

#endif
