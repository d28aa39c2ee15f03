/* test_fixalloc.c - the metadata allocators (fixalloc.h): a fixalloc hands
 * out distinct, 16-aligned, zeroed objects, reuses freed ones LIFO, counts
 * them and takes 64 KiB chunks from the OS; persistent allocations are
 * zeroed, aligned as asked and distinct. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixalloc.h"
#include "pageheap_util.h"

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_fixalloc(void) {
    enum { N = 3000 };
    static void *objs[N], *sorted[N];
    _Atomic uint64_t stat = 0;
    mhi_fixalloc f;
    mhi_fixalloc_init(&f, 40, &stat);
    CHECK_EQ(f.size, 48); /* rounded to 16 */
    CHECK_EQ(f.inuse, 0);
    bool zeroed = true, aligned = true;
    for (size_t i = 0; i < N; i++) {
        objs[i] = mhi_fixalloc_alloc(&f);
        REQUIRE(objs[i] != NULL);
        if ((uintptr_t)objs[i] % 16) aligned = false;
        if (!all_bytes(objs[i], 48, 0)) zeroed = false;
        memset(objs[i], (int)(i & 0xff), 48);
    }
    CHECK(aligned);
    CHECK(zeroed); /* fresh objects start zeroed */
    CHECK_EQ(f.inuse, N);
    /* Chunks of 64 KiB from the OS, counted in the stat. */
    CHECK(stat >= (uint64_t)N * 48);
    CHECK_EQ(stat % (64 << 10), 0);
    CHECK(stat <= (uint64_t)N * 48 + (64 << 10));
    /* Distinct and not overlapping: sorted, neighbours are >= size apart,
     * and every object still holds its own pattern. */
    memcpy(sorted, objs, sizeof objs);
    qsort(sorted, N, sizeof *sorted, cmp_ptr);
    bool apart = true, intact = true;
    for (size_t i = 1; i < N; i++)
        if ((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1] < 48) apart = false;
    for (size_t i = 0; i < N; i++)
        if (!all_bytes(objs[i], 48, (unsigned char)(i & 0xff))) intact = false;
    CHECK(apart);
    CHECK(intact);

    /* LIFO reuse. */
    mhi_fixalloc_free(&f, objs[5]);
    mhi_fixalloc_free(&f, objs[7]);
    CHECK_EQ(f.inuse, N - 2);
    void *a = mhi_fixalloc_alloc(&f), *b = mhi_fixalloc_alloc(&f);
    CHECK(a == objs[7]);
    CHECK(b == objs[5]);
    CHECK_EQ(f.inuse, N);
    mhi_fixalloc_free(&f, objs[100]);
    CHECK(mhi_fixalloc_alloc(&f) == objs[100]);

    /* Free everything: the next N allocations reuse the same objects and
     * take nothing more from the OS. */
    uint64_t stat_before = stat;
    for (size_t i = 0; i < N; i++) mhi_fixalloc_free(&f, objs[i]);
    CHECK_EQ(f.inuse, 0);
    bool reused = true;
    for (size_t i = 0; i < N; i++) {
        void *p = mhi_fixalloc_alloc(&f);
        if (!bsearch(&p, sorted, N, sizeof *sorted, cmp_ptr)) reused = false;
    }
    CHECK(reused);
    CHECK_EQ(stat, stat_before);
    CHECK_EQ(f.inuse, N);

    /* Persistent metadata: zeroed, aligned as asked, distinct. */
    _Atomic uint64_t pstat = 0;
    char *p1 = mhi_persistent_alloc(24, 64, &pstat);
    char *p2 = mhi_persistent_alloc(24, 64, &pstat);
    char *p3 = mhi_persistent_alloc(1 << 20, 4096, &pstat); /* big: straight from the OS */
    REQUIRE(p1 && p2 && p3);
    CHECK_EQ((uintptr_t)p1 % 64, 0);
    CHECK_EQ((uintptr_t)p2 % 64, 0);
    CHECK_EQ((uintptr_t)p3 % 4096, 0);
    CHECK(p2 >= p1 + 24 || p1 >= p2 + 24);
    CHECK(all_bytes(p1, 24, 0) && all_bytes(p2, 24, 0) && all_bytes(p3, 1 << 20, 0));
    CHECK(pstat >= (1 << 20));
}

int main(void) {
    test_fixalloc();
    return check_done("test_fixalloc");
}
