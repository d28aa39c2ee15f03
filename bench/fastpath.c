/* fastpath - malloc + free pairs of one size in a loop, for counting the
 * instructions of an allocator's fast paths (run it under callgrind with
 * the allocator preloaded, at two iteration counts, and divide the
 * difference).  Plain libc: any allocator can be preloaded.
 *
 *   fastpath ITERATIONS SIZE [free|sized]
 *
 * "sized" frees with C23's free_sized(p, SIZE) instead of free(p); it exits
 * with status 2 when no loaded library defines free_sized (glibc before
 * 2.38 and most allocators of its time do not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Weak: resolved at load time against whatever library defines it. */
extern void free_sized(void *p, size_t size) __attribute__((weak));

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 64;
    int sized = argc > 3 && strcmp(argv[3], "sized") == 0;
    if (argc > 3 && !sized && strcmp(argv[3], "free") != 0) {
        fprintf(stderr, "usage: fastpath ITERATIONS SIZE [free|sized]\n");
        return 1;
    }
    if (sized && !free_sized) {
        fprintf(stderr, "fastpath: no free_sized in this process\n");
        return 2;
    }
    void *volatile keep;
    /* Warm up: the first calls take slow paths (thread cache, first span). */
    for (int i = 0; i < 1000; i++) free(malloc(size));
    if (sized) {
        for (long i = 0; i < n; i++) {
            void *p = malloc(size);
            keep = p;
            free_sized(p, size);
        }
    } else {
        for (long i = 0; i < n; i++) {
            void *p = malloc(size);
            keep = p;
            free(p);
        }
    }
    (void)keep;
    return 0;
}
