/* arena.h - arenas and the address map.
 *
 * The heap's address space is made of 64 MiB arenas, each aligned to its
 * size and reserved on demand, next to the previous one when the OS allows
 * (address hints keep the heap compact).  Each arena has off-heap metadata,
 * mhi_arena, found in O(1) through a two-level map indexed by the arena
 * number (address >> 26): L1 has 2^11 entries, each an L2 array of 2^10
 * arena pointers, covering the whole 47-bit user address space.
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
#include "span.h"

typedef struct mhi_arena mhi_arena;
struct mhi_arena {
    uintptr_t base;        /* aligned to MHI_ARENA_SIZE */
    mhi_arena *next, *prev; /* all arenas, ascending base; heap lock */
    /* Pages [0, ncommitted) belong to the heap (are in some span); pages
     * above are Reserved only.  Heap lock. */
    uint32_t ncommitted;
    uint32_t pad_;

    /* Per-page bitmaps, bit i = page i of the arena.  Heap lock for writes.
     *   free:    the page is in a FREE span.
     *   scav:    the page is free and known zero and not resident (fresh
     *            from the OS or released).  Subset of free.
     *   inuse:   the page is the first page of an INUSE span (the GC
     *            reclaimer finds in-use spans from this, not from a list).
     *   marks:   the span starting here has marked objects (GC).
     *   special: the span starting here has specials (GC, profiles). */
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

typedef struct {
    _Atomic uint64_t reserved;  /* bytes Reserved for arenas */
    _Atomic uint64_t committed; /* bytes of arenas made Ready (heap sys) */
    _Atomic uint64_t meta;      /* bytes of arena metadata and map */
    uint64_t narenas;
} mhi_arena_stats;

extern mhi_arena_stats mhi_arena_stat;
extern mhi_arena *mhi_arena_list; /* lowest arena; list ascends by base */
extern mhi_arena *mhi_arena_last; /* highest arena */

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

#endif
