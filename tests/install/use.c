/* A program built against an installed mheap: malloc must be mheap's. */
#include <mheap.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    void *p = malloc(100);
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    size_t usable = mh_usable_size(p); /* aborts if mheap did not allocate p */
    printf("%s (usable %zu, in use %llu)\n", usable >= 100 && st.heap_inuse > 0 ? "mheap owns malloc" : "no",
           usable, (unsigned long long)st.heap_inuse);
    free(p);
    return 0;
}
