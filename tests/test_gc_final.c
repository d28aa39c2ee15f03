/* test_gc_final.c - finalizers and weak links (mheap_gc.h):
 *
 *   order       a chain of three ordered finalizable objects, unreachable,
 *               is finalized head first, one per cycle, each seeing its
 *               successor intact;
 *   cycle       two ordered finalizable objects pointing at each other are
 *               never finalized; with ignore-self an object pointing at
 *               itself is, with ordered it is not;
 *   no-order    a no-order chain is finalized in one cycle;
 *   resurrect   a finalizer that stores its object keeps it and what it
 *               reaches intact, and does not run again;
 *   links       a disappearing link is cleared once its object is
 *               unreachable, before its finalizer runs; a long link only
 *               once the object is gone after finalization; explicit free
 *               and unregistering; re-registering the same link;
 *   thread      finalizers run on mheap's finalizer thread by default;
 *   bounded     10^6 links registered on objects then dropped leave the
 *               GC heap and mheap's metadata bounded;
 *   cleanups    a cleanup runs once after its object is unreachable,
 *               never sees it, does not keep it; several per object; a
 *               cancelled one never runs; a finalizer's or cleanup's
 *               argument is a root until it runs;
 *   weak        one handle per object and offset; it reads the pointer
 *               while the object lives and NULL once it is gone;
 *   errors      registering on a pointer that is not a GC object's start
 *               gives EINVAL. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "mheap.h"
#include "mheap_gc.h"

#define DISGUISE (~(uintptr_t)0)

/* That an object is finalized or a link cleared once it is unreachable is
 * checked in optimised builds only: unoptimised code leaves stale copies
 * of pointers on the stack, which a conservative collector must honour.
 * What must never happen (a finalizer too early or twice, an object or
 * its successor not intact, a link cleared while its object lives) is
 * checked in every build. */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define EXACT(cond) CHECK(cond)
#else
#define EXACT(cond) ((void)(cond))
#endif

typedef struct obj {
    struct obj *next;
    long id;
    long check;
} obj;

static void collect(void) { mh_gc_collect(1); }

static __attribute__((noinline)) void scrub_stack(void) {
    char buf[65536];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Finalizers record the ids they saw, in order. */
static long ran[64];
static int nran;
static int bad; /* a finalized object (or its successor) not intact */

static void record(void *p, void *data) {
    obj *o = p;
    if (o->check != o->id * 7 || (long)(intptr_t)data != o->id) bad++;
    if (o->next && o->next->check != o->next->id * 7) bad++;
    if (nran < 64) ran[nran++] = o->id;
}

static obj *make(long id, obj *next) {
    obj *o = mh_gc_malloc(sizeof *o);
    REQUIRE(o != NULL);
    o->id = id;
    o->check = id * 7;
    o->next = next;
    return o;
}

static __attribute__((noinline)) void make_chain(int mode, long base) {
    obj *c = make(base + 3, NULL), *b = make(base + 2, c), *a = make(base + 1, b);
    obj *all[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        REQUIRE(mh_gc_register_finalizer(all[i], record, (void *)(intptr_t)all[i]->id, mode, NULL,
                                         NULL) == 0);
}

static int run(void) { return (int)mh_gc_run_finalizers(); }

static void test_order(void) {
    nran = 0;
    make_chain(MH_GC_FINALIZE_ORDERED, 100);
    scrub_stack();
    int per_cycle[4];
    for (int r = 0; r < 4; r++) {
        collect();
        per_cycle[r] = run();
    }
    /* never more than one a cycle, head first */
    for (int r = 0; r < 4; r++) CHECK(per_cycle[r] <= 1);
    for (int i = 0; i < nran; i++) CHECK_EQ(ran[i], 101 + i);
    EXACT(per_cycle[0] == 1 && per_cycle[1] == 1 && per_cycle[2] == 1 && per_cycle[3] == 0);
    EXACT(nran == 3);
    CHECK_EQ(bad, 0);
}

/* A no-order chain allocated head first. */
static __attribute__((noinline)) void make_chain_head_first(long base) {
    obj *a = make(base + 1, NULL), *b = make(base + 2, NULL), *c = make(base + 3, NULL);
    a->next = b;
    b->next = c;
    obj *all[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        REQUIRE(mh_gc_register_finalizer(all[i], record, (void *)(intptr_t)all[i]->id,
                                         MH_GC_FINALIZE_NO_ORDER, NULL, NULL) == 0);
}

static void test_no_order(void) {
    nran = 0;
    make_chain_head_first(250);
    scrub_stack();
    collect();
    EXACT(run() == 3);
    nran = 0;
    make_chain(MH_GC_FINALIZE_NO_ORDER, 200);
    scrub_stack();
    collect();
    EXACT(run() == 3);
    collect();
    run();
    int mine = 0;
    for (int i = 0; i < nran; i++) mine += ran[i] > 200;
    CHECK(mine <= 3);
    CHECK_EQ(bad, 0);
}

static __attribute__((noinline)) void make_cycle(void) {
    obj *a = make(301, NULL), *b = make(302, a);
    a->next = b;
    REQUIRE(mh_gc_register_finalizer(a, record, (void *)301, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    REQUIRE(mh_gc_register_finalizer(b, record, (void *)302, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
}

static __attribute__((noinline)) void make_self(long id, int mode) {
    obj *a = make(id, NULL);
    a->next = a;
    REQUIRE(mh_gc_register_finalizer(a, record, (void *)(intptr_t)id, mode, NULL, NULL) == 0);
}

static void test_cycles(void) {
    nran = 0;
    make_cycle();
    make_self(401, MH_GC_FINALIZE_ORDERED);
    make_self(402, MH_GC_FINALIZE_IGNORE_SELF);
    scrub_stack();
    int total = 0;
    for (int r = 0; r < 4; r++) {
        collect();
        total += run();
    }
    /* only the ignore-self one (a leftover of an earlier part, kept by a
     * stale copy in an unoptimised build, may be finalized here too) */
    int mine = 0, self_runs = 0;
    for (int i = 0; i < nran; i++) {
        CHECK(ran[i] != 301 && ran[i] != 302 && ran[i] != 401);
        mine += ran[i] > 300;
        self_runs += ran[i] == 402;
    }
    CHECK(self_runs <= 1);
    EXACT(total == 1 && mine == 1 && self_runs == 1);
    CHECK_EQ(mh_gc_finalizers_pending(), 0);
}

/* ---- resurrection ---- */

static obj *risen;
static int rise_runs;
static void rise(void *p, void *data) {
    (void)data;
    rise_runs++;
    risen = p;
}

static __attribute__((noinline)) void make_riser(void) {
    obj *child = make(502, NULL), *o = make(501, child);
    REQUIRE(mh_gc_register_finalizer(o, rise, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
}

static void test_resurrect(void) {
    make_riser();
    scrub_stack();
    for (int r = 0; r < 3 && !risen; r++) {
        collect();
        run();
    }
    EXACT(risen != NULL);
    if (!risen) return; /* (kept by a stale copy: nothing to check) */
    for (int r = 0; r < 3; r++) collect();
    CHECK(risen->id == 501 && risen->check == 501 * 7);
    CHECK(risen->next && risen->next->id == 502 && risen->next->check == 502 * 7);
    CHECK(mh_gc_base(risen, NULL) == risen && mh_gc_base(risen->next, NULL) == risen->next);
    uintptr_t was = (uintptr_t)risen ^ DISGUISE;
    risen = NULL;
    scrub_stack();
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    CHECK_EQ(rise_runs, 1); /* a finalizer runs once */
    (void)was;
}

/* ---- links ---- */

/* Links live in pointer-free memory, so they keep nothing alive. */
static void **links;
static int link_fin_saw_cleared = -1;
static void check_link(void *p, void *data) {
    (void)p;
    (void)data;
    link_fin_saw_cleared = links[0] == NULL;
}

static __attribute__((noinline)) void make_linked(void) {
    obj *a = make(601, NULL), *b = make(602, NULL), *c = make(603, NULL);
    links[0] = a; /* short, a finalizable: cleared before its finalizer runs */
    links[1] = b; /* long, b finalizable: kept until b is gone */
    links[2] = c; /* short, c plain */
    REQUIRE(mh_gc_register_disappearing_link(&links[0], a) == 0);
    REQUIRE(mh_gc_register_long_link(&links[1], b) == 0);
    REQUIRE(mh_gc_register_disappearing_link(&links[2], c) == 0);
    CHECK_EQ(mh_gc_register_disappearing_link(&links[2], c), 1);
    REQUIRE(mh_gc_register_finalizer(a, check_link, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    REQUIRE(mh_gc_register_finalizer(b, record, (void *)602, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
}

static __attribute__((noinline)) void make_freed_link(void) {
    obj *d = make(604, NULL), *e = make(605, NULL);
    links[3] = d;
    links[4] = e;
    REQUIRE(mh_gc_register_disappearing_link(&links[3], d) == 0);
    REQUIRE(mh_gc_register_disappearing_link(&links[4], e) == 0);
    mh_gc_free(d);                           /* its link goes with it */
    CHECK_EQ(mh_gc_unregister_link(&links[4]), 1); /* e stays, unlinked */
    CHECK_EQ(mh_gc_unregister_link(&links[4]), 0);
}

/* A link's record outlives neither its object nor its own location. */
static __attribute__((noinline)) uintptr_t make_box_link(obj *target) {
    void **box = mh_gc_malloc_atomic(sizeof(void *));
    REQUIRE(box != NULL);
    *box = target;
    REQUIRE(mh_gc_register_disappearing_link(box, target) == 0);
    return (uintptr_t)box ^ DISGUISE;
}

static obj *target_keep;

static void test_link_records(void) {
    /* the boxes holding the links die first; their slots are reused by
     * objects holding a pattern; then the target dies: nothing is written
     * into the new objects */
    target_keep = make(1001, NULL);
    for (int i = 0; i < 200; i++) (void)make_box_link(target_keep);
    scrub_stack();
    collect();
    collect();
    uint64_t **fill = mh_gc_malloc(400 * sizeof *fill);
    REQUIRE(fill != NULL);
    for (int i = 0; i < 400; i++) {
        fill[i] = mh_gc_malloc_atomic(sizeof(void *));
        REQUIRE(fill[i] != NULL);
        *fill[i] = 0x5151515151515151ULL;
    }
    target_keep = NULL;
    scrub_stack();
    collect();
    int clobbered = 0;
    for (int i = 0; i < 400; i++) clobbered += *fill[i] != 0x5151515151515151ULL;
    CHECK_EQ(clobbered, 0);

    /* re-registered for another object: it belongs to the last one */
    void **l = mh_gc_malloc_atomic(2 * sizeof(void *));
    REQUIRE(l != NULL);
    obj *o1 = make(1002, NULL), *o2 = make(1003, NULL);
    l[0] = o1;
    CHECK_EQ(mh_gc_register_disappearing_link(&l[0], o1), 0);
    l[0] = o2;
    CHECK_EQ(mh_gc_register_disappearing_link(&l[0], o2), 1);
    o1 = NULL;
    scrub_stack();
    collect();
    CHECK(l[0] == o2);
    /* unregistered by its address, though its value is disguised */
    l[1] = (void *)((uintptr_t)o2 ^ DISGUISE);
    CHECK_EQ(mh_gc_register_disappearing_link(&l[1], o2), 0);
    CHECK_EQ(mh_gc_unregister_link(&l[1]), 1);
    CHECK_EQ(mh_gc_unregister_link(&l[1]), 0);
    CHECK(l[1] == (void *)((uintptr_t)o2 ^ DISGUISE));
    /* a weak handle made from an interior pointer is cleared by free */
    obj *w = make(1004, NULL);
    void *h = mh_gc_weak_make((char *)w + 8);
    REQUIRE(h != NULL);
    static void *volatile keep_h;
    keep_h = h;
    mh_gc_free(w);
    CHECK(mh_gc_weak_get(keep_h) == NULL);
    keep_h = NULL;
}

static void test_links(void) {
    links = mh_gc_malloc_atomic(8 * sizeof(void *));
    REQUIRE(links != NULL);
    memset(links, 0, 8 * sizeof(void *));
    /* an uncollectable object lives, referenced or not: its link stays */
    void *u = mh_gc_malloc_uncollectable(32);
    REQUIRE(u != NULL);
    links[5] = u;
    REQUIRE(mh_gc_register_disappearing_link(&links[5], u) == 0);
    u = NULL;
    nran = 0;
    make_linked();
    make_freed_link();
    CHECK(links[3] == NULL);
    scrub_stack();
    collect();
    EXACT(links[0] == NULL); /* short: cleared in the cycle that found a unreachable */
    EXACT(links[2] == NULL);
    CHECK(links[1] != NULL); /* long: b waits for its finalizer, alive */
    CHECK(links[4] != NULL); /* unregistered: untouched (e itself is dead) */
    CHECK(links[5] != NULL); /* uncollectable */
    EXACT(run() == 2);
    run();
    /* a's finalizer, when it ran, found its short link already cleared */
    CHECK(link_fin_saw_cleared != 0);
    EXACT(link_fin_saw_cleared == 1);
    collect();
    EXACT(links[1] == NULL); /* b gone after its finalizer */
    CHECK(links[5] != NULL);
    mh_gc_free(links[5]); /* freeing it clears its link */
    CHECK(links[5] == NULL);
}

/* ---- the finalizer thread ---- */

static atomic_int thread_runs;
static void count(void *p, void *data) {
    (void)p;
    (void)data;
    atomic_fetch_add(&thread_runs, 1);
}

static __attribute__((noinline)) void make_counted(int n) {
    for (int i = 0; i < n; i++) {
        obj *o = make(700 + i, NULL);
        REQUIRE(mh_gc_register_finalizer(o, count, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    }
}

static void test_thread(void) {
    mh_gc_set_finalize_on_demand(0);
    make_counted(50);
    scrub_stack();
    collect();
    /* (a hang guard, not a timing: the thread runs them when it can) */
    for (int i = 0; i < 20000 && atomic_load(&thread_runs) < 50; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(atomic_load(&thread_runs) <= 50);
    EXACT(atomic_load(&thread_runs) == 50);
    mh_gc_set_finalize_on_demand(1);
}

/* ---- bounded ---- */

static __attribute__((noinline)) void link_and_drop(void **slot, int n) {
    for (int i = 0; i < n; i++) {
        obj *o = make(i, NULL);
        *slot = o;
        REQUIRE(mh_gc_register_disappearing_link(slot, o) >= 0); /* (1: moved from the last) */
    }
}

static void test_bounded(void) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    const int total = 100000;
#else
    const int total = 1000000;
#endif
    void **slots = mh_gc_malloc_atomic(1024 * sizeof(void *));
    REQUIRE(slots != NULL);
    collect();
    mh_stats_t a, b;
    mh_stats_get(&a, sizeof a);
    size_t peak = 0;
    for (int r = 0; r < total / 1000; r++) {
        link_and_drop(&slots[r % 1024], 1000);
        if (mh_gc_heap_size() > peak) peak = mh_gc_heap_size();
    }
    scrub_stack();
    collect();
    mh_stats_get(&b, sizeof b);
    fprintf(stderr, "bounded: %d links, GC heap peak %zu KiB, metadata %llu -> %llu KiB\n", total,
            peak >> 10, (unsigned long long)a.meta_sys >> 10, (unsigned long long)b.meta_sys >> 10);
    CHECK(peak <= ((size_t)16 << 20));
    CHECK(b.meta_sys <= a.meta_sys + ((uint64_t)4 << 20));
}

/* ---- cleanups, arguments as roots, weak handles ---- */

static int cleanup_runs[4];
static long arg_seen;
static void cleanup(void *arg) {
    obj *a = arg;
    if (a && a->check == a->id * 7) arg_seen = a->id; /* its argument, intact */
    cleanup_runs[a ? 0 : 1]++;
}
static void cleanup_plain(void *arg) { cleanup_runs[2 + (int)(intptr_t)arg]++; }

static uintptr_t cleaned_obj, cleanup_arg; /* disguised */
static void *cancelled;

static __attribute__((noinline)) void make_cleanups(void) {
    obj *o = make(801, NULL);
    obj *arg = make(802, NULL); /* referenced only by the cleanup */
    REQUIRE(mh_gc_add_cleanup(o, cleanup, arg) != NULL);
    REQUIRE(mh_gc_add_cleanup(o, cleanup_plain, (void *)0) != NULL);
    cancelled = mh_gc_add_cleanup(o, cleanup_plain, (void *)1);
    REQUIRE(cancelled != NULL);
    CHECK_EQ(mh_gc_cancel_cleanup(o, cancelled), 1);
    CHECK_EQ(mh_gc_cancel_cleanup(o, cancelled), 0);
    cleaned_obj = (uintptr_t)o ^ DISGUISE;
    cleanup_arg = (uintptr_t)arg ^ DISGUISE;
}

static void test_cleanups(void) {
    make_cleanups();
    scrub_stack();
    /* the cycle that finds o unreachable queues its cleanups; their
     * argument, referenced by nothing else, lives until they run */
    collect();
    EXACT(mh_gc_finalizers_pending() == 2);
    CHECK(mh_gc_finalizers_pending() == 0 ||
          mh_gc_base((void *)(cleanup_arg ^ DISGUISE), NULL) == (void *)(cleanup_arg ^ DISGUISE));
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    CHECK(cleanup_runs[0] <= 1 && cleanup_runs[1] == 0 && cleanup_runs[2] <= 1 && cleanup_runs[3] == 0);
    EXACT(cleanup_runs[0] == 1 && cleanup_runs[2] == 1 && arg_seen == 802);
    /* the object is freed (a cleanup does not keep it) */
    EXACT(mh_gc_base((void *)(cleaned_obj ^ DISGUISE), NULL) == NULL);
    errno = 0;
    CHECK(mh_gc_add_cleanup(&arg_seen, cleanup, NULL) == NULL && errno == EINVAL);
}

static void **weak_handles; /* pointer-free: holds handles, keeps them */
static uintptr_t weak_target;

static __attribute__((noinline)) void make_weak(void) {
    obj *o = make(901, NULL);
    void *h = mh_gc_weak_make(o);
    REQUIRE(h != NULL);
    CHECK(mh_gc_weak_make(o) == h);                    /* canonical */
    CHECK(mh_gc_weak_make((char *)o + 8) != h);        /* another offset */
    CHECK(mh_gc_weak_get(h) == o);
    weak_handles[0] = h;
    weak_target = (uintptr_t)o ^ DISGUISE;
}

static obj *strong;
static int weak_fin_saw; /* 1: the handle read NULL when the finalizer ran */
static void *weak_fin_handle;
static void weak_fin(void *p, void *data) {
    (void)p;
    (void)data;
    weak_fin_saw = mh_gc_weak_get(weak_fin_handle) == NULL;
}

static __attribute__((noinline)) void make_weak_final(void) {
    obj *o = make(902, NULL);
    weak_fin_handle = mh_gc_weak_make(o);
    REQUIRE(weak_fin_handle != NULL);
    weak_handles[1] = weak_fin_handle;
    REQUIRE(mh_gc_register_finalizer(o, weak_fin, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
}

static void test_weak(void) {
    /* the handles are GC objects: keep them reachable from a scanned root */
    static void **root;
    root = mh_gc_malloc(4 * sizeof(void *));
    REQUIRE(root != NULL);
    weak_handles = root;
    make_weak();
    strong = (obj *)(weak_target ^ DISGUISE);
    collect();
    CHECK(mh_gc_weak_get(weak_handles[0]) == strong); /* alive while referenced */
    strong = NULL;
    scrub_stack();
    for (int r = 0; r < 2; r++) collect();
    EXACT(mh_gc_weak_get(weak_handles[0]) == NULL);
    void *g = mh_gc_weak_get(weak_handles[0]);
    CHECK(g == NULL || g == (void *)(weak_target ^ DISGUISE));
    CHECK(mh_gc_weak_get(NULL) == NULL);
    /* cleared when the object becomes unreachable, before its finalizer
     * (which keeps it alive a cycle longer) runs */
    weak_fin_saw = -1;
    make_weak_final();
    scrub_stack();
    for (int r = 0; r < 2 && weak_fin_saw == -1; r++) {
        collect();
        run();
    }
    CHECK(weak_fin_saw != 0);
    EXACT(weak_fin_saw == 1);
    root = NULL;
}

static void test_errors(void) {
    int local;
    errno = 0;
    CHECK_EQ(mh_gc_register_finalizer(&local, record, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    obj *o = make(900, NULL);
    errno = 0;
    CHECK_EQ(mh_gc_register_finalizer((char *)o + 8, record, NULL, MH_GC_FINALIZE_ORDERED, NULL,
                                      NULL),
             -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mh_gc_register_finalizer(o, record, NULL, 99, NULL, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    mh_gc_finalizer_fn old = NULL;
    void *old_data = NULL;
    CHECK_EQ(mh_gc_register_finalizer(o, record, (void *)5, MH_GC_FINALIZE_ORDERED, NULL, NULL), 0);
    CHECK_EQ(mh_gc_register_finalizer(o, NULL, NULL, MH_GC_FINALIZE_ORDERED, &old, &old_data), 0);
    CHECK(old == record && old_data == (void *)5);
    errno = 0;
    void *slot = NULL;
    CHECK_EQ(mh_gc_register_disappearing_link(&slot, &local), -1);
    CHECK_EQ(errno, EINVAL);
}

int main(void) {
    mh_gc_register_thread();
    mh_gc_set_finalize_on_demand(1);
    test_errors();
    scrub_stack();
    test_order();
    scrub_stack();
    test_no_order();
    scrub_stack();
    test_cycles();
    scrub_stack();
    test_resurrect();
    scrub_stack();
    test_links();
    scrub_stack();
    test_link_records();
    scrub_stack();
    test_thread();
    scrub_stack();
    test_cleanups();
    scrub_stack();
    test_weak();
    scrub_stack();
    test_bounded();
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_gc_final");
}
