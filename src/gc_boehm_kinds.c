/* gc_boehm_kinds.c - bdwgc's object kinds, mark procedures and the rest
 * of gc/gc_mark.h (what include/gc/gc_mark.h says) on mheap's kinds and
 * descriptors (src/gc.h).
 *
 * bdwgc numbers its kinds 0 (pointer-free), 1 (normal), 2
 * (uncollectable), 3 (pointer-free uncollectable), then those GC_new_kind
 * makes; mheap's are scanned, pointer-free, uncollectable, then the made
 * ones, so a made kind k of mheap is bdwgc's k + 1. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GC_ATTR_NONNULL(argnum)
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "../include/gc/gc_mark.h"

#include "gc.h"
#include "print.h"

#define GCB_EXPORT __attribute__((visibility("default")))

static_assert(sizeof(struct GC_ms_entry) == sizeof(mhi_gc_mse) &&
                  offsetof(struct GC_ms_entry, mse_start) == offsetof(mhi_gc_mse, start) &&
                  offsetof(struct GC_ms_entry, mse_descr) == offsetof(mhi_gc_mse, descr),
              "bdwgc's mark stack entry is mheap's");
static_assert(GC_DS_LENGTH == MHI_GC_DS_LENGTH && GC_DS_BITMAP == MHI_GC_DS_BITMAP &&
                  GC_DS_PROC == MHI_GC_DS_PROC && GC_DS_PER_OBJECT == MHI_GC_DS_PER_OBJECT &&
                  GC_DS_TAG_BITS == MHI_GC_DS_TAG_BITS &&
                  GC_LOG_MAX_MARK_PROCS == MHI_GC_LOG_MAX_PROCS &&
                  GC_INDIR_PER_OBJ_BIAS == MHI_GC_INDIR_BIAS,
              "bdwgc's descriptors are mheap's");

void *mhi_gc_boehm_oom(size_t size); /* gc_boehm.c */
static inline void *got(void *p, size_t size) { return p ? p : mhi_gc_boehm_oom(size); }

/* bdwgc's kind k as mheap's, or -1 if there is no such kind. */
static int kind_of(int k) {
    if (k == GC_I_PTRFREE) return MHI_GC_NOSCAN;
    if (k == GC_I_NORMAL) return MHI_GC_SCAN;
    if (k == 2 || k == 3) return MHI_GC_UNCOLL;
    if (k < 4 || k - 1 >= atomic_load_explicit(&mhi_gc_.nkinds, memory_order_acquire)) return -1;
    return k - 1;
}

static int kind_must(int k, const char *who) {
    int mk = kind_of(k);
    if (mk < 0) mhi_fatal("%s: no kind %d (GC_new_kind makes kinds)", who, k);
    return mk;
}

/* ---- kinds and procedures ---- */

/* bdwgc's free-list array: one pointer per granule count up to its
 * largest small object, and one more. */
#define FREE_LIST_WORDS 129

GCB_EXPORT void **GC_CALL GC_new_free_list_inner(void) {
    void **fl = mh_gc_malloc_uncollectable(FREE_LIST_WORDS * sizeof(void *));
    if (!fl) mhi_fatal("GC_new_free_list: out of memory");
    return fl;
}
GCB_EXPORT void **GC_CALL GC_new_free_list(void) { return GC_new_free_list_inner(); }

GCB_EXPORT unsigned GC_CALL GC_new_kind_inner(void **free_list, GC_word descr, int adjust,
                                              int clear) {
    (void)free_list;
    if ((adjust | clear) & ~1) mhi_fatal("GC_new_kind: the last two arguments must be 0 or 1");
    int k = mhi_gc_kind_new(descr, adjust != 0, clear != 0);
    if (k < 0) mhi_fatal("GC_new_kind: too many kinds (mheap has room for %d)", MHI_GC_MAXKINDS - MHI_GC_NKINDS);
    return (unsigned)k + 1;
}
GCB_EXPORT unsigned GC_CALL GC_new_kind(void **free_list, GC_word descr, int adjust, int clear) {
    return GC_new_kind_inner(free_list, descr, adjust, clear);
}

GCB_EXPORT unsigned GC_CALL GC_new_proc_inner(GC_mark_proc proc) {
    /* (the two shapes are one: the entry layouts are checked above) */
    int i = mhi_gc_proc_new((mhi_gc_mark_proc)(void (*)(void))proc);
    if (i < 0) mhi_fatal("GC_new_proc: too many mark procedures (at most %d)", MHI_GC_MAX_PROCS - 1);
    return (unsigned)i;
}
GCB_EXPORT unsigned GC_CALL GC_new_proc(GC_mark_proc proc) { return GC_new_proc_inner(proc); }

/* ---- from mark procedures ---- */

GCB_EXPORT struct GC_ms_entry *GC_CALL GC_mark_and_push(void *obj, struct GC_ms_entry *msp,
                                                        struct GC_ms_entry *lim, void **src) {
    (void)lim, (void)src;
    if (!mhi_gc_mark_push((uintptr_t)obj))
        mhi_fatal_at("GC_mark_and_push called outside a mark procedure", obj);
    return msp;
}

GCB_EXPORT struct GC_ms_entry *GC_CALL GC_signal_mark_stack_overflow(struct GC_ms_entry *msp) {
    mhi_gc_mse *r = mhi_gc_mark_overflow((mhi_gc_mse *)msp);
    if (!r) mhi_fatal_at("GC_signal_mark_stack_overflow called outside a mark procedure", msp);
    return (struct GC_ms_entry *)r;
}

static void push_range(void *bottom, void *top, const char *who) {
    if (!mhi_gc_mark_push_range((uintptr_t)bottom, (uintptr_t)top)) mhi_fatal_at(who, bottom);
}
GCB_EXPORT void GC_CALL GC_push_all(void *bottom, void *top) {
    push_range(bottom, top, "GC_push_all called outside a mark");
}
GCB_EXPORT void GC_CALL GC_push_all_eager(void *bottom, void *top) {
    push_range(bottom, top, "GC_push_all_eager called outside a mark");
}
GCB_EXPORT void GC_CALL GC_push_conditional(void *bottom, void *top, int all) {
    (void)all; /* (no incremental mode: every page counts as dirty) */
    push_range(bottom, top, "GC_push_conditional called outside a mark");
}

/* The procedure's storage is bdwgc's variable GC_push_other_roots
 * (gc_boehm_abi.c), which a program may also write directly; each cycle
 * reads it as it begins.  Set here, it takes effect at once. */
GC_push_other_roots_proc mhi_gc_boehm_other_roots_fn(void);
void mhi_gc_boehm_set_other_roots_fn(GC_push_other_roots_proc fn);

GCB_EXPORT void GC_CALL GC_set_push_other_roots(GC_push_other_roots_proc fn) {
    mhi_gc_boehm_set_other_roots_fn(fn);
    atomic_store(&mhi_gc_other_roots, (void (*)(void))fn);
}
GCB_EXPORT GC_push_other_roots_proc GC_CALL GC_get_push_other_roots(void) {
    return mhi_gc_boehm_other_roots_fn();
}

/* ---- mark bits ---- */

/* The span and index of the object starting at p, or NULL. */
static mhi_span *object_at(const void *p, uint32_t *index, const char *who) {
    mhi_span *s = mhi_gc_span_of(p);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)p) : -1;
    if (i < 0 || s->base + (uintptr_t)i * mhi_gc_elem_size(s) != (uintptr_t)p)
        mhi_fatal_at(who, p);
    *index = (uint32_t)i;
    return s;
}

GCB_EXPORT int GC_CALL GC_is_marked(const void *p) {
    uint32_t i;
    mhi_span *s = object_at(p, &i, "GC_is_marked: not the start of an object");
    return (int)(__atomic_load_n(&mhi_gc_marks(s)[i >> 6], __ATOMIC_RELAXED) >> (i & 63) & 1);
}
/* Outside a mark only a span waiting for its sweep has mark bits that
 * mean anything (they say what the sweep keeps); a swept span's are
 * clear until the next mark, which must find them so.  Outside a mark the
 * GC lock is held across the test and the change, so no sweep comes
 * between them (a mark procedure runs in the pause, which holds it). */
static void change_bit(const void *p, bool set, const char *who) {
    bool marking = mhi_gc_marking();
    if (!marking) mhi_lock(&mhi_gc_.lock);
    uint32_t i;
    mhi_span *s = object_at(p, &i, who);
    uint64_t bit = 1ULL << (i & 63), *w = &mhi_gc_marks(s)[i >> 6];
    if (marking || atomic_load_explicit(&s->sweepgen, memory_order_relaxed) !=
                       atomic_load_explicit(&mhi_gc_.sweepgen, memory_order_relaxed)) {
        if (set) __atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
        else __atomic_fetch_and(w, ~bit, __ATOMIC_RELAXED);
    }
    if (!marking) mhi_unlock(&mhi_gc_.lock);
}

GCB_EXPORT void GC_CALL GC_set_mark_bit(const void *p) {
    change_bit(p, true, "GC_set_mark_bit: not the start of an object");
}
GCB_EXPORT void GC_CALL GC_clear_mark_bit(const void *p) {
    change_bit(p, false, "GC_clear_mark_bit: not the start of an object");
}

GCB_EXPORT int GC_CALL GC_get_kind_and_size(const void *p, size_t *psize) {
    uint32_t i;
    mhi_span *s = object_at(p, &i, "GC_get_kind_and_size: not the start of an object");
    if (psize) *psize = mhi_gc_elem_size(s);
    int k = s->gc_kind;
    return k == MHI_GC_SCAN ? GC_I_NORMAL : k == MHI_GC_NOSCAN ? GC_I_PTRFREE : k == MHI_GC_UNCOLL ? 2 : k + 1;
}

GCB_EXPORT size_t GC_CALL GC_get_debug_header_size(void) { return 0; }

/* ---- allocation ---- */

GCB_EXPORT void *GC_CALL GC_generic_malloc(size_t lb, int k) {
    int mk = kind_must(k, "GC_generic_malloc");
    return got(mhi_gc_alloc(lb, mk), lb);
}
GCB_EXPORT void *GC_CALL GC_generic_malloc_ignore_off_page(size_t lb, int k) {
    return GC_generic_malloc(lb, k);
}
GCB_EXPORT void *GC_CALL GC_malloc_kind(size_t lb, int k) { return GC_generic_malloc(lb, k); }
GCB_EXPORT void *GC_CALL GC_malloc_kind_global(size_t lb, int k) { return GC_generic_malloc(lb, k); }
GCB_EXPORT void *GC_CALL GC_generic_or_special_malloc(size_t lb, int k) {
    return GC_generic_malloc(lb, k);
}
GCB_EXPORT void *GC_CALL GC_debug_generic_or_special_malloc(size_t lb, int k, const char *s, int i) {
    (void)s, (void)i;
    return GC_generic_malloc(lb, k);
}

GCB_EXPORT void *GC_CALL GC_generic_malloc_uncollectable(size_t lb, int k) {
    (void)kind_must(k, "GC_generic_malloc_uncollectable");
    return got(mh_gc_malloc_uncollectable(lb), lb);
}

/* For a program that hands out objects of its own lists (bdwgc 8.3's
 * gc_mark.h; 8.2's libgc.so.1 exports them too). */
GCB_EXPORT void GC_CALL GC_incr_bytes_allocd(size_t n) { mhi_gc_count_bytes(n, 0); }
GCB_EXPORT void GC_CALL GC_incr_bytes_freed(size_t n) { mhi_gc_count_bytes(0, n); }

/* About a page of objects, as bdwgc hands out a block's free list (one
 * object when they are large), linked through their first word. */
GCB_EXPORT void GC_CALL GC_generic_malloc_many(size_t lb, int k, void **result) {
    int mk = kind_must(k, "GC_generic_malloc_many");
    size_t size = lb < sizeof(void *) ? sizeof(void *) : lb;
    size_t n = size >= 4096 ? 1 : 8192 / size;
    if (n > 64) n = 64;
    void *head = NULL;
    for (size_t i = 0; i < n; i++) {
        void *p = mhi_gc_alloc(size, mk);
        if (!p) break;
        *(void **)p = head;
        head = p;
    }
    *result = got(head, size);
}

/* GC_dump prints mheap's statistics (bdwgc prints its heap's blocks). */
GCB_EXPORT void GC_CALL GC_dump(void) { mh_stats_print(1); }
GCB_EXPORT void GC_CALL GC_dump_named(const char *name) {
    if (name) mhi_printf(1, "mheap heap dump: %s\n", name);
    mh_stats_print(1);
}
/* (no regions to list: the arenas are in the statistics) */
GCB_EXPORT void GC_CALL GC_dump_regions(void) { mh_stats_print(1); }
GCB_EXPORT void GC_CALL GC_dump_finalization(void) {
    mhi_printf(1, "mheap finalization: %zu ready to run\n", mh_gc_finalizers_pending());
}
