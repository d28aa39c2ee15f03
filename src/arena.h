/* arena.h - arenas and the address map.
 *
 * The heap's address space is made of 64 MiB arenas, each aligned to its
 * size and reserved on demand, next to the previous one when the OS allows
 * (address hints keep the heap compact).  Each arena has off-heap metadata,
 * mhi_arena, found in O(1) through the address map indexed by the arena
 * number (address >> 26), covering the whole 47-bit user address space.
 * The map has two levels in general (MHI_MAP_L1_BITS L1 entries naming L2
 * arrays made on demand); by default L1 has a single entry, so the map is
 * one static array of 2^21 arena pointers (layout.h).
 *
 * Map entries are written once (NULL -> arena), under the heap lock, with
 * release stores, and read without locks: an arena is never unmapped, so a
 * pointer read from the map stays valid. */
#ifndef MHEAP_ARENA_H
#define MHEAP_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "sizeclass_table.h"
#include "span.h"

typedef struct mhi_arena mhi_arena;
struct mhi_arena {
    uintptr_t base;        /* aligned to MHI_ARENA_SIZE */
    mhi_arena *next, *prev; /* all arenas, ascending base; heap lock */
    /* Pages [0, ncommitted) belong to the heap (are in some span); pages
     * above are Reserved only.  Written under the heap lock with relaxed
     * atomic stores (it only grows); read under the lock, or lock-free
     * with a relaxed load (mhi_heap_page_span). */
    uint32_t ncommitted;
    uint32_t pad_;
    /* Per size class, for free's fast path (mhi_small_object_fast): the end
     * of a span's objects (nelems * elemsize) and divmul; and elemsize.
     * The same constants in every arena, filled when the arena is made:
     * the fast path has the arena in a register and indexes these without
     * loading a table's address. */
    uint32_t fastlimit[MHI_NUM_CLASSES];
    uint32_t fastdivmul[MHI_NUM_CLASSES];
    uint32_t fastsize[MHI_NUM_CLASSES];
    /* sized free's inline test (mhi_free_sized): it takes a size from
     * sizelo = ceil(elemsize / 2) to sizehi = elemsize (two compares with
     * memory operands; elemsize again, as a size_t) */
    size_t fastsizelo[MHI_NUM_CLASSES];
    size_t fastsizehi[MHI_NUM_CLASSES];

    /* Per-page bitmaps, bit i = page i of the arena.
     *   free:    the page is in a FREE span.
     *   scav:    the page is free and known zero and not resident (fresh
     *            from the OS or released).  Subset of free.
     *   inuse:   the page is the first page of an INUSE span (the GC
     *            reclaimer finds in-use spans from this, not from a list).
     * free, scav, rel and inuse are written under the heap lock only.
     *   marks:   the span starting here has marked objects (GC).
     *   special: the span starting here has specials (GC, profiles).
     * marks and special are written without the heap lock, by markers and
     * by whoever adds a special, so every write to them is an atomic
     * read-modify-write of its word (mhi_arena_bit_or / _and): a plain
     * store would lose a neighbour's bit.  The collector's marking sets marks
     * and clears them at the start of each mark; gcfinal.c sets special
     * when a GC span gets its first record and clears it with the last. */
    uint64_t free[MHI_ARENA_WORDS];
    uint64_t scav[MHI_ARENA_WORDS];
    /* rel:     scavenged by the scavenger (it was resident before), as
     *          opposed to fresh from the OS.  Subset of scav. */
    uint64_t rel[MHI_ARENA_WORDS];
    uint64_t inuse[MHI_ARENA_WORDS];
    uint64_t marks[MHI_ARENA_WORDS];
    uint64_t special[MHI_ARENA_WORDS];
    /* Per 64-page group (one bitmap word): when a page in it was last
     * freed, in mhi_os_millitime() milliseconds.  The scavenger releases a
     * group's free pages once this is older than the scavenge delay. */
    int64_t freed_ms[MHI_ARENA_WORDS];

    /* Page -> span.  INUSE/MANUAL spans: every page.  FREE spans: first and
     * last page.  Pages never used, and interior pages of free spans, may
     * hold NULL or a stale pointer: check the span's range. */
    mhi_span *_Atomic spans[MHI_ARENA_PAGES];
    /* Page -> free's fast path (mhi_small_object_fast).  For every page of
     * a small-object span open to it (one whose fast_limit is above 0:
     * mhi_span_set_fast writes both), cls is the span's size class and off
     * the page's offset in the span; for every other page cls is 0.  Free
     * reads this entry and the class constants above, not the span: the
     * span header's line is one first-level miss less per free of a cold
     * object.  Written by whoever opens or closes the span, under its lock
     * (off first, then cls with release; closing stores cls only), read
     * without a lock: cls with acquire, then off, which is a plain field:
     * it is stored only where it changes, which a page's entry does only
     * once the span it named has died, so no free of a live object reads
     * it while it is written. */
    struct {
        uint32_t off;
        _Atomic uint32_t cls;
    } fast[MHI_ARENA_PAGES];
};

#if MHI_MAP_L1_BITS == 0
extern mhi_arena *_Atomic mhi_arena_map[(size_t)1 << MHI_MAP_L2_BITS];
#else
extern mhi_arena **_Atomic mhi_arena_map[1u << MHI_MAP_L1_BITS];
#endif

/* The arena holding address a, or NULL if a is not in the heap's address
 * space.  Lock-free; never touches a. */
static inline mhi_arena *mhi_arena_of(uintptr_t a) {
    uintptr_t i = a >> MHI_ARENA_SHIFT;
    if (MHI_UNLIKELY(i >= ((uintptr_t)1 << MHI_ARENA_INDEX_BITS))) return NULL;
#if MHI_MAP_L1_BITS == 0
    return atomic_load_explicit(&mhi_arena_map[i], memory_order_acquire);
#else
    mhi_arena **l2 = atomic_load_explicit(&mhi_arena_map[i >> MHI_MAP_L2_BITS],
                                          memory_order_acquire);
    if (MHI_UNLIKELY(!l2)) return NULL;
    return atomic_load_explicit((mhi_arena *_Atomic *)&l2[i & ((1u << MHI_MAP_L2_BITS) - 1)],
                                memory_order_acquire);
#endif
}

static inline size_t mhi_arena_page(uintptr_t a) {
    return (a & (MHI_ARENA_SIZE - 1)) >> MHI_PAGE_SHIFT;
}

/* Raw map entry for the page holding a (may be stale for free spans). */
static inline mhi_span *mhi_arena_span(const mhi_arena *ar, uintptr_t a) {
    return atomic_load_explicit(&ar->spans[mhi_arena_page(a)], memory_order_acquire);
}

/* The bitmaps that may be written without the heap lock (marks,
 * special): set or clear page p's bit atomically. */
static inline void mhi_arena_bit_or(uint64_t *bm, size_t p) {
    __atomic_fetch_or(&bm[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
}
static inline void mhi_arena_bit_and_not(uint64_t *bm, size_t p) {
    __atomic_fetch_and(&bm[p / 64], ~(1ULL << (p % 64)), __ATOMIC_RELAXED);
}
static inline bool mhi_arena_bit(const uint64_t *bm, size_t p) {
    return (bm[p / 64] >> (p % 64)) & 1;
}

typedef struct {
    _Atomic uint64_t reserved;  /* bytes Reserved for arenas */
    _Atomic uint64_t committed; /* bytes of arenas made Ready (heap sys) */
    _Atomic uint64_t meta;      /* bytes of arena metadata and map */
    uint64_t narenas;
} mhi_arena_stats;

extern mhi_arena_stats mhi_arena_stat;
extern mhi_arena *mhi_arena_list; /* lowest arena; list ascends by base */
extern mhi_arena *mhi_arena_last; /* highest arena */
/* Told the range from the lowest arena's base to the highest arena's end
 * each time an arena is added (heap lock held): gc_boehm.c publishes it
 * as bdwgc's GC_least_plausible_heap_addr / GC_greatest_plausible_heap_addr. */
void mhi_gc_boehm_heap_bounds(uintptr_t lo, uintptr_t hi);

/* Heap lock held.  Make `size` more bytes Ready (size a multiple of the
 * page size) and return their base, reserving arenas as needed.  When the
 * current reservation cannot be extended contiguously, its unused tail is
 * committed and returned through *tail_base / *tail_len (0 when none) so
 * the heap can add it as free pages.  Returns 0 if the OS refuses. */
uintptr_t mhi_arena_grow_locked(size_t size, uintptr_t *tail_base, size_t *tail_len);

MHI_NORETURN void mhi_arena_missing(uintptr_t a);

/* The arena of a heap address that must have one. */
static inline mhi_arena *mhi_arena_must(uintptr_t a) {
    mhi_arena *ar = mhi_arena_of(a);
    if (MHI_UNLIKELY(!ar)) mhi_arena_missing(a);
    return ar;
}

/* ---- the heap lock's bitmaps and map entries over page ranges ----
 * (Heap lock held.  A range may cross arenas.) */

enum mhi_arena_bitmap { MHI_BM_FREE, MHI_BM_SCAV, MHI_BM_INUSE, MHI_BM_REL };
enum mhi_bits_op { MHI_BITS_SET, MHI_BITS_CLEAR, MHI_BITS_TAKE };

static inline uint64_t *mhi_arena_bitmap_of(mhi_arena *ar, enum mhi_arena_bitmap which) {
    switch (which) {
    case MHI_BM_FREE: return ar->free;
    case MHI_BM_SCAV: return ar->scav;
    case MHI_BM_REL: return ar->rel;
    default: return ar->inuse;
    }
}

/* Apply op to the bits of pages [a, a + npages pages): set, clear, or
 * clear and count the bits that were set (returned, with the lowest and
 * highest page whose bit was set in *lo / *hi; *lo starts at 0). */
size_t mhi_arena_bits(uintptr_t a, size_t npages, enum mhi_arena_bitmap which,
                      enum mhi_bits_op op, uintptr_t *lo, uintptr_t *hi);
static inline void mhi_arena_bits_set(uintptr_t a, size_t npages, enum mhi_arena_bitmap which) {
    mhi_arena_bits(a, npages, which, MHI_BITS_SET, NULL, NULL);
}
static inline void mhi_arena_bits_clear(uintptr_t a, size_t npages,
                                        enum mhi_arena_bitmap which) {
    mhi_arena_bits(a, npages, which, MHI_BITS_CLEAR, NULL, NULL);
}

/* Map the page at a to s (release: readers load entries with acquire). */
static inline void mhi_arena_map_set(uintptr_t a, mhi_span *s) {
    mhi_arena *ar = mhi_arena_must(a);
    atomic_store_explicit(&ar->spans[mhi_arena_page(a)], s, memory_order_release);
}
/* Map every page of [base, base + npages pages) to s. */
void mhi_arena_map_range(uintptr_t base, size_t npages, mhi_span *s);

#endif
