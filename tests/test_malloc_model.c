/* test_malloc_model.c - random sequences of malloc-layer calls checked
 * against a model of the live blocks.
 *
 * The model is a table of the blocks the program holds: address, size
 * asked for, usable size, alignment and a pattern seed, with the blocks
 * also in a treap ordered by address.  It lives in static arrays, memory
 * mheap never hands out.  The operations, chosen by a seeded generator (or
 * by a fuzzer's bytes), go through the public API only: mh_malloc,
 * mh_calloc, mh_realloc, mh_reallocarray, mh_aligned_alloc,
 * mh_posix_memalign, mh_free, mh_free_sized, mh_free_aligned_sized,
 * mh_usable_size, mh_trim, mh_release_memory and mh_heap_verify.  Sizes
 * are drawn from a mix: 0, 1..64, small sizes up to 32 KiB, each class's
 * size and its neighbours, large sizes, sizes around 256 KiB (the smallest
 * freed block held back), a few MiB, and sizes that must fail.
 *
 * After each allocation: the block is there for every sane size, aligned
 * to 16 (to the alignment asked for by the aligned calls), its usable size
 * at least the size asked for, calloc's bytes zero, and it overlaps no
 * live block (the treap's neighbours).  Then the pattern of its seed is
 * written over its whole usable size.  Before a block is freed or
 * reallocated its pattern is checked over the size asked for; realloc
 * keeps min(old, new) bytes of it.  Sized frees pass the size asked for or
 * any size from there up to the usable size, which the sized-free rule
 * (src/malloc.c, mhi_free_sized_slow) accepts: the class of the size asked
 * for is the block's, and every size up to the block's is of that class
 * or fills at least half the block.  A failing call (sizes above
 * PTRDIFF_MAX, calloc and reallocarray overflow, alignments that are not
 * powers of two) returns NULL with ENOMEM or EINVAL and changes nothing:
 * the block realloc was given still holds its bytes, posix_memalign's out
 * is not written, and (with one thread) the heap statistics are the same.
 * Every few hundred operations mh_heap_verify() finds nothing and a few
 * random blocks are looked at (whole up to 64 KiB, sampled above); at the
 * end every block is checked and freed, and after mh_trim() heap_inuse
 * is back where it started.
 *
 * The second mode runs 2-4 slots of threads, each with its own model,
 * handing blocks to each other through lock-protected mailboxes (a block
 * moves between models under the mailbox's lock) so that other threads'
 * blocks are freed, sized and unsized, and reallocated.  The thread of a
 * slot exits after a random number of operations and a new one takes its
 * slot and its model: blocks outlive the threads that made them, caches
 * are parked and taken again.  The same checks run in every thread (the
 * first failure prints the block and aborts).
 *
 *   test_malloc_model [SEED [OPS [THREADS]]]
 *
 * OPS is the operations of the one-thread mode (the threaded mode runs
 * about as many in all).  THREADS 1 runs the one-thread mode alone, 2-4
 * the threaded mode alone with that many slots; without it (or 0) both
 * run, with 2-4 slots drawn from the seed.
 *
 * Built with -DMHEAP_MALLOC_FUZZ (and -fsanitize=fuzzer), the one-thread
 * engine runs on libFuzzer's inputs: LLVMFuzzerTestOneInput reads the
 * operations from the bytes. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cache.h"
#include "check.h"
#include "mheap.h"
#include "sizeclass.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* The sanitizers make every access many times slower: fewer operations,
 * smaller big blocks and less live memory. */
#if defined(UNDER_TSAN)
#define DEFAULT_OPS 20000
#define BIG_MAX ((size_t)1 << 20)
#define MODEL_BYTES_MAX ((size_t)8 << 20)
#elif defined(UNDER_ASAN) || !defined(__OPTIMIZE__)
#define DEFAULT_OPS 40000
#define BIG_MAX ((size_t)2 << 20)
#define MODEL_BYTES_MAX ((size_t)16 << 20)
#else
#define DEFAULT_OPS 60000
#define BIG_MAX ((size_t)4 << 20)
#define MODEL_BYTES_MAX ((size_t)48 << 20)
#endif

#define MAXBLK 4096       /* live blocks per model */
#define MAXSLOTS 4        /* threads of the second mode */
#define MAILBOX_MAX 256   /* a fuller mailbox makes the sender keep the block */
#define VERIFY_EVERY 384  /* operations between mh_heap_verify() calls */
#define DELAY_MIN ((size_t)256 << 10) /* LARGE_DELAY_MIN in malloc.c */

/* ---- the model -------------------------------------------------------------- */

typedef struct blk {
    uintptr_t addr;
    size_t size;    /* asked for */
    size_t usable;  /* mh_usable_size when it was made: the pattern covers it */
    size_t align;   /* > 16: made by an aligned call, freed with it */
    uint64_t seed;  /* its pattern */
    int32_t left, right; /* the treap, by address */
    uint32_t prio;
    int32_t pos;    /* in live[] */
} blk;

typedef struct model {
    blk b[MAXBLK];
    int32_t live[MAXBLK]; /* the live blocks' indices, in any order */
    int nlive;
    int32_t freeidx[MAXBLK];
    int nfree, nused;
    int32_t root;
    size_t bytes;        /* asked for, over the live blocks */
    size_t cap;          /* bytes beyond which it frees instead of allocating */
    uint64_t rng;
    int slot;            /* -1: the one-thread mode */
    unsigned long op;    /* the operation running, for messages */
    /* counts */
    unsigned long allocs, frees, sized_frees, reallocs, moved, failed, verifies,
        sent, received, trims;
    uint64_t checked_bytes;
} model;

/* ---- the operation source: a generator or a fuzzer's bytes ------------------ */

static const uint8_t *fuzz_data;
static size_t fuzz_len, fuzz_pos;
static int fuzz_mode;

static uint64_t next64(model *m) {
    if (fuzz_mode) {
        uint64_t v = 0;
        for (int i = 0; i < 3; i++) v = (v << 8) | (fuzz_pos < fuzz_len ? fuzz_data[fuzz_pos++] : 0x5a);
        return (v + 1) * 0x9e3779b97f4a7c15u ^ (v << 40);
    }
    m->rng += 0x9e3779b97f4a7c15u;
    uint64_t z = m->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
static size_t below(model *m, size_t n) { return n ? (size_t)(next64(m) % n) : 0; }
static int done(void) { return fuzz_mode && fuzz_pos >= fuzz_len; }

/* ---- failures: print what is wrong and abort (also in threads) ------------- */

static uint64_t run_seed;

static __attribute__((noreturn, format(printf, 3, 4))) void fail(const model *m, const blk *b,
                                                                 const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[32] = "one thread";
    if (m->slot >= 0) snprintf(where, sizeof where, "slot %d", m->slot);
    fprintf(stderr, "test_malloc_model: seed %#llx, %s, operation %lu: %s\n",
            (unsigned long long)run_seed, where, m->op, msg);
    if (b)
        fprintf(stderr, "  block %p: size %zu, usable %zu, align %zu\n", (void *)b->addr, b->size,
                b->usable, b->align);
    abort();
}

/* ---- patterns --------------------------------------------------------------- */

static inline uint64_t pat_word(uint64_t seed, size_t w) {
    uint64_t v = (w + 1) * 0x9e3779b97f4a7c15u ^ seed;
    return v ^ (v >> 29);
}
static inline uint8_t pat_byte(uint64_t seed, size_t j) {
    return (uint8_t)(pat_word(seed, j >> 3) >> ((j & 7) * 8));
}

/* The pattern over [from, to) (the block is 16-aligned: byte j is at an
 * address with the alignment of j). */
static void write_pattern(const blk *b, size_t from, size_t to) {
    unsigned char *p = (unsigned char *)b->addr;
    size_t j = from;
    for (; j < to && (j & 7); j++) p[j] = pat_byte(b->seed, j);
    for (; j + 8 <= to; j += 8) {
        uint64_t w = pat_word(b->seed, j >> 3);
        memcpy(p + j, &w, 8);
    }
    for (; j < to; j++) p[j] = pat_byte(b->seed, j);
}

static void check_pattern(model *m, const blk *b, size_t from, size_t to, const char *when) {
    const unsigned char *p = (const unsigned char *)b->addr;
    size_t j = from;
    m->checked_bytes += to > from ? to - from : 0;
    for (; j < to && (j & 7); j++)
        if (p[j] != pat_byte(b->seed, j)) goto bad;
    for (; j + 8 <= to; j += 8) {
        uint64_t w;
        memcpy(&w, p + j, 8);
        if (w != pat_word(b->seed, j >> 3)) break; /* (the byte loop names the byte) */
    }
    for (; j < to; j++)
        if (p[j] != pat_byte(b->seed, j)) goto bad;
    return;
bad:
    fail(m, b, "%s: byte %zu of [%zu, %zu) is %#x, not %#x", when, j, from, to, p[j],
         pat_byte(b->seed, j));
}

/* A cheaper look at a big block, between the whole checks of free and
 * realloc: its first and last 4 KiB and 64 words between. */
static void glance(model *m, const blk *b, const char *when) {
    size_t n = b->usable;
    if (n <= (size_t)64 << 10) {
        check_pattern(m, b, 0, n, when);
        return;
    }
    check_pattern(m, b, 0, 4096, when);
    check_pattern(m, b, n - 4096, n, when);
    for (int k = 0; k < 64; k++) {
        size_t j = 4096 + below(m, n - 8192 - 8);
        check_pattern(m, b, j, j + 8, when);
    }
}

/* ---- the treap: live blocks by address, for the overlap check ---------------- */

static void split(model *m, int32_t t, uintptr_t key, int32_t *l, int32_t *r) {
    if (t < 0) {
        *l = *r = -1;
    } else if (m->b[t].addr < key) {
        split(m, m->b[t].right, key, &m->b[t].right, r);
        *l = t;
    } else {
        split(m, m->b[t].left, key, l, &m->b[t].left);
        *r = t;
    }
}
static int32_t merge(model *m, int32_t l, int32_t r) {
    if (l < 0) return r;
    if (r < 0) return l;
    if (m->b[l].prio > m->b[r].prio) {
        m->b[l].right = merge(m, m->b[l].right, r);
        return l;
    }
    m->b[r].left = merge(m, l, m->b[r].left);
    return r;
}
static uintptr_t extent_end(const blk *b) { return b->addr + (b->usable ? b->usable : 1); }

/* Add block i (addr, size, usable set): it must overlap none. */
static void tree_insert(model *m, int32_t i) {
    blk *b = &m->b[i];
    int32_t l, r;
    split(m, m->root, b->addr, &l, &r);
    int32_t pred = l, succ = r;
    if (pred >= 0)
        while (m->b[pred].right >= 0) pred = m->b[pred].right;
    if (succ >= 0)
        while (m->b[succ].left >= 0) succ = m->b[succ].left;
    if (pred >= 0 && extent_end(&m->b[pred]) > b->addr)
        fail(m, b, "overlaps the live block %p (usable %zu)", (void *)m->b[pred].addr, m->b[pred].usable);
    if (succ >= 0 && extent_end(b) > m->b[succ].addr)
        fail(m, b, "overlaps the live block %p (usable %zu)", (void *)m->b[succ].addr, m->b[succ].usable);
    b->left = b->right = -1;
    b->prio = (uint32_t)(next64(m) >> 32);
    m->root = merge(m, merge(m, l, i), r);
}
static void tree_erase(model *m, int32_t i) {
    int32_t l, mid, r;
    split(m, m->root, m->b[i].addr, &l, &r);
    split(m, r, m->b[i].addr + 1, &mid, &r);
    if (mid != i || m->b[i].left >= 0 || m->b[i].right >= 0)
        fail(m, &m->b[i], "the model lost the block (tree)");
    m->root = merge(m, l, r);
}

/* ---- the table ---------------------------------------------------------------- */

static void model_init(model *m, int slot, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->root = -1;
    m->slot = slot;
    m->rng = seed;
    m->cap = MODEL_BYTES_MAX;
}
static int model_full(const model *m) {
    return m->nlive >= MAXBLK - 1 || m->bytes > m->cap;
}

/* Enter a block the program now holds; returns its index. */
static int32_t model_add(model *m, void *p, size_t size, size_t usable, size_t align, uint64_t seed) {
    if (m->nlive >= MAXBLK) fail(m, NULL, "the model is full");
    int32_t i = m->nfree ? m->freeidx[--m->nfree] : m->nused++;
    blk *b = &m->b[i];
    b->addr = (uintptr_t)p;
    b->size = size;
    b->usable = usable;
    b->align = align;
    b->seed = seed;
    tree_insert(m, i);
    b->pos = m->nlive;
    m->live[m->nlive++] = i;
    m->bytes += size;
    return i;
}
static void model_remove(model *m, int32_t i) {
    tree_erase(m, i);
    int32_t last = m->live[--m->nlive];
    m->live[m->b[i].pos] = last;
    m->b[last].pos = m->b[i].pos;
    m->bytes -= m->b[i].size;
    m->b[i].addr = 0;
    m->freeidx[m->nfree++] = i;
}
static int32_t pick_block(model *m) {
    return m->nlive ? m->live[below(m, (size_t)m->nlive)] : -1;
}

/* ---- sizes -------------------------------------------------------------------- */

static size_t pick_size(model *m) {
    size_t r = below(m, 1000);
    if (r < 40) return 0;
    if (r < 400) return 1 + below(m, 64);
    if (r < 620) return 65 + below(m, 1024 - 64);
    if (r < 740) return 1025 + below(m, MHI_SMALL_SIZE_MAX - 1024);
    if (r < 870) { /* a class's size, one less or one more */
        size_t c = 1 + below(m, MHI_NUM_CLASSES - 1);
        size_t s = mhi_class_size[c] + below(m, 3);
        return s - 1;
    }
    if (r < 940) return MHI_SMALL_SIZE_MAX + 1 + below(m, DELAY_MIN - MHI_SMALL_SIZE_MAX);
    if (r < 990) { /* around the smallest block held back when freed: 31..33 pages */
        size_t s = DELAY_MIN - MH_PAGE_SIZE + below(m, 2 * MH_PAGE_SIZE + 1);
        return below(m, 4) ? s : DELAY_MIN + below(m, 3) - 1;
    }
    return DELAY_MIN + below(m, BIG_MAX - DELAY_MIN);
}

/* An alignment for the aligned calls: mostly 32 B .. 8 KiB, some larger. */
static size_t pick_align(model *m) {
    size_t r = below(m, 100);
    if (r < 10) return (size_t)8 << below(m, 2);    /* 8, 16: plain malloc */
    if (r < 85) return (size_t)32 << below(m, 9);   /* 32 .. 8 KiB */
    return (size_t)16384 << below(m, 7);            /* 16 KiB .. 1 MiB */
}

/* Sizes that must fail (above PTRDIFF_MAX). */
static size_t huge_size(model *m) {
    switch (below(m, 4)) {
    case 0: return SIZE_MAX;
    case 1: return (size_t)PTRDIFF_MAX + 1;
    case 2: return SIZE_MAX - below(m, 1 << 20);
    default: return (size_t)PTRDIFF_MAX + 1 + (next64(m) >> 2);
    }
}

/* ---- checks on a new block ---------------------------------------------------- */

/* A new block of `size` bytes (aligned to `align`, at least 16): check it,
 * enter it, write its pattern.  zero: calloc's, its bytes must read zero. */
static int32_t took(model *m, void *p, size_t size, size_t align, int zero, const char *what) {
    blk tmp = {.addr = (uintptr_t)p, .size = size, .align = align};
    if (!p) fail(m, &tmp, "%s returned NULL (errno %d)", what, errno);
    size_t want_align = align > 16 ? align : 16;
    if ((uintptr_t)p & (want_align - 1)) fail(m, &tmp, "%s: not aligned to %zu", what, want_align);
    size_t usable = mh_usable_size(p);
    tmp.usable = usable;
    if (usable < size) fail(m, &tmp, "%s: usable size below the size asked for", what);
    if (zero) {
        const unsigned char *c = p;
        for (size_t j = 0; j < size; j++)
            if (c[j]) fail(m, &tmp, "%s: byte %zu is %#x, not 0", what, j, c[j]);
    }
    int32_t i = model_add(m, p, size, usable, align > 16 ? align : 16, next64(m));
    write_pattern(&m->b[i], 0, usable);
    m->allocs++;
    return i;
}

/* A failing call: NULL and this errno. */
static void failed(model *m, void *p, int err, int want, const char *what) {
    blk tmp = {.addr = (uintptr_t)p};
    if (p) fail(m, &tmp, "%s: a block where the call must fail", what);
    if (err != want) fail(m, NULL, "%s: errno %d, not %d", what, err, want);
    m->failed++;
}

/* ---- operations --------------------------------------------------------------- */

static void op_malloc(model *m) {
    size_t size = pick_size(m);
    took(m, mh_malloc(size), size, 16, 0, "mh_malloc");
}

static void op_calloc(model *m) {
    size_t size = pick_size(m);
    size_t n, each;
    switch (below(m, 6)) {
    case 0: n = 1, each = size; break;
    case 1: n = size, each = 1; break;
    case 2: n = 0, each = size; break;
    case 3: n = size, each = 0; break;
    default:
        n = 1 + below(m, 16);
        each = size / n;
        break;
    }
    took(m, mh_calloc(n, each), n * each, 16, 1, "mh_calloc");
}

static void op_aligned(model *m) {
    size_t align = pick_align(m);
    size_t size = pick_size(m);
    if (size > ((size_t)1 << 20) && below(m, 2)) size = below(m, 1 << 20); /* (keep the bytes down) */
    if (below(m, 2)) {
        took(m, mh_aligned_alloc(align, size), size, align, 0, "mh_aligned_alloc");
    } else {
        void *out = NULL;
        int rc = mh_posix_memalign(&out, align, size);
        if (rc) {
            blk tmp = {.size = size, .align = align};
            fail(m, &tmp, "mh_posix_memalign returned %d", rc);
        }
        took(m, out, size, align, 0, "mh_posix_memalign");
    }
}

/* Check a block whole and take it out of the model, before freeing it. */
static blk leave(model *m, int32_t i, const char *when) {
    blk b = m->b[i];
    check_pattern(m, &b, 0, b.size, when);
    model_remove(m, i);
    return b;
}

/* Free one block, unsized or sized (the size asked for, the usable size
 * or one between). */
static void free_block(model *m, int32_t i) {
    blk b = leave(m, i, "before free");
    size_t r = below(m, 8);
    if (r < 3) {
        mh_free((void *)b.addr);
        m->frees++;
        return;
    }
    size_t s;
    if (r < 5) s = b.size;
    else if (r < 6) s = b.usable;
    else s = b.size + below(m, b.usable - b.size + 1);
    if (b.align > 16) mh_free_aligned_sized((void *)b.addr, b.align, s);
    else if (below(m, 4) == 0) mh_free_aligned_sized((void *)b.addr, below(m, 2) ? 16 : 8, s);
    else mh_free_sized((void *)b.addr, s);
    m->sized_frees++;
}

static void op_free(model *m) {
    int32_t i = pick_block(m);
    if (i >= 0) free_block(m, i);
}

/* Free many blocks in a row (stashes fill and flush, spans empty). */
static void op_free_many(model *m) {
    size_t n = 1 + below(m, 600);
    for (size_t k = 0; k < n && m->nlive; k++) free_block(m, pick_block(m));
}

/* Many blocks of one size in a row (spans fill up, new spans). */
static void op_burst(model *m) {
    size_t c = 1 + below(m, 40);
    size_t n = 1 + below(m, 700);
    for (size_t k = 0; k < n && !model_full(m); k++) {
        size_t size = mhi_class_size[c] - below(m, 16);
        took(m, mh_malloc(size), size, 16, 0, "mh_malloc (a burst)");
    }
}

/* realloc, realloc(NULL, n), realloc(p, 0), reallocarray, and sizes that
 * must fail leaving the block as it was. */
static void op_realloc(model *m) {
    int32_t i = pick_block(m);
    size_t r = below(m, 100);
    if (i < 0 || r < 5) {
        size_t size = pick_size(m);
        took(m, mh_realloc(NULL, size), size, 16, 0, "mh_realloc(NULL, size)");
        return;
    }
    blk old = m->b[i];
    check_pattern(m, &old, 0, old.size, "before realloc");
    if (r < 9) {
        size_t n = (size_t)1 << (32 + below(m, 16)), each = ((size_t)1 << 48) + below(m, 1000);
        errno = 0;
        void *q = r < 7 ? mh_realloc((void *)old.addr, huge_size(m)) : mh_reallocarray((void *)old.addr, n, each);
        failed(m, q, errno, ENOMEM, r < 7 ? "mh_realloc to a huge size" : "mh_reallocarray overflowing");
        check_pattern(m, &old, 0, old.usable, "after a realloc that failed");
        if (mh_usable_size((void *)old.addr) != old.usable)
            fail(m, &old, "a realloc that failed changed the usable size");
        return;
    }
    if (r < 12) { /* realloc(p, 0) frees p and returns NULL */
        model_remove(m, i);
        void *q = mh_realloc((void *)old.addr, 0);
        if (q) fail(m, &old, "mh_realloc(p, 0) returned %p, not NULL", q);
        m->frees++;
        return;
    }
    size_t size;
    if (r < 40) size = old.size + below(m, old.size / 2 + 64); /* grow a little */
    else if (r < 55) size = old.size / (2 + below(m, 3));       /* shrink */
    else if (r < 62) size = old.size + below(m, old.usable - old.size + 1) ; /* within */
    else size = pick_size(m);
    if (size == 0) size = 1;
    void *q;
    if (r >= 90) {
        size_t n = 1 + below(m, 8);
        size = size / n * n;
        if (size == 0) size = n;
        q = mh_reallocarray((void *)old.addr, n, size / n);
    } else {
        q = mh_realloc((void *)old.addr, size);
    }
    if (!q) fail(m, &old, "mh_realloc to %zu returned NULL", size);
    model_remove(m, i);
    blk nb = {.addr = (uintptr_t)q, .size = size, .align = 16, .seed = old.seed};
    if ((uintptr_t)q & 15) fail(m, &nb, "mh_realloc: not aligned to 16");
    nb.usable = mh_usable_size(q);
    if (nb.usable < size) fail(m, &nb, "mh_realloc: usable size below the size asked for");
    size_t keep = old.size < size ? old.size : size;
    check_pattern(m, &nb, 0, keep, q == (void *)old.addr ? "after realloc in place" : "after realloc moved it");
    int32_t j = model_add(m, q, size, nb.usable, 16, old.seed);
    write_pattern(&m->b[j], keep, nb.usable);
    m->reallocs++;
    if (q != (void *)old.addr) m->moved++;
}

/* Calls that must fail and change nothing. */
static void op_fail(model *m) {
    mh_stats_t a, b;
    int alone = m->slot < 0;
    /* (trim passes before the first snapshot and after the second: one
     * that overlapped the call may have changed the heap itself, giving
     * free spans back, and then the heap is not compared) */
    uint64_t started = mhi_cache_trim_passes(), ended = mhi_cache_trim_passes_done();
    if (alone) mh_stats_get(&a, sizeof a);
    void *p = NULL;
    int want = ENOMEM, null_ok = 0;
    const char *what;
    errno = 0;
    switch (below(m, 7)) {
    case 0: p = mh_malloc(huge_size(m)), what = "mh_malloc of a huge size"; break;
    case 1: {
        size_t n = (size_t)1 << (33 + below(m, 20));
        p = mh_calloc(n, (SIZE_MAX / n) + 1 + below(m, 100)), what = "mh_calloc overflowing";
        break;
    }
    case 2: p = mh_calloc(1, huge_size(m)), what = "mh_calloc of a huge size"; break;
    case 3: p = mh_aligned_alloc(pick_align(m), huge_size(m)), what = "mh_aligned_alloc of a huge size"; break;
    case 4: {
        size_t align = pick_align(m);
        p = mh_aligned_alloc(align + 1 + below(m, align - 1), 64);
        what = "mh_aligned_alloc with an alignment not a power of two";
        want = EINVAL;
        break;
    }
    case 5: { /* posix_memalign returns the error and leaves errno and *out */
        static const size_t bad[] = {0, 1, 2, 4, 24, 48, 96, 1000, 4097};
        void *out = &out;
        int rc;
        if (below(m, 2)) {
            rc = mh_posix_memalign(&out, bad[below(m, sizeof bad / sizeof bad[0])], 64);
            what = "mh_posix_memalign with a bad alignment";
            want = EINVAL;
        } else {
            rc = mh_posix_memalign(&out, pick_align(m), huge_size(m));
            what = "mh_posix_memalign of a huge size";
        }
        if (rc != want) fail(m, NULL, "%s returned %d, not %d", what, rc, want);
        if (out != &out) fail(m, NULL, "%s wrote *out", what);
        want = 0; /* (errno as it was) */
        break;
    }
    default: /* NULL: nothing to free, no usable bytes */
        mh_free(NULL);
        mh_free_sized(NULL, below(m, 100));
        mh_free_aligned_sized(NULL, pick_align(m), below(m, 100));
        if (mh_usable_size(NULL) != 0) fail(m, NULL, "mh_usable_size(NULL) is not 0");
        what = "freeing NULL";
        want = 0;
        null_ok = 1;
        break;
    }
    if (!null_ok) failed(m, p, errno, want, what);
    if (alone) {
        mh_stats_get(&b, sizeof b);
        bool quiet = started == ended && mhi_cache_trim_passes() == started;
        if (quiet && (a.heap_inuse != b.heap_inuse || a.heap_sys != b.heap_sys || a.nspan_inuse != b.nspan_inuse ||
            a.reserved != b.reserved))
            fail(m, NULL, "%s changed the heap: heap_inuse %llu -> %llu, heap_sys %llu -> %llu, "
                          "spans %llu -> %llu, reserved %llu -> %llu",
                 what, (unsigned long long)a.heap_inuse, (unsigned long long)b.heap_inuse,
                 (unsigned long long)a.heap_sys, (unsigned long long)b.heap_sys,
                 (unsigned long long)a.nspan_inuse, (unsigned long long)b.nspan_inuse,
                 (unsigned long long)a.reserved, (unsigned long long)b.reserved);
    }
}

/* The usable size stays what it was; the pattern is whole. */
static void op_look(model *m) {
    int32_t i = pick_block(m);
    if (i < 0) return;
    const blk *b = &m->b[i];
    size_t u = mh_usable_size((void *)b->addr);
    if (u != b->usable) fail(m, b, "mh_usable_size now %zu", u);
    glance(m, b, "looking");
}

static void op_trim(model *m) {
    m->trims++;
    if (below(m, 2)) (void)mh_trim();
    else (void)mh_release_memory();
}

static void verify(model *m) {
    m->verifies++;
    size_t n = mh_heap_verify();
    if (n) fail(m, NULL, "mh_heap_verify found %zu errors", n);
    for (int k = 0; k < 8; k++) {
        int32_t i = pick_block(m);
        if (i >= 0) glance(m, &m->b[i], "at a verify");
    }
}

/* ---- the threaded mode's mailboxes ---------------------------------------------- */

typedef struct mailbox {
    pthread_mutex_t lock;
    blk item[MAILBOX_MAX];
    int n;
} mailbox;

static model models[MAXSLOTS + 1]; /* [MAXSLOTS]: the one-thread mode's */
static mailbox boxes[MAXSLOTS];
static int nslots;

/* Hand a block to another slot (it leaves this model under the lock). */
static void op_send(model *m) {
    int32_t i = pick_block(m);
    if (i < 0 || nslots < 2) return;
    int to = (int)below(m, (size_t)nslots - 1);
    if (to >= m->slot) to++;
    mailbox *mb = &boxes[to];
    pthread_mutex_lock(&mb->lock);
    if (mb->n < MAILBOX_MAX) {
        blk b = leave(m, i, "before handing it on");
        mb->item[mb->n++] = b;
        m->sent++;
    }
    pthread_mutex_unlock(&mb->lock);
}

/* Take what other threads handed to this slot: each block is checked and
 * enters this model (and some are freed at once: other threads' blocks). */
static void op_receive(model *m) {
    mailbox *mb = &boxes[m->slot];
    pthread_mutex_lock(&mb->lock);
    while (mb->n && !model_full(m)) {
        blk b = mb->item[--mb->n];
        check_pattern(m, &b, 0, b.usable, "handed from another thread");
        size_t u = mh_usable_size((void *)b.addr);
        if (u != b.usable) fail(m, &b, "mh_usable_size in another thread: %zu", u);
        model_add(m, (void *)b.addr, b.size, b.usable, b.align, b.seed);
        m->received++;
    }
    pthread_mutex_unlock(&mb->lock);
    size_t n = below(m, 8);
    for (size_t k = 0; k < n && m->nlive; k++) free_block(m, m->live[m->nlive - 1]); /* the newest */
}

/* ---- the engine ---------------------------------------------------------------------- */

static void step(model *m) {
    if (model_full(m)) { /* free instead of allocating */
        size_t n = 1 + below(m, 64);
        for (size_t k = 0; k < n && m->nlive; k++) free_block(m, pick_block(m));
        return;
    }
    size_t r = below(m, 1000);
    if (r < 300) op_malloc(m);
    else if (r < 360) op_calloc(m);
    else if (r < 420) op_aligned(m);
    else if (r < 430) op_burst(m);
    else if (r < 560) op_realloc(m);
    else if (r < 740) op_free(m);
    else if (r < 745) op_free_many(m);
    else if (r < 760) op_fail(m);
    else if (r < 790) op_look(m);
    else if (r < 791) op_trim(m);
    else if (m->slot >= 0 && r < 850) op_send(m);
    else if (m->slot >= 0 && r < 900) op_receive(m);
    else op_malloc(m);
}

static void run_ops(model *m, size_t ops) {
    for (size_t n = 0; n < ops && !done(); n++) {
        m->op++;
        step(m);
        if (m->op % VERIFY_EVERY == 0) verify(m);
    }
}

/* Check and free every block of a model. */
static void free_all(model *m) {
    while (m->nlive) free_block(m, m->live[m->nlive - 1]);
}

static uint64_t inuse_now(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    return st.heap_inuse;
}

#ifndef MHEAP_MALLOC_FUZZ
static void add_counts(model *sum, const model *m) {
    sum->allocs += m->allocs;
    sum->frees += m->frees;
    sum->sized_frees += m->sized_frees;
    sum->reallocs += m->reallocs;
    sum->moved += m->moved;
    sum->failed += m->failed;
    sum->verifies += m->verifies;
    sum->sent += m->sent;
    sum->received += m->received;
    sum->trims += m->trims;
    sum->checked_bytes += m->checked_bytes;
    sum->op += m->op;
}

static void print_counts(const char *mode, const model *s) {
    printf("%s: %lu operations: %lu allocations, %lu frees, %lu sized frees, %lu reallocs (%lu moved), "
           "%lu calls that failed as they must, %lu verifies, %lu trims, %lu blocks handed on (%lu "
           "taken), %llu MiB checked\n",
           mode, s->op, s->allocs, s->frees, s->sized_frees, s->reallocs, s->moved, s->failed,
           s->verifies, s->trims, s->sent, s->received, (unsigned long long)(s->checked_bytes >> 20));
}

/* ---- the threaded mode ------------------------------------------------------------- */

typedef struct slot_run {
    int slot;
    size_t ops;
    int how_to_leave;
} slot_run;

static void *slot_thread(void *arg) {
    slot_run *sr = arg;
    model *m = &models[sr->slot];
    run_ops(m, sr->ops);
    verify(m);
    switch (sr->how_to_leave) {
    case 0: free_all(m); break;                /* leave nothing */
    case 1:                                    /* hand most blocks on */
        for (int k = 0; k < 200; k++) op_send(m);
        break;
    default: break;                            /* the slot's next thread has them */
    }
    return NULL;
}

static model plan_model; /* the threaded mode's plan: slots, run lengths */

static void run_threads(uint64_t seed, size_t total_ops, int want_slots) {
    model *plan = &plan_model;
    model_init(plan, -1, seed ^ 0x7468726561647321u);
    nslots = want_slots ? want_slots : 2 + (int)below(plan, MAXSLOTS - 1);
    for (int s = 0; s < nslots; s++) {
        model_init(&models[s], s, seed + 0x1000u * (uint64_t)(s + 1));
        models[s].cap = MODEL_BYTES_MAX / (size_t)nslots;
        pthread_mutex_init(&boxes[s].lock, NULL);
        boxes[s].n = 0;
    }
    (void)mh_trim();
    uint64_t base = inuse_now();
    size_t per_slot = total_ops / (size_t)nslots;
    size_t gens = 6; /* threads per slot, one after the other */
    slot_run runs[MAXSLOTS];
    pthread_t tid[MAXSLOTS];
    size_t left[MAXSLOTS];
    int started = 0;
    for (int s = 0; s < nslots; s++) left[s] = gens;
    /* Start every slot, then join them in turn and start the next thread of
     * each slot at once, while the others run. */
    for (int s = 0; s < nslots; s++) {
        runs[s] = (slot_run){s, per_slot / gens / 2 + below(plan, per_slot / gens + 1), (int)below(plan, 3)};
        if (pthread_create(&tid[s], NULL, slot_thread, &runs[s])) fail(plan, NULL, "pthread_create");
        left[s]--;
        started++;
    }
    for (int active = nslots; active;) {
        for (int s = 0; s < nslots; s++) {
            if (!tid[s]) continue;
            pthread_join(tid[s], NULL);
            tid[s] = 0;
            active--;
            if (left[s]) {
                left[s]--;
                int last = left[s] == 0;
                runs[s] = (slot_run){s, per_slot / gens / 2 + below(plan, per_slot / gens + 1),
                                     last ? 0 : (int)below(plan, 3)};
                if (pthread_create(&tid[s], NULL, slot_thread, &runs[s])) fail(plan, NULL, "pthread_create");
                active++;
                started++;
            }
        }
    }
    /* Everything left, in models and mailboxes, is freed by this thread. */
    for (int s = 0; s < nslots; s++) {
        model *me = &models[s];
        while (boxes[s].n || me->nlive) {
            op_receive(me);
            free_all(me);
        }
    }
    model sum;
    memset(&sum, 0, sizeof sum);
    for (int s = 0; s < nslots; s++) add_counts(&sum, &models[s]);
    char mode[64];
    snprintf(mode, sizeof mode, "%d slots, %d threads", nslots, started);
    print_counts(mode, &sum);
    fflush(stdout);
    if ((total_ops >= 1000 && sum.sent == 0) || sum.received != sum.sent) fail(plan, NULL, "%lu blocks handed on, %lu taken", sum.sent, sum.received);
    size_t n = mh_heap_verify();
    if (n) fail(plan, NULL, "mh_heap_verify found %zu errors after the threads", n);
    /* The background thread may be flushing a cache the exited threads
     * parked, off the parked list while it does (mh_trim then cannot see
     * it): trim again until what it holds is back, for up to 2 s. */
    uint64_t end = 0;
    for (int tries = 0; tries < 100; tries++) {
        (void)mh_trim();
        if ((end = inuse_now()) <= base) break;
        usleep(20000);
    }
    printf("threads: heap_inuse %llu at the start, %llu at the end\n", (unsigned long long)base,
           (unsigned long long)end);
    fflush(stdout);
    CHECK(end <= base);
    CHECK_EQ(mh_heap_verify(), 0);
}

#endif

/* ---- the one-thread mode --------------------------------------------------------- */

#ifdef MHEAP_MALLOC_FUZZ
static uint64_t fuzz_base;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int first = 1;
    if (first) {
        (void)mh_trim();
        fuzz_base = inuse_now();
        first = 0;
    }
    fuzz_mode = 1;
    fuzz_data = data;
    fuzz_len = size;
    fuzz_pos = 0;
    model *m = &models[MAXSLOTS];
    model_init(m, -1, 0);
    run_ops(m, SIZE_MAX);
    verify(m);
    free_all(m);
    (void)mh_trim();
    uint64_t end = inuse_now();
    if (end > fuzz_base) fail(m, NULL, "heap_inuse %llu after freeing everything, %llu before",
                              (unsigned long long)end, (unsigned long long)fuzz_base);
    return 0;
}
#else
int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x6d616c6c6f63ULL;
    size_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : DEFAULT_OPS;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    run_seed = seed;
    printf("seed %#llx (test_malloc_model SEED [OPS [THREADS]] replays it)\n", (unsigned long long)seed);

    if (threads <= 1) {
        (void)mh_trim();
        uint64_t base = inuse_now();
        model *m = &models[MAXSLOTS];
        model_init(m, -1, seed);
        run_ops(m, ops);
        verify(m);
        print_counts("one thread", m);
        if (ops >= 1000) {
            CHECK(m->allocs > ops / 4);
            CHECK(m->failed > 0);
        }
        free_all(m);
        CHECK_EQ(mh_heap_verify(), 0);
        (void)mh_trim();
        uint64_t end = inuse_now();
        printf("one thread: heap_inuse %llu at the start, %llu at the end\n", (unsigned long long)base,
               (unsigned long long)end);
        fflush(stdout);
        CHECK(end <= base);
    }
    if (threads != 1) run_threads(seed, ops, threads >= 2 && threads <= MAXSLOTS ? threads : 0);
    return check_done("test_malloc_model");
}
#endif
