/* Workload: mixed sizes, a share of them freed by other threads, memory
 * written and read.
 *
 * N threads each own SLOTS live objects of 16 B..16 KiB (log-uniform) and
 * replace random slots; each new object is written whole, each object is
 * checked at both ends before it goes.  REMOTE_PCT of the replaced objects
 * are not freed by their owner but handed to another thread (at random):
 * kept in a chain per receiver (linked through their last word) and
 * pushed, BATCH at a time, by one compare-and-swap onto the receiver's
 * inbox (xalloc.h); every 64 steps a thread takes its whole inbox and
 * checks and frees what it holds.  No lock, no waiting: when the receiver
 * has more than MAXPEND objects not yet freed (it was descheduled), the
 * owner frees the object itself (counted as kept=), so that the peak RSS
 * measures the allocator rather than the scheduler.
 *
 *   wl-xmix [threads [scale [seed [slots]]]]
 *   full (scale 1): 4 million replacements per thread; slots 2000 (about
 *   4.6 MiB live per thread)
 *
 * Built twice (xalloc.h): wl-xmix (malloc / free) and wl-xmix-new
 * (operator new / sized operator delete). */
#include "xalloc.h"

#define REMOTE_PCT 20
#define BATCH 32
#define MINSZ 16
#define MAXSZ 16384
#define MAXPEND 2048 /* about 4.6 MiB */

typedef struct {
  int id;
  uint64_t sum, errors, sent, received, kept;
} __attribute__((aligned(64))) worker;

typedef struct {
  void *first, *last;
  uint64_t n;
} chain;

static int nthreads;
static uint64_t ops, slots, seed;
static wl_inbox *inbox;
static worker *workers;
static pthread_barrier_t start_bar, sent_bar;
static uint32_t sizes[WL_SIZETAB];

/* An object: word 0 (hash << 16) | size, bytes 8 .. size-8 one fill byte
 * of the hash, the last word ~tag (the chain link while handed over, once
 * checked). */
static void *obj_new(wl_rng *r, uint64_t id) {
  uint32_t sz = wl_draw(sizes, r);
  unsigned char *p = (unsigned char *)wl_obj_new(sz);
  uint64_t h = wl_mix64(id) & 0xFFFFFFFFFFFF0000ull;
  if (h == 0) h = 0x10000;
  uint64_t tag = h | sz, inv = ~tag;
  memcpy(p, &tag, 8);
  memset(p + 8, (int)(h >> 24) & 0xFF, sz - 16);
  memcpy(p + sz - 8, &inv, 8);
  return p;
}

/* The object's tag, or 0 if it is damaged; last: also check the last
 * word (not while it is a chain link). */
static uint64_t obj_check(const void *q, int last) {
  const unsigned char *p = (const unsigned char *)q;
  uint64_t tag, inv;
  memcpy(&tag, p, 8);
  size_t sz = (size_t)(tag & 0xFFFF);
  if (sz < MINSZ || sz > MAXSZ || (tag >> 16) == 0) return 0;
  unsigned char fill = (unsigned char)((tag >> 24) & 0xFF);
  if (sz > 16 && (p[8] != fill || p[sz - 9] != fill)) return 0;
  if (last) {
    memcpy(&inv, p + sz - 8, 8);
    if (inv != ~tag) return 0;
  }
  return tag;
}

static void **link_of(void *q) {
  uint64_t tag;
  memcpy(&tag, q, 8);
  return (void **)((char *)q + (tag & 0xFFFF) - 8);
}

static void drain(worker *w) {
  void *p = wl_inbox_take(&inbox[w->id]);
  uint64_t n = 0;
  while (p) {
    void *next = *link_of(p);
    uint64_t tag = obj_check(p, 0);
    if (tag == 0) {
      w->errors++;
      break; /* (the chain cannot be trusted) */
    }
    w->sum += tag;
    wl_obj_delete(p, (size_t)(tag & 0xFFFF));
    p = next;
    n++;
  }
  w->received += n;
  wl_inbox_done(&inbox[w->id], n);
}

static void send(worker *w, chain *c, int d) {
  if (c->n) wl_inbox_push(&inbox[d], c->first, link_of(c->last), c->n);
  w->sent += c->n;
  c->n = 0;
}

static void *run(void *arg) {
  worker *w = (worker *)arg;
  wl_rng r;
  wl_rng_seed(&r, seed * 1000003u + (uint64_t)w->id);
  uint64_t id = ((uint64_t)w->id << 40) ^ (seed << 20);
  void **slot = (void **)wl_xmalloc(sizeof(void *) * slots);
  chain *out = (chain *)wl_xmalloc(sizeof(chain) * (size_t)nthreads);
  memset((void *)out, 0, sizeof(chain) * (size_t)nthreads);
  for (uint64_t i = 0; i < slots; i++) slot[i] = obj_new(&r, id++);
  pthread_barrier_wait(&start_bar);
  for (uint64_t k = 0; k < ops; k++) {
    uint32_t i = wl_below(&r, (uint32_t)slots);
    void *p = slot[i];
    uint64_t tag = obj_check(p, 1);
    int d = -1; /* the receiver, if p is handed over */
    if (nthreads > 1 && wl_below(&r, 100) < REMOTE_PCT) {
      d = (w->id + 1 + (int)wl_below(&r, (uint32_t)nthreads - 1)) % nthreads;
      if (wl_inbox_pending(&inbox[d]) + out[d].n >= MAXPEND) {
        w->kept++;
        d = -1;
      }
    }
    if (tag == 0) {
      w->errors++;
    } else if (d >= 0) {
      chain *c = &out[d];
      if (c->n) *link_of(c->last) = p;
      else c->first = p;
      c->last = p;
      if (++c->n == BATCH) send(w, c, d);
    } else {
      w->sum += tag;
      wl_obj_delete(p, (size_t)(tag & 0xFFFF));
    }
    slot[i] = obj_new(&r, id++);
    if ((k & 63) == 63) drain(w);
  }
  for (int d = 0; d < nthreads; d++) send(w, &out[d], d);
  free(out);
  pthread_barrier_wait(&sent_bar);
  drain(w);
  for (uint64_t i = 0; i < slots; i++) {
    uint64_t tag = obj_check(slot[i], 1);
    if (tag == 0) {
      w->errors++;
      continue;
    }
    w->sum += tag;
    wl_obj_delete(slot[i], (size_t)(tag & 0xFFFF));
  }
  free(slot);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 2);
  nthreads = a.threads;
  seed = a.seed;
  slots = argc > 4 ? strtoull(argv[4], NULL, 0) : 2000;
  if (slots < 1) slots = 1;
  if (slots > 100000000) slots = 100000000;
  ops = wl_scaled(4e6, a.scale, 1000);
  wl_powerlaw_table(sizes, MINSZ, MAXSZ, 1.0);
  inbox = (wl_inbox *)aligned_alloc(64, sizeof(wl_inbox) * (size_t)nthreads);
  workers = (worker *)aligned_alloc(64, sizeof(worker) * (size_t)nthreads);
  pthread_t *th = (pthread_t *)wl_xmalloc(sizeof(pthread_t) * (size_t)nthreads);
  if (!inbox || !workers) return 2;
  memset((void *)inbox, 0, sizeof(wl_inbox) * (size_t)nthreads);
  memset((void *)workers, 0, sizeof(worker) * (size_t)nthreads);
  pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
  pthread_barrier_init(&sent_bar, NULL, (unsigned)nthreads);
  for (int t = 0; t < nthreads; t++) {
    workers[t].id = t;
    if (pthread_create(&th[t], NULL, run, &workers[t]) != 0) return 2;
  }
  pthread_barrier_wait(&start_bar);
  double t0 = wl_now();
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  double dt = wl_now() - t0;
  uint64_t sum = 0, errors = 0, sent = 0, received = 0, kept = 0;
  for (int t = 0; t < nthreads; t++) {
    kept += workers[t].kept;
    sum += workers[t].sum;
    errors += workers[t].errors;
    sent += workers[t].sent;
    received += workers[t].received;
  }
  if (sent != received) errors++;
  uint64_t total = ops * (uint64_t)nthreads;
  printf("result: time_s=%.4f api=%s threads=%d slots=%llu ops=%llu ops_per_s=%.0f "
         "remote_frees=%llu kept=%llu check=%016llx errors=%llu\n",
         dt, WL_API, nthreads, (unsigned long long)slots, (unsigned long long)total, total / dt,
         (unsigned long long)sent, (unsigned long long)kept, (unsigned long long)sum,
         (unsigned long long)errors);
  free(th);
  free(inbox);
  free(workers);
  return errors ? 3 : 0;
}
