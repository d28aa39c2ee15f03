/* Workload: producers allocate at full speed, other threads only free.
 *
 * P producer threads allocate 64-byte blocks, write all of each, and link
 * them (through their first word) into chains of BATCH; each chain goes to
 * one of F freer threads, in turn, by one compare-and-swap onto the
 * freer's inbox (xalloc.h).  A freer takes its whole inbox with one
 * exchange, checks every block and frees it.  No lock and no queue of
 * fixed size stands between them: a producer waits (yields) only when the
 * freer it is about to send to has more than MAXPEND blocks not yet freed,
 * the bound on memory by design (counted as waits=; a freer that finds its
 * inbox empty yields too, counted as idle=).  Every block is freed by a
 * thread other than the one that allocated it.
 *
 *   wl-xflow [producers [scale [seed [freers]]]]
 *   full (scale 1): 20 million blocks per producer; freers default to
 *   producers
 *
 * Built twice (xalloc.h): wl-xflow (malloc / free) and wl-xflow-new
 * (operator new / sized operator delete). */
#include "xalloc.h"

#include <sched.h>

#define BLOCK 64
#define BATCH 64
#define MAXPEND (BATCH * 256) /* 1 MiB of blocks per freer */

typedef struct {
  int id;
  uint64_t waits, sum;
} __attribute__((aligned(64))) producer;

typedef struct {
  int id;
  uint64_t idle, sum, errors, freed;
} __attribute__((aligned(64))) freer;

static uint64_t nblocks; /* per producer */
static uint64_t seed;
static int nprod, nfree;
static wl_inbox *inbox;
static int producers_left;

/* A block: word 0 the chain link, word 1 its hash h, words 2..6 h + i,
 * word 7 ~h. */
static void *block_new(uint64_t id, uint64_t *sum) {
  uint64_t *b = (uint64_t *)wl_obj_new(BLOCK);
  uint64_t h = wl_mix64(id);
  b[0] = 0;
  b[1] = h;
  for (int i = 2; i < 7; i++) b[i] = h + (uint64_t)i;
  b[7] = ~h;
  *sum += h;
  return b;
}

static int block_bad(const uint64_t *b) {
  return b[7] != ~b[1] || b[2] != b[1] + 2 || b[6] != b[1] + 6;
}

static void *produce(void *arg) {
  producer *p = (producer *)arg;
  uint64_t id = ((uint64_t)p->id << 40) ^ (seed << 20), sum = 0, waits = 0;
  int to = p->id % nfree;
  for (uint64_t k = 0; k < nblocks; k += BATCH) {
    uint64_t n = nblocks - k < BATCH ? nblocks - k : BATCH;
    void *first = block_new(id++, &sum), *last = first;
    for (uint64_t i = 1; i < n; i++) {
      void *b = block_new(id++, &sum);
      *(void **)last = b;
      last = b;
    }
    while (wl_inbox_pending(&inbox[to]) > MAXPEND) {
      waits++;
      sched_yield();
    }
    wl_inbox_push(&inbox[to], first, (void **)last, n);
    to = (to + 1) % nfree;
  }
  p->sum = sum;
  p->waits = waits;
  __atomic_fetch_sub(&producers_left, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *consume(void *arg) {
  freer *f = (freer *)arg;
  wl_inbox *box = &inbox[f->id];
  uint64_t sum = 0, errors = 0, freed = 0, idle = 0;
  for (;;) {
    void *b = wl_inbox_take(box);
    if (b == NULL) {
      /* (acquire: the last push of every producer is visible after) */
      if (__atomic_load_n(&producers_left, __ATOMIC_ACQUIRE) == 0) {
        b = wl_inbox_take(box);
        if (b == NULL) break;
      } else {
        idle++;
        sched_yield();
        continue;
      }
    }
    uint64_t n = 0;
    while (b) {
      uint64_t *w = (uint64_t *)b;
      void *next = (void *)w[0];
      if (block_bad(w)) errors++;
      sum += w[1];
      wl_obj_delete(b, BLOCK);
      b = next;
      n++;
    }
    freed += n;
    wl_inbox_done(box, n);
  }
  f->sum = sum;
  f->errors = errors;
  f->freed = freed;
  f->idle = idle;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  nprod = a.threads;
  nfree = argc > 4 ? atoi(argv[4]) : nprod;
  if (nfree < 1) nfree = 1;
  if (nfree > 256) nfree = 256;
  seed = a.seed;
  nblocks = wl_scaled(20e6, a.scale, BATCH);
  producers_left = nprod;
  inbox = (wl_inbox *)aligned_alloc(64, sizeof(wl_inbox) * (size_t)nfree);
  producer *ps = (producer *)aligned_alloc(64, sizeof(producer) * (size_t)nprod);
  freer *fs = (freer *)aligned_alloc(64, sizeof(freer) * (size_t)nfree);
  pthread_t *th = (pthread_t *)wl_xmalloc(sizeof(pthread_t) * (size_t)(nprod + nfree));
  if (!inbox || !ps || !fs) return 2;
  memset((void *)inbox, 0, sizeof(wl_inbox) * (size_t)nfree);
  memset((void *)ps, 0, sizeof(producer) * (size_t)nprod);
  memset((void *)fs, 0, sizeof(freer) * (size_t)nfree);
  double t0 = wl_now();
  for (int i = 0; i < nfree; i++) {
    fs[i].id = i;
    if (pthread_create(&th[i], NULL, consume, &fs[i]) != 0) return 2;
  }
  for (int i = 0; i < nprod; i++) {
    ps[i].id = i;
    if (pthread_create(&th[nfree + i], NULL, produce, &ps[i]) != 0) return 2;
  }
  for (int i = 0; i < nprod + nfree; i++) pthread_join(th[i], NULL);
  double dt = wl_now() - t0;
  uint64_t sum_made = 0, sum_freed = 0, errors = 0, freed = 0, waits = 0, idle = 0;
  for (int i = 0; i < nprod; i++) {
    sum_made += ps[i].sum;
    waits += ps[i].waits;
  }
  for (int i = 0; i < nfree; i++) {
    sum_freed += fs[i].sum;
    errors += fs[i].errors;
    freed += fs[i].freed;
    idle += fs[i].idle;
  }
  uint64_t total = nblocks * (uint64_t)nprod;
  if (sum_made != sum_freed || freed != total) errors++;
  printf("result: time_s=%.4f api=%s producers=%d freers=%d blocks=%llu ops_per_s=%.0f "
         "waits=%llu idle=%llu check=%016llx errors=%llu\n",
         dt, WL_API, nprod, nfree, (unsigned long long)total, total / dt,
         (unsigned long long)waits, (unsigned long long)idle, (unsigned long long)sum_freed,
         (unsigned long long)errors);
  free(th);
  free(inbox);
  free(ps);
  free(fs);
  return errors ? 3 : 0;
}
