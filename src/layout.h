/* layout.h - the sizes every layer agrees on. */
#ifndef MHEAP_LAYOUT_H
#define MHEAP_LAYOUT_H

#include <assert.h>
#include <stdint.h>

/* Heap pages: the unit of the page heap (the seed's _PageShift). */
#define MHI_PAGE_SHIFT 13
#define MHI_PAGE_SIZE ((uintptr_t)1 << MHI_PAGE_SHIFT) /* 8 KiB */

/* Arenas: aligned reservations that the address map resolves. */
#define MHI_ARENA_SHIFT 26
#define MHI_ARENA_SIZE ((uintptr_t)1 << MHI_ARENA_SHIFT) /* 64 MiB */
#define MHI_ARENA_PAGES (MHI_ARENA_SIZE / MHI_PAGE_SIZE) /* 8192 */
#define MHI_ARENA_WORDS (MHI_ARENA_PAGES / 64)            /* bitmap words */

/* The address map covers the 47-bit user address space in two levels: L1
 * entries name L2 tables of arena pointers.  As in Go on 64-bit Linux
 * (arenaL1Bits = 0), L1 has one entry here: the L2 table is one static
 * array of 2^21 pointers (16 MiB of zero-filled virtual memory, of which
 * only the pages covering arenas in use are ever touched: one 4 KiB page per
 * 32 GiB of address space), and a lookup is one shift, one compare and one
 * load.  Set
 * MHI_MAP_L1_BITS above 0 for a sparse map with L2 tables made on demand. */
#define MHI_ADDR_BITS 47
#define MHI_ARENA_INDEX_BITS (MHI_ADDR_BITS - MHI_ARENA_SHIFT) /* 21 */
#ifndef MHI_MAP_L1_BITS
#define MHI_MAP_L1_BITS 0
#endif
#define MHI_MAP_L2_BITS (MHI_ARENA_INDEX_BITS - MHI_MAP_L1_BITS) /* 21 */

/* Growth: at least this much per trip to the OS, in multiples of 64 KiB. */
#define MHI_GROW_MIN ((uintptr_t)1 << 20)
#define MHI_GROW_ROUND ((uintptr_t)64 << 10)

/* Free spans shorter than this many pages sit in exact-size lists (the
 * seed's free[_MaxMHeapList]); longer ones in the address-ordered tree. */
#define MHI_FREE_LISTS 128

static_assert(MHI_ARENA_PAGES % 64 == 0, "arena bitmaps are whole words");
static_assert(MHI_FREE_LISTS == 128, "free list index is two 64-bit words");

#endif
