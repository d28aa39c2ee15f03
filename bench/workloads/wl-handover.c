/* Workload: threads hand their whole array of live objects to a new
 * thread, which continues the work and hands on in its turn.
 *
 * N lanes run at once.  In a lane one thread at a time owns an array of
 * SLOTS live objects of 8 B..1000 B (density ~ size^-1.5) and replaces
 * random slots: checks the object, frees it, allocates and writes a new
 * one.  After GEN_OPS replacements it starts a new thread, hands it the
 * array and the random state, and returns; the new thread joins its
 * predecessor only when its own replacements are done (the predecessor's
 * exit overlaps with its work, as in a server that replaces its workers).
 * So a thread's first allocations and its exit are on the path, and most
 * frees land in spans of a thread that has exited.  The lane's last thread
 * frees the array.
 *
 *   wl-handover [lanes [scale [seed [slots [gen_ops]]]]]
 *   full (scale 1): 16 million replacements per lane; slots 10000,
 *   gen_ops 20000 (800 threads per lane)
 *
 * Built twice (xalloc.h): wl-handover (malloc / free) and wl-handover-new
 * (operator new / sized operator delete). */
#include "xalloc.h"

typedef struct {
  int id;
  uint64_t gens, gen_ops, slots;
  /* handed from thread to thread of the lane */
  void **slot;
  wl_rng r;
  uint64_t next_id, gen;
  pthread_t prev;
  uint64_t sum, errors;
  /* the lane's end, for main */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  pthread_t last;
} __attribute__((aligned(64))) lane;

static uint64_t seed;
static uint32_t sizes[WL_SIZETAB];

static void obj_free(lane *l, void *p) {
  uint64_t tag = wl_check(p);
  if (tag == 0) l->errors++;
  l->sum += tag;
  wl_obj_delete(p, tag ? (size_t)(tag & 0xFFFF) : 1);
}

static void *obj_new(lane *l) {
  uint32_t sz = wl_draw(sizes, &l->r);
  void *p = wl_obj_new(sz);
  wl_stamp(p, sz, l->next_id++);
  return p;
}

static void *run(void *arg) {
  lane *l = (lane *)arg;
  if (l->slot == NULL) { /* the lane's first thread fills the array */
    l->slot = (void **)wl_xmalloc(sizeof(void *) * l->slots);
    for (uint64_t i = 0; i < l->slots; i++) l->slot[i] = obj_new(l);
  }
  for (uint64_t k = 0; k < l->gen_ops; k++) {
    uint32_t i = wl_below(&l->r, (uint32_t)l->slots);
    obj_free(l, l->slot[i]);
    l->slot[i] = obj_new(l);
  }
  if (l->gen > 0 && pthread_join(l->prev, NULL) != 0) l->errors++;
  l->gen++;
  if (l->gen < l->gens) {
    l->prev = pthread_self();
    pthread_t next;
    if (pthread_create(&next, NULL, run, l) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
    return NULL; /* (the new thread owns the lane from here on) */
  }
  for (uint64_t i = 0; i < l->slots; i++) obj_free(l, l->slot[i]);
  free(l->slot);
  l->slot = NULL;
  pthread_mutex_lock(&l->mu);
  l->last = pthread_self();
  l->done = 1;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 2);
  int nlanes = a.threads;
  seed = a.seed;
  uint64_t slots = argc > 4 ? strtoull(argv[4], NULL, 0) : 10000;
  uint64_t gen_ops = argc > 5 ? strtoull(argv[5], NULL, 0) : 20000;
  if (slots < 1) slots = 1;
  if (slots > 100000000) slots = 100000000;
  if (gen_ops < 1) gen_ops = 1;
  uint64_t ops = wl_scaled(16e6, a.scale, gen_ops);
  uint64_t gens = (ops + gen_ops - 1) / gen_ops;
  wl_powerlaw_table(sizes, 8, 1000, 1.5);
  lane *ls = (lane *)aligned_alloc(64, sizeof(lane) * (size_t)nlanes);
  if (!ls) return 2;
  memset((void *)ls, 0, sizeof(lane) * (size_t)nlanes);
  double t0 = wl_now();
  for (int t = 0; t < nlanes; t++) {
    lane *l = &ls[t];
    l->id = t;
    l->gens = gens;
    l->gen_ops = gen_ops;
    l->slots = slots;
    wl_rng_seed(&l->r, seed * 1000003u + (uint64_t)t);
    l->next_id = ((uint64_t)t << 40) ^ (seed << 20);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, run, l) != 0) return 2;
    /* (joined by the lane's second thread, or below if it is the last) */
    if (gens == 1) pthread_detach(th);
  }
  uint64_t sum = 0, errors = 0;
  for (int t = 0; t < nlanes; t++) {
    lane *l = &ls[t];
    pthread_mutex_lock(&l->mu);
    while (!l->done) pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    if (gens > 1) pthread_join(l->last, NULL);
    sum += l->sum;
    errors += l->errors;
  }
  double dt = wl_now() - t0;
  uint64_t total = gens * gen_ops * (uint64_t)nlanes;
  printf("result: time_s=%.4f api=%s lanes=%d slots=%llu gen_ops=%llu threads=%llu ops=%llu "
         "ops_per_s=%.0f check=%016llx errors=%llu\n",
         dt, WL_API, nlanes, (unsigned long long)slots, (unsigned long long)gen_ops,
         (unsigned long long)(gens * (uint64_t)nlanes), (unsigned long long)total, total / dt,
         (unsigned long long)sum, (unsigned long long)errors);
  free(ls);
  return errors ? 3 : 0;
}
