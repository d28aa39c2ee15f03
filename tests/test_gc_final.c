/* test_gc_final.c - finalizers and weak links (mheap_gc.h):
 *
 *   order       a chain of three ordered finalizable objects, unreachable,
 *               is finalized head first, one per cycle, each seeing its
 *               successor intact;
 *   cycle       two ordered finalizable objects pointing at each other are
 *               never finalized; with ignore-self an object pointing at
 *               itself is, with ordered it is not;
 *   report      with the option verbose, a finalization cycle is reported
 *               once, as one line, however many cycles find it; without
 *               it, never;
 *   no-order    a no-order chain is finalized in one cycle;
 *   unreachable an unreachable finalizer does not run while a no-order
 *               object ready for finalization reaches its object (which
 *               that finalizer sees intact), runs once nothing does, and
 *               never while a finalizer has brought it back;
 *   resurrect   a finalizer that stores its object keeps it and what it
 *               reaches intact, and does not run again;
 *   allocating  a finalizer may allocate, register finalizers on new
 *               objects and again on its own, which then runs once more;
 *   links       a disappearing link is cleared once its object is
 *               unreachable, before its finalizer runs; a long link only
 *               once the object is gone after finalization; explicit free
 *               and unregistering; re-registering the same link; a short
 *               and a long link at one address are apart;
 *   homes       a link whose location is in an object freed explicitly,
 *               or in one that dies, is dropped and never written; one in
 *               an object that only a finalizable object reaches stays
 *               registered;
 *   thread      finalizers run on mheap's finalizer thread by default;
 *   await       the await function sees each ready object before its
 *               finalizer runs; run_finalizers_max runs at most its count;
 *   toggle      toggle references: a strong one keeps its object, a weak
 *               one does not, the function is asked before each collection
 *               and no more once it dropped the object or the object died;
 *   bounded     10^6 links registered then dropped (their objects dying,
 *               their locations dying, re-registered at one address) leave
 *               the GC heap and mheap's metadata (records, the links'
 *               index, counted in meta_sys) bounded;
 *   cleanups    a cleanup runs once after its object is unreachable,
 *               never sees it, does not keep it; several per object; a
 *               cancelled one never runs; a finalizer's or cleanup's
 *               argument is a root until it runs; with a finalizer that
 *               resurrects the object, the cleanup waits until the object
 *               is gone for good (its long link reads NULL then);
 *   weak        one handle per object and offset; it reads the pointer
 *               while the object lives and NULL once it is gone;
 *   errors      registering on a pointer that is not a GC object's start
 *               gives EINVAL. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "child.h"
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

/* mh_gc_finalize_all with the finalizer thread at work: when it returns,
 * every registered finalizer has run to its end, on whichever thread, also
 * those of reachable objects, and the ones a finalizer registered. */
static _Atomic int all_done;
static pthread_t all_main;
static obj *all_keep[40];

static void all_slow(void *p, void *data) {
    (void)p;
    if (data) { /* (the first registers one more) */
        REQUIRE(mh_gc_register_finalizer(all_keep[39], all_slow, NULL, MH_GC_FINALIZE_ORDERED,
                                         NULL, NULL) == 0);
    }
    /* (slow on the finalizer thread: a finalize_all that returned while
     * that thread was still running one would be seen here) */
    struct timespec ts = {0, pthread_equal(pthread_self(), all_main) ? 200000 : 20000000};
    nanosleep(&ts, NULL);
    atomic_fetch_add(&all_done, 1);
}

/* A finalizer may call it too: the batch it runs in is its own, not one
 * to wait for (it would wait for itself). */
static int nested_returned;
static void call_finalize_all(void *p, void *data) {
    (void)p;
    (void)data;
    (void)mh_gc_finalize_all();
    nested_returned = 1;
}

static void test_finalize_all(void) {
    all_main = pthread_self();
    mh_gc_set_finalize_on_demand(0);
    for (int i = 0; i < 40; i++) all_keep[i] = make(900 + i, NULL);
    for (int i = 0; i < 39; i++)
        REQUIRE(mh_gc_register_finalizer(all_keep[i], all_slow, i == 0 ? (void *)1 : NULL,
                                         MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    size_t here = mh_gc_finalize_all();
    CHECK_EQ(atomic_load(&all_done), 40);
    CHECK(here >= 40); /* (this thread ran them all, and earlier parts' left over) */
    CHECK_EQ(mh_gc_finalizers_pending(), 0);
    for (int i = 0; i < 40; i++) CHECK(mh_gc_base(all_keep[i], NULL) == all_keep[i]); /* (kept) */
    REQUIRE(mh_gc_register_finalizer(all_keep[0], call_finalize_all, NULL, MH_GC_FINALIZE_ORDERED,
                                     NULL, NULL) == 0);
    (void)mh_gc_finalize_all(); /* (a hang here is the failure) */
    CHECK(nested_returned);
    mh_gc_set_finalize_on_demand(1);
}

/* ---- bounded ---- */

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BOUNDED_TOTAL 100000
#else
#define BOUNDED_TOTAL 1000000
#endif
#define BATCH 10000

/* The same slot, re-registered for a new object each time. */
static __attribute__((noinline)) void link_and_drop(void **slot, int n) {
    for (int i = 0; i < n; i++) {
        obj *o = make(i, NULL);
        *slot = o;
        REQUIRE(mh_gc_register_disappearing_link(slot, o) >= 0); /* (1: moved from the last) */
    }
}

/* A slot each, its object dropped (the link is cleared with it: the slot
 * is new to the index again, unless a stale pointer kept the last batch's
 * object, which only optimized builds rule out). */
static __attribute__((noinline)) void link_each(void **slots, int n) {
    for (int i = 0; i < n; i++) {
        obj *o = make(i, NULL);
        slots[i] = o;
        int r = mh_gc_register_disappearing_link(&slots[i], o);
        REQUIRE(r >= 0);
        EXACT(r == 0);
    }
}

/* A link each in a box of its own, the box dropped (the link's location
 * dies; its object lives). */
static obj *box_target;
static __attribute__((noinline)) void box_each(int n, int long_link) {
    for (int i = 0; i < n; i++) {
        void **box = mh_gc_malloc_atomic(sizeof(void *));
        REQUIRE(box != NULL);
        *box = box_target;
        REQUIRE((long_link ? mh_gc_register_long_link(box, box_target)
                           : mh_gc_register_disappearing_link(box, box_target)) == 0);
    }
}

static uint64_t meta_now(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    return st.meta_sys;
}

static void test_bounded(void) {
    /* Every record, and the links' index, is in meta_sys.  A leak would
     * keep about 100 bytes per link: 100 MB for 10^6 (10 MB under the
     * sanitizers), far above the bounds. */
    const uint64_t meta_bound = (uint64_t)4 << 20;
    const size_t heap_bound = (size_t)8 << 20;
    void **slots = mh_gc_malloc_atomic(BATCH * sizeof(void *));
    REQUIRE(slots != NULL);
    box_target = make(77, NULL);
    collect();
    uint64_t meta0 = meta_now(), meta_peak = meta0;
    size_t peak = 0;
    int kinds = 3;
    for (int k = 0; k < kinds; k++) {
        for (int done = 0; done < BOUNDED_TOTAL; done += BATCH) {
            if (k == 0) link_each(slots, BATCH);
            else if (k == 1) box_each(BATCH, done & BATCH);
            else
                for (int j = 0; j < BATCH / 1000; j++) link_and_drop(&slots[j], 1000);
            scrub_stack();
            mh_gc_collect(0);
            if (mh_gc_heap_size() > peak) peak = mh_gc_heap_size();
            uint64_t m = meta_now();
            if (m > meta_peak) meta_peak = m;
        }
        if (k == 0) {
            int left = 0;
            for (int i = 0; i < BATCH; i++) left += slots[i] != NULL;
            EXACT(left == 0); /* every object died, every link was cleared */
        }
    }
    /* the links of the last batch at the re-registered slots are still
     * there, and those of the boxes are gone (the boxes died) */
    int registered = 0;
    for (int j = 0; j < BATCH / 1000; j++) registered += slots[j] != NULL;
    (void)registered;
    fprintf(stderr, "bounded: 3 x %d links, GC heap peak %zu KiB, metadata %llu -> peak %llu KiB\n",
            BOUNDED_TOTAL, peak >> 10, (unsigned long long)meta0 >> 10,
            (unsigned long long)meta_peak >> 10);
    CHECK(peak <= heap_bound);
    CHECK(meta_peak <= meta0 + meta_bound);
    box_target = NULL;
    CHECK_EQ(mh_heap_verify(), 0);
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

/* ---- a finalization cycle reported once ---- */

static __attribute__((noinline)) void make_cycle_pair(long base) {
    obj *a = make(base + 1, NULL), *b = make(base + 2, a);
    a->next = b;
    REQUIRE(mh_gc_register_finalizer(a, record, (void *)(intptr_t)(base + 1), MH_GC_FINALIZE_ORDERED,
                                     NULL, NULL) == 0);
    REQUIRE(mh_gc_register_finalizer(b, record, (void *)(intptr_t)(base + 2), MH_GC_FINALIZE_ORDERED,
                                     NULL, NULL) == 0);
}

static void report_child(uintptr_t verbose) {
    REQUIRE(mh_option_set("verbose", (long)verbose) == 0);
    make_cycle_pair(1100);
    make_cycle_pair(1200); /* (a second cycle: still one line in all) */
    scrub_stack();
    for (int r = 0; r < 4; r++) {
        collect();
        run();
    }
    for (int i = 0; i < nran; i++)
        if (ran[i] > 1100 && ran[i] < 1300) _exit(3); /* a cycle was finalized */
}

static int count_lines(const char *out, const char *what) {
    int n = 0;
    for (const char *p = out; (p = strstr(p, what)); p++) n++;
    return n;
}

static void test_cycle_report(void) {
    char out[8192];
    int st = child_run(report_child, 1, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int lines = count_lines(out, "mheap: finalization cycle involving 0x");
    EXACT(lines == 1);
    CHECK(lines <= 1);
    CHECK(count_lines(out, ": its finalizers never run\n") == lines);
    st = child_run(report_child, 0, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(count_lines(out, "finalization cycle"), 0);
}

/* ---- unreachable finalizers ---- */

static int seq;                  /* finalizers run, in order */
static int no_order_at, unreach_at, unreach_runs, unreach_bad;
static obj *brought_back;        /* set by a no-order finalizer that resurrects */
static int bring_back;

static void no_order_fin(void *p, void *data) {
    (void)data;
    obj *a = p;
    no_order_at = ++seq;
    /* what it reaches, the unreachable-finalizable object, is intact */
    if (!a->next || a->next->check != a->next->id * 7) unreach_bad++;
    if (bring_back) brought_back = a->next;
}
static void unreach_fin(void *p, void *data) {
    (void)data;
    obj *u = p;
    if (u->check != u->id * 7) unreach_bad++;
    unreach_at = ++seq;
    unreach_runs++;
}

static __attribute__((noinline)) void make_no_order_to_unreachable(long id) {
    obj *u = make(id + 1, NULL), *a = make(id, u);
    REQUIRE(mh_gc_register_finalizer(a, no_order_fin, NULL, MH_GC_FINALIZE_NO_ORDER, NULL, NULL) == 0);
    REQUIRE(mh_gc_register_finalizer(u, unreach_fin, NULL, MH_GC_FINALIZE_UNREACHABLE, NULL, NULL) ==
            0);
}

static __attribute__((noinline)) void make_lone_unreachable(long id) {
    obj *u = make(id, NULL);
    REQUIRE(mh_gc_register_finalizer(u, unreach_fin, NULL, MH_GC_FINALIZE_UNREACHABLE, NULL, NULL) ==
            0);
}

static void test_unreachable(void) {
    /* a no-order object reaches an unreachable-finalizable one: the first
     * cycle runs the no-order finalizer only; the next, the other */
    seq = no_order_at = unreach_at = unreach_runs = unreach_bad = 0;
    bring_back = 0;
    make_no_order_to_unreachable(1300);
    scrub_stack();
    collect();
    int first = run();
    EXACT(first == 1 && no_order_at == 1 && unreach_runs == 0);
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    EXACT(no_order_at == 1 && unreach_at == 2);
    CHECK(unreach_runs <= 1);
    CHECK(!unreach_at || (no_order_at && unreach_at > no_order_at)); /* never before */
    CHECK_EQ(unreach_bad, 0);

    /* alone, it runs in the first cycle */
    seq = unreach_runs = unreach_at = 0;
    make_lone_unreachable(1310);
    scrub_stack();
    collect();
    EXACT(run() == 1 && unreach_runs == 1);
    collect();
    run();
    CHECK(unreach_runs <= 1);

    /* the no-order finalizer brings the object back: the unreachable
     * finalizer does not run while it is kept */
    seq = no_order_at = unreach_at = unreach_runs = unreach_bad = 0;
    bring_back = 1;
    brought_back = NULL;
    make_no_order_to_unreachable(1320);
    scrub_stack();
    for (int r = 0; r < 4; r++) {
        collect();
        run();
    }
    CHECK(!brought_back || unreach_runs == 0);
    EXACT(brought_back != NULL && brought_back->id == 1321 && unreach_runs == 0);
    bring_back = 0;
    brought_back = NULL;
    scrub_stack();
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    EXACT(unreach_runs == 1);
    CHECK(unreach_runs <= 1);
    CHECK_EQ(unreach_bad, 0);
}

/* ---- a finalizer that allocates and registers ---- */

static int alloc_fin_runs, child_fin_runs, again_runs;
static obj *alloc_kept; /* what the finalizer allocated, kept */

static void child_fin(void *p, void *data) {
    (void)p;
    (void)data;
    child_fin_runs++;
}
static void again_fin(void *p, void *data) {
    obj *o = p;
    (void)data;
    if (o->check == o->id * 7) again_runs++;
}
static void alloc_fin(void *p, void *data) {
    obj *o = p;
    (void)data;
    alloc_fin_runs++;
    /* allocate, and register a finalizer on a new object (kept while it
     * is referenced from here) and, again, on this one */
    obj *n = make(1402, NULL);
    for (int i = 0; i < 100; i++) (void)make(i, NULL);
    REQUIRE(mh_gc_register_finalizer(n, child_fin, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    REQUIRE(mh_gc_register_finalizer(o, again_fin, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    alloc_kept = n;
}

static __attribute__((noinline)) void make_alloc_fin(void) {
    obj *o = make(1401, NULL);
    REQUIRE(mh_gc_register_finalizer(o, alloc_fin, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
}

static void test_allocating(void) {
    make_alloc_fin();
    scrub_stack();
    for (int r = 0; r < 3 && !alloc_fin_runs; r++) {
        collect();
        run();
    }
    EXACT(alloc_fin_runs == 1);
    if (!alloc_fin_runs) return;
    scrub_stack();
    for (int r = 0; r < 3 && !again_runs; r++) {
        collect();
        run();
    }
    /* the new object is referenced: its finalizer waits; the re-registered
     * one ran in a later cycle (its object had no other reference) */
    CHECK_EQ(child_fin_runs, 0);
    CHECK(alloc_kept && alloc_kept->id == 1402 && alloc_kept->check == 1402 * 7);
    EXACT(again_runs == 1);
    alloc_kept = NULL;
    scrub_stack();
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    EXACT(child_fin_runs == 1);
    CHECK(child_fin_runs <= 1 && again_runs <= 1 && alloc_fin_runs == 1);
}

/* ---- links: short and long apart, homes ---- */

static void test_link_kinds(void) {
    void **l = mh_gc_malloc_atomic(4 * sizeof(void *));
    REQUIRE(l != NULL);
    obj *o = make(1501, NULL);
    l[0] = o;
    CHECK_EQ(mh_gc_register_disappearing_link(&l[0], o), 0);
    CHECK_EQ(mh_gc_register_long_link(&l[0], o), 0); /* (the other kind: a new one) */
    CHECK_EQ(mh_gc_register_long_link(&l[0], o), 1);
    CHECK_EQ(mh_gc_move_link(&l[0], &l[1], 1), 0); /* the long one moves */
    CHECK_EQ(mh_gc_unregister_link(&l[1]), 0);     /* l[1] has no short link */
    CHECK_EQ(mh_gc_unregister_long_link(&l[0]), 0);
    CHECK_EQ(mh_gc_unregister_long_link(&l[1]), 1);
    CHECK_EQ(mh_gc_move_link(&l[0], &l[0], 0), 0); /* registered: 0 */
    CHECK_EQ(mh_gc_move_link(&l[2], &l[2], 0), -2);
    CHECK_EQ(mh_gc_register_disappearing_link(&l[2], o), 0);
    CHECK_EQ(mh_gc_move_link(&l[0], &l[2], 0), 1); /* taken */
    CHECK_EQ(mh_gc_move_link(&l[0], &l[3], 1), -2);
    CHECK_EQ(mh_gc_unregister_link(&l[0]), 1);
    CHECK_EQ(mh_gc_unregister_link(&l[2]), 1);
    errno = 0;
    CHECK_EQ(mh_gc_move_link(&l[0], (void **)((char *)l + 3), 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mh_heap_verify(), 0);
}

static obj *home_target; /* lives throughout */
static uintptr_t home_box; /* disguised */
static int home_kept = -1;

static __attribute__((noinline)) void make_home_box(void) {
    void **box = mh_gc_malloc_atomic(2 * sizeof(void *));
    REQUIRE(box != NULL);
    box[0] = home_target;
    box[1] = (void *)((uintptr_t)home_target ^ DISGUISE);
    REQUIRE(mh_gc_register_disappearing_link(&box[0], home_target) == 0);
    REQUIRE(mh_gc_register_long_link(&box[1], home_target) == 0);
    home_box = (uintptr_t)box ^ DISGUISE;
}

/* A finalizable object reaching a box with a link: in its finalizer, the
 * box is alive and its link still registered. */
static void home_fin(void *p, void *data) {
    (void)data;
    obj *f = p;
    home_kept = mh_gc_unregister_link((void **)f->next) == 1;
}
static __attribute__((noinline)) void make_home_behind_finalizer(void) {
    void **box = mh_gc_malloc_atomic(sizeof(void *));
    REQUIRE(box != NULL);
    *box = home_target;
    REQUIRE(mh_gc_register_disappearing_link(box, home_target) == 0);
    obj *f = make(1601, (obj *)box);
    REQUIRE(mh_gc_register_finalizer(f, home_fin, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
}

static void test_homes(void) {
    home_target = make(1600, NULL);
    /* the box is freed explicitly: its links go with it */
    make_home_box();
    void **box = (void **)(home_box ^ DISGUISE);
    mh_gc_free(box);
    CHECK_EQ(mh_gc_unregister_link(&box[0]), 0);
    CHECK_EQ(mh_gc_unregister_long_link(&box[1]), 0);
    /* again, and its slot is reused before the target dies: nothing is
     * written into the new objects */
    make_home_box();
    box = (void **)(home_box ^ DISGUISE);
    mh_gc_free(box);
    box = NULL;
    uint64_t **fill = mh_gc_malloc(200 * sizeof *fill);
    REQUIRE(fill != NULL);
    for (int i = 0; i < 200; i++) {
        fill[i] = mh_gc_malloc_atomic(2 * sizeof(void *));
        REQUIRE(fill[i] != NULL);
        fill[i][0] = fill[i][1] = 0x6262626262626262ULL;
    }
    /* the box dies (not freed): its links go too */
    make_home_box();
    uintptr_t dying = home_box;
    scrub_stack();
    collect();
    EXACT(mh_gc_unregister_link((void **)(dying ^ DISGUISE)) == 0);
    home_target = NULL;
    scrub_stack();
    collect();
    collect();
    int clobbered = 0;
    for (int i = 0; i < 200; i++) clobbered += fill[i][0] != 0x6262626262626262ULL || fill[i][1] != 0x6262626262626262ULL;
    CHECK_EQ(clobbered, 0);
    fill = NULL;

    /* a box that only a finalizable object reaches keeps its link */
    home_target = make(1602, NULL);
    make_home_behind_finalizer();
    scrub_stack();
    for (int r = 0; r < 3 && home_kept == -1; r++) {
        collect();
        run();
    }
    EXACT(home_kept == 1);
    CHECK(home_kept != 0);
    home_target = NULL;
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- the await function, a bounded run ---- */

static void *awaited[8];
static int nawaited, await_order_bad, await_runs;
static void on_await(void *p) {
    if (nawaited < 8) awaited[nawaited++] = p;
}
static void await_fin(void *p, void *data) {
    (void)data;
    int seen = 0;
    for (int i = 0; i < nawaited; i++) seen |= awaited[i] == p;
    if (!seen) await_order_bad++;
    await_runs++;
}
static __attribute__((noinline)) void make_awaited(int n) {
    for (int i = 0; i < n; i++) {
        obj *o = make(1700 + i, NULL);
        REQUIRE(mh_gc_register_finalizer(o, await_fin, NULL, MH_GC_FINALIZE_NO_ORDER, NULL, NULL) == 0);
    }
}

static void test_await(void) {
    mh_gc_set_await_finalize_fn(on_await);
    CHECK(mh_gc_get_await_finalize_fn() == on_await);
    make_awaited(3);
    scrub_stack();
    collect();
    EXACT(nawaited == 3 && mh_gc_finalizers_pending() == 3);
    /* at most one at a time */
    size_t one = mh_gc_run_finalizers_max(1);
    CHECK(one <= 1);
    EXACT(one == 1 && mh_gc_finalizers_pending() == 2);
    run();
    collect();
    run();
    CHECK_EQ(await_order_bad, 0);
    EXACT(await_runs == 3);
    mh_gc_set_await_finalize_fn(NULL);
    CHECK(mh_gc_get_await_finalize_fn() == NULL);
}

/* ---- toggle references ---- */

static uintptr_t toggled[3]; /* disguised objects, by role */
static int toggle_state[3];  /* what the function answers for each */
static int toggle_asked[3];
static int toggle_stranger;  /* asked about an object it never added */

static int toggle_fn(void *p) {
    for (int i = 0; i < 3; i++)
        if ((uintptr_t)p == (toggled[i] ^ DISGUISE)) {
            toggle_asked[i]++;
            return toggle_state[i];
        }
    toggle_stranger++;
    return MH_GC_TOGGLEREF_DROP;
}

static void **toggle_root; /* the weak handles (GC objects), by role */

static __attribute__((noinline)) void make_toggled(void) {
    for (int i = 0; i < 3; i++) {
        obj *o = make(1800 + i, NULL);
        toggled[i] = (uintptr_t)o ^ DISGUISE;
        toggle_root[i] = mh_gc_weak_make(o);
        REQUIRE(toggle_root[i] != NULL);
        REQUIRE(mh_gc_toggleref_add(o, i == 0 || i == 2) == 0);
    }
}

static void test_toggle(void) {
    /* without a function nothing is held */
    obj *o = make(1799, NULL);
    CHECK_EQ(mh_gc_toggleref_add(o, 1), 0);
    errno = 0;
    CHECK_EQ(mh_gc_toggleref_add((char *)o + 8, 1), -1);
    CHECK_EQ(errno, EINVAL);
    o = NULL;
    toggle_root = mh_gc_malloc(4 * sizeof(void *));
    REQUIRE(toggle_root != NULL);
    mh_gc_set_toggleref_fn(toggle_fn);
    CHECK(mh_gc_get_toggleref_fn() == toggle_fn);
    /* 0: strong, stays strong; 1: weak; 2: strong, then dropped */
    toggle_state[0] = MH_GC_TOGGLEREF_STRONG;
    toggle_state[1] = MH_GC_TOGGLEREF_WEAK;
    toggle_state[2] = MH_GC_TOGGLEREF_STRONG;
    make_toggled();
    scrub_stack();
    for (int r = 0; r < 3; r++) collect();
    CHECK(mh_gc_weak_get(toggle_root[0]) != NULL); /* held strongly */
    CHECK(mh_gc_weak_get(toggle_root[2]) != NULL);
    EXACT(mh_gc_weak_get(toggle_root[1]) == NULL); /* only weakly */
    CHECK(toggle_asked[0] == 3 && toggle_asked[2] == 3);
    /* the weak one was asked in the first cycle only (gone after it) */
    EXACT(toggle_asked[1] == 1);
    toggle_state[2] = MH_GC_TOGGLEREF_DROP;
    for (int r = 0; r < 3; r++) collect();
    CHECK_EQ(toggle_asked[2], 4); /* asked once more, then no more */
    EXACT(mh_gc_weak_get(toggle_root[2]) == NULL);
    CHECK(mh_gc_weak_get(toggle_root[0]) != NULL);
    CHECK_EQ(toggle_asked[0], 6);
    toggle_state[0] = MH_GC_TOGGLEREF_WEAK;
    for (int r = 0; r < 2; r++) collect();
    EXACT(mh_gc_weak_get(toggle_root[0]) == NULL);
    EXACT(toggle_asked[0] == 7);
    CHECK_EQ(toggle_stranger, 0);
    mh_gc_set_toggleref_fn(NULL);
    toggle_root = NULL;
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- a cleanup after a finalizer that resurrects ---- */

static void **cl_link;  /* pointer-free: a long link to the object */
static obj *cl_risen;
static int cl_fin_runs, cl_runs, cl_saw_alive;
static void cl_fin(void *p, void *data) {
    (void)data;
    cl_fin_runs++;
    cl_risen = p;
}
static void cl_cleanup(void *arg) {
    (void)arg;
    cl_runs++;
    if (*cl_link != NULL) cl_saw_alive++; /* the object still there */
}
static __attribute__((noinline)) void make_cl(void) {
    obj *o = make(1901, NULL);
    *cl_link = o;
    REQUIRE(mh_gc_register_long_link(cl_link, o) == 0);
    REQUIRE(mh_gc_register_finalizer(o, cl_fin, NULL, MH_GC_FINALIZE_ORDERED, NULL, NULL) == 0);
    REQUIRE(mh_gc_add_cleanup(o, cl_cleanup, NULL) != NULL);
}

static void test_cleanup_after_finalizer(void) {
    cl_link = mh_gc_malloc_atomic(sizeof(void *));
    REQUIRE(cl_link != NULL);
    make_cl();
    scrub_stack();
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    /* brought back by its finalizer: the cleanup waits */
    CHECK(cl_runs == 0 || !cl_risen);
    EXACT(cl_fin_runs == 1 && cl_risen && cl_runs == 0 && *cl_link == cl_risen);
    cl_risen = NULL;
    scrub_stack();
    for (int r = 0; r < 3; r++) {
        collect();
        run();
    }
    EXACT(cl_runs == 1);
    CHECK(cl_runs <= 1 && cl_fin_runs <= 1);
    CHECK_EQ(cl_saw_alive, 0);
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
    test_cycle_report(); /* (children first: no thread started yet) */
    test_errors();
    scrub_stack();
    test_order();
    scrub_stack();
    test_no_order();
    scrub_stack();
    test_cycles();
    scrub_stack();
    test_unreachable();
    scrub_stack();
    test_resurrect();
    scrub_stack();
    test_allocating();
    scrub_stack();
    test_links();
    scrub_stack();
    test_link_records();
    scrub_stack();
    test_link_kinds();
    scrub_stack();
    test_homes();
    scrub_stack();
    test_await();
    scrub_stack();
    test_toggle();
    scrub_stack();
    test_thread();
    scrub_stack();
    test_finalize_all();
    scrub_stack();
    test_cleanups();
    scrub_stack();
    test_cleanup_after_finalizer();
    scrub_stack();
    test_weak();
    scrub_stack();
    test_bounded();
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_gc_final");
}
