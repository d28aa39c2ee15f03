/* gcbench.c - GCBench (gcbench.h) with one mutator thread.
 *
 *   gcbench [max_depth]      (default 20: stretch tree 21, long-lived 16) */
#include "gcbench.h"

int main(int argc, char **argv) {
  gcbench_params p = gcbench_parse(argc, argv);
  gcb_init();
  gcbench_tally t = {0, 0, 0};
  printf("gcbench: stretch tree of depth %d, long-lived tree of depth %d, array of %d doubles, "
         "trees of depth %d..%d\n",
         p.stretch_depth, p.long_lived_depth, GCBENCH_ARRAY_SIZE, GCBENCH_MIN_DEPTH, p.max_depth);
  double t0 = gcb_now();
  gcbench_setup(&t, &p);
  for (int d = GCBENCH_MIN_DEPTH; d <= p.max_depth; d += 2) {
    double sec[2];
    gcbench_depth(&t, &p, d, 0, 1, sec);
    gcbench_check_long_lived(&t, &p);
    printf("depth %2d: %6ld trees, top-down %.3f s, bottom-up %.3f s\n", d,
           gcbench_iterations(&p, d), sec[0], sec[1]);
  }
  double elapsed = gcb_now() - t0;
  gcbench_fold(&t, t.nodes);
  printf("nodes allocated %llu, checksum %016llx, %.3f s, %lu collections, heap %zu bytes\n",
         (unsigned long long)t.nodes, (unsigned long long)t.hash, elapsed,
         (unsigned long)GC_get_gc_no(), GC_get_heap_size());
  return gcb_report(elapsed, t.hash, t.errors);
}
