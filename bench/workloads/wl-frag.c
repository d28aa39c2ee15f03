/* Workload 9: fragmentation and return of memory to the OS.
 *
 * 1. Fills FILL MiB (1 GiB at scale 1) with objects of mixed sizes (by
 *    count: 70 % 16..256 B, 25 % 256 B..8 KiB, 5 % 8..256 KiB, each
 *    log-uniform), writing every byte.
 * 2. Frees 90 % of them, chosen at random; reads RSS (/proc/self/statm)
 *    right away: rss_after_free_mib.
 * 3. About 1 s of light activity: every 5 ms, 200 malloc/free pairs of
 *    16..256 B through a ring of 64 live objects.  No allocator-specific
 *    call.  Reads RSS again: rss_after_1s_mib.  live_mib is the bytes still
 *    allocated (requested sizes).  floor_mib is the memory of the 4 KiB
 *    pages that hold at least one byte of a live object, where this
 *    allocator placed them: no policy that releases whole free pages (and
 *    moves nothing) can be resident in less.
 * 4. Allocates again as many bytes as were freed (same size mix, new
 *    draws), writing them: rss_after_realloc_mib; compare with rss_full_mib
 *    (after step 1): an allocator that reuses the freed memory ends near it.
 *
 *   wl-frag [threads(ignored) [scale [seed]]]
 *   full (scale 1): 1024 MiB
 */
#include "common.h"

#define MIB (1024.0 * 1024.0)

static uint32_t small_t[WL_SIZETAB], mid_t[WL_SIZETAB], big_t[WL_SIZETAB];

static uint32_t draw(wl_rng *r) {
  uint32_t u = wl_below(r, 100);
  return wl_draw(u < 70 ? small_t : u < 95 ? mid_t : big_t, r);
}

static void fill(unsigned char *p, uint32_t size, uint64_t id) {
  uint64_t h = wl_mix64(id);
  memset(p, (int)(h & 0xFF), size);
  memcpy(p, &h, 8);
}

static int ok(const unsigned char *p, uint32_t size, uint64_t id) {
  uint64_t h = wl_mix64(id), g;
  memcpy(&g, p, 8);
  return g == h && p[size - 1] == (unsigned char)(h & 0xFF);
}

static double rss_mib(void) { return wl_rss_kib() / 1024.0; }

static int cmp_uptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* MiB of the distinct 4 KiB pages touched by the live objects. */
static double floor_mib(unsigned char **obj, const uint32_t *size, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (obj[i]) k++;
  uintptr_t *lo = wl_xmalloc(sizeof(uintptr_t) * (k ? k : 1));
  uintptr_t *hi = wl_xmalloc(sizeof(uintptr_t) * (k ? k : 1));
  k = 0;
  for (size_t i = 0; i < n; i++)
    if (obj[i]) {
      lo[k] = (uintptr_t)obj[i] >> 12;
      hi[k++] = ((uintptr_t)obj[i] + size[i] - 1) >> 12;
    }
  qsort(lo, k, sizeof(uintptr_t), cmp_uptr);
  qsort(hi, k, sizeof(uintptr_t), cmp_uptr);
  /* objects do not overlap, so sorting both ends keeps the pairs in order */
  uint64_t pages = 0;
  uintptr_t last = 0; /* one past the last page counted */
  for (size_t i = 0; i < k; i++) {
    uintptr_t a = lo[i] < last ? last : lo[i];
    if (hi[i] + 1 > a) {
      pages += hi[i] + 1 - a;
      last = hi[i] + 1;
    }
  }
  free(lo);
  free(hi);
  return pages * 4096.0 / MIB;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  double target = 1024.0 * MIB * a.scale;
  wl_powerlaw_table(small_t, 16, 256, 1.0);
  wl_powerlaw_table(mid_t, 256, 8192, 1.0);
  wl_powerlaw_table(big_t, 8192, 262144, 1.0);
  wl_rng r;
  wl_rng_seed(&r, a.seed);

  /* sizes first, so that the bookkeeping arrays are allocated up front */
  size_t n = 0, cap = 1 << 16;
  uint32_t *size = wl_xmalloc(sizeof(uint32_t) * cap);
  double total = 0;
  while (total < target) {
    if (n == cap) size = wl_xrealloc(size, sizeof(uint32_t) * (cap *= 2));
    size[n] = draw(&r);
    total += size[n++];
  }
  size = wl_xrealloc(size, sizeof(uint32_t) * n * 2); /* room for step 4 */
  unsigned char **obj = wl_xmalloc(sizeof(void *) * n * 2);
  uint32_t *order = wl_xmalloc(sizeof(uint32_t) * n);
  uint64_t *ids = wl_xmalloc(sizeof(uint64_t) * n * 2);
  memset(obj, 0, sizeof(void *) * n * 2);
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = wl_below(&r, (uint32_t)i + 1);
    uint32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  double rss0 = rss_mib();

  double t0 = wl_now();
  for (size_t i = 0; i < n; i++) {
    ids[i] = (a.seed << 40) + i;
    obj[i] = wl_xmalloc(size[i]);
    fill(obj[i], size[i], ids[i]);
  }
  double t_fill = wl_now() - t0;
  double rss_full = rss_mib();

  uint64_t errors = 0, check = 0;
  double freed = 0;
  size_t nfree = n * 9 / 10;
  t0 = wl_now();
  for (size_t k = 0; k < nfree; k++) {
    size_t i = order[k];
    if (!ok(obj[i], size[i], ids[i])) errors++;
    check += ids[i] * size[i];
    freed += size[i];
    free(obj[i]);
    obj[i] = NULL;
  }
  double t_free = wl_now() - t0;
  double rss_after_free = rss_mib();
  double floor = floor_mib(obj, size, n);

  /* about 1 s of light activity */
  void *ring[64];
  wl_rng lr; /* its own generator: how many draws depends on timing */
  wl_rng_seed(&lr, a.seed ^ 0x5EEDu);
  for (int j = 0; j < 64; j++) ring[j] = wl_xmalloc(wl_draw(small_t, &lr));
  double ts = wl_now();
  unsigned light = 0;
  while (wl_now() - ts < 1.0) {
    for (int k = 0; k < 200; k++) {
      int j = (int)wl_below(&lr, 64);
      free(ring[j]);
      uint32_t sz = wl_draw(small_t, &lr);
      ring[j] = wl_xmalloc(sz);
      memset(ring[j], 1, sz);
    }
    light += 200;
    wl_sleep_ms(5);
  }
  double rss_after_1s = rss_mib();
  double live = total - freed;

  /* allocate the freed amount again */
  t0 = wl_now();
  size_t m = n;
  double again = 0;
  while (again < freed && m < 2 * n) {
    size[m] = draw(&r);
    ids[m] = (a.seed << 40) + m;
    obj[m] = wl_xmalloc(size[m]);
    fill(obj[m], size[m], ids[m]);
    again += size[m++];
  }
  double t_realloc = wl_now() - t0;
  double rss_after_realloc = rss_mib();

  t0 = wl_now();
  for (size_t i = 0; i < m; i++)
    if (obj[i]) {
      if (!ok(obj[i], size[i], ids[i])) errors++;
      check += ids[i] * size[i];
      free(obj[i]);
    }
  double t_end = wl_now() - t0;
  for (int j = 0; j < 64; j++) free(ring[j]);
  free(obj);
  free(order);
  free(ids);
  free(size);

  printf("result: time_s=%.4f fill_mib=%.1f objects=%zu rss_before_mib=%.1f rss_full_mib=%.1f "
         "rss_after_free_mib=%.1f rss_after_1s_mib=%.1f live_mib=%.1f floor_mib=%.1f "
         "rss_after_realloc_mib=%.1f realloc_mib=%.1f light_ops=%u fill_s=%.4f free_s=%.4f "
         "realloc_s=%.4f end_s=%.4f check=%016llx errors=%llu\n",
         t_fill + t_free + t_realloc + t_end, total / MIB, n, rss0, rss_full, rss_after_free,
         rss_after_1s, live / MIB, floor, rss_after_realloc, again / MIB, light, t_fill, t_free, t_realloc, t_end,
         (unsigned long long)check, (unsigned long long)errors);
  return errors ? 3 : 0;
}
