/* test_gc_boehm_final.c - bdwgc's finalization and link calls (gc.h) on
 * mheap: GC_REGISTER_FINALIZER and its variants with on-demand
 * finalization (GC_invoke_finalizers, GC_should_invoke_finalizers, the
 * notifier); the link calls' bdwgc results (GC_SUCCESS, GC_DUPLICATE,
 * GC_NOT_FOUND) for short and long links, which are apart, moving and
 * unregistering; a link inside its own object; GC_HIDE_POINTER; the
 * variables GC_finalize_on_demand, GC_finalizer_notifier and
 * GC_java_finalization written directly; unreachable finalizers with
 * Java-style finalization on (the default) and off; the GC_DEBUG forms;
 * GC_set_interrupt_finalizers; the await procedure; toggle references;
 * misuse of the link calls (an exact message, then abort). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../include/gc.h" /* (by path: tests also see src/gc.h) */
#include "../include/gc/javaxfc.h"
#include "check.h"
#include "child.h"

/* (the variables are deprecated in bdwgc's header, and in this one) */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define EXACT(cond) CHECK(cond)
#else
#define EXACT(cond) ((void)(cond))
#endif

typedef struct node {
    struct node *next;
    long id;
} node;

static int ran, notified, twice;
static unsigned mask; /* bit id: that object's finalizer ran, with its data */
static void GC_CALLBACK fin(void *obj, void *cd) {
    node *n = obj;
    if (n->id != (long)(intptr_t)cd) return;
    ran++;
    if (mask >> n->id & 1) twice++;
    mask |= 1u << n->id;
}
static void GC_CALLBACK notify(void) { notified++; }

static __attribute__((noinline)) void scrub(void) {
    char buf[65536];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static __attribute__((noinline)) node *make_node(void) {
    node *n = GC_MALLOC(sizeof *n);
    REQUIRE(n != NULL);
    return n;
}

static __attribute__((noinline)) void make_finalizable(void) {
    node *a = make_node(), *b = make_node(), *c = make_node();
    a->id = 1;
    b->id = 2;
    c->id = 3;
    GC_finalization_proc ofn = fin;
    void *ocd = (void *)1;
    GC_REGISTER_FINALIZER(a, fin, (void *)1, &ofn, &ocd);
    CHECK(ofn == NULL && ocd == NULL);
    GC_REGISTER_FINALIZER_NO_ORDER(b, fin, (void *)2, NULL, NULL);
    GC_REGISTER_FINALIZER_IGNORE_SELF(c, fin, (void *)3, NULL, NULL);
    c->next = c;
}

/* ---- the variables, written directly ---- */

static int direct_notified;
static void GC_CALLBACK direct_notify(void) { direct_notified++; }
static int plain_runs;
static void GC_CALLBACK plain_fin(void *obj, void *cd) {
    (void)obj;
    (void)cd;
    plain_runs++;
}
static __attribute__((noinline)) void make_plain(int n) {
    for (int i = 0; i < n; i++) {
        node *x = make_node();
        GC_REGISTER_FINALIZER_NO_ORDER(x, plain_fin, NULL, NULL, NULL);
    }
}

static void test_variables(void) {
    GC_finalize_on_demand = 1;
    GC_finalizer_notifier = direct_notify;
    CHECK_EQ(GC_get_finalize_on_demand(), 1);
    CHECK(GC_get_finalizer_notifier() == direct_notify);
    CHECK_EQ(GC_java_finalization, 1); /* (the default, as Debian builds bdwgc) */
    GC_set_java_finalization(0);
    CHECK_EQ(GC_java_finalization, 0);
    GC_java_finalization = 1;
    CHECK_EQ(GC_get_java_finalization(), 1);
    /* on demand: the notifier is called, nothing runs until asked */
    plain_runs = 0;
    make_plain(4);
    scrub();
    GC_gcollect();
    EXACT(direct_notified >= 1 && GC_should_invoke_finalizers());
    CHECK_EQ(plain_runs, 0);
    /* at most the interrupt count per call */
    GC_set_interrupt_finalizers(1);
    CHECK_EQ(GC_get_interrupt_finalizers(), 1u);
    int one = GC_invoke_finalizers();
    CHECK(one <= 1 && plain_runs == one);
    EXACT(one == 1);
    GC_set_interrupt_finalizers(0);
    GC_invoke_finalizers();
    EXACT(plain_runs == 4);
    GC_finalizer_notifier = 0;
    CHECK(GC_get_finalizer_notifier() == NULL);
}

/* ---- unreachable finalizers, Java-style finalization on and off ---- */

static int order, a_at, u_at, u_bad;
static void GC_CALLBACK a_fin(void *obj, void *cd) {
    (void)cd;
    node *a = obj;
    if (!a->next || a->next->id != 21) u_bad++;
    a_at = ++order;
}
static void GC_CALLBACK u_fin(void *obj, void *cd) {
    (void)cd;
    if (((node *)obj)->id != 21) u_bad++;
    u_at = ++order;
}
static __attribute__((noinline)) void make_pair(void) {
    node *u = make_node(), *a = make_node();
    u->id = 21;
    a->id = 20;
    a->next = u;
    GC_REGISTER_FINALIZER_NO_ORDER(a, a_fin, NULL, NULL, NULL);
    GC_REGISTER_FINALIZER_UNREACHABLE(u, u_fin, NULL, NULL, NULL);
}
/* Cycles until both ran (at most 4); how many cycles the first took. */
static int run_pair(int *first_cycle_runs) {
    order = a_at = u_at = 0;
    make_pair();
    scrub();
    int cycles = 0;
    *first_cycle_runs = -1;
    while (cycles < 4 && !(a_at && u_at)) {
        GC_gcollect();
        int n = GC_invoke_finalizers();
        if (*first_cycle_runs < 0) *first_cycle_runs = n;
        cycles++;
    }
    return cycles;
}

static void test_unreachable(void) {
    int first;
    /* on: the no-order finalizer first, the unreachable one a cycle later */
    GC_java_finalization = 1;
    (void)run_pair(&first);
    CHECK(!u_at || (a_at && a_at < u_at));
    EXACT(first == 1 && a_at == 1 && u_at == 2);
    /* off: it acts as ordered, and nothing holds it: one cycle for both */
    GC_java_finalization = 0;
    (void)run_pair(&first);
    EXACT(first == 2 && a_at && u_at);
    GC_java_finalization = 1;
    CHECK_EQ(u_bad, 0);
}

/* ---- the debug forms, the await procedure ---- */

static int debug_runs, awaited_n;
static void *awaited_obj;
static void GC_CALLBACK debug_fin(void *obj, void *cd) {
    if (cd == (void *)5 && obj == awaited_obj) debug_runs++;
}
static void GC_CALLBACK on_await(void *obj) {
    awaited_n++;
    awaited_obj = obj;
}
static __attribute__((noinline)) void make_debug(void) {
    node *x = make_node();
    GC_finalization_proc ofn = NULL;
    void *ocd = NULL;
    /* (the client data is a root: not x itself) */
    GC_debug_register_finalizer(x, debug_fin, (void *)4, &ofn, &ocd);
    CHECK(ofn == NULL && ocd == NULL);
    GC_debug_register_finalizer_ignore_self(x, debug_fin, (void *)5, &ofn, &ocd);
    CHECK(ofn == debug_fin && ocd == (void *)4);
    GC_debug_register_finalizer_no_order(x, debug_fin, (void *)5, NULL, NULL);
    GC_debug_register_finalizer_unreachable(x, debug_fin, (void *)5, NULL, NULL);
    GC_reachable_here(x);
}

static void test_debug_await(void) {
    GC_set_await_finalize_proc(on_await);
    CHECK(GC_get_await_finalize_proc() == on_await);
    make_debug();
    scrub();
    for (int r = 0; r < 3 && !debug_runs; r++) {
        GC_gcollect();
        GC_invoke_finalizers();
    }
    EXACT(debug_runs == 1 && awaited_n == 1);
    CHECK(debug_runs <= 1);
    GC_set_await_finalize_proc(0);
}

/* ---- toggle references ---- */

static GC_word held; /* hidden */
static int asked;
static GC_ToggleRefStatus answer = GC_TOGGLE_REF_STRONG;
static GC_ToggleRefStatus GC_CALLBACK toggle(void *obj) {
    if ((GC_word)obj == GC_HIDE_POINTER(held)) asked++;
    return answer;
}
static void **weak_box;
static __attribute__((noinline)) void make_held(void) {
    node *x = make_node();
    held = GC_HIDE_POINTER(x);
    weak_box[0] = x;
    CHECK_EQ(GC_general_register_disappearing_link(&weak_box[0], x), GC_SUCCESS);
    CHECK_EQ(GC_toggleref_add(x, 1), GC_SUCCESS);
}

static void test_toggle(void) {
    CHECK_EQ(GC_toggleref_add(make_node(), 1), GC_SUCCESS); /* (no function: not held) */
    weak_box = GC_MALLOC_ATOMIC(sizeof(void *));
    REQUIRE(weak_box != NULL);
    GC_set_toggleref_func(toggle);
    CHECK(GC_get_toggleref_func() == toggle);
    make_held();
    scrub();
    GC_gcollect();
    GC_gcollect();
    CHECK(weak_box[0] != NULL && asked == 2); /* held strongly, asked each time */
    answer = GC_TOGGLE_REF_WEAK;
    GC_gcollect();
    GC_gcollect();
    EXACT(weak_box[0] == NULL && asked == 3);
    GC_set_toggleref_func(0);
    CHECK(GC_get_toggleref_func() == NULL);
}

/* ---- misuse ---- */

static void bad_register(uintptr_t link) { (void)GC_general_register_disappearing_link((void **)link, weak_box); }
static void bad_long(uintptr_t obj) {
    static void *slot;
    (void)GC_register_long_link(&slot, (void *)obj);
}
static void bad_move(uintptr_t link) { (void)GC_move_long_link(weak_box, (void **)link); }
static void bad_self(uintptr_t link) { (void)GC_register_disappearing_link((void **)link); }

static void test_misuse(void) {
    void **box = GC_MALLOC_ATOMIC(4 * sizeof(void *));
    REQUIRE(box != NULL);
    weak_box = box;
    uintptr_t odd = (uintptr_t)box + 3;
    child_expect_abort("register misaligned", bad_register, odd, "GC_general_register_disappearing_link", odd);
    static int not_heap;
    child_expect_abort("long link to static", bad_long, (uintptr_t)&not_heap, "GC_register_long_link",
                       (uintptr_t)&not_heap);
    child_expect_abort("move to unaligned", bad_move, odd, "GC_move_long_link", odd);
    static void *outside;
    child_expect_abort("own object outside", bad_self, (uintptr_t)&outside, "GC_register_disappearing_link",
                       (uintptr_t)&outside);
}

/* GC_finalize_all: every registered finalizer runs, reachable objects'
 * too, once each; one that registers a finalizer on another object makes
 * the call go round again, and that one runs too. */
static void *all_keep[8];
static int all_ran[8], all_second;

static void GC_CALLBACK all_second_fin(void *obj, void *cd) {
    (void)obj, (void)cd;
    all_second++;
}
static void GC_CALLBACK all_fin(void *obj, void *cd) {
    int i = (int)(intptr_t)cd;
    CHECK(obj == all_keep[i]);
    all_ran[i]++;
    if (i == 0) GC_register_finalizer(all_keep[7], all_second_fin, NULL, NULL, NULL);
}

static void test_finalize_all(void) {
    for (int i = 0; i < 8; i++) {
        all_keep[i] = GC_MALLOC(32);
        REQUIRE(all_keep[i] != NULL);
    }
    for (int i = 0; i < 7; i++)
        (i % 2 ? GC_register_finalizer_no_order : GC_register_finalizer)(all_keep[i], all_fin,
                                                                        (void *)(intptr_t)i, NULL, NULL);
    GC_finalize_all();
    for (int i = 0; i < 7; i++) CHECK_EQ(all_ran[i], 1);
    CHECK_EQ(all_second, 1);
    CHECK_EQ(GC_should_invoke_finalizers(), 0);
    /* (all ran: nothing is left to run a second time) */
    GC_finalize_all();
    for (int i = 0; i < 7; i++) CHECK_EQ(all_ran[i], 1);
    CHECK_EQ(all_second, 1);
    for (int i = 0; i < 8; i++) CHECK(GC_base(all_keep[i]) == all_keep[i]); /* (reachable: kept) */
}

int main(void) {
    GC_INIT();
    GC_set_finalize_on_demand(1);
    CHECK_EQ(GC_get_finalize_on_demand(), 1);
    GC_set_finalizer_notifier(notify);
    CHECK(GC_get_finalizer_notifier() == notify);
    make_finalizable();
    scrub();
    GC_gcollect();
    EXACT(GC_should_invoke_finalizers() == 1);
    int n = 0;
    for (int r = 0; r < 4; r++) {
        n += GC_invoke_finalizers();
        scrub();
        GC_gcollect();
    }
    n += GC_invoke_finalizers();
    CHECK(n <= 3 && ran == n && twice == 0 && (mask & ~14u) == 0);
    /* the no-order and ignore-self ones (the ordered one may be kept by
     * a stale copy of its address, which a conservative collector
     * honours: test_gc_final checks the orders) */
    EXACT((mask & 12u) == 12u && notified >= 1);
    CHECK_EQ(GC_should_invoke_finalizers(), 0);

    /* links */
    void **l = GC_MALLOC_ATOMIC(4 * sizeof(void *));
    node *o = GC_MALLOC(sizeof *o), *p = GC_MALLOC(sizeof *p);
    REQUIRE(l && o && p);
    l[0] = o;
    CHECK_EQ(GC_general_register_disappearing_link(&l[0], o), GC_SUCCESS);
    CHECK_EQ(GC_general_register_disappearing_link(&l[0], o), GC_DUPLICATE);
    CHECK_EQ(GC_move_disappearing_link(&l[0], &l[1]), GC_SUCCESS);
    l[1] = o;
    CHECK_EQ(GC_move_disappearing_link(&l[0], &l[2]), GC_NOT_FOUND);
    CHECK_EQ(GC_register_long_link(&l[2], p), GC_SUCCESS);
    /* (short and long links are apart: l[2] has no short one) */
    CHECK_EQ(GC_move_disappearing_link(&l[1], &l[2]), GC_SUCCESS);
    CHECK_EQ(GC_move_disappearing_link(&l[2], &l[1]), GC_SUCCESS);
    CHECK_EQ(GC_general_register_disappearing_link(&l[3], o), GC_SUCCESS);
    CHECK_EQ(GC_move_disappearing_link(&l[1], &l[3]), GC_DUPLICATE);
    CHECK_EQ(GC_move_disappearing_link(&l[1], &l[1]), GC_SUCCESS);
    CHECK_EQ(GC_move_long_link(&l[0], &l[0]), GC_NOT_FOUND);
    CHECK_EQ(GC_move_long_link((void **)((char *)l + 3), &l[0]), GC_NOT_FOUND);
    CHECK_EQ(GC_move_long_link(&l[1], &l[3]), GC_NOT_FOUND); /* (l[1] is not a long link) */
    CHECK_EQ(GC_register_long_link(&l[1], p), GC_SUCCESS);    /* (and may be one too) */
    CHECK_EQ(GC_register_long_link(&l[1], o), GC_DUPLICATE);
    CHECK_EQ(GC_unregister_disappearing_link(&l[2]), 0);
    CHECK_EQ(GC_unregister_long_link(&l[2]), 1);
    CHECK_EQ(GC_unregister_long_link(&l[1]), 1);
    CHECK_EQ(GC_unregister_long_link(&l[1]), 0);
    CHECK_EQ(GC_unregister_disappearing_link(&l[1]), 1);
    CHECK_EQ(GC_unregister_disappearing_link(&l[1]), 0);
    CHECK_EQ(GC_unregister_disappearing_link(&l[3]), 1);
    CHECK_EQ(GC_unregister_disappearing_link((void **)((char *)l + 3)), 0);
    CHECK_EQ(GC_unregister_disappearing_link(NULL), 0);
    /* an interior pointer counts for its object */
    CHECK_EQ(GC_register_long_link(&l[2], (char *)p + 8), GC_SUCCESS);
    CHECK_EQ(GC_unregister_long_link(&l[2]), 1);
    /* a link inside its own object */
    node *self = GC_MALLOC(sizeof *self);
    REQUIRE(self != NULL);
    self->next = (node *)GC_HIDE_POINTER(self);
    CHECK_EQ(GC_register_disappearing_link((void **)&self->next), GC_SUCCESS);
    CHECK(GC_REVEAL_POINTER(self->next) == self);
    CHECK_EQ(GC_unregister_disappearing_link((void **)&self->next), 1);
    test_misuse(); /* (children: before the finalizer thread may start) */
    test_variables();
    test_unreachable();
    test_debug_await();
    test_toggle();
    test_finalize_all();
    return check_done("test_gc_boehm_final");
}
