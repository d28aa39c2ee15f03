/* A program for bdwgc's gc.h, built against an installed mheap with
 * `pkg-config --cflags --libs mheap-gc`: the gc.h it gets must be mheap's,
 * and a list it builds must survive collections. */
#define GC_THREADS
#include <gc.h>
#include <stdio.h>

#ifndef MHEAP_GC_BOEHM_COMPAT
#error "this gc.h is not mheap's"
#endif

typedef struct node {
    struct node *next;
    long v;
} node;

static void *worker(void *arg) {
    node *h = arg;
    for (long i = 0; i < 100000; i++) {
        node *n = GC_NEW(node);
        n->v = i;
        n->next = i % 1000 ? h : NULL; /* (a list of at most 1000) */
        h = n;
    }
    GC_gcollect();
    long s = 0;
    for (; h; h = h->next) s += h->v;
    return (void *)s;
}

int main(void) {
    GC_INIT();
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, &r) != 0) return 1;
    long want = 0;
    for (long i = 99000; i < 100000; i++) want += i;
    printf("%s (%lu collections)\n", (long)r == want ? "mheap's gc.h works" : "wrong sum",
           (unsigned long)GC_get_gc_no());
    return (long)r == want ? 0 : 1;
}
