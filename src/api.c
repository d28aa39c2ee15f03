/* api.c - every public mh_* entry point (include/mheap.h): malloc, page
 * runs, memory return, statistics, options and the verifier. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "cache.h"
#include "central.h"
#include "gc.h"
#include "malloc.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"

/* ---- malloc ---- */

MH_API void *mh_malloc(size_t size) { return MHI_ENTRY(malloc)(size); }
MH_API void *mh_calloc(size_t n, size_t size) { return MHI_ENTRY(calloc)(n, size); }
MH_API void *mh_realloc(void *p, size_t size) { return MHI_ENTRY(realloc)(p, size); }
MH_API void *mh_reallocarray(void *p, size_t n, size_t size) {
    return MHI_ENTRY(reallocarray)(p, n, size);
}
MH_API void mh_free(void *p) { MHI_ENTRY(free)(p); }
MH_API void mh_free_sized(void *p, size_t size) { MHI_ENTRY(free_sized)(p, size, 0); }
MH_API void mh_free_aligned_sized(void *p, size_t align, size_t size) {
    MHI_ENTRY(free_sized)(p, size, align);
}
MH_API void *mh_aligned_alloc(size_t align, size_t size) {
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return MHI_ENTRY(malloc_aligned)(align, size);
}
MH_API int mh_posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    int saved = errno;
    void *p = MHI_ENTRY(malloc_aligned)(align, size);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}
MH_API size_t mh_usable_size(const void *p) { return MHI_ENTRY(usable_size)(p); }

/* ---- page runs ---- */

MH_API void *mh_pages_alloc(size_t npages) {
    (void)mhi_option(MHI_OPT_scavenge_delay_ms); /* options read, and applied */
    mhi_span *s = npages ? mhi_heap_alloc(npages, MHI_SPAN_MANUAL, MHI_KIND_NONE, true) : NULL;
    if (!s && npages && mhi_free_large_flush()) /* (the held-back large block first) */
        s = mhi_heap_alloc(npages, MHI_SPAN_MANUAL, MHI_KIND_NONE, true);
    if (!s) {
        if (mhi_option(MHI_OPT_abort_on_oom)) mhi_fatal("out of memory: %zu pages", npages);
        errno = ENOMEM;
        return NULL;
    }
    return (void *)s->base;
}

MH_API void mh_pages_free(void *p) { mhi_heap_free_manual(p); }

MH_API size_t mh_pages_size(const void *p) {
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    if (!s || mhi_span_state(s) != MHI_SPAN_MANUAL || s->base != (uintptr_t)p) return 0;
    return s->npages << MHI_PAGE_SHIFT;
}

/* ---- memory return ---- */

MH_API size_t mh_release_memory(void) {
    mhi_free_large_flush();
    size_t n = mhi_cache_trim_now();
    return n + mhi_heap_scavenge(0, SIZE_MAX);
}

MH_API size_t mh_trim(void) {
    mhi_cache_flush(); /* the calling thread's spans go back first */
    return mh_release_memory();
}

/* ---- statistics: every field from the one list in mheap.h ---- */

/* Each page heap statistic is the public field of the same name. */
#define MHI_X(name) static_assert(sizeof(((mh_stats_t *)0)->name) == sizeof(uint64_t), #name);
MHI_HEAP_STATS(MHI_X)
#undef MHI_X
#define MHI_X(version, name, doc) +1
static_assert(sizeof(mh_stats_t) == 8 + 8 * (0 MH_STATS_FIELDS(MHI_X)), "mh_stats_t layout");
#undef MHI_X

void mhi_stats_collect(mh_stats_t *st) {
    mhi_free_large_flush(); /* (counted as freed) */
    mhi_heap_stats h;
    mhi_heap_stats_get(&h);
#define MHI_X(name) st->name = h.name;
    MHI_HEAP_STATS(MHI_X)
#undef MHI_X
    mhi_central_totals_t ct;
    mhi_central_totals(&ct);
    mhi_cache_counts_t cc;
    mhi_cache_counts(&cc);
    st->version = MH_STATS_VERSION;
    st->size = sizeof *st;
    st->meta_sys = atomic_load(&mhi_arena_stat.meta) + atomic_load(&mhi_heap_.span_sys);
    st->reserved = atomic_load(&mhi_arena_stat.reserved);
    st->small_bytes = ct.bytes;
    uint64_t objects = h.heap_inuse - h.heap_manual;
    st->large_bytes = objects > ct.bytes ? objects - ct.bytes : 0;
    st->small_spans = ct.spans;
    st->thread_caches = cc.live;
    st->trimmed = atomic_load_explicit(&mhi_trim_stat.bytes, memory_order_relaxed);
    st->ntrim = atomic_load_explicit(&mhi_trim_stat.spans, memory_order_relaxed);
    st->small_partial = ct.partial;
    st->small_full = ct.full;
    st->small_span_allocs = ct.span_allocs;
    st->small_span_frees = ct.span_frees;
    st->cache_pool = cc.pool;
    st->stash_grown = cc.stash_grown;
    mhi_gc_stats_fill(st);
}

MH_API size_t mh_stats_get(mh_stats_t *out, size_t size) {
    mh_stats_t st;
    mhi_stats_collect(&st);
    if (size > sizeof st) size = sizeof st;
    memcpy(out, &st, size);
    return size;
}

/* The pause histogram's fields, printed as one line. */
#define MHI_HIST_FIRST offsetof(mh_stats_t, gc_pause_hist_0)
#define MHI_HIST_LAST offsetof(mh_stats_t, gc_pause_hist_23)
static_assert(MHI_HIST_LAST - MHI_HIST_FIRST == 8 * (MH_STATS_GC_PAUSE_BUCKETS - 1),
              "the pause histogram's fields follow one another");

/* "  gc_pause_hist      <64us:3 <128us:1  <meaning>", the buckets that
 * counted something (each printed on its own: the line can outgrow
 * mhi_printf's buffer). */
static void print_pause_hist(int fd, const mh_stats_t *st) {
    mhi_printf(fd, "  %-18s", "gc_pause_hist");
    bool any = false;
    for (int b = 0; b < MH_STATS_GC_PAUSE_BUCKETS; b++) {
        uint64_t v;
        memcpy(&v, (const char *)st + MHI_HIST_FIRST + 8 * (size_t)b, sizeof v);
        if (!v) continue;
        any = true;
        if (b == MH_STATS_GC_PAUSE_BUCKETS - 1)
            mhi_printf(fd, " >=%lluus:%llu", 1ULL << (b - 1), (unsigned long long)v);
        else
            mhi_printf(fd, " <%lluus:%llu", 1ULL << b, (unsigned long long)v);
    }
    mhi_printf(fd, "%s  collection pauses by length (fields gc_pause_hist_<b>)\n",
               any ? "" : " none");
}

static void print_stat(int fd, const mh_stats_t *st, size_t off, const char *name,
                       const char *doc) {
    if (off >= MHI_HIST_FIRST && off <= MHI_HIST_LAST) {
        if (off == MHI_HIST_FIRST) print_pause_hist(fd, st);
        return;
    }
    uint64_t v;
    memcpy(&v, (const char *)st + off, sizeof v);
    mhi_printf(fd, "  %-18s %20llu  %s\n", name, (unsigned long long)v, doc);
}

MH_API void mh_stats_print(int fd) {
    mh_stats_t st;
    mhi_stats_collect(&st);
    mhi_printf(fd, "mheap: statistics\n");
#define MHI_X(version, name, doc) print_stat(fd, &st, offsetof(mh_stats_t, name), #name, doc);
    MH_STATS_FIELDS(MHI_X)
#undef MHI_X
    mhi_printf(fd, "mheap: small objects by size class\n");
    mhi_central_print(fd);
}

/* ---- options ---- */

MH_API long mh_option_get(const char *name) {
    int i = name ? mhi_option_find(name) : -1;
    return i < 0 ? -1 : mhi_option((enum mhi_option)i);
}

MH_API int mh_option_set(const char *name, long value) {
    (void)mhi_option(MHI_OPT_stats); /* read the environment first */
    int i = name ? mhi_option_find(name) : -1;
    if (!mhi_option_apply(i, value)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* ---- debugging ---- */

MH_API size_t mh_heap_verify(void) {
    mhi_free_large_flush();
    return mhi_heap_verify() + mhi_central_verify() + mhi_cache_verify() + mhi_gc_verify();
}
