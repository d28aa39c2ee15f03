/* test_gc_boehm.c - bdwgc's interface on mheap's collector (include/gc.h,
 * src/gc_boehm.c) and the mh_gc_ calls under it, where only mheap can be
 * asked (tests/gccompat/ compares what both collectors promise):
 *
 *   threads     GC_pthread_create as the program's first GC call starts a
 *               registered thread; a start argument held only by the new
 *               thread survives collections; registration by hand;
 *               GC_pthread_sigmask never blocks the stop signal
 *   regions     blocked, then active again (mh_gc_call_active): the
 *               thread's state in each, and an object held only by the
 *               active region's frame survives another thread's collection
 *   roots       ranges removed when inside the region, kept when not;
 *               GC_clear_roots; freed once no root holds them
 *   control     GC_gcollect does nothing while disabled; GC_collect_a_little
 *               collects when one is due and sweeps to the end;
 *               GC_expand_hp raises the goal and honours the limit; the
 *               free-space divisor and the percent
 *   counts      free bytes grow by what GC_free releases; bytes since the
 *               last collection; memory use
 *   kinds       GC_realloc keeps the kind; atomic uncollectable is
 *               uncollectable
 *   hooks       the start callback; GC_call_with_alloc_lock holds a
 *               collection off; the OOM function's answer is returned by
 *               GC_malloc; notes said once through the warn procedure
 *   visible     GC_is_visible and mh_gc_is_visible for each kind of place,
 *               and the abort for a place never scanned
 *   bounds      the plausible heap bounds, the stack base, GC_malloc_many */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "../include/gc.h" /* (by path: src/gc.h is the collector's own) */
#include "../include/gc/gc_mark.h"

#include "check.h"
#include "child.h"
#include "gc.h"
#include "mheap.h"
#include "mheap_gc.h"

#define DISGUISE (~(uintptr_t)0)

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif

typedef struct node {
    struct node *next;
    long value;
} node;

static void collect(void) { mh_gc_collect(1); } /* (sweeping finishes too) */
static int alive(const void *p) { return mh_gc_base(p, NULL) == p; }

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static __attribute__((noinline)) node *make(long v) {
    node *n = mh_gc_malloc(sizeof *n);
    REQUIRE(n != NULL);
    n->value = v;
    return n;
}

static __attribute__((noinline)) void scrub_stack(void) {
    char buf[262144];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* ---- threads ---- */

static atomic_int first_registered = -1;
static void *first_thread(void *arg) {
    (void)arg;
    atomic_store(&first_registered, mh_gc_thread_registered());
    return NULL;
}

static atomic_int go;
static atomic_long seen_value;
static void *hold_arg(void *arg) {
    node *n = arg; /* the only reference, until main sees the result */
    while (!atomic_load(&go)) sleep_ms(1);
    atomic_store(&seen_value, alive(n) ? n->value : -1);
    return NULL;
}

static __attribute__((noinline)) int start_holder(pthread_t *t) {
    return GC_pthread_create(t, NULL, hold_arg, make(5151));
}

static atomic_int raw_result;
static void *raw_thread(void *arg) {
    (void)arg;
    struct GC_stack_base sb;
    int ok = !mh_gc_thread_registered() && GC_get_stack_base(&sb) == GC_SUCCESS;
    ok &= GC_register_my_thread(&sb) == GC_SUCCESS && GC_thread_is_registered();
    ok &= GC_register_my_thread(&sb) == GC_DUPLICATE;
    ok &= GC_unregister_my_thread() == GC_SUCCESS && !mh_gc_thread_registered();
    (void)mh_gc_malloc(16); /* (the first GC call registers it again) */
    ok &= mh_gc_thread_registered();
    atomic_store(&raw_result, ok);
    return NULL;
}

static void test_threads(void) {
    /* the first GC call of the program */
    CHECK(!mh_gc_thread_registered());
    pthread_t t;
    CHECK_EQ(GC_pthread_create(&t, NULL, first_thread, NULL), 0);
    CHECK_EQ(GC_pthread_join(t, NULL), 0);
    CHECK_EQ(atomic_load(&first_registered), 1);

    /* a start argument held by the new thread alone */
    CHECK_EQ(start_holder(&t), 0);
    scrub_stack();
    for (int i = 0; i < 3; i++) collect();
    for (int i = 0; i < 2000; i++) (void)make(-i); /* (reuse a freed slot) */
    atomic_store(&go, 1);
    CHECK_EQ(GC_pthread_join(t, NULL), 0);
    CHECK_EQ(atomic_load(&seen_value), 5151);

    /* registered by hand */
    CHECK_EQ(pthread_create(&t, NULL, raw_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(atomic_load(&raw_result), 1);

    /* the stop signal stays deliverable */
    int sig = GC_get_suspend_signal();
    CHECK_EQ(sig, mh_gc_stop_signal());
    CHECK_EQ(GC_get_thr_restart_signal(), sig);
    long opt = mh_option_get("gc_signal");
    CHECK_EQ(sig, opt > 0 ? opt : SIGRTMIN + 5);
    sigset_t all, old, cur;
    sigfillset(&all);
    CHECK_EQ(GC_pthread_sigmask(SIG_SETMASK, &all, &old), 0);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    CHECK(sigismember(&cur, SIGUSR1) == 1 && sigismember(&cur, sig) == 0);
    CHECK_EQ(GC_pthread_sigmask(SIG_BLOCK, &all, NULL), 0);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    CHECK(sigismember(&cur, sig) == 0);
    CHECK_EQ(GC_pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

/* ---- blocked and active regions ---- */

static atomic_int want_collect, collected;
static void *collector_thread(void *arg) {
    (void)arg;
    while (!atomic_load(&want_collect)) sleep_ms(1);
    collect();
    collect();
    atomic_store(&collected, 1);
    return NULL;
}

static int state(void) { return atomic_load(&mhi_gc_self->state); }
static void *state_fn(void *arg) {
    (void)arg;
    return (void *)(uintptr_t)state();
}

/* blocked inside active inside blocked: active once more */
static void *inner_blocked(void *arg) {
    (void)arg;
    int ok = state() == MHI_GC_BLOCKED;
    ok &= mh_gc_call_active(state_fn, NULL) == (void *)(uintptr_t)MHI_GC_RUNNING;
    ok &= state() == MHI_GC_BLOCKED;
    return (void *)(uintptr_t)ok;
}

static atomic_int states_ok;
static void *active_part(void *arg) {
    int ok = state() == MHI_GC_RUNNING;
    node *volatile n = make(*(long *)arg); /* held by this frame only */
    atomic_store(&want_collect, 1);
    while (!atomic_load(&collected)) sleep_ms(1);
    ok &= alive(n) && n->value == *(long *)arg;
    ok &= GC_do_blocking(inner_blocked, NULL) == (void *)1;
    ok &= state() == MHI_GC_RUNNING;
    atomic_store(&states_ok, ok);
    return arg;
}

static void *blocked_part(void *arg) {
    int ok = state() == MHI_GC_BLOCKED;
    void *r = GC_call_with_gc_active(active_part, arg);
    ok &= state() == MHI_GC_BLOCKED && r == arg;
    return ok ? arg : NULL;
}

static void test_regions(void) {
    long v = 6262;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, collector_thread, NULL), 0);
    CHECK(GC_do_blocking(blocked_part, &v) == &v);
    CHECK_EQ(state(), MHI_GC_RUNNING);
    CHECK_EQ(atomic_load(&states_ok), 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    /* outside a blocked region: a plain call */
    CHECK(mh_gc_call_active(state_fn, NULL) == (void *)(uintptr_t)MHI_GC_RUNNING);
}

/* ---- roots ---- */

static uintptr_t gone[4]; /* disguised addresses */
static node **cleared_box; /* (malloc'd: no root) */

static __attribute__((noinline)) void fill(node **box, int n, long base) {
    for (int i = 0; i < n; i++) box[i] = make(base + i);
}

static __attribute__((noinline)) void test_roots(void) {
    node **box = calloc(8, sizeof *box);
    REQUIRE(box != NULL);
    GC_add_roots(box, box + 2);
    GC_add_roots(box + 2, box + 4);
    GC_add_roots(box + 3, box + 8); /* (reaches past the region below) */
    fill(box, 8, 100);
    scrub_stack();
    collect();
    int kept = 1;
    for (int i = 0; i < 8; i++) kept &= alive(box[i]) && box[i]->value == 100 + i;
    CHECK(kept);
    /* the first two ranges lie inside [box, box + 4); the third does not
     * (nor does a region of less than a word) */
    GC_remove_roots((char *)box + 1, (char *)box + 7);
    GC_remove_roots(box, box + 4);
    gone[0] = (uintptr_t)box[0] ^ DISGUISE;
    gone[1] = (uintptr_t)box[2] ^ DISGUISE;
    scrub_stack();
    collect();
    CHECK(alive(box[3]) && alive(box[7]) && box[7]->value == 107);
    if (OPTIMIZED) CHECK(!alive((void *)(gone[0] ^ DISGUISE)) && !alive((void *)(gone[1] ^ DISGUISE)));
    /* the last range goes with every other; test_roots_freed looks, once
     * this frame (which read box[7]) is gone */
    gone[2] = (uintptr_t)box[7] ^ DISGUISE;
    GC_clear_roots();
    cleared_box = box;
    /* a range of nothing is ignored */
    void *empty[1] = {make(1)};
    GC_add_roots(empty, empty);
    GC_remove_roots(empty, empty + 1);
}

static __attribute__((noinline)) void test_roots_freed(void) {
    collect();
    if (OPTIMIZED) CHECK(!alive((void *)(gone[2] ^ DISGUISE)));
    memset(cleared_box, 0, 8 * sizeof *cleared_box);
    free(cleared_box);
}

/* ---- control ---- */

static __attribute__((noinline)) void garbage(size_t bytes) {
    for (size_t n = 0; n < bytes; n += 4096) (void)mh_gc_malloc_atomic(4096);
}

static void test_control(void) {
    /* (a percent of 0: the goal is the live heap, at least 4 MiB, whatever
     * the roots weigh; a sanitizer's runtime has large ones) */
    long pct0 = mh_gc_get_percent();
    mh_gc_set_percent(0);
    collect();
    /* disabled: no collection, even asked for */
    uint64_t c0 = mh_gc_cycles();
    GC_disable();
    CHECK(GC_is_disabled() && mh_gc_is_disabled());
    GC_gcollect();
    GC_gcollect_and_unmap();
    CHECK_EQ(mh_gc_cycles(), c0);
    /* past the goal (which the roots raise: tens of MiB under TSan): a
     * collection is due */
    mh_gc_stats_t due;
    mh_gc_stats_get(&due, sizeof due);
    garbage((size_t)due.next_gc + ((size_t)4 << 20));
    CHECK_EQ(mh_gc_cycles(), c0);
    (void)GC_collect_a_little();
    CHECK_EQ(mh_gc_cycles(), c0);
    GC_enable();
    CHECK(!GC_is_disabled());
    (void)GC_collect_a_little();
    CHECK_EQ(mh_gc_cycles(), c0 + 1);
    int steps = 0;
    while (GC_collect_a_little() && steps < 1000000) steps++;
    CHECK(steps < 1000000);
    CHECK_EQ(GC_collect_a_little(), 0);
    CHECK_EQ(mh_gc_cycles(), c0 + 1);
    mh_gc_set_percent(pct0);

    /* expanding: the goal rises; the limit refuses */
    mh_gc_stats_t st;
    mh_gc_stats_get(&st, sizeof st);
    CHECK_EQ(GC_expand_hp(64 << 20), 1);
    mh_gc_stats_t st2;
    mh_gc_stats_get(&st2, sizeof st2);
    CHECK(st2.next_gc >= st.live_bytes + (64 << 20) && st2.next_gc >= st.next_gc);
    GC_set_max_heap_size(mh_gc_heap_size() + (1 << 20));
    errno = 0;
    CHECK_EQ(GC_expand_hp(16 << 20), 0);
    CHECK_EQ(mh_gc_expand(16 << 20), -1);
    CHECK_EQ(errno, ENOMEM);
    GC_set_max_heap_size(0);
    CHECK_EQ(mh_gc_expand(16 << 20), 0);

    /* the divisor and the percent */
    long pct = mh_gc_get_percent();
    GC_set_free_space_divisor(3);
    CHECK_EQ(mh_gc_get_percent(), 33);
    CHECK_EQ(GC_get_free_space_divisor(), 3);
    GC_set_free_space_divisor(1);
    CHECK_EQ(mh_gc_get_percent(), 100);
    GC_set_free_space_divisor(400);
    CHECK_EQ(mh_gc_get_percent(), 0);
    CHECK_EQ(GC_get_free_space_divisor(), 400);
    mh_gc_set_percent(50);
    CHECK_EQ(GC_get_free_space_divisor(), 2);
    mh_gc_set_percent(0); /* (what 400 gave) */
    CHECK_EQ(GC_get_free_space_divisor(), 400);
    GC_set_free_space_divisor(2);
    mh_gc_set_percent(0);
    CHECK_EQ(GC_get_free_space_divisor(), 201);
    mh_gc_set_percent(-1);
    CHECK_EQ(GC_get_free_space_divisor(), 0);
    mh_gc_set_percent(pct);

    GC_set_time_limit(50);
    CHECK_EQ(GC_get_time_limit(), 50);
    GC_enable_incremental();
    CHECK_EQ(GC_is_incremental_mode(), 0);
}

/* ---- counts ---- */

#define NOBJ 2048

static void test_counts(void) {
    void **objs = mh_gc_malloc_uncollectable(NOBJ * sizeof *objs);
    REQUIRE(objs != NULL);
    for (int i = 0; i < NOBJ; i++) objs[i] = mh_gc_malloc(96);
    collect(); /* (this thread's spans go back to the lists) */
    size_t heap, f1 = mh_gc_free_bytes(&heap);
    CHECK_EQ(heap, mh_gc_heap_size());
    CHECK(heap >= f1 && heap >= (size_t)NOBJ * 96);
    size_t use = GC_get_memory_use();
    CHECK_EQ(use, heap - f1);
    CHECK_EQ(GC_get_free_bytes(), f1);
    for (int i = 0; i < NOBJ; i += 2) {
        GC_free(objs[i]);
        objs[i] = NULL;
    }
    size_t f2 = mh_gc_free_bytes(NULL);
    CHECK(f2 >= f1 + (size_t)NOBJ / 2 * 96);

    /* since the last collection */
    CHECK_EQ(GC_get_bytes_since_gc(), 0);
    uint64_t total = GC_get_total_bytes();
    CHECK_EQ(total, mh_gc_alloc_bytes());
    void *big = mh_gc_malloc_atomic(100000);
    CHECK(big != NULL && GC_get_bytes_since_gc() >= 100000 && GC_get_total_bytes() >= total + 100000);
    mh_gc_stats_t st;
    mh_gc_stats_get(&st, sizeof st);
    CHECK_EQ(st.alloc_bytes, mh_gc_alloc_bytes());
    GC_word hs, fb, ub, sg, tb;
    GC_get_heap_usage_safe(&hs, &fb, &ub, &sg, &tb);
    CHECK(hs == mh_gc_heap_size() && ub == 0 && sg <= tb && tb == mh_gc_alloc_bytes());
    CHECK_EQ(GC_get_unmapped_bytes(), 0);
    GC_free(objs);
}

/* ---- kinds ---- */

static int kind_of(const void *p) {
    mhi_span *s = mhi_gc_span_of(p);
    return s ? s->gc_kind : -1;
}

static void test_kinds(void) {
    char *a = GC_malloc_atomic(32);
    CHECK_EQ(kind_of(a), MHI_GC_NOSCAN);
    a = GC_realloc(a, 50000);
    CHECK_EQ(kind_of(a), MHI_GC_NOSCAN);
    void *u = GC_malloc_atomic_uncollectable(40);
    CHECK_EQ(kind_of(u), MHI_GC_UNCOLL);
    u = GC_realloc(u, 4000);
    CHECK_EQ(kind_of(u), MHI_GC_UNCOLL);
    GC_free(u);
    CHECK_EQ(kind_of(GC_malloc_ignore_off_page(300000)), MHI_GC_SCAN);
    CHECK_EQ(kind_of(GC_malloc_atomic_ignore_off_page(300000)), MHI_GC_NOSCAN);
    CHECK_EQ(kind_of(GC_debug_malloc_atomic(10, __FILE__, __LINE__)), MHI_GC_NOSCAN);
    CHECK_EQ(kind_of(GC_strdup("x")), MHI_GC_NOSCAN);
    char *p = GC_malloc(24);
    CHECK(GC_is_heap_ptr(p) && GC_is_heap_ptr(p + 23) && !GC_is_heap_ptr(&p));
    CHECK(mh_gc_is_heap_ptr(p) && !mh_gc_is_heap_ptr(NULL));
}

/* ---- hooks ---- */

static atomic_int starts;
static void on_start(void) { atomic_fetch_add(&starts, 1); }

static atomic_int lock_collected;
static void *collect_now(void *arg) {
    (void)arg;
    GC_gcollect();
    atomic_store(&lock_collected, 1);
    return NULL;
}
static void *while_locked(void *arg) {
    uint64_t c0 = mh_gc_cycles();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, collect_now, NULL) == 0);
    sleep_ms(50);
    int ok = !atomic_load(&lock_collected) && mh_gc_cycles() == c0;
    (void)GC_get_free_bytes(); /* (allowed under the lock) */
    *(pthread_t *)arg = t;
    return ok ? arg : NULL;
}

static void *oom_answer;
static size_t oom_size;
static void *GC_CALLBACK my_oom(size_t n) {
    oom_size = n;
    return oom_answer;
}

static char notes[4][256];
static int nnotes;
static void GC_CALLBACK my_warn(char *msg, GC_word arg) {
    (void)arg;
    if (nnotes < 4) snprintf(notes[nnotes], sizeof notes[0], "%s", msg);
    nnotes++;
}

/* One line, starting so, without a printf conversion. */
static int note_ok(const char *s, const char *start) {
    size_t n = strlen(s);
    return strncmp(s, start, strlen(start)) == 0 && !strchr(s, '%') && n > 0 &&
           strchr(s, '\n') == s + n - 1;
}

static void test_hooks(void) {
    /* the start callback */
    GC_set_start_callback(on_start);
    CHECK(GC_get_start_callback() == on_start);
    GC_gcollect();
    GC_gcollect();
    CHECK_EQ(atomic_load(&starts), 2);
    GC_set_start_callback(NULL);
    GC_gcollect();
    CHECK_EQ(atomic_load(&starts), 2);

    /* the allocation lock holds a collection off until it is dropped */
    pthread_t t;
    CHECK(GC_call_with_alloc_lock(while_locked, &t) == &t);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(atomic_load(&lock_collected), 1);

    /* the OOM function's answer */
    CHECK(GC_get_oom_fn() != NULL);
    GC_oom_func old = GC_get_oom_fn();
    oom_answer = GC_malloc(16);
    GC_set_oom_fn(my_oom);
    GC_set_max_heap_size(mh_gc_heap_size() + (4 << 20));
    CHECK(GC_malloc(32 << 20) == oom_answer && oom_size == (size_t)32 << 20);
    CHECK(GC_malloc_atomic(32 << 20) == oom_answer);
    CHECK(GC_malloc_uncollectable(32 << 20) == oom_answer);
    /* (realloc: the answer takes the contents, the old object goes) */
    char *old_obj = GC_malloc(64);
    memcpy(old_obj, "moved", 6);
    CHECK(GC_realloc(old_obj, 32 << 20) == oom_answer && strcmp(oom_answer, "moved") == 0);
    CHECK(GC_realloc(oom_answer, 32 << 20) == oom_answer && alive(oom_answer));
    CHECK(GC_strndup("abc", 3) != NULL);
    oom_answer = NULL;
    errno = 0;
    CHECK(GC_malloc(32 << 20) == NULL && errno == ENOMEM);
    GC_set_max_heap_size(0);
    GC_set_oom_fn(old);
    CHECK(GC_get_oom_fn() == old);

    /* notes for what is not honoured: once each, through the warn proc */
    GC_warn_proc w = GC_get_warn_proc();
    GC_set_warn_proc(my_warn);
    GC_set_all_interior_pointers(1);
    CHECK_EQ(nnotes, 0);
    GC_set_all_interior_pointers(0);
    GC_set_all_interior_pointers(0);
    CHECK_EQ(GC_get_all_interior_pointers(), 1);
    GC_set_no_dls(1);
    GC_set_no_dls(1);
    CHECK_EQ(GC_get_no_dls(), 1);
    GC_set_no_dls(0);
    struct GC_stack_base far = {(void *)(uintptr_t)4096};
    CHECK_EQ(GC_register_my_thread(&far), GC_DUPLICATE);
    CHECK_EQ(nnotes, 3);
    CHECK(note_ok(notes[0], "mheap: GC_all_interior_pointers 0 is not honoured"));
    CHECK(note_ok(notes[1], "mheap: GC_no_dls is not honoured"));
    CHECK(note_ok(notes[2], "mheap: GC_register_my_thread: the stack base given"));
    GC_set_warn_proc(GC_ignore_warn_proc);
    GC_set_warn_proc(w);
    CHECK(GC_get_warn_proc() == w);
}

/* ---- visible ---- */

static long static_word;
static __thread long tls_word;

static void visible_atomic(uintptr_t p) { (void)GC_is_visible((void *)p); }

static void test_visible(void) {
    long local = 0;
    node *n = make(1);
    long *a = mh_gc_malloc_atomic(64);
    void **u = mh_gc_malloc_uncollectable(64);
    long *m = mh_malloc(64);
    CHECK(GC_is_visible(&static_word) == &static_word);
    CHECK(GC_is_visible(&local) == &local);
    CHECK(GC_is_visible(&tls_word) == &tls_word);
    CHECK(GC_is_visible(&n->value) == &n->value);
    CHECK(GC_is_visible(&u[3]) == &u[3]);
    CHECK(!mh_gc_is_visible(a) && !mh_gc_is_visible((char *)&static_word + 1) && !mh_gc_is_visible(m));
    CHECK_EQ(mh_option_set("gc_scan_malloc", 1), 0);
    CHECK(mh_gc_is_visible(m));
    CHECK_EQ(mh_option_set("gc_scan_malloc", 0), 0);
    long *box = malloc(4 * sizeof *box);
    GC_add_roots(box, box + 4);
    CHECK(mh_gc_is_visible(&box[2]));
    GC_remove_roots(box, box + 4);
    CHECK(!mh_gc_is_visible(&box[2]));
    free(box);
    mh_free(m);
    child_expect_abort("GC_is_visible(atomic)", visible_atomic, (uintptr_t)a, "GC_is_visible",
                       (uintptr_t)a);
    GC_free(u);
}

/* ---- bounds, stack base, malloc_many ---- */

static void *with_base(struct GC_stack_base *sb, void *arg) {
    volatile int here = 0;
    return (char *)sb->mem_base > (char *)&here ? arg : NULL;
}

static void test_bounds(void) {
    char *p = GC_malloc(10), *big = GC_malloc_atomic(8 << 20);
    uintptr_t lo = (uintptr_t)GC_least_plausible_heap_addr, hi = (uintptr_t)GC_greatest_plausible_heap_addr;
    CHECK(lo < hi && lo % (64 << 20) == 0 && hi % (64 << 20) == 0);
    CHECK((uintptr_t)p >= lo && (uintptr_t)big + (8 << 20) <= hi);
    struct GC_stack_base sb;
    uintptr_t slo, shi;
    REQUIRE(mhi_os_stack_bounds(&slo, &shi));
    CHECK(GC_get_stack_base(&sb) == GC_SUCCESS && (uintptr_t)sb.mem_base == shi);
    int x;
    CHECK(GC_call_with_stack_base(with_base, &x) == &x);

    void *list = GC_malloc_many(40);
    int n = 0;
    for (void *q = list; q; q = GC_NEXT(q)) {
        CHECK(alive(q) && GC_size(q) >= 40 && kind_of(q) == MHI_GC_SCAN);
        n++;
    }
    CHECK(n >= 2 && n <= 64);
    collect();
    int still = 0;
    for (void *q = list; q; q = GC_NEXT(q)) still += alive(q);
    CHECK_EQ(still, n);
    list = GC_malloc_many(1 << 20);
    CHECK(list != NULL && GC_NEXT(list) == NULL && GC_size(list) >= (1 << 20));
    CHECK_EQ(GC_get_version(), (8u << 16) | (2u << 8) | 2u);
}

int main(void) {
    test_threads(); /* (first: its first call is the program's first GC call) */
    scrub_stack();
    test_regions();
    scrub_stack();
    test_roots();
    scrub_stack();
    test_roots_freed();
    test_control();
    test_counts();
    test_kinds();
    test_hooks();
    test_visible();
    test_bounds();
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_gc_boehm");
}
