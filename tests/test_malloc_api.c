/* test_malloc_api.c - conformance of the public malloc API (mh_*), called
 * directly (linked with mheap_core: the system allocator stays in charge
 * of the test's own allocations, so this also runs under the sanitizers).
 *
 *   - every size class boundary (s-1, s, s+1) and a spread of large sizes
 *     up to 4 MiB: usable size >= request, 16-byte alignment, contents of
 *     live blocks never overlap (each block is filled over its whole usable
 *     size with its own byte and checked before it is freed);
 *   - the same sizes with every power-of-two alignment 1..2^20 through
 *     mh_aligned_alloc and mh_posix_memalign, freed with mh_free_aligned_sized
 *     / mh_free_sized / mh_free in turn;
 *   - calloc gives zeros on recycled (dirty) memory, small and large, also
 *     after a large block shrank in place;
 *   - realloc keeps contents across classes, growing one byte at a time and
 *     jumping into large objects and back;
 *   - bad arguments of the mh_* entry points (errno / return values);
 *   - mh_stats_get fields, mh_trim, mh_heap_verify;
 *   - a burst of frees grows its class's stash (and a burst allocated again
 *     comes back from it, newest first), within the per-class and
 *     per-thread bounds; mh_trim sets the limits back. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "check.h"
#include "mheap.h"
#include "cache.h"
#include "sizeclass_table.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---- helpers ---- */

/* Fill n bytes at p with byte b. */
static void fill(void *p, size_t n, unsigned char b) { memset(p, b, n); }

/* Do all n bytes at p hold b?  Word-wise, so 4 MiB blocks stay cheap. */
static bool holds(const void *p, size_t n, unsigned char b) {
    const unsigned char *c = p;
    uint64_t w = 0x0101010101010101ULL * b;
    size_t i = 0;
    for (; i < n && ((uintptr_t)(c + i) & 7); i++)
        if (c[i] != b) return false;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, c + i, 8);
        if (v != w) return false;
    }
    for (; i < n; i++)
        if (c[i] != b) return false;
    return true;
}

/* Byte i of a block in the realloc test. */
static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + 3 + (i >> 8)); }

static bool holds_pat(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(i)) return false;
    return true;
}

static uint64_t inuse_now(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    return st.heap_inuse;
}

/* ---- sizes ---- */

static size_t sizes[512];
static size_t nsizes;

static void add_size(size_t s) {
    for (size_t i = 0; i < nsizes; i++)
        if (sizes[i] == s) return;
    REQUIRE(nsizes < sizeof sizes / sizeof sizes[0]);
    sizes[nsizes++] = s;
}

static void make_sizes(void) {
    add_size(0);
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        size_t s = mhi_class_size[c];
        add_size(s - 1);
        add_size(s);
        add_size(s + 1);
    }
    /* Large: page boundaries and odd sizes up to 4 MiB. */
    static const size_t large[] = {
        40 * KiB,        64 * KiB - 1, 64 * KiB,     64 * KiB + 1, 100000,
        128 * KiB,       256 * KiB + 8, 512 * KiB - 1, 1 * MiB - 1,  1 * MiB,
        1 * MiB + 1,     1 * MiB + 8192, 2 * MiB - 4096, 2 * MiB + 1, 3 * MiB,
        3 * MiB + 12345, 4 * MiB - 8192, 4 * MiB - 1,   4 * MiB,
    };
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) add_size(large[i]);
}

/* ---- plain malloc over every size ---- */

static void test_malloc_sizes(void) {
    /* Several blocks of each size live at once, with blocks of the other
     * sizes: overlap between any two shows as a clobbered fill byte. */
    enum { PER = 3 };
    static void *blk[512][PER];
    for (size_t i = 0; i < nsizes; i++) {
        for (int k = 0; k < PER; k++) {
            void *p = mh_malloc(sizes[i]);
            REQUIRE(p != NULL);
            CHECK(((uintptr_t)p & 15) == 0);
            size_t u = mh_usable_size(p);
            CHECK(u >= sizes[i]);
            if (sizes[i] == 0) CHECK(u > 0);
            fill(p, u, (unsigned char)(i * PER + k + 1));
            blk[i][k] = p;
        }
    }
    size_t bad = 0;
    for (size_t i = 0; i < nsizes; i++) {
        for (int k = 0; k < PER; k++) {
            void *p = blk[i][k];
            size_t u = mh_usable_size(p);
            if (!holds(p, u, (unsigned char)(i * PER + k + 1))) {
                if (bad++ < 10)
                    fprintf(stderr, "malloc(%zu) #%d at %p: contents changed\n", sizes[i], k, p);
            }
            /* Free three ways: plain, sized with the request, sized with the
             * usable size (the same class, or the same large span). */
            if (k == 0) mh_free(p);
            else if (k == 1) mh_free_sized(p, sizes[i]);
            else mh_free_sized(p, sizes[i] == 0 ? 0 : u);
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(mh_usable_size(NULL), 0);
}

/* ---- aligned allocation over every size and alignment ---- */

static void test_aligned_sizes(void) {
    enum { NALIGN = 21 }; /* 2^0 .. 2^20 */
    void *blk[2][NALIGN];
    size_t bad = 0, misaligned = 0, short_usable = 0;
    for (size_t i = 0; i < nsizes; i++) {
        size_t size = sizes[i];
        for (int a = 0; a < NALIGN; a++) {
            size_t align = (size_t)1 << a;
            void *p = mh_aligned_alloc(align, size);
            REQUIRE(p != NULL);
            blk[0][a] = p;
            void *q = NULL;
            if (align >= sizeof(void *)) {
                void *sentinel = (void *)&q;
                q = sentinel;
                int rc = mh_posix_memalign(&q, align, size);
                CHECK_EQ(rc, 0);
                REQUIRE(rc == 0 && q != sentinel && q != NULL);
            }
            blk[1][a] = q;
        }
        for (int a = 0; a < NALIGN; a++) {
            size_t align = (size_t)1 << a;
            size_t want_align = align < 16 ? 16 : align;
            for (int f = 0; f < 2; f++) {
                void *p = blk[f][a];
                if (!p) continue;
                if ((uintptr_t)p % want_align != 0 && misaligned++ < 10)
                    fprintf(stderr, "%s(%zu, %zu) = %p: misaligned\n",
                            f ? "mh_posix_memalign" : "mh_aligned_alloc", align, size, p);
                size_t u = mh_usable_size(p);
                if (u < size && short_usable++ < 10)
                    fprintf(stderr, "usable size %zu < %zu (align %zu)\n", u, size, align);
                fill(p, u, (unsigned char)(1 + a + f * NALIGN));
            }
        }
        for (int a = 0; a < NALIGN; a++) {
            size_t align = (size_t)1 << a;
            for (int f = 0; f < 2; f++) {
                void *p = blk[f][a];
                if (!p) continue;
                if (!holds(p, mh_usable_size(p), (unsigned char)(1 + a + f * NALIGN)) &&
                    bad++ < 10)
                    fprintf(stderr, "aligned block (%zu, %zu) at %p: contents changed\n", align,
                            size, p);
                /* Free with the allocation's size and alignment, or plain. */
                switch ((a + f + (int)i) % 3) {
                case 0: mh_free_aligned_sized(p, align, size); break;
                case 1: mh_free(p); break;
                default:
                    if (align <= 16) mh_free_sized(p, size);
                    else mh_free_aligned_sized(p, align, size);
                    break;
                }
            }
        }
    }
    CHECK_EQ(misaligned, 0);
    CHECK_EQ(short_usable, 0);
    CHECK_EQ(bad, 0);
}

/* ---- bad arguments of the mh_* entry points ---- */

static void test_bad_args(void) {
    uint64_t before = inuse_now();
    volatile size_t huge = (size_t)PTRDIFF_MAX + 1, top = SIZE_MAX;

    errno = 0;
    CHECK(mh_malloc(huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_malloc(top) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_calloc(1, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_calloc(huge / 2, 4) == NULL); /* overflow */
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_realloc(NULL, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_aligned_alloc(64, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_aligned_alloc(8, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_aligned_alloc(1 << 20, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(inuse_now(), before); /* failures leave the heap unchanged */

    /* A failed realloc / reallocarray leaves the block alone. */
    unsigned char *p = mh_malloc(100);
    REQUIRE(p != NULL);
    fill(p, 100, 0x5a);
    errno = 0;
    CHECK(mh_realloc(p, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_reallocarray(p, huge / 2, 4) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mh_reallocarray(p, 1, huge) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(holds(p, 100, 0x5a));
    p = mh_reallocarray(p, 10, 20);
    REQUIRE(p != NULL);
    CHECK(mh_usable_size(p) >= 200);
    CHECK(holds(p, 100, 0x5a));
    mh_free(p);

    /* Alignment: 0 or not a power of two. */
    static const size_t bad_align[] = {0, 3, 24, 48, 4097, (size_t)1 << 63 | 1};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        errno = 0;
        CHECK(mh_aligned_alloc(bad_align[i], 64) == NULL);
        CHECK_EQ(errno, EINVAL);
        void *out = (void *)&p;
        CHECK_EQ(mh_posix_memalign(&out, bad_align[i], 64), EINVAL);
        CHECK(out == (void *)&p);
    }
    /* posix_memalign: powers of two below sizeof(void *) are EINVAL too. */
    for (size_t a = 1; a < sizeof(void *); a <<= 1) {
        void *out = (void *)&p;
        CHECK_EQ(mh_posix_memalign(&out, a, 64), EINVAL);
        CHECK(out == (void *)&p);
    }
    {
        void *out = (void *)&p;
        errno = 4321;
        CHECK_EQ(mh_posix_memalign(&out, 64, huge), ENOMEM);
        CHECK(out == (void *)&p);
        CHECK_EQ(errno, 4321); /* the error is the return value; errno kept, as glibc */
    }

    /* Unique blocks for size 0. */
    void *z1 = mh_malloc(0), *z2 = mh_malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    mh_free(z1);
    mh_free(z2);
    z1 = mh_calloc(0, 0);
    z2 = mh_aligned_alloc(64, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    CHECK(((uintptr_t)z2 & 63) == 0);
    mh_free(z1);
    mh_free(z2);
    z1 = mh_realloc(NULL, 0);
    CHECK(z1 != NULL);
    CHECK(mh_realloc(z1, 0) == NULL); /* frees z1 */
    errno = 1234;
    mh_free(NULL);
    mh_free_sized(NULL, 100);
    mh_free_aligned_sized(NULL, 64, 100);
    CHECK_EQ(errno, 1234);
}

/* ---- calloc on recycled memory ---- */

static void test_calloc_recycled(void) {
    static const size_t csizes[] = {1,     16,     24,      100,     1000,    1024,
                                    4000,  8192,   16385,   32768,   32769,   40 * KiB,
                                    100000, 1 * MiB, 3 * MiB + 7};
    enum { N = 24 };
    void *blk[N];
    size_t bad = 0;
    for (size_t i = 0; i < sizeof csizes / sizeof csizes[0]; i++) {
        size_t size = csizes[i];
        for (int round = 0; round < 3; round++) {
            for (int k = 0; k < N; k++) {
                blk[k] = mh_malloc(size);
                REQUIRE(blk[k] != NULL);
                fill(blk[k], mh_usable_size(blk[k]), 0xff);
            }
            for (int k = 0; k < N; k++) mh_free(blk[k]);
            for (int k = 0; k < N; k++) {
                blk[k] = mh_calloc(1, size);
                REQUIRE(blk[k] != NULL);
                if (!holds(blk[k], size, 0) && bad++ < 10)
                    fprintf(stderr, "calloc(1, %zu) round %d #%d at %p: not zero\n", size, round,
                            k, blk[k]);
            }
            for (int k = 0; k < N; k++) {
                fill(blk[k], size, 0xff); /* dirty again for the next round */
                mh_free(blk[k]);
            }
        }
        /* calloc(n, size) with n > 1 and the same total. */
        void *q = mh_calloc(size < 4 ? 1 : 4, size < 4 ? size : size / 4);
        REQUIRE(q != NULL);
        if (!holds(q, size < 4 ? size : size / 4 * 4, 0) && bad++ < 10)
            fprintf(stderr, "calloc(n, %zu / n): not zero\n", size);
        mh_free(q);
    }
    /* Dirty small objects of many classes, then calloc of other classes on
     * the pages they leave behind. */
    for (int round = 0; round < 4; round++) {
        void *d[256];
        for (int k = 0; k < 256; k++) {
            size_t s = 16 + (size_t)k * 61 % 9000;
            d[k] = mh_malloc(s);
            REQUIRE(d[k] != NULL);
            fill(d[k], mh_usable_size(d[k]), 0xee);
        }
        for (int k = 0; k < 256; k++) mh_free(d[k]);
        mh_trim(); /* the cached spans go back: pages are reused across classes */
        for (int k = 0; k < 256; k++) {
            size_t s = 16 + (size_t)(255 - k) * 37 % 9000;
            d[k] = mh_calloc(s, 1);
            REQUIRE(d[k] != NULL);
            if (!holds(d[k], s, 0) && bad++ < 10)
                fprintf(stderr, "calloc(%zu, 1) on reused pages: not zero\n", s);
        }
        for (int k = 0; k < 256; k++) mh_free(d[k]);
    }
    /* A large block shrunk in place leaves a dirty tail: calloc on it. */
    for (int round = 0; round < 4; round++) {
        unsigned char *p = mh_malloc(3 * MiB);
        REQUIRE(p != NULL);
        fill(p, 3 * MiB, 0xff);
        unsigned char *q = mh_realloc(p, 512 * KiB);
        REQUIRE(q != NULL);
        CHECK(holds(q, 512 * KiB, 0xff));
        void *c[4];
        for (int k = 0; k < 4; k++) {
            c[k] = mh_calloc(1, 600 * KiB);
            REQUIRE(c[k] != NULL);
            if (!holds(c[k], 600 * KiB, 0) && bad++ < 10)
                fprintf(stderr, "calloc after shrink #%d at %p: not zero\n", k, c[k]);
        }
        for (int k = 0; k < 4; k++) mh_free(c[k]);
        mh_free(q);
    }
    CHECK_EQ(bad, 0);
}

/* ---- realloc keeps contents ---- */

static void test_realloc(void) {
    unsigned char *p = mh_malloc(1);
    REQUIRE(p != NULL);
    p[0] = pat(0);
    size_t bad = 0;
    for (size_t n = 2; n <= 5000; n++) {
        unsigned char *q = mh_realloc(p, n);
        REQUIRE(q != NULL);
        CHECK(((uintptr_t)q & 15) == 0);
        if (mh_usable_size(q) < n) CHECK(mh_usable_size(q) >= n);
        if (!holds_pat(q, n - 1) && bad++ < 10) fprintf(stderr, "realloc to %zu: lost data\n", n);
        q[n - 1] = pat(n - 1);
        p = q;
    }
    /* Jumps up into large objects and back down. */
    static const size_t jumps[] = {40 * KiB, 1 * MiB, 3 * MiB, 3 * MiB + 1, 1 * MiB,
                                   40 * KiB, 32 * KiB, 5000,    100,         1,
                                   3 * MiB, 16,        2 * MiB, 2 * MiB + 8192, 5 * MiB};
    size_t cur = 5000;
    for (size_t j = 0; j < sizeof jumps / sizeof jumps[0]; j++) {
        size_t n = jumps[j];
        /* Keep another allocation next door now and then, so some grows
         * cannot happen in place. */
        void *other = (j % 2) ? mh_malloc(n) : NULL;
        unsigned char *q = mh_realloc(p, n);
        REQUIRE(q != NULL);
        CHECK(((uintptr_t)q & 15) == 0);
        CHECK(mh_usable_size(q) >= n);
        size_t keep = cur < n ? cur : n;
        if (!holds_pat(q, keep) && bad++ < 10)
            fprintf(stderr, "realloc %zu -> %zu: lost data\n", cur, n);
        for (size_t i = keep; i < n; i++) q[i] = pat(i);
        p = q;
        cur = n;
        mh_free(other);
    }
    mh_free(p);

    /* Many blocks reallocated in turn: each keeps its own contents. */
    enum { NB = 64 };
    unsigned char *b[NB];
    size_t sz[NB];
    uint64_t rng = 12345;
    for (int k = 0; k < NB; k++) {
        sz[k] = 1 + check_rand(&rng) % 300;
        b[k] = mh_malloc(sz[k]);
        REQUIRE(b[k] != NULL);
        memset(b[k], k + 1, sz[k]);
    }
    for (int step = 0; step < 4000; step++) {
        int k = (int)(check_rand(&rng) % NB);
        uint64_t r = check_rand(&rng);
        size_t n = r % 16 == 0 ? 1 + r % (300 * KiB) : 1 + r % 20000;
        unsigned char *q = mh_realloc(b[k], n);
        REQUIRE(q != NULL);
        size_t keep = sz[k] < n ? sz[k] : n;
        if (!holds(q, keep, (unsigned char)(k + 1)) && bad++ < 10)
            fprintf(stderr, "realloc %zu -> %zu of block %d: lost data\n", sz[k], n, k);
        memset(q, k + 1, n);
        b[k] = q;
        sz[k] = n;
    }
    for (int k = 0; k < NB; k++) {
        if (!holds(b[k], sz[k], (unsigned char)(k + 1)) && bad++ < 10)
            fprintf(stderr, "block %d clobbered\n", k);
        mh_free_sized(b[k], sz[k]);
    }
    CHECK_EQ(bad, 0);
}

/* ---- statistics, trim, verify ---- */

static void check_stats_sane(const mh_stats_t *st) {
    CHECK_EQ(st->version, MH_STATS_VERSION);
    CHECK_EQ(st->size, sizeof *st);
    CHECK(st->heap_inuse + st->heap_idle <= st->heap_sys);
    CHECK(st->heap_released <= st->heap_idle);
    CHECK(st->heap_manual <= st->heap_inuse);
    CHECK(st->heap_inuse % MH_PAGE_SIZE == 0);
    CHECK(st->heap_idle % MH_PAGE_SIZE == 0);
    CHECK(st->heap_sys <= st->reserved);
    CHECK(st->nspan_manual <= st->nspan_inuse);
    CHECK(st->meta_sys > 0);
}

static void test_stats_trim_verify(void) {
    mh_stats_t st, st2;
    memset(&st, 0xab, sizeof st);
    CHECK_EQ(mh_stats_get(&st, sizeof st), sizeof st);
    check_stats_sane(&st);
    CHECK_EQ(st.heap_manual, 0); /* no page runs in this test */

    /* A short buffer gets only its own bytes. */
    memset(&st2, 0xab, sizeof st2);
    CHECK_EQ(mh_stats_get(&st2, 8), 8);
    CHECK_EQ(st2.version, MH_STATS_VERSION);
    CHECK_EQ(st2.size, sizeof st2);
    CHECK_EQ(st2.heap_sys, 0xababababababababULL);
    /* A longer buffer (a newer caller) gets what there is. */
    unsigned char big[sizeof st + 64];
    memset(big, 0xcd, sizeof big);
    CHECK_EQ(mh_stats_get((mh_stats_t *)(void *)big, sizeof big), sizeof st);
    CHECK_EQ(big[sizeof st], 0xcd);

    /* A large block counts in heap_inuse while it lives. */
    uint64_t before = inuse_now();
    void *p = mh_malloc(3 * MiB);
    REQUIRE(p != NULL);
    mh_stats_get(&st, sizeof st);
    check_stats_sane(&st);
    CHECK(st.heap_inuse >= before + 3 * MiB);
    CHECK(st.nspan_inuse >= 1);
    mh_free(p);
    CHECK_EQ(inuse_now(), before);

    /* Trim: everything free goes back to the OS; the heap still works. */
    void *keep[64];
    for (int k = 0; k < 64; k++) {
        keep[k] = mh_malloc((size_t)(k + 1) * 1000);
        REQUIRE(keep[k] != NULL);
        fill(keep[k], (size_t)(k + 1) * 1000, (unsigned char)k);
    }
    for (int k = 0; k < 64; k += 2) mh_free(keep[k]);
    size_t released = mh_trim();
    mh_stats_get(&st, sizeof st);
    check_stats_sane(&st);
    /* Every free page released (the scavenger leaves pages alone where OS
     * pages are larger than heap pages: see pageheap.c). */
    bool small_os_pages = sysconf(_SC_PAGESIZE) <= MH_PAGE_SIZE;
    if (small_os_pages) CHECK_EQ(st.heap_released, st.heap_idle);
    CHECK(released <= st.scavenged);
    for (int k = 1; k < 64; k += 2) CHECK(holds(keep[k], (size_t)(k + 1) * 1000, (unsigned char)k));
    for (int k = 0; k < 64; k += 2) {
        keep[k] = mh_calloc(1, (size_t)(k + 1) * 1000);
        REQUIRE(keep[k] != NULL);
        CHECK(holds(keep[k], (size_t)(k + 1) * 1000, 0));
    }
    void *big2 = mh_calloc(1, 2 * MiB);
    REQUIRE(big2 != NULL);
    CHECK(holds(big2, 2 * MiB, 0));
    mh_free(big2);
    for (int k = 0; k < 64; k++) mh_free(keep[k]);
    (void)mh_trim();
    mh_stats_get(&st, sizeof st);
    if (small_os_pages) CHECK_EQ(st.heap_released, st.heap_idle);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* Sizes no machine state could back (more than memory plus swap) fail at
 * once with ENOMEM and leave the heap as it was: no address space is
 * reserved for them. */
static void test_beyond_memory(void) {
    struct sysinfo si;
    REQUIRE(sysinfo(&si) == 0);
    size_t total = ((size_t)si.totalram + si.totalswap) * si.mem_unit;
    mh_stats_t s0, s1;
    mh_stats_get(&s0, sizeof s0);
    size_t sizes[] = {total + ((size_t)1 << 30), (size_t)1 << 40, (size_t)1 << 46};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i] <= total) continue;
        errno = 0;
        CHECK(mh_malloc(sizes[i]) == NULL);
        CHECK_EQ(errno, ENOMEM);
        void *p = NULL;
        CHECK_EQ(mh_posix_memalign(&p, 1 << 20, sizes[i]), ENOMEM);
    }
    mh_stats_get(&s1, sizeof s1);
    CHECK_EQ(s1.heap_sys, s0.heap_sys);
    void *q = mh_malloc(100);
    CHECK(q != NULL);
    mh_free(q);
}

static void test_stash_growth(void) {
    static uint32_t base[MHI_NUM_CLASSES];
    static void *p[4096];
    mh_free(mh_malloc(1)); /* this thread has a cache */
    mh_trim();
    mhi_cache *cache = mhi_tls_cache;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) base[c] = cache->stash_lim[c];
    size_t c32 = mhi_size_class(32);
    for (int i = 0; i < 3000; i++) REQUIRE((p[i] = mh_malloc(32)) != NULL);
    for (int i = 0; i < 3000; i++) mh_free(p[i]);
    uint32_t lim = cache->stash_lim[c32];
    printf("stash: class of 32 B: limit %u -> %u after a burst of 3000 frees\n", base[c32], lim);
    CHECK(lim > base[c32]);
    CHECK(lim <= 1024);
    CHECK(mhi_stash_count(cache, c32) <= lim);
    /* allocated again: newest first, out of the stash */
    uint32_t n = mhi_stash_count(cache, c32);
    CHECK(n >= lim / 2);
    for (uint32_t i = 0; i < n; i++) CHECK(mh_malloc(32) == p[2999 - i]);
    /* bursts in every class: what the stashes grew by stays within 256 KiB */
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        int k = (int)(((size_t)4 << 20) / mhi_class_size[c]);
        if (k > 4096) k = 4096;
        for (int i = 0; i < k; i++) REQUIRE((p[i] = mh_malloc(mhi_class_size[c])) != NULL);
        for (int i = 0; i < k; i++) mh_free(p[i]);
    }
    size_t grown = 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        CHECK(cache->stash_lim[c] >= base[c]);
        grown += (size_t)(cache->stash_lim[c] - base[c]) * mhi_class_size[c];
    }
    printf("stash: limits grew by %zu KiB in all after bursts in every class\n", grown >> 10);
    CHECK(grown > 0 && grown <= ((size_t)256 << 10));
    CHECK_EQ(grown, cache->stash_bytes);
    mh_trim();
    size_t back = 0;
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) back += cache->stash_lim[c] == base[c];
    CHECK_EQ(back, MHI_NUM_CLASSES - 1);
    CHECK_EQ(cache->stash_bytes, 0);
}

int main(void) {
    make_sizes();
    test_stash_growth();
    CHECK_EQ(mh_heap_verify(), 0);
    test_beyond_memory();
    test_malloc_sizes();
    CHECK_EQ(mh_heap_verify(), 0);
    test_aligned_sizes();
    CHECK_EQ(mh_heap_verify(), 0);
    test_bad_args();
    test_calloc_recycled();
    CHECK_EQ(mh_heap_verify(), 0);
    test_realloc();
    CHECK_EQ(mh_heap_verify(), 0);
    test_stats_trim_verify();
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_malloc_api");
}
