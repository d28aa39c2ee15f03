/* securefault.c - the secure build's SIGSEGV / SIGBUS handler: a fault
 * in a guard page, a quarantined large block, an instruction fetch from
 * the heap or the unmapped page below an arena's first span is named
 * (docs/design.md, "Secure mode"); any other goes to the handler it
 * replaced.  secure.c installs it at set-up. */
#define _GNU_SOURCE
#include "secure.h"

#include <signal.h>
#include <stdint.h>

#include "arena.h"
#include "os.h"
#include "pageheap.h"
#include "print.h"

/* ---- faults ---- */

/* Whether a live span starts at a (a page boundary). */
static bool span_starts_at(uintptr_t a) {
    mhi_span *s = mhi_heap_page_span(a);
    return s && s->base == a && mhi_span_state(s) == MHI_SPAN_INUSE;
}

void mhi_secure_fault_handler(int sig, void *info_, void *ctx) {
    const siginfo_t *info = info_;
    /* (a signal sent by kill, raise or sigqueue is not a fault: never
     * mheap's, whatever si_addr reads as) */
    const char *what = NULL;
    uintptr_t a = (uintptr_t)info->si_addr;
    if (info->si_code > 0 && mhi_arena_of(a)) {
        mhi_span *s = mhi_heap_page_span(a);
        uint8_t g = MHI_GUARD_NONE;
        if (s && mhi_span_state(s) == MHI_SPAN_INUSE && a >= s->base && a < mhi_span_end(s))
            g = __atomic_load_n(&s->guard, __ATOMIC_RELAXED);
        if (mhi_os_fault_is_fetch(ctx)) what = "instruction fetch from heap";
        else if (g == MHI_GUARD_FREED) what = "use after free";
        else if ((g == MHI_GUARD_SMALL || g == MHI_GUARD_LARGE) &&
                 a >= mhi_span_end(s) - MHI_PAGE_SIZE)
            /* (the page is also the one before the next span: a touch in
             * its upper half, below a live span, came from below that
             * span's first block) */
            what = a >= mhi_span_end(s) - MHI_PAGE_SIZE / 2 && span_starts_at(mhi_span_end(s))
                       ? "heap underflow (guard page)"
                       : "heap overflow (guard page)";
    } else if (sig == SIGSEGV && info->si_code == SEGV_MAPERR && a < UINTPTR_MAX - MHI_PAGE_SIZE) {
        /* Nothing mapped at a, less than a page below a live span that
         * starts an arena: the first block's underflow. */
        uintptr_t next = (a & ~(uintptr_t)(MHI_PAGE_SIZE - 1)) + MHI_PAGE_SIZE;
        if (mhi_arena_of(next) && span_starts_at(next)) what = "heap underflow";
    }
    if (what) mhi_fatal_at(what, (void *)a);
    mhi_os_fault_chain(sig, info_, ctx); /* not ours: the program's handler, or the kernel's action */
}
