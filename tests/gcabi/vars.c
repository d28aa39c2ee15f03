/* vars.c - a program written against bdwgc's gc.h that reads and writes
 * bdwgc's variables directly (deprecated there, but programs do).  Built
 * against Debian's libgc (-lgc) only, and run by tests/gcabi/run.sh as it
 * is and with libmheap.so preloaded: both runs must print the same lines
 * (each states a behaviour both collectors share), and exit 0. */
#define GC_IGNORE_WARN /* (mheap's notes go through the warn proc) */
#include <gc.h>
#include <gc/gc_mark.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;
#define SAY(what, cond)                                                                     \
    do {                                                                                    \
        int ok_ = (cond) != 0;                                                              \
        printf("%s: %s\n", what, ok_ ? "yes" : "NO");                                       \
        if (!ok_) failed = 1;                                                               \
    } while (0)

/* Garbage: n bytes in 1 KiB objects, none kept. */
static void churn(size_t n) {
    for (size_t i = 0; i < n / 1024; i++) {
        char *p = GC_malloc(1024);
        if (!p) abort();
        p[0] = (char)i;
    }
}

static size_t oom_asked;
static char oom_answer[16];
static void *my_oom(size_t n) {
    oom_asked = n;
    return oom_answer;
}

static int resized;
static GC_word resized_to;
static void on_resize(GC_word n) {
    resized++;
    if (n > resized_to) resized_to = n; /* (the largest: it may shrink too) */
}

static int same_obj_reports;
static void same_obj_print(void *p, void *q) {
    (void)p, (void)q;
    same_obj_reports++;
}

/* GC_push_other_roots: a procedure that pushes a block of the C
 * library's malloc (which neither collector scans) holding the only
 * pointer to an object. */
static void **hidden_block;
static int pushes;
static GC_push_other_roots_proc old_push;
static void push_hidden(void) {
    pushes++;
    GC_push_all(hidden_block, hidden_block + 1);
    if (old_push) old_push();
}
static GC_word hidden_link; /* the object, hidden, and cleared if it goes */

static void __attribute__((noinline)) make_hidden(void) {
    char *obj = GC_malloc_atomic(64);
    strcpy(obj, "pushed");
    *hidden_block = obj;
    hidden_link = GC_HIDE_POINTER(obj);
    if (GC_general_register_disappearing_link((void **)&hidden_link, obj) != GC_SUCCESS) abort();
}

int main(void) {
    /* written before the start, as bdwgc's documentation allows */
    GC_all_interior_pointers = 1;
    GC_INIT();
    GC_on_heap_resize = on_resize;
    SAY("GC_get_on_heap_resize() is what GC_on_heap_resize was set to",
        GC_get_on_heap_resize() == on_resize);
    int local;
    SAY("GC_stackbottom is set, above this frame", GC_stackbottom && (char *)&local < GC_stackbottom);

    /* GC_gc_no counts collections */
    GC_word n = GC_gc_no;
    GC_gcollect();
    SAY("GC_gcollect adds 1 to GC_gc_no", GC_gc_no == n + 1);
    SAY("GC_get_gc_no() is GC_gc_no", GC_get_gc_no() == GC_gc_no);

    /* GC_dont_gc: no collection at all */
    GC_dont_gc = 1;
    n = GC_gc_no;
    SAY("GC_dont_gc = 1: GC_is_disabled()", GC_is_disabled());
    GC_gcollect();
    churn(64 << 20);
    SAY("GC_dont_gc = 1: no collection, asked for or not", GC_gc_no == n);
    GC_dont_gc = 0;
    SAY("GC_dont_gc = 0: !GC_is_disabled()", !GC_is_disabled());
    GC_disable();
    SAY("GC_disable(): GC_dont_gc is 1", GC_dont_gc == 1);
    GC_enable();
    SAY("GC_enable(): GC_dont_gc is 0", GC_dont_gc == 0);
    churn(64 << 20);
    SAY("GC_dont_gc = 0: allocation collects", GC_gc_no > n);

    /* GC_free_space_divisor: written, then read back through the getter */
    GC_free_space_divisor = 5;
    SAY("GC_free_space_divisor = 5: the getter says 5", GC_get_free_space_divisor() == 5);
    churn(16 << 20);
    SAY("GC_free_space_divisor still 5 after allocating", GC_free_space_divisor == 5);
    GC_set_free_space_divisor(7);
    SAY("GC_set_free_space_divisor(7): the variable is 7", GC_free_space_divisor == 7);
    GC_free_space_divisor = 3;

    /* GC_oom_fn: written; answers a failed allocation */
    GC_set_max_heap_size(256 << 20);
    GC_oom_fn = my_oom;
    SAY("GC_get_oom_fn() is what GC_oom_fn was set to", GC_get_oom_fn() == my_oom);
    /* (laundered: GC_malloc is declared malloc-like, so the compiler may
     * take its result for no other object's address) */
    void *big = GC_malloc((size_t)1 << 30);
    __asm__("" : "+r"(big));
    SAY("an allocation past the limit returns GC_oom_fn's answer", big == (void *)oom_answer);
    SAY("GC_oom_fn is asked for the size", oom_asked == (size_t)1 << 30);
    GC_set_oom_fn(my_oom);
    SAY("GC_set_oom_fn: the variable holds it", GC_oom_fn == my_oom);

    /* GC_non_gc_bytes: the getter and the setter use the variable (what
     * counts in it differs: bdwgc 8.2.2 does not add a small uncollectable
     * object's bytes, yet takes them off at GC_free) */
    GC_word before = GC_non_gc_bytes;
    GC_set_non_gc_bytes(before + 4096);
    SAY("GC_set_non_gc_bytes: the variable holds it", GC_non_gc_bytes == before + 4096);
    GC_non_gc_bytes = before;
    SAY("GC_get_non_gc_bytes() is GC_non_gc_bytes", GC_get_non_gc_bytes() == before);

    /* the plain settings: the getters read the variables */
    GC_full_freq = 7;
    SAY("GC_full_freq = 7: GC_get_full_freq() is 7", GC_get_full_freq() == 7);
    GC_time_limit = 10;
    SAY("GC_time_limit = 10: GC_get_time_limit() is 10", GC_get_time_limit() == 10);
    GC_time_limit = GC_TIME_UNLIMITED;
    GC_dont_precollect = 1;
    SAY("GC_dont_precollect = 1: the getter says 1", GC_get_dont_precollect() == 1);
    GC_max_retries = 0;
    SAY("GC_max_retries = 0: the getter says 0", GC_get_max_retries() == 0);
    SAY("GC_no_dls is 0, and the getter says so", GC_no_dls == 0 && GC_get_no_dls() == 0);
    SAY("GC_find_leak is 0, and the getter says so", GC_find_leak == 0 && GC_get_find_leak() == 0);
    SAY("GC_dont_expand is 0, and the getter says so", GC_dont_expand == 0 && GC_get_dont_expand() == 0);
    SAY("GC_all_interior_pointers is 1", GC_all_interior_pointers == 1);

    /* GC_on_heap_resize: called as the heap grows */
    SAY("the heap grew: GC_on_heap_resize was called with a size", resized > 0 && resized_to > 0);
    void **keep = GC_malloc(64 * sizeof(void *));
    for (int i = 0; i < 64; i++) keep[i] = GC_malloc_atomic(1 << 20); /* 64 MiB live */
    churn(64 << 20);
    GC_gcollect();
    SAY("the live objects are still there", GC_base(keep[63]) == keep[63]);

    /* GC_same_obj_print_proc: called when the pointers are in two objects */
    GC_same_obj_print_proc = same_obj_print;
    char *a = GC_malloc(64), *b = GC_malloc(64);
    (void)GC_same_obj(a + 8, a);
    SAY("GC_same_obj in one object reports nothing", same_obj_reports == 0);
    (void)GC_same_obj(a, b);
    SAY("GC_same_obj across two objects calls GC_same_obj_print_proc", same_obj_reports == 1);

    /* GC_push_other_roots, through its setter: the pushed range is a root */
    hidden_block = malloc(sizeof(void *));
    make_hidden();
    old_push = GC_get_push_other_roots();
    GC_set_push_other_roots(push_hidden);
    GC_gcollect();
    GC_gcollect();
    SAY("GC_push_other_roots's procedure runs in a collection", pushes >= 2);
    SAY("an object pushed by it survives", hidden_link != 0 &&
        strcmp((char *)GC_REVEAL_POINTER(hidden_link), "pushed") == 0);
    GC_set_push_other_roots(old_push);
    free(hidden_block);

    printf("%s\n", failed ? "FAILED" : "all as bdwgc");
    return failed;
}
