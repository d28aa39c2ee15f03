/* test_cache_park.c - parked caches (cache.c): a thread's cache outlives
 * the thread, spans and stashes and all, until the next thread takes it
 * or it is flushed to central.
 *
 *   park     a thread that exits leaves its cache parked: counted, its
 *            spans still owned by it, nothing given to central;
 *   remote   another thread's frees into those spans go onto their xfree
 *            lists with one CAS (the owner stays the parked cache, no
 *            span turns unowned, central's lists do not change), and a
 *            full span's notice goes onto the parked cache's stack;
 *   take     the next thread to start gets that cache whole: the spans
 *            are its own, the notified span back on avail with the
 *            objects freed meanwhile, its first allocation served from
 *            what the cache held;
 *   expire   a cache parked for less than the bound stays; one parked
 *            longer is flushed to central (driven through
 *            mhi_cache_park_expire with a clock past the bound);
 *   bound    at most 16 caches stay parked: the oldest beyond go to
 *            central;
 *   trim     after threads exit, mh_trim and mhi_cache_trim_now give back
 *            what parked caches held: heap_inuse back to where it was;
 *   idle     a thread that takes a parked cache and then only waits:
 *            what other threads free into its full spans still goes
 *            back (the trim pass drains its notify stack), heap_inuse
 *            back to where it was but for what a cache keeps;
 *   fork     in the child of fork a parked cache whose span a freer was
 *            notifying at the fork (FREEING set, span on the stack) is
 *            repaired: it can be flushed and taken, and verifies;
 *   churn    threads that hand their objects on and exit, a thread that
 *            frees what they hand it, and the main thread expiring,
 *            trimming and verifying all at once (for TSan).
 *
 * The scavenger delay (the parking bound) is an hour, so nothing expires
 * but what the test expires.  The verifiers run after every step. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "central.h"
#include "check.h"
#include "mheap.h"
#include "pageheap.h"
#include "pageheap_util.h"
#include "sizeclass.h"

#if defined(__SANITIZE_THREAD__)
#define IN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IN_TSAN 1
#endif
#endif
#ifndef IN_TSAN
#define IN_TSAN 0
#endif

/* PARK_MAX in cache.c */
#define PARK_MAX 16
#define DELAY_MS 3600000

static mhi_cache *me(void) { return mhi_tls_cache; }
static mhi_cache_counts_t counts(void) {
    mhi_cache_counts_t n;
    mhi_cache_counts(&n);
    return n;
}
static uint64_t inuse(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    return st.heap_inuse;
}
/* Nothing parked, from a known state. */
static void unpark_all(void) {
    CHECK_EQ(mhi_cache_park_expire(INT64_MAX), 0);
    CHECK_EQ(counts().parked, 0);
}
/* Run fn(arg) in a thread of its own and wait for it to exit. */
static void in_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, arg) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
}

/* ---- park, remote, take, expire ---- */

#define NOBJ 160
typedef struct {
    size_t c;
    void *objs[NOBJ]; /* handed to main */
    uint32_t n;
    mhi_cache *cache;
    mhi_span *full, *cur;
} maker_t;

/* Fill one span of class c (filed full) and start the next (cur); hand
 * every object to main. */
static void *maker(void *arg) {
    maker_t *m = arg;
    uint32_t per = mhi_class_nobjs[m->c];
    m->n = per + 2;
    if (m->n > NOBJ) abort();
    for (uint32_t i = 0; i < m->n; i++)
        if (!(m->objs[i] = mhi_cache_alloc(m->c))) abort();
    m->cache = me();
    m->full = mhi_heap_span((uintptr_t)m->objs[0]);
    m->cur = mhi_heap_span((uintptr_t)m->objs[per]);
    if (m->full->where != MHI_WHERE_FULL || m->cur != me()->cur[m->c]) abort();
    return NULL;
}

typedef struct {
    size_t c;
    mhi_cache *cache;     /* the cache the thread got */
    int full_where;       /* where the notified span was after the first allocation */
    uint32_t full_nfree;  /* and its free objects */
    void *first;          /* the first allocation */
    bool first_in_spans;  /* it came from a span the cache owned */
    bool free_local;      /* a free into the span stayed in this thread's stash */
    mhi_span *full;
    uint32_t per;
} taker_t;

static void *taker(void *arg) {
    taker_t *t = arg;
    t->first = mhi_cache_alloc(t->c);
    if (!t->first) abort();
    t->cache = me();
    t->full_where = t->full->where;
    t->full_nfree = t->full->nfree;
    mhi_span *s = mhi_heap_span((uintptr_t)t->first);
    t->first_in_spans = owner_of(s) == me();
    uint32_t before = mhi_stash_count(me(), t->c);
    mhi_cache_free(t->first);
    t->free_local = mhi_stash_count(me(), t->c) == before + 1 && me()->stash[t->c] == t->first;
    return NULL;
}

static void test_park_take_expire(void) {
    unpark_all();
    size_t c = mhi_size_class(1024);
    uint32_t per = mhi_class_nobjs[c];
    mhi_cache_counts_t n0 = counts();
    ccount c0 = central_count(c);

    /* park */
    maker_t m = {.c = c};
    in_thread(maker, &m);
    mhi_cache *k = m.cache;
    mhi_cache_counts_t n1 = counts();
    CHECK_EQ(n1.live, n0.live);
    CHECK_EQ(n1.parked, 1);
    CHECK_EQ(n1.pool, n0.pool + 1);
    CHECK(k->parked);
    CHECK(owner_of(m.full) == k && m.full->where == MHI_WHERE_FULL);
    CHECK(owner_of(m.cur) == k && m.cur->where == MHI_WHERE_CUR && k->cur[c] == m.cur);
    CHECK(xfree_of(m.full) == MHI_XF_NOTIFY);
    CHECK_EQ(xfree_of(m.cur), 0);
    ccount c1 = central_count(c);
    CHECK_EQ(c1.npartial, c0.npartial);
    CHECK_EQ(c1.nfull, c0.nfull);
    CHECK_EQ(c1.nspans, c0.nspans + 2); /* taken from the page heap, still owned */
    VERIFY0();

    /* remote: main frees every object of the full span and one of cur,
     * then sends its stash back (flush): runs pushed onto xfree. */
    size_t nfree_full = per / 2;
    /* (The first notice on the parked cache's empty stack asks for a trim
     * pass, which drains the stack as an owner would, and may collect the
     * span's xfree list: if one ran meanwhile, the span may be on avail
     * already, its objects collected or not.) */
    uint64_t started = mhi_cache_trim_passes(), ended = mhi_cache_trim_passes_done();
    for (size_t i = 0; i < nfree_full; i++) mhi_cache_free(m.objs[i]);
    mhi_cache_free(m.objs[per]);
    mhi_cache_flush();
    mhi_lock(&k->lock); /* (a pass holds it while it drains) */
    bool quiet = started == ended && mhi_cache_trim_passes() == started;
    CHECK(owner_of(m.full) == k && owner_of(m.cur) == k);
    CHECK(!(xfree_of(m.full) & MHI_XF_ABANDONED) && !(xfree_of(m.cur) & MHI_XF_ABANDONED));
    CHECK_EQ(xfree_len(m.cur), 1);
    if (quiet) {
        CHECK_EQ(xfree_len(m.full), nfree_full);
        CHECK_EQ(m.full->nfree, 0); /* nothing went in through central */
        CHECK(atomic_load(&m.full->onstack) == 1);
        CHECK(atomic_load(&k->notify) == m.full);
    } else {
        CHECK((xfree_len(m.full) == nfree_full && m.full->nfree == 0) ||
              (xfree_len(m.full) == 0 && m.full->nfree == nfree_full));
        CHECK((atomic_load(&m.full->onstack) == 1 && atomic_load(&k->notify) == m.full) ||
              (atomic_load(&m.full->onstack) == 0 && m.full->where == MHI_WHERE_AVAIL));
    }
    mhi_unlock(&k->lock);
    CHECK(!(xfree_of(m.full) & (MHI_XF_NOTIFY | MHI_XF_FREEING)));
    ccount c2 = central_count(c);
    CHECK_EQ(c2.npartial, c1.npartial);
    CHECK_EQ(c2.nfull, c1.nfull);
    CHECK_EQ(c2.nspans, c1.nspans);
    CHECK(k->parked && counts().parked == 1);
    VERIFY0();

    /* take */
    taker_t t = {.c = c, .full = m.full, .per = per};
    in_thread(taker, &t);
    CHECK(t.cache == k);
    CHECK_EQ(t.full_where, MHI_WHERE_AVAIL); /* the notice was drained */
    CHECK_EQ(t.full_nfree, nfree_full);
    CHECK(t.first_in_spans);
    CHECK(t.free_local);
    CHECK(k->parked && counts().parked == 1); /* parked again at the taker's exit */
    CHECK(owner_of(m.full) == k && owner_of(m.cur) == k);
    VERIFY0();

    /* expire: not yet at the bound, then past it */
    int64_t now = mhi_os_millitime();
    CHECK_EQ(mhi_cache_park_expire(now), 1);
    CHECK(k->parked);
    VERIFY0();
    CHECK_EQ(mhi_cache_park_expire(now + 2 * (int64_t)DELAY_MS), 0);
    CHECK(!k->parked);
    mhi_cache_counts_t n2 = counts();
    CHECK_EQ(n2.parked, 0);
    CHECK_EQ(n2.pool, n1.pool); /* in the empty pool now */
    CHECK(owner_of(m.full) == NULL && owner_of(m.cur) == NULL);
    CHECK(xfree_of(m.full) & MHI_XF_ABANDONED);
    CHECK(m.full->where == MHI_WHERE_CPARTIAL && m.cur->where == MHI_WHERE_CPARTIAL);
    CHECK(on_list(&mhi_centrals[c].partial, m.full));
    for (size_t i = 1; i < MHI_NUM_CLASSES; i++)
        CHECK(k->cur[i] == &mhi_span_empty && !k->avail[i].first && !k->full[i].first &&
              !k->stash[i]);
    VERIFY0();
    for (uint32_t i = (uint32_t)nfree_full; i < m.n; i++)
        if (i != per) mhi_cache_free(m.objs[i]);
    mhi_cache_flush();
    CHECK_EQ(central_count(c).nspans, c0.nspans);
    VERIFY0();
}

/* ---- bound ---- */

#define NBOUND (PARK_MAX + 3)
static pthread_barrier_t bound_barrier;
static void *bound_thread(void *arg) {
    void **slot = arg;
    *slot = mhi_cache_alloc(mhi_size_class(48));
    if (!*slot) abort();
    pthread_barrier_wait(&bound_barrier); /* every thread has its own cache */
    pthread_barrier_wait(&bound_barrier); /* main has counted them */
    return NULL;
}

static void test_bound(void) {
    unpark_all();
    mhi_cache_counts_t n0 = counts();
    void *objs[NBOUND];
    pthread_t t[NBOUND];
    REQUIRE(pthread_barrier_init(&bound_barrier, NULL, NBOUND + 1) == 0);
    for (int i = 0; i < NBOUND; i++)
        REQUIRE(pthread_create(&t[i], NULL, bound_thread, &objs[i]) == 0);
    pthread_barrier_wait(&bound_barrier);
    CHECK_EQ(counts().live, n0.live + NBOUND);
    pthread_barrier_wait(&bound_barrier);
    for (int i = 0; i < NBOUND; i++) REQUIRE(pthread_join(t[i], NULL) == 0);
    pthread_barrier_destroy(&bound_barrier);
    mhi_cache_counts_t n1 = counts();
    CHECK_EQ(n1.live, n0.live);
    CHECK_EQ(n1.parked, PARK_MAX);
    /* (pool counts the parked and the empty ones: new caches were made
     * only for the threads the pool could not serve) */
    CHECK_EQ(n1.pool, n0.pool > NBOUND ? n0.pool : NBOUND);
    VERIFY0();
    /* The objects of flushed caches' spans now free into central, the
     * others into parked spans: every way verifies. */
    for (int i = 0; i < NBOUND; i++) mhi_cache_free(objs[i]);
    mhi_cache_flush();
    VERIFY0();
    unpark_all();
    VERIFY0();
}

/* ---- trim ---- */

static void *churn_and_exit(void *arg) {
    (void)arg;
    /* Enough of several classes to take new spans and keep entirely free
     * ones, and fill the stashes. */
    enum { N = 3000 };
    static __thread void *objs[N];
    size_t sizes[] = {32, 256, 1024, 4096};
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < N; i++)
            if (!(objs[i] = mhi_cache_alloc(mhi_size_class(sizes[(i + r) % 4])))) abort();
        for (int i = 0; i < N; i++) mhi_cache_free(objs[i]);
    }
    return NULL;
}

static void test_trim(void) {
    unpark_all();
    (void)mh_trim();
    uint64_t base = inuse();
    for (int round = 0; round < 2; round++) {
        in_thread(churn_and_exit, NULL);
        CHECK_EQ(counts().parked, 1);
        CHECK(inuse() > base); /* what the parked cache holds */
        VERIFY0();
        if (round == 0) (void)mh_trim();
        else (void)mhi_cache_trim_now();
        CHECK_EQ(counts().parked, 0);
        CHECK(inuse() <= base);
        if (inuse() > base)
            fprintf(stderr, "  round %d: heap_inuse %llu, was %llu\n", round,
                    (unsigned long long)inuse(), (unsigned long long)base);
        VERIFY0();
    }
}

/* ---- idle: a parked cache taken by a thread that only waits ---- */

#define IDLE_OBJS 4096
static void *idle_objs[IDLE_OBJS];
static size_t idle_class;
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_state; /* 1: the idle thread has its cache; 2: it may exit */
static mhi_cache *idle_cache;

static void *idle_filler(void *arg) {
    (void)arg;
    for (int i = 0; i < IDLE_OBJS; i++)
        if (!(idle_objs[i] = mhi_cache_alloc(idle_class))) abort();
    return NULL;
}
static void *idle_waiter(void *arg) {
    (void)arg;
    void *p = mhi_cache_alloc(mhi_size_class(16)); /* takes the parked cache */
    if (!p) abort();
    pthread_mutex_lock(&idle_mu);
    idle_cache = me();
    idle_state = 1;
    pthread_cond_broadcast(&idle_cv);
    while (idle_state != 2) pthread_cond_wait(&idle_cv, &idle_mu);
    pthread_mutex_unlock(&idle_mu);
    mhi_cache_free(p);
    return NULL;
}

static void test_idle(void) {
    unpark_all();
    (void)mh_trim();
    idle_class = mhi_size_class(1024);
    uint64_t base = inuse();
    in_thread(idle_filler, NULL); /* fills about 4 MiB of spans, parked */
    CHECK_EQ(counts().parked, 1);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, idle_waiter, NULL) == 0);
    pthread_mutex_lock(&idle_mu);
    while (idle_state != 1) pthread_cond_wait(&idle_cv, &idle_mu);
    pthread_mutex_unlock(&idle_mu);
    CHECK_EQ(counts().parked, 0);
    CHECK(owner_of(mhi_heap_span((uintptr_t)idle_objs[0])) == idle_cache);
    /* What a cache may keep: its entirely free spans up to 256 KiB
     * (EMPTY_KEEP in cache.c) and its current span of the class. */
    uint64_t keep = (256u << 10) + mhi_heap_span((uintptr_t)idle_objs[IDLE_OBJS - 1])->nbytes;
    for (int i = 0; i < IDLE_OBJS; i++) mhi_cache_free(idle_objs[i]);
    mhi_cache_flush(); /* main's stashes back to the spans */
    (void)mhi_cache_trim_now();
    uint64_t now = inuse();
    CHECK(now <= base + keep);
    if (now > base + keep)
        fprintf(stderr, "  idle: %llu KiB still in use\n", (unsigned long long)(now - base) >> 10);
    VERIFY0();
    pthread_mutex_lock(&idle_mu);
    idle_state = 2;
    pthread_cond_broadcast(&idle_cv);
    pthread_mutex_unlock(&idle_mu);
    REQUIRE(pthread_join(t, NULL) == 0);
    VERIFY0();
}

/* ---- fork ---- */

static __attribute__((unused)) void *fork_child_thread(void *arg) {
    size_t c = *(size_t *)arg;
    void *p = mhi_cache_alloc(c);
    if (!p) abort();
    mhi_cache_free(p);
    return NULL;
}

static void test_fork(void) {
    unpark_all();
    size_t c = mhi_size_class(2048);
    uint32_t per = mhi_class_nobjs[c];
    maker_t m = {.c = c};
    in_thread(maker, &m);
    mhi_cache *k = m.cache;
    REQUIRE(k->parked);
    /* Objects of the full span freed here, the span notified and on the
     * parked cache's stack. */
    for (uint32_t i = 0; i < 3; i++) mhi_cache_free(m.objs[i]);
    mhi_cache_flush();
    REQUIRE(atomic_load(&k->notify) == m.full);
    /* A freer delivering a notice at the fork leaves FREEING set (built
     * here: the state push_remote holds between its CAS and its clear). */
    atomic_fetch_or(&m.full->xfree, MHI_XF_FREEING);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20); /* a flush waiting on FREEING for ever fails the test */
        int bad = 0;
#if IN_TSAN
        /* (nor may the flush below start the background thread there) */
        if (mh_option_set("background", 0) != 0) bad |= 64;
#endif
        if (!(atomic_load(&m.full->xfree) & MHI_XF_FREEING) &&
            m.full->where == MHI_WHERE_AVAIL && m.full->nfree == 3 &&
            atomic_load(&k->notify) == NULL && atomic_load(&m.full->onstack) == 0) {
            /* repaired: FREEING cleared, span on avail with the objects */
        } else {
            bad |= 1;
        }
        if (mh_heap_verify()) bad |= 2;
#if !IN_TSAN
        /* A thread of the child takes the parked cache, and parks it again.
         * (ThreadSanitizer stops a child of a threaded process that starts
         * a thread.) */
        pthread_t t;
        if (pthread_create(&t, NULL, fork_child_thread, &c) || pthread_join(t, NULL)) bad |= 4;
        if (!k->parked || mh_heap_verify()) bad |= 8;
#endif
        if (mhi_cache_park_expire(INT64_MAX) != 0 || owner_of(m.full) != NULL) bad |= 16;
        if (mh_heap_verify()) bad |= 32;
        _exit(bad);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "  fork child: status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    atomic_fetch_and(&m.full->xfree, ~MHI_XF_FREEING); /* the freer "finishes" */
    VERIFY0();
    for (uint32_t i = 3; i < m.n; i++) mhi_cache_free(m.objs[i]);
    mhi_cache_flush();
    unpark_all();
    VERIFY0();
    (void)per;
}

/* ---- churn ---- */

enum { LANES = 3, GENS = 40, SLOTS = 400, OPS = 1500, QCAP = 4096 };
static const size_t churn_sizes[] = {16, 48, 128, 256, 640, 1024, 3000};

/* What the lanes hand to the freer thread. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *q[QCAP];
    int n, lanes_done;
} handq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};

typedef struct {
    void *slot[SLOTS];
    uint64_t rng;
    int gen;
    pthread_t prev, last; /* last: the lane's last thread, joined by main */
} lane_t;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static void *obj_new(uint64_t *r) {
    size_t sz = churn_sizes[rnd(r) % (sizeof churn_sizes / sizeof *churn_sizes)];
    uint64_t *p = mhi_cache_alloc(mhi_size_class(sz));
    if (!p) abort();
    p[0] = (uint64_t)(uintptr_t)p ^ 0x5a5a;
    p[1] = sz;
    return p;
}
static void obj_free(void *q) {
    uint64_t *p = q;
    if (p[0] != ((uint64_t)(uintptr_t)p ^ 0x5a5a)) abort(); /* damaged or reused */
    mhi_cache_free(p);
}

static void *lane_run(void *arg) {
    lane_t *l = arg;
    for (int k = 0; k < OPS; k++) {
        uint32_t i = (uint32_t)(rnd(&l->rng) % SLOTS);
        if (k % 4 == 0) { /* hand one to the freer */
            pthread_mutex_lock(&handq.mu);
            if (handq.n < QCAP) {
                handq.q[handq.n++] = l->slot[i];
                l->slot[i] = NULL;
            }
            pthread_cond_signal(&handq.cv);
            pthread_mutex_unlock(&handq.mu);
        }
        if (l->slot[i]) obj_free(l->slot[i]);
        l->slot[i] = obj_new(&l->rng);
    }
    if (l->gen > 0 && pthread_join(l->prev, NULL)) abort();
    if (++l->gen < GENS) {
        l->prev = pthread_self();
        pthread_t next;
        if (pthread_create(&next, NULL, lane_run, l)) abort();
        return NULL;
    }
    for (int i = 0; i < SLOTS; i++) obj_free(l->slot[i]);
    pthread_mutex_lock(&handq.mu);
    l->last = pthread_self();
    handq.lanes_done++;
    pthread_cond_signal(&handq.cv);
    pthread_mutex_unlock(&handq.mu);
    return NULL;
}

static void *freer_run(void *arg) {
    (void)arg;
    void *batch[QCAP];
    for (;;) {
        pthread_mutex_lock(&handq.mu);
        while (handq.n == 0 && handq.lanes_done < LANES) pthread_cond_wait(&handq.cv, &handq.mu);
        int n = handq.n;
        memcpy(batch, handq.q, n * sizeof *batch);
        handq.n = 0;
        bool done = handq.lanes_done == LANES;
        pthread_mutex_unlock(&handq.mu);
        for (int i = 0; i < n; i++) obj_free(batch[i]);
        if (done && n == 0) break;
    }
    return NULL;
}

static void test_churn(void) {
    unpark_all();
    (void)mh_trim();
    uint64_t base = inuse();
    static lane_t lanes[LANES];
    pthread_t first[LANES], freer;
    REQUIRE(pthread_create(&freer, NULL, freer_run, NULL) == 0);
    for (int i = 0; i < LANES; i++) {
        lanes[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        for (int s = 0; s < SLOTS; s++) lanes[i].slot[s] = obj_new(&lanes[i].rng);
        REQUIRE(pthread_create(&first[i], NULL, lane_run, &lanes[i]) == 0);
    }
    /* Meanwhile: expire (everything, or nothing), trim and verify. */
    for (int round = 0;; round++) {
        pthread_mutex_lock(&handq.mu);
        bool done = handq.lanes_done == LANES;
        pthread_mutex_unlock(&handq.mu);
        if (done) break;
        if (round % 3 == 0) (void)mhi_cache_park_expire(INT64_MAX);
        else if (round % 3 == 1) (void)mhi_cache_park_expire(mhi_os_millitime());
        else (void)mhi_cache_trim_now();
        CHECK_EQ(mhi_cache_verify() + mhi_central_verify(), 0);
        usleep(1000);
    }
    REQUIRE(pthread_join(freer, NULL) == 0);
    /* Each lane's threads joined their predecessors; main joins the last
     * (lanes_done, read under the lock, came after each one's last). */
    for (int i = 0; i < LANES; i++) REQUIRE(pthread_join(lanes[i].last, NULL) == 0);
    CHECK_EQ(counts().live, 1);
    VERIFY0();
    (void)mh_trim();
    CHECK_EQ(counts().parked, 0);
    CHECK(inuse() <= base);
    VERIFY0();
    (void)first;
}

int main(void) {
    REQUIRE(mh_option_set("background", 1) == 0);
    REQUIRE(mh_option_set("scavenge_delay_ms", DELAY_MS) == 0);
    /* main's own cache exists first */
    void *p = mhi_cache_alloc(mhi_size_class(16));
    REQUIRE(p != NULL);
    test_park_take_expire();
    test_bound();
    test_trim();
    test_idle();
    test_fork();
    test_churn();
    mhi_cache_free(p);
    VERIFY0();
    return check_done("test_cache_park");
}
