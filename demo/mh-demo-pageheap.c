/* mh-demo-pageheap - drives the page heap the way the malloc layer does:
 * small-object spans of a few pages, large objects of many pages, page
 * runs through the public API, frees in mixed order, then the scavenger;
 * prints what it did and the heap statistics after each phase. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mheap.h"
#include "pageheap.h"

static void show(const char *phase) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    printf("%-34s sys %7.1f MiB  inuse %7.1f MiB  idle %7.1f MiB  released %7.1f MiB  "
           "spans free/inuse/manual %" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
           phase, st.heap_sys / 1048576.0, st.heap_inuse / 1048576.0, st.heap_idle / 1048576.0,
           st.heap_released / 1048576.0, st.nspan_free, st.nspan_inuse, st.nspan_manual);
}

int main(void) {
    enum { NSMALL = 4000, NLARGE = 200, NRUNS = 100 };
    static mhi_span *small[NSMALL], *large[NLARGE];
    static void *runs[NRUNS];
    uint64_t rng = 42;
#define RAND() (rng = rng * 6364136223846793005ULL + 1442695040888963407ULL, rng >> 33)

    printf("mheap page heap demo: 8 KiB pages, 64 MiB arenas\n\n");
    show("start");
    for (int i = 0; i < NSMALL; i++) {
        small[i] = mhi_heap_alloc(1 + RAND() % 4, MHI_SPAN_INUSE, MHI_KIND_SMALL, false);
        memset((void *)small[i]->base, 0xab, small[i]->npages * MH_PAGE_SIZE);
    }
    show("4000 small-object spans (1-4 pages)");
    for (int i = 0; i < NLARGE; i++) {
        large[i] = mhi_heap_alloc(16 + RAND() % 240, MHI_SPAN_INUSE, MHI_KIND_LARGE, true);
        memset((void *)large[i]->base, 0xcd, MH_PAGE_SIZE);
    }
    show("200 large objects (16-255 pages)");
    for (int i = 0; i < NRUNS; i++) runs[i] = mh_pages_alloc(8);
    show("100 page runs of 64 KiB");

    for (int i = 0; i < NSMALL; i += 2) mhi_heap_free(small[i]);
    for (int i = 0; i < NLARGE; i += 3) mhi_heap_free(large[i]);
    show("freed every 2nd small, 3rd large");

    /* A lookup of an interior address, as free() and the GC will do. */
    uintptr_t base;
    size_t size;
    uintptr_t probe = large[1]->base + 12345;
    mhi_mlookup(probe, &base, &size, NULL);
    printf("%-34s %#" PRIxPTR " -> object %#" PRIxPTR ", %zu bytes\n", "interior lookup", probe,
           base, size);

    for (int i = 1; i < NSMALL; i += 2) mhi_heap_free(small[i]);
    for (int i = 0; i < NLARGE; i++)
        if (i % 3) mhi_heap_free(large[i]);
    for (int i = 0; i < NRUNS; i++) mh_pages_free(runs[i]);
    show("freed everything");
    size_t released = mh_release_memory();
    printf("%-34s %.1f MiB returned to the OS\n", "release memory", released / 1048576.0);
    show("after release");
    printf("\nverifier: %zu violations\n\n", mh_heap_verify());
    fflush(stdout);
    mh_stats_print(1);
    return 0;
}
