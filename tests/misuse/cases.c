/* cases.c - the misuse cases of the C interface, one per argument:
 * `misuse_cases <case>` (the driver, driver.c, runs each with the library
 * under test preloaded; `misuse_cases --list` prints the names).
 *
 *   {over,under}{1,32}_{write,memcpy}_{24,64,1000,4k,256k}_{first,later}
 *       writes 1 or 32 bytes past the end (over) or before the start
 *       (under) of a block of 24, 64, 1000, 4096 or 262144 bytes (the size
 *       asked for), byte by byte or with one memcpy; the block is the first
 *       of a span (a block that starts a heap page; for 256k the first
 *       large block) or a later one, and the neighbour on the damaged side
 *       (the next block, or the one before) is free.  Then: two mallocs of
 *       the size, the free of the block, two more mallocs.
 *   uaf_read_*, uaf_write_*   (small 64 B, medium 4 KiB, large 256 KiB):
 *       reads the whole freed block / fills it with 0x41, then mallocs
 *       (for writes, 200 of the size, 16 large ones: a delayed reuse
 *       reaches the block too).
 *   reuse_*      property: is the freed block the next malloc of its size?
 *                 prints "reused" or "not-reused".
 *   realloc_away  writes a 64-byte block after realloc moved it away.
 *   <api>_<kind>  api free, free_sized, free_aligned_sized, realloc,
 *                 usable_size (malloc_usable_size) on a pointer of kind
 *                 freed, stack, interior, p4096, mmap, minus8 (cases.h).
 *   free_freed_medium, free_freed_large   double free of 4 KiB / 256 KiB.
 *   free_sized_wrong   free_sized with a size of another class.
 *   malloc0_write      writes 8 bytes into malloc(0).
 *   exec_small, exec_large   calls a `ret` instruction copied into a block.
 *   poke_over32_4k, poke_over32_256k   writes one byte 32 bytes past the end
 *       of a block (the 31 between untouched), then frees it.
 *   poke_under1_4k, poke_under32_4k   writes one byte 1 or 32 bytes before
 *       a 4 KiB block that does not start a heap page (nor a span), then
 *       frees it; the blocks allocated with it stay live.
 *   poke_under1_256k   writes one byte before the second of two 256 KiB
 *       blocks allocated one after the other, then frees it.
 *   uaf_link_small   writes the first 8 bytes of a freed 64-byte block, then
 *       1000 frees of other blocks of the size before any malloc, then
 *       mallocs (a quarantine sends the block on before it is looked at).
 *   uaf_exit_small   fills a freed 64-byte block with 0x41 and returns from
 *       main: no malloc after the write.
 *
 * Built with -fno-builtin and volatile pointers: each misuse is a real
 * call or store (check with objdump -d). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

/* C23 / glibc 2.38 names: mheap defines them, older C libraries lack
 * them (not linked: found in the preloaded library at run time). */
static void (*free_sized)(void *p, size_t size);
static void (*free_aligned_sized)(void *p, size_t align, size_t size);

static volatile unsigned char sink;

static void *must_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) misuse_setup_fail("malloc failed");
    return p;
}

/* ---- out of bounds ---- */

static size_t size_of_label(const char *s) {
    if (strcmp(s, "24") == 0) return 24;
    if (strcmp(s, "64") == 0) return 64;
    if (strcmp(s, "1000") == 0) return 1000;
    if (strcmp(s, "4k") == 0) return 4096;
    if (strcmp(s, "256k") == 0) return 256 << 10;
    return 0;
}

/* The first block of its span, size asked for: small and medium blocks
 * that start a heap page; for large ones the first block of the size. */
static char *first_block(size_t size) {
    if (size > 32768) return must_malloc(size);
    return misuse_span_start(must_malloc, size);
}

static void case_bounds(bool over, size_t amount, bool use_memcpy, size_t size, bool later) {
    char *first = first_block(size), *before = NULL, *v = first, *after;
    if (later) {
        before = must_malloc(size);
        v = must_malloc(size);
    }
    after = must_malloc(size);
    memset(v, 1, size);
    /* The neighbour on the damaged side is free. */
    if (over) {
        free(after);
        after = NULL;
    } else if (before) {
        free(before);
        before = NULL;
    }
    static char src[64];
    memset(src, 0x5a, sizeof src);
    volatile char *q = misuse_opaque(v);
    if (over) {
        if (use_memcpy) memcpy((char *)misuse_opaque(v + size), src, amount);
        else
            for (size_t i = 0; i < amount; i++) q[size + i] = 0x5a;
    } else {
        if (use_memcpy) memcpy((char *)misuse_opaque(v) - amount, src, amount);
        else
            for (size_t i = 1; i <= amount; i++) *(q - i) = 0x5a;
    }
    /* Use the damage: the free neighbour handed out again, the block
     * freed, more of the size. */
    void *a = must_malloc(size), *b = must_malloc(size);
    free(v);
    void *c = must_malloc(size), *d = must_malloc(size);
    free(a);
    free(b);
    free(c);
    free(d);
    free(before);
    free(after);
    if (later) free(first);
}

static bool bounds_by_name(const char *name) {
    char dir[8], how[8], sz[8], pos[8];
    unsigned amount;
    int n = 0;
    if (sscanf(name, "%7[a-z]%u_%7[a-z]_%7[0-9k]_%7[a-z]%n", dir, &amount, how, sz, pos, &n) != 5 ||
        name[n] != '\0')
        return false;
    bool over = strcmp(dir, "over") == 0, mc = strcmp(how, "memcpy") == 0;
    size_t size = size_of_label(sz);
    if ((!over && strcmp(dir, "under") != 0) || (amount != 1 && amount != 32) ||
        (!mc && strcmp(how, "write") != 0) || !size ||
        (strcmp(pos, "first") != 0 && strcmp(pos, "later") != 0))
        return false;
    case_bounds(over, amount, mc, size, strcmp(pos, "later") == 0);
    return true;
}

/* ---- after free ---- */

static size_t size_of_class(const char *s) {
    if (strcmp(s, "small") == 0) return 64;
    if (strcmp(s, "medium") == 0) return 4096;
    if (strcmp(s, "large") == 0) return 256 << 10;
    return 0;
}

static void then_more(size_t size) {
    void *a = must_malloc(size), *b = must_malloc(size);
    memset(a, 2, size);
    memset(b, 3, size);
    free(a);
    free(b);
}

/* After a write to a freed block: enough mallocs of its size that a
 * delayed reuse (a quarantine) reaches it too, then their frees. */
static void reuse_all(size_t size) {
    enum { N = 200 };
    static void *b[N];
    int n = size > 32768 ? 16 : N;
    for (int i = 0; i < n; i++) {
        b[i] = must_malloc(size);
        memset(b[i], 2, 64);
    }
    for (int i = 0; i < n; i++) free(b[i]);
}

static void case_uaf_read(size_t size) {
    char *p = must_malloc(size);
    memset(p, 1, size);
    free(p);
    volatile char *q = misuse_opaque(p);
    unsigned char sum = 0;
    for (size_t i = 0; i < size; i++) sum += (unsigned char)q[i];
    sink = sum;
    then_more(size);
}

static void case_uaf_write(size_t size) {
    char *p = must_malloc(size);
    memset(p, 1, size);
    free(p);
    memset(misuse_opaque(p), 0x41, size);
    reuse_all(size);
}

static void case_reuse(size_t size) {
    char *p = must_malloc(size);
    memset(p, 1, size);
    free(p);
    char *q = must_malloc(size);
    misuse_report(q == misuse_opaque(p) ? "reused" : "not-reused");
    free(q);
}

static void case_realloc_away(void) {
    char *p = must_malloc(64);
    memset(p, 1, 64);
    char *q = realloc(p, 100000);
    if (!q || q == misuse_opaque(p)) misuse_setup_fail("realloc did not move the block");
    memset(misuse_opaque(p), 0x41, 64);
    reuse_all(64);
    free(q);
}

/* ---- free-like calls on bad pointers ---- */

static void *alloc_aligned64(size_t n) { return aligned_alloc(64, n); }
static void free_aligned64(void *p) { free_aligned_sized(p, 64, 64); }
static void free_sized64(void *p) { free_sized(p, 64); }

static bool api_by_name(const char *name) {
    static const char *const apis[] = {"free_aligned_sized", "free_sized", "free", "realloc",
                                       "usable_size"};
    for (int a = 0; a < 5; a++) {
        size_t n = strlen(apis[a]);
        if (strncmp(name, apis[a], n) != 0 || name[n] != '_') continue;
        int k = misuse_kind(name + n + 1);
        if (k < 0) continue;
        char stack[128] __attribute__((aligned(64)));
        memset(stack, 1, sizeof stack);
        void *(*alloc)(size_t) = a == 0 ? alloc_aligned64 : must_malloc;
        void (*release)(void *) = a == 0 ? free_aligned64 : a == 1 ? free_sized64 : free;
        void *bad = misuse_bad_pointer(k, alloc, release, stack + 64);
        switch (a) {
        case 0: free_aligned_sized(bad, 64, 64); break;
        case 1: free_sized(bad, 64); break;
        case 2: free(bad); break;
        case 3: {
            char *r = realloc(bad, 100);
            if (r) memset(r, 4, 100);
            free(r);
            break;
        }
        case 4: sink = (unsigned char)malloc_usable_size(bad); break;
        }
        then_more(64);
        sink = stack[5];
        return true;
    }
    return false;
}

static void case_double_free(size_t size) {
    char *p = must_malloc(size);
    memset(p, 1, size);
    free(p);
    free(misuse_opaque(p));
    then_more(size);
}

static void case_free_sized_wrong(void) {
    char *p = must_malloc(64);
    memset(p, 1, 64);
    free_sized(misuse_opaque(p), 1000);
    then_more(64);
}

static void case_malloc0_write(void) {
    char *p = must_malloc(0);
    volatile char *q = misuse_opaque(p);
    for (int i = 0; i < 8; i++) q[i] = 0x5a;
    void *a = must_malloc(0), *b = must_malloc(0);
    free(p);
    free(a);
    free(b);
}

static void case_exec(size_t size) {
    unsigned char *p = must_malloc(size);
    memset(p, 0xc3, size < 64 ? size : 64); /* ret (x86-64) */
    void (*fn)(void) = (void (*)(void))misuse_opaque(p);
    fn();
    free(p);
}

static void case_poke_over(size_t size) {
    char *p = must_malloc(size);
    memset(p, 1, size);
    volatile char *q = misuse_opaque(p);
    q[size + 31] ^= 0x41;
    free(p);
}

/* A block of 4 KiB that does not start a heap page: one whose slot is not
 * the first of its span (blocks that fill their page may all start one:
 * the last tried then). */
static char *not_page_start(void) {
    char *p = NULL;
    for (int i = 0; i < 64; i++) {
        p = must_malloc(4096);
        memset(p, 1, 4096);
        if ((uintptr_t)p & 4095) break;
    }
    return p;
}

static void case_poke_under(size_t amount) {
    char *p = not_page_start();
    volatile char *q = misuse_opaque(p);
    *(q - amount) ^= 0x41;
    free(p);
}

static void case_poke_under_large(void) {
    char *a = must_malloc(256 << 10), *p = must_malloc(256 << 10);
    memset(a, 1, 256 << 10);
    volatile char *q = misuse_opaque(p);
    *(q - 1) ^= 0x41;
    free(p);
    free(a);
}

static void case_uaf_link(void) {
    enum { N = 1000 };
    static void *b[N];
    for (int i = 0; i < N; i++) b[i] = must_malloc(64);
    char *p = must_malloc(64);
    memset(p, 1, 64);
    free(p);
    memset(misuse_opaque(p), 0x41, 8);
    for (int i = 0; i < N; i++) free(b[i]);
    reuse_all(64);
}

static void case_uaf_exit(void) {
    char *p = must_malloc(64);
    memset(p, 1, 64);
    free(p);
    memset(misuse_opaque(p), 0x41, 64);
}

static const char *const fixed_cases[] = {
    "uaf_read_small", "uaf_read_medium", "uaf_read_large", "uaf_write_small",
    "uaf_write_medium", "uaf_write_large", "reuse_small", "reuse_medium",
    "reuse_large", "realloc_away", "free_freed_medium", "free_freed_large",
    "free_sized_wrong", "malloc0_write", "exec_small", "exec_large",
    "poke_over32_4k", "poke_over32_256k", "poke_under1_4k", "poke_under32_4k",
    "poke_under1_256k", "uaf_link_small", "uaf_exit_small",
};

static void list(void) {
    static const char *const dirs[] = {"over", "under"}, *const amts[] = {"1", "32"},
                             *const hows[] = {"write", "memcpy"},
                             *const szs[] = {"24", "64", "1000", "4k", "256k"},
                             *const poss[] = {"first", "later"};
    for (int d = 0; d < 2; d++)
        for (int a = 0; a < 2; a++)
            for (int h = 0; h < 2; h++)
                for (int s = 0; s < 5; s++)
                    for (int p = 0; p < 2; p++)
                        printf("%s%s_%s_%s_%s\n", dirs[d], amts[a], hows[h], szs[s], poss[p]);
    for (size_t i = 0; i < sizeof fixed_cases / sizeof *fixed_cases; i++)
        printf("%s\n", fixed_cases[i]);
    static const char *const apis[] = {"free", "free_sized", "free_aligned_sized", "realloc",
                                       "usable_size"},
                             *const kinds[] = {"freed", "stack", "interior", "p4096", "mmap",
                                               "minus8"};
    for (int a = 0; a < 5; a++)
        for (int k = 0; k < 6; k++) printf("%s_%s\n", apis[a], kinds[k]);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: misuse_cases <case> | --list\n");
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "--list") == 0) {
        list();
        return 0;
    }
    misuse_need_mheap();
    *(void **)&free_sized = dlsym(RTLD_DEFAULT, "free_sized");
    *(void **)&free_aligned_sized = dlsym(RTLD_DEFAULT, "free_aligned_sized");
    /* (The C library of Debian 12 has neither: the comparison with it runs
     * the cases that use them as setup failures.) */
    if ((!free_sized || !free_aligned_sized) && (strstr(c, "free_sized") || strstr(c, "free_aligned")))
        misuse_setup_fail("no free_sized in the library");
    if (bounds_by_name(c) || api_by_name(c)) return 0;
    size_t n;
    if (strncmp(c, "uaf_read_", 9) == 0 && (n = size_of_class(c + 9))) case_uaf_read(n);
    else if (strncmp(c, "uaf_write_", 10) == 0 && (n = size_of_class(c + 10))) case_uaf_write(n);
    else if (strncmp(c, "reuse_", 6) == 0 && (n = size_of_class(c + 6))) case_reuse(n);
    else if (strcmp(c, "realloc_away") == 0) case_realloc_away();
    else if (strcmp(c, "free_freed_medium") == 0) case_double_free(4096);
    else if (strcmp(c, "free_freed_large") == 0) case_double_free(256 << 10);
    else if (strcmp(c, "free_sized_wrong") == 0) case_free_sized_wrong();
    else if (strcmp(c, "malloc0_write") == 0) case_malloc0_write();
    else if (strcmp(c, "exec_small") == 0) case_exec(64);
    else if (strcmp(c, "exec_large") == 0) case_exec(256 << 10);
    else if (strcmp(c, "poke_over32_4k") == 0) case_poke_over(4096);
    else if (strcmp(c, "poke_over32_256k") == 0) case_poke_over(256 << 10);
    else if (strcmp(c, "poke_under1_4k") == 0) case_poke_under(1);
    else if (strcmp(c, "poke_under32_4k") == 0) case_poke_under(32);
    else if (strcmp(c, "poke_under1_256k") == 0) case_poke_under_large();
    else if (strcmp(c, "uaf_link_small") == 0) case_uaf_link();
    else if (strcmp(c, "uaf_exit_small") == 0) case_uaf_exit();
    else misuse_setup_fail("no such case");
    return 0;
}
