/* Workload 6: thread churn.
 *
 * Rounds of N short-lived threads.  In each round every thread frees its
 * share of the objects handed on by the previous round's threads (now
 * exited), allocates 4,000 objects of 8 B..1 KiB (density ~ size^-1.5),
 * frees 70 % of them in random order and hands the other 30 % to the next
 * round, then exits.  The main thread joins the round and starts the next.
 *
 *   wl-churn [threads [scale [seed]]]
 *   full (scale 1): 1000 rounds
 */
#include "common.h"

#define PER_THREAD 4000
#define HANDED (PER_THREAD * 3 / 10)

typedef struct {
  int id;
  uint64_t round;
  void **prev; /* objects of the previous round, all threads */
  void **next; /* where this thread's hand-offs go: HANDED slots */
  uint64_t sum, errors;
} __attribute__((aligned(64))) churn_worker;

static int nthreads;
static uint64_t seed;
static uint32_t sizes[WL_SIZETAB];

static void *run(void *arg) {
  churn_worker *w = arg;
  wl_rng r;
  wl_rng_seed(&r, seed ^ (w->round * 1000003u + (uint64_t)w->id * 7919u));
  uint64_t sum = 0, errors = 0;
  if (w->prev) {
    size_t total = (size_t)HANDED * (size_t)nthreads;
    for (size_t j = (size_t)w->id; j < total; j += (size_t)nthreads) {
      uint64_t tag = wl_check(w->prev[j]);
      if (tag == 0) errors++;
      sum += tag;
      free(w->prev[j]);
    }
  }
  void **mine = wl_xmalloc(sizeof(void *) * PER_THREAD);
  uint64_t id = (w->round << 32) ^ ((uint64_t)w->id << 20) ^ (seed << 44);
  for (int i = 0; i < PER_THREAD; i++) {
    uint32_t sz = wl_draw(sizes, &r);
    mine[i] = wl_xmalloc(sz);
    wl_stamp(mine[i], sz, id++);
  }
  /* shuffle, then free the first 70 % and hand on the rest */
  for (int i = PER_THREAD - 1; i > 0; i--) {
    int j = (int)wl_below(&r, (uint32_t)i + 1);
    void *t = mine[i];
    mine[i] = mine[j];
    mine[j] = t;
  }
  for (int i = 0; i < PER_THREAD - HANDED; i++) {
    uint64_t tag = wl_check(mine[i]);
    if (tag == 0) errors++;
    sum += tag;
    free(mine[i]);
  }
  memcpy(w->next, mine + (PER_THREAD - HANDED), sizeof(void *) * HANDED);
  free(mine);
  w->sum += sum;
  w->errors += errors;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 4);
  nthreads = a.threads;
  seed = a.seed;
  uint64_t rounds = wl_scaled(1000, a.scale, 2);
  wl_powerlaw_table(sizes, 8, 1024, 1.5);
  size_t total = (size_t)HANDED * (size_t)nthreads;
  void **bufa = wl_xmalloc(sizeof(void *) * total), **bufb = wl_xmalloc(sizeof(void *) * total);
  void **prev = NULL, **next = bufa;
  churn_worker *ws = aligned_alloc(64, sizeof(churn_worker) * (size_t)nthreads);
  pthread_t *th = wl_xmalloc(sizeof(pthread_t) * (size_t)nthreads);
  if (!ws) return 2;
  memset(ws, 0, sizeof(churn_worker) * (size_t)nthreads);
  double t0 = wl_now();
  for (uint64_t k = 0; k < rounds; k++) {
    for (int t = 0; t < nthreads; t++) {
      ws[t].id = t;
      ws[t].round = k;
      ws[t].prev = prev;
      ws[t].next = next + (size_t)t * HANDED;
      if (pthread_create(&th[t], NULL, run, &ws[t]) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 2;
      }
    }
    for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
    prev = next;
    next = (next == bufa) ? bufb : bufa;
  }
  uint64_t sum = 0, errors = 0;
  for (size_t j = 0; j < total; j++) {
    uint64_t tag = wl_check(prev[j]);
    if (tag == 0) errors++;
    sum += tag;
    free(prev[j]);
  }
  double dt = wl_now() - t0;
  for (int t = 0; t < nthreads; t++) {
    sum += ws[t].sum;
    errors += ws[t].errors;
  }
  uint64_t nthr = rounds * (uint64_t)nthreads;
  printf("result: time_s=%.4f threads=%d rounds=%llu threads_per_s=%.0f check=%016llx errors=%llu\n",
         dt, nthreads, (unsigned long long)rounds, nthr / dt, (unsigned long long)sum,
         (unsigned long long)errors);
  free(th);
  free(ws);
  free(bufa);
  free(bufb);
  return errors ? 3 : 0;
}
