/* large-loop.c - malloc, touch and free one large block, over and over:
 * the cost of what free does with a large block's pages and what the next
 * malloc of that size finds.  Prints ns per malloc+free pair per size.
 *
 *   cc -O2 -o /tmp/large-loop bench/large-loop.c
 *   LD_PRELOAD=build/src/libmheap.so /tmp/large-loop [iterations]
 *
 * Each block is written once per 4 KiB page (as a program that uses it
 * would), so the figures include the page faults of decommitted pages. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    static const size_t sizes[] = {64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20};
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        double t0 = now_ns();
        for (long k = 0; k < iters; k++) {
            volatile unsigned char *p = malloc(n);
            for (size_t off = 0; off < n; off += 4096) p[off] = (unsigned char)k;
            sum += p[n / 2];
            free((void *)p);
        }
        printf("%7zu KiB: %8.0f ns per pair\n", n >> 10, (now_ns() - t0) / iters);
    }
    return sum == 42; /* (keeps the loop) */
}
