/* gc.c - the collection cycle, pacing, the public mh_gc_ API, statistics
 * and gctrace (gc.h, include/mheap_gc.h).
 *
 * A cycle: take the world lock; finish sweeping the last cycle's spans;
 * start the marker threads it needs; then, with the loader's list of
 * objects locked (no dlopen or dlclose until the mark is done), gather the
 * data ranges of the program and its libraries, take the roots lock (held
 * through the mark) and the added roots, take the GC lock; stop the world;
 * mark; record the cached spans' freeindex, move every other
 * span to the unswept lists and advance the sweep generation; set the next
 * goal; start the world.  Sweeping then proceeds lazily (an allocating
 * thread sweeps its class before taking a new span), proportionally (the
 * slow path sweeps pages in proportion to what it allocates, so sweeping
 * ends before the next goal), and in the background thread. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>

#include "background.h"
#include "gc.h"
#include "malloc.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

mhi_gc mhi_gc_ = {
    .world = MHI_LOCK_INIT(MHI_RANK_GC_WORLD),
    .roots = MHI_LOCK_INIT(MHI_RANK_GC_ROOTS),
    .lock = MHI_LOCK_INIT(MHI_RANK_GC),
    .sweepgen = 2,
    .next_gc = 4u << 20,
    .percent = 100,
};

#define GC_MIN_HEAP ((uint64_t)4 << 20)

/* bdwgc's layer (gc_boehm_abi.c): GC_dont_gc, a variable of bdwgc's that
 * a binary built against libgc.so.1 may hold its own copy of (so it is
 * read through its symbol, each time); non-zero: no collection at all.
 * The hooks: the heap starts, a cycle starts (world lock held), the
 * other roots are pushed (in the pause), a cycle is done (no lock). */
extern __attribute__((visibility("default"))) int GC_dont_gc;
static inline bool boehm_dont_gc(void) { return __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) != 0; }
int mhi_gc_boehm_no_auto(void);
void mhi_gc_boehm_init(void);
void mhi_gc_boehm_cycle_begins(void);
void mhi_gc_boehm_cycle_done(void);

/* ---- set-up ---- */

static _Atomic int gc_inited;
static int sweep_task_index = -1;

static int sweep_task(void) {
    return mhi_gc_sweep_some(32) ? MHI_BG_SOON : MHI_BG_IDLE;
}

/* gc_inited: 0, 1 while one thread sets up (the others wait), 2 done. */
void mhi_gc_init(void) {
    if (MHI_LIKELY(atomic_load_explicit(&gc_inited, memory_order_acquire) == 2)) return;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&gc_inited, &expect, 1)) {
        while (atomic_load_explicit(&gc_inited, memory_order_acquire) != 2) sched_yield();
        return;
    }
    G->start_ns = mhi_os_nanotime();
    (void)mhi_option(MHI_OPT_gc_percent); /* options read (they apply themselves) */
    sweep_task_index = mhi_bg_add(sweep_task, false); /* (mh_gc_lock may be held by a caller of malloc) */
    if (mhi_option(MHI_OPT_background)) mhi_bg_start();
    atomic_store_explicit(&gc_inited, 2, memory_order_release);
    mhi_gc_boehm_init(); /* (it may call the API, which waits for 2) */
}

/* ---- roots gathered before the pause ---- */

static uintptr_t (*ranges)[2];
static size_t nranges, ranges_cap;
static _Atomic uint64_t ranges_sys;

static void add_range(void *ctx, uintptr_t lo, uintptr_t hi) {
    (void)ctx;
    /* mheap's own address map is not a root (16 MiB of arena pointers) */
    uintptr_t xlo = (uintptr_t)&mhi_arena_map, xhi = xlo + sizeof mhi_arena_map;
    if (xlo < hi && xhi > lo) {
        if (xlo > lo) add_range(ctx, lo, xlo);
        if (xhi < hi) add_range(ctx, xhi, hi);
        return;
    }
    if (nranges == ranges_cap) {
        size_t cap = ranges_cap ? ranges_cap * 2 : 256;
        uintptr_t (*n)[2] = mhi_os_alloc(cap * sizeof *n, &ranges_sys);
        if (!n) return;
        if (ranges) {
            memcpy(n, ranges, nranges * sizeof *n);
            mhi_os_release(ranges, ranges_cap * sizeof *n, &ranges_sys);
        }
        ranges = n;
        ranges_cap = cap;
    }
    ranges[nranges][0] = lo;
    ranges[nranges][1] = hi;
    nranges++;
}

/* Added roots (roots lock). */
static uintptr_t (*added)[2];
static size_t nadded, added_cap;

MH_API int mh_gc_add_roots(void *lo, void *hi) {
    if ((uintptr_t)hi <= (uintptr_t)lo) return 0;
    mhi_gc_init();
    mhi_lock(&G->roots);
    if (nadded == added_cap) {
        size_t cap = added_cap ? added_cap * 2 : 64;
        uintptr_t (*n)[2] = mhi_os_alloc(cap * sizeof *n, &ranges_sys);
        if (!n) {
            mhi_unlock(&G->roots);
            errno = ENOMEM;
            return -1;
        }
        if (added) {
            memcpy(n, added, nadded * sizeof *n);
            mhi_os_release(added, added_cap * sizeof *n, &ranges_sys);
        }
        added = n;
        added_cap = cap;
    }
    added[nadded][0] = (uintptr_t)lo;
    added[nadded][1] = (uintptr_t)hi;
    nadded++;
    mhi_unlock(&G->roots);
    return 0;
}

MH_API void mh_gc_remove_roots(void *lo, void *hi) {
    mhi_lock(&G->roots);
    for (size_t i = 0; i < nadded; i++)
        if (added[i][0] == (uintptr_t)lo && added[i][1] == (uintptr_t)hi) {
            added[i][0] = added[nadded - 1][0];
            added[i][1] = added[nadded - 1][1];
            nadded--;
            break;
        }
    mhi_unlock(&G->roots);
}

/* ---- the cycle ---- */

static void note_pause(uint64_t ns) {
    G->pause_total_ns += ns;
    G->pause_last_ns = ns;
    if (ns > G->pause_max_ns) G->pause_max_ns = ns;
    uint64_t us = ns / 1000;
    int b = 0;
    while (b < MH_GC_PAUSE_BUCKETS - 1 && us >= (1ULL << b)) b++;
    G->pause_hist[b]++;
}

static void trace(uint64_t before, uint64_t live, uint64_t pause_ns) {
    uint64_t now = (uint64_t)(mhi_os_nanotime() - G->start_ns) / 1000000;
    uint64_t after = atomic_load(&G->heap_bytes), goal = atomic_load(&G->next_gc);
#define MB10(x) (unsigned long long)((x) * 10 >> 20) / 10, (unsigned long long)((x) * 10 >> 20) % 10
    mhi_printf(2,
               "gc %llu @%llu.%03llus %llu.%03llu ms pause, %llu.%llu->%llu.%llu->%llu.%llu MB, "
               "%llu.%llu MB goal, %llu markers\n",
               (unsigned long long)G->cycles, (unsigned long long)now / 1000,
               (unsigned long long)now % 1000, (unsigned long long)pause_ns / 1000000,
               (unsigned long long)pause_ns / 1000 % 1000, MB10(before), MB10(after), MB10(live),
               MB10(goal), (unsigned long long)G->markers);
#undef MB10
}

/* The next goal: the live heap plus percent of it and of the roots.  What
 * only finalization keeps (objects ready for finalization and what they
 * reach, G->final_bytes) is in the live heap but earns no growth: it is
 * garbage once its finalizers have run, and growing by percent of it
 * made a program that finalizes most of what it allocates raise its
 * goal cycle after cycle. */
static void set_goal(uint64_t live, uint64_t roots) {
    long pct = atomic_load(&G->percent);
    uint64_t final = G->final_bytes < live ? G->final_bytes : live;
    uint64_t base = live - final;
    uint64_t goal = pct < 0 ? UINT64_MAX : live + (base + roots) / 100 * (uint64_t)pct;
    if (goal < GC_MIN_HEAP) goal = GC_MIN_HEAP;
    atomic_store(&G->next_gc, goal);
}

typedef struct {
    mhi_gc_thread *self;
    jmp_buf *regs;
    bool flush;
    uint64_t before, live, pause, queued;
} cycle;

/* The part of a cycle that runs with the loaded objects locked: gather
 * the roots, stop the world, mark, start sweeping, start the world.  The
 * added roots stay locked through the mark, so a range removed (and
 * perhaps unmapped) is never scanned, and one added is scanned. */
static void cycle_locked(void *arg) {
    cycle *c = arg;
    mhi_gc_thread *self = c->self;
    nranges = 0;
    mhi_os_each_data_range(false, add_range, NULL);
    mhi_lock(&G->roots);
    for (size_t i = 0; i < nadded; i++) add_range(NULL, added[i][0], added[i][1]);
    c->before = atomic_load(&G->heap_bytes);
    mhi_lock(&G->lock);
    mhi_gc_heap_init_locked();
    int64_t t0 = mhi_os_nanotime();
    atomic_store_explicit(&self->sp, (uintptr_t)c->regs, memory_order_release);
    mhi_gc_stop_world();
    uint64_t roots = 0;
    unsigned used = 1;
    uint64_t live = mhi_gc_mark_locked((const uintptr_t(*)[2])ranges, nranges, &roots, &used);
    c->queued = mhi_gc_finalize_locked();
    uint64_t final = mhi_gc_mark_extra(), rooted, final_pre;
    mhi_gc_final_extra_locked(&rooted, &final_pre);
    final += final_pre;
    /* (finalization's records count as heap, the queued ones as final) */
    uint64_t queued;
    live += rooted + final + mhi_gc_final_live_locked(&queued);
    G->final_bytes = final + queued;
    if (c->flush) {
        /* Threads in a blocked region are at a safe point: their cached
         * spans go to the lists now (others give theirs up at their next
         * slow path). */
        for (mhi_gc_thread *t = G->threads; t; t = t->next)
            if (t != self && atomic_load(&t->state) == MHI_GC_BLOCKED)
                mhi_gc_release_thread_spans_locked(t);
    }
    G->live_bytes = live;
    G->roots_bytes = roots;
    G->markers = used;
    set_goal(live, roots);
    mhi_gc_start_sweep_locked(); /* (its sweep rate needs the goal) */
    atomic_store(&G->alloc_since, 0);
    mhi_gc_start_world();
    c->pause = (uint64_t)(mhi_os_nanotime() - t0);
    mhi_unlock(&G->lock);
    mhi_unlock(&G->roots);
    c->live = live;
}

static void cycle_begins(void); /* (the start callback: at the end of this file) */

/* forced: run even if disabled or if another thread just collected;
 * release: finish sweeping and return free memory to the OS; flush: every
 * thread's cached spans go back to the lists. */
static void gc_collect(bool forced, bool release, bool flush) {
    mhi_gc_thread *self = mhi_gc_thread_get();
    if (boehm_dont_gc() || (!forced && atomic_load(&G->disabled))) return;
    /* This thread's roots: its registers, spilled into this frame, and
     * its stack from here up (the frames the collection calls below are
     * mheap's own, and hold no pointer of the program's). */
    jmp_buf regs;
    __builtin_unwind_init();
    (void)setjmp(regs);
    /* The calling thread's own current spans are swept with the rest:
     * it gives them up first (it owns them; others keep theirs). */
    if (forced) mhi_gc_release_thread_spans(self);
    uint64_t seen = __atomic_load_n(&G->cycles, __ATOMIC_RELAXED);
    mhi_lock(&G->world);
    if (!forced && __atomic_load_n(&G->cycles, __ATOMIC_RELAXED) != seen) {
        mhi_unlock(&G->world); /* someone collected meanwhile */
        return;
    }
    atomic_store(&G->collecting, 1);
    cycle_begins();
    mhi_gc_final_cycle_begins();
    mhi_gc_finish_sweep();
    /* Marker threads start here, not in the pause: creating a thread
     * allocates, and may need locks a stopped thread holds. */
    mhi_gc_mark_prepare();
    cycle c = {self, &regs, flush, 0, 0, 0, 0};
    /* The loaded objects stay as they are from the gathering of their data
     * ranges to the end of the mark (a library closed meanwhile would be
     * scanned after it was unmapped). */
    mhi_os_with_objects_locked(cycle_locked, &c);
    uint64_t before = c.before, live = c.live, pause = c.pause;
    note_pause(pause);
    __atomic_store_n(&G->cycles, G->cycles + 1, __ATOMIC_RELAXED);
    mhi_gc_final_cycle_end();
    atomic_store(&G->collecting, 0);
    mhi_unlock(&G->world);
    if (mhi_option(MHI_OPT_gctrace)) trace(before, live, pause);
    mhi_gc_boehm_cycle_done();
    mhi_gc_finalizers_queued();
    if (release) {
        mhi_gc_finish_sweep();
        (void)mh_release_memory();
    } else {
        mhi_bg_request(sweep_task_index);
    }
}

void mhi_gc_collect(bool forced, bool release) { gc_collect(forced, release, false); }

/* Time for a cycle, before size bytes more are taken? (slow paths, no
 * lock held; size 0 for a small object: a large one counts, so that one
 * does not carry the heap far past the goal) */
static inline void maybe_collect(size_t size) {
    uint64_t used = G->live_bytes + atomic_load_explicit(&G->alloc_since, memory_order_relaxed) + size;
    if (MHI_UNLIKELY(used >= atomic_load_explicit(&G->next_gc, memory_order_relaxed)) &&
        !atomic_load_explicit(&G->disabled, memory_order_relaxed) &&
        !atomic_load_explicit(&G->collecting, memory_order_relaxed) && !boehm_dont_gc() &&
        !mhi_gc_boehm_no_auto())
        mhi_gc_collect(false, false);
}

/* ---- allocation ---- */

static void *gc_oom(size_t size) {
    if (mhi_option(MHI_OPT_abort_on_oom)) mhi_fatal("out of memory: %zu bytes (GC heap)", size);
    errno = ENOMEM;
    return NULL;
}

/* Allocation of size bytes of kind k, past the fast path: pacing, the
 * slow paths, and on failure a collection and one more try (then a
 * collection that also releases memory, and a last try). */
static MHI_NOINLINE void *gc_alloc_slow(size_t size, int k) {
    mhi_gc_thread *t = mhi_gc_thread_get();
    uint32_t fg = atomic_load_explicit(&G->flush_gen, memory_order_relaxed);
    if (MHI_UNLIKELY(t->flush_seen != fg)) {
        t->flush_seen = fg; /* asked to give up its spans (near the memory limit) */
        mhi_gc_release_thread_spans(t);
    }
    maybe_collect(size > MHI_SMALL_SIZE_MAX ? size : 0);
    for (int attempt = 0;; attempt++) {
        bool need_gc = false;
        void *p;
        if (size > MHI_SMALL_SIZE_MAX) p = mhi_gc_alloc_large(size, k, &need_gc);
        else if (k == MHI_GC_UNCOLL) p = mhi_gc_alloc_uncollectable(mhi_size_class(size));
        else if (k >= MHI_GC_NKINDS) p = mhi_gc_alloc_kind_small(mhi_size_class(size), k, &need_gc);
        else p = mhi_gc_refill(t, mhi_size_class(size), k, &need_gc);
        if (p) return p;
        if (!need_gc || attempt == 2) return gc_oom(size);
        /* Near the limit (or out of memory): collect, every thread giving
         * up its cached spans; then once more, returning memory to the
         * OS. */
        atomic_fetch_add_explicit(&G->flush_gen, 1, memory_order_relaxed);
        t->flush_seen = atomic_load_explicit(&G->flush_gen, memory_order_relaxed);
        gc_collect(true, attempt == 1, true);
    }
}

/* (the kinds below MHI_GC_UNCOLL are the ones threads cache spans of) */
static inline __attribute__((always_inline)) void *gc_alloc(size_t size, int k) {
    if (MHI_LIKELY(size <= MHI_SMALL_SIZE_MAX && k < MHI_GC_UNCOLL)) {
        void *p = mhi_gc_pop(mhi_gc_self, mhi_size_class(size), k);
        if (MHI_LIKELY(p != NULL)) return p;
    }
    return gc_alloc_slow(size, k);
}

MH_API void *mh_gc_malloc(size_t size) { return gc_alloc(size, MHI_GC_SCAN); }
void *mhi_gc_alloc(size_t size, int k) { return gc_alloc(size, k); }
MH_API void *mh_gc_malloc_atomic(size_t size) { return gc_alloc(size, MHI_GC_NOSCAN); }
MH_API void *mh_gc_malloc_uncollectable(size_t size) { return gc_alloc(size, MHI_GC_UNCOLL); }

/* bdwgc's two allocation calls (include/gc.h) are here, with the fast path
 * inlined: the rest of that interface is in gc_boehm.c (a call to an
 * exported mh_gc_ function from there goes through the PLT). */
MH_API void *GC_malloc(size_t size);
MH_API void *GC_malloc_atomic(size_t size);
void *mhi_gc_boehm_oom(size_t size); /* gc_boehm.c: the GC_set_oom_fn function's answer */
MH_API void *GC_malloc(size_t size) {
    void *p = gc_alloc(size, MHI_GC_SCAN);
    return MHI_LIKELY(p != NULL) ? p : mhi_gc_boehm_oom(size);
}
MH_API void *GC_malloc_atomic(size_t size) {
    void *p = gc_alloc(size, MHI_GC_NOSCAN);
    return MHI_LIKELY(p != NULL) ? p : mhi_gc_boehm_oom(size);
}

MH_API void mh_gc_free(void *p) {
    if (p) mhi_gc_free_object(p);
}

MH_API void *mh_gc_base(const void *p, size_t *size) {
    mhi_span *s = mhi_gc_span_of(p);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)p) : -1;
    if (i < 0) {
        if (size) *size = 0;
        return NULL;
    }
    size_t sz = mhi_gc_elem_size(s);
    if (size) *size = sz;
    return (void *)(s->base + (uintptr_t)i * sz);
}

MH_API size_t mh_gc_size(const void *p) {
    size_t size;
    void *b = mh_gc_base(p, &size);
    return b == p ? size : 0;
}

MH_API void *mh_gc_realloc(void *p, size_t size) {
    if (!p) return mh_gc_malloc(size);
    mhi_span *s = mhi_gc_span_of(p);
    size_t old = mh_gc_size(p);
    if (!s || !old) mhi_fatal_at("invalid pointer", p);
    if (size <= old && size >= old / 2) return p;
    int k = s->gc_kind;
    /* A kind whose objects carry their descriptor in their last word
     * (typed objects) cannot move by copying: the word would land
     * elsewhere, and the old last word would be read as a descriptor. */
    if (k >= MHI_GC_NKINDS && mhi_gc_kinds[k].adjust &&
        (mhi_gc_kinds[k].descr & MHI_GC_DS_TAGS) == MHI_GC_DS_PER_OBJECT)
        mhi_fatal_at("realloc of a typed object", p);
    void *q = gc_alloc(size, k);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    if (k != MHI_GC_NOSCAN && size > old) memset((char *)q + old, 0, size - old);
    mhi_gc_free_object(p);
    return q;
}

/* ---- control ---- */

MH_API void mh_gc_collect(int release) { mhi_gc_collect(true, release != 0); }
MH_API void mh_gc_disable(void) { atomic_fetch_add(&G->disabled, 1); }
MH_API void mh_gc_enable(void) {
    int was = atomic_fetch_sub(&G->disabled, 1);
    if (was <= 0) atomic_fetch_add(&G->disabled, 1); /* unmatched: stay enabled */
}
void mhi_option_set_gc_percent(long value) { atomic_store(&G->percent, value); }
void mhi_option_set_gc_memory_limit(long value) { atomic_store(&G->limit, (uint64_t)value); }

MH_API void mh_gc_set_percent(long percent) {
    mhi_gc_init();
    atomic_store(&G->percent, percent);
    set_goal(G->live_bytes, G->roots_bytes);
}
MH_API void mh_gc_set_memory_limit(size_t bytes) {
    mhi_gc_init();
    atomic_store(&G->limit, (uint64_t)bytes);
}

/* ---- statistics ---- */

MH_API size_t mh_gc_stats_get(mh_gc_stats_t *out, size_t size) {
    mh_gc_stats_t st = {0};
    st.version = MH_GC_STATS_VERSION;
    st.size = sizeof st;
    mhi_lock(&G->world);
    st.heap_bytes = atomic_load(&G->heap_bytes);
    st.live_bytes = G->live_bytes;
    st.next_gc = atomic_load(&G->next_gc);
    st.cycles = G->cycles;
    st.pause_total_ns = G->pause_total_ns;
    st.pause_max_ns = G->pause_max_ns;
    st.pause_last_ns = G->pause_last_ns;
    st.threads = G->nthreads;
    st.markers = G->markers;
    memcpy(st.pause_hist, G->pause_hist, sizeof st.pause_hist);
    mhi_unlock(&G->world);
    st.alloc_bytes = atomic_load(&G->alloc_bytes);
    st.swept_bytes = atomic_load(&G->swept_bytes);
    st.reclaimed_bytes = atomic_load(&G->reclaimed_bytes);
    st.freed_bytes = atomic_load(&G->freed_bytes);
    if (size > sizeof st) size = sizeof st;
    memcpy(out, &st, size);
    return size;
}

MH_API size_t mh_gc_heap_size(void) { return (size_t)atomic_load(&G->heap_bytes); }
MH_API size_t mh_gc_live_bytes(void) { return (size_t)G->live_bytes; }
MH_API uint64_t mh_gc_cycles(void) { return __atomic_load_n(&G->cycles, __ATOMIC_RELAXED); }


/* The collector's part of mh_stats_t (api.c's mhi_stats_collect). */
static_assert(MH_STATS_GC_PAUSE_BUCKETS == MH_GC_PAUSE_BUCKETS, "one pause histogram");
void mhi_gc_stats_fill(mh_stats_t *st) {
    mh_gc_stats_t g;
    mh_gc_stats_get(&g, sizeof g);
    st->gc_cycles = g.cycles;
    st->gc_pause_total_ns = g.pause_total_ns;
    st->gc_pause_max_ns = g.pause_max_ns;
    st->gc_alloc_bytes = g.alloc_bytes;
    st->gc_swept_bytes = g.swept_bytes;
    st->gc_reclaimed_bytes = g.reclaimed_bytes;
    st->gc_freed_bytes = g.freed_bytes;
    st->gc_heap_bytes = g.heap_bytes;
    st->gc_live_bytes = g.live_bytes;
    st->meta_sys += mhi_gc_final_sys(); /* (special records, the links' index) */
    /* (the histogram's fields follow one another: api.c checks) */
    memcpy((char *)st + offsetof(mh_stats_t, gc_pause_hist_0), g.pause_hist, sizeof g.pause_hist);
}

/* ---- more of the API: what bdwgc's interface (gc_boehm.c) needs ---- */

/* Word bounds: a root range is scanned from lo rounded up to hi rounded
 * down. */
static inline uintptr_t word_up(uintptr_t a) {
    return (a + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
}
static inline uintptr_t word_down(uintptr_t a) { return a & ~(uintptr_t)(sizeof(uintptr_t) - 1); }

MH_API void mh_gc_clear_roots(void) {
    mhi_lock(&G->roots);
    nadded = 0;
    mhi_unlock(&G->roots);
}

MH_API void mh_gc_remove_roots_within(void *lo, void *hi) {
    uintptr_t l = word_up((uintptr_t)lo), h = word_down((uintptr_t)hi);
    if (l >= h) return;
    mhi_lock(&G->roots);
    for (size_t i = 0; i < nadded;) {
        if (word_up(added[i][0]) >= l && word_down(added[i][1]) <= h) {
            added[i][0] = added[nadded - 1][0];
            added[i][1] = added[nadded - 1][1];
            nadded--;
        } else {
            i++;
        }
    }
    mhi_unlock(&G->roots);
}

MH_API int mh_gc_is_disabled(void) { return atomic_load(&G->disabled) > 0 || boehm_dont_gc(); }

MH_API long mh_gc_get_percent(void) { return atomic_load(&G->percent); }

MH_API int mh_gc_collect_a_little(void) {
    mhi_gc_init();
    maybe_collect(0);
    return mhi_gc_sweep_some(8) != 0;
}

/* The goal rises so that bytes more can be allocated before the next
 * cycle (until that cycle sets its own goal). */
MH_API int mh_gc_expand(size_t bytes) {
    mhi_gc_init();
    uint64_t limit = atomic_load(&G->limit), heap = atomic_load(&G->heap_bytes);
    if (limit && (bytes > limit || heap > limit - bytes)) {
        errno = ENOMEM;
        return -1;
    }
    mhi_lock(&G->lock);
    uint64_t want = G->live_bytes + atomic_load(&G->alloc_since) + bytes;
    if (want > atomic_load(&G->next_gc)) atomic_store(&G->next_gc, want);
    mhi_unlock(&G->lock);
    return 0;
}

/* The start callback, and the allocation count when the last cycle
 * began (for mh_gc_bytes_since_gc). */
static _Atomic(mh_gc_start_fn) start_callback;
static _Atomic uint64_t alloc_at_cycle;

/* In gc_collect, with the world lock held, before anything else. */
static void cycle_begins(void) {
    atomic_store(&alloc_at_cycle, atomic_load(&G->alloc_bytes));
    mhi_gc_boehm_cycle_begins();
    mh_gc_start_fn fn = atomic_load(&start_callback);
    if (fn) fn();
}

MH_API void mh_gc_set_start_callback(mh_gc_start_fn fn) { atomic_store(&start_callback, fn); }
MH_API mh_gc_start_fn mh_gc_get_start_callback(void) { return atomic_load(&start_callback); }

/* Whether the calling thread holds the world lock through mh_gc_lock. */
static __thread bool api_locked;
bool mhi_gc_api_locked(void) { return api_locked; }

MH_API void mh_gc_lock(void) {
    (void)mhi_gc_thread_get(); /* (registering takes the world lock) */
    mhi_lock(&G->world);
    api_locked = true;
}
MH_API void mh_gc_unlock(void) {
    api_locked = false;
    mhi_unlock(&G->world);
}

MH_API int mh_gc_thread_registered(void) { return mhi_gc_self->registered; }

/* (gcworld.c stores the signal once, when the first thread registers;
 * until then it is the one that will be installed) */
MH_API int mh_gc_stop_signal(void) {
    int sig = __atomic_load_n(&G->stop_signal, __ATOMIC_ACQUIRE);
    if (sig) return sig;
    long o = mhi_option(MHI_OPT_gc_signal);
    return o > 0 ? (int)o : mhi_os_stop_signal_default();
}

MH_API int mh_gc_is_heap_ptr(const void *p) { return mhi_gc_span_of(p) != NULL; }

typedef struct {
    uintptr_t a;
    bool found;
} find_range_ctx;

static void find_range(void *ctx, uintptr_t lo, uintptr_t hi) {
    find_range_ctx *f = ctx;
    if (f->a >= word_up(lo) && f->a < word_down(hi)) f->found = true;
}

MH_API int mh_gc_is_visible(const void *p) {
    uintptr_t a = (uintptr_t)p;
    if (a & (sizeof(uintptr_t) - 1)) return 0;
    mhi_span *s = mhi_gc_span_of(p);
    if (s) return s->gc_kind != MHI_GC_NOSCAN && mhi_gc_object_index(s, a) >= 0;
    /* the calling thread's stack */
    mhi_gc_thread *t = mhi_gc_self;
    uintptr_t lo = t->stack_lo, hi = t->stack_hi;
    if (!t->registered && !mhi_os_stack_bounds(&lo, &hi)) lo = hi = 0;
    if (a >= lo && a < hi) return 1;
    /* added roots */
    find_range_ctx f = {a, false};
    mhi_lock(&G->roots);
    for (size_t i = 0; i < nadded && !f.found; i++) find_range(&f, added[i][0], added[i][1]);
    mhi_unlock(&G->roots);
    if (f.found) return 1;
    /* static data (less mheap's address map, which is never scanned) and
     * this thread's TLS */
    uintptr_t xlo = (uintptr_t)&mhi_arena_map, xhi = xlo + sizeof mhi_arena_map;
    if (a >= xlo && a < xhi) return 0;
    mhi_os_each_data_range(false, find_range, &f);
    if (!f.found) mhi_os_each_data_range(true, find_range, &f);
    if (f.found) return 1;
    /* malloc's blocks, when collections scan them */
    if (mhi_option(MHI_OPT_gc_scan_malloc)) {
        mhi_span *m = mhi_heap_span(a);
        if (m && mhi_span_state(m) == MHI_SPAN_INUSE && mhi_span_kind(m) != MHI_KIND_GC) return 1;
    }
    return 0;
}

/* Free slots of the spans on the lists (no thread's cache): exact for
 * swept spans; an unswept one counts its dead objects as allocated. */
static void count_free(mhi_span *s, void *ctx) {
    uint64_t *nfree = ctx;
    uint32_t used = mhi_gc_count_allocated(s);
    if (s->nelems > used) *nfree += (uint64_t)(s->nelems - used) * mhi_gc_elem_size(s);
}

MH_API size_t mh_gc_free_bytes(size_t *heap_bytes) {
    uint64_t nfree = 0;
    mhi_lock(&G->lock);
    mhi_gc_each_span_locked(count_free, &nfree);
    uint64_t heap = atomic_load(&G->heap_bytes);
    mhi_unlock(&G->lock);
    if (heap_bytes) *heap_bytes = (size_t)heap;
    return (size_t)nfree;
}

MH_API uint64_t mh_gc_alloc_bytes(void) { return atomic_load(&G->alloc_bytes); }

MH_API uint64_t mh_gc_bytes_since_gc(void) {
    uint64_t at = atomic_load(&alloc_at_cycle), now = atomic_load(&G->alloc_bytes);
    return now > at ? now - at : 0;
}
