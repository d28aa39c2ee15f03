/* malloc.c - the malloc layer: large objects, calloc, realloc, aligned
 * allocation and sized free.  This file opens with the map of the whole
 * allocator.
 *
 * ---- Structures, bottom up (each layer calls only those below it) ----
 *
 * os.c         mmap / madvise / futex locks / clock: the only platform calls.
 * fixalloc.c   fixed-size and persistent metadata, never from the heap.
 * arena.c      64 MiB arenas and the address map: address -> arena ->
 *              per-page span pointer and per-page bitmaps (free, scav, rel,
 *              inuse; marks and special for the collector).
 * pageheap.c   the page heap (the seed's mheap): spans of 8 KiB pages,
 *              handed out and taken back, coalesced, grown from the OS.
 *              freespans.c keeps its free spans (exact-size lists and a
 *              best-fit treap), scavenge.c returns idle pages to the OS,
 *              verify.c checks it.
 * background.c one thread running tasks: the scavenger and the trim pass.
 * span.c       a span (span.h): its states and kinds, the free mark each
 *              free object carries in its second word, the xfree list other
 *              threads free onto.  trim.c releases the free pages inside
 *              spans still in use.
 * central.c    per size class, the spans no thread owns (the seed's mcentral).
 * cache.c      per thread, the spans it owns and its stashes (the seed's
 *              mcache); the fast paths are inline in cache.h.  cachepark.c
 *              parks a cache at its thread's exit and repairs caches after
 *              fork; cacheverify.c checks them.
 * malloc.c     this file; malloc.h holds malloc, free and sized free
 *              themselves.
 * api.c        the public mh_* functions; override*.c the libc and C++ names.
 * process.c    one-time set-up and fork() for every layer.
 *
 * A thread cache owns, per size class c: cur[c], the span malloc pops
 * from; avail[c], other spans with free objects; full[c], spans it found
 * full.  Its stash[c] holds objects the thread freed (into any span), for
 * its next allocations of c.  A span is owned by one cache or by none
 * (then central's).  A cache outlives its thread: at exit it is parked,
 * spans and stashes and all, and the next thread to start takes it; the
 * background thread flushes one parked too long to central (cachepark.c).
 *
 * ---- malloc(size) ----
 * 1. size <= 32 KiB: the class from the table (mhi_small_class).  Pop the
 *    class's stash, else cur[c]'s free list; clear the object's free mark.
 *    No lock, no atomic (mhi_cache_pop).  operator new does the same inline
 *    and leaves the other steps to alloc_new (override_new.c).
 * 2. Both empty (mhi_cache_alloc_slow, under the cache's lock): move the
 *    spans on the notify stack back to avail; give cur[c] its released
 *    objects back if trimming took some; collect what other threads freed
 *    onto cur[c]'s xfree; if still empty, arm its notice and file it on
 *    full[c]; then take the first span of avail[c], else a partly free
 *    unowned span from central[c], else a new span from the page heap.
 * 3. size > 32 KiB: a span of whole pages from the page heap
 *    (mhi_malloc_large), zeroed by calloc only where pages may hold old
 *    data, made resident in one call when it will be written.
 *
 * ---- free(p) ----
 * 1. The map gives p's span.  If it is a small-object span (kind
 *    KIND_SMALL) and p starts an object of it, with no free mark, and the
 *    class's stash has room: mark p free and push it on this thread's
 *    stash, whoever owns the span (mhi_cache_free).  No lock, no atomic.
 * 2. Anything else goes to mhi_cache_free_slow: a large object's span goes
 *    back to the page heap; a pointer that is not an object start aborts
 *    ("invalid pointer"), a marked one or a released one aborts ("double
 *    free"); a thread's first free before any allocation makes its cache
 *    (then stashes as in step 1); a thread without one (after its exit)
 *    frees straight into the span.
 * 3. A full stash first grows (within per-thread and global bounds, and
 *    only for a class the thread allocates from), else
 *    sends its older half back in runs of one span's objects: onto the
 *    span's free list if this thread owns it (moving the span from full to
 *    avail, or back to the page heap when entirely free), with one CAS
 *    onto its xfree list if another thread does (pushing the span on the
 *    owner's notify stack if the owner filed it as full), or under
 *    central[c]'s lock if nobody does.
 *
 * ---- free_sized(p, size), free_aligned_sized, sized operator delete ----
 * 1. free's step 1 (mhi_free_sized, malloc.h) with one more check: size is
 *    at most the object's size and at least half of it.  NULL is not tested
 *    first: its lookup fails.
 * 2. Anything else goes to mhi_free_sized_slow (below): NULL returns;
 *    p must start an object of a span of mheap's ("invalid pointer");
 *    the whole size rule, with the alignment, decides ("size mismatch");
 *    then free's slow path (step 2 above) does the rest.
 *
 * ---- Locks (os.h has their order; debug builds check it) ----
 * options_lock  the one-time read of MHEAP_OPTIONS (then the heap lock, to
 *               apply the scavenger delay).
 * mhi_caches.lock  the cache fixalloc, the lists of live, parked and empty
 *               caches, every parked cache while parked, the one-time
 *               set-up; the trim pass holds it while it walks the caches.
 * cache->lock   a cache's avail and full lists and the spans on them; held
 *               by its owner in every slow path, tried by the trim pass.
 *               The fast paths touch only stashes and cur spans, which are
 *               the owner's alone and take no lock.
 * central[c].lock  class c's unowned spans, and owner changes of its spans.
 * heap lock     the page heap: free structures, span fixalloc, arena
 *               bitmaps and map, growth, statistics.
 * speciallock   a span's specials (for the collector).
 * persist_lock  persistent metadata chunks; innermost.
 * Lock-free: the map and span pointers (release stores, acquire loads), a
 * span's kind (relaxed), xfree (CAS), a cache's notify stack (CAS push,
 * exchange take), the free mark (plain: the object is the freer's). */
#include "malloc.h"

#include <string.h>

#include "background.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"
#include "trim.h"

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
    if (!s && mhi_free_large_flush()) /* (the held-back blocks first) */
        s = mhi_heap_alloc_res(npages, MHI_SPAN_INUSE, MHI_KIND_LARGE, zero, &res);
    if (!s) return mhi_malloc_oom(size);
    mhi_bg_poll();
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
    if (MHI_UNLIKELY(!p) && mhi_free_large_flush()) p = mhi_cache_alloc_slow(mhi_size_class(size));
    return MHI_LIKELY(p != NULL) ? p : mhi_malloc_oom(size);
}

void *mhi_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return mhi_malloc_oom(SIZE_MAX);
    return mhi_malloc_large(total, true);
}

/* The span of a pointer the caller says mheap gave out; aborts if not. */
static mhi_span *owned_span(const void *p) {
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    if (!s) mhi_heap_bad_free((uintptr_t)p);
    uintptr_t off = (uintptr_t)p - s->base;
    uint8_t kind = mhi_span_kind(s);
    if (mhi_kind_small(kind)) {
        (void)mhi_span_check(s, p);
    } else if (kind != MHI_KIND_LARGE || off != 0) {
        mhi_fatal_at("invalid pointer", p);
    } else if (__atomic_load_n(&s->guard, __ATOMIC_RELAXED) == MHI_GUARD_DELAYED) {
        mhi_fatal_at("double free", p); /* (freed, held back) */
    }
    return s;
}

/* ---- freed large blocks held back ----
 * A freed block of LARGE_DELAY_MIN bytes or more takes a slot of a ring of
 * LARGE_DELAY_SLOTS (an atomic exchange: no lock, nothing to do at fork);
 * the block it displaces goes to the page heap.  So the next malloc of its
 * size gets other pages, and a write through a stale pointer does not land
 * at once in the next owner's block; the background thread gives it back
 * after a period without another (idle pages reach the scavenger).  Its
 * pages are not decommitted: that cost 250 us per 256 KiB malloc+free pair
 * (bench/large-loop.c, against 0.5 us), and four slots cost 1.5x at
 * 512 KiB and 1 MiB (the loop's five blocks no longer fit the caches); one
 * slot costs nothing measurable (docs/benchmarks.md).  The secure build
 * decommits and protects freed large blocks instead (secure.c). */
#define LARGE_DELAY_MIN ((size_t)256 << 10)
#define LARGE_DELAY_SLOTS 1
static mhi_span *_Atomic large_delay[LARGE_DELAY_SLOTS];
static _Atomic unsigned large_delay_pos;

/* The background thread gives a held block back once no other was held
 * for a whole period (so that idle pages still reach the scavenger). */
static _Atomic uint32_t large_delay_gen;
static uint32_t large_delay_seen; /* (the background thread's) */

static int large_delay_task(void) {
    uint32_t g = atomic_load_explicit(&large_delay_gen, memory_order_relaxed);
    if (g != large_delay_seen) {
        large_delay_seen = g;
        return MHI_BG_LATER;
    }
    mhi_free_large_flush();
    return MHI_BG_IDLE;
}

static void large_back(mhi_span *s) {
    __atomic_store_n(&s->guard, (uint8_t)MHI_GUARD_NONE, __ATOMIC_RELAXED);
    mhi_heap_free(s);
}

void mhi_free_large(mhi_span *s) {
    if ((s->npages << MHI_PAGE_SHIFT) < LARGE_DELAY_MIN) {
        mhi_heap_free(s);
        return;
    }
    if (__atomic_exchange_n(&s->guard, (uint8_t)MHI_GUARD_DELAYED, __ATOMIC_RELAXED) ==
        MHI_GUARD_DELAYED)
        mhi_fatal_at("double free", (void *)s->base);
    unsigned i = atomic_fetch_add_explicit(&large_delay_pos, 1, memory_order_relaxed) %
                 LARGE_DELAY_SLOTS;
    mhi_span *old = atomic_exchange_explicit(&large_delay[i], s, memory_order_acq_rel);
    if (old) large_back(old);
    atomic_fetch_add_explicit(&large_delay_gen, 1, memory_order_relaxed);
    mhi_bg_request(mhi_bg_add(large_delay_task, true));
}

bool mhi_free_large_flush(void) {
    bool any = false;
    for (unsigned i = 0; i < LARGE_DELAY_SLOTS; i++) {
        mhi_span *old = atomic_exchange_explicit(&large_delay[i], NULL, memory_order_acq_rel);
        if (old) large_back(old);
        any |= old != NULL;
    }
    return any;
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
    uint8_t kind = mhi_span_kind(s);
    if (mhi_kind_small(kind)) {
        old = s->elemsize;
        /* A free block (marked: freed, or never handed out) is named by
         * free's slow path, which aborts for every marked object; a
         * released one reads as zero, unmarked: its relmask bit says.
         * (Before the block may be kept below, and handed out again.) */
        if (MHI_UNLIKELY(mhi_free_marked(p))) mhi_cache_free_slow(p);
        if (kind == MHI_KIND_SMALL_REL) mhi_span_check_released(s, mhi_span_index(s, p), p);
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
    if (!s && align <= ((uintptr_t)1 << 40) && mhi_free_large_flush())
        s = mhi_heap_alloc_aligned(npages, align, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    if (!s) return mhi_malloc_oom(size);
    return (void *)s->base;
}

/* The inline check (malloc.h) took none of this: it accepts only sizes
 * this rule accepts, so it is the rule alone that reports. */
void mhi_free_sized_slow(void *p, size_t size, size_t align) {
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
    /* free's own checks (object start, double free, released objects) and
     * its slow path for the rest. */
    mhi_cache_free_slow(p);
}
