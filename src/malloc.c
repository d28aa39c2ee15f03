/* malloc.c - the malloc layer: large objects, calloc, realloc, aligned
 * allocation, sized free, and the public mh_* entry points.
 *
 * Allocation paths:
 *   1. size <= MHI_SMALL_SIZE_MAX: the size class from the generated table,
 *      then the thread cache (cache.h): pop the current span's free list.
 *   2. Empty list: spans the thread owns with free objects (its own frees,
 *      or frees other threads left on them), else a partly free span from
 *      the central list, or a new span from the page heap (cache.c,
 *      central.c).
 *   3. Larger sizes: a span of whole pages straight from the page heap
 *      (pageheap.c), zeroed only where pages may hold old data.
 * Free paths: the arena map gives the span; an object of a span the thread
 * owns goes back on its list; an object of a span another thread owns goes
 * on that span's lock-free xfree list; an object of a span nobody owns goes
 * back under its central list's lock; a large object's span goes back to
 * the page heap. */
#include "malloc.h"

#include <string.h>

#include "central.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"

static _Atomic int malloc_inited;

void mhi_malloc_init(void) {
    int expect = 0;
    if (!atomic_compare_exchange_strong(&malloc_inited, &expect, 1)) return;
    (void)mhi_option(MHI_OPT_stats);
}

void *mhi_malloc_oom(size_t size) {
    if (mhi_option(MHI_OPT_abort_on_oom)) mhi_fatal("out of memory: %zu bytes", size);
    errno = ENOMEM;
    return NULL;
}

void *mhi_malloc_large(size_t size, bool zero) {
    if (MHI_UNLIKELY(atomic_load_explicit(&malloc_inited, memory_order_relaxed) == 0))
        mhi_malloc_init();
    if (size > PTRDIFF_MAX) return mhi_malloc_oom(size);
    if (size <= MHI_SMALL_SIZE_MAX) { /* calloc of a small size comes here */
        void *p = mhi_cache_alloc(mhi_size_class(size));
        if (!p) return mhi_malloc_oom(size);
        if (zero) memset(p, 0, size);
        return p;
    }
    size_t npages = (size + MHI_PAGE_SIZE - 1) >> MHI_PAGE_SHIFT;
    mhi_heap_residency res;
    mhi_span *s = mhi_heap_alloc_res(npages, MHI_SPAN_INUSE, MHI_KIND_LARGE, zero, &res);
    if (!s) return mhi_malloc_oom(size);
    /* Pages that are not resident are made resident in one call rather
     * than a fault per page when the object will use them: all of a block
     * from malloc up to 1 MiB (not calloc: a zeroed table may be used
     * sparsely), and up to 4 MiB the pages the scavenger released (the
     * program grows back into memory it used before). */
    size_t bytes = npages << MHI_PAGE_SHIFT;
    /* Only the OS pages the object reaches: the rest of its last heap
     * page stays out of memory until written. */
    size_t ps = mhi_os_page_size();
    uintptr_t end = s->base + ((size + ps - 1) & ~(ps - 1));
    if (res.nonresident && !zero && bytes <= ((size_t)1 << 20))
        mhi_os_populate((void *)s->base, end - s->base);
    else if (res.rel_lo && bytes <= ((size_t)4 << 20) && res.rel_lo < end)
        mhi_os_populate((void *)res.rel_lo, (res.rel_hi < end ? res.rel_hi : end) - res.rel_lo);
    return (void *)s->base;
}

void *mhi_malloc_small_slow(size_t size) {
    void *p = mhi_cache_alloc_slow(mhi_size_class(size));
    return MHI_LIKELY(p != NULL) ? p : mhi_malloc_oom(size);
}

void *mhi_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return mhi_malloc_oom(SIZE_MAX);
    return mhi_malloc_large(total, true);
}

/* The span of a pointer the caller says mheap gave out; aborts if not. */
static mhi_span *owned_span(const void *p) {
    mhi_span *s = mhi_heap_lookup_maybe((uintptr_t)p);
    if (!s) mhi_heap_bad_free((uintptr_t)p);
    uintptr_t off = (uintptr_t)p - s->base;
    uint8_t kind = mhi_span_kind(s);
    if (mhi_kind_small(kind)) {
        (void)mhi_span_check(s, p);
    } else if (kind != MHI_KIND_LARGE || off != 0) {
        mhi_malloc_fatal("invalid pointer", p);
    }
    return s;
}

size_t mhi_usable_size_slow(const void *p) {
    if (!p) return 0;
    mhi_span *s = owned_span(p);
    return mhi_kind_small(mhi_span_kind(s)) ? s->elemsize : s->npages << MHI_PAGE_SHIFT;
}

void *mhi_realloc(void *p, size_t size) {
    if (!p) return mhi_malloc(size);
    if (size == 0) { /* glibc: free and return NULL */
        mhi_free(p);
        return NULL;
    }
    if (size > PTRDIFF_MAX) return mhi_malloc_oom(size);
    mhi_span *s = mhi_small_span_fast(p);
    if (!s) s = owned_span(p);
    size_t old;
    if (mhi_kind_small(mhi_span_kind(s))) {
        old = s->elemsize;
        /* Fits, and would not waste most of the block: stay.  (realloc
         * grows with slack below, so a later call may ask for less than
         * the block holds.) */
        if (size <= old && size >= old / 2) return p;
    } else {
        old = s->npages << MHI_PAGE_SHIFT;
        if (size > MHI_SMALL_SIZE_MAX) {
            size_t npages = (size + MHI_PAGE_SIZE - 1) >> MHI_PAGE_SHIFT;
            /* Shrink in place unless it would waste most of the span;
             * grow in place when the next pages are free. */
            if (npages <= s->npages && npages * 2 >= s->npages) return p;
            if (mhi_heap_resize(s, npages)) return p;
        }
    }
    /* Moving to grow: ask for a quarter more than the old block (as
     * tcmalloc does), so that a buffer grown in small steps moves
     * O(log n) times, not once per size class or page. */
    size_t want = size;
    if (size > old && size - old < old / 4) want = old + old / 4;
    void *q = mhi_malloc(want);
    if (!q && want != size) q = mhi_malloc(size);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    mhi_free(p);
    return q;
}

void *mhi_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return mhi_malloc_oom(SIZE_MAX);
    return mhi_realloc(p, total);
}

/* The class an aligned request of this size and alignment uses, or 0 for
 * the page heap.  Objects of a class whose size is a multiple of align are
 * aligned, since spans start on page boundaries. */
static size_t aligned_class(size_t align, size_t size) {
    if (align > MHI_PAGE_SIZE || size > MHI_SMALL_SIZE_MAX) return 0;
    size_t want = (size + align - 1) & ~(align - 1);
    if (want == 0) want = align;
    if (want > MHI_SMALL_SIZE_MAX) return 0;
    for (size_t c = mhi_size_class(want); c < MHI_NUM_CLASSES; c++)
        if (mhi_class_size[c] % align == 0) return c;
    return 0;
}

void *mhi_malloc_aligned(size_t align, size_t size) {
    if (align <= 16) return mhi_malloc(size);
    if (size > PTRDIFF_MAX) return mhi_malloc_oom(size);
    size_t c = aligned_class(align, size);
    if (c) {
        void *p = mhi_cache_alloc(c);
        return p ? p : mhi_malloc_oom(size);
    }
    if (MHI_UNLIKELY(atomic_load_explicit(&malloc_inited, memory_order_relaxed) == 0))
        mhi_malloc_init();
    if (size == 0) size = 1;
    size_t npages = (size + MHI_PAGE_SIZE - 1) >> MHI_PAGE_SHIFT;
    mhi_span *s = align > ((uintptr_t)1 << 40) ? NULL
                  : mhi_heap_alloc_aligned(npages, align, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    if (!s) return mhi_malloc_oom(size);
    return (void *)s->base;
}

void mhi_free_sized(void *p, size_t size, size_t align) {
    if (!p) return;
    mhi_span *s = owned_span(p);
    bool ok;
    if (mhi_kind_small(mhi_span_kind(s))) {
        size_t c = align > 16 ? aligned_class(align, size)
                   : size <= MHI_SMALL_SIZE_MAX ? mhi_size_class(size) : 0;
        /* The class of the size, or (a block realloc grew with slack or
         * kept when shrinking) a size the block holds without wasting most
         * of it. */
        ok = c == s->sizeclass || (size <= s->elemsize && size >= s->elemsize / 2);
    } else {
        /* Large objects may have shrunk in place, or been grown with slack
         * (realloc): any size that the span holds and that is not a small
         * size class is right, and so is a small size that fills at least
         * half of it. */
        size_t bytes = s->npages << MHI_PAGE_SHIFT;
        ok = size <= bytes && (size > MHI_SMALL_SIZE_MAX || size >= bytes / 2 ||
                               (align > 16 && aligned_class(align, size) == 0));
    }
    if (!ok) mhi_fatal("size mismatch: %p (size %zu)", p, size);
    mhi_free(p);
}

/* ---- public API ---- */

MH_API void *mh_malloc(size_t size) { return mhi_malloc(size); }
MH_API void *mh_calloc(size_t n, size_t size) { return mhi_calloc(n, size); }
MH_API void *mh_realloc(void *p, size_t size) { return mhi_realloc(p, size); }
MH_API void *mh_reallocarray(void *p, size_t n, size_t size) {
    return mhi_reallocarray(p, n, size);
}
MH_API void mh_free(void *p) { mhi_free(p); }
MH_API void mh_free_sized(void *p, size_t size) { mhi_free_sized(p, size, 0); }
MH_API void mh_free_aligned_sized(void *p, size_t align, size_t size) {
    mhi_free_sized(p, size, align);
}
MH_API void *mh_aligned_alloc(size_t align, size_t size) {
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return mhi_malloc_aligned(align, size);
}
MH_API int mh_posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    int saved = errno;
    void *p = mhi_malloc_aligned(align, size);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}
MH_API size_t mh_usable_size(const void *p) { return mhi_usable_size(p); }

MH_API size_t mh_trim(void) {
    mhi_cache_flush(); /* the calling thread's spans go back first */
    size_t n = mhi_malloc_trim_now();
    return n + mhi_heap_scavenge(0, SIZE_MAX);
}

/* Read MHEAP_OPTIONS when the library is loaded, so that stats=1 reports
 * even for a program that never allocates. */
__attribute__((constructor)) static void malloc_at_load(void) { (void)mhi_option(MHI_OPT_stats); }

__attribute__((destructor)) static void malloc_at_exit(void) {
    if (atomic_load(&mhi_options_read) && mhi_options[MHI_OPT_stats]) mh_stats_print(mhi_stats_fd);
}
