/* gchash.c - a large long-lived structure mutated at random.
 *
 *   gchash [entries [operations [seed]]]   (defaults 1000000, 4000000, 1)
 *
 * A chained hash table: the bucket array comes from GC_MALLOC, each entry
 * is a small scanned node pointing to a pointer-free payload of 8..72 bytes
 * (GC_MALLOC_ATOMIC) whose bytes follow from the entry's key and version.
 * The table is filled with `entries` random keys out of 1.5 * entries,
 * then each operation picks a random key and
 *   50%  sets it: inserts a new entry, or replaces the present one (three
 *        times in four by a new node and payload, else by growing or
 *        shrinking the payload in place with GC_REALLOC);
 *   25%  deletes it, if present (one deleted entry in four is handed back
 *        at once with GC_FREE, the rest is left to the collector);
 *   25%  reads it, if present.
 * These rates keep the table at about `entries` entries.  After the fill,
 * three times during the operations and at the end, the whole table is
 * walked: every payload is checked and the entries are folded into the
 * checksum. */
#include "gcb.h"

#include <string.h>

typedef struct hnode {
  struct hnode *next;
  uint64_t key;
  unsigned char *payload;
  uint32_t len;
  uint32_t version;
} hnode;

typedef struct {
  hnode **buckets;
  uint64_t mask;
  uint64_t count;
} table;

typedef struct {
  uint64_t hash;
  uint64_t errors;
} tally;

static void *must(void *p) {
  if (!p) {
    fprintf(stderr, "gchash: out of memory\n");
    exit(2);
  }
  return p;
}

static inline unsigned char payload_byte(uint64_t key, uint32_t version, uint32_t i) {
  return (unsigned char)(key * 131 + version * 7 + i);
}

static void fill_payload(hnode *n) {
  for (uint32_t i = 0; i < n->len; i++)
    n->payload[i] = payload_byte(n->key, n->version, i);
}

static hnode *new_entry(uint64_t key, uint32_t version, uint32_t len) {
  hnode *n = must(GC_MALLOC(sizeof(hnode)));
  n->key = key;
  n->version = version;
  n->len = len;
  n->payload = must(GC_MALLOC_ATOMIC(len));
  fill_payload(n);
  return n;
}

/* The link that points to key's node, or to the NULL ending its chain. */
static hnode **find(table *t, uint64_t key) {
  hnode **link = &t->buckets[gcb_mix64(key) & t->mask];
  while (*link && (*link)->key != key)
    link = &(*link)->next;
  return link;
}

static uint32_t payload_len(gcb_rng *r) { return 8 + (uint32_t)gcb_below(r, 65); }

static void set_entry(table *t, gcb_rng *r, uint64_t key) {
  hnode **link = find(t, key);
  hnode *old = *link;
  if (!old) {
    hnode *n = new_entry(key, 0, payload_len(r));
    n->next = t->buckets[gcb_mix64(key) & t->mask];
    t->buckets[gcb_mix64(key) & t->mask] = n;
    t->count++;
  } else if (gcb_below(r, 4) != 0) {
    hnode *n = new_entry(key, old->version + 1, payload_len(r));
    n->next = old->next;
    *link = n; /* the old node and payload become garbage */
  } else {
    old->len = payload_len(r);
    old->payload = must(GC_REALLOC(old->payload, old->len));
    old->version++;
    fill_payload(old);
  }
}

static void delete_entry(table *t, gcb_rng *r, uint64_t key) {
  hnode **link = find(t, key);
  hnode *n = *link;
  if (!n)
    return;
  *link = n->next;
  t->count--;
  if (gcb_below(r, 4) == 0) {
    GC_FREE(n->payload);
    GC_FREE(n);
  }
}

static void read_entry(table *t, tally *s, uint64_t key) {
  hnode *n = *find(t, key);
  if (n)
    s->hash += (uint64_t)n->payload[n->len - 1] + n->len;
}

/* Walks the table: checks every payload, folds the entries (in an order
 * that does not depend on addresses) into the checksum. */
static void checkpoint(table *t, tally *s, int k) {
  uint64_t sum = 0, seen = 0;
  for (uint64_t b = 0; b <= t->mask; b++) {
    for (hnode *n = t->buckets[b]; n; n = n->next) {
      for (uint32_t i = 0; i < n->len; i++)
        if (n->payload[i] != payload_byte(n->key, n->version, i)) {
          s->errors++;
          break;
        }
      sum += gcb_mix64(n->key * 1000003 + n->version * 131 + n->len);
      seen++;
    }
  }
  if (seen != t->count)
    s->errors++;
  s->hash = gcb_mix64(s->hash ^ sum ^ (seen << 40));
  printf("checkpoint %d: %llu entries, sum %016llx, %lu collections so far\n", k,
         (unsigned long long)seen, (unsigned long long)sum, (unsigned long)GC_get_gc_no());
}

static void fill(table *t, gcb_rng *r, uint64_t entries, uint64_t keyspace) {
  while (t->count < entries) {
    uint64_t key = gcb_below(r, keyspace);
    if (!*find(t, key))
      set_entry(t, r, key);
  }
}

static void mutate(table *t, tally *s, gcb_rng *r, uint64_t ops, uint64_t keyspace) {
  uint64_t every = ops / 4 ? ops / 4 : 1;
  int k = 1;
  for (uint64_t i = 1; i <= ops; i++) {
    uint64_t key = gcb_below(r, keyspace);
    uint64_t op = gcb_below(r, 4);
    if (op < 2)
      set_entry(t, r, key);
    else if (op == 2)
      delete_entry(t, r, key);
    else
      read_entry(t, s, key);
    if (i % every == 0 && i < ops)
      checkpoint(t, s, k++);
  }
}

int main(int argc, char **argv) {
  long entries = gcb_arg(argc, argv, 1, 1000000);
  long ops = gcb_arg(argc, argv, 2, 4000000);
  gcb_rng r = {(uint64_t)gcb_arg(argc, argv, 3, 1)};
  if (entries < 1 || ops < 0) {
    fprintf(stderr, "usage: %s [entries [operations [seed]]]\n", argv[0]);
    return 2;
  }
  gcb_init();
  uint64_t nb = 1;
  while (nb < (uint64_t)entries)
    nb <<= 1;
  static table t; /* in static storage: a root for both collectors */
  tally s = {0, 0};
  double t0 = gcb_now();
  t.buckets = must(GC_MALLOC(nb * sizeof(hnode *)));
  t.mask = nb - 1;
  uint64_t keyspace = (uint64_t)entries + (uint64_t)entries / 2;
  fill(&t, &r, (uint64_t)entries, keyspace);
  checkpoint(&t, &s, 0);
  mutate(&t, &s, &r, (uint64_t)ops, keyspace);
  checkpoint(&t, &s, 4);
  double elapsed = gcb_now() - t0;
  printf("gchash: %ld entries, %ld operations, checksum %016llx, %.3f s, %lu collections, "
         "heap %zu bytes\n",
         entries, ops, (unsigned long long)s.hash, elapsed, (unsigned long)GC_get_gc_no(),
         GC_get_heap_size());
  return gcb_report(elapsed, s.hash, s.errors);
}
