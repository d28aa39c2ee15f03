/* Workload 4: producer/consumer.
 *
 * N producer threads only allocate, N consumer threads only free.  Producer
 * i fills batches of 256 objects of 8 B..1 KiB (density ~ size^-1.5), writes
 * them, and puts each batch in the bounded queue (16 batches) it shares with
 * consumer i, waiting when it is full; consumer i takes batches, checks and
 * frees the objects.  Every object is freed by a thread other than the one
 * that allocated it.
 *
 *   wl-prodcons [pairs [scale [seed]]]
 *   full (scale 1): 16 million objects per producer
 */
#include "common.h"

#define BATCH 256
#define QCAP 16

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_full, not_empty;
  int head, count, done;
  void *slot[QCAP][BATCH];
  int id;
  uint64_t sum, errors;
} queue;

static uint64_t nbatches;
static uint64_t seed;
static uint32_t sizes[WL_SIZETAB];

static void *producer(void *arg) {
  queue *q = arg;
  wl_rng r;
  wl_rng_seed(&r, seed * 7919u + (uint64_t)q->id);
  uint64_t id = ((uint64_t)q->id << 40) ^ (seed << 20), sum = 0;
  void *local[BATCH];
  for (uint64_t b = 0; b < nbatches; b++) {
    for (int i = 0; i < BATCH; i++) {
      uint32_t sz = wl_draw(sizes, &r);
      local[i] = wl_xmalloc(sz);
      sum += wl_stamp(local[i], sz, id++);
    }
    pthread_mutex_lock(&q->mu);
    while (q->count == QCAP) pthread_cond_wait(&q->not_full, &q->mu);
    memcpy(q->slot[(q->head + q->count) % QCAP], local, sizeof(local));
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
  }
  pthread_mutex_lock(&q->mu);
  q->done = 1;
  q->sum = sum;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

static void *consumer(void *arg) {
  queue *q = arg;
  void *local[BATCH];
  uint64_t errors = 0;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->done) pthread_cond_wait(&q->not_empty, &q->mu);
    if (q->count == 0) {
      pthread_mutex_unlock(&q->mu);
      break;
    }
    memcpy(local, q->slot[q->head], sizeof(local));
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < BATCH; i++) {
      if (wl_check(local[i]) == 0) errors++;
      free(local[i]);
    }
  }
  q->errors = errors;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  int pairs = a.threads;
  seed = a.seed;
  nbatches = wl_scaled(16e6 / BATCH, a.scale, 4);
  wl_powerlaw_table(sizes, 8, 1024, 1.5);
  queue *qs = calloc((size_t)pairs, sizeof(queue));
  pthread_t *th = wl_xmalloc(sizeof(pthread_t) * 2 * (size_t)pairs);
  if (!qs) return 2;
  double t0 = wl_now();
  for (int i = 0; i < pairs; i++) {
    pthread_mutex_init(&qs[i].mu, NULL);
    pthread_cond_init(&qs[i].not_full, NULL);
    pthread_cond_init(&qs[i].not_empty, NULL);
    qs[i].id = i;
    if (pthread_create(&th[2 * i], NULL, consumer, &qs[i]) != 0) return 2;
    if (pthread_create(&th[2 * i + 1], NULL, producer, &qs[i]) != 0) return 2;
  }
  for (int i = 0; i < 2 * pairs; i++) pthread_join(th[i], NULL);
  double dt = wl_now() - t0;
  uint64_t sum = 0, errors = 0;
  for (int i = 0; i < pairs; i++) {
    sum += qs[i].sum;
    errors += qs[i].errors;
  }
  uint64_t total = nbatches * BATCH * (uint64_t)pairs;
  printf("result: time_s=%.4f pairs=%d objects=%llu mobj_per_s=%.3f check=%016llx errors=%llu\n",
         dt, pairs, (unsigned long long)total, total / dt * 1e-6, (unsigned long long)sum,
         (unsigned long long)errors);
  free(th);
  free(qs);
  return errors ? 3 : 0;
}
