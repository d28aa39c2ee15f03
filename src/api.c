/* api.c - the public page-run, memory-return, statistics, option and
 * verification entry points (include/mheap.h). */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "central.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"

static void heap_options(void) {
    /* The scavenge delay is applied by mhi_option_apply when read. */
    (void)mhi_option(MHI_OPT_scavenge_delay_ms);
}

MH_API void *mh_pages_alloc(size_t npages) {
    heap_options();
    mhi_span *s = npages ? mhi_heap_alloc(npages, MHI_SPAN_MANUAL, MHI_KIND_NONE, true) : NULL;
    if (!s) {
        if (mhi_option(MHI_OPT_abort_on_oom)) mhi_fatal("out of memory: %zu pages", npages);
        errno = ENOMEM;
        return NULL;
    }
    return (void *)s->base;
}

MH_API void mh_pages_free(void *p) {
    mhi_heap_free_manual(p);
}

MH_API size_t mh_pages_size(const void *p) {
    mhi_span *s = mhi_heap_span_of((uintptr_t)p);
    if (!s || s->state != MHI_SPAN_MANUAL || s->base != (uintptr_t)p) return 0;
    return s->npages << MHI_PAGE_SHIFT;
}

MH_API size_t mh_release_memory(void) {
    size_t n = mhi_malloc_trim_now();
    return n + mhi_heap_scavenge(0, SIZE_MAX);
}

MH_API size_t mh_stats_get(mh_stats_t *out, size_t size) {
    mhi_heap_stats h;
    mhi_heap_stats_get(&h);
    uint64_t small_spans, small_bytes;
    mhi_central_totals(&small_spans, &small_bytes);
    mh_stats_t st = {
        .version = MH_STATS_VERSION,
        .size = sizeof st,
        .heap_sys = h.sys,
        .heap_inuse = h.inuse,
        .heap_manual = h.manual,
        .heap_idle = h.idle,
        .heap_released = h.released,
        .meta_sys = atomic_load(&mhi_arena_stat.meta) + atomic_load(&mhi_heap_.span_sys),
        .reserved = atomic_load(&mhi_arena_stat.reserved),
        .nspan_free = h.nspan_free,
        .nspan_inuse = h.nspan_inuse,
        .nspan_manual = h.nspan_manual,
        .ngrow = h.ngrow,
        .nscavenge = h.nscavenge,
        .scavenged = h.scavenged,
        .small_bytes = small_bytes,
        .large_bytes = h.inuse - h.manual > small_bytes ? h.inuse - h.manual - small_bytes : 0,
        .small_spans = small_spans,
        .thread_caches = mhi_cache_count(),
        .trimmed = atomic_load_explicit(&mhi_trim_stat.bytes, memory_order_relaxed),
        .ntrim = atomic_load_explicit(&mhi_trim_stat.spans, memory_order_relaxed),
    };
    if (size > sizeof st) size = sizeof st;
    memcpy(out, &st, size);
    return size;
}

MH_API void mh_stats_print(int fd) {
    mhi_heap_stats h;
    mhi_heap_stats_get(&h);
    mhi_printf(fd, "mheap: page heap statistics\n");
#define MHI_X(name, doc) mhi_printf(fd, "  %-14s %20llu  %s\n", #name, (unsigned long long)h.name, doc);
    MHI_HEAP_STATS(MHI_X)
#undef MHI_X
    mhi_printf(fd, "  %-14s %20llu  %s\n", "meta_sys",
               (unsigned long long)(atomic_load(&mhi_arena_stat.meta) +
                                    atomic_load(&mhi_heap_.span_sys)),
               "bytes of metadata from the OS");
    mhi_printf(fd, "  %-14s %20llu  %s\n", "thread_caches", (unsigned long long)mhi_cache_count(),
               "live per-thread caches");
    mhi_printf(fd, "  %-14s %20llu  %s\n", "trimmed",
               (unsigned long long)atomic_load(&mhi_trim_stat.bytes),
               "bytes released from inside small-object spans in use, in all");
    mhi_printf(fd, "  %-14s %20llu  %s\n", "ntrim", (unsigned long long)atomic_load(&mhi_trim_stat.spans),
               "times a span in use had pages released");
    mhi_printf(fd, "mheap: small objects by size class\n");
    mhi_central_print(fd);
}

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

MH_API size_t mh_heap_verify(void) {
    return mhi_heap_verify();
}
