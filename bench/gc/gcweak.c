/* gcweak.c - a weak-key intern table, as language runtimes keep symbols.
 *
 *   gcweak [keys [live [operations [seed]]]]
 *                                  (defaults 1000000, 100000, 4000000, 1)
 *
 * Symbols are pointer-free objects of 24..64 bytes (GC_MALLOC_ATOMIC): an
 * id out of `keys`, a flag and name bytes (length and contents follow from
 * the id).  The
 * table is open-addressed (linear probing) in one scanned array
 * (GC_MALLOC) of slots {hidden key, hash, value}: the key is kept as
 * GC_HIDE_POINTER(symbol), registered with
 * GC_general_register_disappearing_link, so the collector clears it (to 0)
 * once the symbol is unreachable; the value is an ordinary scanned object
 * that the slot holds strongly.  The program holds its symbols in `live`
 * root slots; each operation
 *   40%  interns a random id: found, or a new symbol and value inserted;
 *        half of the results go into a random root slot;
 *   30%  looks up a rooted symbol by its id: it must be found, the very
 *        object, unless the program deleted it (then it must not be);
 *   15%  looks up a random id (found or not, as the collector decided);
 *   10%  drops a root slot;
 *    5%  deletes a rooted symbol from the table
 *        (GC_unregister_disappearing_link) and drops it.
 * A probe that meets a cleared key turns the slot into a tombstone.  When
 * the used slots (live, cleared or tombstones) reach 3/4 of the array, or
 * after a collection when the cleared and tombstone slots pass a quarter,
 * the table is rebuilt at twice its live entries (so it also shrinks):
 * cleared slots are purged, the live keys' links are moved into the new
 * array with GC_move_disappearing_link.
 *
 * The checksum folds what the program decides (the operations, the rooted
 * lookups' answers, the roots at the end), never how many keys a
 * collector cleared: a conservative collector may keep a few. */
#include "gcb.h"

#include <string.h>

typedef struct {
  uint64_t id;
  uint32_t len;
  uint32_t deleted;
  unsigned char name[];
} symbol;

typedef struct {
  uint64_t id;
  uint64_t uses;
} value;

typedef struct {
  GC_word key; /* GC_HIDE_POINTER(symbol); 0: cleared or empty */
  uint64_t hash; /* 0: empty, 1: tombstone */
  value *val;
} slot;

#define EMPTY 0
#define TOMB 1

static struct {
  slot *slots;
  uint64_t cap, used; /* used: slots with a hash above TOMB or TOMB */
  uint64_t live;      /* inserted and not deleted or found cleared */
} T;

static symbol **roots; /* GC_MALLOC'd, held here (a root) */

typedef struct {
  uint64_t hash, errors;
  uint64_t created, cleared, rebuilds, moved, deleted;
  uint64_t seen_gc;
} tally;

static void *must(void *p) {
  if (!p) {
    fprintf(stderr, "gcweak: out of memory\n");
    exit(2);
  }
  return p;
}

static void fold(tally *t, uint64_t v) { t->hash = gcb_mix64(t->hash ^ v); }

static inline uint64_t hash_of(uint64_t id) { return gcb_mix64(id) | 2; }

static inline unsigned char name_byte(uint64_t id, uint32_t i) {
  return (unsigned char)(id * 29 + i * 7 + 1);
}

static symbol *key_of(const slot *s) {
  return s->key ? (symbol *)GC_REVEAL_POINTER(s->key) : NULL;
}

/* A slot whose key the collector cleared becomes a tombstone. */
static void purge(tally *t, slot *s) {
  s->hash = TOMB;
  s->val = NULL;
  T.live--;
  t->cleared++;
}

/* The slot holding id's symbol, or NULL. */
static slot *lookup(tally *t, uint64_t id) {
  uint64_t h = hash_of(id);
  for (uint64_t i = h & (T.cap - 1);; i = (i + 1) & (T.cap - 1)) {
    slot *s = &T.slots[i];
    if (s->hash == EMPTY)
      return NULL;
    if (s->hash == TOMB)
      continue;
    symbol *k = key_of(s);
    if (!k) {
      purge(t, s);
      continue;
    }
    if (s->hash == h && k->id == id)
      return s;
  }
}

static slot *free_slot(slot *slots, uint64_t cap, uint64_t h) {
  for (uint64_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
    if (slots[i].hash <= TOMB)
      return &slots[i];
}

/* Rebuilds the table at twice its live entries (at least 1024 slots):
 * cleared keys are purged, live ones move with their links. */
static void rebuild(tally *t) {
  uint64_t cap = 1024;
  while (cap < 2 * T.live + 2)
    cap <<= 1;
  slot *n = must(GC_MALLOC(cap * sizeof(slot))); /* (may collect: counted after) */
  uint64_t live = 0;
  for (uint64_t i = 0; i < T.cap; i++) {
    slot *s = &T.slots[i];
    if (s->hash <= TOMB)
      continue;
    if (!s->key) {
      t->cleared++;
      continue;
    }
    slot *d = free_slot(n, cap, s->hash);
    *d = *s;
    if (GC_move_disappearing_link((void **)&s->key, (void **)&d->key) != GC_SUCCESS)
      t->errors++;
    live++;
    t->moved++;
  }
  T.slots = n;
  T.cap = cap;
  T.used = T.live = live;
  t->rebuilds++;
}

/* (the length follows from the id: whether a symbol is made anew depends on
 * the collector, so it must not draw from the generator) */
static symbol *new_symbol(tally *t, uint64_t id) {
  uint32_t len = 8 + 8 * (uint32_t)(gcb_mix64(id ^ 0x5bd1e995) % 6);
  symbol *k = must(GC_MALLOC_ATOMIC(sizeof(symbol) + len));
  k->id = id;
  k->len = len;
  k->deleted = 0;
  for (uint32_t i = 0; i < len; i++)
    k->name[i] = name_byte(id, i);
  t->created++;
  return k;
}

static symbol *intern(tally *t, uint64_t id) {
  slot *s = lookup(t, id);
  if (s) {
    s->val->uses++;
    return key_of(s);
  }
  symbol *k = new_symbol(t, id);
  value *v = must(GC_MALLOC(sizeof(value)));
  v->id = id;
  v->uses = 1;
  if ((T.used + 1) * 4 > T.cap * 3)
    rebuild(t); /* (allocates: k and v are on this frame) */
  slot *d = free_slot(T.slots, T.cap, hash_of(id));
  if (d->hash == EMPTY)
    T.used++;
  d->hash = hash_of(id);
  d->val = v;
  d->key = GC_HIDE_POINTER(k);
  if (GC_general_register_disappearing_link((void **)&d->key, k) != GC_SUCCESS)
    t->errors++;
  T.live++;
  return k;
}

static void delete_symbol(tally *t, symbol *k) {
  slot *s = lookup(t, k->id);
  if (!s || key_of(s) != k) {
    t->errors++;
    return;
  }
  if (!GC_unregister_disappearing_link((void **)&s->key))
    t->errors++;
  s->key = 0;
  s->hash = TOMB;
  s->val = NULL;
  k->deleted = 1;
  T.live--;
  t->deleted++;
}

static void check_symbol(tally *t, const symbol *k) {
  if (k->len < 8 || k->len > 48 || k->name[0] != name_byte(k->id, 0) ||
      k->name[k->len - 1] != name_byte(k->id, k->len - 1))
    t->errors++;
}

static void operate(tally *t, gcb_rng *r, uint64_t keys, uint64_t live) {
  uint64_t op = gcb_below(r, 20);
  if (op < 8) {
    uint64_t id = gcb_below(r, keys);
    symbol *k = intern(t, id);
    if (k->id != id)
      t->errors++;
    check_symbol(t, k);
    if (gcb_below(r, 2) == 0)
      roots[gcb_below(r, live)] = k;
    fold(t, id);
  } else if (op < 14) {
    uint64_t j = gcb_below(r, live);
    symbol *k = roots[j];
    if (!k)
      return;
    slot *s = lookup(t, k->id);
    int found = s && key_of(s) == k;
    if (found == (int)k->deleted)
      t->errors++;
    fold(t, k->id * 4 + (uint64_t)found * 2 + j * 0x10000);
  } else if (op < 17) {
    slot *s = lookup(t, gcb_below(r, keys));
    if (s)
      check_symbol(t, key_of(s));
  } else if (op < 19) {
    roots[gcb_below(r, live)] = NULL;
  } else {
    uint64_t j = gcb_below(r, live);
    symbol *k = roots[j];
    if (k && !k->deleted)
      delete_symbol(t, k);
    roots[j] = NULL;
    fold(t, j + 0x5555);
  }
}

int main(int argc, char **argv) {
  long keys = gcb_arg(argc, argv, 1, 1000000);
  long live = gcb_arg(argc, argv, 2, 100000);
  long ops = gcb_arg(argc, argv, 3, 4000000);
  gcb_rng r = {(uint64_t)gcb_arg(argc, argv, 4, 1)};
  if (keys < 1 || live < 1 || ops < 0) {
    fprintf(stderr, "usage: %s [keys [live [operations [seed]]]]\n", argv[0]);
    return 2;
  }
  gcb_init();
  tally t = {0};
  double t0 = gcb_now();
  roots = must(GC_MALLOC((size_t)live * sizeof *roots));
  T.cap = 1024;
  T.slots = must(GC_MALLOC(T.cap * sizeof(slot)));
  t.seen_gc = GC_get_gc_no();
  for (long i = 0; i < ops; i++) {
    operate(&t, &r, (uint64_t)keys, (uint64_t)live);
    if ((i & 4095) == 4095 && GC_get_gc_no() != t.seen_gc) {
      /* after a collection: purge when the dead slots pass a quarter */
      t.seen_gc = GC_get_gc_no();
      uint64_t dead = 0;
      for (uint64_t k = 0; k < T.cap; k++)
        dead += T.slots[k].hash == TOMB || (T.slots[k].hash > TOMB && !T.slots[k].key);
      if (dead * 4 > T.cap)
        rebuild(&t);
    }
  }
  /* Every rooted symbol: intact, and in the table unless deleted. */
  for (long j = 0; j < live; j++) {
    symbol *k = roots[j];
    if (!k)
      continue;
    check_symbol(&t, k);
    slot *s = lookup(&t, k->id);
    int found = s && key_of(s) == k;
    if (found == (int)k->deleted)
      t.errors++;
    fold(&t, k->id + (uint64_t)j * 0x100000000ull + k->deleted);
  }
  double elapsed = gcb_now() - t0;
  fold(&t, t.deleted);
  printf("gcweak: %ld keys, %ld roots, %ld operations: %llu symbols made, %llu keys cleared by "
         "the collector, %llu deleted, %llu rebuilds moving %llu links, %llu in the table at "
         "the end (%llu slots), %.3f s, %lu collections\n",
         keys, live, ops, (unsigned long long)t.created, (unsigned long long)t.cleared,
         (unsigned long long)t.deleted, (unsigned long long)t.rebuilds,
         (unsigned long long)t.moved, (unsigned long long)T.live, (unsigned long long)T.cap,
         elapsed, (unsigned long)GC_get_gc_no());
  return gcb_report(elapsed, t.hash, t.errors);
}
