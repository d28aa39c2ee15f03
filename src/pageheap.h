/* pageheap.h - the page heap (the seed's mheap).
 *
 * One process-wide heap of 8 KiB pages, guarded by one lock.  It hands out
 * spans (runs of pages) to the malloc and GC layers and, as raw page runs,
 * to callers of the public page-run API; it takes them back, coalescing free
 * neighbours; it grows from the OS in chunks of at least 1 MiB; and it gives
 * idle pages back to the OS (the scavenger).
 *
 * Free spans: those shorter than MHI_FREE_LISTS pages sit in exact-size
 * lists, newest first, with a 128-bit index of the non-empty lists, so the
 * smallest adequate list is found with one count-trailing-zeros; longer
 * spans sit in a treap ordered by (npages, base), so the best fit with ties
 * to the lowest address is found in O(log n).  This keeps the seed's
 * allocation order (its free[] lists and bestFit over freelarge) while
 * bounding the search the seed made linear.
 *
 * The heap lock guards: the free lists, the treap, the span fixalloc, every
 * arena's bitmaps and map entries and ncommitted, the arena growth frontier,
 * and the statistics below.  It is never held while calling into a higher
 * layer. */
#ifndef MHEAP_PAGEHEAP_H
#define MHEAP_PAGEHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "fixalloc.h"
#include "os.h"
#include "span.h"

/* Page heap statistics: one list, expanded into the struct, the snapshot
 * and the printer.  Bytes unless the name says count.  Heap lock. */
#define MHI_HEAP_STATS(X)                                                      \
    X(sys, "bytes of heap pages taken from the OS (Ready or Prepared)")      \
    X(inuse, "bytes in spans handed out (in use + manual)")                  \
    X(manual, "bytes in manual (page-run API) spans")                        \
    X(idle, "bytes in free spans")                                           \
    X(released, "bytes of free spans returned to the OS or never touched")   \
    X(nspan_free, "count of free spans")                                     \
    X(nspan_inuse, "count of in-use spans")                                  \
    X(nspan_manual, "count of manual spans")                                 \
    X(ngrow, "count of times the heap grew from the OS")                     \
    X(grow_bytes, "bytes the heap grew by, in all")                          \
    X(nscavenge, "count of scavenger passes that released memory")           \
    X(scavenged, "bytes released to the OS, in all")                         \
    X(nalloc, "count of span allocations")                                   \
    X(nfree, "count of span frees")

typedef struct {
#define MHI_X(name, doc) uint64_t name;
    MHI_HEAP_STATS(MHI_X)
#undef MHI_X
} mhi_heap_stats;

typedef struct {
    mhi_lock_t lock;
    bool inited;
    /* Free spans with npages < MHI_FREE_LISTS, one list per length;
     * nonempty has bit n set iff free[n] is non-empty. */
    mhi_span_list free[MHI_FREE_LISTS];
    uint64_t nonempty[MHI_FREE_LISTS / 64];
    mhi_span *large; /* treap root: free spans with npages >= MHI_FREE_LISTS */
    mhi_fixalloc spanalloc;
    _Atomic uint64_t span_sys; /* bytes of span structs from the OS */
    uint32_t sweepgen;         /* GC sweep generation (see span.h) */
    /* Scavenger: pages free for at least delay_ms go back to the OS; the
     * check runs on heap slow paths no more often than every interval. */
    int64_t scavenge_delay_ms;
    int64_t next_scavenge_ms;
    int64_t now_ms; /* the clock, read once per heap call */
    bool verbose;   /* print growth and scavenger events to stderr */
    bool scav_off;  /* the OS refused to release pages once: stop trying */
    mhi_heap_stats stats;
} mhi_heap;

extern mhi_heap mhi_heap_;

/* Default delay before free pages go back to the OS (see docs/design.md). */
#define MHI_SCAVENGE_DELAY_MS_DEFAULT 500

void mhi_heap_set_scavenge_delay(int64_t ms);

/* Start the background scavenger thread if it is not running (call with no
 * allocator lock held: creating a thread may allocate).  It sleeps while no
 * free page waits to be released, and otherwise releases pages as they
 * pass the delay, so memory goes back to the OS even when the program
 * makes no heap call. */
void mhi_heap_bg_start(int (*hook)(int64_t delay_ms));
extern _Atomic int mhi_heap_bg_started; /* 0: not yet (or not in this child of fork) */
/* Work of the layers above for the background thread (the hook given to
 * mhi_heap_bg_start): it calls the hook
 * (with the scavenger delay) when mhi_heap_bg_request() was called since
 * its last call, or when that call returned non-zero: 1, call again after
 * a quarter of the delay; 2, call again soon (work left). */
extern int (*mhi_heap_bg_hook)(int64_t delay_ms);
void mhi_heap_bg_request(void);

/* Allocate a span of npages pages, state MHI_SPAN_INUSE (with kind) or
 * MHI_SPAN_MANUAL.  If zero, the pages read as zero on return (only pages
 * that may hold old data are cleared).  NULL if the OS refuses memory or
 * npages is absurd. */
mhi_span *mhi_heap_alloc(size_t npages, int state, int kind, bool zero);

/* What an allocation found about its pages: whether any was not resident
 * (fresh from the OS, or released), and the range the scavenger had
 * released, [rel_lo, rel_hi) (0 when none).  The malloc layer uses it to
 * make pages resident in one call when the object will use them. */
typedef struct {
    bool nonresident;
    uintptr_t rel_lo, rel_hi;
} mhi_heap_residency;
/* As mhi_heap_alloc, and fill *res. */
mhi_span *mhi_heap_alloc_res(size_t npages, int state, int kind, bool zero,
                             mhi_heap_residency *res);

/* As mhi_heap_alloc, with the span's base aligned to `align` bytes (a power
 * of two; at least the page size is always given). */
mhi_span *mhi_heap_alloc_aligned(size_t npages, size_t align, int state, int kind, bool zero);

/* Return an INUSE or MANUAL span to the heap.  Aborts with
 * "mheap: double free: <base>" if the span is already free. */
void mhi_heap_free(mhi_span *s);
/* The same, for a span whose heap pages in `released` (bit i: page i of
 * the span) the malloc layer already released to the OS and left
 * untouched since: they join the free pages as scavenged (zero, not
 * resident). */
void mhi_heap_free_released(mhi_span *s, uint64_t released);

/* Free the manual span that starts at p (the page-run API), validating p
 * through the arena map under the heap lock. */
void mhi_heap_free_manual(void *p);

/* Classify a pointer that failed validation and abort: "double free" when
 * it lies in a free span, "invalid pointer" otherwise. */
MHI_NORETURN void mhi_heap_bad_free(uintptr_t p);

/* Resize an INUSE/MANUAL span in place: shrink gives the tail back; grow
 * takes free pages right after the span.  Return false if not possible. */
bool mhi_heap_resize(mhi_span *s, size_t npages);

/* Lookups (lock-free).
 * lookup: the span whose first or last page holds a (seed's mHeap_Lookup);
 *         a must be the start or end of some span.
 * span_of: the INUSE or MANUAL span containing a, or NULL (seed's spanOf).
 * lookup_maybe: the INUSE span containing a, or NULL (mHeap_LookupMaybe).
 * inheap: a points into an INUSE span. */
mhi_span *mhi_heap_lookup(uintptr_t a);
mhi_span *mhi_heap_span_of(uintptr_t a);
mhi_span *mhi_heap_lookup_maybe(uintptr_t a);
static inline bool mhi_inheap(uintptr_t a) {
    return mhi_heap_lookup_maybe(a) != NULL;
}
/* The seed's mlookup: base and size of the object containing v.
 * Returns false (and zeros) if v is not in an INUSE span. */
bool mhi_mlookup(uintptr_t v, uintptr_t *base, size_t *size, mhi_span **sp);

/* Release free pages unused for at least delay_ms (0: all free pages),
 * highest addresses first, until `goal` bytes are released.  Returns the
 * bytes released by this call. */
size_t mhi_heap_scavenge(int64_t delay_ms, size_t goal);

/* Consistent snapshot of the statistics. */
void mhi_heap_stats_get(mhi_heap_stats *out);

/* Check every invariant of the page heap; print each violation as
 * "mheap: verify: ..." and return how many there were. */
size_t mhi_heap_verify(void);

/* fork(): hold the lock across fork; reset it in the child. */
void mhi_heap_fork_prepare(void);
void mhi_heap_fork_parent(void);
void mhi_heap_fork_child(void);

#endif
