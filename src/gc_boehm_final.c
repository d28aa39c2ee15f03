/* gc_boehm_final.c - bdwgc's finalization and link calls (include/gc.h)
 * on mheap's finalizers and links (mheap_gc.h, src/gcfinal.c). */
#include <stdatomic.h>
#include <stddef.h>

#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "mheap_gc.h"

#define GCB_EXPORT __attribute__((visibility("default")))

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

GCB_EXPORT int GC_CALL GC_invoke_finalizers(void) { return (int)mh_gc_run_finalizers(); }
GCB_EXPORT int GC_CALL GC_should_invoke_finalizers(void) { return mh_gc_finalizers_pending() != 0; }

static _Atomic int on_demand;
static _Atomic GC_finalizer_notifier_proc notifier;
GCB_EXPORT void GC_CALL GC_set_finalize_on_demand(int v) {
    atomic_store(&on_demand, v != 0);
    mh_gc_set_finalize_on_demand(v);
}
GCB_EXPORT int GC_CALL GC_get_finalize_on_demand(void) { return atomic_load(&on_demand); }
GCB_EXPORT void GC_CALL GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn) {
    atomic_store(&notifier, fn);
    mh_gc_set_finalizer_notifier(fn);
}
GCB_EXPORT GC_finalizer_notifier_proc GC_CALL GC_get_finalizer_notifier(void) {
    return atomic_load(&notifier);
}

static int link_result(int r) { return r < 0 ? GC_NO_MEMORY : r ? GC_DUPLICATE : GC_SUCCESS; }

/* bdwgc: a link inside an object, cleared when that object goes. */
GCB_EXPORT int GC_CALL GC_register_disappearing_link(void **link) {
    void *base = mh_gc_base(link, NULL);
    return base ? link_result(mh_gc_register_disappearing_link(link, base)) : GC_NO_MEMORY;
}
GCB_EXPORT int GC_CALL GC_general_register_disappearing_link(void **link, const void *obj) {
    return link_result(mh_gc_register_disappearing_link(link, obj));
}
GCB_EXPORT int GC_CALL GC_register_long_link(void **link, const void *obj) {
    return link_result(mh_gc_register_long_link(link, obj));
}
GCB_EXPORT int GC_CALL GC_unregister_disappearing_link(void **link) {
    return mh_gc_unregister_link(link);
}
GCB_EXPORT int GC_CALL GC_unregister_long_link(void **link) { return mh_gc_unregister_link(link); }

static int move_result(int r) {
    return r == 0 ? GC_SUCCESS : r == 1 ? GC_DUPLICATE : r == -2 ? GC_NOT_FOUND : GC_NO_MEMORY;
}
GCB_EXPORT int GC_CALL GC_move_disappearing_link(void **link, void **new_link) {
    return move_result(mh_gc_move_link(link, new_link, 0));
}
GCB_EXPORT int GC_CALL GC_move_long_link(void **link, void **new_link) {
    return move_result(mh_gc_move_link(link, new_link, 1));
}
