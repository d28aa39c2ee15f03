/* gc.h - the garbage-collected heap (mheap_gc.h): structures shared by
 * gcheap.c (spans, allocation, sweeping, reclaim), gcmark.c (roots and
 * marking), gcworld.c (threads, stopping the world) and gc.c (the cycle,
 * pacing, statistics, the API).
 *
 * ---- Objects ----
 * GC spans are page-heap spans of kind MHI_KIND_GC, of malloc's size
 * classes (one object per span above 32 KiB), in three kinds: scanned,
 * pointer-free (never scanned) and uncollectable (scanned as roots, never
 * swept), and the kinds made later (mhi_gc_kind_new: bdwgc's GC_new_kind),
 * each marked by its descriptor (below).  Each span has two side bitmaps, one bit per object (span.h):
 * gc_alloc and gc_mark (reached in the last mark); no header is added to
 * objects.  Slot i is allocated iff i < gc_freeindex or its alloc bit is
 * set: a thread allocating from its current span advances gc_freeindex
 * past free slots (found through gc_cache) and writes no bit.  A span
 * that leaves a thread's cache swept has the slots below its freeindex
 * written into its alloc bits and its freeindex reset to 0; one that
 * needs sweeping keeps both until it is swept.  A conservative pointer
 * into a span finds its object by reciprocal division and counts only if
 * the object is allocated.
 *
 * ---- Sweep generations (the seed's sweepgen, relative to h = sweepgen) ----
 *   s->sweepgen == h      swept for this cycle (or new since it began)
 *   s->sweepgen == h - 1  being swept
 *   otherwise             needs sweeping (marked by the last cycle)
 * h advances by 2 at the end of each mark, in the pause.  Threads cache
 * one span per class and kind (cur) across a cycle: such a span is not
 * swept while cached; at the pause its freeindex is recorded (gc_snap,
 * gc_snapped), and when it is swept, objects allocated from there on count
 * as live (they were allocated after the mark), and so does the one before
 * it (its owner may have stopped before forming its address).  Every uncached span is
 * swept before the next mark begins (the collection finishes sweeping
 * first), so mark bits are clear at mark time except on spans that stayed
 * cached, whose old marks only keep objects one cycle longer.  (A span
 * a thread gives up after that sweep finished, or that the collector takes
 * from a blocked thread in the pause, waits unswept, perhaps several
 * generations behind, until it is swept.)
 *
 * ---- Locks (os.h ranks) ----
 * mhi_gc_.world  one collection at a time, and the list of threads.
 * mhi_gc_.roots  the added root ranges.
 * mhi_gc_.lock   every list of GC spans, the bitmap allocator, and the
 *                fields of uncached spans; held by the collector while the
 *                world is stopped, so no stopped thread holds it.
 * A thread's cur spans are its own: its fast path touches them with no
 * lock (their alloc bits and freeindex). */
#ifndef MHEAP_GC_INTERNAL_H
#define MHEAP_GC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fixalloc.h"
#include "mheap_gc.h"
#include "os.h"
#include "sizeclass.h"
#include "span.h"

/* Span kinds.  A thread caches spans of the first MHI_GC_NKINDS only;
 * the kinds made by mhi_gc_kind_new (MHI_GC_NKINDS and up) allocate
 * under the GC lock from uncached spans. */
enum mhi_gc_kind {
    MHI_GC_SCAN = 0,
    MHI_GC_NOSCAN = 1,
    MHI_GC_UNCOLL = 2,
    MHI_GC_NKINDS = 3,
    MHI_GC_MAXKINDS = 24
};

/* ---- Mark descriptors (bdwgc's, gc/gc_mark.h) ----
 * A word saying how to mark an object or a range, tagged in its low two
 * bits:
 *   LENGTH      the word is a length in bytes: scan that many from the
 *               start, conservatively;
 *   BITMAP      bit 63 - i (i < 62) set: word i from the start may be a
 *               pointer (the others are not looked at);
 *   PROC        call mark procedure (d >> 2) & 63 with env d >> 8;
 *   PER_OBJECT  the real descriptor is in the object, at offset d & ~3
 *               (d >= 0), or (d < 0) in the record the object's first word
 *               points to, at minus (d & ~3) less 16 bytes from it.
 * A kind's descriptor, plus the object's size when the kind adjusts it,
 * marks each object of the kind (a LENGTH 0 marks nothing). */
enum {
    MHI_GC_DS_LENGTH = 0,
    MHI_GC_DS_BITMAP = 1,
    MHI_GC_DS_PROC = 2,
    MHI_GC_DS_PER_OBJECT = 3,
    MHI_GC_DS_TAGS = 3,
    MHI_GC_DS_TAG_BITS = 2,
    MHI_GC_LOG_MAX_PROCS = 6,
    MHI_GC_MAX_PROCS = 1 << MHI_GC_LOG_MAX_PROCS,
    MHI_GC_INDIR_BIAS = 0x10
};

/* A mark stack entry, as bdwgc's struct GC_ms_entry: a start and the
 * descriptor for what follows it. */
typedef struct mhi_gc_mse {
    uintptr_t start, descr;
} mhi_gc_mse;

/* A mark procedure (bdwgc's GC_mark_proc): called by a marker, in the
 * pause, with the start of an object (or what an entry named), the top
 * entry of a stack with room for at least one more, its end, and the
 * descriptor's env.  It pushes entries (++msp), or marks through
 * mhi_gc_mark_push; it calls mhi_gc_mark_overflow for a slot when msp
 * reaches lim.  Returns the top entry. */
typedef mhi_gc_mse *(*mhi_gc_mark_proc)(uintptr_t *addr, mhi_gc_mse *msp, mhi_gc_mse *lim,
                                        uintptr_t env);

/* Each kind's descriptor, and whether the object's size is added to it
 * and objects are zeroed (written once, before the kind is counted in
 * nkinds; the three first: LENGTH, adjusted). */
typedef struct {
    uintptr_t descr;
    bool adjust, clear;
} mhi_gc_kind_info;
extern mhi_gc_kind_info mhi_gc_kinds[MHI_GC_MAXKINDS];

/* The span lists of one class and kind (lock): swept with free objects,
 * swept and full, needing sweeping. */
typedef struct {
    mhi_span_list partial, full, unswept;
} mhi_gc_lists;

/* Bitmap words per span (the most objects a class has is 512): a span's
 * alloc bits, then its mark bits. */
#define MHI_GC_BITWORDS 8
static inline uint64_t *mhi_gc_marks(const mhi_span *s) { return s->gc_alloc + MHI_GC_BITWORDS; }

/* A registered thread. */
typedef struct mhi_gc_thread mhi_gc_thread;
struct mhi_gc_thread {
    mhi_span *cur[MHI_NUM_CLASSES][MHI_GC_NKINDS]; /* owned current spans, or &mhi_gc_span_empty */
    mhi_gc_thread *next, *prev;                     /* the thread list (world lock) */
    uintptr_t id;                                   /* pthread_t */
    uintptr_t stack_lo, stack_hi;                   /* hi: the stack's base */
    _Atomic uintptr_t sp;  /* saved stack pointer while stopped or blocked */
    _Atomic int state;     /* MHI_GC_RUNNING or MHI_GC_BLOCKED */
    _Atomic uint32_t acked; /* the last stop it answered (gcworld.c) */
    bool registered;
    uint32_t flush_seen;   /* the last flush generation it obeyed */
    int ntls;
    uintptr_t tls[8][2];   /* static TLS blocks [lo, hi) */
};
enum { MHI_GC_RUNNING = 0, MHI_GC_BLOCKED = 1 };

typedef struct {
    mhi_lock_t world, roots, lock;
    _Atomic uint32_t sweepgen; /* h (written in the pause, under lock) */
    /* Uncached spans by kind and class (lock): lists[k][c], an array of
     * MHI_NUM_CLASSES per kind, from the OS when the kind is made.  Class
     * 0 holds the spans of one object (above 32 KiB), on full or
     * unswept.  nkinds: kinds made (written under the lock, release). */
    mhi_gc_lists *lists[MHI_GC_MAXKINDS];
    _Atomic int nkinds;
    _Atomic uint64_t kinds_sys;
    uint64_t unswept_pages; /* pages on the unswept lists */
    uint64_t sweep_ppb;     /* pages to sweep per byte taken, 16.16 (lock) */
    uint64_t sweep_debt;    /* owed, 16.16 (lock) */
    mhi_fixalloc bitsalloc; /* bitmaps of small spans (lock) */
    _Atomic uint64_t bits_sys;
    bool inited;
    /* Pacing (lock for writes; relaxed reads on slow paths). */
    _Atomic uint64_t heap_bytes;  /* bytes of GC spans */
    _Atomic uint64_t alloc_since; /* bytes handed to allocators since the last mark */
    _Atomic uint64_t next_gc;     /* start a cycle when live + alloc_since reach it */
    uint64_t live_bytes;          /* marked by the last cycle */
    uint64_t roots_bytes;         /* root bytes scanned by the last cycle */
    uint64_t final_bytes;         /* of live_bytes, marked only for finalization */
    _Atomic int disabled;         /* mh_gc_disable nesting */
    _Atomic long percent;
    _Atomic uint64_t limit;
    _Atomic int collecting;       /* a cycle is running (for allocation's trigger) */
    _Atomic uint32_t flush_gen;   /* advanced to ask every thread to give up its spans */
    /* Statistics. */
    uint64_t cycles, pause_total_ns, pause_max_ns, pause_last_ns, markers;
    uint64_t pause_hist[MH_GC_PAUSE_BUCKETS];
    _Atomic uint64_t alloc_bytes, swept_bytes, reclaimed_bytes, freed_bytes;
    uint64_t nthreads;
    mhi_gc_thread *threads;
    int stop_signal;
    int64_t start_ns;
} mhi_gc;

extern mhi_gc mhi_gc_;
extern mhi_span mhi_gc_span_empty;
extern mhi_gc_thread mhi_gc_thread_none;
extern __thread mhi_gc_thread *mhi_gc_self __attribute__((tls_model("initial-exec")));

/* ---- gcheap.c ---- */
void mhi_gc_heap_init_locked(void);
/* The slow path of a small allocation: a new current span of class c and
 * kind k for the calling (registered) thread, then the object; NULL if
 * memory (or the limit) ran out.  *need_gc is set when a collection might
 * help (the caller collects and retries). */
void *mhi_gc_refill(mhi_gc_thread *t, size_t c, int k, bool *need_gc);
void *mhi_gc_alloc_large(size_t size, int k, bool *need_gc);
void *mhi_gc_alloc_uncollectable(size_t c);
/* An object of class c of a made kind k (>= MHI_GC_NKINDS), from an
 * uncached span under the lock, zeroed when the kind clears or is marked
 * by a procedure or a per-object descriptor. */
void *mhi_gc_alloc_kind_small(size_t c, int k, bool *need_gc);
/* A new kind (see mhi_gc_kinds), or -1 when MHI_GC_MAXKINDS are made or
 * its lists cannot be had. */
int mhi_gc_kind_new(uintptr_t descr, bool adjust, bool clear);
/* t's current spans go back to the lists (t is the caller, or stopped at
 * a safe point: in a blocked region, or gone). */
void mhi_gc_release_thread_spans(mhi_gc_thread *t);
void mhi_gc_release_thread_spans_locked(mhi_gc_thread *t);
/* Sweep at most max spans of any class (0 left: returns 0). */
size_t mhi_gc_sweep_some(size_t max);
/* Sweep every span that needs it (before a mark). */
void mhi_gc_finish_sweep(void);
/* In the pause, after the mark: record the cached spans' freeindex, move
 * every uncached span to the unswept lists, advance h (lock held). */
void mhi_gc_start_sweep_locked(void);
void mhi_gc_free_object(void *p);
/* The GC span holding p, or NULL. */
mhi_span *mhi_gc_span_of(const void *p);
/* The object index of p in its span s, or -1 if p is in no allocated object. */
long mhi_gc_object_index(mhi_span *s, uintptr_t p);
/* The size of each object of s. */
static inline size_t mhi_gc_elem_size(const mhi_span *s) {
    return s->elemsize ? s->elemsize : s->npages << MHI_PAGE_SHIFT;
}
/* Call fn for every GC span (lock held, world stopped). */
void mhi_gc_each_span_locked(void (*fn)(mhi_span *s, void *ctx), void *ctx);
/* Add to the bytes allocated (and to those counting towards the next
 * collection) and to the bytes freed explicitly. */
void mhi_gc_count_bytes(uint64_t allocd, uint64_t freed);
/* Call fn(obj, size, ctx) for each object the last mark left live or
 * allocated since, uncollectable ones included (bdwgc's reachable
 * objects).  The world lock held by the caller (mh_gc_lock), so no
 * collection runs and the thread list stays; takes the GC lock, so fn
 * must not allocate or free.  Objects other threads allocate meanwhile
 * may or may not be seen. */
void mhi_gc_each_object(void (*fn)(void *obj, size_t size, void *ctx), void *ctx);
/* Check the GC heap's invariants; returns the number of violations. */
size_t mhi_gc_verify(void);

/* ---- gcmark.c ---- */
/* Mark from every root (world stopped, lock held); returns the bytes
 * marked, the root bytes scanned in *roots and the markers in *used. */
uint64_t mhi_gc_mark_locked(const uintptr_t (*data)[2], size_t ndata, uint64_t *roots,
                            unsigned *used);
/* Before a mark, outside the pause (world lock): choose the markers and
 * start the threads it needs. */
void mhi_gc_mark_prepare(void);
/* Mark [lo, hi)'s referents (not the object holding it; with self, not
 * words pointing into the object at self either), and mark obj with what
 * it reaches: finalization, after the mark (one marker).  Bytes marked so
 * are added to the next mhi_gc_mark_extra(). */
void mhi_gc_mark_contents(uintptr_t lo, uintptr_t hi, uintptr_t self);
void mhi_gc_mark_object(void *obj);
void mhi_gc_mark_word(uintptr_t w); /* a conservative word, as a root */
uint64_t mhi_gc_mark_extra(void);
void mhi_gc_mark_settle(void); /* after a drop for want of stack: rescan */
/* A new mark procedure's index (1 up: 0 is none), or -1 when
 * MHI_GC_MAX_PROCS - 1 are registered. */
int mhi_gc_proc_new(mhi_gc_mark_proc proc);
/* From a mark procedure, on the marker calling it (false if the calling
 * thread is not marking): mark the object w points into, queuing it for
 * its kind's marking. */
bool mhi_gc_mark_push(uintptr_t w);
/* From a mark procedure whose stack is full (msp at or past lim): the
 * entries below msp move to the marker's own stack; returns the slot to
 * write the next entry into (NULL if the thread is not marking). */
mhi_gc_mse *mhi_gc_mark_overflow(mhi_gc_mse *msp);
/* Is the calling thread running a mark procedure or the other-roots hook? */
bool mhi_gc_marking(void);
/* From a mark procedure or the other-roots hook: scan [lo, hi)
 * (aligned inward to words) conservatively (false: not marking). */
bool mhi_gc_mark_push_range(uintptr_t lo, uintptr_t hi);
/* Called by the collecting thread in each mark after the roots, to push
 * more (mhi_gc_mark_push, mhi_gc_mark_push_range): bdwgc's
 * GC_set_push_other_roots.  It runs in the pause: no allocation, no
 * locks. */
extern _Atomic(void (*)(void)) mhi_gc_other_roots;
/* In the child of fork: the marker threads are gone. */
void mhi_gc_mark_fork_child(void);

/* ---- gcfinal.c, gclinks.c, gcfinrun.c (lock held unless said) ---- */
/* After the mark, in the pause: clear links, queue ready finalizers and
 * keep their objects; returns how many were queued. */
uint64_t mhi_gc_finalize_locked(void);
/* Of what the last mhi_gc_finalize_locked marked outside its steps: the
 * bytes live as roots' are, and those kept only until finalizers run. */
void mhi_gc_final_extra_locked(uint64_t *rooted, uint64_t *final);
void mhi_gc_sweep_specials_locked(mhi_span *s, const uint64_t *live);
void mhi_gc_free_specials_locked(mhi_span *s, size_t off, bool all);
size_t mhi_gc_verify_specials_locked(mhi_span *s);
uint64_t mhi_gc_final_live_locked(uint64_t *queued);
bool mhi_gc_span_has_specials(const mhi_span *s); /* (gc lock) */
void mhi_gc_finalizers_queued(void); /* after the cycle, no lock */
void mhi_gc_final_fork_child(void);
/* At a cycle's start and end, the world running, the world lock held. */
void mhi_gc_final_cycle_begins(void);
void mhi_gc_final_cycle_end(void);
uint64_t mhi_gc_final_sys(void); /* its metadata's bytes from the OS (any lock) */

/* ---- gcworld.c ---- */
mhi_gc_thread *mhi_gc_thread_get(void);
void mhi_gc_stop_world(void);
void mhi_gc_start_world(void);
void mhi_gc_fork_prepare(void);
void mhi_gc_fork_parent(void);
void mhi_gc_fork_child(void);
void mhi_gc_fork_prepare_lock(void); /* the GC lock, at its rank */
void mhi_gc_fork_parent_lock(void);

/* ---- gc.c ---- */
void mhi_gc_collect(bool forced, bool release);
/* An object of size bytes of any kind k (the three first: as
 * mh_gc_malloc and friends), with pacing and the retries after a
 * collection; NULL with errno ENOMEM. */
void *mhi_gc_alloc(size_t size, int k);
void mhi_gc_init(void);
/* Does the calling thread hold the world lock through mh_gc_lock? */
bool mhi_gc_api_locked(void);
/* Fill the collector's fields of the main statistics (gc_*). */
void mhi_gc_stats_fill(mh_stats_t *st);

/* ---- gcscanmalloc.c ---- */
/* Call scan(lo, hi, ctx) for each range of memory that may hold live
 * objects of mheap's malloc heap: in-use spans of small objects (less the
 * objects known free) and of large objects; never GC spans, page runs or
 * free spans.  For the mark, with the world stopped and the GC lock held:
 * takes no lock (threads the collector does not stop keep calling malloc
 * and free meanwhile, and a stopped thread may hold any of malloc's
 * locks), and reads the arena map and span fields without one, using them
 * only to choose ranges inside the committed pages of an arena. */
void mhi_gc_scan_malloc(void (*scan)(uintptr_t lo, uintptr_t hi, void *ctx), void *ctx);

/* The words of a span's bitmaps, the set bits past its objects in word w,
 * the bits of word w below the span's freeindex (allocated whatever their
 * alloc bits say), and how many objects a bitmap marks. */
static inline uint32_t mhi_gc_words(const mhi_span *s) { return (s->nelems + 63) / 64; }
static inline uint64_t mhi_gc_tail(const mhi_span *s, uint32_t w) {
    uint32_t lo = w * 64;
    return s->nelems >= lo + 64 ? 0 : ~0ULL << (s->nelems - lo);
}
static inline uint64_t mhi_gc_below(uint32_t fi, uint32_t w) {
    uint32_t lo = w * 64;
    return fi >= lo + 64 ? ~0ULL : fi <= lo ? 0 : ~0ULL >> (64 - (fi - lo));
}
static inline uint32_t mhi_gc_freeindex(const mhi_span *s) {
    return atomic_load_explicit(&s->gc_freeindex, memory_order_relaxed);
}
static inline uint32_t mhi_gc_count(const mhi_span *s, const uint64_t *bits) {
    uint32_t n = 0;
    for (uint32_t w = 0; w < mhi_gc_words(s); w++)
        n += (uint32_t)__builtin_popcountll(bits[w] & ~mhi_gc_tail(s, w));
    return n;
}
/* Allocated objects of s (its alloc bits and the slots below freeindex). */
static inline uint32_t mhi_gc_count_allocated(const mhi_span *s) {
    uint32_t n = 0, fi = mhi_gc_freeindex(s);
    for (uint32_t w = 0; w < mhi_gc_words(s); w++)
        n += (uint32_t)__builtin_popcountll((s->gc_alloc[w] | mhi_gc_below(fi, w)) &
                                            ~mhi_gc_tail(s, w));
    return n;
}
/* Is slot i (< nelems) of s allocated? */
static inline bool mhi_gc_allocated(const mhi_span *s, uint32_t i) {
    /* (acquire: pairs with the release that resets freeindex once the
     * alloc bits hold the slots below it) */
    return i < atomic_load_explicit(&s->gc_freeindex, memory_order_acquire) ||
           (__atomic_load_n(&s->gc_alloc[i >> 6], __ATOMIC_RELAXED) >> (i & 63) & 1);
}

/* Zero a fresh object of n bytes (a class size: a multiple of 16). */
static inline void mhi_gc_zero(void *p, size_t n) {
    char *q = p;
    if (n > 64) {
        memset(q, 0, n);
        return;
    }
    __builtin_memset(q, 0, 16); /* (constant sizes: inline stores) */
    if (n > 16) __builtin_memset(q + 16, 0, 16);
    if (n > 32) __builtin_memset(q + 32, 0, 16);
    if (n > 48) __builtin_memset(q + 48, 0, 16);
}

/* The fast path: take the next free object of the thread's current span
 * of class c and kind k from its allocation cache, or NULL.  No bitmap is
 * written: the slot is allocated once freeindex passes it. */
static inline void *mhi_gc_pop(mhi_gc_thread *t, size_t c, int k) {
    mhi_span *s = t->cur[c][k];
    uint64_t cache = s->gc_cache;
    if (MHI_UNLIKELY(!cache)) return NULL;
    uint32_t z = (uint32_t)__builtin_ctzll(cache);
    uint32_t i = mhi_gc_freeindex(s) + z;
    s->gc_cache = (cache >> z) >> 1;
    atomic_store_explicit(&s->gc_freeindex, i + 1, memory_order_relaxed);
    void *p = (char *)s->base + (size_t)i * s->elemsize;
    if (k == MHI_GC_SCAN && s->needzero) mhi_gc_zero(p, s->elemsize);
    return p;
}

#endif
