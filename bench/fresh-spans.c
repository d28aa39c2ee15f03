/* fresh-spans.c - allocation from spans never used before: N blocks of
 * one size (each written once), then all freed.  Prints nanoseconds per
 * malloc; for repeatable figures count instructions instead:
 *   LD_PRELOAD=build/src/libmheap.so valgrind --tool=callgrind \
 *     --callgrind-out-file=/dev/null build/bench/mh-fresh-spans 64 200000
 * Usage: mh-fresh-spans <size> <count> */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: mh-fresh-spans <size> <count>\n");
        return 2;
    }
    size_t size = strtoul(argv[1], NULL, 10), n = strtoul(argv[2], NULL, 10);
    void **v = malloc(n * sizeof *v);
    if (!v || size == 0) return 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i++) {
        v[i] = malloc(size);
        if (!v[i]) return 1;
        *(volatile char *)v[i] = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    printf("%.2f ns per malloc\n",
           ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n);
    return 0;
}
