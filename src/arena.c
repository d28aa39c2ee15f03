/* arena.c - arena reservation and the address map. */
#include "arena.h"

#include "fixalloc.h"
#include "os.h"
#include "print.h"

#if MHI_MAP_L1_BITS == 0
mhi_arena *_Atomic mhi_arena_map[(size_t)1 << MHI_MAP_L2_BITS];
#else
mhi_arena **_Atomic mhi_arena_map[1u << MHI_MAP_L1_BITS];
#endif
mhi_arena_stats mhi_arena_stat;
mhi_arena *mhi_arena_list;
mhi_arena *mhi_arena_last;

/* The growth frontier: [grow_cur, grow_end) is reserved, not yet Ready. */
static uintptr_t grow_cur, grow_end;
/* Where to ask for the next arena: right above the last one.  The first
 * is placed at random, so that heap addresses differ from run to run (a
 * fork child keeps its parent's): a 64 MiB-aligned address in
 * [17 TiB, 81 TiB), 2^20 places: above AddressSanitizer's shadow (it ends
 * just above 16 TiB), below where the kernel puts a PIE program and its
 * brk (from 0x555555554000, 85 TiB) and the mmap area under the stack
 * near 128 TiB.  Where the place is taken, the kernel chooses. */
#define ARENA_HINT_LO (((uintptr_t)17) << 40)
#define ARENA_HINT_PLACES ((uintptr_t)1 << 20)
static uintptr_t arena_hint;

uintptr_t mhi_mark_key;
#if MHEAP_SECURE
uintptr_t mhi_link_key;
#endif

static uintptr_t arena_first_hint(void) {
    /* (Before the first arena, so before any object carries a mark.) */
    mhi_mark_key = (uintptr_t)mhi_os_random64() | 1;
#if MHEAP_SECURE
    mhi_link_key = (uintptr_t)mhi_os_random64();
#endif
    uint64_t r = mhi_os_random64();
    return ARENA_HINT_LO + (uintptr_t)(r % ARENA_HINT_PLACES) * MHI_ARENA_SIZE;
}

void mhi_arena_missing(uintptr_t a) {
    mhi_fatal("no arena for heap address: %p", (void *)a);
}

/* Create metadata for the arena at base and publish it in the map. */
static bool arena_register(uintptr_t base) {
    uintptr_t i = base >> MHI_ARENA_SHIFT;
#if MHI_MAP_L1_BITS == 0
    mhi_arena *_Atomic *slot = &mhi_arena_map[i];
#else
    uintptr_t i1 = i >> MHI_MAP_L2_BITS, i2 = i & ((1u << MHI_MAP_L2_BITS) - 1);
    mhi_arena **l2 = atomic_load_explicit(&mhi_arena_map[i1], memory_order_acquire);
    if (!l2) {
        l2 = mhi_persistent_alloc(sizeof(mhi_arena *) << MHI_MAP_L2_BITS, 64,
                                  &mhi_arena_stat.meta);
        if (!l2) return false;
        atomic_store_explicit(&mhi_arena_map[i1], l2, memory_order_release);
    }
    mhi_arena *_Atomic *slot = (mhi_arena *_Atomic *)&l2[i2];
#endif
    mhi_arena *ar = mhi_os_alloc(sizeof(mhi_arena), &mhi_arena_stat.meta);
    if (!ar) return false;
    ar->base = base;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        ar->fastlimit[c] = mhi_class_size[c] * mhi_class_nobjs[c];
        ar->fastdivmul[c] = mhi_class_divmul[c];
        ar->fastsize[c] = mhi_class_size[c];
        ar->fastsizelo[c] = (mhi_class_size[c] + 1) / 2;
        ar->fastsizehi[c] = mhi_class_size[c];
    }
    /* Insert sorted by base. */
    mhi_arena *prev = NULL, *next = mhi_arena_list;
    while (next && next->base < base) {
        prev = next;
        next = next->next;
    }
    ar->prev = prev;
    ar->next = next;
    if (prev) prev->next = ar;
    else mhi_arena_list = ar;
    if (next) next->prev = ar;
    else mhi_arena_last = ar;
    mhi_arena_stat.narenas++;
    mhi_gc_boehm_heap_bounds(mhi_arena_list->base, mhi_arena_last->base + MHI_ARENA_SIZE);
    atomic_store_explicit(slot, ar, memory_order_release);
    return true;
}

uintptr_t mhi_arena_grow_locked(size_t size, uintptr_t *tail_base, size_t *tail_len) {
    *tail_base = 0;
    *tail_len = 0;
    if (size > grow_end - grow_cur) {
        /* Reserve enough whole arenas for the request. */
        size_t need = size;
        size_t len = (need + MHI_ARENA_SIZE - 1) & ~(MHI_ARENA_SIZE - 1);
        if (len < need) return 0; /* overflow */
        if (!arena_hint) arena_hint = arena_first_hint();
        uintptr_t hint = grow_end ? grow_end : arena_hint;
        char *p = mhi_os_reserve((void *)hint, len, MHI_ARENA_SIZE, &mhi_arena_stat.reserved);
        if (!p) return 0;
        if ((uintptr_t)p + len > ((uintptr_t)1 << MHI_ADDR_BITS)) {
            mhi_os_release(p, len, &mhi_arena_stat.reserved);
            return 0;
        }
        for (uintptr_t a = (uintptr_t)p; a < (uintptr_t)p + len; a += MHI_ARENA_SIZE) {
            if (!arena_register(a)) {
                /* Arenas already registered stay; the rest of the range is
                 * given back.  Registered arenas are simply never used. */
                mhi_os_release((void *)a, (uintptr_t)p + len - a, &mhi_arena_stat.reserved);
                return 0;
            }
        }
        if ((uintptr_t)p == grow_end && grow_end != 0) {
            grow_end += len; /* contiguous: the frontier extends */
        } else {
            if (grow_end > grow_cur) {
                /* Hand the old frontier's tail to the heap as free pages. */
                if (mhi_os_commit((void *)grow_cur, grow_end - grow_cur,
                                  &mhi_arena_stat.committed)) {
                    *tail_base = grow_cur;
                    *tail_len = grow_end - grow_cur;
                    for (uintptr_t a = grow_cur; a < grow_end;) {
                        mhi_arena *ar = mhi_arena_must(a);
                        uintptr_t end = ar->base + MHI_ARENA_SIZE;
                        if (end > grow_end) end = grow_end;
                        __atomic_store_n(&ar->ncommitted, (uint32_t)((end - ar->base) >> MHI_PAGE_SHIFT),
                         __ATOMIC_RELAXED);
                        a = end;
                    }
                }
            }
            grow_cur = (uintptr_t)p;
            grow_end = (uintptr_t)p + len;
        }
        arena_hint = grow_end;
    }
    uintptr_t base = grow_cur;
    if (!mhi_os_commit((void *)base, size, &mhi_arena_stat.committed)) return 0;
    grow_cur += size;
    for (uintptr_t a = base; a < grow_cur;) {
        mhi_arena *ar = mhi_arena_must(a);
        uintptr_t end = ar->base + MHI_ARENA_SIZE;
        if (end > grow_cur) end = grow_cur;
        __atomic_store_n(&ar->ncommitted, (uint32_t)((end - ar->base) >> MHI_PAGE_SHIFT),
                         __ATOMIC_RELAXED);
        a = end;
    }
    return base;
}

size_t mhi_arena_bits(uintptr_t a, size_t npages, enum mhi_arena_bitmap which,
                      enum mhi_bits_op op, uintptr_t *lo, uintptr_t *hi) {
    size_t count = 0;
    while (npages > 0) {
        mhi_arena *ar = mhi_arena_must(a);
        uint64_t *bm = mhi_arena_bitmap_of(ar, which);
        size_t p = mhi_arena_page(a);
        size_t n = MHI_ARENA_PAGES - p;
        if (n > npages) n = npages;
        size_t end = p + n;
        while (p < end) {
            size_t w = p / 64, b = p % 64;
            size_t k = 64 - b;
            if (k > end - p) k = end - p;
            uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << b;
            if (op == MHI_BITS_SET) {
                bm[w] |= mask;
            } else {
                uint64_t got = bm[w] & mask;
                if (op == MHI_BITS_TAKE && got) {
                    count += (size_t)__builtin_popcountll(got);
                    uintptr_t wbase = ar->base + ((uintptr_t)w * 64 << MHI_PAGE_SHIFT);
                    uintptr_t first = wbase + ((uintptr_t)__builtin_ctzll(got) << MHI_PAGE_SHIFT);
                    uintptr_t last = wbase + ((uintptr_t)(63 - __builtin_clzll(got)) << MHI_PAGE_SHIFT);
                    if (!*lo || first < *lo) *lo = first;
                    if (last > *hi) *hi = last;
                }
                bm[w] &= ~mask;
            }
            p += k;
        }
        a += (uintptr_t)n << MHI_PAGE_SHIFT;
        npages -= n;
    }
    return count;
}

void mhi_span_set_fast(mhi_span *s, bool open) {
    size_t c = s->sizeclass;
    uint32_t limit = open ? (uint32_t)s->nelems * s->elemsize : 0;
    if (open && (c == 0 || c >= MHI_NUM_CLASSES || limit != mhi_class_size[c] * mhi_class_nobjs[c]))
        mhi_fatal("span %p: class %zu opened to the free fast path with %u objects of %u bytes",
                  (void *)s->base, c, s->nelems, s->elemsize);
    /* Opening: the span's fields are set (the caller's lock orders them
     * before the entries for a thread that got an object of the span from
     * it); closing: the entries go first, then the limit. */
    if (open) __atomic_store_n(&s->fast_limit, limit, __ATOMIC_RELAXED);
    uintptr_t a = s->base;
    for (size_t i = 0, n = s->npages; i < n; i++, a += MHI_PAGE_SIZE) {
        mhi_arena *ar = mhi_arena_must(a);
        size_t pg = mhi_arena_page(a);
        if (open) {
            /* (Trimming closes and opens a span again: its pages keep their
             * off, which frees of its objects may be reading.) */
            uint32_t off = (uint32_t)(i << MHI_PAGE_SHIFT);
            if (ar->fast[pg].off != off) ar->fast[pg].off = off;
            atomic_store_explicit(&ar->fast[pg].cls, (uint32_t)c, memory_order_release);
        } else {
            atomic_store_explicit(&ar->fast[pg].cls, 0, memory_order_relaxed);
        }
    }
    if (!open) __atomic_store_n(&s->fast_limit, 0, __ATOMIC_RELAXED);
}

void mhi_arena_map_range(uintptr_t a, size_t npages, mhi_span *s) {
    while (npages > 0) {
        mhi_arena *ar = mhi_arena_must(a);
        size_t p = mhi_arena_page(a);
        size_t n = MHI_ARENA_PAGES - p;
        if (n > npages) n = npages;
        for (size_t i = 0; i < n; i++)
            atomic_store_explicit(&ar->spans[p + i], s, memory_order_relaxed);
        a += (uintptr_t)n << MHI_PAGE_SHIFT;
        npages -= n;
    }
    atomic_thread_fence(memory_order_release);
}
