/* gcfinalize.c - many short-lived objects with finalizers.
 *
 *   gcfinalize [objects [live [on_demand [seed]]]]
 *                                  (defaults 1000000, 20000, 0, 1)
 *
 * The shape of a runtime that wraps resources in collected objects: each
 * step allocates a finalizable object of 48..144 bytes (GC_MALLOC) that
 * points to a pointer-free buffer of 16..72 bytes, and registers its
 * finalizer, three in four with GC_register_finalizer (ordered), one in
 * four with GC_register_finalizer_no_order.  One step in eight builds a
 * chain of 2..6 finalizable objects instead, each pointing to the next
 * (three chains in four ordered, the rest no-order), dropped at once.
 * One single object in sixteen goes into a table of `live` slots, where
 * it replaces the slot's object; one evicted object in four has its
 * finalizer taken off (GC_register_finalizer with a NULL procedure), so
 * it is never finalized.  Everything else is garbage at once.
 *
 * A finalizer counts itself, checks the object's tag and buffer, that it
 * was not finalized before (a bitmap of ids) and is not in the table, and
 * for an ordered chain that the next object (which ordered finalization
 * keeps alive until this finalizer has run) is not finalized yet, and
 * touches a field of that next object; one finalizer in 32 allocates a
 * small record, one in 256 resurrects its object instead (both into a
 * ring of 64 slots that the program drops at the end).
 *
 * on_demand 1: GC_set_finalize_on_demand(1), and the main loop calls
 * GC_invoke_finalizers every 1024 steps when GC_should_invoke_finalizers
 * says so (bdwgc's classic usage); 0: the collector's default (bdwgc runs
 * finalizers in allocating threads, mheap on its finalizer thread).
 *
 * At the end the table and the ring are emptied and the program collects
 * and runs finalizers until nothing more is finalized (at most 40 rounds).
 * The checksum folds only what the program decides (ids, kinds, sizes,
 * the table's final contents), never what a collector found unreachable:
 * a conservative collector may keep a few objects.  The number finalized
 * is printed; errors counts the failed checks above, and fewer than half
 * of the expected finalizations after the drain. */
#include "gcb.h"

#include <stdatomic.h>
#include <string.h>

enum { ST_NEW = 0, ST_TABLE = 1, ST_FINALIZED = 2 };
enum { K_ORDERED = 1, K_NO_ORDER = 2, K_CHAIN = 3, K_CHAIN_NO_ORDER = 4 };

typedef struct fobj {
  struct fobj *next; /* chains: the next object */
  unsigned char *buf;
  uint64_t id;
  uint64_t tag; /* gcb_mix64(id) */
  uint32_t len; /* of buf */
  uint32_t state;
  uint32_t touched; /* by the finalizer of the object before it in a chain */
  uint32_t extra;   /* words after the header */
  uint64_t words[];
} fobj;

#define RING 64

static struct {
  _Atomic uint64_t finalized, errors, allocated, resurrected;
  _Atomic uint64_t *seen; /* a bit per id (malloc'd: not a root) */
  uint64_t nids;
  _Atomic(void *) ring[RING];
  _Atomic uint64_t ring_next;
} F;

static fobj **table_obj; /* the live table (GC_MALLOC; held here, a root) */

static void *must(void *p) {
  if (!p) {
    fprintf(stderr, "gcfinalize: out of memory\n");
    exit(2);
  }
  return p;
}

static inline unsigned char buf_byte(uint64_t id, uint32_t i) {
  return (unsigned char)(id * 151 + i * 3);
}

static void fail(void) { atomic_fetch_add_explicit(&F.errors, 1, memory_order_relaxed); }

static void ring_put(void *p) {
  uint64_t k = atomic_fetch_add_explicit(&F.ring_next, 1, memory_order_relaxed);
  atomic_store_explicit(&F.ring[k % RING], p, memory_order_relaxed);
}

static void GC_CALLBACK finalize(void *p, void *cd) {
  fobj *o = p;
  uintptr_t kind = (uintptr_t)cd;
  uint64_t n = atomic_fetch_add_explicit(&F.finalized, 1, memory_order_relaxed) + 1;
  if (o->id >= F.nids || o->tag != gcb_mix64(o->id) || !o->buf ||
      o->buf[0] != buf_byte(o->id, 0) || o->buf[o->len - 1] != buf_byte(o->id, o->len - 1)) {
    fail();
    return;
  }
  uint64_t bit = 1ull << (o->id & 63);
  if (atomic_fetch_or_explicit(&F.seen[o->id >> 6], bit, memory_order_relaxed) & bit)
    fail(); /* finalized twice */
  if (o->state != ST_NEW)
    fail(); /* still in the table, or finalized before */
  o->state = ST_FINALIZED;
  if (kind == K_CHAIN && o->next) {
    if (o->next->state == ST_FINALIZED)
      fail(); /* ordered: the next one must wait for this one */
    o->next->touched++;
  }
  if (n % 256 == 0) {
    ring_put(o); /* resurrected: no finalizer any more */
    atomic_fetch_add_explicit(&F.resurrected, 1, memory_order_relaxed);
  } else if (n % 32 == 0) {
    uint64_t *rec = GC_MALLOC_ATOMIC(2 * sizeof(uint64_t));
    if (rec) {
      rec[0] = o->id;
      rec[1] = kind;
      ring_put(rec);
      atomic_fetch_add_explicit(&F.allocated, 1, memory_order_relaxed);
    }
  }
}

typedef struct {
  gcb_rng r;
  uint64_t next_id;
  uint64_t registered, cancelled;
  uint64_t hash;
} state;

static void fold(state *s, uint64_t v) { s->hash = gcb_mix64(s->hash ^ v); }

static fobj *new_obj(state *s, int kind, fobj *next) {
  uint32_t extra = (uint32_t)gcb_below(&s->r, 13);
  fobj *o = must(GC_MALLOC(sizeof(fobj) + extra * sizeof(uint64_t)));
  o->id = s->next_id++;
  o->tag = gcb_mix64(o->id);
  o->extra = extra;
  o->next = next;
  o->len = 16 + 8 * (uint32_t)gcb_below(&s->r, 8);
  unsigned char *b = must(GC_MALLOC_ATOMIC(o->len));
  for (uint32_t i = 0; i < o->len; i++)
    b[i] = buf_byte(o->id, i);
  o->buf = b;
  for (uint32_t i = 0; i < extra; i++)
    o->words[i] = o->id + i;
  if (kind == K_NO_ORDER || kind == K_CHAIN_NO_ORDER)
    GC_register_finalizer_no_order(o, finalize, (void *)(uintptr_t)kind, NULL, NULL);
  else
    GC_register_finalizer(o, finalize, (void *)(uintptr_t)kind, NULL, NULL);
  s->registered++;
  fold(s, o->id * 64 + (uint64_t)kind * 16 + extra + o->len * 1024);
  return o;
}

static void step(state *s, long live) {
  if (gcb_below(&s->r, 8) == 0) {
    int kind = gcb_below(&s->r, 4) == 0 ? K_CHAIN_NO_ORDER : K_CHAIN;
    int len = 2 + (int)gcb_below(&s->r, 5);
    fobj *head = NULL;
    for (int k = 0; k < len; k++)
      head = new_obj(s, kind, head);
    fold(s, (uint64_t)len);
    return; /* the chain is garbage */
  }
  int kind = gcb_below(&s->r, 4) == 0 ? K_NO_ORDER : K_ORDERED;
  fobj *o = new_obj(s, kind, NULL);
  if (gcb_below(&s->r, 16) == 0) {
    uint64_t slot = gcb_below(&s->r, (uint64_t)live);
    fobj *old = table_obj[slot];
    if (old) {
      if (old->state != ST_TABLE || old->tag != gcb_mix64(old->id))
        fail();
      old->state = ST_NEW;
      if (gcb_below(&s->r, 4) == 0) {
        GC_finalization_proc ofn = NULL;
        void *ocd = NULL;
        GC_register_finalizer(old, 0, NULL, &ofn, &ocd);
        if (ofn != finalize)
          fail();
        s->cancelled++;
      }
    }
    o->state = ST_TABLE;
    table_obj[slot] = o;
  }
}

int main(int argc, char **argv) {
  long objects = gcb_arg(argc, argv, 1, 1000000);
  long live = gcb_arg(argc, argv, 2, 20000);
  long on_demand = gcb_arg(argc, argv, 3, 0);
  state s = {{(uint64_t)gcb_arg(argc, argv, 4, 1)}, 0, 0, 0, 0};
  if (objects < 1 || live < 1 || on_demand < 0 || on_demand > 1) {
    fprintf(stderr, "usage: %s [objects [live [on_demand (0, 1) [seed]]]]\n", argv[0]);
    return 2;
  }
  gcb_init();
  table_obj = must(GC_MALLOC((size_t)live * sizeof *table_obj));
  if (on_demand)
    GC_set_finalize_on_demand(1);
  /* (ids: at most objects + one chain past it) */
  F.nids = (uint64_t)objects + 8;
  F.seen = must(calloc((F.nids + 63) / 64, sizeof(uint64_t)));
  double t0 = gcb_now();
  uint64_t invoked = 0;
  for (long i = 0; s.next_id < (uint64_t)objects; i++) {
    step(&s, live);
    if (on_demand && (i & 1023) == 1023 && GC_should_invoke_finalizers())
      invoked += (uint64_t)GC_invoke_finalizers();
  }
  /* The table's objects: all intact and none finalized. */
  uint64_t kept = 0;
  for (long k = 0; k < live; k++) {
    fobj *o = table_obj[k];
    if (!o)
      continue;
    if (o->state != ST_TABLE || o->tag != gcb_mix64(o->id))
      fail();
    fold(&s, o->id + (uint64_t)k * 0x100000000ull);
    kept++;
    o->state = ST_NEW;
    table_obj[k] = NULL;
  }
  for (int k = 0; k < RING; k++)
    atomic_store(&F.ring[k], NULL);
  uint64_t expected = s.registered - s.cancelled, last = ~0ull;
  int rounds = 0, quiet = 0;
  while (rounds < 40 && quiet < 3) {
    GC_gcollect();
    while (GC_invoke_finalizers() > 0) {
    }
    uint64_t now = atomic_load(&F.finalized);
    quiet = now == last ? quiet + 1 : 0;
    last = now;
    rounds++;
  }
  uint64_t finalized = atomic_load(&F.finalized);
  if (finalized > expected || finalized * 2 < expected)
    fail();
  double elapsed = gcb_now() - t0;
  fold(&s, s.registered);
  fold(&s, s.cancelled);
  fold(&s, kept);
  printf("gcfinalize: %ld objects, %llu finalizers registered, %llu taken off, %llu finalized "
         "(%.4f%% of %llu; %llu in the main loop's calls), %llu allocated and %llu resurrected "
         "by finalizers, %d drain rounds, %.3f s, %lu collections\n",
         objects, (unsigned long long)s.registered, (unsigned long long)s.cancelled,
         (unsigned long long)finalized, 100.0 * (double)finalized / (double)expected,
         (unsigned long long)expected, (unsigned long long)invoked,
         (unsigned long long)atomic_load(&F.allocated),
         (unsigned long long)atomic_load(&F.resurrected), rounds, elapsed,
         (unsigned long)GC_get_gc_no());
  return gcb_report(elapsed, s.hash, atomic_load(&F.errors));
}
