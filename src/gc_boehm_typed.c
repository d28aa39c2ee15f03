/* gc_boehm_typed.c - bdwgc's gc_typed.h (include/gc/gc_typed.h) on the
 * kinds and mark procedures of gc/gc_mark.h.
 *
 * Typed objects are one kind, marked by a per-object descriptor: the
 * object's last word.  That descriptor is the one GC_make_descriptor
 * returned (a LENGTH for a run of pointer words from the start, a BITMAP
 * up to 62 words, else a procedure, mark_long, whose env is the address
 * of a record of the layout's 62-word BITMAP pieces), or for an array a
 * procedure, mark_array, whose env is the bytes from the first element
 * left to mark to the array's trailer (element size, element
 * descriptor), written after the last element. */
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GC_ATTR_NONNULL(argnum)
#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "../include/gc/gc_mark.h"
#include "../include/gc/gc_typed.h"

#include "mheap_gc.h"

#define GCB_EXPORT __attribute__((visibility("default")))

#define WORD sizeof(GC_word)
#define BITMAP_BITS (GC_WORDSZ - GC_DS_TAG_BITS) /* words a BITMAP describes */
#define ARRAY_BATCH 64                           /* elements per call of mark_array */

void *mhi_gc_boehm_oom(size_t size); /* gc_boehm.c */

/* A layout longer than a BITMAP: the descriptors of its pieces (0 for a
 * piece without pointers). */
typedef struct {
    GC_word n;
    GC_word d[];
} long_layout;

static unsigned typed_kind, long_proc, array_proc;
static _Atomic int ready; /* 0, 1 while one thread makes the kind, 2 */

/* Push (start, d), as a mark procedure does. */
static inline struct GC_ms_entry *push(struct GC_ms_entry *msp, struct GC_ms_entry *lim,
                                       void *start, GC_word d) {
    if (++msp >= lim) msp = GC_signal_mark_stack_overflow(msp);
    msp->mse_start = start;
    msp->mse_descr.w = d;
    return msp;
}

static struct GC_ms_entry *mark_long(GC_word *addr, struct GC_ms_entry *msp,
                                     struct GC_ms_entry *lim, GC_word env) {
    const long_layout *l = (const long_layout *)env;
    for (GC_word j = 0; j < l->n; j++)
        if (l->d[j]) msp = push(msp, lim, addr + j * BITMAP_BITS, l->d[j]);
    return msp;
}

static struct GC_ms_entry *mark_array(GC_word *addr, struct GC_ms_entry *msp,
                                      struct GC_ms_entry *lim, GC_word env) {
    const GC_word *trailer = (const GC_word *)((char *)addr + env);
    GC_word lb = trailer[0], d = trailer[1], n, i;
    if (!lb) return msp; /* (not written yet) */
    n = env / lb;
    for (i = 0; i < n && i < ARRAY_BATCH; i++) msp = push(msp, lim, (char *)addr + i * lb, d);
    if (i < n) msp = push(msp, lim, (char *)addr + i * lb, GC_MAKE_PROC(array_proc, env - i * lb));
    return msp;
}

static void typed_init(void) {
    if (atomic_load_explicit(&ready, memory_order_acquire) == 2) return;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&ready, &expect, 1)) {
        while (atomic_load_explicit(&ready, memory_order_acquire) != 2) sched_yield();
        return;
    }
    /* (-WORD | PER_OBJECT, plus the object's size: its last word) */
    typed_kind = GC_new_kind(GC_new_free_list(), (GC_word)0 - WORD + GC_DS_PER_OBJECT, 1, 1);
    long_proc = GC_new_proc(mark_long);
    array_proc = GC_new_proc(mark_array);
    atomic_store_explicit(&ready, 2, memory_order_release);
}

/* The BITMAP descriptor of count (<= BITMAP_BITS) words of bm from word
 * from, or 0 if none is a pointer. */
static GC_word piece(const GC_word *bm, size_t from, size_t count) {
    GC_word d = 0;
    for (size_t i = 0; i < count; i++)
        if (GC_get_bit(bm, from + i)) d |= (GC_word)1 << (GC_WORDSZ - 1 - i);
    return d ? d | GC_DS_BITMAP : 0;
}

GCB_EXPORT GC_descr GC_CALL GC_make_descriptor(const GC_word *bm, size_t len) {
    size_t used = 0; /* words up to the last pointer */
    for (size_t i = len; i > 0; i--)
        if (GC_get_bit(bm, i - 1)) {
            used = i;
            break;
        }
    if (!used) return 0;
    size_t run = 0;
    while (run < used && GC_get_bit(bm, run)) run++;
    if (run == used) return used * WORD | GC_DS_LENGTH;
    if (used <= BITMAP_BITS) return piece(bm, 0, used);
    typed_init();
    size_t n = (used + BITMAP_BITS - 1) / BITMAP_BITS;
    /* (never freed, as bdwgc's are not: one per type) */
    long_layout *l = mh_gc_malloc_uncollectable(sizeof *l + n * WORD);
    if (!l || (GC_word)l >> (GC_WORDSZ - GC_LOG_MAX_MARK_PROCS - GC_DS_TAG_BITS))
        return used * WORD | GC_DS_LENGTH; /* (conservative) */
    l->n = n;
    for (size_t j = 0; j < n; j++) {
        size_t from = j * BITMAP_BITS;
        l->d[j] = piece(bm, from, used - from < BITMAP_BITS ? used - from : BITMAP_BITS);
    }
    return GC_MAKE_PROC(long_proc, (GC_word)l);
}

/* size bytes of elements of lb bytes laid out as d, when no typed object
 * is needed: no pointer (a zeroed pointer-free object), or every word of
 * an element a pointer; NULL with *done 0 otherwise. */
static void *plain(size_t size, size_t lb, GC_descr d, int *done) {
    *done = 1;
    if (d == 0) {
        void *p = GC_malloc_atomic(size);
        if (p) memset(p, 0, size);
        return p;
    }
    if ((d & GC_DS_TAGS) == GC_DS_LENGTH && d >= lb) return GC_malloc(size);
    *done = 0;
    return NULL;
}

/* A typed object of lb bytes and extra words more, d in its last word. */
static void *typed(size_t lb, size_t extra, GC_descr d) {
    if (lb > SIZE_MAX - (extra + 1) * WORD) return mhi_gc_boehm_oom(SIZE_MAX);
    typed_init();
    void *p = GC_generic_malloc(lb + (extra + 1) * WORD, (int)typed_kind);
    if (p) ((GC_word *)((char *)p + GC_size(p)))[-1] = d;
    return p;
}

GCB_EXPORT void *GC_CALL GC_malloc_explicitly_typed(size_t lb, GC_descr d) {
    int done;
    void *p = plain(lb, lb, d, &done);
    return done ? p : typed(lb, 0, d);
}

GCB_EXPORT void *GC_CALL GC_malloc_explicitly_typed_ignore_off_page(size_t lb, GC_descr d) {
    return GC_malloc_explicitly_typed(lb, d);
}

GCB_EXPORT void *GC_CALL GC_calloc_explicitly_typed(size_t n, size_t lb, GC_descr d) {
    if (lb && n > SIZE_MAX / lb) return mhi_gc_boehm_oom(SIZE_MAX);
    size_t bytes = n * lb;
    int done;
    void *p = plain(bytes, lb, d, &done);
    if (done) return p;
    if (n == 1) return typed(lb, 0, d);
    if (lb % WORD) return GC_malloc(bytes); /* (misaligned elements: conservative) */
    if ((GC_word)bytes >> (GC_WORDSZ - GC_LOG_MAX_MARK_PROCS - GC_DS_TAG_BITS))
        return mhi_gc_boehm_oom(bytes);
    /* The descriptor goes in last: until then the array marks nothing
     * (it is zeroed). */
    GC_word *a = typed(bytes, 2, 0);
    if (a) {
        GC_word *trailer = (GC_word *)((char *)a + bytes);
        trailer[0] = lb;
        trailer[1] = d;
        ((GC_word *)((char *)a + GC_size(a)))[-1] = GC_MAKE_PROC(array_proc, (GC_word)bytes);
    }
    return a;
}
