/* Workload 5: false sharing (after Hoard's active-false and passive-false).
 *
 * Each of N threads repeats ITERS times: malloc an 8-byte object, increment
 * each of its bytes REPS times (volatile byte writes), free it.  If the
 * allocator gives two threads objects in the same 64-byte cache line, their
 * writes fight over the line and the write rate collapses.
 *
 * active:  each thread allocates its own objects from the start.
 * passive: the main thread first allocates one 8-byte object per thread, one
 *          after the other (so they are neighbours), and hands object t to
 *          thread t, which writes it for one iteration (REPS rounds), frees
 *          it and only then starts the loop above: an allocator that reuses
 *          the freed neighbour in the freeing thread keeps the threads on
 *          one line.
 *
 * Prints the write throughput (bytes written per second, all threads).
 *
 *   wl-fs-active | wl-fs-passive [threads [scale [seed]]]
 *   full (scale 1): 1000 million byte writes per thread
 */
#include "common.h"

#define OBJ 8
#define REPS 1000

static uint64_t iters;
static pthread_barrier_t bar;

typedef struct {
  int id;
  char *handed;
  uint64_t sum;
} __attribute__((aligned(64))) fs_worker;

static void write_obj(volatile unsigned char *p) {
  for (int r = 0; r < REPS; r++)
    for (int k = 0; k < OBJ; k++) p[k] = (unsigned char)(p[k] + 1);
}

static void *fs_run(void *arg) {
  fs_worker *w = arg;
  uint64_t sum = 0, n = iters;
  pthread_barrier_wait(&bar);
  if (w->handed) {
    memset(w->handed, 0, OBJ);
    write_obj((volatile unsigned char *)w->handed);
    sum += (unsigned char)w->handed[0];
    free(w->handed);
    n = n > 0 ? n - 1 : 0;
  }
  for (uint64_t i = 0; i < n; i++) {
    unsigned char *p = wl_xmalloc(OBJ);
    memset(p, 0, OBJ);
    write_obj((volatile unsigned char *)p);
    sum += p[OBJ - 1];
    free(p);
  }
  w->sum = sum;
  return NULL;
}

static int fs_main(int argc, char **argv, int passive, const char *name) {
  wl_args a = wl_parse(argc, argv, 2);
  int nt = a.threads;
  iters = wl_scaled(1e9 / (OBJ * REPS), a.scale, 2);
  fs_worker *ws = aligned_alloc(64, sizeof(fs_worker) * (size_t)nt);
  pthread_t *th = wl_xmalloc(sizeof(pthread_t) * (size_t)nt);
  if (!ws) return 2;
  memset(ws, 0, sizeof(fs_worker) * (size_t)nt);
  pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
  for (int t = 0; t < nt; t++) {
    ws[t].id = t;
    ws[t].handed = passive ? wl_xmalloc(OBJ) : NULL;
  }
  for (int t = 0; t < nt; t++)
    if (pthread_create(&th[t], NULL, fs_run, &ws[t]) != 0) return 2;
  pthread_barrier_wait(&bar);
  double t0 = wl_now();
  for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
  double dt = wl_now() - t0;
  uint64_t sum = 0, errors = 0;
  for (int t = 0; t < nt; t++) {
    sum += ws[t].sum;
    if (ws[t].sum != iters * (REPS & 0xFF)) errors++;
  }
  double writes = (double)iters * REPS * OBJ * nt;
  printf("result: time_s=%.4f mode=%s threads=%d writes=%.0f mwrites_per_s=%.1f "
         "check=%016llx errors=%llu\n",
         dt, name, nt, writes, writes / dt * 1e-6, (unsigned long long)sum,
         (unsigned long long)errors);
  free(th);
  free(ws);
  return errors ? 3 : 0;
}
