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

/* Page heap statistics (heap lock): a list of names, expanded into the
 * struct and the snapshot.  Each is also a field of the public mh_stats_t
 * (include/mheap.h, which says what each counts), copied by name. */
#define MHI_HEAP_STATS(X)                                                      \
    X(heap_sys)                                                                \
    X(heap_inuse)                                                              \
    X(heap_manual)                                                             \
    X(heap_idle)                                                               \
    X(heap_released)                                                           \
    X(nspan_free)                                                              \
    X(nspan_inuse)                                                             \
    X(nspan_manual)                                                            \
    X(ngrow)                                                                   \
    X(grow_bytes)                                                              \
    X(nscavenge)                                                               \
    X(scavenged)                                                               \
    X(span_allocs)                                                             \
    X(span_frees)

typedef struct {
#define MHI_X(name) uint64_t name;
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

/* Set the scavenger delay (the option scavenge_delay_ms); negative is 0. */
void mhi_heap_set_scavenge_delay(int64_t ms);
/* The delay now (a racy read: for timing only). */
int64_t mhi_heap_scavenge_delay(void);

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

/* Lookups: the ways to go from an address to a span.
 *
 * mhi_heap_page_span(a): the map entry of the heap page holding a, or NULL
 *   when a is outside the committed heap (whose pages are never mapped).  The entry may be stale (a dead
 *   or FREE span whose range no longer covers a): for callers that hold
 *   the heap lock, or that know a lies in a live span (an object they
 *   checked when it was freed).
 * mhi_heap_span(a): the live span (INUSE or MANUAL) whose range holds a,
 *   or NULL.  Lock-free, validated against stale entries; never touches a.
 * mhi_mlookup(v, ...): base and size of the object holding v (the seed's
 *   mlookup), for INUSE spans.
 * The free fast path has its own check, mhi_small_object_fast (cache.h). */
static inline mhi_span *mhi_heap_page_span(uintptr_t a) {
    /* (pages past an arena's committed ones were never mapped: NULL) */
    mhi_arena *ar = mhi_arena_of(a);
    return ar ? mhi_arena_span(ar, a) : NULL;
}
mhi_span *mhi_heap_span(uintptr_t a);
/* Returns false (and zeros) if v is not in an INUSE span. */
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

/* ---- within the page heap (pageheap.c, freespans.c, scavenge.c,
 * verify.c) ---- */

#define MHI_H (&mhi_heap_)

/* Set up the heap on first use (heap lock held). */
void mhi_heap_init_locked(void);

/* The free spans: exact-size lists and the treap (freespans.c). */
void mhi_free_insert_locked(mhi_span *s);
void mhi_free_remove_locked(mhi_span *s);
/* The free span to allocate npages from: the smallest exact-size list that
 * fits (newest span first), else the best fit in the treap; NULL if none. */
mhi_span *mhi_free_find_locked(size_t npages);
/* Check the free structures against the spans the heap walk found free;
 * returns the number of spans they hold. */
size_t mhi_free_verify_locked(size_t *errors);

/* The scavenger's time check on heap slow paths (scavenge.c): a bounded
 * pass when the coarse clock says one is due. */
void mhi_scavenge_tick_locked(void);
/* The background thread's scavenger task index (-1 until registered). */
extern int mhi_scavenge_task;

#endif
