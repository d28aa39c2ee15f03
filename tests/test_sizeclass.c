/* test_sizeclass.c - checks the size-class tables and lookups directly,
 * independently of the checks tools/mkclasses.c makes before writing them.
 *
 * The rules (see the comment at the top of src/sizeclass_table.h):
 *  - class 0 is all zero; classes 1..N-1 strictly increase from 16 to 32768,
 *    all multiples of 16, those above 1024 multiples of 128;
 *  - mhi_size_class(s) is the smallest class whose size is >= s (0 -> 16);
 *  - rounding waste: for class c after class p, (size(c) - (size(p) + 1)) /
 *    size(c) <= 1/8, so every request wastes at most 1/8 of its block.
 *    Exceptions: the classes of 16..112 bytes, which are 16 bytes apart
 *    (the minimum alignment) and cannot meet the bound;
 *  - spans: 1..10 pages of 8192 bytes, nobjs = span / size, the tail
 *    (span % size) at most 1/8 of the span, at least 8 objects for classes
 *    of up to 8 KiB;
 *  - neighbours with the same pages and objects are merged unless merging
 *    would break the rounding bound;
 *  - mhi_class_index(c, off) == off / size(c) for every offset in a span;
 *  - the free fast path's multiple test (src/span.h, divmul): for every
 *    offset below the span's objects' end, (uint32_t)(off * divmul) <
 *    divmul iff off is a multiple of size(c); and a span's objects end
 *    below 2^17 bytes (the test needs offsets that small). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "layout.h"
#include "sizeclass.h"

#define PAGE 8192u
#define MAX_NPAGES 10u
#define EXCEPTION_SIZE_MAX 112u

/* The smallest class whose size is >= size, by linear search. */
static size_t slow_class(size_t size) {
    size_t c;
    for (c = 1; c < MHI_NUM_CLASSES; c++)
        if (mhi_class_size[c] >= size)
            return c;
    return 0;
}

static void test_constants(void) {
    CHECK_EQ(MHI_PAGE_SIZE, PAGE);
    CHECK_EQ(MHI_SMALL_SIZE_MAX, 32768);
    CHECK_EQ(MHI_SMALL_SIZE_STEP16_MAX, 1024);
    REQUIRE(MHI_NUM_CLASSES >= 2 && MHI_NUM_CLASSES <= 256); /* uint8_t maps */
    /* the target range for the number of classes */
    CHECK(MHI_NUM_CLASSES >= 60 && MHI_NUM_CLASSES <= 90);
    CHECK_EQ(sizeof mhi_size_to_class16, 65);
    CHECK_EQ(sizeof mhi_size_to_class128, 249);

    CHECK_EQ(mhi_class_size[0], 0);
    CHECK_EQ(mhi_class_npages[0], 0);
    CHECK_EQ(mhi_class_nobjs[0], 0);
    CHECK_EQ(mhi_class_divmul[0], 0);
    CHECK_EQ(mhi_class_size[1], 16);
    CHECK_EQ(mhi_class_size[MHI_NUM_CLASSES - 1], MHI_SMALL_SIZE_MAX);
}

static void test_sizes(void) {
    size_t c;
    for (c = 1; c < MHI_NUM_CLASSES; c++) {
        uint32_t size = mhi_class_size[c], prev = mhi_class_size[c - 1];
        CHECK(size > prev);
        CHECK_EQ(size % 16, 0);
        if (size > MHI_SMALL_SIZE_STEP16_MAX)
            CHECK_EQ(size % 128, 0);
        /* worst request for this class is prev + 1 */
        if (size <= EXCEPTION_SIZE_MAX) {
            CHECK_EQ(size - prev, 16); /* documented exception */
        } else if ((uint64_t)(size - prev - 1) * 8 > size) {
            fprintf(stderr, "class %zu: size %u after %u: rounding waste over 1/8\n", c, size,
                    prev);
            CHECK((uint64_t)(size - prev - 1) * 8 <= size);
        }
    }
}

static void test_lookup(void) {
    size_t size, bad = 0;
    for (size = 0; size <= MHI_SMALL_SIZE_MAX; size++) {
        size_t c = mhi_size_class(size);
        size_t want = slow_class(size == 0 ? 1 : size);
        int ok = c >= 1 && c < MHI_NUM_CLASSES && c == want &&
                 mhi_class_size[c] >= size &&  /* big enough */
                 mhi_class_size[c] % 16 == 0 && /* aligned */
                 (c == 1 || mhi_class_size[c - 1] < size); /* minimal */
        /* waste of this very request (outside the exceptions) */
        if (ok && mhi_class_size[c] > EXCEPTION_SIZE_MAX)
            ok = (uint64_t)(mhi_class_size[c] - size) * 8 <= mhi_class_size[c];
        if (!ok && bad++ < 5)
            fprintf(stderr, "size %zu: class %zu (size %u), want class %zu\n", size, c,
                    c < MHI_NUM_CLASSES ? mhi_class_size[c] : 0, want);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(mhi_size_class(0), 1);
    CHECK_EQ(mhi_size_class(1), 1);
    CHECK_EQ(mhi_size_class(16), 1);
    CHECK_EQ(mhi_size_class(17), 2);
    CHECK_EQ(mhi_class_size[mhi_size_class(1024)], 1024);
    CHECK_EQ(mhi_class_size[mhi_size_class(1025)], mhi_class_size[slow_class(1025)]);
    CHECK_EQ(mhi_size_class(MHI_SMALL_SIZE_MAX), MHI_NUM_CLASSES - 1);
}

/* mhi_small_class (malloc's fast path) agrees with mhi_size_class, and
 * every size of 8 bytes or more fills at least half of its class's size,
 * which is what sized free's inline check asks (src/malloc.h). */
static void test_small_class(void) {
    size_t bad = 0, half = 0;
    for (size_t size = 0; size <= MHI_SMALL_SIZE_MAX; size++) {
        size_t c = 0;
        if (!mhi_small_class(size, &c) || c != mhi_size_class(size)) bad++;
        if (size >= 8 && 2 * size < mhi_class_size[c]) half++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(half, 0);
    size_t c = 12345;
    CHECK(!mhi_small_class(MHI_SMALL_SIZE_MAX + 1, &c));
    CHECK(!mhi_small_class(SIZE_MAX, &c));
    CHECK_EQ(c, 12345);
}

static void test_tables_monotonic(void) {
    size_t i;
    for (i = 1; i < sizeof mhi_size_to_class16; i++)
        CHECK(mhi_size_to_class16[i] >= mhi_size_to_class16[i - 1]);
    for (i = 1; i < sizeof mhi_size_to_class128; i++)
        CHECK(mhi_size_to_class128[i] >= mhi_size_to_class128[i - 1]);
    /* both maps agree at 1024, where they meet */
    CHECK_EQ(mhi_size_to_class128[0], mhi_size_to_class16[64]);
    CHECK_EQ(mhi_size_to_class16[0], 1);
    CHECK_EQ(mhi_size_to_class128[sizeof mhi_size_to_class128 - 1], MHI_NUM_CLASSES - 1);
}

static void test_spans(void) {
    size_t c;
    for (c = 1; c < MHI_NUM_CLASSES; c++) {
        uint32_t size = mhi_class_size[c], npages = mhi_class_npages[c];
        uint32_t span = npages * PAGE, tail;
        CHECK(npages >= 1 && npages <= MAX_NPAGES);
        if (npages < 1)
            continue;
        CHECK(span >= size);
        CHECK_EQ(mhi_class_nobjs[c], span / size);
        CHECK(mhi_class_nobjs[c] >= 1);
        tail = span % size;
        if ((uint64_t)tail * 8 > span)
            fprintf(stderr, "class %zu: size %u in %u pages: tail %u over 1/8\n", c, size,
                    npages, tail);
        CHECK((uint64_t)tail * 8 <= span);
        if (size <= 8192)
            CHECK(mhi_class_nobjs[c] >= 8);
    }
}

/* Neighbours with the same span and object count are merged (the larger size
 * kept) unless the merged class would break the rounding bound. */
static void test_merged(void) {
    size_t c;
    for (c = 2; c < MHI_NUM_CLASSES; c++) {
        if (mhi_class_npages[c] == mhi_class_npages[c - 1] &&
            mhi_class_nobjs[c] == mhi_class_nobjs[c - 1]) {
            uint32_t size = mhi_class_size[c], before = mhi_class_size[c - 2];
            if ((uint64_t)(size - before - 1) * 8 <= size)
                fprintf(stderr, "classes %zu and %zu (sizes %u, %u) could be merged\n", c - 1,
                        c, mhi_class_size[c - 1], size);
            CHECK((uint64_t)(size - before - 1) * 8 > size);
        }
    }
}

static void test_index(void) {
    size_t c;
    for (c = 1; c < MHI_NUM_CLASSES; c++) {
        uint32_t size = mhi_class_size[c];
        size_t span = (size_t)mhi_class_npages[c] * PAGE, off, bad = 0;
        for (off = 0; off < span; off++) {
            uint32_t got = mhi_class_index(c, off);
            if (got != off / size && bad++ < 3)
                fprintf(stderr, "class %zu (size %u): index of offset %zu is %u, want %zu\n",
                        c, size, off, got, off / size);
        }
        CHECK_EQ(bad, 0);
        if (span > 0)
            CHECK_EQ(mhi_class_index(c, span - 1), (span - 1) / size);
    }
}

static void test_multiple(void) {
    size_t c;
    for (c = 1; c < MHI_NUM_CLASSES; c++) {
        uint32_t size = mhi_class_size[c], m = mhi_class_divmul[c];
        uint32_t end = (uint32_t)mhi_class_nobjs[c] * size, off, bad = 0, hits = 0;
        CHECK(end <= (uint32_t)mhi_class_npages[c] * PAGE && end < (1u << 17));
        for (off = 0; off < end; off++) {
            int fast = (uint32_t)(off * m) < m, want = off % size == 0;
            hits += (uint32_t)fast;
            if (fast != want && bad++ < 3)
                fprintf(stderr, "class %zu (size %u): offset %u multiple test says %d\n", c, size,
                        off, fast);
        }
        CHECK_EQ(bad, 0);
        CHECK_EQ(hits, mhi_class_nobjs[c]);
    }
}

int main(void) {
    test_constants();
    test_sizes();
    test_lookup();
    test_small_class();
    test_tables_monotonic();
    test_spans();
    test_merged();
    test_index();
    test_multiple();
    return check_done("test_sizeclass");
}
