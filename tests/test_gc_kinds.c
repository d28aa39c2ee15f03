/* test_gc_kinds.c - bdwgc's kinds, mark procedures and typed objects on
 * mheap's collector (include/gc/gc_mark.h, include/gc/gc_typed.h,
 * src/gc_boehm_kinds.c, src/gc_boehm_typed.c, the descriptors of
 * src/gcmark.c).  tests/gc_kinds.cmake runs it again with four markers.
 *
 *   descriptors  GC_make_descriptor's words for no pointer, a run from
 *                the start, a bitmap, a layout past 62 words
 *   typed        a word the bitmap calls a non-pointer, holding the only
 *                reference to an object, does not keep it; pointer words
 *                do; run descriptors; layouts past 62 words; a large
 *                typed object; arrays (past one batch of elements, and of
 *                a long layout); objects come zeroed
 *   procs        a kind marked by a procedure: what it pushes with
 *                GC_MARK_AND_PUSH and as raw entries (a range, a bitmap)
 *                lives, what it leaves out is freed; its env arrives; the
 *                object is marked while its procedure runs; a procedure
 *                pushing more entries than its stack holds
 *                (GC_signal_mark_stack_overflow) loses none; a long chain
 *                of such objects, marked by every marker
 *   many         GC_generic_malloc_many for each sort of kind
 *   misc         kinds of GC_malloc's objects, mark bits, the other-roots
 *                hook, and the misuse messages
 *
 * "Freed" checks need an optimised build (Debug and sanitizer builds keep
 * stale pointers in frames; they only report). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "../include/gc.h" /* (by path: src/gc.h is the collector's own) */
#include "../include/gc/gc_mark.h"
#include "../include/gc/gc_typed.h"

#include "check.h"
#include "child.h"
#include "mheap.h"
#include "mheap_gc.h"

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif

/* A pointer no scan takes for one. */
#define HIDE(p) (~(uintptr_t)(p))
#define SHOW(h) ((void *)~(h))

static void collect(void) { mh_gc_collect(1); }
/* (not inlined: the pointer shown exists only in this frame, never in a
 * register of the caller's) */
static __attribute__((noinline)) int alive_h(uintptr_t h) {
    return mh_gc_base(SHOW(h), NULL) == SHOW(h);
}

static __attribute__((noinline)) void scrub_stack(void) {
    char buf[131072];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Expect the object hidden in h freed by now (optimised builds only). */
#define CHECK_FREED(h, what)                                                                \
    do {                                                                                    \
        if (OPTIMIZED) CHECK(!alive_h(h));                                                  \
        else if (alive_h(h)) fprintf(stderr, "%s: kept (unoptimised build: not checked)\n", what); \
    } while (0)

static __attribute__((noinline)) uintptr_t fresh(void) {
    void *p = GC_malloc(16);
    REQUIRE(p != NULL);
    return HIDE(p);
}

/* ---- descriptors ---- */

typedef struct {
    void *p0;
    uintptr_t n1;
    void *p2;
    uintptr_t n3;
} T; /* pointers at words 0 and 2 */

static GC_descr t_descr(void) {
    GC_word bm[GC_BITMAP_SIZE(T)] = {0};
    GC_set_bit(bm, GC_WORD_OFFSET(T, p0));
    GC_set_bit(bm, GC_WORD_OFFSET(T, p2));
    return GC_make_descriptor(bm, GC_WORD_LEN(T));
}

#define LONG_WORDS 100 /* pointers at 0, 70, 99; word 65 is not one */
static GC_descr long_descr(void) {
    GC_word bm[(LONG_WORDS + GC_WORDSZ - 1) / GC_WORDSZ] = {0};
    GC_set_bit(bm, 0);
    GC_set_bit(bm, 70);
    GC_set_bit(bm, 99);
    return GC_make_descriptor(bm, LONG_WORDS);
}

static void test_descriptors(void) {
    GC_word bm[2] = {0};
    CHECK_EQ(GC_make_descriptor(bm, 100), 0);
    bm[0] = 0x7; /* words 0..2 */
    CHECK_EQ(GC_make_descriptor(bm, 64), 3 * sizeof(GC_word) | GC_DS_LENGTH);
    CHECK_EQ(GC_make_descriptor(bm, 2), 2 * sizeof(GC_word) | GC_DS_LENGTH);
    /* bdwgc's bitmap: the most significant bit for word 0 */
    CHECK_EQ(t_descr(), ((GC_word)1 << 63 | (GC_word)1 << 61) | GC_DS_BITMAP);
    CHECK_EQ(long_descr() & GC_DS_TAGS, GC_DS_PROC);
}

/* ---- typed objects ---- */

static T *root_t;
static GC_word *root_run, *root_long, *root_large;
static T *root_array;
static GC_word *root_long_array;
static uintptr_t t_kept, t_dropped, run_kept, run_dropped, long_kept[2], long_dropped;
static uintptr_t large_kept, large_dropped, arr_kept[2], arr_dropped, larr_kept, larr_dropped;

#define ARRAY_N 200 /* past one batch of elements (64) */
#define LARGE_BYTES (64 << 10)

static __attribute__((noinline)) void make_typed(void) {
    root_t = GC_malloc_explicitly_typed(sizeof(T), t_descr());
    REQUIRE(root_t != NULL);
    CHECK(GC_size(root_t) >= sizeof(T));
    CHECK(root_t->p0 == NULL && root_t->n1 == 0 && root_t->p2 == NULL && root_t->n3 == 0);
    t_kept = fresh();
    t_dropped = fresh();
    root_t->p2 = SHOW(t_kept);
    root_t->n1 = (uintptr_t)SHOW(t_dropped); /* a word the bitmap calls no pointer */

    GC_word bm[1] = {0x3}; /* words 0 and 1: a LENGTH */
    root_run = GC_malloc_explicitly_typed(4 * sizeof(GC_word), GC_make_descriptor(bm, 2));
    REQUIRE(root_run != NULL);
    run_kept = fresh();
    run_dropped = fresh();
    root_run[1] = (GC_word)SHOW(run_kept);
    root_run[3] = (GC_word)SHOW(run_dropped);

    root_long = GC_malloc_explicitly_typed(LONG_WORDS * sizeof(GC_word), long_descr());
    REQUIRE(root_long != NULL);
    long_kept[0] = fresh();
    long_kept[1] = fresh();
    long_dropped = fresh();
    root_long[70] = (GC_word)SHOW(long_kept[0]);
    root_long[99] = (GC_word)SHOW(long_kept[1]);
    root_long[65] = (GC_word)SHOW(long_dropped);

    root_large = GC_malloc_explicitly_typed(LARGE_BYTES, long_descr());
    REQUIRE(root_large != NULL);
    large_kept = fresh();
    large_dropped = fresh();
    root_large[99] = (GC_word)SHOW(large_kept);
    root_large[65] = (GC_word)SHOW(large_dropped);

    root_array = GC_calloc_explicitly_typed(ARRAY_N, sizeof(T), t_descr());
    REQUIRE(root_array != NULL);
    int zero = 1;
    for (int i = 0; i < ARRAY_N; i++)
        zero &= root_array[i].p0 == NULL && root_array[i].n1 == 0 && root_array[i].p2 == NULL;
    CHECK(zero);
    arr_kept[0] = fresh();
    arr_kept[1] = fresh();
    arr_dropped = fresh();
    root_array[0].p0 = SHOW(arr_kept[0]);
    root_array[150].p2 = SHOW(arr_kept[1]);
    root_array[100].n1 = (uintptr_t)SHOW(arr_dropped);

    root_long_array = GC_calloc_explicitly_typed(3, LONG_WORDS * sizeof(GC_word), long_descr());
    REQUIRE(root_long_array != NULL);
    larr_kept = fresh();
    larr_dropped = fresh();
    root_long_array[2 * LONG_WORDS + 70] = (GC_word)SHOW(larr_kept);
    root_long_array[1 * LONG_WORDS + 65] = (GC_word)SHOW(larr_dropped);
}

static void test_typed(void) {
    make_typed();
    scrub_stack();
    collect();
    collect();
    CHECK(alive_h(t_kept));
    CHECK_FREED(t_dropped, "typed: the non-pointer word's object");
    CHECK(alive_h(run_kept));
    CHECK_FREED(run_dropped, "typed: the word past the run");
    CHECK(alive_h(long_kept[0]) && alive_h(long_kept[1]));
    CHECK_FREED(long_dropped, "typed: word 65 of the long layout");
    CHECK(alive_h(large_kept));
    CHECK_FREED(large_dropped, "typed: word 65 of the large object");
    CHECK(alive_h(arr_kept[0]) && alive_h(arr_kept[1]));
    CHECK_FREED(arr_dropped, "typed: a non-pointer word of an element");
    CHECK(alive_h(larr_kept));
    CHECK_FREED(larr_dropped, "typed: word 65 of an element of the long array");
    /* the pointers are still there (nothing overwrote them) */
    CHECK(root_t->p2 == SHOW(t_kept) && root_array[150].p2 == SHOW(arr_kept[1]));

    /* no pointer, and every word a pointer: plain objects, zeroed */
    GC_word none[1] = {0};
    GC_word *a = GC_malloc_explicitly_typed(64, GC_make_descriptor(none, 1));
    REQUIRE(a != NULL);
    CHECK_EQ(GC_get_kind_and_size(a, NULL), GC_I_PTRFREE);
    CHECK(a[0] == 0 && a[7] == 0);
    GC_word all[1] = {0xf};
    GC_word *b = GC_malloc_explicitly_typed(32, GC_make_descriptor(all, 4));
    REQUIRE(b != NULL);
    CHECK_EQ(GC_get_kind_and_size(b, NULL), GC_I_NORMAL);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- kinds marked by a procedure ---- */

/* a: GC_MARK_AND_PUSH; c: a raw LENGTH entry for the field; d: a raw
 * BITMAP entry naming its first word; b and e: not pushed. */
typedef struct {
    void *a, *b, *c, *d, *e;
} K;

static unsigned k_kind;
static atomic_long proc_calls, proc_bad_env, proc_unmarked, proc_other_thread;
static pthread_t main_thread;

static struct GC_ms_entry *k_mark(GC_word *addr, struct GC_ms_entry *msp,
                                  struct GC_ms_entry *lim, GC_word env) {
    K *k = (K *)addr;
    atomic_fetch_add(&proc_calls, 1);
    if (env != 42) atomic_fetch_add(&proc_bad_env, 1);
    if (!GC_is_marked(k)) atomic_fetch_add(&proc_unmarked, 1);
    if (!pthread_equal(pthread_self(), main_thread)) atomic_fetch_add(&proc_other_thread, 1);
    msp = GC_MARK_AND_PUSH(k->a, msp, lim, (void **)&k->a);
    if (++msp >= lim) msp = GC_signal_mark_stack_overflow(msp);
    msp->mse_start = &k->c;
    msp->mse_descr.w = sizeof(void *) | GC_DS_LENGTH;
    if (++msp >= lim) msp = GC_signal_mark_stack_overflow(msp);
    msp->mse_start = &k->d;
    msp->mse_descr.w = (GC_word)1 << 63 | GC_DS_BITMAP;
    return msp;
}

/* An object whose procedure pushes one raw entry per slot of a
 * pointer-free table: many more than its stack holds. */
#define WIDE 3000
typedef struct {
    void **table;
} W;
static unsigned w_kind;

static struct GC_ms_entry *w_mark(GC_word *addr, struct GC_ms_entry *msp,
                                  struct GC_ms_entry *lim, GC_word env) {
    (void)env;
    W *w = (W *)addr;
    if (!w->table) return msp;
    msp = GC_MARK_AND_PUSH(w->table, msp, lim, NULL);
    for (int i = 0; i < WIDE; i++) {
        if (++msp >= lim) msp = GC_signal_mark_stack_overflow(msp);
        msp->mse_start = &w->table[i];
        msp->mse_descr.w = sizeof(void *);
    }
    return msp;
}

static K *root_k;
static W *root_w;
static uintptr_t k_a, k_b, k_c, k_d, k_e, w_objs[WIDE];

static __attribute__((noinline)) void make_proc_objects(void) {
    root_k = GC_generic_malloc(sizeof(K), (int)k_kind);
    REQUIRE(root_k != NULL);
    CHECK(root_k->a == NULL && root_k->e == NULL); /* (a procedure's kind is zeroed) */
    size_t size = 0;
    CHECK_EQ(GC_get_kind_and_size(root_k, &size), k_kind);
    CHECK(size >= sizeof(K));
    k_a = fresh();
    k_b = fresh();
    k_c = fresh();
    k_d = fresh();
    k_e = fresh();
    root_k->a = SHOW(k_a);
    root_k->b = SHOW(k_b);
    root_k->c = SHOW(k_c);
    root_k->d = SHOW(k_d);
    root_k->e = SHOW(k_e);

    root_w = GC_generic_malloc(sizeof(W), (int)w_kind);
    REQUIRE(root_w != NULL);
    void **table = GC_malloc_atomic(WIDE * sizeof(void *)); /* (never scanned itself) */
    REQUIRE(table != NULL);
    for (int i = 0; i < WIDE; i++) {
        w_objs[i] = fresh();
        table[i] = SHOW(w_objs[i]);
    }
    root_w->table = table;
}

/* A chain of procedure-marked objects, linked through a, each with a
 * scanned payload (so the live heap is big enough for every marker). */
#define CHAIN 20000
static K *chain;
static __attribute__((noinline)) void make_chain(void) {
    for (int i = 0; i < CHAIN; i++) {
        K *k = GC_generic_malloc(sizeof(K), (int)k_kind);
        REQUIRE(k != NULL);
        k->a = chain;
        k->c = GC_malloc(64);
        REQUIRE(k->c != NULL);
        *(long *)k->c = i;
        chain = k;
    }
}

static void test_procs(void) {
    void **fl = GC_new_free_list();
    REQUIRE(fl != NULL);
    CHECK(fl[0] == NULL && fl[128] == NULL);
    unsigned proc = GC_new_proc(k_mark);
    k_kind = GC_new_kind(fl, GC_MAKE_PROC(proc, 42), 0, 1);
    CHECK(k_kind > GC_I_NORMAL);
    w_kind = GC_new_kind(GC_new_free_list(), GC_MAKE_PROC(GC_new_proc_inner(w_mark), 0), 0, 1);
    CHECK(w_kind != k_kind);

    make_proc_objects();
    scrub_stack();
    long before = atomic_load(&proc_calls);
    collect();
    collect();
    CHECK(atomic_load(&proc_calls) > before);
    CHECK_EQ(atomic_load(&proc_bad_env), 0);
    CHECK_EQ(atomic_load(&proc_unmarked), 0);
    CHECK(alive_h(k_a));
    CHECK(alive_h(k_c));
    CHECK(alive_h(k_d));
    CHECK_FREED(k_b, "procs: the field not pushed (b)");
    CHECK_FREED(k_e, "procs: the field not pushed (e)");
    int lost = 0;
    for (int i = 0; i < WIDE; i++) lost += !alive_h(w_objs[i]);
    CHECK_EQ(lost, 0);
    CHECK(alive_h(HIDE(root_w->table)));

    make_chain();
    collect();
    collect(); /* (the second with the live heap the first found) */
    long n = 0, bad = 0;
    for (K *k = chain; k; k = k->a, n++)
        if (mh_gc_base(k->c, NULL) != k->c || *(long *)k->c != CHAIN - 1 - n) bad++;
    CHECK_EQ(n, CHAIN);
    CHECK_EQ(bad, 0);
    mh_gc_stats_t st;
    mh_gc_stats_get(&st, sizeof st);
    long opt = mh_option_get("gc_markers");
    if (opt > 1) CHECK(st.markers > 1);
    fprintf(stderr, "procs: %llu markers in the last mark, %ld procedure calls on marker threads\n",
            (unsigned long long)st.markers, atomic_load(&proc_other_thread));
    chain = NULL;
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- GC_generic_malloc_many ---- */

static void many(int kind, size_t lb, int zeroed) {
    void *list = NULL;
    GC_generic_malloc_many(lb, kind, &list);
    REQUIRE(list != NULL);
    int n = 0, bad = 0;
    for (void *p = list; p; p = GC_NEXT(p), n++) {
        size_t size = 0;
        bad += GC_get_kind_and_size(p, &size) != kind || size < lb;
        if (zeroed)
            for (size_t i = sizeof(void *); i < lb; i++) bad += ((char *)p)[i] != 0;
        bad += n > 10000;
        if (bad) break;
    }
    CHECK(n >= 1);
    CHECK_EQ(bad, 0);
}

static void test_many(void) {
    many(GC_I_NORMAL, 48, 1);
    many(GC_I_PTRFREE, 48, 0);
    many(GC_I_NORMAL, 5000, 1);
    many((int)k_kind, sizeof(K), 1);
}

/* ---- the rest ---- */

static void *mapped; /* a page no collection scans */
static uintptr_t other_obj;
static void GC_CALLBACK push_mapped(void) {
    GC_push_all(mapped, (char *)mapped + sizeof(void *));
}

static __attribute__((noinline)) void hide_in_mapped(void) {
    other_obj = fresh();
    *(void **)mapped = SHOW(other_obj);
}

static void mark_and_push_outside(void) { (void)GC_mark_and_push((void *)0x1000, NULL, NULL, NULL); }
static void bad_kind(void) { (void)GC_generic_malloc(16, 99); }
static void realloc_typed(uintptr_t p) { (void)GC_REALLOC((void *)p, 4096); }

static void test_misc(void) {
    void *n = GC_malloc(24), *a = GC_malloc_atomic(24);
    CHECK_EQ(GC_get_kind_and_size(n, NULL), GC_I_NORMAL);
    CHECK_EQ(GC_get_kind_and_size(a, NULL), GC_I_PTRFREE);
    void *g = GC_generic_malloc(24, GC_I_NORMAL);
    CHECK_EQ(GC_get_kind_and_size(g, NULL), GC_I_NORMAL);
    void *u = GC_generic_malloc_uncollectable(24, GC_I_NORMAL);
    CHECK(u != NULL);
    GC_free(u);
    CHECK_EQ(GC_get_debug_header_size(), 0);

    /* mark bits: clear once swept, and left so */
    collect();
    CHECK_EQ(GC_is_marked(n), 0);
    GC_set_mark_bit(n);
    CHECK_EQ(GC_is_marked(n), 0);

    /* the other-roots hook */
    mapped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mapped != MAP_FAILED);
    GC_set_push_other_roots(push_mapped);
    CHECK(GC_get_push_other_roots() == push_mapped);
    hide_in_mapped();
    scrub_stack();
    collect();
    CHECK(alive_h(other_obj));
    GC_set_push_other_roots(NULL);
    scrub_stack();
    collect();
    CHECK_FREED(other_obj, "misc: the object only the other-roots hook held");
    munmap(mapped, 4096);

    child_expect_abort0("GC_mark_and_push outside", mark_and_push_outside,
                        "GC_mark_and_push called outside a mark procedure", 0x1000);
    /* A typed object cannot be realloc'd to another place (bdwgc: not to
     * be passed to GC_realloc): misuse, named. */
    GC_word bm[1] = {0};
    GC_set_bit(bm, 0);
    GC_descr d3 = GC_make_descriptor(bm, 3);
    void *typed_obj = GC_malloc_explicitly_typed(64, d3);
    REQUIRE(typed_obj != NULL);
    child_expect_abort("GC_REALLOC of a typed object", realloc_typed, (uintptr_t)typed_obj,
                       "realloc of a typed object", (uintptr_t)typed_obj);
    char out[512];
    int st = child_run0(bad_kind, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strcmp(out, "mheap: GC_generic_malloc: no kind 99 (GC_new_kind makes kinds)\n") == 0);
    (void)a;
}

int main(void) {
    main_thread = pthread_self();
    GC_INIT();
    test_descriptors();
    test_typed();
    test_procs();
    test_many();
    test_misc();
    return check_done("test_gc_kinds");
}
