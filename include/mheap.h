/* mheap.h - public interface of mheap, a page heap after the Go runtime's,
 * with a malloc and a garbage collector (mheap_gc.h) on top.
 *
 * Layers, top to bottom (each calls only those below it):
 *   public API (this file) -> override (libc symbols) -> malloc | gc ->
 *   thread cache -> central lists -> size classes -> page heap ->
 *   arenas + address map -> fixalloc -> os
 *
 * Edge cases, stated once: sizes are in bytes unless a name says pages;
 * functions that can fail return NULL / 0 and set errno, and leave the heap
 * unchanged; misuse (freeing what was not allocated, double free) prints
 * "mheap: <what>: <address>" on stderr and aborts. */
#ifndef MHEAP_H
#define MHEAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MH_API __attribute__((visibility("default")))

#define MH_PAGE_SIZE 8192

/* ---- malloc ----------------------------------------------------------------
 * The same contract as the C library's functions of the same names (the
 * libc names themselves are defined by libmheap too: see README.md).
 * Every block is aligned to at least 16 bytes.  malloc(0) returns a unique
 * block; realloc(p, 0) frees p and returns NULL, as glibc does.  Sizes above
 * PTRDIFF_MAX, and n * size overflow, give NULL with errno ENOMEM. */
MH_API void *mh_malloc(size_t size);
MH_API void *mh_calloc(size_t n, size_t size);
MH_API void *mh_realloc(void *p, size_t size);
MH_API void *mh_reallocarray(void *p, size_t n, size_t size);
MH_API void mh_free(void *p);
/* Free with the size (and alignment) given at allocation; a size of
 * another size class aborts with "mheap: size mismatch: ...". */
MH_API void mh_free_sized(void *p, size_t size);
MH_API void mh_free_aligned_sized(void *p, size_t align, size_t size);
/* align: a power of two, else NULL with EINVAL. */
MH_API void *mh_aligned_alloc(size_t align, size_t size);
/* Returns 0, EINVAL (align not a power of two multiple of sizeof(void *))
 * or ENOMEM; *out is only written on success. */
MH_API int mh_posix_memalign(void **out, size_t align, size_t size);
/* Bytes usable at p (>= the size asked for); 0 for NULL. */
MH_API size_t mh_usable_size(const void *p);
/* Return the calling thread's cached spans to the heap, then every free
 * page to the OS, including the free pages inside spans that still hold
 * objects (spans of 128 B objects and up).  Returns the bytes released to
 * the OS. */
MH_API size_t mh_trim(void);

/* ---- page runs ("manual spans"): raw runs of 8 KiB pages ----------------
 * For fiber stacks, arenas and other callers that want page-granular
 * memory from the same heap.  The run is aligned to MH_PAGE_SIZE. */

/* A run of npages pages, or NULL with errno ENOMEM (npages 0 or too many,
 * or the OS refused).  The memory reads as zero. */
MH_API void *mh_pages_alloc(size_t npages);
/* Give a run back.  p must be a value returned by mh_pages_alloc: anything
 * else aborts with "mheap: invalid pointer: 0x..." and a second free with
 * "mheap: double free: 0x...". */
MH_API void mh_pages_free(void *p);
/* Size in bytes of the page run starting at p; 0 if p does not start one. */
MH_API size_t mh_pages_size(const void *p);

/* ---- memory return ------------------------------------------------------
 * Return every free page to the OS now, free spans and free pages inside
 * spans in use (what malloc_trim(0) and Go's debug.FreeOSMemory do).
 * Returns the number of bytes released. */
MH_API size_t mh_release_memory(void);

/* ---- statistics ----------------------------------------------------------
 * mh_stats_get fills at most `size` bytes of *out (pass sizeof *out) and
 * returns the number of bytes filled; fields are only ever added at the end,
 * and `version` says which are there.  One list names every field, with the
 * version that added it and what it counts: the struct, mh_stats_get and
 * mh_stats_print all come from it.  Bytes unless the text says otherwise.
 *
 * The collector's pause histogram, fields gc_pause_hist_0 to
 * gc_pause_hist_23 (the last fields of version 4): gc_pause_hist_<b>
 * counts the pauses shorter than 2^b microseconds but not shorter than
 * 2^(b-1) (bucket 0: under 1 microsecond), and the last one every pause of
 * 2^22 microseconds or longer.
 * mh_stats_print shows them as one line, "gc_pause_hist", listing only
 * the buckets that counted something, as "<bound>us:count" (the last as
 * ">=4194304us:count"), or "none" before the first collection. */
#define MH_STATS_GC_PAUSE_BUCKETS 24
#define MH_STATS_GC_PAUSE_(X, b)                                                             \
    X(4, gc_pause_hist_##b,                                                                  \
      "collection pauses under 2^" #b " microseconds, not in a lower bucket")
#define MH_STATS_GC_PAUSES_(X)                                                               \
    MH_STATS_GC_PAUSE_(X, 0) MH_STATS_GC_PAUSE_(X, 1) MH_STATS_GC_PAUSE_(X, 2)               \
    MH_STATS_GC_PAUSE_(X, 3) MH_STATS_GC_PAUSE_(X, 4) MH_STATS_GC_PAUSE_(X, 5)               \
    MH_STATS_GC_PAUSE_(X, 6) MH_STATS_GC_PAUSE_(X, 7) MH_STATS_GC_PAUSE_(X, 8)               \
    MH_STATS_GC_PAUSE_(X, 9) MH_STATS_GC_PAUSE_(X, 10) MH_STATS_GC_PAUSE_(X, 11)             \
    MH_STATS_GC_PAUSE_(X, 12) MH_STATS_GC_PAUSE_(X, 13) MH_STATS_GC_PAUSE_(X, 14)            \
    MH_STATS_GC_PAUSE_(X, 15) MH_STATS_GC_PAUSE_(X, 16) MH_STATS_GC_PAUSE_(X, 17)            \
    MH_STATS_GC_PAUSE_(X, 18) MH_STATS_GC_PAUSE_(X, 19) MH_STATS_GC_PAUSE_(X, 20)            \
    MH_STATS_GC_PAUSE_(X, 21) MH_STATS_GC_PAUSE_(X, 22)                                      \
    X(4, gc_pause_hist_23, "collection pauses of 2^22 microseconds or longer")
#define MH_STATS_VERSION 4
#define MH_STATS_FIELDS(X)                                                                   \
    X(1, heap_sys, "bytes of heap pages taken from the OS")                                  \
    X(1, heap_inuse, "bytes in spans in use (objects and page runs)")                        \
    X(1, heap_manual, "bytes in page runs (mh_pages_alloc)")                                 \
    X(1, heap_idle, "bytes in free spans")                                                   \
    X(1, heap_released, "bytes of free spans not resident (released or never used)")         \
    X(1, meta_sys, "bytes of metadata taken from the OS")                                    \
    X(1, reserved, "bytes of address space reserved for arenas")                             \
    X(1, nspan_free, "free spans")                                                           \
    X(1, nspan_inuse, "spans in use")                                                        \
    X(1, nspan_manual, "page runs")                                                          \
    X(1, ngrow, "times the heap grew from the OS")                                           \
    X(1, nscavenge, "scavenger passes that released memory")                                 \
    X(1, scavenged, "bytes the scavenger released to the OS, in all")                        \
    X(1, small_bytes, "bytes in spans of small objects (size classes)")                      \
    X(1, large_bytes, "bytes in large objects (whole pages)")                                \
    X(1, small_spans, "spans of small objects")                                              \
    X(1, thread_caches, "live per-thread caches")                                            \
    X(2, trimmed, "bytes released from inside small-object spans in use, in all")            \
    X(2, ntrim, "times a small-object span in use had pages released")                       \
    X(3, grow_bytes, "bytes the heap grew by, in all")                                       \
    X(3, span_allocs, "spans the page heap handed out, in all")                              \
    X(3, span_frees, "spans given back to the page heap, in all")                            \
    X(3, small_partial, "spans of small objects no thread owns, with free objects")          \
    X(3, small_full, "spans of small objects no thread owns, without free objects")          \
    X(3, small_span_allocs, "spans of small objects taken from the page heap, in all")       \
    X(3, small_span_frees, "spans of small objects given back to the page heap, in all")     \
    X(3, cache_pool, "thread caches kept for threads yet to start")                          \
    X(3, stash_grown, "bytes the threads' stashes grew by beyond their first bound")         \
    X(4, gc_cycles, "garbage collections completed")                                         \
    X(4, gc_pause_total_ns, "nanoseconds the world was stopped for collections, in all")     \
    X(4, gc_pause_max_ns, "nanoseconds of the longest collection pause")                     \
    X(4, gc_alloc_bytes, "bytes the GC heap handed to allocation, in all (the free room of " \
                         "each span a thread takes, and each large object)")                 \
    X(4, gc_swept_bytes, "bytes of GC objects freed by sweeping, in all")                    \
    X(4, gc_reclaimed_bytes, "bytes of GC objects freed with whole dead spans, in all")      \
    X(4, gc_freed_bytes, "bytes of GC objects freed by mh_gc_free, in all")                  \
    X(4, gc_heap_bytes, "bytes of spans the GC heap holds")                                  \
    X(4, gc_live_bytes, "bytes of GC objects the last collection found live")                \
    MH_STATS_GC_PAUSES_(X)

typedef struct mh_stats {
    uint32_t version;
    uint32_t size;
#define MH_STATS_FIELD_(version, name, doc) uint64_t name;
    MH_STATS_FIELDS(MH_STATS_FIELD_)
#undef MH_STATS_FIELD_
} mh_stats_t;

MH_API size_t mh_stats_get(mh_stats_t *out, size_t size);
/* Print the statistics, one per line with its meaning, then a table of
 * the size classes in use, to file descriptor fd. */
MH_API void mh_stats_print(int fd);

/* ---- options --------------------------------------------------------------
 * Read once from the environment variable MHEAP_OPTIONS, a comma-separated
 * list of key=value.  Keys: see README.md.  mh_option_get returns -1 for an
 * unknown name; mh_option_set returns 0, or -1 with errno EINVAL. */
MH_API long mh_option_get(const char *name);
MH_API int mh_option_set(const char *name, long value);

/* ---- debugging -------------------------------------------------------------
 * Check every invariant of the heap; print each violation to stderr as
 * "mheap: verify: ..." and return how many there were (0: consistent). */
MH_API size_t mh_heap_verify(void);

#ifdef __cplusplus
}
#endif

#endif
