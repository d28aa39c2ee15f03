/* Workload 2: single thread, a long-lived pool with random replacement.
 *
 * 100,000 slots hold objects of 8 B..1 KiB (density ~ size^-1.5, mean about
 * 90 B).  Each step picks a random slot, checks and frees its object and puts
 * a new one of a new size there, writing all its bytes.
 *
 *   wl-pool [threads(ignored) [scale [seed]]]
 *   full (scale 1): 20 million replacements
 */
#include "common.h"

#define SLOTS 100000

static uint32_t sizes[WL_SIZETAB];

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  uint64_t ops = wl_scaled(20e6, a.scale, 1000);
  wl_powerlaw_table(sizes, 8, 1024, 1.5);
  wl_rng r;
  wl_rng_seed(&r, a.seed);
  void **slot = wl_xmalloc(sizeof(void *) * SLOTS);
  uint64_t sum = 0, errors = 0, id = a.seed << 32;
  double t0 = wl_now();
  for (int i = 0; i < SLOTS; i++) {
    uint32_t sz = wl_draw(sizes, &r);
    slot[i] = wl_xmalloc(sz);
    wl_stamp(slot[i], sz, id++);
  }
  for (uint64_t k = 0; k < ops; k++) {
    uint32_t i = wl_below(&r, SLOTS);
    uint64_t tag = wl_check(slot[i]);
    if (tag == 0) errors++;
    sum += tag;
    free(slot[i]);
    uint32_t sz = wl_draw(sizes, &r);
    slot[i] = wl_xmalloc(sz);
    wl_stamp(slot[i], sz, id++);
  }
  for (int i = 0; i < SLOTS; i++) {
    uint64_t tag = wl_check(slot[i]);
    if (tag == 0) errors++;
    sum += tag;
    free(slot[i]);
  }
  double dt = wl_now() - t0;
  free(slot);
  printf("result: time_s=%.4f ops=%llu mops_per_s=%.3f check=%016llx errors=%llu\n", dt,
         (unsigned long long)ops, ops / dt * 1e-6, (unsigned long long)sum,
         (unsigned long long)errors);
  return errors ? 3 : 0;
}
