/* test_gc_boehm_decls.c - the part of bdwgc 8.2's interface that gc.h's
 * section "the rest of bdwgc 8.2's gc.h" and gc/gc_inline.h declare, used
 * as a program built against mheap's headers uses it (bdwgc's own gctest
 * calls each of these):
 *
 *   inline      GC_MALLOC_WORDS, GC_MALLOC_ATOMIC_WORDS and GC_CONS give
 *               objects of the right size, kind and contents that live
 *               while held; the caller's free-list array is not touched
 *   macros      the stubborn-change and store macros, the pointer
 *               arithmetic macros, GC_same_obj's print procedure
 *   calls       GC_memalign, GC_try_to_collect, GC_get_prof_stats,
 *               GC_get_size_map_at, GC_incr_bytes_allocd, the stack
 *               bottom calls, the incremental-mode answers
 *   fork        GC_set_handle_fork and GC_atfork_* around fork: the child
 *               collects and allocates */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "../include/gc.h" /* (by path: src/gc.h is the collector's own) */
#include "../include/gc/gc_inline.h"

#include "check.h"

static void *held[4];

static void test_inline(void) {
    void *tfl[3][GC_TINY_FREELISTS];
    memset(tfl, 0, sizeof tfl);
    void *a, *b, *c;
    GC_MALLOC_WORDS(a, 3, tfl[0]);
    GC_MALLOC_ATOMIC_WORDS(b, 20, tfl[1]);
    REQUIRE(a != NULL && b != NULL);
    CHECK_EQ(GC_size(a), 2 * GC_GRANULE_BYTES); /* 3 words: two whole granules */
    CHECK(GC_size(b) >= 20 * sizeof(void *));
    CHECK_EQ(((void **)a)[0], NULL);
    CHECK_EQ(((void **)a)[2], NULL);
    CHECK_EQ(GC_get_kind_and_size(a, NULL), GC_I_NORMAL);
    CHECK_EQ(GC_get_kind_and_size(b, NULL), GC_I_PTRFREE);
    GC_CONS(c, a, b, tfl[2]);
    REQUIRE(c != NULL);
    CHECK(((void **)c)[0] == a && ((void **)c)[1] == b);
    CHECK_EQ(GC_get_kind_and_size(c, NULL), GC_I_NORMAL);
    int untouched = 1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < GC_TINY_FREELISTS; j++) untouched &= tfl[i][j] == NULL;
    CHECK(untouched);
    held[0] = c; /* (a and b only through c) */
    GC_gcollect();
    GC_gcollect();
    CHECK(GC_base(a) == a && GC_base(b) == b && GC_base(c) == c);
    CHECK(((void **)c)[0] == a && ((void **)c)[1] == b);
    CHECK_EQ(GC_RAW_BYTES_FROM_INDEX(3), 48);
    CHECK_EQ(GC_WORDS_TO_WHOLE_GRANULES(3), 2);
}

static int same_reports;
static void GC_CALLBACK same_print(void *p, void *q) {
    (void)p, (void)q;
    same_reports++;
}

static void test_macros(void) {
    void **p = GC_MALLOC(4 * sizeof(void *)), *q = GC_MALLOC(16);
    REQUIRE(p != NULL && q != NULL);
    GC_END_STUBBORN_CHANGE(p);
    GC_CHANGE_STUBBORN(p);
    GC_PTR_STORE_AND_DIRTY(p + 1, q);
    CHECK(p[1] == q);
    GC_PTR_STORE(p + 2, q);
    CHECK(p[2] == q);
    void **r = GC_NEW_STUBBORN(void *);
    CHECK(r != NULL && GC_base(r) == r);
    char *x = GC_MALLOC(64);
    REQUIRE(x != NULL);
    char *y = GC_PTR_ADD(x, 5);
    CHECK(y == x + 5);
    (void)GC_PRE_INCR(y, 3);
    CHECK(y == x + 8);
    (void)GC_POST_INCR(y);
    (void)GC_POST_DECR(y);
    CHECK(y == x + 8);
    GC_same_obj_print_proc = same_print;
    CHECK(GC_same_obj(x + 10, x) == x + 10);
    CHECK_EQ(same_reports, 0);
    CHECK(GC_same_obj(x, q) == x);
    CHECK_EQ(same_reports, 1);
    CHECK(GC_pre_incr((void **)&y, 4) == x + 12 && y == x + 12);
    CHECK(GC_post_incr((void **)&y, -4) == x + 12 && y == x + 8);
    CHECK(GC_is_valid_displacement(x + 3) == x + 3);
    GC_noop1((GC_word)x);
}

static int GC_CALLBACK never(void) { return 0; }

static void test_calls(void) {
    CHECK_EQ(GC_is_init_called(), 1);
    for (size_t align = 32; align <= 4096; align *= 2) {
        char *p = GC_memalign(align, 17);
        CHECK(p != NULL && (uintptr_t)p % align == 0 && GC_base(p) != NULL && *p == 0);
    }
    void *m = NULL;
    CHECK_EQ(GC_posix_memalign(&m, 64, 100), 0);
    CHECK(m != NULL && (uintptr_t)m % 64 == 0);

    GC_word before = GC_get_gc_no();
    CHECK_EQ(GC_try_to_collect(never), 1);
    CHECK(GC_get_gc_no() > before);
    GC_disable();
    CHECK_EQ(GC_try_to_collect(never), 0);
    GC_enable();

    struct GC_prof_stats_s st;
    CHECK_EQ(GC_get_prof_stats(&st, sizeof st), sizeof st);
    CHECK_EQ(st.gc_no, GC_get_gc_no());
    CHECK(st.heapsize_full > 0 && st.heapsize_full == GC_get_heap_size());
    CHECK_EQ(GC_get_size_map_at(-1), (size_t)-1);
    CHECK(GC_get_size_map_at(1) >= 1 && GC_get_size_map_at(100) >= 100);

    GC_word total = GC_get_total_bytes();
    GC_incr_bytes_allocd(1 << 20);
    CHECK(GC_get_total_bytes() >= total + (1 << 20));
    GC_incr_bytes_freed(0);

    CHECK_EQ(GC_incremental_protection_needs(), GC_PROTECTS_NONE);
    GC_start_incremental_collection();
    GC_set_rate(10);
    CHECK_EQ(GC_get_rate(), 10);
    struct GC_timeval_s tv = {5, 7};
    GC_set_time_limit_tv(tv);
    tv = GC_get_time_limit_tv();
    CHECK(tv.tv_ms == 5 && tv.tv_nsec == 7);
    GC_set_time_limit(GC_TIME_UNLIMITED);

    struct GC_stack_base sb;
    void *handle = GC_get_my_stackbottom(&sb);
    CHECK(handle != NULL && sb.mem_base != NULL && (char *)sb.mem_base > (char *)&sb);
    GC_set_stackbottom(handle, &sb); /* (its own stack: accepted) */
}

static void test_fork(void) {
    GC_set_handle_fork(1);
    held[1] = GC_MALLOC(100);
    GC_atfork_prepare();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        GC_atfork_child();
        GC_gcollect();
        void *p = GC_MALLOC(1000);
        _exit(p != NULL && GC_base(held[1]) == held[1] ? 0 : 1);
    }
    GC_atfork_parent();
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void GC_CALLBACK quiet(char *msg, GC_word arg) { (void)msg, (void)arg; }

int main(void) {
    GC_INIT();
    GC_set_warn_proc(quiet);
    test_inline();
    test_macros();
    test_calls();
    test_fork();
    return check_done("test_gc_boehm_decls");
}
