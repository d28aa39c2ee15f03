/* fastpath - malloc + free pairs of one size in a loop, for counting the
 * instructions of an allocator's fast paths (run it under callgrind with
 * the allocator preloaded, at two iteration counts, and divide the
 * difference).  Plain libc: any allocator can be preloaded.
 *
 *   fastpath ITERATIONS SIZE */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 64;
    void *volatile keep;
    /* Warm up: the first calls take slow paths (thread cache, first span). */
    for (int i = 0; i < 1000; i++) free(malloc(size));
    for (long i = 0; i < n; i++) {
        void *p = malloc(size);
        keep = p;
        free(p);
    }
    (void)keep;
    return 0;
}
