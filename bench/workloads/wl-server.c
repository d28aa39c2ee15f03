/* Workload 3: server pattern, with cross-thread frees.
 *
 * N threads each own a pool of 50,000 slots of 8 B..1 KiB objects (density
 * ~ size^-1.5) and replace random slots.  15 % of the replaced objects are
 * not freed by their owner: they are handed, in batches of 64, to another
 * thread's hand-off queue (a mutex-protected list), and that thread frees
 * them when it next drains its queue (every 256 steps).
 *
 *   wl-server [threads [scale [seed]]]
 *   full (scale 1): 8 million replacements per thread
 */
#include "common.h"

#define SLOTS 50000
#define BATCH 64
#define REMOTE_PCT 15

typedef struct batch {
  struct batch *next;
  int n;
  void *p[BATCH];
} batch;

typedef struct {
  pthread_mutex_t mu;
  batch *head;
} __attribute__((aligned(64))) inbox;

typedef struct {
  int id;
  uint64_t sum, errors, sent, received;
} __attribute__((aligned(64))) worker;

static int nthreads;
static uint64_t ops;
static uint64_t seed;
static inbox *boxes;
static worker *workers;
static pthread_barrier_t start_bar, sent_bar;
static uint32_t sizes[WL_SIZETAB];

static void push(int d, batch *b) {
  pthread_mutex_lock(&boxes[d].mu);
  b->next = boxes[d].head;
  boxes[d].head = b;
  pthread_mutex_unlock(&boxes[d].mu);
}

static void drain(worker *w) {
  pthread_mutex_lock(&boxes[w->id].mu);
  batch *b = boxes[w->id].head;
  boxes[w->id].head = NULL;
  pthread_mutex_unlock(&boxes[w->id].mu);
  while (b) {
    batch *next = b->next;
    for (int i = 0; i < b->n; i++) {
      if (wl_check(b->p[i]) == 0) w->errors++;
      free(b->p[i]);
    }
    w->received += (uint64_t)b->n;
    free(b);
    b = next;
  }
}

static batch *new_batch(void) {
  batch *b = wl_xmalloc(sizeof(batch));
  b->n = 0;
  b->next = NULL;
  return b;
}

static void *run(void *arg) {
  worker *w = arg;
  wl_rng r;
  wl_rng_seed(&r, seed * 1000003u + (uint64_t)w->id);
  uint64_t id = ((uint64_t)w->id << 40) ^ (seed << 20);
  void **slot = wl_xmalloc(sizeof(void *) * SLOTS);
  batch **stage = wl_xmalloc(sizeof(batch *) * (size_t)nthreads);
  for (int d = 0; d < nthreads; d++) stage[d] = new_batch();
  for (int i = 0; i < SLOTS; i++) {
    uint32_t sz = wl_draw(sizes, &r);
    slot[i] = wl_xmalloc(sz);
    wl_stamp(slot[i], sz, id++);
  }
  pthread_barrier_wait(&start_bar);
  for (uint64_t k = 0; k < ops; k++) {
    uint32_t i = wl_below(&r, SLOTS);
    uint64_t tag = wl_check(slot[i]);
    if (tag == 0) w->errors++;
    w->sum += tag;
    if (nthreads > 1 && wl_below(&r, 100) < REMOTE_PCT) {
      int d = (w->id + 1 + (int)wl_below(&r, (uint32_t)nthreads - 1)) % nthreads;
      batch *b = stage[d];
      b->p[b->n++] = slot[i];
      w->sent++;
      if (b->n == BATCH) {
        push(d, b);
        stage[d] = new_batch();
      }
    } else {
      free(slot[i]);
    }
    uint32_t sz = wl_draw(sizes, &r);
    slot[i] = wl_xmalloc(sz);
    wl_stamp(slot[i], sz, id++);
    if ((k & 255) == 255) drain(w);
  }
  for (int d = 0; d < nthreads; d++) {
    if (stage[d]->n)
      push(d, stage[d]);
    else
      free(stage[d]);
  }
  free(stage);
  pthread_barrier_wait(&sent_bar);
  drain(w);
  for (int i = 0; i < SLOTS; i++) {
    uint64_t tag = wl_check(slot[i]);
    if (tag == 0) w->errors++;
    w->sum += tag;
    free(slot[i]);
  }
  free(slot);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 2);
  nthreads = a.threads;
  seed = a.seed;
  ops = wl_scaled(8e6, a.scale, 1000);
  wl_powerlaw_table(sizes, 8, 1024, 1.5);
  boxes = aligned_alloc(64, sizeof(inbox) * (size_t)nthreads);
  workers = aligned_alloc(64, sizeof(worker) * (size_t)nthreads);
  if (!boxes || !workers) return 2;
  pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
  pthread_barrier_init(&sent_bar, NULL, (unsigned)nthreads);
  pthread_t *th = wl_xmalloc(sizeof(pthread_t) * (size_t)nthreads);
  for (int t = 0; t < nthreads; t++) {
    pthread_mutex_init(&boxes[t].mu, NULL);
    boxes[t].head = NULL;
    memset(&workers[t], 0, sizeof(worker));
    workers[t].id = t;
    if (pthread_create(&th[t], NULL, run, &workers[t]) != 0) return 2;
  }
  pthread_barrier_wait(&start_bar);
  double t0 = wl_now();
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  double dt = wl_now() - t0;
  uint64_t sum = 0, errors = 0, sent = 0, received = 0;
  for (int t = 0; t < nthreads; t++) {
    sum += workers[t].sum;
    errors += workers[t].errors;
    sent += workers[t].sent;
    received += workers[t].received;
  }
  if (sent != received) errors++;
  uint64_t total = ops * (uint64_t)nthreads;
  printf("result: time_s=%.4f threads=%d ops=%llu mops_per_s=%.3f remote_frees=%llu "
         "check=%016llx errors=%llu\n",
         dt, nthreads, (unsigned long long)total, total / dt * 1e-6, (unsigned long long)sent,
         (unsigned long long)sum, (unsigned long long)errors);
  free(th);
  free(boxes);
  free(workers);
  return errors ? 3 : 0;
}
