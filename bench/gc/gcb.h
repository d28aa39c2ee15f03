/* gcb.h - shared pieces of the garbage-collector benchmarks (bench/gc/).
 *
 * The programs use only the bdwgc-compatible subset of <gc.h> that mheap
 * provides (include/gc.h), so each one builds unchanged against bdwgc's
 * own header and library (-lgc) and against mheap's (-I include, libmheap).
 *
 * Built against bdwgc with -DGCB_BDWGC_TUNED, gcb_init() also turns off
 * interior-pointer recognition (before the collector starts) and starts
 * the parallel marker threads; that flag is for bdwgc only.
 *
 * A program includes this header first (after defining GC_THREADS, if it
 * does), so that _GNU_SOURCE comes before any system header.
 *
 * Every program ends with one line on stdout:
 *
 *   result: time_s=... check=... errors=... gc_no=... heap_bytes=...
 *           maxrss_kib=... collector=...
 *
 * check depends only on the arguments, never on the collector; errors
 * counts structures found damaged (must be 0: the program then exits 3). */
#ifndef GCB_H
#define GCB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <gc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#if defined(GCB_BDWGC_TUNED) && defined(MHEAP_GC_BOEHM_COMPAT)
#error "GCB_BDWGC_TUNED is for builds against bdwgc's gc.h"
#endif

#ifdef MHEAP_GC_BOEHM_COMPAT
#define GCB_COLLECTOR "mheap"
#elif defined(GCB_BDWGC_TUNED)
#define GCB_COLLECTOR "bdwgc-tuned"
#else
#define GCB_COLLECTOR "bdwgc"
#endif

static inline void gcb_init(void) {
#ifdef GCB_BDWGC_TUNED
  GC_set_all_interior_pointers(0);
#endif
  GC_INIT();
#ifdef GCB_BDWGC_TUNED
  GC_start_mark_threads();
#endif
}

static inline double gcb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: a bijective mixer, also the step of the generator below. */
static inline uint64_t gcb_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

typedef struct {
  uint64_t s;
} gcb_rng;

static inline uint64_t gcb_next(gcb_rng *r) {
  r->s += 0x9E3779B97F4A7C15ull;
  return gcb_mix64(r->s);
}

/* A value in [0, n). */
static inline uint64_t gcb_below(gcb_rng *r, uint64_t n) { return gcb_next(r) % n; }

static inline long gcb_arg(int argc, char **argv, int i, long dflt) {
  return argc > i ? strtol(argv[i], NULL, 10) : dflt;
}

/* Prints the result line; returns the exit status (3 when errors > 0). */
static inline int gcb_report(double seconds, uint64_t check, uint64_t errors) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("result: time_s=%.4f check=%016llx errors=%llu gc_no=%lu heap_bytes=%zu "
         "maxrss_kib=%ld collector=%s\n",
         seconds, (unsigned long long)check, (unsigned long long)errors,
         (unsigned long)GC_get_gc_no(), GC_get_heap_size(), ru.ru_maxrss, GCB_COLLECTOR);
  fflush(stdout);
  return errors ? 3 : 0;
}

#endif
