/* scavenge.c - the scavenger: free pages that stayed unused for the delay
 * go back to the OS (MADV_DONTNEED), from heap slow paths, from the
 * background thread's task, and on demand (pageheap.h). */
#include "pageheap.h"

#include "background.h"
#include "print.h"

#define H MHI_H

int mhi_scavenge_task = -1;

void mhi_heap_set_scavenge_delay(int64_t ms) {
    mhi_lock(&H->lock);
    /* (an atomic store: mhi_heap_scavenge_delay reads it without the lock) */
    __atomic_store_n(&H->scavenge_delay_ms, ms < 0 ? 0 : ms, __ATOMIC_RELAXED);
    H->next_scavenge_ms = 0;
    mhi_unlock(&H->lock);
    mhi_bg_set_period((ms < 0 ? 0 : ms) / 4);
}

int64_t mhi_heap_scavenge_delay(void) {
    return __atomic_load_n(&H->scavenge_delay_ms, __ATOMIC_RELAXED);
}

/* madvise [lo, hi), whose scav bits are already set.  If the OS refuses
 * (locked pages: mlockall), the pages keep their data: clear the bits
 * again so that they are not taken for zero, and stop scavenging.  Returns
 * the bytes that were not released. */
static size_t release_run(uintptr_t lo, uintptr_t hi) {
    if (MHI_LIKELY(mhi_os_decommit((void *)lo, hi - lo))) return 0;
    uintptr_t a = 0, b = 0;
    mhi_arena_bits(lo, (hi - lo) >> MHI_PAGE_SHIFT, MHI_BM_SCAV, MHI_BITS_TAKE, &a, &b);
    mhi_arena_bits_clear(lo, (hi - lo) >> MHI_PAGE_SHIFT, MHI_BM_REL);
    if (!H->scav_off && H->verbose)
        mhi_printf(2, "mheap: the OS refused to release pages (%p); scavenger off\n", (void *)lo);
    H->scav_off = true;
    return hi - lo;
}

/* Release pages as described in pageheap.h, from the highest address
 * down; stop after max_runs separate
 * madvise calls (*more is set when work was left). */
static size_t scavenge_locked(int64_t now, int64_t delay_ms, size_t goal, size_t max_runs,
                              bool *more) {
    mhi_lock_assert_held(&H->lock);
    size_t runs = 0;
    *more = false;
    /* The seed skips scavenging when OS pages are larger than heap pages
     * (golang.org/issue/9993): releasing one would take neighbours too. */
    if (mhi_os_page_size() > MHI_PAGE_SIZE || H->scav_off) return 0;
    size_t released = 0;
    uintptr_t run_lo = 0, run_hi = 0; /* pending run to release */
    for (mhi_arena *ar = mhi_arena_last; ar && released < goal; ar = ar->prev) {
        size_t nw = (ar->ncommitted + 63) / 64;
        for (size_t w = nw; w-- > 0 && released < goal;) {
            if (runs >= max_runs) {
                *more = true;
                goto done;
            }
            if (delay_ms > 0 && now - ar->freed_ms[w] < delay_ms) continue;
            uint64_t bits = ar->free[w] & ~ar->scav[w];
            if (!bits) continue;
            uintptr_t wbase = ar->base + ((uintptr_t)w * 64 << MHI_PAGE_SHIFT);
            ar->scav[w] |= bits;
            ar->rel[w] |= bits;
            size_t n = (size_t)__builtin_popcountll(bits);
            released += n << MHI_PAGE_SHIFT;
            /* Release runs of set bits, highest first, merging runs that
             * touch across words into one madvise. */
            while (bits) {
                int top = 63 - __builtin_clzll(bits);
                uint64_t below = ~bits & ((top == 63 ? ~0ULL : (2ULL << top) - 1));
                int bot = below ? 64 - __builtin_clzll(below) : 0;
                uintptr_t lo = wbase + ((uintptr_t)bot << MHI_PAGE_SHIFT);
                uintptr_t hi = wbase + ((uintptr_t)(top + 1) << MHI_PAGE_SHIFT);
                if (run_lo && hi == run_lo) {
                    run_lo = lo;
                } else {
                    if (run_lo) released -= release_run(run_lo, run_hi);
                    run_lo = lo;
                    run_hi = hi;
                    runs++;
                }
                bits &= top - bot + 1 == 64 ? 0 : ~((((1ULL << (top - bot + 1)) - 1)) << bot);
            }
        }
    }
done:
    if (run_lo) released -= release_run(run_lo, run_hi);
    if (released) {
        H->stats.heap_released += released;
        H->stats.scavenged += released;
        H->stats.nscavenge++;
        if (H->verbose)
            mhi_printf(2, "mheap: released %zu KiB to the OS (idle %zu KiB, released %zu KiB)\n",
                       released >> 10, (size_t)(H->stats.heap_idle >> 10),
                       (size_t)(H->stats.heap_released >> 10));
    }
    return released;
}

/* The time check on heap slow paths: a pass at most every delay/2, each
 * pass bounded (MHI_SCAVENGE_RUNS_PER_TICK madvise calls) so that no
 * allocation stalls on a fragmented heap; leftover work continues 1 ms
 * later. */
#define MHI_SCAVENGE_RUNS_PER_TICK 64
/* ... and to about this many bytes, so that the heap lock is not held
 * across one huge madvise (releasing 32 MiB takes a few milliseconds). */
#define MHI_SCAVENGE_BYTES_PER_TICK ((size_t)32 << 20)

/* One bounded pass over the pages that have aged; true if work was left. */
static bool scavenge_step_locked(int64_t now, int64_t delay) {
    mhi_lock_assert_held(&H->lock);
    if (H->stats.heap_idle <= H->stats.heap_released) return false;
    bool more;
    size_t n = scavenge_locked(now, delay > 0 ? delay : 1, MHI_SCAVENGE_BYTES_PER_TICK,
                               MHI_SCAVENGE_RUNS_PER_TICK, &more);
    return more || n >= MHI_SCAVENGE_BYTES_PER_TICK;
}

void mhi_scavenge_tick_locked(void) {
    mhi_lock_assert_held(&H->lock);
    int64_t now = H->now_ms;
    if (MHI_LIKELY(now < H->next_scavenge_ms)) return;
    int64_t delay = H->scavenge_delay_ms;
    H->next_scavenge_ms = now + (delay / 2 > 10 ? delay / 2 : 10);
    if (scavenge_step_locked(now, delay)) H->next_scavenge_ms = now + 1;
}

/* The background thread's task: one bounded pass; later while free pages
 * wait to age, soon while a pass left work, idle when nothing is left to
 * release (a heap free that adds free pages asks for it again). */
static int scavenge_task(void) {
    mhi_lock(&H->lock);
    mhi_heap_init_locked();
    int64_t now = H->now_ms = mhi_os_millitime();
    bool more = scavenge_step_locked(now, H->scavenge_delay_ms);
    bool pending = H->stats.heap_idle > H->stats.heap_released && !H->scav_off;
    mhi_unlock(&H->lock);
    return more ? MHI_BG_SOON : pending ? MHI_BG_LATER : MHI_BG_IDLE;
}

void mhi_scavenge_register_locked(void) {
    mhi_lock_assert_held(&H->lock);
    mhi_scavenge_task = mhi_bg_add(scavenge_task, true);
}

size_t mhi_heap_scavenge(int64_t delay_ms, size_t goal) {
    bool more;
    mhi_lock(&H->lock);
    mhi_heap_init_locked();
    size_t n = scavenge_locked(mhi_os_millitime(), delay_ms, goal, SIZE_MAX, &more);
    mhi_unlock(&H->lock);
    return n;
}
