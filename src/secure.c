/* secure.c - the secure build's layer (secure.h), compiled only into
 * libmheap-secure (MHEAP_SECURE=1).  It wraps the core's entry points;
 * the core below is the default build's, with three hooks: a fresh
 * small-object span is set up here (guard page, shuffled free list), the
 * page heap calls mhi_secure_unguard when a guarded span comes back, and
 * process.c installs the fault handler at load.
 *
 * ---- A block ----
 * A request of size bytes takes a slot that holds size + 9: the class of
 * size + 9, or for more than MHI_SMALL_SIZE_MAX whole pages and one more,
 * the guard page.  No header: the block starts the slot, so alignment and
 * the core's pointer checks stay as they are.  The slot's last 8 bytes
 * (its trailer word) hold size ^ key, key = mix(address ^ secret) ^
 * secret.  A slot's cap, what may be written before the trailer word, is
 * its size less 8.  The 8 bytes from size on are the canary word (where
 * fewer are left before the trailer word, its last word before it, the
 * canary bytes being those from size on): byte size + j is byte j of
 * key | 0x80...80, never a zero or an ASCII byte, so a stray terminating
 * NUL or character is caught.  One word, read or written with one access.
 *
 * ---- Checks ----
 * free, realloc, free_sized and malloc_usable_size decode the trailer
 * word (a size above the cap: "heap overflow") and check the canary bytes
 * and the slack after them, zero ("heap overflow"); free also looks at the
 * slot before a small block (when that slot's trailer word shares the
 * block's first cache line, or the slot has 1 KiB or more): the word
 * must be zero (a free slot), its free mark, or a valid word
 * of the block there with its canary bytes intact ("heap underflow" for
 * the word, "heap overflow" at that block for its canary bytes); from
 * 1 KiB the slot's last line too must be zero past what a block there
 * holds ("heap underflow").
 * A freed small block is zeroed whole and marked free; malloc finds the
 * slot zero past the free-list words (all of a slot up to
 * CHECK_WHOLE_MAX bytes, the first and last CHECK_EDGE bytes of a larger
 * one) or reports "write after free".  So malloc returns zeroed memory
 * (fresh spans are zeroed when their pages may hold old data; large
 * blocks are taken zeroed from the page heap), unless a write after free
 * into the middle of a larger slot went unseen.  Every second small malloc
 * also looks at the first line of one quarantined block; a block leaving
 * the quarantine has its free-list words checked, and at exit the exiting
 * thread's quarantine is checked whole.
 *
 * ---- Reuse ----
 * Freed small blocks wait in a per-thread quarantine of QUAR_SLOTS slots
 * (and at most QUAR_BYTES bytes): a free puts its block in a random slot
 * and sends the one there, if any, on to the core, so a block waits
 * QUAR_SLOTS frees on average and is never the next to go.  A fresh span
 * links its objects in a random order.  A freed large block is made
 * PROT_NONE (and decommitted from LQUAR_DECOMMIT_MIN bytes on), and waits
 * in a global FIFO (LQUAR_SLOTS blocks, LQUAR_BYTES bytes) before its
 * pages go back to the page heap.
 *
 * ---- Faults ----
 * The SIGSEGV / SIGBUS handler (installed at load, chaining: a fault that
 * is not mheap's, or a signal sent by kill or raise, goes to the handler
 * it replaced, called with the same arguments, and mheap's stays in place;
 * under SIG_DFL or SIG_IGN that disposition is put back so the kernel's
 * action follows) names an instruction fetch from the heap,
 * a touch of a guard page and a touch of a quarantined large block.  It
 * reads only the arena map and span fields (lock-free, as the free fast
 * path does) and prints with write(2) (print.c). */
#define _GNU_SOURCE
#include "secure.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "arena.h"
#include "cache.h"
#include "malloc.h"
#include "pageheap.h"
#include "print.h"

/* Fences order the trailer word against the block's other bytes for
 * threads that read a neighbour's.  GCC's ThreadSanitizer build rejects
 * atomic_thread_fence (-Wtsan); the secure build is not run under it
 * (tests/secure.cmake), so there a compiler barrier stands in. */
#if defined(__SANITIZE_THREAD__)
#define sec_fence(mo) atomic_signal_fence(mo)
#else
#define sec_fence(mo) atomic_thread_fence(mo)
#endif

#define TRAILER 8u
#define CANARY_HIGH 0x8080808080808080ULL
/* Reuse of a small slot checks all of it up to this size, else its
 * first and last CHECK_EDGE bytes (reuse_ok). */
#ifndef CHECK_WHOLE_MAX
#define CHECK_WHOLE_MAX 1024u
#endif
#define CHECK_EDGE 128u
/* free checks up to this many bytes of a block's slack: what lies between
 * its canary word and its trailer word, zero unless something wrote
 * there (a byte written past the canary bytes, not through them). */
#define SLACK_CHECK_MAX 4096u
/* ... and realloc and malloc_usable_size, which a program may call on one
 * block again and again (a buffer grown a few bytes at a time; Redis asks
 * the usable size at every allocation and free), this many: where an
 * overflow past the canary word lands first.  The block's free checks the
 * rest. */
#define SLACK_CHECK_QUICK 64u
/* From this slot size on (multiples of 64: the slot before's trailer word
 * is never on a block's first line), free reads the end of the slot
 * before even though it is one more line: it zeroes 16 lines and more of
 * its own. */
#define BEFORE_ALWAYS_MIN 1024u
#define QUAR_SLOTS 64 /* (quar_rand takes 6 bits) */
#define QUAR_BYTES ((size_t)256 << 10)
#define LQUAR_SLOTS 32
#define LQUAR_BYTES ((size_t)32 << 20)
/* Freed large blocks this big are also decommitted; smaller ones keep
 * their pages (at most LQUAR_BYTES of them in all), as refaulting them
 * cost 7x on the realloc workload and 5x on wl-large against zeroing them
 * when reused (docs/benchmarks.md); a block that does not fit would
 * stay resident alone, past that bound, until the next free. */
#define LQUAR_DECOMMIT_MIN (LQUAR_BYTES + 1)

static uint64_t secret;        /* set once, before any block exists */
static _Atomic int sec_state;  /* 0: not set up; 1: being set up; 2: done */
static _Atomic uint64_t sec_counter;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The secret, drawn on first use (a fresh span may be set up before the
 * rest of the initialisation has run, from its own malloc). */
static uint64_t get_secret(void) {
    uint64_t s = __atomic_load_n(&secret, __ATOMIC_RELAXED);
    if (MHI_LIKELY(s != 0)) return s;
    uint64_t r = mhi_os_random64() | 1, zero = 0;
    if (__atomic_compare_exchange_n(&secret, &zero, r, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return r;
    return zero;
}

/* A random number (not for secrets: the secret is mixed in). */
static uint64_t rnd(void) {
    return mix64(get_secret() ^ atomic_fetch_add_explicit(&sec_counter, 0x9e3779b97f4a7c15ULL,
                                                          memory_order_relaxed));
}

/* A block's key.  (mix64 alone can be inverted: a key read back through
 * an overflow would give the secret away; the last xor keeps it out.) */
static inline uint64_t key_of(uintptr_t p) { return mix64(p ^ secret) ^ secret; }

/* ---- the per-thread quarantine ---- */

_Static_assert(QUAR_SLOTS == 64, "quar_rand and quar_probe take 6 bits");

typedef struct {
    size_t bytes;    /* the slots' bytes of the blocks waiting */
    uint64_t rng;
    uint32_t probe;  /* mallocs counted for quar_probe (slot: half of it) */
    void *blk[QUAR_SLOTS];     /* a waiting block, or NULL */
    mhi_span *span[QUAR_SLOTS]; /* its span */
    uint32_t size[QUAR_SLOTS]; /* its slot's bytes, or 0 */
} quarantine;

static __thread quarantine *tls_quar __attribute__((tls_model("initial-exec")));
static __thread bool tls_quar_dead __attribute__((tls_model("initial-exec")));
static unsigned quar_key;
static bool quar_key_ok;

/* ---- the large quarantine (a FIFO) ---- */

static mhi_lock_t lquar_lock = MHI_LOCK_INIT(MHI_RANK_NONE); /* no other lock inside */
static mhi_span *lquar[LQUAR_SLOTS];
static uint32_t lquar_head, lquar_n;
static size_t lquar_bytes;

static void quar_thread_exit(void *arg);

static __thread bool tls_initing __attribute__((tls_model("initial-exec")));

void mhi_secure_init(void) {
    if (MHI_LIKELY(atomic_load_explicit(&sec_state, memory_order_acquire) == 2) || tls_initing)
        return; /* (a malloc from inside the set-up goes on) */
    int expect = 0;
    if (!atomic_compare_exchange_strong(&sec_state, &expect, 1)) {
        while (atomic_load_explicit(&sec_state, memory_order_acquire) != 2) mhi_os_yield();
        return;
    }
    tls_initing = true;
    (void)get_secret();
    mhi_malloc_init();
    quar_key_ok = mhi_os_key_new(&quar_key, quar_thread_exit);
    (void)mhi_os_fault_install(mhi_secure_fault_handler);
    tls_initing = false;
    atomic_store_explicit(&sec_state, 2, memory_order_release);
}

static inline void sec_ready(void) {
    if (MHI_UNLIKELY(atomic_load_explicit(&sec_state, memory_order_acquire) != 2))
        mhi_secure_init();
}

/* ---- trailers and canaries ---- */

static inline uint64_t *trailer_of(const void *p, size_t slot) {
    return (uint64_t *)((char *)p + slot - TRAILER);
}

/* The canary word of a block of size bytes in a slot whose cap is cap
 * (size < cap): the 8 bytes from size on, or where fewer than 8 are left
 * before the trailer word, the last word before it, [cap - 8, cap), whose
 * bytes below size are the block's.  *shift: the bits of the word below
 * size (0 when the word starts at size).  (No branch: free decides it on
 * the size it has just read from a trailer word that may be a cache miss,
 * and a mispredicted branch there would wait for it.) */
static inline size_t canary_at(size_t size, size_t cap, unsigned *shift) {
    size_t at = size < cap - 8 ? size : cap - 8;
    *shift = (unsigned)(size - at) * 8;
    return at;
}

/* Write the canary bytes of a block of size bytes in a slot of cap: byte
 * size + j is byte j of key | CANARY_HIGH (never zero nor ASCII, so a
 * stray NUL or character is caught).  One word, so each malloc and free
 * reads or writes the canary bytes with one access.  fresh: the block's
 * bytes below size in that word are zero (a block malloc hands out), so
 * the word is not read first (it may be a line not yet in the cache). */
static inline void canary_put(void *p, size_t size, size_t cap, uint64_t key, bool fresh) {
    unsigned sh;
    char *at = (char *)p + canary_at(size, cap, &sh);
    uint64_t w = 0;
    if (!fresh && sh) memcpy(&w, at, 8); /* (a word all canary is not read either) */
    w = (w & ((1ULL << sh) - 1)) | ((key | CANARY_HIGH) << sh); /* (the block's bytes below size kept) */
    memcpy(at, &w, 8);
}

static inline bool canary_ok(const void *p, size_t size, size_t cap, uint64_t key) {
    unsigned sh;
    const char *at = (const char *)p + canary_at(size, cap, &sh);
    uint64_t w;
    memcpy(&w, at, 8);
    return ((w ^ ((key | CANARY_HIGH) << sh)) >> sh) == 0;
}

/* Trailer words are read by the freer of the next slot (check_before),
 * whoever owns this one: atomic loads and stores, and fences that order
 * them with the canary bytes (written before a word is, zeroed after). */
static inline uint64_t trailer_load(const void *p, size_t slot) {
    return __atomic_load_n(trailer_of(p, slot), __ATOMIC_RELAXED);
}
static inline void trailer_store(void *p, size_t slot, uint64_t w) {
    __atomic_store_n(trailer_of(p, slot), w, __ATOMIC_RELAXED);
}

/* Give block p (in a slot of `slot` bytes) its trailer for size (fresh:
 * as canary_put). */
static inline void trailer_set(void *p, size_t slot, size_t size, bool fresh) {
    uint64_t key = key_of((uintptr_t)p);
    canary_put(p, size, slot - TRAILER, key, fresh);
    sec_fence(memory_order_release);
    trailer_store(p, slot, size ^ key);
}

/* ---- zeroed slots ----
 * Slots and the offsets below are multiples of 16 (every class size is),
 * so 16-byte vector loads cover them without a tail.  (free zeroes a
 * slot with memset, whose stores are wider: 16-byte stores measured no
 * faster on wl-pool.) */

typedef uint64_t vec16 __attribute__((vector_size(16), may_alias, aligned(16)));

#define CV16(b, j) (*(const vec16 *)((b) + (j)))

/* Whether bytes [from, to) of p are all zero: 64 bytes a step, the last
 * step ending at to (overlapping the one before); under 64 bytes, the
 * first and last 16 (and the middle ones of 48). */
static inline bool zero16_ok(const void *p, size_t from, size_t to) {
    const char *b = p;
    vec16 acc = {0, 0};
    size_t n = to - from;
    if (MHI_LIKELY(n >= 64)) {
        size_t j = from;
        for (; j + 64 <= to; j += 64)
            acc |= CV16(b, j) | CV16(b, j + 16) | CV16(b, j + 32) | CV16(b, j + 48);
        if (j < to) acc |= CV16(b, to - 64) | CV16(b, to - 48) | CV16(b, to - 32) | CV16(b, to - 16);
    } else if (n) {
        acc = CV16(b, from) | CV16(b, to - 16);
        if (n > 32) acc |= CV16(b, from + 16);
    }
    return (acc[0] | acc[1]) == 0;
}

/* Whether bytes [from, to) of p are all zero (any offsets: large blocks
 * and the double-free test). */
static bool all_zero(const void *p, size_t from, size_t to) {
    const unsigned char *b = p;
    size_t j = from;
    for (; j < to && (j & 7); j++)
        if (b[j]) return false;
    uint64_t acc = 0, w;
    for (; j + 8 <= to; j += 8) {
        memcpy(&w, b + j, 8);
        acc |= w;
    }
    for (; j < to; j++) acc |= b[j];
    return acc == 0;
}

/* What malloc checks of a reused small slot (free zeroed all of it): past
 * the two free-list words, all of a slot up to CHECK_WHOLE_MAX bytes;
 * of a larger one the first and the last CHECK_EDGE bytes, where writes
 * after free land first (a stale pointer to the block's start or its end:
 * tests/misuse).  A larger slot's middle is read by no one but the
 * program, whose next write brings it in anyway. */
static inline bool reuse_ok(const void *p, size_t slot) {
    if (MHI_LIKELY(slot <= CHECK_WHOLE_MAX)) return zero16_ok(p, 16, slot);
    return zero16_ok(p, 16, CHECK_EDGE) && zero16_ok(p, slot - CHECK_EDGE, slot);
}

/* Whether the slack of a block of size bytes in a slot of cap, the bytes
 * from its canary word to its trailer word, is zero, up to max bytes of
 * it from its start.  Every way a block gets its size keeps them zero:
 * slots are zero when handed out, and realloc zeroes what a shrink leaves
 * behind. */
static inline bool slack_ok(const void *p, size_t size, size_t cap, size_t max) {
    size_t from = size + 8;
    if (MHI_LIKELY(from >= cap)) return true;
    size_t to = cap - from > max ? from + max : cap;
    /* Whole words (cap is a multiple of 8), the first one's bytes below
     * from (canary bytes) shifted out. */
    const char *b = p;
    size_t j = from & ~(size_t)7;
    uint64_t w, acc;
    memcpy(&w, b + j, 8);
    acc = w >> (from & 7) * 8;
    for (j += 8; j < to; j += 8) {
        memcpy(&w, b + j, 8);
        acc |= w;
    }
    return acc == 0;
}

/* ---- finding a block ---- */

typedef struct {
    mhi_span *s;
    size_t slot; /* the slot's bytes (trailer word included) */
    size_t size; /* the size asked for */
    bool large;
} blk;

/* blk_find for what the fast lookup does not settle: a small block of a
 * span with released pages, a large block, or no block. */
static MHI_NOINLINE void blk_find_slow(const void *p, blk *b) {
    sec_ready(); /* (only here: a block the fast lookup finds was made after set-up) */
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    if (!s) mhi_heap_bad_free((uintptr_t)p);
    uint8_t kind = mhi_span_kind(s);
    b->s = s;
    if (mhi_kind_small(kind)) {
        (void)mhi_span_check(s, p);
        b->slot = s->elemsize;
        b->large = false;
    } else if (kind == MHI_KIND_LARGE && (uintptr_t)p == s->base) {
        if (__atomic_load_n(&s->guard, __ATOMIC_RELAXED) == MHI_GUARD_FREED)
            mhi_fatal_at("double free", p);
        b->slot = (s->npages - 1) << MHI_PAGE_SHIFT; /* (the last page is the guard) */
        b->large = true;
    } else {
        mhi_fatal_at("invalid pointer", p);
    }
}

/* The slot of a block, checked as free checks a pointer: an object start
 * of a small span or the start of a large one.  (Whether it is free
 * already, its trailer word says: blk_check.  The free mark is not read:
 * on realloc its line would be one more miss.) */
static inline void blk_find(const void *p, blk *b) {
    mhi_span *s = mhi_small_span_fast(p); /* (an object start of a small span) */
    if (MHI_UNLIKELY(s == NULL)) {
        blk_find_slow(p, b);
        return;
    }
    b->s = s;
    b->slot = s->elemsize;
    b->large = false;
}

/* A trailer word that does not decode to a size below the cap: a block
 * free already, or damage.  A free small slot has a zero trailer word
 * (free zeroes the slot; a fresh span's slots are zero) with its
 * free-list words and its free mark in front, or for 16 bytes its mark
 * where the word is; a quarantined large block never gets here
 * (blk_find). */
static MHI_NOINLINE void blk_bad(const void *p, const blk *b, uint64_t w) {
    if (!b->large && (b->slot == 16 ? mhi_free_marked(p) : w == 0 && all_zero(p, 16, b->slot)))
        mhi_fatal_at("double free", p);
    mhi_fatal_at("heap overflow", p);
}

/* Decode and check the trailer and canary bytes of block p (blk_find
 * done), and up to slack_max bytes of its slack; b->size is then the size
 * asked for. */
static inline void blk_check(const void *p, blk *b, size_t slack_max) {
    uint64_t key = key_of((uintptr_t)p), w = *trailer_of(p, b->slot);
    size_t cap = b->slot - TRAILER;
    uint64_t size = w ^ key;
    if (MHI_UNLIKELY(size >= cap)) blk_bad(p, b, w);
    if (MHI_UNLIKELY(!canary_ok(p, size, cap, key) || !slack_ok(p, size, cap, slack_max)))
        mhi_fatal_at("heap overflow", p);
    b->size = size;
}

/* The slot before small block p (free): a free slot has a zero trailer
 * word (or its free mark there, for 16 bytes); a live one has a valid
 * trailer and intact canary bytes. */
/* The word w before p decodes to no size: damage, or another thread
 * changing the slot before p as it was read (for 16 bytes the word is the
 * free mark, which malloc clears and a relink rewrites, so the mark test
 * may have read the slot's other word after the change).  Only a word
 * that reads the same again, on a slot still unmarked, counts. */
static MHI_NOINLINE void underflow_seen(const void *p, const char *q, size_t slot, uint64_t w) {
    sec_fence(memory_order_acquire);
    if (trailer_load(q, slot) != w || (slot == 16 && mhi_free_marked(q))) return;
    mhi_fatal_at("heap underflow", p);
}

/* Bytes of the free slot q before p found non-zero where they must be
 * zero: its tail, on the line of its trailer word (from byte lo).
 * Another thread may be changing q as it was read (a free stores a zero
 * word first and zeroes the slot after, malloc writes new bytes): only
 * damage that reads the same again under the same word, on a slot still
 * marked, counts. */
static MHI_NOINLINE void tail_seen(const void *p, const char *q, size_t slot, uint64_t w,
                                   size_t lo) {
    sec_fence(memory_order_acquire);
    if (trailer_load(q, slot) != w) return;
    bool bad = mhi_free_marked(q) && !zero16_ok(q, lo, slot);
    if (!bad) return;
    sec_fence(memory_order_acquire);
    if (trailer_load(q, slot) == w) mhi_fatal_at("heap underflow", p);
}

/* check_before for a slot of BEFORE_ALWAYS_MIN bytes and more (p is then
 * 64-aligned): the slot's last line, from lo, must also be zero in a free
 * slot and in a live one's slack, where a write below p that passed the
 * trailer word lands. */
static MHI_NOINLINE void check_before_big(const void *p, size_t slot) {
    const char *q = (const char *)p - slot;
    size_t lo = slot - MHI_CACHE_LINE, cap = slot - TRAILER;
    uint64_t w = trailer_load(q, slot);
    if (w == 0) {
        if (MHI_UNLIKELY(!zero16_ok(q, lo, slot))) tail_seen(p, q, slot, w, lo);
        return;
    }
    uint64_t key = key_of((uintptr_t)q), size = w ^ key;
    if (MHI_UNLIKELY(size >= cap)) underflow_seen(p, q, slot, w);
    /* A live slot before p: its word decodes, which is what a write below
     * p damages first.  Its canary bytes and slack are its own free's to
     * check: read here they race with its owner resizing it in place,
     * whose grow and shrink back write the same word again (a second read
     * of an unchanged word cannot tell). */
}

static MHI_ALWAYS_INLINE void check_before(const void *p, const blk *b) {
    const mhi_span *s = b->s;
    if ((uintptr_t)p == s->base) return;
    if (MHI_UNLIKELY(b->slot >= BEFORE_ALWAYS_MIN)) {
        check_before_big(p, b->slot);
        return;
    }
    /* Only where the word shares p's cache line, which free reads anyway:
     * a line more per free costs a miss on a cold block (wl-pool: ~15%).
     * (The end of the slot before, as check_before_big reads it, cost
     * wl-pool about 5% more instructions for these sizes.) */
    if (((uintptr_t)p & (MHI_CACHE_LINE - 1)) < TRAILER) return;
    const char *q = (const char *)p - b->slot;
    uint64_t w = trailer_load(q, b->slot);
    /* (a free slot of 16 bytes has its mark there; a larger one, zero) */
    if (w == 0 || (b->slot == 16 && mhi_free_marked(q))) return;
    uint64_t key = key_of((uintptr_t)q), size = w ^ key;
    if (MHI_UNLIKELY(size >= b->slot - TRAILER)) underflow_seen(p, q, b->slot, w);
    /* (a live slot's canary bytes: as in check_before_big) */
}

/* ---- allocation ---- */

static MHI_NOINLINE void *sec_oom(size_t size) { return mhi_malloc_oom(size); }

/* Every second small malloc looks at one slot of the thread's
 * quarantine, in turn: a block waiting there must still be marked, and
 * its first line zero past the free-list words.  So a write after free is
 * found within 2 * QUAR_SLOTS mallocs even when no free sends the block
 * on to be reused.  (At every malloc the look cost wl-pool about 10%.) */
static inline void quar_probe(void) {
    quarantine *q = tls_quar;
    if (!q) return;
    uint32_t k = q->probe++;
    if (k & 1) return;
    uint32_t i = (k >> 1) & (QUAR_SLOTS - 1);
    const char *b = q->blk[i];
    if (!b) return;
    size_t end = q->size[i] < MHI_CACHE_LINE ? q->size[i] : MHI_CACHE_LINE;
    if (MHI_UNLIKELY(!mhi_free_marked(b) || !zero16_ok(b, 16, end)))
        mhi_fatal_at("write after free", b);
}

/* A small block from class c for size: checked for writes after free and
 * given its trailer. */
static MHI_ALWAYS_INLINE void *small_from(size_t c, size_t size) {
    quar_probe();
    void *p = mhi_cache_alloc(c);
    if (MHI_UNLIKELY(!p)) return sec_oom(size);
    size_t slot = mhi_class_size[c];
    if (MHI_UNLIKELY(!reuse_ok(p, slot))) mhi_fatal_at("write after free", p);
    ((uintptr_t *)p)[0] = 0; /* the free-list link (the core cleared the mark) */
    sec_fence(memory_order_release); /* (unmarked before its bytes change: tail_seen) */
    /* (zero below size where the canary word goes: checked above, all of
     * the slot or its last CHECK_EDGE bytes, or the word starts at size) */
    trailer_set(p, slot, size, true);
    return p;
}

/* A large block of size bytes, with room for `room` (>= size) before its
 * trailer, aligned to align (0: a page). */
static MHI_NOINLINE void *large_alloc(size_t size, size_t room, size_t align) {
    if (room > PTRDIFF_MAX - 2 * MHI_PAGE_SIZE) return sec_oom(size);
    size_t npages = (room + TRAILER + 1 + MHI_PAGE_SIZE - 1) >> MHI_PAGE_SHIFT;
    mhi_span *s;
    mhi_heap_residency res = {0};
    if (align > MHI_PAGE_SIZE) {
        s = align > ((uintptr_t)1 << 40) ? NULL
            : mhi_heap_alloc_aligned(npages + 1, align, MHI_SPAN_INUSE, MHI_KIND_LARGE, true);
    } else {
        s = mhi_heap_alloc_res(npages + 1, MHI_SPAN_INUSE, MHI_KIND_LARGE, true, &res);
    }
    if (!s) return sec_oom(size);
    size_t slot = npages << MHI_PAGE_SHIFT;
    /* (as the default build: all of a block up to 1 MiB resident in one
     * call) */
    if (res.nonresident && slot <= ((size_t)1 << 20)) mhi_os_populate((void *)s->base, slot);
    if (mhi_os_protect((void *)(s->base + slot), MHI_PAGE_SIZE, false))
        __atomic_store_n(&s->guard, (uint8_t)MHI_GUARD_LARGE, __ATOMIC_RELAXED);
    trailer_set((void *)s->base, slot, size, true); /* (pages taken zeroed) */
    return (void *)s->base;
}

static inline void *sec_alloc(size_t size, size_t room) {
    sec_ready();
    if (MHI_LIKELY(room < MHI_SMALL_SIZE_MAX - TRAILER))
        return small_from(mhi_size_class(room + TRAILER + 1), size);
    if (size > PTRDIFF_MAX) return sec_oom(size);
    return large_alloc(size, room, 0);
}

void *mhi_secure_malloc(size_t size) { return sec_alloc(size, size); }

void *mhi_secure_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return sec_oom(SIZE_MAX);
    return sec_alloc(total, total); /* (every block comes zeroed) */
}

void *mhi_secure_malloc_aligned(size_t align, size_t size) {
    if (align <= 16) return mhi_secure_malloc(size);
    sec_ready();
    if (size > PTRDIFF_MAX) return sec_oom(size);
    size_t need = size + TRAILER + 1;
    if (align <= MHI_PAGE_SIZE && need <= MHI_SMALL_SIZE_MAX) {
        /* A class whose size is a multiple of align: its objects are
         * aligned, spans starting on page boundaries. */
        size_t want = (need + align - 1) & ~(align - 1);
        if (want <= MHI_SMALL_SIZE_MAX)
            for (size_t c = mhi_size_class(want); c < MHI_NUM_CLASSES; c++)
                if (mhi_class_size[c] % align == 0) return small_from(c, size);
    }
    return large_alloc(size, size, align < MHI_PAGE_SIZE ? 0 : align);
}

/* ---- free ---- */

/* A quarantined block's free-list words, which the core is about to
 * overwrite: zero and the mark of zero, as free left them (a write after
 * free that reached only them would be lost). */
static inline void quar_word_check(const void *p) {
    const uintptr_t *w = p;
    if (MHI_UNLIKELY(w[0] != 0 || !mhi_free_marked(p))) mhi_fatal_at("write after free", p);
}

/* Block p of span s leaves the quarantine for the core: our mark off
 * (the core marks it again) and onto this thread's stash as free's fast
 * path would (the span is known, and the block checked), or free's own
 * path where the fast one does not take it. */
static MHI_ALWAYS_INLINE void quar_release(mhi_span *s, void *p) {
    quar_word_check(p);
    ((uintptr_t *)p)[1] = 0;
    if (MHI_LIKELY(mhi_span_kind(s) == MHI_KIND_SMALL)) mhi_cache_free_object(s->sizeclass, p);
    else mhi_free(p);
}

static void quar_flush(quarantine *q) {
    for (uint32_t i = 0; i < QUAR_SLOTS; i++)
        if (q->blk[i]) {
            void *p = q->blk[i];
            q->blk[i] = NULL;
            q->bytes -= q->size[i];
            q->size[i] = 0;
            quar_release(q->span[i], p);
        }
}

static void quar_thread_exit(void *arg) {
    quarantine *q = arg;
    tls_quar = NULL;
    tls_quar_dead = true; /* later frees of this thread go straight on */
    if (!q) return;
    quar_flush(q);
    mhi_os_release(q, sizeof *q, NULL);
}

static MHI_NOINLINE quarantine *quar_new(void) {
    if (tls_quar_dead || !quar_key_ok) return NULL;
    quarantine *q = mhi_os_alloc(sizeof *q, NULL);
    if (!q) return NULL;
    q->rng = rnd();
    tls_quar = q;
    mhi_os_key_set(quar_key, q);
    return q;
}

static inline quarantine *quar_get(void) {
    quarantine *q = tls_quar;
    return MHI_LIKELY(q != NULL) ? q : quar_new();
}

/* A random slot of the quarantine (the top bits of a 64-bit LCG). */
static inline uint32_t quar_rand(quarantine *q) {
    q->rng = q->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(q->rng >> 58); /* (QUAR_SLOTS = 64) */
}

/* Over the byte bound after a free into slot keep: random other blocks
 * go on until within it. */
static MHI_NOINLINE void quar_shrink(quarantine *q, uint32_t keep) {
    for (uint32_t i = quar_rand(q), k = 0; k < QUAR_SLOTS && q->bytes > QUAR_BYTES;
         k++, i = (i + 1) & (QUAR_SLOTS - 1)) {
        void *p = q->blk[i];
        if (i == keep || !p) continue;
        q->blk[i] = NULL;
        q->bytes -= q->size[i];
        q->size[i] = 0;
        quar_release(q->span[i], p);
    }
}

static MHI_ALWAYS_INLINE void small_free(void *p, const blk *b) {
    check_before(p, b);
    size_t slot = b->slot;
    trailer_store(p, slot, 0); /* (first: check_before's order) */
    sec_fence(memory_order_release);
    memset(p, 0, slot);
    sec_fence(memory_order_release); /* (a marked slot is zeroed: tail_seen) */
    mhi_mark_free(p);
    quarantine *q = quar_get();
    if (MHI_UNLIKELY(!q)) {
        quar_release(b->s, p);
        return;
    }
    /* p takes a random slot of the quarantine, and the block there, if
     * any, goes on: a block waits QUAR_SLOTS frees on average, and is
     * never the next one to go. */
    uint32_t i = quar_rand(q);
    void *out = q->blk[i];
    mhi_span *os = q->span[i];
    q->bytes += slot - q->size[i];
    q->blk[i] = p;
    q->span[i] = b->s;
    q->size[i] = (uint32_t)slot;
    if (out) quar_release(os, out);
    if (MHI_UNLIKELY(q->bytes > QUAR_BYTES)) quar_shrink(q, i);
}

static MHI_NOINLINE void large_free(void *p, const blk *b) {
    mhi_span *s = b->s;
    size_t bytes = s->npages << MHI_PAGE_SHIFT;
    uint8_t was = __atomic_exchange_n(&s->guard, (uint8_t)MHI_GUARD_FREED, __ATOMIC_RELAXED);
    /* (two frees racing both passed blk_find: the second must not queue
     * the span twice) */
    if (MHI_UNLIKELY(was == MHI_GUARD_FREED)) mhi_fatal_at("double free", p);
    if (bytes >= LQUAR_DECOMMIT_MIN) (void)mhi_os_decommit(p, bytes);
    if (!mhi_os_protect(p, bytes, false)) {
        /* (no quarantine without the protection: freed at once.  A failed
         * mprotect may have changed part of the range, so the guard byte
         * stays FREED and the page heap's hook makes every page of the
         * span accessible again.) */
        mhi_heap_free_released(s, 0);
        return;
    }
    mhi_span *out[LQUAR_SLOTS + 1];
    size_t nout = 0;
    mhi_lock(&lquar_lock);
    while (lquar_n && (lquar_n == LQUAR_SLOTS || lquar_bytes + bytes > LQUAR_BYTES)) {
        mhi_span *t = lquar[lquar_head];
        lquar_head = (lquar_head + 1) % LQUAR_SLOTS;
        lquar_n--;
        lquar_bytes -= t->npages << MHI_PAGE_SHIFT;
        out[nout++] = t;
    }
    lquar[(lquar_head + lquar_n) % LQUAR_SLOTS] = s;
    lquar_n++;
    lquar_bytes += bytes;
    mhi_unlock(&lquar_lock);
    /* Decommitted ones: the heap's first 64 pages are known released. */
    for (size_t i = 0; i < nout; i++) {
        size_t np = out[i]->npages;
        bool dec = (np << MHI_PAGE_SHIFT) >= LQUAR_DECOMMIT_MIN;
        mhi_heap_free_released(out[i], !dec ? 0 : np >= 64 ? ~0ULL : (1ULL << np) - 1);
    }
}

static MHI_ALWAYS_INLINE void blk_free(void *p, const blk *b) {
    if (MHI_UNLIKELY(b->large)) large_free(p, b);
    else small_free(p, b);
}

void mhi_secure_free(void *p) {
    if (MHI_UNLIKELY(!p)) return;
    blk b;
    blk_find(p, &b);
    blk_check(p, &b, SLACK_CHECK_MAX);
    blk_free(p, &b);
}

void mhi_secure_free_sized(void *p, size_t size, size_t align) {
    (void)align;
    if (!p) return;
    blk b;
    blk_find(p, &b);
    blk_check(p, &b, SLACK_CHECK_MAX);
    if (size != b.size) mhi_fatal("size mismatch: %p (size %zu)", p, size);
    blk_free(p, &b);
}

size_t mhi_secure_usable_size(const void *p) {
    if (!p) return 0;
    blk b;
    blk_find(p, &b);
    blk_check(p, &b, SLACK_CHECK_QUICK);
    return b.size;
}

/* At exit: the blocks waiting in the exiting thread's quarantine are
 * checked as their reuse would check them (a write after free that no
 * later malloc reached is still named). */
void mhi_secure_at_exit(void) {
    quarantine *q = tls_quar;
    if (!q) return;
    for (uint32_t i = 0; i < QUAR_SLOTS; i++) {
        const void *p = q->blk[i];
        if (!p) continue;
        quar_word_check(p);
        if (MHI_UNLIKELY(!reuse_ok(p, q->size[i]))) mhi_fatal_at("write after free", p);
    }
}

/* ---- realloc ---- */

void *mhi_secure_realloc(void *p, size_t size) {
    if (!p) return mhi_secure_malloc(size);
    if (size == 0) { /* glibc: free and return NULL */
        mhi_secure_free(p);
        return NULL;
    }
    if (size > PTRDIFF_MAX) return sec_oom(size);
    sec_ready();
    blk b;
    blk_find(p, &b);
    blk_check(p, &b, SLACK_CHECK_QUICK);
    size_t old = b.size, cap = b.slot - TRAILER;
    /* Stays when it fits before the trailer word with a canary byte and
     * would not waste most of the slot, a large block too for a size a
     * small class would hold (moving it there sent it back to a large one
     * at the next small growth, its room being a quarter more: a move per
     * call); growing, the bytes between the old size and the new are
     * zeroed (they held canary bytes, or data of a larger size before). */
    if (size < cap && size + TRAILER + 1 >= b.slot / 2) {
        /* A zero word first: the freer of the next slot skips the check
         * (check_before) while the canary bytes move. */
        trailer_store(p, b.slot, 0);
        sec_fence(memory_order_release);
        if (size > old) memset((char *)p + old, 0, size - old);
        else /* (what was the block's and its canary bytes: slack now, kept zero) */
            memset((char *)p + size, 0, (old + 8 < cap ? old + 8 : cap) - size);
        trailer_set(p, b.slot, size, false);
        return p;
    }
    /* Moving to grow: room for a quarter more (as the default build), so
     * a buffer grown in small steps moves O(log n) times. */
    size_t room = size;
    if (size > old && size - old < old / 4) room = old + old / 4;
    void *q = sec_alloc(size, room);
    if (!q && room != size) q = sec_alloc(size, size); /* (the slack is optional) */
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    blk_free(p, &b);
    return q;
}

void *mhi_secure_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return sec_oom(SIZE_MAX);
    return mhi_secure_realloc(p, total);
}

/* ---- spans ---- */

void *mhi_secure_span_setup(mhi_span *s, uint32_t size, uint32_t n) {
    uintptr_t base = s->base, guard = mhi_span_end(s) - MHI_PAGE_SIZE;
    if (s->needzero) {
        memset((void *)base, 0, (size_t)n * size);
        (void)mhi_os_decommit((void *)guard, MHI_PAGE_SIZE);
        s->needzero = 0;
    }
    if (mhi_os_protect((void *)guard, MHI_PAGE_SIZE, false))
        __atomic_store_n(&s->guard, (uint8_t)MHI_GUARD_SMALL, __ATOMIC_RELAXED);
    /* A random permutation (Fisher-Yates) kept in the objects' second
     * words, then the list through their first words in that order. */
    uint64_t r = rnd();
#define OBJ(i) ((uintptr_t *)(base + (size_t)(i) * size))
    for (uint32_t i = 0; i < n; i++) OBJ(i)[1] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t j = (uint32_t)(((r >> 32) * (uint64_t)(i + 1)) >> 32);
        uintptr_t t = OBJ(i)[1];
        OBJ(i)[1] = OBJ(j)[1];
        OBJ(j)[1] = t;
    }
    void *head = OBJ(OBJ(0)[1]);
    for (uint32_t k = 0; k < n; k++) { /* (object k's second word is read before it is set) */
        uintptr_t *o = OBJ(OBJ(k)[1]);
        o[0] = k + 1 < n ? (uintptr_t)OBJ(OBJ(k + 1)[1]) : 0;
    }
    for (uint32_t i = 0; i < n; i++) mhi_link_set(OBJ(i), (void *)OBJ(i)[0]);
#undef OBJ
    return head;
}

void mhi_secure_unguard(mhi_span *s) {
    uint8_t g = __atomic_load_n(&s->guard, __ATOMIC_RELAXED);
    uintptr_t end = mhi_span_end(s);
    bool ok = g == MHI_GUARD_FREED
                  ? mhi_os_protect((void *)s->base, end - s->base, true)
                  : mhi_os_protect((void *)(end - MHI_PAGE_SIZE), MHI_PAGE_SIZE, true);
    if (!ok) mhi_fatal("cannot make pages accessible again: %p", (void *)s->base);
    __atomic_store_n(&s->guard, (uint8_t)MHI_GUARD_NONE, __ATOMIC_RELAXED);
}

/* ---- fork ---- */

void mhi_secure_fork_prepare(void) { mhi_lock_for_fork(&lquar_lock); }
void mhi_secure_fork_parent(void) { mhi_unlock_for_fork(&lquar_lock); }
void mhi_secure_fork_child(void) { mhi_lock_reset(&lquar_lock); }
