/* Shared helpers for the allocator-comparison workloads (bench/workloads/).
 *
 * The workloads use only the standard C API (malloc, free, calloc, realloc,
 * pthreads), so any allocator can be put under them with LD_PRELOAD.  Every
 * workload takes the same positional arguments:
 *
 *     wl-NAME [threads [scale [seed]]]
 *
 * threads: worker threads (ignored by the single-threaded workloads);
 * scale:   multiplier of the amount of work (1.0 = the "full" size);
 * seed:    PRNG seed; the work done (sizes, order) depends on it only.
 *
 * Each prints one line `result: key=value ...` on stdout.  `check=` is a
 * checksum that depends only on the arguments (never on timing or on the
 * allocator), so a run under another allocator must print the same value;
 * `errors=` counts objects whose contents were found corrupted when freed
 * (must be 0).  A workload exits with status 3 when errors > 0.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#ifndef _GNU_SOURCE /* (g++ defines it) */
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint64_t s;
} wl_rng;

static inline uint64_t wl_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static inline void wl_rng_seed(wl_rng *r, uint64_t seed) {
  r->s = wl_mix64(seed);
  if (r->s == 0) r->s = 1;
}

/* xorshift64* */
static inline uint64_t wl_rand(wl_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n). */
static inline uint32_t wl_below(wl_rng *r, uint32_t n) {
  return (uint32_t)(((wl_rand(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [0, 1). */
static inline double wl_unit(wl_rng *r) {
  return (double)(wl_rand(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double wl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void wl_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

typedef struct {
  int threads;
  double scale;
  uint64_t seed;
} wl_args;

static inline wl_args wl_parse(int argc, char **argv, int def_threads) {
  wl_args a;
  a.threads = def_threads;
  a.scale = 1.0;
  a.seed = 42;
  if (argc > 1) a.threads = atoi(argv[1]);
  if (argc > 2) a.scale = atof(argv[2]);
  if (argc > 3) a.seed = strtoull(argv[3], NULL, 0);
  if (a.threads < 1) a.threads = 1;
  if (a.threads > 256) a.threads = 256;
  if (!(a.scale > 0)) a.scale = 1.0;
  return a;
}

/* Scaled count, at least lo. */
static inline uint64_t wl_scaled(double full, double scale, uint64_t lo) {
  double v = full * scale;
  return v < (double)lo ? lo : (uint64_t)v;
}

static inline void *wl_xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL && n != 0) {
    fprintf(stderr, "out of memory (malloc %zu)\n", n);
    exit(2);
  }
  return p;
}

static inline void *wl_xrealloc(void *q, size_t n) {
  void *p = realloc(q, n);
  if (p == NULL && n != 0) {
    fprintf(stderr, "out of memory (realloc %zu)\n", n);
    exit(2);
  }
  return p;
}

/* A table of sizes in [lo, hi] with density proportional to s^-alpha,
 * filled with the exact quantiles (no randomness): index it with random
 * bits to draw a size.  alpha = 1.5 on [8, 1024] gives a mean of about 90 B;
 * alpha = 1 is log-uniform. */
#define WL_SIZETAB 65536
static inline void wl_powerlaw_table(uint32_t *tab, double lo, double hi, double alpha) {
  for (int i = 0; i < WL_SIZETAB; i++) {
    double u = (i + 0.5) / WL_SIZETAB, s;
    if (fabs(alpha - 1.0) < 1e-9) {
      s = lo * pow(hi / lo, u);
    } else {
      double e = 1.0 - alpha;
      double a = pow(lo, e), b = pow(hi, e);
      s = pow(a + u * (b - a), 1.0 / e);
    }
    uint32_t v = (uint32_t)(s + 0.5);
    if (v < (uint32_t)lo) v = (uint32_t)lo;
    if (v > (uint32_t)hi) v = (uint32_t)hi;
    tab[i] = v;
  }
}

static inline uint32_t wl_draw(const uint32_t *tab, wl_rng *r) {
  return tab[wl_rand(r) >> 48];
}

/* Object stamping for 8 <= size < 65536: the first 8 bytes hold
 * (hash << 16) | size, the last byte (size > 8) the low byte of the hash,
 * and the bytes between are filled (the object is written as a program would).  wl_check
 * returns the stamp (0 when the object is corrupted). */
static inline uint64_t wl_stamp(void *p, size_t size, uint64_t id) {
  uint64_t h = wl_mix64(id) & 0xFFFFFFFFFFFF0000ull;
  if (h == 0) h = 0x10000;
  uint64_t tag = h | (uint64_t)size;
  unsigned char *c = (unsigned char *)p;
  if (size > 9) memset(c + 8, (int)(h >> 24) & 0xFF, size - 9);
  memcpy(c, &tag, 8);
  if (size > 8) c[size - 1] = (unsigned char)(h >> 16);
  return tag;
}

static inline uint64_t wl_check(const void *p) {
  uint64_t tag;
  memcpy(&tag, p, 8);
  size_t size = (size_t)(tag & 0xFFFF);
  const unsigned char *c = (const unsigned char *)p;
  if (size < 8 || (tag >> 16) == 0) return 0;
  if (size > 8 && c[size - 1] != (unsigned char)(tag >> 16)) return 0;
  return tag;
}

/* Resident set size of this process, in KiB (/proc/self/statm). */
static inline long wl_rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
