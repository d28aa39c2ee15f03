/* test_trim.c - free pages inside small-object spans that still hold live
 * objects go back to the OS, with no heap call, and come back correctly.
 *
 *   release: 6000 objects of 2 KiB (two per OS page); 90 % freed at random.
 *       Within 3 s of sleeping (the background thread, scavenge_delay_ms =
 *       40), at least 90 % of the OS pages that hold no live object are
 *       no longer resident, and every page with a live object still is;
 *       the live objects' contents are intact.
 *   reuse: allocating the freed number again gives objects that do not
 *       overlap each other or the live ones (every object is filled with
 *       its own pattern, then all are checked), and calloc'd ones read as
 *       zero.
 *   threads: four threads allocate objects of 256 B .. 8 KiB, hand half of
 *       them to a neighbour to free, free most of their own, and pause
 *       now and then so that spans age and the background thread trims
 *       them while others free into the same spans; every object's pattern
 *       is checked when it is freed (run under TSan and ASan too).
 *   fork: while the threads above run (and the background thread trims),
 *       the main thread forks 20 times; each child allocates, checks and
 *       frees objects of the trimmed classes and exits cleanly within 10 s.
 *       Skipped under the sanitizers (forking beside running threads).
 *   unowned: a thread allocates 6000 objects of 2 KiB and exits (its spans
 *       go to the central lists, full); another thread frees 90 % of them.
 *       Those frees alone wake the background thread: pages are trimmed
 *       within 2 s with no other heap activity.
 *   retrim: spans that were looked at (and had no free page) are trimmed
 *       later when other threads' frees, collected by the owner, free
 *       whole pages of them (a return through xfree marks the span
 *       changed).
 *   trim_now: in a child with background = 0 (no thread trims), the same
 *       frees as in release, then mh_trim(): every page with no live
 *       object is released by the time it returns, and it says so.
 *   retire: in a child with background = 0 and a long scavenger delay,
 *       trimmed spans whose last objects are freed go back to the page
 *       heap with their released pages counted as released (heap_released
 *       grows at once, no scavenger pass needed), and calloc blocks carved
 *       from those pages read as zero (the heap takes them for zero).
 *   mlock: the same in a child that locks its memory (mlockall): the OS
 *       refuses to release, nothing counts as released, and calloc blocks
 *       over those pages still read as zero.  Skipped when mlockall is not
 *       permitted, and under the sanitizers (it would lock their shadow).
 *   small: spans of more than 64 objects are never trimmed (a page of
 *       16-byte objects stays resident while one object on it lives). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "central.h"
#include "check.h"
#include "mheap.h"
#include "pageheap.h"
#include "os.h"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Fill / check an object with a pattern derived from its id. */
static void fill(unsigned char *p, size_t n, uint64_t id) {
    uint64_t h = mix(id);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = h ^ i;
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
}
static int intact(const unsigned char *p, size_t n, uint64_t id) {
    uint64_t h = mix(id);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = h ^ i;
        if (memcmp(p + i, &v, n - i < 8 ? n - i : 8) != 0) return 0;
    }
    return 1;
}

#define N 6000
#define SZ 2048
static unsigned char *obj[2 * N];
static int live[2 * N];

/* N objects of SZ bytes, each filled with its own pattern; then 90 % of
 * them, drawn from seed, checked and freed.  Returns how many were found
 * corrupted (or exits 2 without memory, as a child would). */
static int fill_then_free_most(uint64_t seed) {
    for (int i = 0; i < N; i++) {
        if (!(obj[i] = mh_malloc(SZ))) _exit(2);
        fill(obj[i], SZ, (uint64_t)i);
        live[i] = 1;
    }
    int bad = 0;
    uint64_t r = seed;
    for (int k = 0; k < N * 9 / 10;) {
        r = mix(r);
        int i = (int)(r % N);
        if (!live[i]) continue;
        bad += !intact(obj[i], SZ, (uint64_t)i);
        mh_free(obj[i]);
        live[i] = 0;
        k++;
    }
    return bad;
}

/* Run fn (which ends with _exit) in a child of fork; its wait status. */
static int in_child(void (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
}

static bool exited_0(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Pages (OS) fully covered by the objects in [0, N) that are not live,
 * and pages holding a live object: counts of those resident. */
static void page_census(size_t *free_pages, size_t *free_res, size_t *live_pages,
                        size_t *live_res) {
    size_t ps = (size_t)getpagesize();
    uintptr_t *lp = malloc(sizeof(uintptr_t) * N), *fp = malloc(sizeof(uintptr_t) * N * 2);
    REQUIRE(lp && fp);
    size_t nl = 0, nf = 0;
    for (int i = 0; i < N; i++) {
        uintptr_t a = (uintptr_t)obj[i] / ps, b = ((uintptr_t)obj[i] + SZ - 1) / ps;
        if (live[i]) {
            lp[nl++] = a;
            if (b != a) lp[nl++] = b; /* (2 KiB objects do not straddle 4 KiB pages) */
        } else {
            fp[nf++] = a;
        }
    }
    qsort(lp, nl, sizeof *lp, cmp_ptr);
    qsort(fp, nf, sizeof *fp, cmp_ptr);
    *free_pages = *free_res = *live_pages = *live_res = 0;
    size_t j = 0;
    for (size_t i = 0; i < nf; i++) {
        if (i > 0 && fp[i] == fp[i - 1]) continue;
        while (j < nl && lp[j] < fp[i]) j++;
        if (j < nl && lp[j] == fp[i]) continue; /* shares a page with a live one */
        /* both halves of the page must be objects of this test */
        if (i + 1 >= nf || fp[i + 1] != fp[i]) continue;
        (*free_pages)++;
        *free_res += mhi_os_resident((void *)(fp[i] * ps), ps);
    }
    for (size_t i = 0; i < nl; i++) {
        if (i > 0 && lp[i] == lp[i - 1]) continue;
        (*live_pages)++;
        *live_res += mhi_os_resident((void *)(lp[i] * ps), ps);
    }
    free(lp);
    free(fp);
}

static void test_release_and_reuse(void) {
    if (getpagesize() != 4096) {
        printf("release: skipped (OS page size %d)\n", getpagesize());
        return;
    }
    CHECK_EQ(fill_then_free_most(12345), 0);
    size_t fpg, fres, lpg, lres;
    page_census(&fpg, &fres, &lpg, &lres);
    printf("release: %zu free pages (%zu resident), %zu live pages, right after the frees\n", fpg,
           fres, lpg);
    for (int t = 0; t < 3000 && fres > fpg / 10; t += 50) {
        sleep_ms(50);
        page_census(&fpg, &fres, &lpg, &lres);
    }
    printf("release: %zu of %zu free pages resident, %zu of %zu live pages\n", fres, fpg, lres,
           lpg);
    CHECK(fpg > N / 4);
    mh_stats_t st;
    CHECK_EQ(mh_stats_get(&st, sizeof st), sizeof st);
    CHECK(st.version >= 2);
    /* (spans whose objects were all freed went back to the page heap
     * whole, and count as scavenged instead) */
    CHECK(st.trimmed > 0 && st.ntrim > 0);
    CHECK(fres <= fpg / 10);
    CHECK_EQ(lres, lpg);
    for (int i = 0; i < N; i++)
        if (live[i]) CHECK(intact(obj[i], SZ, (uint64_t)i));

    /* reuse: as many again, every third from calloc */
    int nzero_bad = 0;
    for (int i = N; i < N + N * 9 / 10; i++) {
        if (i % 3 == 0) {
            obj[i] = mh_calloc(1, SZ);
            REQUIRE(obj[i] != NULL);
            for (size_t b = 0; b < SZ; b++) nzero_bad += obj[i][b] != 0;
        } else {
            obj[i] = mh_malloc(SZ);
            REQUIRE(obj[i] != NULL);
        }
        fill(obj[i], SZ, (uint64_t)i);
        live[i] = 1;
    }
    CHECK_EQ(nzero_bad, 0);
    size_t bad = 0, nlive = 0;
    for (int i = 0; i < N + N * 9 / 10; i++)
        if (live[i]) {
            nlive++;
            bad += !intact(obj[i], SZ, (uint64_t)i);
        }
    printf("reuse: %zu live objects, %zu corrupted\n", nlive, bad);
    CHECK_EQ(bad, 0);
    CHECK_EQ(mh_heap_verify(), 0);
    for (int i = 0; i < N + N * 9 / 10; i++)
        if (live[i]) mh_free(obj[i]);
}

/* ---- threads ---- */

#define NT 4
#define SLOTS 1500
typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t id;
} item;
/* handoff[t]: objects thread t allocated for thread (t+1)%NT to free */
static item handoff[NT][SLOTS];
static pthread_barrier_t bar;
static _Atomic unsigned long thread_bad;

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    item mine[SLOTS];
    uint64_t r = mix((uint64_t)t + 99);
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < SLOTS; i++) {
            r = mix(r);
            size_t n = 256 + (size_t)(r % (8192 - 256));
            uint64_t id = ((uint64_t)t << 48) | ((uint64_t)round << 32) | (uint64_t)i;
            mine[i] = (item){mh_malloc(n), n, id};
            r = mix(r);
            size_t m = 256 + (size_t)(r % (8192 - 256));
            handoff[t][i] = (item){mh_malloc(m), m, id | (1ull << 47)};
            if (!mine[i].p || !handoff[t][i].p) abort();
            fill(mine[i].p, n, id);
            fill(handoff[t][i].p, m, id | (1ull << 47));
        }
        pthread_barrier_wait(&bar);
        /* free most of our own, and all of our neighbour's, in pieces with
         * pauses so that spans age while others free into them */
        int from = (t + NT - 1) % NT;
        for (int i = 0; i < SLOTS; i++) {
            item *h = &handoff[from][i];
            if (!intact(h->p, h->n, h->id)) thread_bad++;
            mh_free(h->p);
            if (i % 10 != 0) {
                if (!intact(mine[i].p, mine[i].n, mine[i].id)) thread_bad++;
                mh_free(mine[i].p);
                mine[i].p = NULL;
            }
            if (i % 300 == 299) sleep_ms(15);
        }
        sleep_ms(60);
        for (int i = 0; i < SLOTS; i++)
            if (mine[i].p) {
                if (!intact(mine[i].p, mine[i].n, mine[i].id)) thread_bad++;
                mh_free(mine[i].p);
            }
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

/* A child of fork: objects of the trimmed classes, allocated, checked and
 * freed; exit 0 if all were intact. */
static void fork_child_work(void) {
    alarm(10);
    static unsigned char *p[2000];
    int bad = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2000; i++) {
            size_t n = 256 + (size_t)(mix((uint64_t)i) % 4000);
            if (!(p[i] = mh_malloc(n))) _exit(4);
            fill(p[i], n, (uint64_t)i);
        }
        for (int i = 0; i < 2000; i++) {
            size_t n = 256 + (size_t)(mix((uint64_t)i) % 4000);
            bad += !intact(p[i], n, (uint64_t)i);
            mh_free(p[i]);
        }
    }
    _exit(bad ? 3 : 0);
}

static int forks_ok, forks_run;

static void fork_while_trimming(void) {
    for (int k = 0; k < 20; k++) {
        sleep_ms(20);
        int st = in_child(fork_child_work);
        forks_run++;
        if (exited_0(st)) forks_ok++;
        else
            fprintf(stderr, "fork: child %d: exit %d, signal %d\n", k,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
}

static void test_threads(void) {
    mh_stats_t s0, s1;
    mh_stats_get(&s0, sizeof s0);
    pthread_t th[NT];
    REQUIRE(pthread_barrier_init(&bar, NULL, NT) == 0);
    for (int t = 0; t < NT; t++)
        REQUIRE(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0);
    if (!MHEAP_TEST_SANITIZED) {
        fork_while_trimming();
        printf("fork: %d of %d children exited cleanly\n", forks_ok, forks_run);
        CHECK_EQ(forks_run, 20);
        CHECK_EQ(forks_ok, forks_run);
    } else {
        printf("fork: skipped under the sanitizers\n");
    }
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&bar);
    mh_stats_get(&s1, sizeof s1);
    printf("threads: %lu corrupted objects; %llu spans trimmed meanwhile (%llu KiB)\n",
           (unsigned long)thread_bad, (unsigned long long)(s1.ntrim - s0.ntrim),
           (unsigned long long)((s1.trimmed - s0.trimmed) >> 10));
    CHECK(s1.ntrim > s0.ntrim); /* the test must exercise what it is for */
    CHECK_EQ(thread_bad, 0);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- frees into unowned spans; re-trimming after remote frees ---- */

static uint64_t trimmed_bytes(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    return st.trimmed;
}

#define UN 6000
static void *uobj[UN];

static void *alloc_and_exit(void *arg) {
    (void)arg;
    for (int i = 0; i < UN; i++) uobj[i] = mh_malloc(SZ);
    return NULL;
}

static void test_unowned(void) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, alloc_and_exit, NULL) == 0);
    pthread_join(t, NULL);
    for (int i = 0; i < UN; i++) REQUIRE(uobj[i] != NULL);
    sleep_ms(200); /* the background thread has nothing to do */
    uint64_t t0 = trimmed_bytes();
    uint64_t r = 777;
    for (int i = 0; i < UN; i++) {
        r = mix(r);
        if (r % 10) {
            mh_free(uobj[i]);
            uobj[i] = NULL;
        }
    }
    uint64_t t1 = t0;
    for (int w = 0; w < 2000 && t1 == t0; w += 50) {
        sleep_ms(50);
        t1 = trimmed_bytes();
    }
    printf("unowned: %llu KiB trimmed after frees into an exited thread's spans\n",
           (unsigned long long)((t1 - t0) >> 10));
    CHECK(t1 > t0);
    for (int i = 0; i < UN; i++) mh_free(uobj[i]);
}

#define RN 4000
static void *robj[RN];
static pthread_barrier_t rb;

/* Free the objects at positions a and b of their 8-object span. */
static void *free_positions(void *arg) {
    int which = (int)(intptr_t)arg;
    for (int i = 0; i < RN; i++) {
        if (!robj[i]) continue;
        mhi_span *s = mhi_heap_span((uintptr_t)robj[i]);
        int k = (int)(((uintptr_t)robj[i] - s->base) / SZ);
        if ((which == 0 && (k == 1 || k == 2)) || (which == 1 && (k == 0 || k == 3))) {
            mh_free(robj[i]);
            robj[i] = NULL;
        }
    }
    return NULL;
}

static void pump_ms(long ms) {
    for (long t = 0; t < ms; t += 10) {
        mhi_cache_trim_request();
        sleep_ms(10);
    }
}

static void *retrim_owner(void *arg) {
    (void)arg;
    for (int i = 0; i < RN; i++) robj[i] = mh_malloc(SZ);
    pthread_barrier_wait(&rb); /* the first freer runs */
    pthread_barrier_wait(&rb);
    /* slow paths of another class: the notices of the spans the freer
     * freed into bring them back to avail */
    for (int i = 0; i < 3000; i++) {
        void *volatile q = mh_malloc(48);
        (void)q;
    }
    pthread_barrier_wait(&rb); /* trim passes; then the second freer */
    pthread_barrier_wait(&rb);
    /* collect the second freer's objects, then look again */
    for (int i = 0; i < 3000; i++) {
        void *volatile q = mh_malloc(48);
        (void)q;
    }
    pthread_barrier_wait(&rb); /* trim passes */
    pthread_barrier_wait(&rb);
    return NULL;
}

static void test_retrim(void) {
    if (getpagesize() != 4096) return;
    pthread_t o, f;
    REQUIRE(pthread_barrier_init(&rb, NULL, 2) == 0);
    REQUIRE(pthread_create(&o, NULL, retrim_owner, NULL) == 0);
    pthread_barrier_wait(&rb);
    REQUIRE(pthread_create(&f, NULL, free_positions, (void *)0) == 0);
    pthread_join(f, NULL);
    pthread_barrier_wait(&rb);
    pthread_barrier_wait(&rb);
    uint64_t t0 = trimmed_bytes();
    pump_ms(300); /* objects 1 and 2 of each span free: no whole page */
    uint64_t t1 = trimmed_bytes();
    REQUIRE(pthread_create(&f, NULL, free_positions, (void *)1) == 0);
    pthread_join(f, NULL);
    pthread_barrier_wait(&rb);
    pthread_barrier_wait(&rb);
    pump_ms(400); /* objects 0..3 free: two whole pages of each span */
    uint64_t t2 = trimmed_bytes();
    int nspans = 0, nrel = 0;
    mhi_span *last = NULL;
    for (int i = 0; i < RN; i++) {
        if (!robj[i]) continue;
        mhi_span *s = mhi_heap_span((uintptr_t)robj[i]);
        if (s == last) continue;
        last = s;
        nspans++;
        nrel += atomic_load(&s->relmask) != 0;
    }
    printf("retrim: %llu KiB trimmed with no free page, %llu KiB after; %d of %d spans with "
           "released pages\n", (unsigned long long)((t1 - t0) >> 10),
           (unsigned long long)((t2 - t1) >> 10), nrel, nspans);
    CHECK(t2 - t1 >= (uint64_t)nspans * 2 * 4096 * 9 / 10);
    CHECK(nrel >= nspans * 9 / 10);
    pthread_barrier_wait(&rb);
    pthread_join(o, NULL);
    for (int i = 0; i < RN; i++) mh_free(robj[i]);
    pthread_barrier_destroy(&rb);
}

/* ---- small objects ---- */

static void test_small_not_trimmed(void) {
    enum { M = 4096 };
    unsigned char **p = malloc(sizeof(void *) * M);
    REQUIRE(p != NULL);
    for (int i = 0; i < M; i++) {
        p[i] = mh_malloc(16);
        REQUIRE(p[i] != NULL);
        memset(p[i], 7, 16);
    }
    /* keep one object in 256: one per OS page of 16-byte objects */
    for (int i = 0; i < M; i++)
        if (i % 256 != 0) mh_free(p[i]);
    sleep_ms(300);
    size_t res = 0, n = 0;
    for (int i = 0; i < M; i += 256) {
        n++;
        res += mhi_os_resident(p[i], 16);
        CHECK(p[i][0] == 7 && p[i][15] == 7);
    }
    printf("small: %zu of %zu pages holding a live 16-byte object resident\n", res, n);
    CHECK_EQ(res, n);
    for (int i = 0; i < M; i += 256) mh_free(p[i]);
    free(p);
}

/* The child: release's allocations and frees, then one mh_trim(). */
static void trim_now_child(void) {
    if (mh_option_set("background", 0) != 0) _exit(2);
    int bad = fill_then_free_most(12345);
    size_t fpg, fres, lpg, lres;
    page_census(&fpg, &fres, &lpg, &lres);
    size_t got = mh_trim();
    size_t fpg2, fres2, lpg2, lres2;
    page_census(&fpg2, &fres2, &lpg2, &lres2);
    for (int i = 0; i < N; i++)
        if (live[i]) bad += !intact(obj[i], SZ, (uint64_t)i);
    printf("trim_now: %zu of %zu free pages resident before mh_trim, %zu after; it returned "
           "%zu KiB; %zu of %zu live pages resident; %d corrupted\n",
           fres, fpg, fres2, got >> 10, lres2, lpg2, bad);
    fflush(stdout);
    _exit(fres2 <= fpg2 / 20 && got >= (fpg - fres2) * 4096 && lres2 == lpg2 &&
                  bad == 0
              ? 0
              : 1);
}

static void retire_child(bool locked) {
    if (mh_option_set("background", 0) != 0 || mh_option_set("scavenge_delay_ms", 100000) != 0)
        _exit(2);
    if (locked && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        printf("mlock: skipped (mlockall: %s)\n", strerror(errno));
        fflush(stdout);
        _exit(77);
    }
    if (fill_then_free_most(4242) != 0) _exit(3);
    size_t t = mhi_cache_trim_now();
    mh_stats_t s0, s1;
    mh_stats_get(&s0, sizeof s0);
    for (int i = 0; i < N; i++)
        if (live[i]) mh_free(obj[i]);
    mhi_cache_flush(); /* the empty spans kept for reuse go back too */
    mh_stats_get(&s1, sizeof s1);
    /* calloc over the freed pages: what the heap takes for zero must be */
    int nonzero = 0, nblk = 400;
    for (int k = 0; k < nblk; k++) {
        unsigned char *b = mh_calloc(1, 48 << 10);
        if (!b) _exit(2);
        for (size_t i = 0; i < (48 << 10); i++) nonzero += b[i] != 0;
    }
    printf("%s: trimmed %zu KiB; heap_released %llu -> %llu KiB when the spans went back; "
           "%d calloc blocks, %d non-zero bytes; verify %zu\n",
           locked ? "mlock" : "retire", t >> 10, (unsigned long long)(s0.heap_released >> 10),
           (unsigned long long)(s1.heap_released >> 10), nblk, nonzero, mh_heap_verify());
    fflush(stdout);
    uint64_t grew = s1.heap_released - s0.heap_released;
    if (locked) _exit(t == 0 && grew == 0 && nonzero == 0 && mh_heap_verify() == 0 ? 0 : 1);
    _exit(t > 0 && grew >= t / 4 && grew <= t && nonzero == 0 && mh_heap_verify() == 0 ? 0 : 1);
}

static void retire_child_plain(void) { retire_child(false); }
static void retire_child_locked(void) { retire_child(true); }

int main(void) {
    /* First, before any thread exists: the children that run with
     * background = 0. */
    if (getpagesize() == 4096) {
        CHECK(exited_0(in_child(retire_child_plain)));
        if (!MHEAP_TEST_SANITIZED) {
            int st = in_child(retire_child_locked);
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 77)) CHECK(exited_0(st));
        } else {
            printf("mlock: skipped (sanitizer build)\n");
        }
        CHECK(exited_0(in_child(trim_now_child)));
    }
    CHECK_EQ(mh_option_set("scavenge_delay_ms", 40), 0);
    /* This process has one thread still: background = 2 starts mheap's
     * anyway (the default would leave the trimming to heap calls). */
    CHECK_EQ(mh_option_set("background", 2), 0);
    test_release_and_reuse();
    test_small_not_trimmed();
    test_unowned();
    test_retrim();
    test_threads();
    return check_done("test_trim");
}
