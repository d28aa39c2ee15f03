/* test_gc_threads.c - the garbage-collected heap with many threads
 * (mheap_gc.h):
 *
 *   register    an object whose only reference is a register survives a
 *               collection: in the collecting thread across its own
 *               mh_gc_collect, and in a thread spinning in a loop while
 *               another one collects (found in its interrupted context);
 *               an object the spinner kept only disguised is freed;
 *   unregister  after mh_gc_unregister_thread every mh_gc_ call works, and
 *               those that need a registered thread register it again (the
 *               thread count says so); the stack of a thread registered
 *               again is scanned, that of an unregistered one is not;
 *   mutators    four threads build, reverse, mutate and check lists, trees
 *               with sharing and arrays of objects of mixed sizes (some
 *               above 32 KiB, scanned and pointer-free, reallocated and
 *               freed), while a fifth collects in a loop and pacing
 *               (gc_percent 20) collects from the workers; then again with
 *               pacing alone, which must run cycles; the verifier runs in a
 *               quiet moment halfway and at the end;
 *   churn       waves of threads start and exit during collections, each
 *               checking what it holds across a few of them; afterwards the
 *               thread count is back, what the dead threads held is no
 *               longer live, and the heap is bounded;
 *   blocking    a thread inside mh_gc_do_blocking, with every signal
 *               blocked, does not hold up collections by other threads; the
 *               objects its stack referenced before it entered stay alive
 *               and intact; once out, it allocates during collections;
 *   fork        the main thread forks several times while three threads
 *               allocate; each child, alone, allocates, collects and passes
 *               the verifier; the parent's threads find their data intact.
 *
 * check.h is not thread-safe: threads count failures in an atomic that
 * main checks after each part.  Values stored in objects have high bits
 * set, so they never look like heap addresses to the scanner.  Threads
 * wait for each other by polling with short sleeps, a wait the stop signal
 * always interrupts (under ThreadSanitizer it is not delivered inside
 * pthread_barrier_wait, and a collection would wait forever). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "mheap.h"
#include "mheap_gc.h"

/* Addresses kept as numbers that point nowhere near the heap. */
#define DISGUISE (~(uintptr_t)0)

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif

/* How much work: less under the sanitizers (ThreadSanitizer makes each
 * cycle slow: its runtime adds tens of MiB of roots). */
#if defined(__SANITIZE_THREAD__)
#define MUT_ROUNDS 6   /* rounds of each mutator, with a collector thread */
#define WAVES 4        /* waves of short-lived threads */
#define PER_WAVE 4
#define BLOCK_CYCLES 5 /* collections while a thread is blocked */
#define NFORK 2
#define LARGE_MAX ((size_t)96 << 10)
#elif defined(__SANITIZE_ADDRESS__)
#define MUT_ROUNDS 24
#define WAVES 6
#define PER_WAVE 6
#define BLOCK_CYCLES 15
#define NFORK 3
#define LARGE_MAX ((size_t)96 << 10)
#else
#define MUT_ROUNDS 120
#define WAVES 10
#define PER_WAVE 6
#define BLOCK_CYCLES 40
#define NFORK 6
#define LARGE_MAX ((size_t)256 << 10)
#endif

#define NMUT 4        /* mutator threads */
#define LIST_N 1500   /* nodes of a round's lists */
#define KEEP_N 3000   /* nodes of a mutator's long-lived list */
#define BIG_DEPTH 11  /* its long-lived tree */
#define NSLOT 48      /* its array of objects */
#define OPS 40        /* object operations a round */
#define CHURN_LIST 2000
#define CHURN_BIG ((size_t)192 << 10)
#define LARGE_BYTES ((size_t)40 << 10) /* above 32 KiB: a span of its own */

/* ---- failures in threads ---- */

static atomic_ulong tfails;

#define TCHECK(cond)                                                                   \
    do {                                                                               \
        if (!(cond) && atomic_fetch_add(&tfails, 1) < 20)                              \
            fprintf(stderr, "%s:%d: CHECK failed in a thread: %s\n", __FILE__, __LINE__, \
                    #cond);                                                            \
    } while (0)

/* Every part ends with this: no thread saw a failure. */
#define CHECK_THREADS(part)                                                     \
    do {                                                                        \
        unsigned long f_ = atomic_exchange(&tfails, 0);                         \
        if (f_) fprintf(stderr, "%s: %lu failures in threads\n", part, f_);     \
        CHECK_EQ(f_, 0);                                                        \
    } while (0)

static void *need(void *p) {
    if (!p) {
        fprintf(stderr, "test_gc_threads: allocation failed\n");
        abort();
    }
    return p;
}

static uint64_t base_seed;

/* ---- helpers ---- */

/* Is p the start of a live GC object? */
static int alive(const void *p) { return p && mh_gc_base(p, NULL) == p; }

/* Wipe the stack below the caller, so no stale copy of an address its
 * callees saw survives there. */
static __attribute__((noinline)) void scrub_stack(void) {
    volatile char buf[262144];
    memset((char *)buf, 0, sizeof buf);
}

/* A short sleep (an interruption by the stop signal only shortens it). */
static void nap(void) {
    struct timespec ts = {0, 300 * 1000};
    nanosleep(&ts, NULL);
}

static void wait_cycles(uint64_t target) {
    while (mh_gc_cycles() < target) nap();
}

static uint64_t threads_now(void) {
    mh_gc_stats_t st;
    mh_gc_stats_get(&st, sizeof st);
    return st.threads;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
    REQUIRE(pthread_create(t, NULL, fn, arg) == 0);
}

static void join(pthread_t t) { REQUIRE(pthread_join(t, NULL) == 0); }

/* A value unique to a thread (who) and a generation, plus an index below
 * 2^24; bit 52 and up are never all clear. */
static long tag_of(int who, long gen) {
    return (long)((uint64_t)(who + 1) << 52 | (uint64_t)gen << 24);
}

/* Words that can never be heap addresses (bit 63 set). */
static uint64_t pat(uint64_t seed, size_t i) {
    return (seed + i * 0x9E3779B97F4A7C15ULL) | 1ULL << 63;
}

static void fill(uint64_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = pat(seed, i);
}

static int words_ok(const uint64_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(seed, i)) return 0;
    return 1;
}

static int words_zero(const uint64_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* ---- lists ---- */

typedef struct node {
    struct node *next;
    long value;
} node;

/* n nodes: the head holds tag + n - 1, down to tag at the tail. */
static node *list_make(long tag, long n) {
    node *h = NULL;
    for (long i = 0; i < n; i++) {
        node *x = need(mh_gc_malloc(sizeof *x));
        x->next = h;
        x->value = tag + i;
        h = x;
    }
    return h;
}

/* From the head, descending (tag + n - 1 ... tag) or ascending. */
static int list_ok(const node *h, long tag, long n, int ascending) {
    long c = 0;
    for (; h && c < n; h = h->next, c++)
        if (h->value != tag + (ascending ? c : n - 1 - c)) return 0;
    return c == n && h == NULL;
}

/* A reversed copy, in new nodes. */
static node *list_copy_reversed(const node *h) {
    node *r = NULL;
    for (; h; h = h->next) {
        node *x = need(mh_gc_malloc(sizeof *x));
        x->value = h->value;
        x->next = r;
        r = x;
    }
    return r;
}

/* Reversed in place. */
static node *list_reverse(node *h) {
    node *r = NULL;
    while (h) {
        node *n = h->next;
        h->next = r;
        r = h;
        h = n;
    }
    return r;
}

/* ---- trees (a node may be both children of its one parent) ---- */

typedef struct tree {
    struct tree *l, *r;
    long depth, sum, tag;
} tree;

static tree *tree_make(int depth, long tag, uint64_t *rng) {
    tree *t = need(mh_gc_malloc(sizeof *t));
    t->depth = depth;
    t->tag = tag;
    if (depth > 0) {
        t->l = tree_make(depth - 1, tag, rng);
        t->r = check_rand(rng) % 4 == 0 ? t->l : tree_make(depth - 1, tag, rng);
    }
    t->sum = 1 + (t->l ? t->l->sum : 0) + (t->r ? t->r->sum : 0);
    return t;
}

static int tree_ok(const tree *t, long depth, long tag) {
    if (!t || t->depth != depth || t->tag != tag) return 0;
    if (depth == 0) return t->sum == 1 && !t->l && !t->r;
    return tree_ok(t->l, depth - 1, tag) && tree_ok(t->r, depth - 1, tag) &&
           t->sum == 1 + t->l->sum + t->r->sum;
}

/* Replace a subtree about `down` levels below t with a fresh one, fixing
 * the sums on the way back up. */
static void tree_mutate(tree *t, int down, uint64_t *rng) {
    if (t->depth == 0) return;
    tree **c = check_rand(rng) & 1 ? &t->l : &t->r;
    if (down <= 1 || (*c)->depth == 0) {
        tree *n = tree_make((int)t->depth - 1, t->tag, rng);
        if (check_rand(rng) % 4 == 0) t->l = t->r = n;
        else *c = n;
    } else {
        tree_mutate(*c, down - 1, rng);
    }
    t->sum = 1 + t->l->sum + t->r->sum;
}

/* ---- arrays of objects of mixed sizes ---- */

typedef struct {
    void **obj;    /* scanned: NSLOT objects (or NULL) */
    uint64_t *meta; /* pointer-free: per slot its size, seed and kind */
} objset;

static size_t pick_size(uint64_t *rng) {
    uint64_t r = check_rand(rng) % 100;
    size_t sz;
    if (r < 70) sz = 8 + check_rand(rng) % 1024;
    else if (r < 90) sz = 1024 + check_rand(rng) % ((size_t)32 << 10);
    else sz = ((size_t)32 << 10) + 8 + check_rand(rng) % (LARGE_MAX - ((size_t)32 << 10));
    return (sz + 7) & ~(size_t)7;
}

static objset objset_new(void) {
    objset os;
    os.obj = need(mh_gc_malloc(NSLOT * sizeof(void *)));
    os.meta = need(mh_gc_malloc_atomic(3 * NSLOT * sizeof(uint64_t)));
    memset(os.meta, 0, 3 * NSLOT * sizeof(uint64_t));
    return os;
}

static int slot_ok(const objset *os, int i) {
    const uint64_t *m = &os->meta[3 * i];
    const uint64_t *p = os->obj[i];
    if (!p) return 1;
    return alive(p) && mh_gc_size(p) >= m[0] && words_ok(p, m[0] / 8, m[1]);
}

/* One operation on a random slot: check what it holds, then free it,
 * reallocate it or replace it with a new object. */
static void objset_op(objset *os, uint64_t *rng, uint64_t *serial) {
    int i = (int)(check_rand(rng) % NSLOT);
    uint64_t *m = &os->meta[3 * i];
    void *p = os->obj[i];
    TCHECK(slot_ok(os, i));
    uint64_t action = check_rand(rng) % 8;
    uint64_t seed = base_seed ^ ++*serial << 20;
    if (p && action == 0) {
        mh_gc_free(p);
        os->obj[i] = NULL;
    } else if (p && action <= 2) {
        size_t sz = pick_size(rng), usable = mh_gc_size(p);
        uint64_t *q = need(mh_gc_realloc(p, sz));
        size_t kept = m[0] < sz ? m[0] : sz;
        TCHECK(mh_gc_size(q) >= sz && mh_gc_base(q + sz / 16, NULL) == q);
        TCHECK(words_ok(q, kept / 8, m[1]));
        /* scanned memory grows zeroed past the old object's usable size */
        if (m[2] == 0 && sz > usable) TCHECK(words_zero(q + usable / 8, (sz - usable) / 8));
        fill(q, sz / 8, seed);
        os->obj[i] = q;
        m[0] = sz;
        m[1] = seed;
    } else {
        size_t sz = pick_size(rng);
        int atomic = check_rand(rng) & 1;
        uint64_t *q = need(atomic ? mh_gc_malloc_atomic(sz) : mh_gc_malloc(sz));
        TCHECK(mh_gc_size(q) >= sz);
        if (!atomic) TCHECK(words_zero(q, sz / 8));
        fill(q, sz / 8, seed);
        os->obj[i] = q;
        m[0] = sz;
        m[1] = seed;
        m[2] = (uint64_t)atomic;
    }
}

/* Move the array itself (realloc to four times its size, or back). */
static void objset_move(objset *os, int grow) {
    size_t want = NSLOT * sizeof(void *) * (grow ? 4 : 1);
    void **n = need(mh_gc_realloc(os->obj, want));
    TCHECK(mh_gc_size(n) >= want);
    os->obj = n;
    for (int i = 0; i < NSLOT; i++) {
        const uint64_t *p = n[i];
        const uint64_t *m = &os->meta[3 * i];
        if (p && m[0]) TCHECK(alive(p) && p[0] == pat(m[1], 0) && p[m[0] / 8 - 1] == pat(m[1], m[0] / 8 - 1));
    }
}

/* ---- mutators ---- */

static atomic_int mut_stop; /* for mutators running until told */
static atomic_int quiet_in, quiet_go;

typedef struct {
    int id;
    int rounds; /* < 0: until mut_stop */
    int quiet;  /* meet main halfway for the verifier */
} mut_arg;

static void *mutator(void *argp) {
    const mut_arg *a = argp;
    int id = a->id;
    uint64_t rng = base_seed ^ (uint64_t)(id + 1) * 0x9E3779B97F4A7C15ULL;
    uint64_t serial = (uint64_t)id << 40;
    long keep_tag = tag_of(id, 1);
    node *keep = list_make(keep_tag, KEEP_N);
    int keep_asc = 0;
    long big_tag = tag_of(id, 2);
    tree *big = tree_make(BIG_DEPTH, big_tag, &rng);
    objset os = objset_new();
    for (int r = 0; a->rounds < 0 ? !atomic_load(&mut_stop) : r < a->rounds; r++) {
        long t = tag_of(id, 16 + (r & 0xfffff));
        node *x = list_make(t, LIST_N);
        node *y = list_copy_reversed(x);
        TCHECK(list_ok(x, t, LIST_N, 0) && list_ok(y, t, LIST_N, 1));
        x = list_reverse(x);
        TCHECK(list_ok(x, t, LIST_N, 1) && list_ok(y, t, LIST_N, 1));
        /* the long-lived list: reversed in place each round, rebuilt now
         * and then */
        keep = list_reverse(keep);
        keep_asc = !keep_asc;
        TCHECK(list_ok(keep, keep_tag, KEEP_N, keep_asc));
        if (r % 8 == 7) {
            keep_tag = tag_of(id, 3 + (r & 7));
            keep = list_make(keep_tag, KEEP_N);
            keep_asc = 0;
        }
        int d = 5 + (int)(check_rand(&rng) % 5);
        tree *tr = tree_make(d, t, &rng);
        TCHECK(tree_ok(tr, d, t));
        tree_mutate(big, 1 + (int)(check_rand(&rng) % (BIG_DEPTH - 1)), &rng);
        TCHECK(tree_ok(big, BIG_DEPTH, big_tag));
        for (int k = 0; k < OPS; k++) objset_op(&os, &rng, &serial);
        if (r % 4 == 3) objset_move(&os, r & 4);
        if (a->quiet && r == a->rounds / 2) {
            atomic_fetch_add(&quiet_in, 1);
            while (!atomic_load(&quiet_go)) nap();
        }
    }
    /* A few more collections with all of it live, then check it all. */
    uint64_t c0 = mh_gc_cycles();
    for (long g = 0; mh_gc_cycles() < c0 + 2 && g < 40000; g++) {
        long t = tag_of(id, 8);
        node *x = list_make(t, 200);
        TCHECK(list_ok(x, t, 200, 0));
        if (g % 64 == 63) sched_yield();
    }
    TCHECK(mh_gc_cycles() >= c0 + 2);
    TCHECK(list_ok(keep, keep_tag, KEEP_N, keep_asc));
    TCHECK(tree_ok(big, BIG_DEPTH, big_tag));
    for (int i = 0; i < NSLOT; i++) TCHECK(slot_ok(&os, i));
    return NULL;
}

/* Collections in a loop, a short rest between them (some release memory). */
static atomic_int collector_stop;

static void *collector(void *arg) {
    (void)arg;
    for (unsigned n = 0; !atomic_load(&collector_stop); n++) {
        mh_gc_collect(n % 16 == 15);
        nap();
    }
    return NULL;
}

static __attribute__((noinline)) void test_mutators(int with_collector) {
    const char *part = with_collector ? "mutators" : "mutators, pacing alone";
    pthread_t col, th[NMUT];
    mut_arg args[NMUT];
    mh_gc_set_percent(20);
    uint64_t c0 = mh_gc_cycles();
    atomic_store(&collector_stop, 0);
    atomic_store(&quiet_in, 0);
    atomic_store(&quiet_go, 0);
    if (with_collector) start(&col, collector, NULL);
    for (int i = 0; i < NMUT; i++) {
        args[i] = (mut_arg){.id = i + (with_collector ? 0 : NMUT),
                            .rounds = with_collector ? MUT_ROUNDS : MUT_ROUNDS / 3 + 1,
                            .quiet = with_collector};
        start(&th[i], mutator, &args[i]);
    }
    if (with_collector) {
        /* every mutator waits: only the collector (and the verifier) run */
        while (atomic_load(&quiet_in) < NMUT) nap();
        CHECK_EQ(mh_heap_verify(), 0);
        atomic_store(&quiet_go, 1);
    }
    for (int i = 0; i < NMUT; i++) join(th[i]);
    if (with_collector) {
        atomic_store(&collector_stop, 1);
        join(col);
    }
    uint64_t ran = mh_gc_cycles() - c0;
    fprintf(stderr, "%s: %llu cycles\n", part, (unsigned long long)ran);
    CHECK_THREADS(part);
    CHECK(ran >= 2);
    CHECK_EQ(mh_heap_verify(), 0);
    mh_gc_set_percent(100);
}

/* ---- thread churn ---- */

static void *churner(void *argp) {
    int id = (int)(intptr_t)argp;
    uint64_t rng = base_seed ^ (uint64_t)(id + 1) * 0x2545F4914F6CDD1DULL;
    long t = tag_of(id, 5);
    node *volatile l = list_make(t, CHURN_LIST);
    uint64_t *volatile b = need(mh_gc_malloc_atomic(CHURN_BIG));
    fill(b, CHURN_BIG / 8, (uint64_t)t);
    tree *volatile tr = tree_make(8, t, &rng);
    uint64_t c0 = mh_gc_cycles();
    while (mh_gc_cycles() < c0 + 3) {
        long g = tag_of(id, 6);
        node *x = list_make(g, 100);
        TCHECK(list_ok(x, g, 100, 0));
        TCHECK(list_ok(l, t, CHURN_LIST, 0));
        nap();
    }
    TCHECK(list_ok(l, t, CHURN_LIST, 0));
    TCHECK(words_ok(b, CHURN_BIG / 8, (uint64_t)t));
    TCHECK(tree_ok(tr, 8, t));
    return NULL;
}

static __attribute__((noinline)) void test_churn(void) {
    mh_gc_collect(1);
    mh_gc_stats_t s0, s1;
    mh_gc_stats_get(&s0, sizeof s0);
    size_t live0 = mh_gc_live_bytes(), heap0 = mh_gc_heap_size();
    pthread_t col, th[2][PER_WAVE];
    atomic_store(&collector_stop, 0);
    start(&col, collector, NULL);
    /* two waves alive at a time: one starts, then the one before is joined */
    for (int w = 0; w <= WAVES; w++) {
        if (w < WAVES)
            for (int i = 0; i < PER_WAVE; i++)
                start(&th[w & 1][i], churner, (void *)(intptr_t)(100 + w * PER_WAVE + i));
        if (w > 0)
            for (int i = 0; i < PER_WAVE; i++) join(th[(w - 1) & 1][i]);
    }
    atomic_store(&collector_stop, 1);
    join(col);
    CHECK_THREADS("churn");
    /* Everything the dead threads held is garbage now: two collections
     * (the first may keep what was allocated since its last sweep). */
    scrub_stack();
    mh_gc_collect(1);
    mh_gc_collect(1);
    mh_gc_stats_get(&s1, sizeof s1);
    size_t live1 = mh_gc_live_bytes(), heap1 = mh_gc_heap_size();
    uint64_t held = CHURN_LIST * sizeof(node) + CHURN_BIG; /* at least, by each thread */
    uint64_t total = held * WAVES * PER_WAVE;
    uint64_t freed = (s1.swept_bytes - s0.swept_bytes) + (s1.reclaimed_bytes - s0.reclaimed_bytes);
    fprintf(stderr,
            "churn: %d threads held %llu KiB; live %zu -> %zu KiB, heap %zu -> %zu KiB, "
            "%llu KiB swept or reclaimed, %llu cycles\n",
            WAVES * PER_WAVE, (unsigned long long)total >> 10, live0 >> 10, live1 >> 10,
            heap0 >> 10, heap1 >> 10, (unsigned long long)freed >> 10,
            (unsigned long long)(s1.cycles - s0.cycles));
    CHECK_EQ(s1.threads, s0.threads);
    /* less than one wave's worth is still live, of all the waves' */
    CHECK(live1 <= live0 + held * PER_WAVE);
    CHECK(freed >= total);
    CHECK(heap1 <= heap0 + total / 2);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- blocked regions ---- */

static int announce[2], release_fds[2];
static uintptr_t blocked_list, blocked_big; /* disguised */
static long blocked_tag;
#define BLOCKED_LIST 3000
#define BLOCKED_BIG ((size_t)64 << 10)

static int read_byte(int fd) {
    char c;
    ssize_t r;
    while ((r = read(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return r == 1;
}

static int write_byte(int fd) {
    char c = 'x';
    ssize_t r;
    while ((r = write(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return r == 1;
}

/* Inside the blocked region: every signal blocked, so a collection that
 * waited for this thread to stop would never finish. */
static void *blocked_fn(void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    TCHECK(write_byte(announce[1]));
    TCHECK(read_byte(release_fds[0]));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return arg;
}

static void *blocker(void *arg) {
    (void)arg;
    long t = blocked_tag;
    /* (a list of several spans: only the newest one stays cached, and
     * the others are swept, kept only by this stack) */
    node *volatile l = list_make(t, BLOCKED_LIST);
    uint64_t *volatile big = need(mh_gc_malloc(BLOCKED_BIG));
    fill(big, BLOCKED_BIG / 8, (uint64_t)t);
    blocked_list = (uintptr_t)l ^ DISGUISE;
    blocked_big = (uintptr_t)big ^ DISGUISE;
    int token;
    TCHECK(mh_gc_do_blocking(blocked_fn, &token) == &token);
    TCHECK(list_ok(l, t, BLOCKED_LIST, 0));
    TCHECK(words_ok(big, BLOCKED_BIG / 8, (uint64_t)t));
    /* out of the region: allocating while the others collect */
    uint64_t c0 = mh_gc_cycles();
    for (long i = 0; mh_gc_cycles() < c0 + 3; i++) {
        long g = tag_of(51, i & 0xfffff);
        node *x = list_make(g, 500);
        uint64_t *y = need(mh_gc_malloc(LARGE_BYTES));
        fill(y, LARGE_BYTES / 8, (uint64_t)g);
        TCHECK(list_ok(x, g, 500, 0) && words_ok(y, LARGE_BYTES / 8, (uint64_t)g));
        nap();
    }
    TCHECK(list_ok(l, t, BLOCKED_LIST, 0));
    TCHECK(words_ok(big, BLOCKED_BIG / 8, (uint64_t)t));
    return NULL;
}

/* Garbage of the same sizes, so a wrongly freed object is soon reused. */
static atomic_int garbage_stop;

static void *garbage(void *arg) {
    (void)arg;
    for (long r = 0; !atomic_load(&garbage_stop); r++) {
        long t = tag_of(52, r & 0xfffff);
        node *x = list_make(t, 1000);
        uint64_t *y = need(mh_gc_malloc(BLOCKED_BIG));
        fill(y, BLOCKED_BIG / 8, (uint64_t)t);
        TCHECK(list_ok(x, t, 1000, 0) && words_ok(y, BLOCKED_BIG / 8, (uint64_t)t));
        sched_yield();
    }
    return NULL;
}

/* Main's view of the blocked thread's objects, through their disguised
 * addresses: every node alive and intact. */
static __attribute__((noinline)) int blocked_objects_ok(void) {
    const node *h = (const node *)(blocked_list ^ DISGUISE);
    const uint64_t *big = (const uint64_t *)(blocked_big ^ DISGUISE);
    long c = 0;
    for (; h && c < BLOCKED_LIST; h = h->next, c++)
        if (!alive(h) || h->value != blocked_tag + BLOCKED_LIST - 1 - c) return 0;
    return c == BLOCKED_LIST && !h && alive(big) && words_ok(big, BLOCKED_BIG / 8, (uint64_t)blocked_tag);
}

static __attribute__((noinline)) void test_blocking(void) {
    pthread_t b, cols[2], g;
    REQUIRE(pipe(announce) == 0 && pipe(release_fds) == 0);
    blocked_tag = tag_of(50, 1);
    /* No collection starts until the blocker is inside its region (it
     * could otherwise have been signalled before it entered). */
    mh_gc_set_percent(-1);
    start(&b, blocker, NULL);
    REQUIRE(read_byte(announce[0]));
    mh_gc_set_percent(20);
    atomic_store(&collector_stop, 0);
    atomic_store(&garbage_stop, 0);
    uint64_t c0 = mh_gc_cycles();
    start(&cols[0], collector, NULL);
    start(&cols[1], collector, NULL);
    start(&g, garbage, NULL);
    wait_cycles(c0 + BLOCK_CYCLES);
    CHECK(blocked_objects_ok());
    REQUIRE(write_byte(release_fds[1]));
    join(b);
    atomic_store(&collector_stop, 1);
    atomic_store(&garbage_stop, 1);
    join(cols[0]);
    join(cols[1]);
    join(g);
    fprintf(stderr, "blocking: %llu cycles\n", (unsigned long long)(mh_gc_cycles() - c0));
    CHECK_THREADS("blocking");
    for (int i = 0; i < 2; i++) {
        close(announce[i]);
        close(release_fds[i]);
    }
    mh_gc_set_percent(100);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- fork ---- */

/* The child: alone, it allocates, collects and checks; returns a bit
 * mask of what failed (0: nothing).  No stdio here. */
static __attribute__((noinline)) int fork_child(const node *keep, long keep_tag) {
    int bad = 0;
    if (threads_now() != 1) bad |= 1;
    if (!list_ok(keep, keep_tag, 1000, 0)) bad |= 2;
    uint64_t rng = base_seed;
    long t = tag_of(61, 1);
    node *a = list_make(t, 3000);
    node *b = list_copy_reversed(a);
    tree *tr = tree_make(9, t, &rng);
    uint64_t *big = need(mh_gc_malloc_atomic(LARGE_BYTES * 3));
    fill(big, LARGE_BYTES * 3 / 8, (uint64_t)t);
    mh_gc_collect(1);
    if (!list_ok(a, t, 3000, 0) || !list_ok(b, t, 3000, 1)) bad |= 4;
    if (!tree_ok(tr, 9, t)) bad |= 8;
    if (!words_ok(big, LARGE_BYTES * 3 / 8, (uint64_t)t)) bad |= 16;
    if (!list_ok(keep, keep_tag, 1000, 0)) bad |= 2;
    if (mh_heap_verify() != 0) bad |= 32;
    return bad;
}

static __attribute__((noinline)) void test_fork(void) {
    pthread_t th[3];
    mut_arg args[3];
    long keep_tag = tag_of(60, 1);
    node *volatile keep = list_make(keep_tag, 1000);
    mh_gc_set_percent(20);
    atomic_store(&mut_stop, 0);
    for (int i = 0; i < 3; i++) {
        args[i] = (mut_arg){.id = 20 + i, .rounds = -1, .quiet = 0};
        start(&th[i], mutator, &args[i]);
    }
    for (int f = 0; f < NFORK; f++) {
        mh_gc_collect(0);
        for (int i = 0; i < 5; i++) nap(); /* the threads allocate on */
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) _exit(fork_child(keep, keep_tag));
        int st = child_wait(pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "fork %d: child %s %d\n", f, WIFEXITED(st) ? "exited" : "killed by signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? WTERMSIG(st) : -1);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    atomic_store(&mut_stop, 1);
    for (int i = 0; i < 3; i++) join(th[i]);
    CHECK_THREADS("fork");
    CHECK(list_ok(keep, keep_tag, 1000, 0));
    mh_gc_set_percent(100);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- register roots ---- */

static __attribute__((noinline)) uintptr_t small_disguised(long v) {
    node *n = need(mh_gc_malloc(sizeof *n));
    n->value = v;
    return (uintptr_t)n ^ DISGUISE;
}

static __attribute__((noinline)) uintptr_t large_disguised(uint64_t seed) {
    uint64_t *q = need(mh_gc_malloc_atomic(LARGE_BYTES));
    fill(q, LARGE_BYTES / 8, seed);
    return (uintptr_t)q ^ DISGUISE;
}

/* The references exist only from after the stack is scrubbed, and the
 * empty asm statements make the compiler hold them (in a register, when
 * optimising) across the collection; a forced collection gives up this
 * thread's current spans, so the small object is swept like any other. */
static __attribute__((noinline)) int register_root_case(void) {
    uintptr_t ds = small_disguised(tag_of(40, 1));
    uintptr_t dl = large_disguised(41);
    scrub_stack();
    __asm__ volatile("" : "+r"(ds), "+r"(dl) : : "memory");
    node *p = (node *)(ds ^ DISGUISE);
    uint64_t *q = (uint64_t *)(dl ^ DISGUISE);
    __asm__ volatile("" : "+r"(p), "+r"(q));
    mh_gc_collect(1);
    __asm__ volatile("" : "+r"(p), "+r"(q));
    return alive(p) && p->value == tag_of(40, 1) && alive(q) && words_ok(q, LARGE_BYTES / 8, 41);
}

static atomic_int spin_ready, spin_done;
static int spin_dropped_alive;

/* A thread whose references are in registers while it spins; the small
 * object's span is left behind (a thread's current span is never swept)
 * by allocating past it. */
static void *spinner(void *arg) {
    (void)arg;
    uintptr_t ds = small_disguised(tag_of(42, 1));
    for (int i = 0; i < 1100; i++) (void)need(mh_gc_malloc(sizeof(node)));
    uintptr_t dl = large_disguised(43);
    uintptr_t dd = large_disguised(44); /* dropped: kept only disguised */
    scrub_stack();
    __asm__ volatile("" : "+r"(ds), "+r"(dl) : : "memory");
    node *p = (node *)(ds ^ DISGUISE);
    uint64_t *q = (uint64_t *)(dl ^ DISGUISE);
    __asm__ volatile("" : "+r"(p), "+r"(q));
    atomic_store(&spin_ready, 1);
    while (!atomic_load(&spin_done)) __asm__ volatile("" : "+r"(p), "+r"(q));
    TCHECK(alive(p) && p->value == tag_of(42, 1));
    TCHECK(alive(q) && words_ok(q, LARGE_BYTES / 8, 43));
    spin_dropped_alive = alive((void *)(dd ^ DISGUISE));
    return NULL;
}

static __attribute__((noinline)) void test_register(void) {
    CHECK(register_root_case());
    pthread_t t;
    start(&t, spinner, NULL);
    while (!atomic_load(&spin_ready)) nap();
    for (int i = 0; i < 4; i++) mh_gc_collect(1);
    atomic_store(&spin_done, 1);
    join(t);
    CHECK_THREADS("register");
#if OPTIMIZED
    CHECK(!spin_dropped_alive);
#else
    fprintf(stderr, "register: the dropped object was %s (not checked here)\n",
            spin_dropped_alive ? "kept" : "freed");
#endif
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- unregistering ---- */

static node *main_obj;
static atomic_int unreg_step; /* the two threads take turns */
static uintptr_t unreg_dropped; /* disguised */
static void *roots_box[4];

static void *ident(void *arg) { return arg; }

/* (a wait the stop signal interrupts, as the file's header says) */
static void step_wait(int s) {
    while (atomic_load(&unreg_step) < s) nap();
}

static void *unregistered(void *arg) {
    (void)arg;
    uint64_t base = threads_now();
    /* calls that need no registration, from a thread never registered */
    mh_gc_unregister_thread();
    TCHECK(mh_gc_base((char *)main_obj + 4, NULL) == main_obj);
    TCHECK(mh_gc_size(main_obj) >= sizeof(node));
    mh_gc_disable();
    mh_gc_enable();
    TCHECK(mh_gc_add_roots(roots_box, roots_box + 4) == 0);
    mh_gc_remove_roots(roots_box, roots_box + 4);
    TCHECK(threads_now() == base);
    /* calls that register, each after unregistering */
    long v = tag_of(45, 1);
    node *n = need(mh_gc_malloc(sizeof *n));
    n->value = v;
    TCHECK(threads_now() == base + 1);
    mh_gc_unregister_thread();
    TCHECK(threads_now() == base);
    mh_gc_unregister_thread(); /* again: nothing */
    TCHECK(threads_now() == base);
    n = need(mh_gc_realloc(n, 4096));
    TCHECK(n->value == v && threads_now() == base + 1);
    mh_gc_unregister_thread();
    mh_gc_free(n);
    void *a = need(mh_gc_malloc_atomic(100));
    TCHECK(threads_now() == base + 1);
    mh_gc_unregister_thread();
    mh_gc_free(a);
    void *u = need(mh_gc_malloc_uncollectable(64));
    TCHECK(threads_now() == base + 1);
    mh_gc_unregister_thread();
    mh_gc_free(u);
    mh_gc_collect(0);
    TCHECK(threads_now() == base + 1);
    mh_gc_unregister_thread();
    int token;
    TCHECK(mh_gc_do_blocking(ident, &token) == &token);
    TCHECK(threads_now() == base + 1);
    mh_gc_unregister_thread();
    TCHECK(mh_gc_register_thread() == 0 && mh_gc_register_thread() == 0);
    TCHECK(threads_now() == base + 1);
    /* Registered again: this stack is scanned (a large object is on no
     * thread's current span, so only a root keeps it). */
    uint64_t *volatile kept = need(mh_gc_malloc_atomic(LARGE_BYTES));
    fill(kept, LARGE_BYTES / 8, 46);
    atomic_store(&unreg_step, 1); /* main collects */
    step_wait(2);
    TCHECK(alive(kept) && words_ok(kept, LARGE_BYTES / 8, 46));
    /* Unregistered: this stack is not scanned, though it still holds the
     * object. */
    uint64_t *volatile dropped = need(mh_gc_malloc_atomic(LARGE_BYTES));
    unreg_dropped = (uintptr_t)dropped ^ DISGUISE;
    mh_gc_unregister_thread();
    TCHECK(threads_now() == base);
    atomic_store(&unreg_step, 3); /* main collects and checks */
    step_wait(4);
    dropped = NULL;
    return NULL;
}

static __attribute__((noinline)) void test_unregister(void) {
    main_obj = need(mh_gc_malloc(sizeof(node)));
    pthread_t t;
    start(&t, unregistered, NULL);
    step_wait(1);
    mh_gc_collect(1);
    mh_gc_collect(1);
    atomic_store(&unreg_step, 2);
    step_wait(3);
    scrub_stack();
    mh_gc_collect(1);
    mh_gc_collect(1);
    CHECK(!alive((void *)(unreg_dropped ^ DISGUISE)));
    atomic_store(&unreg_step, 4);
    join(t);
    main_obj = NULL;
    CHECK_THREADS("unregister");
    CHECK_EQ(mh_heap_verify(), 0);
}

int main(void) {
    base_seed = check_seed(0x9c1d6a4be2f07735ULL);
    REQUIRE(mh_gc_register_thread() == 0);
    /* (each part's dead locals are scrubbed before the next) */
    test_register();
    scrub_stack();
    test_unregister();
    scrub_stack();
    test_mutators(1);
    scrub_stack();
    test_mutators(0);
    scrub_stack();
    test_churn();
    scrub_stack();
    test_blocking();
    scrub_stack();
    test_fork();
    scrub_stack();
    mh_gc_collect(1);
    CHECK_EQ(mh_heap_verify(), 0);
    mh_gc_stats_t st;
    mh_gc_stats_get(&st, sizeof st);
    fprintf(stderr, "cycles %llu, pause max %llu us, swept %llu MiB, reclaimed %llu MiB\n",
            (unsigned long long)st.cycles, (unsigned long long)st.pause_max_ns / 1000,
            (unsigned long long)st.swept_bytes >> 20, (unsigned long long)st.reclaimed_bytes >> 20);
    return check_done("test_gc_threads");
}
