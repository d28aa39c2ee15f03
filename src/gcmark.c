/* gcmark.c - marking: the markers' stacks and the pool they share, the
 * marker threads, conservative scanning, and the roots (gc.h).  Runs while
 * the world is stopped, with the GC lock held by the collecting thread,
 * which marks too.
 *
 * Work is entries of bdwgc's form (gc.h): a start and a descriptor,
 * nearly always a LENGTH (a range to scan conservatively); objects of a
 * made kind are pushed with their kind's descriptor, which may name a
 * bitmap of their pointer words, a mark procedure, or a descriptor kept
 * in the object.  Each marker has its own stack of
 * entries (memory from the OS, doubled when full; when it cannot grow the
 * entry is dropped and the mark ends with a rescan of every marked
 * object, as bdwgc does).  A marker that runs dry takes ranges from a
 * shared pool; a busy marker that sees an idle one waiting moves the
 * oldest half of its stack (the biggest subtrees of a depth-first walk)
 * to the pool.  The mark ends when every marker is idle and the pool is
 * empty.  A range longer than MARK_CHUNK is split as it is popped, so the
 * markers share one large object.  Mark bits are set with an atomic OR
 * when more than one marker runs.
 *
 * A mark procedure runs on the marker that pops its entry (any marker
 * thread, or the collecting thread), with that marker in the thread's
 * cur_marker: the objects it marks through mhi_gc_mark_push go straight
 * onto that marker's stack, and the entries it pushes itself go into the
 * marker's scratch stack, moved onto its own stack when the procedure
 * returns (or when the scratch stack fills: mhi_gc_mark_overflow). */
#include <sched.h>

#include "gc.h"

#include "options.h"
#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

#define MARK_CHUNK ((uintptr_t)32 << 10)
#define SHARE_MAX 256      /* ranges moved to the pool at once, at most */
#define MAX_MARKERS 16
/* Below this many bytes marked by the last cycle the collector marks
 * alone: waking the other markers would cost more than they save. */
#define PARALLEL_MIN_LIVE ((uint64_t)1 << 20)

/* A range to scan in the prefetch queue; bit 0 of lo set (of an entry's
 * start, for a LENGTH): a stack or registers, where a pointer one past an
 * object's end (a loop's end pointer) keeps the object. */
typedef struct {
    uintptr_t lo, hi;
} range;

/* Entries a mark procedure may push before its stack is full. */
#define SCRATCH 512

typedef struct {
    mhi_gc_mse *st;
    size_t len, cap;
    uint64_t marked; /* bytes this marker marked */
    uint32_t pops;   /* since the last look at the pool */
    mhi_gc_mse *scratch; /* [0] below the bottom, then SCRATCH - 1 slots */
} __attribute__((aligned(MHI_CACHE_LINE))) marker;

static marker markers[MAX_MARKERS];
static unsigned nmarkers = 1; /* in this mark */
static bool parallel;         /* nmarkers > 1 */
static _Atomic bool overflowed;
static _Atomic uint64_t stack_sys;

/* The marker this thread marks for, while it runs a mark procedure. */
static __thread marker *cur_marker __attribute__((tls_model("initial-exec")));
static _Atomic(mhi_gc_mark_proc) procs[MHI_GC_MAX_PROCS];
static _Atomic int nprocs = 1; /* (0 is none) */

static bool stack_grow(mhi_gc_mse **st, size_t *cap, size_t len) {
    size_t ncap = *cap ? *cap * 2 : 4096;
    mhi_gc_mse *n = mhi_os_alloc(ncap * sizeof *n, &stack_sys);
    if (!n) return false;
    if (*st) {
        memcpy(n, *st, len * sizeof *n);
        mhi_os_release(*st, *cap * sizeof *n, &stack_sys);
    }
    *st = n;
    *cap = ncap;
    return true;
}

static inline void push(marker *m, uintptr_t start, uintptr_t descr) {
    if (MHI_UNLIKELY(m->len == m->cap) && !stack_grow(&m->st, &m->cap, m->len)) {
        atomic_store_explicit(&overflowed, true, memory_order_relaxed); /* rescan finds it */
        return;
    }
    m->st[m->len++] = (mhi_gc_mse){start, descr};
}

/* An object of a made kind: its kind's descriptor. */
static MHI_NOINLINE void push_kind(marker *m, uintptr_t obj, size_t size, int k) {
    const mhi_gc_kind_info *ki = &mhi_gc_kinds[k];
    uintptr_t d = ki->descr + (ki->adjust ? size : 0);
    if (d) push(m, obj, d);
}

/* Queue the marked object obj of s (size bytes) for marking its contents. */
static inline void push_object(marker *m, const mhi_span *s, uintptr_t obj, size_t size) {
    int k = s->gc_kind;
    if (k == MHI_GC_NOSCAN) return;
    if (MHI_LIKELY(k < MHI_GC_NKINDS)) push(m, obj, size);
    else push_kind(m, obj, size, k);
}

/* ---- the shared pool ---- */

static struct {
    _Atomic uint32_t lock; /* a spin lock: held for a copy of a few entries */
    mhi_gc_mse *st;
    size_t len, cap;
    unsigned idle;
    bool done;
} pool;
static _Atomic uint32_t pool_gen;   /* futex word: work arrived or the mark ended */
static _Atomic uint32_t pool_hungry; /* a marker waits and the pool is empty */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void pool_lock(void) {
    for (unsigned n = 0; atomic_exchange_explicit(&pool.lock, 1, memory_order_acquire); n++)
        if (n > 64) sched_yield();
        else cpu_relax();
}
static void pool_unlock(void) { atomic_store_explicit(&pool.lock, 0, memory_order_release); }

/* Move the oldest half of m's stack (at most SHARE_MAX) to the pool. */
static void share(marker *m) {
    size_t n = m->len / 2;
    if (n > SHARE_MAX) n = SHARE_MAX;
    if (n == 0) return;
    pool_lock();
    if (pool.len + n > pool.cap && !stack_grow(&pool.st, &pool.cap, pool.len)) {
        pool_unlock();
        return; /* (m keeps them) */
    }
    memcpy(pool.st + pool.len, m->st, n * sizeof *m->st);
    pool.len += n;
    atomic_store_explicit(&pool_hungry, 0, memory_order_relaxed);
    pool_unlock();
    memmove(m->st, m->st + n, (m->len - n) * sizeof *m->st);
    m->len -= n;
    atomic_fetch_add_explicit(&pool_gen, 1, memory_order_release);
    mhi_os_futex_wake_all(&pool_gen);
}

/* Take up to SHARE_MAX ranges from the pool into m (pool locked). */
static void take_locked(marker *m) {
    size_t n = pool.len < SHARE_MAX ? pool.len : SHARE_MAX;
    while (m->cap - m->len < n)
        if (!stack_grow(&m->st, &m->cap, m->len)) {
            n = m->cap - m->len;
            break;
        }
    if (n == 0) {
        /* No room anywhere: drop the pool (its objects are marked, and
         * the rescan after the mark scans them). */
        pool.len = 0;
        atomic_store_explicit(&overflowed, true, memory_order_relaxed);
        return;
    }
    pool.len -= n;
    memcpy(m->st + m->len, pool.st + pool.len, n * sizeof *m->st);
    m->len += n;
}

/* ---- marking one word ---- */

static uintptr_t heap_lo, heap_hi; /* the arenas' range, for a quick test */

/* If w points into an allocated, unmarked GC object, mark it and queue it
 * for scanning (unless it is pointer-free).  Returns true if w pointed at
 * an object's first byte (the caller may also try w - 1). */
__attribute__((no_sanitize("address", "thread"), always_inline)) static inline bool
mark_word(marker *m, uintptr_t w) {
    if (w - heap_lo >= heap_hi - heap_lo) return false;
    mhi_arena *ar = mhi_arena_of(w);
    if (!ar) return false;
    mhi_span *s = atomic_load_explicit(&ar->spans[mhi_arena_page(w)], memory_order_relaxed);
    if (!s || mhi_span_kind(s) != MHI_KIND_GC || w - s->base >= s->npages << MHI_PAGE_SHIFT)
        return false;
    if (mhi_span_state(s) != MHI_SPAN_INUSE) return false;
    uint32_t i = mhi_span_index(s, (const void *)w);
    if (i >= s->nelems || !mhi_gc_allocated(s, i)) return false;
    size_t size = mhi_gc_elem_size(s);
    uintptr_t obj = s->base + (uintptr_t)i * size;
    uint64_t bit = 1ULL << (i & 63), *mw = &mhi_gc_marks(s)[i >> 6];
    uint64_t old = __atomic_load_n(mw, __ATOMIC_RELAXED);
    if (old & bit) return w == obj;
    if (parallel) {
        if (__atomic_fetch_or(mw, bit, __ATOMIC_RELAXED) & bit) return w == obj; /* another marker */
    } else {
        __atomic_store_n(mw, old | bit, __ATOMIC_RELAXED);
    }
    mhi_arena *sa = s->base >= ar->base ? ar : mhi_arena_must(s->base);
    size_t pg = mhi_arena_page(s->base);
    if (!(__atomic_load_n(&sa->marks[pg / 64], __ATOMIC_RELAXED) >> (pg % 64) & 1))
        mhi_arena_bit_or(sa->marks, pg);
    m->marked += size;
    push_object(m, s, obj, size);
    return w == obj;
}

/* Scan [lo, hi) word by word (edge: see range). */
/* (it reads other threads' stacks and any word of the roots: not for the
 * sanitizers) */
__attribute__((no_sanitize("address", "thread"), always_inline)) static inline void
scan(marker *m, uintptr_t lo, uintptr_t hi, bool edge) {
    lo = (lo + 7) & ~(uintptr_t)7;
    if (edge) {
        /* (w - 1 too: w may point one past an object's end, at a free
         * slot or past the span) */
        for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
            uintptr_t w = *(const uintptr_t *)p;
            (void)mark_word(m, w);
            (void)mark_word(m, w - 1);
        }
    } else {
        for (uintptr_t p = lo; p + 8 <= hi; p += 8) (void)mark_word(m, *(const uintptr_t *)p);
    }
}

/* Scan a root range now (its objects go on m's stack). */
__attribute__((no_sanitize("address", "thread"), noinline)) static void scan_root(marker *m,
                                                                                uintptr_t lo,
                                                                                uintptr_t hi,
                                                                                bool edge) {
    scan(m, lo, hi, edge);
}

/* ---- entries other than ranges ---- */

/* Run the mark procedure of descriptor d on start. */
static void call_proc(marker *m, uintptr_t start, uintptr_t d) {
    mhi_gc_mark_proc proc =
        atomic_load_explicit(&procs[(d >> MHI_GC_DS_TAG_BITS) & (MHI_GC_MAX_PROCS - 1)],
                             memory_order_acquire);
    if (!proc) return;
    if (!m->scratch) {
        m->scratch = mhi_os_alloc(SCRATCH * sizeof *m->scratch, &stack_sys);
        if (!m->scratch) {
            atomic_store_explicit(&overflowed, true, memory_order_relaxed); /* (the rescan retries) */
            return;
        }
    }
    mhi_gc_mse *base = m->scratch, *lim = base + SCRATCH;
    marker *was = cur_marker;
    cur_marker = m;
    mhi_gc_mse *top = proc((uintptr_t *)start, base, lim, d >> (MHI_GC_DS_TAG_BITS + MHI_GC_LOG_MAX_PROCS));
    cur_marker = was;
    if (top < base || top >= lim)
        mhi_fatal_at("a mark procedure returned a stack pointer outside its stack", (void *)top);
    for (mhi_gc_mse *e = base + 1; e <= top; e++)
        if (e->descr) push(m, e->start, e->descr);
}

/* An entry whose descriptor is not a LENGTH (d's tag is not 0). */
__attribute__((no_sanitize("address", "thread"), noinline)) static void
mark_descr(marker *m, uintptr_t start, uintptr_t d) {
    for (int depth = 0; depth < 4; depth++) {
        switch (d & MHI_GC_DS_TAGS) {
        case MHI_GC_DS_LENGTH:
            if (d) push(m, start, d);
            return;
        case MHI_GC_DS_BITMAP:
            start &= ~(uintptr_t)7;
            for (uintptr_t bits = d & ~(uintptr_t)MHI_GC_DS_TAGS, p = start; bits; bits <<= 1, p += 8)
                if ((intptr_t)bits < 0) (void)mark_word(m, *(const uintptr_t *)p);
            return;
        case MHI_GC_DS_PROC:
            call_proc(m, start, d);
            return;
        default: /* PER_OBJECT */
            if ((intptr_t)d >= 0) {
                d = *(const uintptr_t *)(start + (d & ~(uintptr_t)MHI_GC_DS_TAGS));
            } else {
                /* (0: an object not yet given its type) */
                uintptr_t type = *(const uintptr_t *)start;
                if (!type) return;
                d = *(const uintptr_t *)(type - (uintptr_t)((intptr_t)d + MHI_GC_INDIR_BIAS -
                                                            MHI_GC_DS_PER_OBJECT));
            }
            if (!d) return;
        }
    }
}

/* Scan everything on m's stack, giving work to the pool when a marker
 * waits for it.  Ranges pass through a small queue between the stack and
 * the scan, their first line prefetched as they enter it, so each load
 * has PREFETCH_DEPTH scans' time to arrive (the stack alone would scan an
 * object right after finding it).  Other entries are marked as they are
 * popped. */
#define PREFETCH_DEPTH 8
__attribute__((no_sanitize("address", "thread"), noinline)) static void drain(marker *m) {
    range q[PREFETCH_DEPTH];
    unsigned head = 0, n = 0;
    for (;;) {
        while (n < PREFETCH_DEPTH && m->len) {
            mhi_gc_mse e = m->st[--m->len];
            if (MHI_UNLIKELY(e.descr & MHI_GC_DS_TAGS)) {
                mark_descr(m, e.start, e.descr);
                continue;
            }
            uintptr_t lo = e.start & ~(uintptr_t)1, len = e.descr;
            if (len > MARK_CHUNK) {
                push(m, e.start + MARK_CHUNK, len - MARK_CHUNK);
                len = MARK_CHUNK;
            }
            __builtin_prefetch((const void *)lo);
            q[(head + n++) % PREFETCH_DEPTH] = (range){e.start, lo + len};
        }
        if (!n) return;
        range r = q[head];
        head = (head + 1) % PREFETCH_DEPTH;
        n--;
        if (MHI_UNLIKELY(r.lo & 1)) scan(m, r.lo & ~(uintptr_t)1, r.hi, true);
        else scan(m, r.lo, r.hi, false);
        if (parallel && ++m->pops >= 32) {
            m->pops = 0;
            if (atomic_load_explicit(&pool_hungry, memory_order_relaxed) && m->len > 1) share(m);
        }
    }
}

/* A marker's loop: drain, then take from the pool, until all are idle. */
static void mark_loop(marker *m) {
    for (;;) {
        drain(m);
        if (!parallel) return;
        pool_lock();
        if (pool.len) {
            take_locked(m);
            pool_unlock();
            continue;
        }
        if (++pool.idle == nmarkers) {
            pool.done = true;
            pool_unlock();
            atomic_fetch_add_explicit(&pool_gen, 1, memory_order_release);
            mhi_os_futex_wake_all(&pool_gen);
            return;
        }
        atomic_store_explicit(&pool_hungry, 1, memory_order_relaxed);
        for (;;) {
            uint32_t gen = atomic_load_explicit(&pool_gen, memory_order_acquire);
            pool_unlock();
            for (int spin = 0; spin < 200 && atomic_load_explicit(&pool_gen, memory_order_acquire) == gen; spin++)
                cpu_relax();
            if (atomic_load_explicit(&pool_gen, memory_order_acquire) == gen)
                mhi_os_futex_wait(&pool_gen, gen, 10);
            pool_lock();
            if (pool.done) {
                pool_unlock();
                return;
            }
            if (pool.len) {
                pool.idle--;
                take_locked(m);
                if (!pool.len) atomic_store_explicit(&pool_hungry, 1, memory_order_relaxed);
                pool_unlock();
                break;
            }
        }
    }
}

/* ---- the marker threads ---- */

static _Atomic uint32_t mark_epoch; /* futex word: advanced to start the helpers */
static _Atomic uint32_t helpers_busy; /* helpers not yet done with this mark */
static unsigned helpers;              /* started (collector only) */
static bool no_helpers;               /* (see mhi_gc_mark_fork_child) */

/* arg: the marker's index, and above bit 16 the mark epoch when it was
 * started (it joins the marks after that one). */
static void *helper_main(void *arg) {
    marker *m = &markers[(uintptr_t)arg & 0xffff];
    uint32_t seen = (uint32_t)((uintptr_t)arg >> 16);
    for (;;) {
        uint32_t e;
        while ((e = atomic_load_explicit(&mark_epoch, memory_order_acquire)) == seen)
            mhi_os_futex_wait(&mark_epoch, seen, -1);
        seen = e;
        if (m - markers < (ptrdiff_t)nmarkers) mark_loop(m);
        if (atomic_fetch_sub_explicit(&helpers_busy, 1, memory_order_acq_rel) == 1)
            mhi_os_futex_wake(&helpers_busy);
    }
    return NULL;
}

static unsigned planned = 1; /* markers for the next mark (world lock) */

void mhi_gc_mark_prepare(void) {
    mhi_lock_assert_held(&G->world);
    long opt = mhi_option(MHI_OPT_gc_markers);
    unsigned want = opt > 0 ? (unsigned)opt : mhi_os_ncpu();
    if (opt <= 0 && want > 8) want = 8;
    if (want > MAX_MARKERS) want = MAX_MARKERS;
    planned = 1;
    if (want <= 1 || no_helpers || G->live_bytes + G->roots_bytes < PARALLEL_MIN_LIVE) return;
    uint32_t e = atomic_load_explicit(&mark_epoch, memory_order_relaxed);
    while (helpers + 1 < want &&
           mhi_os_thread_start(helper_main, (void *)((uintptr_t)e << 16 | (helpers + 1))))
        helpers++;
    planned = want < helpers + 1 ? want : helpers + 1;
}

void mhi_gc_mark_fork_child(void) {
    helpers = 0; /* (they did not survive the fork; new ones start when needed) */
#if defined(__SANITIZE_THREAD__)
    no_helpers = true; /* (ThreadSanitizer cannot start threads after such a fork) */
#endif
    atomic_store(&mark_epoch, 0);
    atomic_store(&helpers_busy, 0);
}

/* ---- roots ---- */

/* After an overflow: every marked, scanned object is scanned again. */
static void rescan_span(mhi_span *s, void *ctx) {
    marker *m = ctx;
    if (s->gc_kind == MHI_GC_NOSCAN) return;
    size_t size = mhi_gc_elem_size(s);
    for (uint32_t i = 0; i < s->nelems; i++)
        if (mhi_gc_marks(s)[i >> 6] >> (i & 63) & 1) {
            push_object(m, s, s->base + (uintptr_t)i * size, size);
            if (m->len > 64) drain(m);
        }
}

typedef struct {
    marker *m;
    uint64_t bytes;
} uncoll_ctx;

/* Uncollectable objects are roots. */
static void scan_uncollectable(mhi_span *s, void *arg) {
    uncoll_ctx *c = arg;
    if (s->gc_kind != MHI_GC_UNCOLL) return;
    size_t size = mhi_gc_elem_size(s);
    for (uint32_t i = 0; i < s->nelems; i++)
        if (s->gc_alloc[i >> 6] >> (i & 63) & 1) {
            uintptr_t o = s->base + (uintptr_t)i * size;
            scan_root(c->m, o, o + size, false);
            c->bytes += size;
            drain(c->m);
        }
}

/* A range of malloc's heap (mhi_gc_scan_malloc), counted as roots. */
typedef struct {
    marker *m;
    uint64_t *bytes;
} malloc_ctx;
static void scan_malloc_range(uintptr_t lo, uintptr_t hi, void *arg) {
    malloc_ctx *c = arg;
    scan_root(c->m, lo, hi, false);
    *c->bytes += hi - lo;
    drain(c->m);
}

void mhi_gc_mark_contents(uintptr_t lo, uintptr_t hi, uintptr_t self) {
    marker *m = &markers[0];
    if (!self) {
        scan_root(m, lo, hi, false);
    } else {
        for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
            uintptr_t w = *(const uintptr_t *)p;
            if (w - self >= hi - lo) (void)mark_word(m, w);
        }
    }
    drain(m);
}

void mhi_gc_mark_object(void *obj) {
    marker *m = &markers[0];
    (void)mark_word(m, (uintptr_t)obj);
    drain(m);
}

void mhi_gc_mark_word(uintptr_t w) {
    marker *m = &markers[0];
    (void)mark_word(m, w);
    drain(m);
}

void mhi_gc_mark_settle(void) {
    marker *m = &markers[0];
    while (atomic_load(&overflowed)) {
        atomic_store(&overflowed, false);
        mhi_gc_each_span_locked(rescan_span, m);
        drain(m);
    }
}

/* ---- for mark procedures ---- */

int mhi_gc_proc_new(mhi_gc_mark_proc proc) {
    int i = atomic_fetch_add(&nprocs, 1);
    if (i >= MHI_GC_MAX_PROCS) {
        atomic_store(&nprocs, MHI_GC_MAX_PROCS);
        return -1;
    }
    atomic_store_explicit(&procs[i], proc, memory_order_release);
    return i;
}

bool mhi_gc_mark_push_range(uintptr_t lo, uintptr_t hi) {
    marker *m = cur_marker;
    if (!m) return false;
    lo = (lo + 7) & ~(uintptr_t)7;
    hi &= ~(uintptr_t)7;
    if (hi > lo) push(m, lo, hi - lo);
    return true;
}

_Atomic(void (*)(void)) mhi_gc_other_roots;

bool mhi_gc_marking(void) { return cur_marker != NULL; }

bool mhi_gc_mark_push(uintptr_t w) {
    marker *m = cur_marker;
    if (!m) return false;
    (void)mark_word(m, w);
    return true;
}

mhi_gc_mse *mhi_gc_mark_overflow(mhi_gc_mse *msp) {
    marker *m = cur_marker;
    if (!m || !m->scratch) return NULL; /* (the other-roots hook has no scratch stack) */
    mhi_gc_mse *base = m->scratch;
    if (msp > base + SCRATCH) msp = base + SCRATCH;
    for (mhi_gc_mse *e = base + 1; e < msp; e++)
        if (e->descr) push(m, e->start, e->descr);
    return base + 1;
}

uint64_t mhi_gc_mark_extra(void) {
    marker *m = &markers[0];
    mhi_gc_mark_settle();
    uint64_t b = m->marked;
    m->marked = 0;
    return b;
}

/* A span not swept since the last mark (one a thread kept cached through
 * it, or released after the sweep finished) still has that mark's bits:
 * clear them, or marking would take its objects for done and not scan
 * them again.  (Its objects allocated since the last pause stay live by
 * its snapshot.) */
static void clear_stale_marks(mhi_span *s, void *ctx) {
    uint32_t h = *(const uint32_t *)ctx;
    if (atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == h) return;
    for (uint32_t w = 0; w < mhi_gc_words(s); w++) mhi_gc_marks(s)[w] = mhi_gc_tail(s, w);
}

uint64_t mhi_gc_mark_locked(const uintptr_t (*data)[2], size_t ndata, uint64_t *roots,
                            unsigned *used) {
    mhi_lock_assert_held(&G->lock);
    uint64_t rb = 0;
    *used = 1;
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
    atomic_store(&overflowed, false);

    /* The other markers wait on the pool until this thread, scanning the
     * roots, gives them work. */
    nmarkers = planned;
    parallel = nmarkers > 1;
    for (unsigned i = 0; i < nmarkers; i++) {
        markers[i].len = 0;
        markers[i].marked = 0;
        markers[i].pops = 0;
    }
    marker *m = &markers[0];
    if (parallel) {
        pool.len = 0;
        pool.idle = 0;
        pool.done = false;
        atomic_store(&pool_hungry, 0);
        atomic_store(&helpers_busy, helpers); /* (every helper wakes; those past nmarkers leave) */
        atomic_fetch_add_explicit(&mark_epoch, 1, memory_order_release);
        mhi_os_futex_wake_all(&mark_epoch);
    }
    /* Data and bss of the program and its libraries, and added roots. */
    for (size_t i = 0; i < ndata; i++) {
        scan_root(m, data[i][0], data[i][1], false);
        rb += data[i][1] - data[i][0];
        drain(m);
    }
    /* Every thread's stack (the collecting thread's too: from where it
     * saved its registers as the collection began, so mheap's own frames
     * below are not roots), registers and TLS. */
    for (mhi_gc_thread *t = G->threads; t; t = t->next) {
        uintptr_t sp = atomic_load_explicit(&t->sp, memory_order_acquire);
        uintptr_t lo = sp >= t->stack_lo && sp < t->stack_hi ? sp : t->stack_lo;
        scan_root(m, lo, t->stack_hi, true);
        rb += t->stack_hi - lo;
        drain(m);
        for (int i = 0; i < t->ntls; i++) {
            scan_root(m, t->tls[i][0], t->tls[i][1], false);
            rb += t->tls[i][1] - t->tls[i][0];
        }
        drain(m);
    }
    /* Live blocks of mheap's malloc (option gc_scan_malloc). */
    if (mhi_option(MHI_OPT_gc_scan_malloc)) {
        malloc_ctx mc = {m, &rb};
        mhi_gc_scan_malloc(scan_malloc_range, &mc);
    }
    uncoll_ctx uc = {m, 0};
    mhi_gc_each_span_locked(scan_uncollectable, &uc);
    rb += uc.bytes;
    void (*other)(void) = atomic_load(&mhi_gc_other_roots);
    if (other) {
        cur_marker = m;
        other();
        cur_marker = NULL;
        drain(m);
    }
    mark_loop(m);
    if (parallel) {
        uint32_t busy;
        while ((busy = atomic_load_explicit(&helpers_busy, memory_order_acquire)) != 0)
            mhi_os_futex_wait(&helpers_busy, busy, 10);
    }
    uint64_t marked = 0;
    for (unsigned i = 0; i < nmarkers; i++) marked += markers[i].marked;
    *used = nmarkers;
    /* Ranges dropped for want of memory: rescan alone. */
    parallel = false;
    while (atomic_load(&overflowed)) {
        atomic_store(&overflowed, false);
        m->marked = 0;
        mhi_gc_each_span_locked(rescan_span, m);
        drain(m);
        marked += m->marked;
    }
    *roots = rb;
    m->marked = 0; /* (from here on: mhi_gc_mark_extra) */
    return marked;
}
