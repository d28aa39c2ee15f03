/* gc-demo - a tree and list workload on a garbage collector, written once
 * against the Boehm-compatible <gc.h> subset, so that the same source
 * builds against mheap (-I include, libmheap) and against bdwgc (its own
 * gc.h, -lgc).  `make demo` runs both builds side by side.
 *
 * What it does, for ROUNDS rounds (default 40):
 *   - builds binary trees of depth 4..14, checks their node count and sum,
 *     and drops them;
 *   - builds a linked list, reverses it, sums it and drops it;
 *   - grows a pointer vector with GC_REALLOC and gives it back with GC_FREE;
 *   - replaces some records of a long-lived table (the table itself is
 *     GC_MALLOC_UNCOLLECTABLE, each record has a pointer-free name from
 *     GC_MALLOC_ATOMIC and a list of tags), so old records become garbage
 *     while a long-lived tree of depth 16 stays reachable from a global.
 * At the end it checks the long-lived tree and every record against the
 * values they were built from, then prints
 *
 *   result: digest=<16 hex> errors=<n> time_s=<s> maxrss_kib=<KiB>
 *           gc_no=<n> heap_bytes=<n> collector=<mheap|bdwgc>
 *
 * The digest depends only on the values computed, never on addresses or
 * on the collector, so it must be the same under both; errors counts
 * structures found damaged (then the exit status is 3).
 *
 *   gc-demo [rounds] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <gc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef MHEAP_GC_BOEHM_COMPAT
#define COLLECTOR "mheap"
#else
#define COLLECTOR "bdwgc"
#endif

enum {
  LONG_DEPTH = 16,  /* the long-lived tree */
  NRECORDS = 40000, /* the long-lived table */
  REPLACE = 4000,   /* records replaced per round */
  LIST_LEN = 50000, /* cells of each round's list */
  VEC_LEN = 20000,  /* pointers in each round's vector */
};

typedef struct node {
  struct node *left, *right;
  uint64_t value;
} node;

typedef struct tag {
  struct tag *next;
  uint64_t value;
} tag;

typedef struct record {
  char *name; /* GC_MALLOC_ATOMIC */
  tag *tags;
  uint64_t key;
  unsigned ntags;
} record;

static uint64_t digest, errors;
static node *long_lived; /* reachable from this global only */
static record **table;   /* GC_MALLOC_UNCOLLECTABLE */

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static void fold(uint64_t v) { digest = mix(digest ^ v); }

static uint64_t rng = 1;
static uint64_t next_below(uint64_t n) { return mix(rng++) % n; }

static void *alloc(size_t n, int atomic) {
  void *p = atomic ? GC_MALLOC_ATOMIC(n) : GC_MALLOC(n);
  if (!p) {
    fprintf(stderr, "gc-demo: out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

/* ---- trees: node i of a tree holds seed + i (i in heap order, from 1) */

static node *make_tree(int depth, uint64_t seed, uint64_t i) {
  node *n = alloc(sizeof *n, 0);
  n->value = seed + i;
  if (depth > 0) {
    n->left = make_tree(depth - 1, seed, 2 * i);
    n->right = make_tree(depth - 1, seed, 2 * i + 1);
  }
  return n;
}

/* Checks that every node holds the value it was built with; returns the
 * sum of the values and adds the nodes to *count. */
static uint64_t walk_tree(const node *n, uint64_t seed, uint64_t i, uint64_t *count) {
  if (!n)
    return 0;
  if (n->value != seed + i)
    errors++;
  ++*count;
  return n->value + walk_tree(n->left, seed, 2 * i, count) +
         walk_tree(n->right, seed, 2 * i + 1, count);
}

static void check_tree(const node *t, int depth, uint64_t seed) {
  uint64_t count = 0;
  uint64_t sum = walk_tree(t, seed, 1, &count);
  if (count != (UINT64_C(1) << (depth + 1)) - 1)
    errors++;
  fold(sum);
  fold(count);
}

/* ---- the long-lived table: record k's contents follow from its key */

static void fill_name(char *buf, size_t len, uint64_t key) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (char)('a' + mix(key + i) % 26);
  buf[len] = '\0';
}

static record *make_record(uint64_t key) {
  record *r = alloc(sizeof *r, 0);
  size_t len = 8 + key % 57;
  r->name = alloc(len + 1, 1);
  fill_name(r->name, len, key);
  r->key = key;
  r->ntags = (unsigned)(key % 7);
  for (unsigned t = 0; t < r->ntags; t++) {
    tag *g = alloc(sizeof *g, 0);
    g->value = mix(key ^ t);
    g->next = r->tags;
    r->tags = g;
  }
  return r;
}

static void check_record(const record *r) {
  char want[80];
  size_t len = 8 + r->key % 57;
  fill_name(want, len, r->key);
  if (strlen(r->name) != len || memcmp(r->name, want, len) != 0)
    errors++;
  unsigned n = 0;
  uint64_t sum = 0;
  for (const tag *g = r->tags; g; g = g->next, n++)
    sum += g->value;
  uint64_t want_sum = 0;
  for (unsigned t = 0; t < r->ntags; t++)
    want_sum += mix(r->key ^ t);
  if (n != r->ntags || sum != want_sum)
    errors++;
  fold(r->key);
  fold(sum);
}

/* ---- one round of churn */

static void list_round(uint64_t round) {
  tag *list = NULL;
  for (uint64_t i = 0; i < LIST_LEN; i++) {
    tag *c = alloc(sizeof *c, 0);
    c->value = round * LIST_LEN + i;
    c->next = list;
    list = c;
  }
  tag *rev = NULL; /* reversed: the first cell made comes first again */
  while (list) {
    tag *c = list;
    list = c->next;
    c->next = rev;
    rev = c;
  }
  uint64_t sum = 0, i = 0;
  for (const tag *c = rev; c; c = c->next, i++) {
    if (c->value != round * LIST_LEN + i)
      errors++;
    sum += c->value;
  }
  if (i != LIST_LEN)
    errors++;
  fold(sum);
}

static void vector_round(uint64_t round) {
  size_t cap = 16, n = 0;
  node **vec = alloc(cap * sizeof *vec, 0);
  for (; n < VEC_LEN; n++) {
    if (n == cap) {
      cap *= 2;
      vec = GC_REALLOC(vec, cap * sizeof *vec);
      if (!vec) {
        fprintf(stderr, "gc-demo: out of memory (GC_REALLOC)\n");
        exit(2);
      }
    }
    vec[n] = alloc(sizeof **vec, 0);
    vec[n]->value = round ^ n;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (vec[i]->value != (round ^ i))
      errors++;
    sum += vec[i]->value;
  }
  fold(sum);
  GC_FREE(vec);
}

static void round_of(uint64_t round) {
  for (int d = 4; d <= 14; d += 2) {
    uint64_t seed = mix(round * 100 + (uint64_t)d);
    node *t = make_tree(d, seed, 1);
    check_tree(t, d, seed);
  }
  list_round(round);
  vector_round(round);
  for (int i = 0; i < REPLACE; i++) {
    uint64_t k = next_below(NRECORDS);
    table[k] = make_record(table[k]->key + NRECORDS);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 40;
  if (rounds < 1)
    rounds = 1;
  GC_INIT();
  double t0 = now();

  long_lived = make_tree(LONG_DEPTH, 7, 1);
  table = GC_MALLOC_UNCOLLECTABLE(NRECORDS * sizeof *table);
  if (!table) {
    fprintf(stderr, "gc-demo: out of memory (table)\n");
    return 2;
  }
  for (uint64_t k = 0; k < NRECORDS; k++)
    table[k] = make_record(k);

  for (long r = 0; r < rounds; r++)
    round_of((uint64_t)r);

  check_tree(long_lived, LONG_DEPTH, 7);
  for (uint64_t k = 0; k < NRECORDS; k++)
    check_record(table[k]);
  GC_FREE(table);
  table = NULL;
  GC_gcollect();
  double elapsed = now() - t0;

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("result: digest=%016llx errors=%llu time_s=%.3f maxrss_kib=%ld gc_no=%lu "
         "heap_bytes=%zu collector=%s\n",
         (unsigned long long)digest, (unsigned long long)errors, elapsed, ru.ru_maxrss,
         (unsigned long)GC_get_gc_no(), GC_get_heap_size(), COLLECTOR);
  return errors ? 3 : 0;
}
