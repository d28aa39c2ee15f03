/* compat_debug.c - part of compat.c's program, compiled with GC_DEBUG
 * defined: GC_MALLOC and the other macros then call the GC_debug_ forms
 * (bdwgc adds a header and checks it; mheap allocates as the plain forms
 * do).  Returns the number of checks that failed. */
#define GC_DEBUG
#include <gc.h>

#include <string.h>

int debug_forms(void);

typedef struct {
    void *p;
    long v;
} pair;

int debug_forms(void) {
    int bad = 0;
    char *p = GC_MALLOC(40);
    bad += !(p != NULL && p[0] == 0 && p[39] == 0);
    memcpy(p, "debug", 6);
    p = GC_REALLOC(p, 400);
    bad += !(p != NULL && strcmp(p, "debug") == 0);
    char *a = GC_MALLOC_ATOMIC(40);
    bad += a == NULL;
    char *s = GC_STRDUP("debugging");
    bad += !(s != NULL && strcmp(s, "debugging") == 0);
    char *n = GC_STRNDUP("debugging", 5);
    bad += !(n != NULL && strcmp(n, "debug") == 0);
    void *u = GC_MALLOC_UNCOLLECTABLE(24);
    void *au = GC_MALLOC_ATOMIC_UNCOLLECTABLE(24);
    char *io = GC_MALLOC_IGNORE_OFF_PAGE(100000);
    char *aio = GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(100000);
    pair *t = GC_NEW(pair);
    long *l = GC_NEW_ATOMIC(long);
    pair *tu = GC_NEW_UNCOLLECTABLE(pair);
    bad += !(u && au && io && aio && t && l && tu && io[99999] == 0 && t->p == NULL);
    GC_REGISTER_DISPLACEMENT(0);
    GC_gcollect();
    bad += strcmp(p, "debug") != 0 || strcmp(s, "debugging") != 0;
    GC_FREE(p);
    GC_FREE(a);
    GC_FREE(s);
    GC_FREE(n);
    GC_FREE(u);
    GC_FREE(au);
    GC_FREE(io);
    GC_FREE(aio);
    GC_FREE(t);
    GC_FREE(l);
    GC_FREE(tu);
    return bad;
}
