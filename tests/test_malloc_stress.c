/* test_malloc_stress.c - a seeded, multi-threaded stress test of the malloc
 * layer through its public entry points (mh_malloc, mh_calloc, mh_realloc,
 * mh_aligned_alloc, mh_free, mh_free_sized, mh_free_aligned_sized, mh_trim).
 *
 * Every block is filled with a pattern derived from (thread id, block id)
 * and checked before it is freed, moved by realloc or handed on.  Phases:
 *
 *   1. churn: 8 worker slots; in rounds, some workers are joined and new ones
 *      started in their slots.  Workers allocate, free, realloc, and hand
 *      blocks to other slots through lock-protected mailboxes (freed by the
 *      receiver) and to a global pool (freed or adopted by later threads).
 *      Blocks outlive the threads that made them.  A late thread-specific
 *      destructor also allocates after mheap has released the thread's cache.
 *   2. producer/consumer: some threads only allocate, others only free, a few
 *      hundred thousand blocks through a bounded queue; heap_inuse must stay
 *      bounded during and after the phase.
 *   3. cleanup: fresh threads free everything left and call mh_trim(); then
 *      nothing may be in use and mh_heap_verify() must find no error.
 * Each worker also runs mh_heap_verify() halfway through its operations, while
 * the others keep working (it checks the calling thread's own cache in full
 * and every other cache's locked lists); it must find no error.
 *
 * MHEAP_TEST_SEED replays a run; MHEAP_STRESS_SCALE (percent; default 100, or
 * 10 when built with ThreadSanitizer; tests/preload.cmake sets it for the
 * sanitizer builds) scales the number of operations. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mheap.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
/* ThreadSanitizer makes every memory access many times slower. */
#ifdef UNDER_TSAN
#define DEFAULT_SCALE 10
#else
#define DEFAULT_SCALE 100
#endif

#define NSLOTS 8          /* concurrent workers in phase 1 */
#define MAX_LIVE 384      /* live blocks per worker */
#define MAILBOX_MAX 1024  /* a fuller mailbox makes the sender free the block itself */
#define POOL_MAX 8192
#define NPRODUCERS 4
#define NCONSUMERS 4
#define QUEUE_CAP 8192
#define NCLEANERS 8
#define INUSE_BOUND (256ull << 20)

/* ---- failures from any thread (check.h's counters are not thread-safe) ---- */

static _Atomic unsigned long nfail_threads;
static _Atomic unsigned long nchecked_blocks;

#define TFAIL(...)                                                            \
    do {                                                                      \
        atomic_fetch_add(&nfail_threads, 1);                                  \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
    } while (0)

/* ---- blocks and their pattern ---- */

typedef struct {
    uint8_t *p;
    size_t size;     /* bytes asked for (and filled) */
    uint64_t key;    /* pattern key: mix(thread id, block id) */
    uint32_t align;  /* > 16 if from mh_aligned_alloc and not moved since */
} rec;

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t block_key(uint32_t tid, uint64_t bid) {
    return mix64(((uint64_t)tid << 40) ^ bid);
}

static inline uint64_t pat_word(uint64_t key, size_t i) {
    return key ^ (i * 0xD6E8FEB86659FD93ull);
}
/* Byte j is byte j % 8 of word j / 8 (little-endian), so a block's pattern
 * does not depend on its size: realloc keeps a prefix of it. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the fill pattern assumes a little-endian machine"
#endif
static inline uint8_t pat_byte(uint64_t key, size_t j) {
    return (uint8_t)(pat_word(key, j / 8) >> ((j & 7) * 8));
}

/* Fill bytes [from, to) of a block with its pattern. */
static void fill_range(uint8_t *p, uint64_t key, size_t from, size_t to) {
    size_t w0 = (from + 7) / 8, w1 = to / 8;
    size_t j = from;
    for (; j < to && j < w0 * 8; j++) p[j] = pat_byte(key, j);
    if (w0 < w1) {
        uint64_t *w = (uint64_t *)p; /* blocks are 16-byte aligned */
        for (size_t i = w0; i < w1; i++) w[i] = pat_word(key, i);
        j = w1 * 8;
    }
    for (; j < to; j++) p[j] = pat_byte(key, j);
}

/* First offset in [from, to) that does not hold the pattern, or SIZE_MAX. */
static size_t check_range(const uint8_t *p, uint64_t key, size_t from, size_t to) {
    size_t w0 = (from + 7) / 8, w1 = to / 8;
    size_t j = from;
    for (; j < to && j < w0 * 8; j++)
        if (p[j] != pat_byte(key, j)) return j;
    if (w0 < w1) {
        const uint64_t *w = (const uint64_t *)p;
        uint64_t bad = 0;
        for (size_t i = w0; i < w1; i++) bad |= w[i] ^ pat_word(key, i);
        if (bad) {
            for (size_t i = w0; i < w1; i++)
                if (w[i] != pat_word(key, i)) return i * 8;
        }
        j = w1 * 8;
    }
    for (; j < to; j++)
        if (p[j] != pat_byte(key, j)) return j;
    return SIZE_MAX;
}

/* Check a block before it is freed or handed on; true if intact. */
static bool rec_check(const rec *r, const char *when) {
    atomic_fetch_add_explicit(&nchecked_blocks, 1, memory_order_relaxed);
    bool ok = true;
    if (((uintptr_t)r->p & 15) != 0) {
        TFAIL("%s: block %p (size %zu) not 16-byte aligned", when, (void *)r->p, r->size);
        ok = false;
    }
    if (r->align > 16 && ((uintptr_t)r->p & (r->align - 1)) != 0) {
        TFAIL("%s: block %p not aligned to %u", when, (void *)r->p, r->align);
        ok = false;
    }
    size_t us = mh_usable_size(r->p);
    if (us < r->size) {
        TFAIL("%s: usable size %zu < size %zu at %p", when, us, r->size, (void *)r->p);
        ok = false;
    }
    size_t bad = check_range(r->p, r->key, 0, r->size);
    if (bad != SIZE_MAX) {
        TFAIL("%s: block %p (size %zu, key %016" PRIx64 ") corrupt at offset %zu: %02x",
              when, (void *)r->p, r->size, r->key, bad, r->p[bad]);
        ok = false;
    }
    return ok;
}

/* Free a checked block, by one of the free entry points. */
static void rec_free(rec *r, uint64_t rnd) {
    rec_check(r, "free");
    if (r->align > 16 && (rnd & 1)) mh_free_aligned_sized(r->p, r->align, r->size);
    else if (r->align <= 16 && (rnd & 3) == 0) mh_free_sized(r->p, r->size);
    else mh_free(r->p);
    r->p = NULL;
}

/* ---- sizes: mostly small with a power-law mix, some medium, few large ---- */

static size_t pick_size(uint64_t *rng, int large_per_mille) {
    uint64_t r = check_rand(rng);
    unsigned sel = (unsigned)(r % 1000);
    r = check_rand(rng);
    if (sel < (unsigned)large_per_mille) { /* 33 KiB .. 2 MiB, log-uniform */
        unsigned e = 15 + (unsigned)(r % 6);            /* 2^15 .. 2^20 */
        size_t lo = (size_t)1 << e, sz = lo + (size_t)((r >> 8) % lo);
        if (sz < (33u << 10)) sz = (33u << 10) + (size_t)((r >> 32) % 1024);
        if (sz > (2u << 20)) sz = 2u << 20;
        return sz;
    }
    if (sel < (unsigned)large_per_mille + 80) /* 1 KiB .. 32 KiB */
        return 1025 + (size_t)(r % (32768 - 1024));
    unsigned e = (unsigned)(r % 11); /* 1 .. 1024, log-uniform-ish */
    return 1 + (size_t)((r >> 8) % ((size_t)1 << e));
}

/* ---- lock-protected vectors of blocks: mailboxes and the pool ---- */

typedef struct {
    pthread_mutex_t mu;
    rec *v;
    size_t n, cap;
} recvec;

static void rv_init(recvec *q, size_t cap) {
    pthread_mutex_init(&q->mu, NULL);
    q->v = calloc(cap, sizeof *q->v); /* the system allocator: not under test */
    REQUIRE(q->v != NULL);
    q->n = 0;
    q->cap = cap;
}

/* Push r; false (r untouched) if full. */
static bool rv_push(recvec *q, const rec *r) {
    pthread_mutex_lock(&q->mu);
    bool ok = q->n < q->cap;
    if (ok) q->v[q->n++] = *r;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

/* Pop up to max records into out; returns how many. */
static size_t rv_pop(recvec *q, rec *out, size_t max) {
    pthread_mutex_lock(&q->mu);
    size_t n = q->n < max ? q->n : max;
    for (size_t i = 0; i < n; i++) out[i] = q->v[--q->n];
    pthread_mutex_unlock(&q->mu);
    return n;
}

static recvec mailbox[NSLOTS];
static recvec pool;
static _Atomic uint32_t next_tid = 1;
static uint64_t seed;
static long scale = DEFAULT_SCALE;

static long scaled(long n) {
    long v = n * scale / 100;
    return v < 1 ? 1 : v;
}

/* ---- a destructor that runs after mheap released the thread's cache ---- */

static pthread_key_t late_key;
static _Atomic unsigned long nlate;

static void late_dtor(void *v) {
    uintptr_t stage = (uintptr_t)v;
    if (stage == 1) {
        /* First destructor pass: mheap's own destructor may not have run
         * yet; ask for a second pass, by which time it has. */
        pthread_setspecific(late_key, (void *)2);
        return;
    }
    /* Allocations here use the central lists directly (dead cache). */
    atomic_fetch_add(&nlate, 1);
    uint32_t tid = atomic_fetch_add(&next_tid, 1);
    uint64_t rng = seed ^ mix64(tid);
    for (int i = 0; i < 6; i++) {
        size_t sz = pick_size(&rng, 20);
        rec r = {mh_malloc(sz), sz, block_key(tid, (uint64_t)i), 0};
        if (!r.p) {
            TFAIL("late malloc(%zu) returned NULL", sz);
            continue;
        }
        fill_range(r.p, r.key, 0, sz);
        if (i % 2 == 0 || !rv_push(&pool, &r)) rec_free(&r, check_rand(&rng));
    }
}

/* ---- phase 1: churn workers ---- */

typedef struct {
    int slot;
    long nops;
    pthread_t th;
    bool running;
} worker_arg;

static _Atomic unsigned long nallocs, nhandoffs;

static bool alloc_rec(rec *r, uint32_t tid, uint64_t bid, uint64_t *rng, int large_per_mille) {
    size_t sz = pick_size(rng, large_per_mille);
    unsigned how = (unsigned)(check_rand(rng) % 100);
    r->size = sz;
    r->key = block_key(tid, bid);
    r->align = 0;
    if (how < 8) { /* calloc: must read as zero */
        size_t n = 1, each = sz;
        if (sz % 4 == 0 && (how & 1)) n = 4, each = sz / 4;
        r->p = mh_calloc(n, each);
        if (r->p) {
            size_t bad = SIZE_MAX;
            for (size_t i = 0; i < sz; i++)
                if (r->p[i]) {
                    bad = i;
                    break;
                }
            if (bad != SIZE_MAX) TFAIL("calloc(%zu, %zu) = %p not zero at %zu", n, each, (void *)r->p, bad);
        }
    } else if (how < 11) { /* aligned */
        uint32_t align = 32u << (check_rand(rng) % 8); /* 32 .. 4096 */
        r->p = mh_aligned_alloc(align, sz);
        r->align = align;
    } else {
        r->p = mh_malloc(sz);
    }
    if (!r->p) {
        TFAIL("allocation of %zu bytes returned NULL", sz);
        return false;
    }
    atomic_fetch_add_explicit(&nallocs, 1, memory_order_relaxed);
    fill_range(r->p, r->key, 0, sz);
    return true;
}

/* realloc r to a new size; checks the kept prefix, fills the rest. */
static void realloc_rec(rec *r, uint64_t *rng) {
    if (!rec_check(r, "realloc")) return;
    size_t nsz;
    unsigned how = (unsigned)(check_rand(rng) % 10);
    if (how < 4) nsz = r->size + 1 + (size_t)(check_rand(rng) % (r->size < 4096 ? r->size + 16 : 4096));
    else if (how < 8) nsz = 1 + (size_t)(check_rand(rng) % r->size);
    else nsz = pick_size(rng, 10);
    uint8_t *q = mh_realloc(r->p, nsz);
    if (!q) {
        TFAIL("realloc(%p, %zu) returned NULL", (void *)r->p, nsz);
        return; /* the old block is still valid */
    }
    size_t keep = r->size < nsz ? r->size : nsz;
    size_t bad = check_range(q, r->key, 0, keep);
    if (bad != SIZE_MAX)
        TFAIL("realloc %p -> %p (%zu -> %zu) lost data at offset %zu", (void *)r->p, (void *)q,
              r->size, nsz, bad);
    r->align = 0; /* no longer from mh_aligned_alloc */
    r->p = q;
    if (nsz > r->size) fill_range(q, r->key, r->size, nsz);
    r->size = nsz;
}

static _Atomic unsigned long verify_runs, verify_errors;

static void *worker(void *argp) {
    worker_arg *a = argp;
    uint32_t tid = atomic_fetch_add(&next_tid, 1);
    uint64_t rng = seed ^ mix64(0x1000 + tid);
    uint64_t bid = 0;
    rec *live = malloc(MAX_LIVE * sizeof *live);
    rec in[64];
    size_t nlive = 0;
    if (!live) {
        TFAIL("out of system memory");
        return NULL;
    }
    pthread_setspecific(late_key, (void *)1);

    for (long op = 0; op < a->nops; op++) {
        if (op == a->nops / 2) {
            atomic_fetch_add(&verify_errors, (unsigned long)mh_heap_verify());
            atomic_fetch_add(&verify_runs, 1);
        }
        unsigned r = (unsigned)(check_rand(&rng) % 1000);
        if (r < 400 || nlive == 0) { /* allocate */
            if (nlive == MAX_LIVE) {
                size_t i = check_rand(&rng) % nlive;
                rec_free(&live[i], check_rand(&rng));
                live[i] = live[--nlive];
            }
            if (alloc_rec(&live[nlive], tid, bid++, &rng, 4)) nlive++;
        } else if (r < 640) { /* free one of ours */
            size_t i = check_rand(&rng) % nlive;
            rec_free(&live[i], check_rand(&rng));
            live[i] = live[--nlive];
        } else if (r < 740) { /* realloc */
            realloc_rec(&live[check_rand(&rng) % nlive], &rng);
        } else if (r < 840) { /* hand a block to another slot */
            size_t i = check_rand(&rng) % nlive;
            int to = (a->slot + 1 + (int)(check_rand(&rng) % (NSLOTS - 1))) % NSLOTS;
            if (rec_check(&live[i], "send") && rv_push(&mailbox[to], &live[i])) {
                atomic_fetch_add_explicit(&nhandoffs, 1, memory_order_relaxed);
            } else {
                rec_free(&live[i], check_rand(&rng));
            }
            live[i] = live[--nlive];
        } else if (r < 900) { /* receive: free, or adopt some */
            size_t n = rv_pop(&mailbox[a->slot], in, 64);
            for (size_t i = 0; i < n; i++) {
                if ((check_rand(&rng) & 3) == 0 && nlive < MAX_LIVE) {
                    if (rec_check(&in[i], "adopt")) live[nlive++] = in[i];
                } else {
                    rec_free(&in[i], check_rand(&rng));
                }
            }
        } else if (r < 930) { /* take from the pool */
            size_t n = rv_pop(&pool, in, 1 + check_rand(&rng) % 8);
            for (size_t i = 0; i < n; i++) {
                if ((check_rand(&rng) & 1) && nlive < MAX_LIVE) {
                    live[nlive] = in[i];
                    realloc_rec(&live[nlive], &rng); /* realloc a block another thread made */
                    nlive++;
                } else {
                    rec_free(&in[i], check_rand(&rng));
                }
            }
        } else if (r < 950) { /* leave a block in the pool */
            size_t i = check_rand(&rng) % nlive;
            if (rec_check(&live[i], "pool") && !rv_push(&pool, &live[i])) rec_free(&live[i], 0);
            live[i] = live[--nlive];
        } else if (r < 999) { /* just check one */
            rec_check(&live[check_rand(&rng) % nlive], "check");
        } else if ((check_rand(&rng) & 7) == 0) { /* rarely: give cached spans back */
            (void)mh_trim();
        }
    }

    /* Exit: some blocks outlive the thread in the pool or other mailboxes. */
    for (size_t i = 0; i < nlive; i++) {
        unsigned r = (unsigned)(check_rand(&rng) % 4);
        bool kept = false;
        if (r == 0) kept = rec_check(&live[i], "exit") && rv_push(&pool, &live[i]);
        else if (r == 1) kept = rec_check(&live[i], "exit") &&
                                rv_push(&mailbox[(a->slot + 1) % NSLOTS], &live[i]);
        if (!kept) rec_free(&live[i], check_rand(&rng));
    }
    free(live);
    if (tid % 3 == 0) (void)mh_trim();
    return NULL;
}

static void start_worker(worker_arg *a, int slot, long nops) {
    a->slot = slot;
    a->nops = nops;
    REQUIRE(pthread_create(&a->th, NULL, worker, a) == 0);
    a->running = true;
}

/* ---- phase 2: producers only allocate, consumers only free ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t notfull, notempty;
    rec v[QUEUE_CAP];
    size_t head, n;
    int producers_left;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .notfull = PTHREAD_COND_INITIALIZER,
       .notempty = PTHREAD_COND_INITIALIZER};

static long pc_per_producer;
static _Atomic uint64_t peak_inuse;
static _Atomic unsigned long pc_freed;

static void note_inuse(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    uint64_t cur = atomic_load(&peak_inuse);
    while (st.heap_inuse > cur && !atomic_compare_exchange_weak(&peak_inuse, &cur, st.heap_inuse)) {
    }
}

static void *producer(void *argp) {
    (void)argp;
    uint32_t tid = atomic_fetch_add(&next_tid, 1);
    uint64_t rng = seed ^ mix64(0x2000 + tid);
    rec batch[32];
    for (long done = 0; done < pc_per_producer;) {
        size_t nb = 0;
        for (; nb < 32 && done < pc_per_producer; done++)
            if (alloc_rec(&batch[nb], tid, (uint64_t)done, &rng, 2)) nb++;
        pthread_mutex_lock(&q.mu);
        for (size_t i = 0; i < nb; i++) {
            while (q.n == QUEUE_CAP) pthread_cond_wait(&q.notfull, &q.mu);
            q.v[(q.head + q.n++) % QUEUE_CAP] = batch[i];
        }
        pthread_cond_broadcast(&q.notempty);
        pthread_mutex_unlock(&q.mu);
    }
    pthread_mutex_lock(&q.mu);
    q.producers_left--;
    pthread_cond_broadcast(&q.notempty);
    pthread_mutex_unlock(&q.mu);
    return NULL;
}

static void *consumer(void *argp) {
    (void)argp;
    uint32_t tid = atomic_fetch_add(&next_tid, 1);
    uint64_t rng = seed ^ mix64(0x3000 + tid);
    rec batch[32];
    unsigned long n = 0;
    for (;;) {
        size_t nb = 0;
        pthread_mutex_lock(&q.mu);
        while (q.n == 0 && q.producers_left > 0) pthread_cond_wait(&q.notempty, &q.mu);
        for (; nb < 32 && q.n > 0; nb++, q.n--) {
            batch[nb] = q.v[q.head];
            q.head = (q.head + 1) % QUEUE_CAP;
        }
        bool done = nb == 0 && q.producers_left == 0;
        if (nb) pthread_cond_broadcast(&q.notfull);
        pthread_mutex_unlock(&q.mu);
        if (done) break;
        for (size_t i = 0; i < nb; i++) {
            rec_free(&batch[i], check_rand(&rng));
            if (++n % 4096 == 0) note_inuse();
        }
    }
    atomic_fetch_add(&pc_freed, n);
    return NULL;
}

/* ---- phase 3: free everything left, from several threads ---- */

static void *cleaner(void *argp) {
    uintptr_t i = (uintptr_t)argp;
    uint64_t rng = seed ^ mix64(0x4000 + i);
    rec in[64];
    size_t n;
    while ((n = rv_pop(&pool, in, 1 + check_rand(&rng) % 64)) > 0)
        for (size_t k = 0; k < n; k++) rec_free(&in[k], check_rand(&rng));
    (void)mh_trim(); /* this thread's cache gives its spans back */
    return NULL;
}

static mh_stats_t stats(void) {
    mh_stats_t st;
    memset(&st, 0, sizeof st);
    size_t n = mh_stats_get(&st, sizeof st);
    CHECK_EQ(n, sizeof st);
    return st;
}

int main(void) {
    seed = check_seed(0x5eed5eedull);
    const char *sc = getenv("MHEAP_STRESS_SCALE");
    if (sc && *sc) scale = strtol(sc, NULL, 10);
    if (scale < 1) scale = 1;
    fprintf(stderr, "scale=%ld%% (MHEAP_STRESS_SCALE)\n", scale);

    REQUIRE(pthread_key_create(&late_key, late_dtor) == 0);
    for (int i = 0; i < NSLOTS; i++) rv_init(&mailbox[i], MAILBOX_MAX);
    rv_init(&pool, POOL_MAX);

    /* Phase 1: rounds of churn; in each round some slots' workers are joined
     * and new ones start there, while the others keep running. */
    uint64_t rng = mix64(seed);
    worker_arg w[NSLOTS];
    memset(w, 0, sizeof w);
    const int rounds = 6;
    long nops = scaled(40000);
    for (int s = 0; s < NSLOTS; s++) start_worker(&w[s], s, nops / 2 + (long)(check_rand(&rng) % (uint64_t)nops));
    int nstarted = NSLOTS;
    for (int round = 0; round < rounds; round++) {
        for (int s = 0; s < NSLOTS; s++) {
            if ((check_rand(&rng) % 3) == 0 && s != round % NSLOTS) continue; /* keeps running */
            REQUIRE(pthread_join(w[s].th, NULL) == 0);
            w[s].running = false;
            start_worker(&w[s], s, nops / 2 + (long)(check_rand(&rng) % (uint64_t)nops));
            nstarted++;
        }
    }
    for (int s = 0; s < NSLOTS; s++) {
        REQUIRE(pthread_join(w[s].th, NULL) == 0);
        w[s].running = false;
    }
    /* Mailboxes' blocks move to the pool: their receivers are gone. */
    for (int s = 0; s < NSLOTS; s++) {
        rec r;
        while (rv_pop(&mailbox[s], &r, 1) == 1) {
            if (!rv_push(&pool, &r)) rec_free(&r, 0);
        }
    }
    mh_stats_t st = stats();
    fprintf(stderr, "phase 1: %d workers (%lu late destructors), %lu allocations, %lu hand-offs, %zu blocks left in the pool, heap_inuse %" PRIu64 "\n",
            nstarted, atomic_load(&nlate), atomic_load(&nallocs), atomic_load(&nhandoffs), pool.n, st.heap_inuse);
    CHECK(pool.n > 0); /* blocks really outlived their threads */
    CHECK_EQ(atomic_load(&nlate), (unsigned long)nstarted); /* each worker's late destructor ran */
    CHECK(st.heap_inuse > 0);
    CHECK_EQ(mh_heap_verify(), 0);
    fprintf(stderr, "verify: %lu runs by workers while others worked, %lu errors\n",
            atomic_load(&verify_runs), atomic_load(&verify_errors));
    CHECK(atomic_load(&verify_runs) > 0);
    CHECK_EQ(atomic_load(&verify_errors), 0);

    /* Phase 2: producers and consumers. */
    long pc_total = scaled(320000);
    pc_per_producer = pc_total / NPRODUCERS;
    q.producers_left = NPRODUCERS;
    unsigned long allocs_before = atomic_load(&nallocs);
    pthread_t pt[NPRODUCERS], ct[NCONSUMERS];
    for (int i = 0; i < NCONSUMERS; i++) REQUIRE(pthread_create(&ct[i], NULL, consumer, NULL) == 0);
    for (int i = 0; i < NPRODUCERS; i++) REQUIRE(pthread_create(&pt[i], NULL, producer, NULL) == 0);
    for (int i = 0; i < NPRODUCERS; i++) REQUIRE(pthread_join(pt[i], NULL) == 0);
    for (int i = 0; i < NCONSUMERS; i++) REQUIRE(pthread_join(ct[i], NULL) == 0);
    note_inuse();
    st = stats();
    fprintf(stderr, "phase 2: %lu blocks made and freed, peak heap_inuse %" PRIu64 " (sampled), after %" PRIu64 "\n",
            atomic_load(&pc_freed), atomic_load(&peak_inuse), st.heap_inuse);
    CHECK_EQ(atomic_load(&nallocs) - allocs_before, (unsigned long)(pc_per_producer * NPRODUCERS));
    CHECK_EQ(atomic_load(&pc_freed), (unsigned long)(pc_per_producer * NPRODUCERS));
    CHECK(atomic_load(&peak_inuse) < INUSE_BOUND);
    CHECK(st.heap_inuse < INUSE_BOUND);
    CHECK_EQ(mh_heap_verify(), 0);

    /* Phase 3: fresh threads free what is left and trim. */
    pthread_t cl[NCLEANERS];
    for (uintptr_t i = 0; i < NCLEANERS; i++) REQUIRE(pthread_create(&cl[i], NULL, cleaner, (void *)i) == 0);
    for (int i = 0; i < NCLEANERS; i++) REQUIRE(pthread_join(cl[i], NULL) == 0);
    CHECK_EQ(pool.n, 0);
    (void)mh_trim();
    st = stats();
    fprintf(stderr, "end: heap_inuse %" PRIu64 ", nspan_inuse %" PRIu64 ", heap_idle %" PRIu64
            ", heap_released %" PRIu64 ", heap_sys %" PRIu64 "\n",
            st.heap_inuse, st.nspan_inuse, st.heap_idle, st.heap_released, st.heap_sys);
    /* Every block is freed and every cache gave its spans back. */
    CHECK_EQ(st.heap_inuse, 0);
    CHECK_EQ(st.nspan_inuse, 0);
    CHECK_EQ(st.heap_manual, 0);
    CHECK_EQ(st.heap_idle, st.heap_sys);
    /* mh_trim released every free page. */
    CHECK_EQ(st.heap_released, st.heap_idle);
    CHECK_EQ(mh_heap_verify(), 0);

    /* The heap still works after all that. */
    void *p = mh_malloc(100);
    CHECK(p != NULL);
    mh_free(p);

    CHECK_EQ(atomic_load(&nfail_threads), 0);
    fprintf(stderr, "%lu blocks checked\n", atomic_load(&nchecked_blocks));
    return check_done("test_malloc_stress");
}
