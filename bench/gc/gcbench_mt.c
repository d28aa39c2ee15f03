/* gcbench_mt.c - GCBench (gcbench.h) with several mutator threads.
 *
 *   gcbench_mt [max_depth [threads]]     (defaults 20 and 2)
 *
 * The main thread builds the stretch tree, the long-lived tree and the
 * array; then the threads share out the trees of every depth (thread k
 * builds trees k, k + threads, ...), so that the work equals gcbench's.
 * Each thread also checks the long-lived tree after each depth.
 *
 * GC_THREADS makes gc.h (bdwgc's and mheap's) send pthread_create to
 * GC_pthread_create, which starts the threads registered with the
 * collector. */
#define GC_THREADS
#include "gcbench.h"

#include <pthread.h>
#include <string.h>

#define GCBENCH_MAX_THREADS 64

typedef struct {
  const gcbench_params *params;
  long part, nparts;
  gcbench_tally tally;
  double seconds;
} mutator;

static void *mutator_main(void *arg) {
  mutator *m = arg;
  const gcbench_params *p = m->params;
  double t0 = gcb_now();
  for (int d = GCBENCH_MIN_DEPTH; d <= p->max_depth; d += 2) {
    double sec[2];
    gcbench_depth(&m->tally, p, d, m->part, m->nparts, sec);
    gcbench_check_long_lived(&m->tally, p);
  }
  m->seconds = gcb_now() - t0;
  return NULL;
}

int main(int argc, char **argv) {
  gcbench_params p = gcbench_parse(argc, argv);
  long nthreads = gcb_arg(argc, argv, 2, 2);
  if (nthreads < 1 || nthreads > GCBENCH_MAX_THREADS) {
    fprintf(stderr, "%s: threads must be 1..%d\n", argv[0], GCBENCH_MAX_THREADS);
    return 2;
  }
  gcb_init();
  printf("gcbench_mt: %ld threads, stretch tree of depth %d, long-lived tree of depth %d, "
         "trees of depth %d..%d\n",
         nthreads, p.stretch_depth, p.long_lived_depth, GCBENCH_MIN_DEPTH, p.max_depth);
  gcbench_tally t = {0, 0, 0};
  mutator m[GCBENCH_MAX_THREADS];
  pthread_t tid[GCBENCH_MAX_THREADS];
  double t0 = gcb_now();
  gcbench_setup(&t, &p);
  for (long k = 0; k < nthreads; k++) {
    memset(&m[k], 0, sizeof m[k]);
    m[k].params = &p;
    m[k].part = k;
    m[k].nparts = nthreads;
    int rc = pthread_create(&tid[k], NULL, mutator_main, &m[k]);
    if (rc) {
      fprintf(stderr, "gcbench_mt: pthread_create: %s\n", strerror(rc));
      return 2;
    }
  }
  uint64_t check = 0;
  for (long k = 0; k < nthreads; k++) {
    pthread_join(tid[k], NULL);
    check += m[k].tally.hash; /* a sum: the order the threads end in does not matter */
    t.nodes += m[k].tally.nodes;
    t.errors += m[k].tally.errors;
    printf("thread %ld: %.3f s\n", k, m[k].seconds);
  }
  gcbench_check_long_lived(&t, &p);
  double elapsed = gcb_now() - t0;
  gcbench_fold(&t, t.nodes);
  check += t.hash;
  printf("nodes allocated %llu, checksum %016llx, %.3f s, %lu collections, heap %zu bytes\n",
         (unsigned long long)t.nodes, (unsigned long long)check, elapsed,
         (unsigned long)GC_get_gc_no(), GC_get_heap_size());
  return gcb_report(elapsed, check, t.errors);
}
