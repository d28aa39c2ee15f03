/* test_gc_boehm_abi.c - src/gc_boehm_abi.c in-process (so that the
 * sanitizer builds run it too; tests/gcabi/ runs libgc-built binaries):
 * bdwgc's variables read where bdwgc reads them, its environment
 * variables at the start, the notes said once, and the refusals. */
#define _GNU_SOURCE
#define GC_ATTR_DEPRECATED /* (the variables are what is tested) */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../include/gc.h"
#include "../include/gc/gc_mark.h"
#include "check.h"
#include "child.h"
#include "mheap_gc.h"

/* bdwgc's, not declared by mheap's gc.h (libmheap.so defines them) */
typedef void (*push_proc)(void);
void GC_set_push_other_roots(push_proc);
push_proc GC_get_push_other_roots(void);
void GC_push_all(void *, void *);
void *GC_gcj_malloc(size_t, void *);

static char notes[16][200];
static int nnotes;
static void *warn_alloc;
static void GC_CALLBACK my_warn(char *msg, GC_word arg) {
    (void)arg;
    /* (a warning procedure may allocate; the first ones come while the
     * heap starts, inside the calling thread's registration) */
    warn_alloc = GC_malloc(16);
    if (nnotes < 16) snprintf(notes[nnotes], sizeof notes[0], "%s", msg);
    nnotes++;
}
static int noted(const char *start) {
    int n = 0;
    for (int i = 0; i < nnotes && i < 16; i++)
        if (strncmp(notes[i], start, strlen(start)) == 0) n++;
    return n;
}

static void test_environment(void) {
    /* read as the heap starts: this is the first GC call */
    CHECK_EQ(mh_gc_get_percent(), 20);
    CHECK_EQ(GC_free_space_divisor, 5);
    CHECK_EQ(GC_get_free_space_divisor(), 5);
    CHECK_EQ(mh_option_get("gctrace"), 0);
    CHECK_EQ(noted("mheap: GC_DUMP_REGULARLY is not honoured"), 1);
    CHECK_EQ(noted("mheap: GC_NO_BLACKLIST_WARNING"), 0);
    CHECK(GC_stackbottom != NULL);
    CHECK(GC_parallel >= 0 && GC_parallel < 8); /* (the markers less one) */
}

static void test_dont_gc(void) {
    GC_word n = GC_gc_no;
    GC_gcollect();
    CHECK_EQ(GC_gc_no, n + 1);
    CHECK_EQ(GC_get_gc_no(), GC_gc_no);
    GC_dont_gc = 1;
    CHECK(GC_is_disabled() && mh_gc_is_disabled());
    GC_gcollect();
    mh_gc_collect(0); /* (mheap's own call too) */
    for (int i = 0; i < 16384; i++) (void)GC_malloc(1024); /* 16 MiB: past the goal */
    CHECK_EQ(GC_gc_no, n + 1);
    GC_dont_gc = 0;
    CHECK(!GC_is_disabled());
    GC_disable();
    GC_disable();
    CHECK_EQ(GC_dont_gc, 2);
    GC_enable();
    GC_enable();
    GC_enable(); /* (unmatched: stays 0) */
    CHECK_EQ(GC_dont_gc, 0);
    GC_gcollect();
    CHECK_EQ(GC_gc_no, n + 2);
}

static void test_divisor(void) {
    long pct = mh_gc_get_percent();
    GC_free_space_divisor = 4; /* applied as the next collection starts */
    GC_gcollect();
    CHECK_EQ(mh_gc_get_percent(), 25);
    GC_free_space_divisor = 10; /* or when the getter reads it */
    CHECK_EQ(GC_get_free_space_divisor(), 10);
    CHECK_EQ(mh_gc_get_percent(), 10);
    mh_gc_set_percent(50); /* set another way: the variable follows */
    CHECK_EQ(GC_get_free_space_divisor(), 2);
    CHECK_EQ(GC_free_space_divisor, 2);
    GC_free_space_divisor = 0;
    GC_gcollect();
    CHECK_EQ(mh_gc_get_percent(), 50);
    CHECK_EQ(noted("mheap: GC_free_space_divisor 0 is not honoured"), 1);
    mh_gc_set_percent(pct);
    (void)GC_get_free_space_divisor();
}

static char oom_answer[32];
static void *GC_CALLBACK my_oom(size_t n) {
    (void)n;
    return oom_answer;
}

static void test_oom(void) {
    GC_oom_fn = my_oom;
    CHECK(GC_get_oom_fn() == my_oom);
    GC_set_max_heap_size(64 << 20);
    void *p = GC_malloc(128 << 20);
    __asm__("" : "+r"(p));
    CHECK(p == (void *)oom_answer);
    GC_oom_fn = NULL; /* (bdwgc would call it: here, NULL) */
    errno = 0;
    CHECK(GC_malloc(128 << 20) == NULL && errno == ENOMEM);
    GC_set_max_heap_size(0);
    GC_oom_fn = my_oom;
    GC_max_retries = 2;
    GC_set_max_heap_size(64 << 20);
    (void)GC_malloc(128 << 20);
    GC_set_max_heap_size(0);
    GC_max_retries = 0;
    CHECK_EQ(noted("mheap: GC_max_retries is not honoured"), 1);
}

static void test_non_gc_bytes(void) {
    GC_word before = GC_non_gc_bytes;
    void *u = GC_malloc_uncollectable(1000);
    CHECK(GC_non_gc_bytes >= before + 1000 && GC_non_gc_bytes < before + 2048);
    u = GC_realloc(u, 5000);
    CHECK(GC_non_gc_bytes >= before + 5000 && GC_non_gc_bytes < before + 8192);
    GC_free(u);
    CHECK_EQ(GC_non_gc_bytes, before);
    void *c = GC_malloc(1000); /* (collectable: not counted) */
    GC_free(c);
    CHECK_EQ(GC_non_gc_bytes, before);
}

/* A block of mheap's malloc (not scanned) holding the only pointer to an
 * object, pushed by a GC_push_other_roots procedure. */
static void **hidden;
static int pushes;
static void push_hidden(void) {
    pushes++;
    GC_push_all(hidden, hidden + 1);
}
static GC_word link_word;
static void __attribute__((noinline)) make_hidden(void) {
    char *obj = GC_malloc_atomic(64);
    strcpy(obj, "pushed");
    *hidden = obj;
    link_word = GC_HIDE_POINTER(obj);
    CHECK_EQ(GC_general_register_disappearing_link((void **)&link_word, obj), GC_SUCCESS);
}

static int resizes;
static void GC_CALLBACK on_resize(GC_word n) {
    (void)n;
    resizes++;
}

static void test_hooks(void) {
    hidden = mh_malloc(sizeof *hidden);
    make_hidden();
    push_proc old = GC_get_push_other_roots();
    CHECK(old != NULL);
    GC_set_push_other_roots(push_hidden);
    GC_gcollect();
    GC_gcollect();
    CHECK(pushes >= 2);
    CHECK(link_word != 0 && strcmp(GC_REVEAL_POINTER(link_word), "pushed") == 0);
    GC_set_push_other_roots(old);
    mh_free(hidden);

    GC_on_heap_resize = on_resize;
    void *keep = GC_malloc(8 << 20);
    GC_gcollect();
    CHECK(resizes >= 1 && GC_base(keep) == keep);
    GC_on_heap_resize = NULL;

    struct GC_prof_stats_s st;
    memset(&st, 0, sizeof st);
    CHECK_EQ(GC_get_prof_stats(&st, sizeof st), sizeof st);
    CHECK_EQ(st.gc_no, GC_gc_no);
    CHECK(st.heapsize_full >= 8 << 20);
    GC_word big[14];
    CHECK_EQ(GC_get_prof_stats((struct GC_prof_stats_s *)big, sizeof big), sizeof st);
    CHECK_EQ(big[13], (GC_word)-1); /* (what this layer does not know) */
}

static int same_reports;
static void same_print(void *p, void *q) {
    (void)p, (void)q;
    same_reports++;
}

static void test_calls(void) {
    char *p = GC_memalign(256, 100);
    CHECK(p && ((uintptr_t)p & 255) == 0 && GC_base(p) != NULL);
    void *q = NULL;
    CHECK_EQ(GC_posix_memalign(&q, 3, 8), EINVAL);
    CHECK_EQ(GC_posix_memalign(&q, 64, 8), 0);
    CHECK(q && ((uintptr_t)q & 63) == 0);

    GC_same_obj_print_proc = same_print;
    char *a = GC_malloc(64), *b = GC_malloc(64);
    (void)GC_same_obj(a + 8, a);
    CHECK_EQ(same_reports, 0);
    (void)GC_same_obj(a, b);
    CHECK_EQ(same_reports, 1);

    GC_set_find_leak(1);
    GC_set_find_leak(1);
    GC_find_leak = 0;
    CHECK_EQ(noted("mheap: GC_find_leak is not supported"), 1);
    GC_no_dls = 1; /* (seen after a collection) */
    GC_gcollect();
    GC_no_dls = 0;
    CHECK_EQ(noted("mheap: GC_no_dls is not honoured"), 1);
}

/* ---- GC_enumerate_reachable_objects_inner ---- */

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif
#define NKEPT 300
static void *kept[NKEPT];        /* reachable: small, large, uncollectable, pointer-free */
static uintptr_t dropped[64];    /* unreachable, kept as numbers (~address) */
typedef struct {
    int seen[NKEPT], dropped_seen, bad, total;
} enum_ctx;
static void GC_CALLBACK enum_proc(void *obj, size_t size, void *cd) {
    enum_ctx *e = cd;
    e->total++;
    if (size == 0 || GC_base(obj) != obj || GC_size(obj) != size) e->bad++;
    for (int i = 0; i < NKEPT; i++)
        if (kept[i] == obj) e->seen[i]++;
    for (int i = 0; i < 64; i++)
        if (~dropped[i] == (uintptr_t)obj) e->dropped_seen++;
}
static __attribute__((noinline)) void enum_drop(void) {
    for (int i = 0; i < 64; i++) dropped[i] = ~(uintptr_t)GC_malloc(48);
}
static void *GC_CALLBACK enum_locked(void *cd) {
    GC_enumerate_reachable_objects_inner(enum_proc, cd);
    return cd;
}
/* Without GC_THREADS (this file) GC_alloc_lock is empty, as in bdwgc, and
 * the call takes the lock itself; with the lock held by
 * GC_call_with_alloc_lock it must not take it again. */
static void enumerate(enum_ctx *e) {
    memset(e, 0, sizeof *e);
    GC_alloc_lock();
    GC_enumerate_reachable_objects_inner(enum_proc, e);
    GC_alloc_unlock();
    enum_ctx again;
    memset(&again, 0, sizeof again);
    CHECK(GC_call_with_alloc_lock(enum_locked, &again) == &again);
    CHECK(again.total >= NKEPT && again.bad == 0);
}
static void check_kept(const enum_ctx *e, const char *when) {
    int once = 0;
    for (int i = 0; i < NKEPT; i++) once += e->seen[i] == 1;
    CHECK_EQ(once, NKEPT);
    CHECK_EQ(e->bad, 0);
    CHECK(e->total >= NKEPT);
    if (once != NKEPT || e->bad) fprintf(stderr, "  enumerate (%s): %d of %d kept seen once, %d bad\n",
                                         when, once, NKEPT, e->bad);
}

static void test_enumerate(void) {
    for (int i = 0; i < NKEPT; i++) {
        size_t n = i % 50 == 0 ? 100000 : (size_t)(16 + i % 7 * 40);
        kept[i] = i % 3 == 1   ? GC_malloc_atomic(n)
                  : i % 5 == 2 ? GC_malloc_uncollectable(n)
                               : GC_malloc(n);
        REQUIRE(kept[i] != NULL);
    }
    enum_drop();
    enum_ctx e;
    /* before any collection: every object is allocated */
    enumerate(&e);
    check_kept(&e, "before a collection");
    /* right after one: spans wait for their sweep; the marks decide */
    GC_gcollect();
    enumerate(&e);
    check_kept(&e, "unswept");
#if OPTIMIZED
    CHECK_EQ(e.dropped_seen, 0);
#endif
    /* once every span is swept */
    while (GC_collect_a_little()) {
    }
    enumerate(&e);
    check_kept(&e, "swept");
#if OPTIMIZED
    CHECK_EQ(e.dropped_seen, 0);
#endif
    /* objects allocated since the collection count too */
    void *fresh = GC_malloc(24);
    kept[0] = fresh;
    enumerate(&e);
    CHECK_EQ(e.seen[0], 1);
    for (int i = 0; i < NKEPT; i++)
        if (i % 5 == 2 && i % 3 != 1) GC_free(kept[i]);
}

static void gcj(uintptr_t arg) {
    (void)arg;
    (void)GC_gcj_malloc(16, NULL);
}
static void push_outside(uintptr_t arg) {
    (void)arg;
    GC_push_all((void *)0x1000, (void *)0x1010);
}

static void expect_fatal(const char *name, void (*fn)(uintptr_t), const char *want) {
    char got[512];
    int st = child_run(fn, 0, got, sizeof got);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strcmp(got, want) == 0);
    if (strcmp(got, want) != 0) fprintf(stderr, "  %s: got \"%s\"\n", name, got);
}

int main(void) {
    setenv("GC_FREE_SPACE_DIVISOR", "5", 1);
    setenv("GC_DUMP_REGULARLY", "1", 1);
    setenv("GC_NO_BLACKLIST_WARNING", "1", 1);
    unsetenv("GC_PRINT_STATS");
    unsetenv("GC_DONT_GC");
    GC_set_warn_proc(my_warn);
    GC_init();
    /* The thread that started the heap is registered once, though the
     * warning procedure allocated while the heap started: a second
     * record of it would have the collector signal itself and wait. */
    mh_gc_stats_t st;
    (void)mh_gc_stats_get(&st, sizeof st);
    CHECK(warn_alloc != NULL);
    CHECK_EQ(st.threads, 1);
    if (st.threads != 1) return check_done("test_gc_boehm_abi");
    test_environment();
    test_dont_gc();
    test_divisor();
    test_oom();
    test_non_gc_bytes();
    test_hooks();
    test_calls();
    test_enumerate();
    expect_fatal("GC_gcj_malloc", gcj, "mheap: GC_gcj_malloc is not supported\n");
    expect_fatal("GC_push_all", push_outside,
                 "mheap: GC_push_all called outside a mark: 0x1000\n");
    return check_done("test_gc_boehm_abi");
}
