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

/* The objects of steps 1 and 4; slots n..2n-1 are for step 4. */
typedef struct {
  size_t n;            /* objects of step 1 */
  size_t m;            /* objects of steps 1 and 4 together */
  uint32_t *size;      /* requested size of each object */
  unsigned char **obj; /* each object, NULL once freed */
  uint64_t *ids;       /* what each object's contents are derived from */
  uint32_t *order;     /* permutation of 0..n-1: the order of step 2 */
  uint64_t errors;     /* objects found corrupted when freed */
  uint64_t check;      /* sum of id * size over the objects freed */
} frag_objs;

/* The figures of the result line. */
typedef struct {
  double total, freed, again; /* bytes made in step 1, freed in 2, made in 4 */
  double rss0, rss_full, rss_after_free, rss_after_1s, rss_after_realloc, floor; /* MiB */
  double t_fill, t_free, t_realloc, t_end; /* seconds */
  unsigned light;                          /* malloc/free pairs of step 3 */
} frag_stats;

/* Fisher-Yates shuffle of order[0..n-1] set to 0..n-1 (n >= 1). */
static void shuffle(uint32_t *order, size_t n, wl_rng *r) {
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = wl_below(r, (uint32_t)i + 1);
    uint32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

/* Draws the sizes of step 1 until they reach target bytes, then allocates
 * the bookkeeping arrays, so that none of them is allocated between the
 * objects.  Returns the bytes drawn. */
static double plan(frag_objs *o, wl_rng *r, double target) {
  size_t n = 0, cap = 1 << 16;
  uint32_t *size = wl_xmalloc(sizeof(uint32_t) * cap);
  double total = 0;
  while (total < target) {
    if (n == cap) size = wl_xrealloc(size, sizeof(uint32_t) * (cap *= 2));
    size[n] = draw(r);
    total += size[n++];
  }
  o->n = o->m = n;
  o->size = wl_xrealloc(size, sizeof(uint32_t) * n * 2); /* room for step 4 */
  o->obj = wl_xmalloc(sizeof(void *) * n * 2);
  o->order = wl_xmalloc(sizeof(uint32_t) * n);
  o->ids = wl_xmalloc(sizeof(uint64_t) * n * 2);
  memset(o->obj, 0, sizeof(void *) * n * 2);
  shuffle(o->order, n, r);
  o->errors = o->check = 0;
  return total;
}

/* Step 1: allocates and writes objects 0..n-1.  Returns the seconds taken. */
static double fill_all(frag_objs *o, uint64_t seed) {
  double t0 = wl_now();
  for (size_t i = 0; i < o->n; i++) {
    o->ids[i] = (seed << 40) + i;
    o->obj[i] = wl_xmalloc(o->size[i]);
    fill(o->obj[i], o->size[i], o->ids[i]);
  }
  return wl_now() - t0;
}

/* Step 2: checks and frees the first 90 % of order[].  Returns the bytes
 * freed; *secs gets the seconds taken. */
static double free_most(frag_objs *o, double *secs) {
  double freed = 0;
  size_t nfree = o->n * 9 / 10;
  double t0 = wl_now();
  for (size_t k = 0; k < nfree; k++) {
    size_t i = o->order[k];
    if (!ok(o->obj[i], o->size[i], o->ids[i])) o->errors++;
    o->check += o->ids[i] * o->size[i];
    freed += o->size[i];
    free(o->obj[i]);
    o->obj[i] = NULL;
  }
  *secs = wl_now() - t0;
  return freed;
}

/* Step 3: about 1 s of malloc/free pairs through ring[], whose 64 objects
 * are left allocated.  Returns the number of pairs. */
static unsigned light_activity(void *ring[64], uint64_t seed) {
  wl_rng lr; /* its own generator: how many draws depends on timing */
  wl_rng_seed(&lr, seed ^ 0x5EEDu);
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
  return light;
}

/* Step 4: allocates and writes new objects from slot n on until they reach
 * freed bytes (or the slots run out).  Returns the bytes allocated; *secs
 * gets the seconds taken. */
static double alloc_again(frag_objs *o, wl_rng *r, uint64_t seed, double freed, double *secs) {
  double t0 = wl_now();
  size_t m = o->n;
  double again = 0;
  while (again < freed && m < 2 * o->n) {
    o->size[m] = draw(r);
    o->ids[m] = (seed << 40) + m;
    o->obj[m] = wl_xmalloc(o->size[m]);
    fill(o->obj[m], o->size[m], o->ids[m]);
    again += o->size[m++];
  }
  o->m = m;
  *secs = wl_now() - t0;
  return again;
}

/* Checks and frees every object still live.  Returns the seconds taken. */
static double free_rest(frag_objs *o) {
  double t0 = wl_now();
  for (size_t i = 0; i < o->m; i++)
    if (o->obj[i]) {
      if (!ok(o->obj[i], o->size[i], o->ids[i])) o->errors++;
      o->check += o->ids[i] * o->size[i];
      free(o->obj[i]);
    }
  return wl_now() - t0;
}

static void print_result(const frag_stats *s, const frag_objs *o) {
  printf("result: time_s=%.4f fill_mib=%.1f objects=%zu rss_before_mib=%.1f rss_full_mib=%.1f "
         "rss_after_free_mib=%.1f rss_after_1s_mib=%.1f live_mib=%.1f floor_mib=%.1f "
         "rss_after_realloc_mib=%.1f realloc_mib=%.1f light_ops=%u fill_s=%.4f free_s=%.4f "
         "realloc_s=%.4f end_s=%.4f check=%016llx errors=%llu\n",
         s->t_fill + s->t_free + s->t_realloc + s->t_end, s->total / MIB, o->n, s->rss0,
         s->rss_full, s->rss_after_free, s->rss_after_1s, (s->total - s->freed) / MIB, s->floor,
         s->rss_after_realloc, s->again / MIB, s->light, s->t_fill, s->t_free, s->t_realloc,
         s->t_end, (unsigned long long)o->check, (unsigned long long)o->errors);
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  wl_powerlaw_table(small_t, 16, 256, 1.0);
  wl_powerlaw_table(mid_t, 256, 8192, 1.0);
  wl_powerlaw_table(big_t, 8192, 262144, 1.0);
  wl_rng r;
  wl_rng_seed(&r, a.seed);

  frag_objs o;
  frag_stats s;
  s.total = plan(&o, &r, 1024.0 * MIB * a.scale);
  s.rss0 = rss_mib();

  s.t_fill = fill_all(&o, a.seed);
  s.rss_full = rss_mib();

  s.freed = free_most(&o, &s.t_free);
  s.rss_after_free = rss_mib();
  s.floor = floor_mib(o.obj, o.size, o.n);

  void *ring[64];
  s.light = light_activity(ring, a.seed);
  s.rss_after_1s = rss_mib();

  s.again = alloc_again(&o, &r, a.seed, s.freed, &s.t_realloc);
  s.rss_after_realloc = rss_mib();

  s.t_end = free_rest(&o);
  for (int j = 0; j < 64; j++) free(ring[j]);
  free(o.obj);
  free(o.order);
  free(o.ids);
  free(o.size);

  print_result(&s, &o);
  return o.errors ? 3 : 0;
}
