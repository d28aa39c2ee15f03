/* gcscanmalloc.c - mheap's malloc heap as a root of the collector (the
 * option gc_scan_malloc; gc.h).
 *
 * The mark calls mhi_gc_scan_malloc with the world stopped and the GC lock
 * held.  Only threads registered with the collector are stopped: the
 * others go on calling malloc and free, and a stopped thread may be inside
 * either, holding the page heap's lock, a central list's or its cache's.
 * So nothing here takes a lock or waits; everything is read racily:
 *
 *   - the arena list (it only grows; an arena is never unmapped), each
 *     arena's ncommitted (it only grows) and its inuse bitmap, which names
 *     the first page of every in-use span;
 *   - the span at such a page, through the map: its state, kind, base,
 *     pages and, for small objects, object size, count and relmask.
 *
 * Memory below an arena's ncommitted is always readable: it is made Ready
 * (mprotect read/write) before ncommitted covers it, nothing makes it
 * inaccessible again, and pages given back to the OS (MADV_DONTNEED) read
 * as zero.  A span's fields only choose which committed memory to read:
 * every range is clipped to the committed pages of the arenas it lies in,
 * so a span that changes, dies or is reused while it is read (by a thread
 * that is not stopped) costs at most a useless scan or a missed one, and
 * a span no running thread touches (those of a stopped thread's blocks) is
 * read as it is.  The threads not stopped are those that never made an
 * mh_gc_ call, which hold no GC pointers, and those inside
 * mh_gc_do_blocking; a block one of them frees or fills during the scan
 * may be read before the change or after it (docs/design.md says what
 * that allows).
 *
 * Skipped: free spans, GC spans, page runs, the tail of a small-object
 * span past its last object, and objects known free: those trimming took
 * off the free list (relmask: their pages may be released), and those
 * carrying malloc's free mark (span.h) whose first word is a plausible
 * free-list link (NULL or a heap address).  The mark is checked only where
 * the object's first two words lie in the span's committed pages.  A live
 * block whose second word holds exactly its first word xor the process's
 * random mark key would be taken for free: a chance of one in 2^64 per
 * block. */
#include "arena.h"
#include "gc.h"
#include "span.h"

typedef void (*scan_fn)(uintptr_t lo, uintptr_t hi, void *ctx);

/* (everything below reads memory and metadata other threads own or
 * change: not for the sanitizers) */
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))

/* The end of the committed pages of the arena holding a (a itself when a
 * is in no arena or past them). */
NO_SANITIZE static uintptr_t committed_end(uintptr_t a) {
    mhi_arena *ar = mhi_arena_of(a);
    if (!ar) return a;
    uint32_t n = __atomic_load_n(&ar->ncommitted, __ATOMIC_RELAXED);
    if (n > MHI_ARENA_PAGES) n = MHI_ARENA_PAGES;
    uintptr_t end = ar->base + ((uintptr_t)n << MHI_PAGE_SHIFT);
    return end > a ? end : a;
}

/* Scan the committed parts of [lo, hi), arena by arena, stopping at the
 * first gap (a range may cross from one arena into the next). */
NO_SANITIZE static void scan_clipped(uintptr_t lo, uintptr_t hi, scan_fn scan, void *ctx) {
    while (lo < hi) {
        uintptr_t top = committed_end(lo);
        if (top <= lo) return;
        uintptr_t end = top < hi ? top : hi;
        scan(lo, end, ctx);
        lo = end;
    }
}

#define MHI_LINK_DECODE(w) ((w) ^ MHI_LINK_KEY) /* (mhi_link_get's) */
/* A free-list link: NULL or a heap address (tag bits included). */
NO_SANITIZE static bool plausible_link(uintptr_t w) { return w == 0 || mhi_arena_of(w) != NULL; }

/* The objects of a small-object span [base, end), which lies in the
 * committed pages of one arena, less those known free; runs of objects not
 * skipped are scanned as one range. */
NO_SANITIZE static void scan_small(mhi_span *s, uintptr_t base, uintptr_t end, scan_fn scan,
                                   void *ctx) {
    uint32_t size = __atomic_load_n(&s->elemsize, __ATOMIC_RELAXED);
    uint32_t n = __atomic_load_n(&s->nelems, __ATOMIC_RELAXED);
    if (size < 16 || n == 0 || (uint64_t)n * size > end - base) {
        scan(base, end, ctx); /* not set up yet, or changing: all of it */
        return;
    }
    uint64_t rel = n <= 64 ? atomic_load_explicit(&s->relmask, memory_order_relaxed) : 0;
    uintptr_t run = 0; /* start of the current run of objects to scan, or 0 */
    for (uint32_t i = 0; i < n; i++) {
        uintptr_t o = base + (uintptr_t)i * size;
        const volatile uintptr_t *w = (const volatile uintptr_t *)o;
        uintptr_t w0 = w[0];
        bool known_free = (i < 64 && (rel >> i & 1)) ||
                          (w[1] == mhi_mark_of(w0) && plausible_link(MHI_LINK_DECODE(w0)));
        if (known_free) {
            if (run) scan(run, o, ctx);
            run = 0;
        } else if (!run) {
            run = o;
        }
    }
    if (run) scan(run, base + (uintptr_t)n * size, ctx);
}

/* The span whose first page is at a, if it is a malloc span in use. */
NO_SANITIZE static void scan_span(mhi_span *s, uintptr_t a, scan_fn scan, void *ctx) {
    /* (loads of its own rather than span.h's helpers, which the sanitizer
     * builds do not inline, and would instrument) */
    if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != MHI_SPAN_INUSE) return;
    uint8_t kind = __atomic_load_n(&s->kind, __ATOMIC_RELAXED);
    if (kind != MHI_KIND_SMALL && kind != MHI_KIND_SMALL_REL && kind != MHI_KIND_LARGE) return;
    uintptr_t base = __atomic_load_n(&s->base, __ATOMIC_RELAXED);
    size_t npages = __atomic_load_n(&s->npages, __ATOMIC_RELAXED);
    if (base != a || npages == 0 || npages > ((uintptr_t)1 << MHI_ADDR_BITS) >> MHI_PAGE_SHIFT)
        return; /* not this page's span any more */
    uintptr_t end = base + (npages << MHI_PAGE_SHIFT);
    /* (a freed large block held back from reuse: malloc.c) */
    if (__atomic_load_n(&s->guard, __ATOMIC_RELAXED) == MHI_GUARD_DELAYED) return;
#if MHEAP_SECURE
    /* The secure build's malloc spans end in a guard page (never data),
     * and a freed large block in quarantine is PROT_NONE (set before the
     * protection: a block a thread that is not stopped frees while it is
     * being read can still fault; docs/design.md). */
    if (__atomic_load_n(&s->guard, __ATOMIC_RELAXED) == MHI_GUARD_FREED) return;
    if (npages < 2) return;
    end -= MHI_PAGE_SIZE;
#endif
    if (kind == MHI_KIND_LARGE || end > committed_end(base))
        scan_clipped(base, end, scan, ctx); /* (a small span across arenas: all of it) */
    else
        scan_small(s, base, end, scan, ctx);
}

NO_SANITIZE void mhi_gc_scan_malloc(scan_fn scan, void *ctx) {
    for (mhi_arena *ar = __atomic_load_n(&mhi_arena_list, __ATOMIC_ACQUIRE); ar;
         ar = __atomic_load_n(&ar->next, __ATOMIC_ACQUIRE)) {
        uintptr_t abase = __atomic_load_n(&ar->base, __ATOMIC_RELAXED);
        uint32_t ncommitted = __atomic_load_n(&ar->ncommitted, __ATOMIC_RELAXED);
        if (ncommitted > MHI_ARENA_PAGES) ncommitted = MHI_ARENA_PAGES;
        for (size_t w = 0; w < MHI_ARENA_WORDS && w * 64 < ncommitted; w++) {
            uint64_t bits = __atomic_load_n(&ar->inuse[w], __ATOMIC_RELAXED);
            for (; bits; bits &= bits - 1) {
                size_t p = w * 64 + (size_t)__builtin_ctzll(bits);
                if (p >= ncommitted) break;
                mhi_span *s = atomic_load_explicit(&ar->spans[p], memory_order_acquire);
                scan_span(s, abase + ((uintptr_t)p << MHI_PAGE_SHIFT), scan, ctx);
            }
        }
    }
}
