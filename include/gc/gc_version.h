/* gc/gc_version.h - the bdwgc release whose interface mheap's gc.h
 * follows: 8.2.2 (GC_get_version() returns the same number).  As in
 * bdwgc, <gc.h> includes it; alone it defines nothing. */
#if defined(GC_H)

#define GC_TMP_VERSION_MAJOR 8
#define GC_TMP_VERSION_MINOR 2
#define GC_TMP_VERSION_MICRO 2

#ifdef GC_VERSION_MAJOR
#if GC_TMP_VERSION_MAJOR != GC_VERSION_MAJOR || GC_TMP_VERSION_MINOR != GC_VERSION_MINOR || \
    GC_TMP_VERSION_MICRO != GC_VERSION_MICRO
#error "gc_version.h: GC_VERSION_MAJOR/MINOR/MICRO were defined to another version"
#endif
#else
#define GC_VERSION_MAJOR GC_TMP_VERSION_MAJOR
#define GC_VERSION_MINOR GC_TMP_VERSION_MINOR
#define GC_VERSION_MICRO GC_TMP_VERSION_MICRO
#endif

#endif
