/* Workload 7: large blocks.
 *
 * 20 slots; each step picks a random slot, checks and frees the block there
 * (if any) and allocates a new block of 5..25 MiB (any byte count), writing
 * one byte in every 4 KiB page of it.  The page faults this causes (when the
 * allocator hands back memory it returned to the OS, or maps fresh memory)
 * are the point: the runner reports the minor faults next to the time.
 *
 *   wl-large [threads(ignored) [scale [seed]]]
 *   full (scale 1): 1000 blocks
 */
#include "common.h"

#define SLOTS 20
#define MIB (1024u * 1024u)

typedef struct {
  unsigned char *p;
  size_t size;
  unsigned char mark;
} block;

static uint64_t check_block(const block *b, uint64_t *errors) {
  uint64_t s = 0;
  for (size_t off = 0; off + 1 < b->size; off += 4096) {
    if (b->p[off] != b->mark) (*errors)++;
    s += b->p[off];
  }
  if (b->p[b->size - 1] != (unsigned char)(b->mark ^ 0x5A)) (*errors)++;
  return s + b->size;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  uint64_t steps = wl_scaled(1000, a.scale, 20);
  wl_rng r;
  wl_rng_seed(&r, a.seed);
  block slot[SLOTS];
  memset(slot, 0, sizeof(slot));
  uint64_t sum = 0, errors = 0;
  double t0 = wl_now();
  for (uint64_t k = 0; k < steps; k++) {
    block *b = &slot[wl_below(&r, SLOTS)];
    if (b->p) {
      sum += check_block(b, &errors);
      free(b->p);
    }
    b->size = 5 * MIB + wl_below(&r, 20 * MIB + 1);
    b->mark = (unsigned char)(1 + wl_below(&r, 255));
    b->p = wl_xmalloc(b->size);
    for (size_t off = 0; off + 1 < b->size; off += 4096) b->p[off] = b->mark;
    b->p[b->size - 1] = (unsigned char)(b->mark ^ 0x5A);
  }
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p) {
      sum += check_block(&slot[i], &errors);
      free(slot[i].p);
    }
  double dt = wl_now() - t0;
  printf("result: time_s=%.4f blocks=%llu blocks_per_s=%.1f check=%016llx errors=%llu\n", dt,
         (unsigned long long)steps, steps / dt, (unsigned long long)sum,
         (unsigned long long)errors);
  return errors ? 3 : 0;
}
