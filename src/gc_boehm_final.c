/* gc_boehm_final.c - bdwgc's finalization and link calls (include/gc.h)
 * on mheap's finalizers and links (mheap_gc.h, src/gcfinal.c), and
 * bdwgc's finalization variables, which gcfinal.c reads. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* (the variables are defined here: no deprecation warning for it; and
 * no nonnull attributes, so that the checks for NULL below stay) */
#define GC_ATTR_DEPRECATED
#define GC_ATTR_NONNULL(argnum)
#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "mheap_gc.h"
#include "print.h"

#define GCB_EXPORT __attribute__((visibility("default")))

/* bdwgc's variables, which a program may write directly (bdwgc: "the
 * setter and getter are unsynchronized").  They are the only storage of
 * these switches, for the mh_gc_ setters too, and gcfinal.c reads them
 * where it decides: a binary linked against libgc holds its own copy (a
 * copy relocation), to which libmheap.so's references are bound when it
 * is preloaded beneath that binary.  Defaults as Debian's libgc builds
 * them (JAVA_FINALIZATION defined, FINALIZE_ON_DEMAND not). */
GCB_EXPORT int GC_finalize_on_demand = 0;
GCB_EXPORT int GC_java_finalization = 1;
GCB_EXPORT GC_finalizer_notifier_proc GC_finalizer_notifier = 0;

#define VAR_GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define VAR_SET(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

/* (bdwgc's finalization procedure and mheap's have one shape) */
static void reg(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                void **ocd, int mode) {
    mh_gc_finalizer_fn old = NULL;
    void *old_cd = NULL;
    /* (bdwgc ignores a pointer that is not a collectable object's start) */
    if (mh_gc_register_finalizer(obj, (mh_gc_finalizer_fn)fn, cd, mode, &old, &old_cd) != 0) {
        old = NULL;
        old_cd = NULL;
    }
    if (ofn) *ofn = (GC_finalization_proc)old;
    if (ocd) *ocd = old_cd;
}

GCB_EXPORT void GC_CALL GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd,
                                              GC_finalization_proc *ofn, void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_ORDERED);
}
GCB_EXPORT void GC_CALL GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn,
                                                          void *cd, GC_finalization_proc *ofn,
                                                          void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_IGNORE_SELF);
}
GCB_EXPORT void GC_CALL GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn,
                                                       void *cd, GC_finalization_proc *ofn,
                                                       void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_NO_ORDER);
}
GCB_EXPORT void GC_CALL GC_register_finalizer_unreachable(void *obj, GC_finalization_proc fn,
                                                          void *cd, GC_finalization_proc *ofn,
                                                          void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_UNREACHABLE);
}

/* The debug forms: objects have no debug header here, so the same. */
GCB_EXPORT void GC_CALL GC_debug_register_finalizer(void *obj, GC_finalization_proc fn, void *cd,
                                                    GC_finalization_proc *ofn, void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_ORDERED);
}
GCB_EXPORT void GC_CALL GC_debug_register_finalizer_ignore_self(void *obj,
                                                                GC_finalization_proc fn, void *cd,
                                                                GC_finalization_proc *ofn,
                                                                void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_IGNORE_SELF);
}
GCB_EXPORT void GC_CALL GC_debug_register_finalizer_no_order(void *obj, GC_finalization_proc fn,
                                                             void *cd, GC_finalization_proc *ofn,
                                                             void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_NO_ORDER);
}
GCB_EXPORT void GC_CALL GC_debug_register_finalizer_unreachable(void *obj,
                                                                GC_finalization_proc fn, void *cd,
                                                                GC_finalization_proc *ofn,
                                                                void **ocd) {
    reg(obj, fn, cd, ofn, ocd, MH_GC_FINALIZE_UNREACHABLE);
}

/* ---- running them ---- */

static _Atomic unsigned interrupt_after; /* finalizers per GC_invoke_finalizers (0: all) */

GCB_EXPORT int GC_CALL GC_invoke_finalizers(void) {
    return (int)mh_gc_run_finalizers_max(atomic_load(&interrupt_after));
}
GCB_EXPORT int GC_CALL GC_should_invoke_finalizers(void) { return mh_gc_finalizers_pending() != 0; }
GCB_EXPORT void GC_CALL GC_set_interrupt_finalizers(unsigned n) { atomic_store(&interrupt_after, n); }
GCB_EXPORT unsigned GC_CALL GC_get_interrupt_finalizers(void) { return atomic_load(&interrupt_after); }

GCB_EXPORT void GC_CALL GC_set_finalize_on_demand(int v) { VAR_SET(GC_finalize_on_demand, v); }
GCB_EXPORT int GC_CALL GC_get_finalize_on_demand(void) { return VAR_GET(GC_finalize_on_demand); }
GCB_EXPORT void GC_CALL GC_set_java_finalization(int v) { VAR_SET(GC_java_finalization, v); }
GCB_EXPORT int GC_CALL GC_get_java_finalization(void) { return VAR_GET(GC_java_finalization); }
GCB_EXPORT void GC_CALL GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn) {
    VAR_SET(GC_finalizer_notifier, fn);
}
GCB_EXPORT GC_finalizer_notifier_proc GC_CALL GC_get_finalizer_notifier(void) {
    return VAR_GET(GC_finalizer_notifier);
}

GCB_EXPORT void GC_CALL GC_set_await_finalize_proc(GC_await_finalize_proc fn) {
    mh_gc_set_await_finalize_fn(fn);
}
GCB_EXPORT GC_await_finalize_proc GC_CALL GC_get_await_finalize_proc(void) {
    return mh_gc_get_await_finalize_fn();
}

/* ---- toggle references ---- */

static _Atomic GC_toggleref_func toggle_fn;

/* (the function is loaded once: GC_set_toggleref_func(NULL) may run while
 * a cycle asks; a reference then stays as it is, strong) */
static int toggle_status(void *obj) {
    GC_toggleref_func fn = atomic_load(&toggle_fn);
    return fn ? (int)fn(obj) : GC_TOGGLE_REF_STRONG;
}

GCB_EXPORT void GC_CALL GC_set_toggleref_func(GC_toggleref_func fn) {
    atomic_store(&toggle_fn, fn);
    mh_gc_set_toggleref_fn(fn ? toggle_status : NULL);
}
GCB_EXPORT GC_toggleref_func GC_CALL GC_get_toggleref_func(void) { return atomic_load(&toggle_fn); }
GCB_EXPORT int GC_CALL GC_toggleref_add(void *obj, int is_strong) {
    if (mh_gc_toggleref_add(obj, is_strong) == 0) return GC_SUCCESS;
    if (errno == EINVAL) mhi_fatal_at("GC_toggleref_add", obj);
    return GC_NO_MEMORY;
}

/* ---- links ---- */

/* bdwgc aborts on a link that is NULL or not aligned. */
static void **good_link(const char *who, void **link) {
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1))) mhi_fatal_at(who, link);
    return link;
}

/* The object holding obj (bdwgc's is the start; an interior pointer
 * counts for its object, as bdwgc's mark bits do); none is misuse. */
static void *good_obj(const char *who, const void *obj) {
    void *base = mh_gc_base(obj, NULL);
    if (!base) mhi_fatal_at(who, obj);
    return base;
}

static int link_result(int r) { return r < 0 ? GC_NO_MEMORY : r ? GC_DUPLICATE : GC_SUCCESS; }

/* bdwgc: a link inside an object, cleared when that object goes. */
GCB_EXPORT int GC_CALL GC_register_disappearing_link(void **link) {
    const char *who = "GC_register_disappearing_link";
    void *base = good_obj(who, good_link(who, link));
    return link_result(mh_gc_register_disappearing_link(link, base));
}
GCB_EXPORT int GC_CALL GC_general_register_disappearing_link(void **link, const void *obj) {
    const char *who = "GC_general_register_disappearing_link";
    return link_result(mh_gc_register_disappearing_link(good_link(who, link), good_obj(who, obj)));
}
GCB_EXPORT int GC_CALL GC_register_long_link(void **link, const void *obj) {
    const char *who = "GC_register_long_link";
    return link_result(mh_gc_register_long_link(good_link(who, link), good_obj(who, obj)));
}
GCB_EXPORT int GC_CALL GC_unregister_disappearing_link(void **link) {
    return mh_gc_unregister_link(link);
}
GCB_EXPORT int GC_CALL GC_unregister_long_link(void **link) {
    return mh_gc_unregister_long_link(link);
}

static int move_result(int r) {
    return r == 0 ? GC_SUCCESS : r == 1 ? GC_DUPLICATE : r == -2 ? GC_NOT_FOUND : GC_NO_MEMORY;
}
GCB_EXPORT int GC_CALL GC_move_disappearing_link(void **link, void **new_link) {
    good_link("GC_move_disappearing_link", new_link);
    return move_result(mh_gc_move_link(link, new_link, 0));
}
GCB_EXPORT int GC_CALL GC_move_long_link(void **link, void **new_link) {
    good_link("GC_move_long_link", new_link);
    return move_result(mh_gc_move_link(link, new_link, 1));
}

GCB_EXPORT void GC_CALL GC_finalize_all(void) { (void)mh_gc_finalize_all(); }
