/* test_gc_boehm_final.c - bdwgc's finalization and link calls (gc.h) on
 * mheap: GC_REGISTER_FINALIZER and its variants with on-demand
 * finalization (GC_invoke_finalizers, GC_should_invoke_finalizers, the
 * notifier); the link calls' bdwgc results (GC_SUCCESS, GC_DUPLICATE,
 * GC_NOT_FOUND), moving and unregistering; a link inside its own object;
 * GC_HIDE_POINTER. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../include/gc.h" /* (by path: tests also see src/gc.h) */
#include "check.h"

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
    CHECK_EQ(GC_move_disappearing_link(&l[1], &l[2]), GC_DUPLICATE);
    CHECK_EQ(GC_move_long_link(&l[1], &l[3]), GC_NOT_FOUND); /* (l[1] is not a long link) */
    CHECK_EQ(GC_unregister_long_link(&l[2]), 1);
    CHECK_EQ(GC_unregister_disappearing_link(&l[1]), 1);
    CHECK_EQ(GC_unregister_disappearing_link(&l[1]), 0);
    /* a link inside its own object */
    node *self = GC_MALLOC(sizeof *self);
    REQUIRE(self != NULL);
    self->next = (node *)GC_HIDE_POINTER(self);
    CHECK_EQ(GC_register_disappearing_link((void **)&self->next), GC_SUCCESS);
    CHECK(GC_REVEAL_POINTER(self->next) == self);
    CHECK_EQ(GC_unregister_disappearing_link((void **)&self->next), 1);
    return check_done("test_gc_boehm_final");
}
