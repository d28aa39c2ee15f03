/* test_gc_model.c - random sequences of collector calls checked against a
 * model of the object graph.
 *
 * The program keeps a graph of GC objects: scanned objects whose pointer
 * slots point at (the start or the interior of) other objects, and
 * pointer-free ones filled with a pattern.  The only references it keeps
 * are in an uncollectable root array and in the objects themselves; the
 * model (addresses disguised, in malloc'd memory, which the collector does
 * not scan) records every object's identity, size, kind and slots.  The
 * operations, chosen by a seeded generator (or by a fuzzer's bytes):
 * allocate into a root or into a slot of a reachable object, store a
 * pointer or NULL into a slot, drop a root, collect (with and without
 * releasing memory), free explicitly an object only a root refers to,
 * realloc such an object, make a weak handle and read it back, and
 * allocate bursts of garbage so that collections also start on their own.
 *
 * After each collection, and every few hundred operations, every object
 * the model says is reachable must be a live object (mh_gc_base, the
 * size) with its identity, its slots and its pattern intact, and every
 * weak handle of a reachable object must still give its pointer.  At the
 * end, with every root dropped, the live heap must fall to a small
 * fraction of what was allocated (conservative roots may keep a little).
 *
 *   test_gc_model [SEED [OPS]]
 *
 * Built with -DMHEAP_GC_FUZZ (and -fsanitize=fuzzer), the same engine
 * runs on libFuzzer's inputs: LLVMFuzzerTestOneInput reads the operations
 * from the bytes. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mheap.h"
#include "mheap_gc.h"

#define DISGUISE (~(uintptr_t)0)
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define DEFAULT_OPS 8000
#elif defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
#define DEFAULT_OPS 20000
#else
#define DEFAULT_OPS 120000
#endif

#define NROOTS 256
#define NHANDLES 64
#define MAXOBJ 65536
#define MAXSLOTS 24
#define MODEL_BYTES_MAX ((size_t)48 << 20)

typedef struct mobj {
    uintptr_t addr; /* disguised: addr ^ DISGUISE; 0 when the slot is unused */
    uint64_t id;
    size_t size;
    int atomic;
    int nslots;
    int target[MAXSLOTS]; /* model index or -1 */
    size_t off[MAXSLOTS];
    uint32_t pos[MAXSLOTS]; /* the word each slot is at, spread over the object */
    uint32_t mark; /* reachability walk */
    int indeg;     /* references from roots and reachable objects, at the walk */
} mobj;

/* The only references the program keeps: the root array (uncollectable). */
typedef struct roots {
    void *root[NROOTS];
    void *handle[NHANDLES];
} roots;

static roots *R;
static int root_target[NROOTS];
static size_t root_off[NROOTS];
static int handle_target[NHANDLES];
static size_t handle_off[NHANDLES];
static mobj *M; /* malloc'd: not a root */
static int nobj;
static int freelist[MAXOBJ], nfree;
static uint32_t epoch;
static int dirty;            /* a reference was dropped since the last walk */
static size_t model_bytes;   /* bytes of reachable objects, at the walk */
static uint64_t next_id = 1;
static uint64_t total_allocated;
static unsigned long collections, verifies, frees, reallocs, handles_checked;

/* The operation source: a generator or a fuzzer's bytes. */
static uint64_t rng;
static const uint8_t *fuzz_data;
static size_t fuzz_len, fuzz_pos;
static int fuzz_mode;

static uint64_t next64(void) {
    if (fuzz_mode) {
        uint64_t v = 0;
        for (int i = 0; i < 4; i++) v = (v << 8) | (fuzz_pos < fuzz_len ? fuzz_data[fuzz_pos++] : 0x5a);
        return v * 0x9e3779b97f4a7c15u;
    }
    rng += 0x9e3779b97f4a7c15u;
    uint64_t z = rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
static size_t below(size_t n) { return n ? (size_t)(next64() % n) : 0; }
static int done(void) { return fuzz_mode && fuzz_pos >= fuzz_len; }

static inline void *addr_of(const mobj *o) { return (void *)(o->addr ^ DISGUISE); }
static inline uint64_t tag_of(uint64_t id) { return (id << 3) | 1; } /* never an address */
static inline uint8_t pat(uint64_t id, size_t j) { return (uint8_t)(id * 131 + j * 7); }

/* Scanned object layout: word 0 the tag, word 1 the slot count, the
 * slots at words spread from word 2 to the last whole word, the pattern in
 * every other byte.  Pointer-free: word 0 the tag, then the pattern. */
static size_t hdr_bytes(const mobj *o) { return o->atomic ? 8 : 16; }

/* Is byte j in a slot?  *k walks the (ascending) slot positions: j must
 * not decrease between calls with the same *k. */
static int in_slot(const mobj *o, size_t j, int *k) {
    uint32_t w = (uint32_t)(j / 8);
    while (*k < o->nslots && o->pos[*k] < w) (*k)++;
    return *k < o->nslots && o->pos[*k] == w;
}

/* The pattern over [from, size), header and slots included: they are
 * written after it. */
static void write_pattern(const mobj *o, size_t from) {
    unsigned char *b = addr_of(o);
    for (size_t j = from; j < o->size; j++) b[j] = pat(o->id, j);
}

static int new_index(void) {
    if (nfree) return freelist[--nfree];
    if (nobj < MAXOBJ) return nobj++;
    return -1;
}
static void release_index(int i) {
    M[i].addr = 0;
    freelist[nfree++] = i;
}

static size_t pick_size(void) {
    size_t r = below(1000);
    if (r < 700) return 24 + below(500);
    if (r < 960) return 512 + below(16 * 1024);
    if (r < 995) return 32 * 1024 + below(96 * 1024);
    return 256 * 1024 + below(512 * 1024);
}

/* The pointer a slot or root holds for (target, off). */
static void *ref(int target, size_t off) {
    return target < 0 ? NULL : (char *)addr_of(&M[target]) + off;
}

/* Allocate a model object; returns its index or -1. */
static __attribute__((noinline)) int alloc_obj(int atomic, size_t size) {
    int i = new_index();
    if (i < 0) return -1;
    void *p = atomic ? mh_gc_malloc_atomic(size) : mh_gc_malloc(size);
    REQUIRE(p != NULL);
    mobj *o = &M[i];
    memset(o, 0, sizeof *o);
    o->addr = (uintptr_t)p ^ DISGUISE;
    o->id = next_id++;
    o->size = size;
    o->atomic = atomic;
    o->nslots = 0;
    if (!atomic) {
        size_t cap = (size / sizeof(void *)) - 2;
        o->nslots = (int)(cap < MAXSLOTS ? cap : MAXSLOTS);
        if (o->nslots > 2) o->nslots = 2 + (int)below((size_t)o->nslots - 1);
        size_t last = size / sizeof(void *) - 1; /* the last whole word */
        for (int k = 0; k < o->nslots; k++) {
            o->target[k] = -1;
            o->pos[k] = (uint32_t)(o->nslots == 1 ? 2 : 2 + (k * (last - 2)) / (size_t)(o->nslots - 1));
        }
    }
    write_pattern(o, 0);
    uint64_t *w = p;
    w[0] = tag_of(o->id);
    if (!atomic) {
        w[1] = (uint64_t)o->nslots;
        for (int k = 0; k < o->nslots; k++) w[o->pos[k]] = 0;
    }
    total_allocated += size;
    return i;
}

/* ---- the reachability walk over the model ---------------------------------- */

static int stack_buf[MAXOBJ];

static void visit(int t, int *sp) {
    if (t < 0) return;
    if (M[t].mark != epoch) {
        M[t].mark = epoch;
        M[t].indeg = 0;
        model_bytes += M[t].size;
        stack_buf[(*sp)++] = t;
    }
    M[t].indeg++;
}

/* Walk the model from the roots.  Every operation that uses the model's
 * idea of what is reachable walks first when a reference was dropped, so
 * it never touches an object the collector may have freed. */
static void walk(void) {
    epoch++;
    dirty = 0;
    model_bytes = 0;
    int sp = 0;
    for (int r = 0; r < NROOTS; r++) visit(root_target[r], &sp);
    while (sp) {
        mobj *o = &M[stack_buf[--sp]];
        for (int k = 0; k < o->nslots; k++) visit(o->target[k], &sp);
    }
    /* Objects no longer reachable leave the model (the collector may free
     * them at any time from now on). */
    for (int i = 0; i < nobj; i++)
        if (M[i].addr && M[i].mark != epoch) release_index(i);
    for (int h = 0; h < NHANDLES; h++)
        if (handle_target[h] >= 0 && !M[handle_target[h]].addr) {
            handle_target[h] = -1;
            R->handle[h] = NULL;
        }
}

static void ensure_walk(void) {
    if (dirty) walk();
}

static int reachable(int i) { return i >= 0 && M[i].addr && M[i].mark == epoch; }

/* A random reachable object (scanned if asked), or -1. */
static int pick_reachable(int scanned) {
    ensure_walk();
    if (nobj == 0) return -1;
    for (int tries = 0; tries < 16; tries++) {
        int i = (int)below((size_t)nobj);
        if (reachable(i) && (!scanned || !M[i].atomic)) return i;
    }
    return -1;
}

/* ---- checks ---------------------------------------------------------------- */

static void verify(void) {
    verifies++;
    walk();
    for (int i = 0; i < nobj; i++) {
        if (!reachable(i)) continue;
        const mobj *o = &M[i];
        unsigned char *p = addr_of(o);
        size_t sz = 0;
        void *b = mh_gc_base(p + o->size / 2, &sz);
        if (b != p || sz < o->size || mh_gc_size(p) < o->size) {
            fprintf(stderr, "object %d (id %llu, %zu bytes at %p): base %p size %zu\n", i,
                    (unsigned long long)o->id, o->size, (void *)p, b, sz);
            CHECK(0);
            continue;
        }
        uint64_t *w = (uint64_t *)p;
        if (w[0] != tag_of(o->id)) {
            fprintf(stderr, "object %d: tag %#llx, not %#llx\n", i, (unsigned long long)w[0],
                    (unsigned long long)tag_of(o->id));
            CHECK(0);
            continue;
        }
        if (!o->atomic) {
            CHECK_EQ(w[1], (uint64_t)o->nslots);
            for (int k = 0; k < o->nslots; k++) {
                void *want = ref(o->target[k], o->off[k]);
                if ((void *)w[o->pos[k]] != want) {
                    fprintf(stderr, "object %d slot %d: %p, not %p\n", i, k, (void *)w[o->pos[k]], want);
                    CHECK(0);
                }
            }
        }
        size_t step = o->size > 4096 ? 61 : 1;
        int k = 0, bad = 0;
        for (size_t j = hdr_bytes(o); j < o->size && !bad; j += step)
            if (!in_slot(o, j, &k) && p[j] != pat(o->id, j)) {
                fprintf(stderr, "object %d byte %zu: %#x, not %#x\n", i, j, p[j], pat(o->id, j));
                bad = 1;
            }
        if (!bad && o->size > hdr_bytes(o) && !in_slot(o, o->size - 1, &k) &&
            p[o->size - 1] != pat(o->id, o->size - 1))
            bad = 1;
        CHECK(!bad);
    }
    for (int h = 0; h < NHANDLES; h++) {
        int t = handle_target[h];
        if (t < 0) continue;
        handles_checked++;
        void *want = ref(t, handle_off[h]);
        if (mh_gc_weak_get(R->handle[h]) != want) {
            fprintf(stderr, "handle %d: %p, not %p\n", h, mh_gc_weak_get(R->handle[h]), want);
            CHECK(0);
        }
    }
}

/* ---- operations ------------------------------------------------------------ */

static void set_root(int r, int t, size_t off) {
    if (root_target[r] >= 0) dirty = 1;
    if (t >= 0) M[t].indeg++; /* (a new reference: the walk's count stays true) */
    root_target[r] = t;
    root_off[r] = off;
    R->root[r] = ref(t, off);
}

static void set_slot(int i, int k, int t, size_t off) {
    mobj *o = &M[i];
    if (o->target[k] >= 0) dirty = 1;
    if (t >= 0) M[t].indeg++;
    o->target[k] = t;
    o->off[k] = off;
    ((void **)addr_of(o))[o->pos[k]] = ref(t, off);
}

static size_t pick_off(int t) {
    if (below(3) == 0) return 0;
    return below(M[t].size);
}

static void op_alloc(void) {
    ensure_walk();
    if (model_bytes > MODEL_BYTES_MAX || nobj >= MAXOBJ - 1) {
        /* The graph is big enough: drop half the roots. */
        for (int r = (int)below(2); r < NROOTS; r += 2) set_root(r, -1, 0);
        walk();
    }
    int atomic = below(10) < 3;
    /* The holder first: the walk must not see the new object unheld. */
    int holder = below(2) ? pick_reachable(1) : -1;
    int i = alloc_obj(atomic, pick_size());
    if (i < 0) return;
    M[i].mark = epoch; /* reachable from here on */
    M[i].indeg = 0;
    model_bytes += M[i].size;
    if (holder >= 0 && M[holder].nslots > 0)
        set_slot(holder, (int)below((size_t)M[holder].nslots), i, pick_off(i));
    else
        set_root((int)below(NROOTS), i, below(4) ? 0 : pick_off(i));
}

static void op_store(void) {
    int a = pick_reachable(1);
    if (a < 0 || M[a].nslots == 0) return;
    int b = below(5) == 0 ? -1 : pick_reachable(0);
    set_slot(a, (int)below((size_t)M[a].nslots), b, b >= 0 ? pick_off(b) : 0);
}

static void op_drop_root(void) {
    set_root((int)below(NROOTS), -1, 0);
}

static void op_collect(void) {
    collections++;
    mh_gc_collect((int)below(2));
    verify();
}

/* An object only one root (at its start) refers to: free or realloc it. */
static int pick_sole(int *root) {
    ensure_walk();
    int r = (int)below(NROOTS);
    int t = root_target[r];
    if (t < 0 || root_off[r] != 0 || M[t].indeg != 1) return -1;
    for (int h = 0; h < NHANDLES; h++)
        if (handle_target[h] == t) return -1; /* (keep the handle checks simple) */
    *root = r;
    return t;
}

static void op_free(void) {
    int r, t = pick_sole(&r);
    if (t < 0) return;
    frees++;
    mh_gc_free(addr_of(&M[t]));
    root_target[r] = -1;
    R->root[r] = NULL;
    release_index(t);
    dirty = 1;
}

static void op_realloc(void) {
    int r, t = pick_sole(&r);
    if (t < 0) return;
    mobj *o = &M[t];
    size_t nsize = pick_size();
    if (!o->atomic && o->nslots > 0 && nsize < (o->pos[o->nslots - 1] + 1) * sizeof(void *))
        nsize = (o->pos[o->nslots - 1] + 1) * sizeof(void *); /* (the slots stay where they are) */
    void *p = mh_gc_realloc(addr_of(o), nsize);
    REQUIRE(p != NULL);
    reallocs++;
    size_t old = o->size;
    o->addr = (uintptr_t)p ^ DISGUISE;
    o->size = nsize;
    R->root[r] = p;
    if (nsize > old) write_pattern(o, old); /* the kept part is checked as it was */
    total_allocated += nsize;
}

static void op_handle(void) {
    int t = pick_reachable(0);
    if (t < 0) return;
    int h = (int)below(NHANDLES);
    size_t off = pick_off(t);
    void *p = ref(t, off);
    void *hd = mh_gc_weak_make(p);
    REQUIRE(hd != NULL);
    /* One handle per object and offset. */
    CHECK(mh_gc_weak_make(p) == hd);
    CHECK(mh_gc_weak_get(hd) == p);
    R->handle[h] = hd;
    handle_target[h] = t;
    handle_off[h] = off;
}

static __attribute__((noinline)) void op_garbage(void) {
    size_t n = 200 + below(2000);
    for (size_t k = 0; k < n; k++) {
        void **g = mh_gc_malloc(16 + below(200));
        REQUIRE(g != NULL);
        g[0] = R->root[below(NROOTS)]; /* garbage pointing at live objects */
    }
    total_allocated += n * 100;
}

static void run_ops(size_t ops) {
    for (size_t n = 0; n < ops && !done(); n++) {
        size_t r = below(1000);
        if (r < 380) op_alloc();
        else if (r < 650) op_store();
        else if (r < 760) op_drop_root();
        else if (r < 800) op_free();
        else if (r < 830) op_realloc();
        else if (r < 850) op_handle();
        else if (r < 990) op_garbage();
        else op_collect();
        if (n % 512 == 511) verify();
    }
    op_collect();
}

#ifndef MHEAP_GC_FUZZ
static __attribute__((noinline)) void scrub_stack(void) {
    char buf[262144];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}
#endif

static void setup(void) {
    if (!R) {
        R = mh_gc_malloc_uncollectable(sizeof *R);
        M = malloc(sizeof(mobj) * MAXOBJ);
        REQUIRE(R != NULL && M != NULL);
    }
    memset(R, 0, sizeof *R);
    for (int r = 0; r < NROOTS; r++) root_target[r] = -1;
    for (int h = 0; h < NHANDLES; h++) handle_target[h] = -1;
    nobj = 0;
    nfree = 0;
    walk();
}

static void teardown(void) {
    memset(R, 0, sizeof *R);
    for (int r = 0; r < NROOTS; r++) root_target[r] = -1;
    for (int h = 0; h < NHANDLES; h++) handle_target[h] = -1;
    walk();
}

#ifdef MHEAP_GC_FUZZ
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_mode = 1;
    fuzz_data = data;
    fuzz_len = size;
    fuzz_pos = 0;
    setup();
    run_ops(size);
    teardown();
    if (check_nfail) abort();
    return 0;
}
#else
int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x6d6865617067636dULL;
    size_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : DEFAULT_OPS;
    rng = seed;
    setup();
    run_ops(ops);
    printf("seed %#llx: %zu operations, %lu collections by hand, %llu collections in all, "
           "%lu checks of the whole graph, %lu explicit frees, %lu reallocs, %lu handle reads, "
           "%llu MiB allocated\n",
           (unsigned long long)seed, ops, collections, (unsigned long long)mh_gc_cycles(),
           verifies, frees, reallocs, handles_checked,
           (unsigned long long)(total_allocated >> 20));
    /* The bursts started collections too (under the sanitizers their large
     * roots can put the goal beyond what the bursts allocate). */
    if (OPTIMIZED) CHECK(mh_gc_cycles() > collections);
    CHECK(mh_heap_verify() == 0);

    /* Everything dropped: the live heap falls to a small fraction of what
     * was allocated (a few objects may stay, held by stale stack words). */
    teardown();
    scrub_stack();
    mh_gc_collect(1);
    mh_gc_collect(1);
    size_t live = mh_gc_live_bytes();
    printf("live after dropping every root: %zu bytes\n", live);
    if (OPTIMIZED) CHECK(live < (4u << 20));
    CHECK(mh_heap_verify() == 0);
    return check_done("test_gc_model");
}
#endif
