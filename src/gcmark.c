/* gcmark.c - marking: the mark stack, conservative scanning, and the
 * roots (gc.h).  Runs while the world is stopped, on the collecting thread,
 * with the GC lock held. */
#include <setjmp.h>

#include "gc.h"

#include "options.h"
#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

/* ---- the mark stack: ranges left to scan, in memory from the OS ---- */

typedef struct {
    uintptr_t lo, hi;
} range;

static range *stack;
static size_t stack_len, stack_cap;
static bool overflowed; /* a push found no room: rescan marked objects */
static _Atomic uint64_t stack_sys;

static void push(uintptr_t lo, uintptr_t hi) {
    if (MHI_UNLIKELY(stack_len == stack_cap)) {
        size_t cap = stack_cap ? stack_cap * 2 : 4096;
        range *n = mhi_os_alloc(cap * sizeof *n, &stack_sys);
        if (!n) {
            overflowed = true; /* dropped: found again by the rescan */
            return;
        }
        if (stack) {
            memcpy(n, stack, stack_len * sizeof *n);
            mhi_os_release(stack, stack_cap * sizeof *n, &stack_sys);
        }
        stack = n;
        stack_cap = cap;
    }
    stack[stack_len++] = (range){lo, hi};
}

/* ---- marking one word ---- */

static uintptr_t heap_lo, heap_hi; /* the arenas' range, for a quick test */
static uint64_t marked_bytes;

/* If w points into an allocated, unmarked GC object, mark it and queue it
 * for scanning (unless it is pointer-free).  Returns true if w pointed at
 * an object's first byte (the caller may also try w - 1). */
static inline bool mark_word(uintptr_t w) {
    if (w - heap_lo >= heap_hi - heap_lo) return false;
    mhi_arena *ar = mhi_arena_of(w);
    if (!ar) return false;
    mhi_span *s = atomic_load_explicit(&ar->spans[mhi_arena_page(w)], memory_order_relaxed);
    if (!s || mhi_span_kind(s) != MHI_KIND_GC || w < s->base || w >= mhi_span_end(s)) return false;
    if (mhi_span_state(s) != MHI_SPAN_INUSE) return false;
    uint32_t i = mhi_span_index(s, (const void *)w);
    if (i >= s->nelems || !(s->gc_alloc[i >> 6] >> (i & 63) & 1)) return false;
    size_t size = mhi_gc_elem_size(s);
    uintptr_t obj = s->base + (uintptr_t)i * size;
    uint64_t bit = 1ULL << (i & 63);
    if (s->gc_mark[i >> 6] & bit) return w == obj; /* (its span's arena bit is set) */
    /* (one marker: plain stores; the arena bit says the span has marks) */
    s->gc_mark[i >> 6] |= bit;
    mhi_arena *sa = mhi_arena_must(s->base);
    size_t pg = mhi_arena_page(s->base);
    if (!mhi_arena_bit(sa->marks, pg)) mhi_arena_bit_or(sa->marks, pg);
    marked_bytes += size;
    if (s->gc_kind != MHI_GC_NOSCAN) {
        __builtin_prefetch((const void *)obj);
        push(obj, obj + size);
    }
    return w == obj;
}

/* Scan [lo, hi) word by word.  edge: the range is a stack or registers,
 * where a pointer one past an object's end (a loop's end pointer) keeps
 * the object alive. */
/* (it reads other threads' stacks and any word of the roots: not for the
 * sanitizers) */
__attribute__((no_sanitize("address", "thread"))) static void scan(uintptr_t lo, uintptr_t hi, bool edge) {
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
        uintptr_t w = *(const uintptr_t *)p;
        if (mark_word(w) && edge) mark_word(w - 1);
    }
}

static void drain(void) {
    while (stack_len) {
        range r = stack[--stack_len];
        scan(r.lo, r.hi, false);
    }
}

/* After an overflow: every marked, scanned object is scanned again. */
static void rescan_span(mhi_span *s, void *ctx) {
    (void)ctx;
    if (s->gc_kind == MHI_GC_NOSCAN) return;
    size_t size = mhi_gc_elem_size(s);
    for (uint32_t i = 0; i < s->nelems; i++)
        if (s->gc_mark[i >> 6] >> (i & 63) & 1) {
            uintptr_t o = s->base + (uintptr_t)i * size;
            push(o, o + size);
            if (stack_len > 64) drain();
        }
}

/* Uncollectable objects are roots. */
static void scan_uncollectable(mhi_span *s, void *ctx) {
    uint64_t *bytes = ctx;
    if (s->gc_kind != MHI_GC_UNCOLL) return;
    size_t size = mhi_gc_elem_size(s);
    for (uint32_t i = 0; i < s->nelems; i++)
        if (s->gc_alloc[i >> 6] >> (i & 63) & 1) {
            uintptr_t o = s->base + (uintptr_t)i * size;
            scan(o, o + size, false);
            *bytes += size;
            drain();
        }
}

/* A range of malloc's heap (mhi_gc_scan_malloc), counted as roots. */
static void scan_malloc_range(uintptr_t lo, uintptr_t hi, void *ctx) {
    scan(lo, hi, false);
    *(uint64_t *)ctx += hi - lo;
    drain();
}

/* The collecting thread's own stack, from here up, with its registers:
 * setjmp stores the callee-saved ones in a buffer on this frame, which is
 * scanned with the rest (the address of a local lies below the frame's
 * saved registers, unlike the frame address). */
static __attribute__((noinline)) uintptr_t scan_self(mhi_gc_thread *t) {
    jmp_buf regs;
    __builtin_unwind_init();
    (void)setjmp(regs);
    uintptr_t lo = (uintptr_t)&regs < (uintptr_t)__builtin_frame_address(0)
                       ? (uintptr_t)&regs
                       : (uintptr_t)__builtin_frame_address(0);
    uintptr_t hi = t->stack_hi;
    if (lo < t->stack_lo || lo >= hi) lo = t->stack_lo;
    scan(lo, hi, true);
    return hi - lo;
}

/* A span not swept since the last mark (one a thread kept cached through
 * it, or released after the sweep finished) still has that mark's bits:
 * clear them, or marking would take its objects for done and not scan
 * them again.  (Its objects allocated since the last pause stay live by
 * its snapshot.) */
static void clear_stale_marks(mhi_span *s, void *ctx) {
    uint32_t h = *(const uint32_t *)ctx;
    if (atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == h) return;
    for (uint32_t w = 0; w < mhi_gc_words(s); w++) s->gc_mark[w] = mhi_gc_tail(s, w);
}

uint64_t mhi_gc_mark_locked(const uintptr_t (*data)[2], size_t ndata, uint64_t *roots) {
    mhi_lock_assert_held(&G->lock);
    marked_bytes = 0;
    overflowed = false;
    uint64_t rb = 0;
    if (!mhi_arena_list) {
        *roots = 0;
        return 0;
    }
    heap_lo = mhi_arena_list->base;
    heap_hi = mhi_arena_last->base + MHI_ARENA_SIZE;
    for (mhi_arena *ar = mhi_arena_list; ar; ar = ar->next)
        for (size_t w = 0; w < MHI_ARENA_WORDS; w++)
            __atomic_store_n(&ar->marks[w], 0, __ATOMIC_RELAXED);
    uint32_t h = atomic_load_explicit(&G->sweepgen, memory_order_relaxed);
    mhi_gc_each_span_locked(clear_stale_marks, &h);
    /* Data and bss of the program and its libraries, and added roots. */
    for (size_t i = 0; i < ndata; i++) {
        scan(data[i][0], data[i][1], false);
        rb += data[i][1] - data[i][0];
        drain();
    }
    /* Every thread's stack, registers and TLS. */
    for (mhi_gc_thread *t = G->threads; t; t = t->next) {
        if (t == mhi_gc_self) {
            rb += scan_self(t);
        } else {
            uintptr_t sp = atomic_load_explicit(&t->sp, memory_order_acquire);
            uintptr_t lo = sp >= t->stack_lo && sp < t->stack_hi ? sp : t->stack_lo;
            scan(lo, t->stack_hi, true);
            rb += t->stack_hi - lo;
        }
        drain();
        for (int i = 0; i < t->ntls; i++) {
            scan(t->tls[i][0], t->tls[i][1], false);
            rb += t->tls[i][1] - t->tls[i][0];
        }
        drain();
    }
    /* Live blocks of mheap's malloc (option gc_scan_malloc). */
    if (mhi_option(MHI_OPT_gc_scan_malloc)) mhi_gc_scan_malloc(scan_malloc_range, &rb);
    mhi_gc_each_span_locked(scan_uncollectable, &rb);
    drain();
    while (overflowed) {
        overflowed = false;
        mhi_gc_each_span_locked(rescan_span, NULL);
        drain();
    }
    *roots = rb;
    return marked_bytes;
}
