/* A program for bdwgc's gc.h, built against an installed mheap with
 * `pkg-config --cflags --libs mheap-gc`: the gc.h it gets must be mheap's,
 * a list it builds must survive collections, and so must an object held
 * by a typed one (gc_typed.h under both of bdwgc's paths, gc/gc_mark.h). */
#define GC_THREADS
#include <gc.h>
#include <gc/gc_mark.h>
#include <gc/gc_typed.h>
#include <gc_typed.h>
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
    GC_word bm[1] = {0};
    GC_set_bit(bm, 1);
    node **typed = GC_malloc_explicitly_typed(4 * sizeof(void *), GC_make_descriptor(bm, 4));
    typed[1] = GC_NEW(node);
    typed[1]->v = 7;
    for (int i = 0; i < 50000; i++) (void)GC_NEW(node);
    GC_gcollect();
    if (typed[1]->v != 7 || GC_base(typed[1]) != typed[1]) r = 0;
    printf("%s (%lu collections)\n", (long)r == want ? "mheap's gc.h works" : "wrong sum",
           (unsigned long)GC_get_gc_no());
    return (long)r == want ? 0 : 1;
}
