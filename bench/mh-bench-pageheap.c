/* mh-bench-pageheap.c - page heap alloc+free cost against the number of
 * free spans.
 *
 * Usage: mh-bench-pageheap [max_free_spans]
 *
 * For each N in 10^3, 10^4, 10^5, 10^6 (up to max_free_spans, default
 * 10^6), builds a heap with at least N free spans that cannot coalesce:
 * 2N spans of 1..8 pages (deterministic PRNG) are allocated with
 * mhi_heap_alloc(npages, MHI_SPAN_INUSE, MHI_KIND_LARGE, false) and every
 * other one is freed.  The spans' memory is never touched, so the heap's
 * pages stay untouched virtual memory (10^6 needs about 70 GiB of address
 * space, none of it resident).  Then it times batches of alloc+free pairs
 * (BATCH pairs per batch, CLOCK_MONOTONIC around each batch) in ROUNDS
 * rounds of NBATCH batches each (after WARMUP untimed batches), the rounds
 * of the two workloads alternating, and prints the median ns per pair:
 *
 *   free_spans=<N> alloc_free_ns=<median, random 1..8-page sizes>
 *   free_spans=<N> alloc_free_1page_ns=<median, 1-page spans>
 *
 * and at the end, if both ends were measured,
 *
 *   ratio_1e6_to_1e3=<alloc_free_ns at 10^6 / alloc_free_ns at 10^3>
 *
 * (computed from the largest N run when max_free_spans < 10^6, named
 * accordingly, e.g. ratio_1e5_to_1e3).
 *
 * The heap is process-global.  The shapes run in increasing N, and between
 * shapes every span the benchmark holds is freed, so each shape reuses the
 * (coalesced) free memory of the previous one and only grows the heap for
 * the rest.  The scavenger runs with its default settings, as in a real
 * process.
 *
 * Each figure is the median batch time of one round, divided by BATCH; of
 * the ROUNDS rounds, the lowest round median is printed.  On a shared
 * machine a neighbour can slow a whole ~60 ms window by 1.5x (seen: 55 ns
 * -> 85 ns while the fastest batch stayed at 55 ns), which a single median
 * does not filter; a real cost that grows with N shows in every round, so
 * the lowest round median still shows it.  All round medians go to stderr.
 *
 * The first measurement (10^3) is preceded by ~0.3 s of untimed
 * alloc+free pairs on its heap, to warm up the CPU: measured cold, it read
 * up to 1.8x too high.
 *
 * Diagnostics go to stderr, prefixed with '#', so stdout holds only the
 * result lines: per shape, the build time, the fastest/median/slowest batch
 * and the scavenger passes during timing; and at the largest shape, after
 * the timed batches, the cost of the one alloc+free that runs a scavenger
 * pass once the free spans have aged (it sleeps ~1 s for that). */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pageheap.h"

enum {
    BATCH = 1000,  /* alloc+free pairs per timed batch */
    NBATCH = 200,  /* timed batches per round (~11 ms) */
    ROUNDS = 7,    /* rounds per figure; the lowest round median is printed */
    WARMUP = 20,   /* untimed batches before each measurement */
    NSIZES = 4096, /* precomputed random sizes, cycled (power of two) */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* splitmix64: deterministic, so every run builds the same heap. */
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static mhi_span *must_alloc(size_t npages) {
    mhi_span *s = mhi_heap_alloc(npages, MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
    if (!s) {
        fprintf(stderr, "mh-bench-pageheap: mhi_heap_alloc(%zu) failed\n", npages);
        exit(1);
    }
    return s;
}

typedef struct {
    double median_ns; /* per pair */
    double min_ns;    /* per pair, fastest batch */
    double max_ns;    /* per pair, slowest batch */
} timing;

/* One batch of BATCH alloc+free pairs, sizes cycled from *k. */
static void run_batch(const uint8_t *sizes, size_t *k) {
    size_t j = *k;
    for (int i = 0; i < BATCH; i++) {
        mhi_span *s = mhi_heap_alloc(sizes[j], MHI_SPAN_INUSE, MHI_KIND_LARGE, false);
        if (__builtin_expect(!s, 0)) {
            fprintf(stderr, "mh-bench-pageheap: alloc failed while timing\n");
            exit(1);
        }
        mhi_heap_free(s);
        j = (j + 1) & (NSIZES - 1);
    }
    *k = j;
}

/* One round: NBATCH timed batches of BATCH alloc+free pairs; sizes[]
 * gives the page counts, cycled.  Before them, untimed batches: WARMUP of
 * them, and more until warm_ms have passed.  Returns per-pair figures. */
static timing time_round(const uint8_t *sizes, int warm_ms) {
    static int64_t batch_ns[NBATCH];
    size_t k = 0;
    int64_t warm_until = now_ns() + (int64_t)warm_ms * 1000000;
    for (int b = 0; b < WARMUP || now_ns() < warm_until; b++) run_batch(sizes, &k);
    for (int b = 0; b < NBATCH; b++) {
        int64_t t0 = now_ns();
        run_batch(sizes, &k);
        batch_ns[b] = now_ns() - t0;
    }
    qsort(batch_ns, NBATCH, sizeof batch_ns[0], cmp_i64);
    timing t;
    int64_t mid = NBATCH % 2 ? batch_ns[NBATCH / 2]
                             : (batch_ns[NBATCH / 2 - 1] + batch_ns[NBATCH / 2]) / 2;
    t.median_ns = (double)mid / BATCH;
    t.min_ns = (double)batch_ns[0] / BATCH;
    t.max_ns = (double)batch_ns[NBATCH - 1] / BATCH;
    return t;
}

/* The figures over ROUNDS rounds: the lowest round median, the fastest
 * and slowest batch of all; med[] gets every round median. */
static timing combine(const timing *r, double *med) {
    timing t = r[0];
    for (int i = 0; i < ROUNDS; i++) {
        med[i] = r[i].median_ns;
        if (r[i].median_ns < t.median_ns) t.median_ns = r[i].median_ns;
        if (r[i].min_ns < t.min_ns) t.min_ns = r[i].min_ns;
        if (r[i].max_ns > t.max_ns) t.max_ns = r[i].max_ns;
    }
    return t;
}

static void print_rounds(const char *what, const double *med) {
    fprintf(stderr, "#   %s round medians:", what);
    for (int i = 0; i < ROUNDS; i++) fprintf(stderr, " %.1f", med[i]);
    fprintf(stderr, "\n");
}

static const char *exp_name(size_t n) {
    switch (n) {
    case 1000: return "1e3";
    case 10000: return "1e4";
    case 100000: return "1e5";
    case 1000000: return "1e6";
    default: return "?";
    }
}

/* Reads the optional max_free_spans argument into *max_n (default 10^6).
 * Returns 0, or 2 after printing the usage line. */
static int parse_args(int argc, char **argv, size_t *max_n) {
    *max_n = 1000000;
    if (argc > 1) {
        char *end;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0' || v < 1000) {
            fprintf(stderr, "usage: %s [max_free_spans >= 1000]\n", argv[0]);
            return 2;
        }
        *max_n = (size_t)v;
    }
    return 0;
}

/* The page counts the timed pairs cycle through: mixed[] random 1..8
 * (NSIZES draws from rng()), one[] all 1. */
static void init_sizes(uint8_t *mixed, uint8_t *one) {
    for (size_t i = 0; i < NSIZES; i++) {
        mixed[i] = (uint8_t)(1 + rng() % 8);
        one[i] = 1;
    }
}

/* Build: 2N spans of 1..8 pages into spans[], then every odd-indexed one
 * freed, so the free spans cannot coalesce.  Returns the time taken. */
static int64_t build_heap(mhi_span **spans, size_t n) {
    int64_t b0 = now_ns();
    for (size_t i = 0; i < 2 * n; i++) spans[i] = must_alloc(1 + rng() % 8);
    for (size_t i = 1; i < 2 * n; i += 2) mhi_heap_free(spans[i]);
    return now_ns() - b0;
}

/* The figures of one shape for both workloads, and every round median. */
typedef struct {
    timing mixed, one;
    double med_mixed[ROUNDS], med_one[ROUNDS];
} shape_timing;

/* Rounds of the two workloads alternate.  The first mixed round gets
 * first_warm_ms of untimed pairs before it (~0.3 s for the first shape of
 * the run, so that it is not measured on a cold CPU). */
static void time_shape(const uint8_t *sizes_mixed, const uint8_t *sizes_one, int first_warm_ms,
                       shape_timing *t) {
    timing rm[ROUNDS], r1[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        rm[r] = time_round(sizes_mixed, r == 0 ? first_warm_ms : 0);
        r1[r] = time_round(sizes_one, 0);
    }
    t->mixed = combine(rm, t->med_mixed);
    t->one = combine(r1, t->med_one);
}

/* The two result lines of a shape on stdout, its diagnostics on stderr;
 * st0 is taken after the build, st1 after the timing. */
static void report_shape(size_t n, const mhi_heap_stats *st0, const mhi_heap_stats *st1,
                         int64_t build_ns, const shape_timing *t) {
    printf("free_spans=%zu alloc_free_ns=%.1f\n", n, t->mixed.median_ns);
    printf("free_spans=%zu alloc_free_1page_ns=%.1f\n", n, t->one.median_ns);
    fflush(stdout);
    fprintf(stderr,
            "# N=%zu: nspan_free=%llu heap_sys=%.2f GiB build=%.3f s; per pair, "
            "fastest batch/lowest round median/slowest batch: mixed %.1f/%.1f/%.1f ns, "
            "1-page %.1f/%.1f/%.1f ns; scavenger passes during timing=%llu\n",
            n, (unsigned long long)st0->nspan_free, (double)st0->heap_sys / (1 << 30),
            (double)build_ns / 1e9, t->mixed.min_ns, t->mixed.median_ns, t->mixed.max_ns,
            t->one.min_ns, t->one.median_ns, t->one.max_ns,
            (unsigned long long)(st1->nscavenge - st0->nscavenge));

    print_rounds("mixed ", t->med_mixed);
    print_rounds("1-page", t->med_one);
}

/* Sleeps until the scavenger is due and every free span has aged past its
 * delay, then times the one alloc+free pair that runs the scavenger pass.
 * The pass runs under the heap lock, inside that call. */
static void time_scavenge_pass(size_t n) {
    int64_t delay = mhi_heap_.scavenge_delay_ms; /* single-threaded */
    int64_t idle_ms = delay + delay / 2 + 200;
    struct timespec idle = {(time_t)(idle_ms / 1000), (long)(idle_ms % 1000) * 1000000};
    nanosleep(&idle, NULL);
    mhi_heap_stats a, z;
    mhi_heap_stats_get(&a);
    int64_t p0 = now_ns();
    mhi_heap_free(must_alloc(1));
    int64_t p1 = now_ns();
    mhi_heap_stats_get(&z);
    fprintf(stderr,
            "# N=%zu: after %lld ms idle, one alloc+free took %.3f ms "
            "(scavenger passes %llu, released %.2f GiB)\n",
            n, (long long)idle_ms, (double)(p1 - p0) / 1e6,
            (unsigned long long)(z.nscavenge - a.nscavenge),
            (double)(z.scavenged - a.scavenged) / (1 << 30));
}

/* One shape: build a heap with at least n free spans, time both workloads
 * on it and report them, then free every span held so that the next shape
 * reuses the heap.  The largest shape (last) also times the scavenger pass,
 * as nothing is timed after it.  *mixed_ns gets the mixed figure.  Returns
 * 0, or 1 after printing why it failed. */
static int run_shape(size_t n, int first_warm_ms, bool last, const uint8_t *sizes_mixed,
                     const uint8_t *sizes_one, double *mixed_ns) {
    mhi_span **spans = malloc(2 * n * sizeof *spans);
    if (!spans) {
        fprintf(stderr, "mh-bench-pageheap: out of memory for %zu span pointers\n", 2 * n);
        return 1;
    }
    int64_t build_ns = build_heap(spans, n);

    mhi_heap_stats st0;
    mhi_heap_stats_get(&st0);
    if (st0.nspan_free < n) {
        fprintf(stderr, "mh-bench-pageheap: heap has %llu free spans, wanted >= %zu\n",
                (unsigned long long)st0.nspan_free, n);
        free(spans);
        return 1;
    }

    shape_timing t;
    time_shape(sizes_mixed, sizes_one, first_warm_ms, &t);
    mhi_heap_stats st1;
    mhi_heap_stats_get(&st1);
    report_shape(n, &st0, &st1, build_ns, &t);

    if (last) time_scavenge_pass(n);

    for (size_t i = 0; i < 2 * n; i += 2) mhi_heap_free(spans[i]);
    free(spans);
    *mixed_ns = t.mixed.median_ns;
    return 0;
}

int main(int argc, char **argv) {
    static const size_t shapes[] = {1000, 10000, 100000, 1000000};
    enum { NSHAPES = sizeof shapes / sizeof shapes[0] };
    size_t max_n;
    if (parse_args(argc, argv, &max_n) != 0) return 2;

    static uint8_t sizes_mixed[NSIZES], sizes_one[NSIZES];
    init_sizes(sizes_mixed, sizes_one);

    int64_t t_start = now_ns();
    double first_ns = 0, last_ns = 0;
    size_t last_n = 0;
    for (int si = 0; si < NSHAPES && shapes[si] <= max_n; si++) {
        size_t n = shapes[si];
        bool last = si == NSHAPES - 1 || shapes[si + 1] > max_n;
        double mixed_ns;
        if (run_shape(n, si == 0 ? 300 : 0, last, sizes_mixed, sizes_one, &mixed_ns) != 0)
            return 1;
        if (si == 0) first_ns = mixed_ns;
        last_ns = mixed_ns;
        last_n = n;
    }
    if (last_n > shapes[0] && first_ns > 0)
        printf("ratio_%s_to_1e3=%.2f\n", exp_name(last_n), last_ns / first_ns);
    fprintf(stderr, "# total %.2f s\n", (double)(now_ns() - t_start) / 1e9);
    return 0;
}
