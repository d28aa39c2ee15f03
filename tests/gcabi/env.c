/* env.c - a program written against bdwgc's gc.h, built against Debian's
 * libgc (-lgc) only; tests/gcabi/run.sh runs it with bdwgc's environment
 * variables set, as it is and with libmheap.so preloaded.  The argument
 * picks what it does and prints. */
#define GC_THREADS /* (for GC_get_parallel) */
#include <gc.h>
#include <stdio.h>
#include <string.h>

/* Garbage: n bytes in 1 KiB objects; whether a collection ran meanwhile. */
static const char *churn(size_t n) {
    GC_word before = GC_get_gc_no();
    for (size_t i = 0; i < n / 1024; i++) {
        char *p = GC_malloc(1024);
        if (!p) return "out of memory";
        p[0] = (char)i;
    }
    return GC_get_gc_no() == before ? "none" : "some";
}

static int ooms;
static void *count_oom(size_t n) {
    (void)n;
    ooms++;
    return NULL;
}

int main(int argc, char **argv) {
    GC_INIT();
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "collections") == 0) { /* 64 MiB of garbage */
        printf("collections while allocating: %s\n", churn(64 << 20));
    } else if (strcmp(what, "collections32") == 0) {
        printf("collections while allocating: %s\n", churn(32 << 20));
    } else if (strcmp(what, "limit") == 0) { /* up to 256 MiB kept */
        GC_set_oom_fn(count_oom);
        void **keep = GC_malloc_uncollectable(256 * sizeof(void *));
        int n = 0;
        while (n < 256 && (keep[n] = GC_malloc_atomic(1 << 20)) != NULL) n++;
        printf("an allocation failed before 256 MiB: %s\n", n < 256 ? "yes" : "no");
        printf("it returned NULL after asking the OOM function: %s\n", ooms > 0 ? "yes" : "no");
        printf("at least 16 MiB were had: %s\n", n >= 16 ? "yes" : "no");
    } else if (strcmp(what, "divisor") == 0) {
        printf("divisor %lu, variable %lu\n", (unsigned long)GC_get_free_space_divisor(),
               (unsigned long)GC_free_space_divisor);
    } else if (strcmp(what, "parallel") == 0) {
        printf("parallel %d\n", GC_get_parallel());
    } else if (strcmp(what, "dont_gc") == 0) {
        printf("disabled %d, GC_dont_gc %d\n", GC_is_disabled(), GC_dont_gc);
    } else {
        fprintf(stderr, "env: what?\n");
        return 2;
    }
    return 0;
}
