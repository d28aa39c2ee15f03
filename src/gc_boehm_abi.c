/* gc_boehm_abi.c - what a binary built against bdwgc's libgc.so.1 finds in
 * libmheap.so besides the interface of gc_boehm.c (LD_PRELOAD, or `mheap
 * run --gc`): bdwgc's variables, read where bdwgc reads them; bdwgc's
 * environment variables, read when the GC heap starts; and the rest of
 * the functions libgc.so.1 exports from bdwgc's public headers, each
 * honoured, answered harmlessly (said once through the warn procedure:
 * "mheap: ... is not honoured"), or refused ("mheap: GC_xxx is not
 * supported", then abort), so that no call reaches libgc's own code and
 * its heap, which nothing initialised.
 *
 * A binary that refers to one of the variables holds its own copy (a
 * copy relocation), and libmheap.so's references resolve to that copy:
 * so each is read through its symbol where it matters, never cached.
 *
 * When each is read:
 *   GC_dont_gc              every collection, automatic or asked for
 *                           (gc.c); GC_disable and GC_enable count in it
 *   GC_free_space_divisor   when a collection starts (the pacing) and by
 *                           the getter: a new value sets the GC percent
 *   GC_oom_fn               when an allocation fails
 *   GC_push_other_roots     in each mark, the world stopped
 *   GC_on_heap_resize       after each collection, when the heap's size
 *                           has changed since the last call
 *   GC_*_print_proc         when the pointer checks fail
 *   GC_all_interior_pointers, GC_no_dls, GC_find_leak, GC_dont_expand,
 *   GC_use_entire_heap      at the start and after each collection: a
 *                           value mheap does not honour is said once
 *   GC_max_retries          when an allocation fails (non-zero: said once)
 *   GC_stackbottom          at the start (one set before is said once)
 * and written: GC_gc_no (+1 after each collection), GC_non_gc_bytes (the
 * uncollectable objects' bytes), GC_parallel (the markers less one, at
 * the start).  GC_full_freq and GC_time_limit matter to bdwgc only in
 * incremental mode, which mheap does not have (bdwgc too may decline
 * it): they are kept for their getters.  GC_dont_precollect: mheap never
 * collects as it starts.
 *
 * Not defined: the data libgc.so.1 exports that no public header
 * declares (GC_arrays, GC_objfreelist_ptr, GC_aobjfreelist_ptr,
 * GC_uobjfreelist_ptr, GC_auobjfreelist_ptr, GC_gcj_kind,
 * GC_gcj_debug_kind, GC_debug_header_size, GC_on_abort): the internals
 * of bdwgc's own inline allocation, which a program does not touch. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GC_ATTR_NONNULL(argnum)
#define GC_ATTR_DEPRECATED
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "../include/gc/gc_mark.h"

#include "gc.h" /* (the collector's: mhi_gc_mark_contents, the kinds) */
#include "mheap_gc.h"
#include "os.h"
#include "print.h"
#include "sizeclass.h"

#define GCB_EXPORT __attribute__((visibility("default")))
#define LOAD(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

/* bdwgc's types for the calls below that include/gc.h does not declare */
typedef int(GC_CALLBACK *GC_has_static_roots_func)(const char *, void *, size_t);
typedef int(GC_CALLBACK *GC_disclaim_proc)(void *);
struct GC_finalizer_closure;

/* ---- messages ---- */

/* msg (a whole line, no conversion) through the warn procedure, once. */
static void note(_Atomic int *said, const char *msg) {
    if (!atomic_exchange(said, 1)) GC_get_warn_proc()((char *)msg, 0);
}
#define NOTE(msg)                                                                           \
    do {                                                                                    \
        static _Atomic int said_;                                                           \
        note(&said_, msg);                                                                  \
    } while (0)
#define UNSUPPORTED(name) mhi_fatal("%s is not supported", name)

/* ---- the variables ---- */

static void *GC_CALLBACK default_oom(size_t size) {
    (void)size;
    return NULL;
}
/* mheap scans every thread's stack itself: the default pushes nothing. */
static void GC_CALLBACK default_push_other_roots(void) {}
static void GC_CALLBACK default_is_visible_print(void *p) { mhi_fatal_at("GC_is_visible", p); }
static void GC_CALLBACK default_same_obj_print(void *p, void *q) {
    (void)q;
    mhi_fatal_at("GC_same_obj: the pointers are in different objects", p);
}
static void GC_CALLBACK default_valid_displacement_print(void *p) {
    mhi_fatal_at("GC_is_valid_displacement", p);
}

/* The percent that a divisor gives, and back (see gc.h). */
static long percent_of(GC_word d) { return (long)((100 + d / 2) / d); }
static GC_word divisor_of(long pct) {
    if (pct < 0) return 0;
    if (pct == 0) return 201; /* (the smallest divisor that gives 0) */
    GC_word d = (GC_word)((100 + pct / 2) / pct);
    return d ? d : 1;
}

GCB_EXPORT GC_word GC_gc_no;
GCB_EXPORT int GC_parallel;
GCB_EXPORT GC_oom_func GC_oom_fn = default_oom;
GCB_EXPORT GC_on_heap_resize_proc GC_on_heap_resize;
GCB_EXPORT int GC_find_leak;
GCB_EXPORT int GC_all_interior_pointers = 1;
GCB_EXPORT int GC_dont_gc;
GCB_EXPORT int GC_dont_expand;
GCB_EXPORT int GC_use_entire_heap;
GCB_EXPORT int GC_full_freq = 19;
GCB_EXPORT GC_word GC_non_gc_bytes;
GCB_EXPORT int GC_no_dls;
GCB_EXPORT GC_word GC_free_space_divisor = 1; /* (mheap's default percent, 100) */
GCB_EXPORT GC_word GC_max_retries;
GCB_EXPORT char *GC_stackbottom;
GCB_EXPORT int GC_dont_precollect;
GCB_EXPORT unsigned long GC_time_limit = GC_TIME_UNLIMITED;
GCB_EXPORT GC_push_other_roots_proc GC_push_other_roots = default_push_other_roots;
GCB_EXPORT void(GC_CALLBACK *GC_is_visible_print_proc)(void *) = default_is_visible_print;
GCB_EXPORT void(GC_CALLBACK *GC_same_obj_print_proc)(void *, void *) = default_same_obj_print;
GCB_EXPORT void(GC_CALLBACK *GC_is_valid_displacement_print_proc)(void *) =
    default_valid_displacement_print;

/* The variable's value as last seen (or written) here: a different one
 * was written since, by the program, and is applied; and the divisor the
 * program last applied (0: none). */
static _Atomic GC_word divisor_seen = 1, divisor_applied;

static void sync_divisor(void) {
    GC_word d = LOAD(GC_free_space_divisor);
    if (d == atomic_load(&divisor_seen)) return;
    atomic_store(&divisor_seen, d);
    if (d == 0) {
        NOTE("mheap: GC_free_space_divisor 0 is not honoured (the pacing stays as it was)\n");
        return;
    }
    atomic_store(&divisor_applied, d);
    mh_gc_set_percent(percent_of(d));
}

/* The divisor in force: the one last applied while the percent is the
 * one it gave; else (the percent was set another way since:
 * mh_gc_set_percent, MHEAP_OPTIONS) the divisor that percent gives.  The
 * variable is set to it. */
static GC_word divisor_in_force(void) {
    sync_divisor();
    GC_word a = atomic_load(&divisor_applied);
    long pct = mh_gc_get_percent();
    GC_word d = a && percent_of(a) == pct ? a : divisor_of(pct);
    if (d != LOAD(GC_free_space_divisor)) {
        STORE(GC_free_space_divisor, d);
        atomic_store(&divisor_seen, d);
    }
    return d;
}

GCB_EXPORT void GC_CALL GC_set_free_space_divisor(GC_word d) {
    if (d == 0) mhi_fatal("GC_set_free_space_divisor: 0 (the divisor must be at least 1)");
    STORE(GC_free_space_divisor, d);
    sync_divisor();
}
GCB_EXPORT GC_word GC_CALL GC_get_free_space_divisor(void) { return divisor_in_force(); }

/* Values bdwgc would act on and mheap does not, said once each. */
static void check_variables(void) {
    if (!LOAD(GC_all_interior_pointers))
        NOTE("mheap: GC_all_interior_pointers 0 is not honoured: interior pointers are always "
             "recognised\n");
    if (LOAD(GC_no_dls))
        NOTE("mheap: GC_no_dls is not honoured: the data of every loaded library stays a root\n");
    if (LOAD(GC_find_leak))
        NOTE("mheap: GC_find_leak is not supported: there is no leak-finding mode (unreachable "
             "objects are collected, not reported)\n");
    if (LOAD(GC_dont_expand))
        NOTE("mheap: GC_dont_expand is not honoured: the heap grows as the pacing allows\n");
    if (LOAD(GC_use_entire_heap))
        NOTE("mheap: GC_use_entire_heap is not honoured\n");
}

/* ---- allocation failures ---- */

void *mhi_gc_boehm_oom(size_t size);
void *mhi_gc_boehm_oom(size_t size) {
    if (LOAD(GC_max_retries))
        NOTE("mheap: GC_max_retries is not honoured: an allocation fails after mheap's own "
             "collections\n");
    GC_oom_func fn = LOAD(GC_oom_fn);
    return fn ? fn(size) : NULL;
}

GCB_EXPORT void GC_CALL GC_set_oom_fn(GC_oom_func fn) {
    if (!fn) mhi_fatal_at("GC_set_oom_fn", NULL);
    STORE(GC_oom_fn, fn);
}
GCB_EXPORT GC_oom_func GC_CALL GC_get_oom_fn(void) { return LOAD(GC_oom_fn); }

GCB_EXPORT void GC_CALL GC_abort_on_oom(void) { mhi_fatal("GC_abort_on_oom: out of memory"); }

/* The uncollectable objects' bytes: gc_boehm.c calls this with +1 for a
 * new object, -1 for one about to be freed (it counts only if p starts an
 * uncollectable object). */
void mhi_gc_boehm_non_gc(const void *p, int sign);
void mhi_gc_boehm_non_gc(const void *p, int sign) {
    mhi_span *s = p ? mhi_gc_span_of(p) : NULL;
    if (!s || s->gc_kind != MHI_GC_UNCOLL) return;
    GC_word n = (GC_word)mh_gc_size(p);
    if (sign > 0) __atomic_fetch_add(&GC_non_gc_bytes, n, __ATOMIC_RELAXED);
    else __atomic_fetch_sub(&GC_non_gc_bytes, n, __ATOMIC_RELAXED);
}
GCB_EXPORT GC_word GC_CALL GC_get_non_gc_bytes(void) { return LOAD(GC_non_gc_bytes); }
GCB_EXPORT void GC_CALL GC_set_non_gc_bytes(GC_word n) { STORE(GC_non_gc_bytes, n); }

/* ---- collection ---- */

static _Atomic int force_unmap, no_auto;
/* Read by gc.c's pacing: no automatic collection. */
int mhi_gc_boehm_no_auto(void);
int mhi_gc_boehm_no_auto(void) { return atomic_load_explicit(&no_auto, memory_order_relaxed); }

GCB_EXPORT void GC_CALL GC_disable(void) { __atomic_fetch_add(&GC_dont_gc, 1, __ATOMIC_RELAXED); }
/* An unmatched GC_enable leaves collection enabled. */
GCB_EXPORT void GC_CALL GC_enable(void) {
    int v = LOAD(GC_dont_gc);
    while (v > 0 &&
           !__atomic_compare_exchange_n(&GC_dont_gc, &v, v - 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}
GCB_EXPORT int GC_CALL GC_is_disabled(void) { return mh_gc_is_disabled(); }

GCB_EXPORT void GC_CALL GC_gcollect(void) {
    if (!mh_gc_is_disabled()) mh_gc_collect(atomic_load(&force_unmap));
}
GCB_EXPORT void GC_CALL GC_gcollect_and_unmap(void) {
    if (!mh_gc_is_disabled()) mh_gc_collect(1);
}
/* A collection is never interrupted: it always completes (1), unless
 * collection is disabled (0, as bdwgc). */
GCB_EXPORT int GC_CALL GC_try_to_collect(GC_stop_func stop) {
    (void)stop;
    if (mh_gc_is_disabled()) return 0;
    GC_gcollect();
    return 1;
}
GCB_EXPORT void GC_CALL GC_set_force_unmap_on_gcollect(int on) { atomic_store(&force_unmap, on != 0); }
GCB_EXPORT int GC_CALL GC_get_force_unmap_on_gcollect(void) { return atomic_load(&force_unmap); }
GCB_EXPORT void GC_CALL GC_set_disable_automatic_collection(int on) { atomic_store(&no_auto, on != 0); }
GCB_EXPORT int GC_CALL GC_get_disable_automatic_collection(void) { return atomic_load(&no_auto); }

static _Atomic(GC_stop_func) stop_func;
GCB_EXPORT void GC_CALL GC_set_stop_func(GC_stop_func fn) {
    if (!fn) mhi_fatal_at("GC_set_stop_func", NULL);
    atomic_store(&stop_func, fn);
    NOTE("mheap: GC_set_stop_func is not honoured: collections always complete\n");
}
static int GC_CALLBACK never_stop(void) { return 0; }
GCB_EXPORT GC_stop_func GC_CALL GC_get_stop_func(void) {
    GC_stop_func fn = atomic_load(&stop_func);
    return fn ? fn : never_stop;
}

GCB_EXPORT void GC_CALL GC_set_dont_expand(int on) {
    STORE(GC_dont_expand, on != 0);
    check_variables();
}
GCB_EXPORT int GC_CALL GC_get_dont_expand(void) { return LOAD(GC_dont_expand); }
GCB_EXPORT void GC_CALL GC_set_dont_precollect(int on) { STORE(GC_dont_precollect, on != 0); }
GCB_EXPORT int GC_CALL GC_get_dont_precollect(void) { return LOAD(GC_dont_precollect); }
GCB_EXPORT void GC_CALL GC_set_find_leak(int on) {
    STORE(GC_find_leak, on != 0);
    check_variables();
}
GCB_EXPORT int GC_CALL GC_get_find_leak(void) { return LOAD(GC_find_leak); }
GCB_EXPORT void GC_CALL GC_set_full_freq(int n) { STORE(GC_full_freq, n); }
GCB_EXPORT int GC_CALL GC_get_full_freq(void) { return LOAD(GC_full_freq); }
GCB_EXPORT void GC_CALL GC_set_max_retries(GC_word n) { STORE(GC_max_retries, n); }
GCB_EXPORT GC_word GC_CALL GC_get_max_retries(void) { return LOAD(GC_max_retries); }
GCB_EXPORT void GC_CALL GC_set_time_limit(unsigned long ms) { STORE(GC_time_limit, ms); }
GCB_EXPORT unsigned long GC_CALL GC_get_time_limit(void) { return LOAD(GC_time_limit); }
static _Atomic unsigned long time_limit_ns;
GCB_EXPORT void GC_CALL GC_set_time_limit_tv(struct GC_timeval_s tv) {
    STORE(GC_time_limit, tv.tv_ms);
    atomic_store(&time_limit_ns, tv.tv_nsec);
}
GCB_EXPORT struct GC_timeval_s GC_CALL GC_get_time_limit_tv(void) {
    struct GC_timeval_s tv = {LOAD(GC_time_limit), atomic_load(&time_limit_ns)};
    return tv;
}

/* Incremental mode only (not offered): kept for the getters. */
static _Atomic int rate = 10, max_prior_attempts = 1, manual_vdb;
GCB_EXPORT void GC_CALL GC_set_rate(int n) { atomic_store(&rate, n); }
GCB_EXPORT int GC_CALL GC_get_rate(void) { return atomic_load(&rate); }
GCB_EXPORT void GC_CALL GC_set_max_prior_attempts(int n) { atomic_store(&max_prior_attempts, n); }
GCB_EXPORT int GC_CALL GC_get_max_prior_attempts(void) { return atomic_load(&max_prior_attempts); }
GCB_EXPORT void GC_CALL GC_set_manual_vdb_allowed(int on) { atomic_store(&manual_vdb, on != 0); }
GCB_EXPORT int GC_CALL GC_get_manual_vdb_allowed(void) { return atomic_load(&manual_vdb); }
GCB_EXPORT void GC_CALL GC_start_incremental_collection(void) {}
GCB_EXPORT int GC_CALL GC_incremental_protection_needs(void) { return 0; /* GC_PROTECTS_NONE */ }

static _Atomic GC_word min_bytes_allocd = 1, allocd_bytes_per_finalizer = 10000;
GCB_EXPORT void GC_CALL GC_set_min_bytes_allocd(size_t n) {
    atomic_store(&min_bytes_allocd, n ? n : 1);
    NOTE("mheap: GC_set_min_bytes_allocd is not honoured: mheap's pacing sets the least "
         "allocation between collections\n");
}
GCB_EXPORT size_t GC_CALL GC_get_min_bytes_allocd(void) { return atomic_load(&min_bytes_allocd); }
GCB_EXPORT void GC_CALL GC_set_allocd_bytes_per_finalizer(GC_word n) {
    atomic_store(&allocd_bytes_per_finalizer, n);
    NOTE("mheap: GC_set_allocd_bytes_per_finalizer is not honoured: finalizers do not pace "
         "collections\n");
}
GCB_EXPORT GC_word GC_CALL GC_get_allocd_bytes_per_finalizer(void) {
    return atomic_load(&allocd_bytes_per_finalizer);
}

static _Atomic int pages_executable;
GCB_EXPORT void GC_CALL GC_set_pages_executable(int on) {
    atomic_store(&pages_executable, on != 0);
    if (on) NOTE("mheap: GC_set_pages_executable(1) is not honoured: GC heap pages are not executable\n");
}
GCB_EXPORT int GC_CALL GC_get_pages_executable(void) { return 0; }

static _Atomic(GC_abort_func) abort_func;
static void GC_CALLBACK default_on_abort(const char *msg) {
    if (msg) mhi_printf(2, "%s\n", msg);
}
GCB_EXPORT void GC_CALL GC_set_abort_func(GC_abort_func fn) {
    if (!fn) mhi_fatal_at("GC_set_abort_func", NULL);
    atomic_store(&abort_func, fn);
    NOTE("mheap: GC_set_abort_func is not honoured: mheap's fatal errors print their line and "
         "abort\n");
}
GCB_EXPORT GC_abort_func GC_CALL GC_get_abort_func(void) {
    GC_abort_func fn = atomic_load(&abort_func);
    return fn ? fn : default_on_abort;
}

GCB_EXPORT void GC_CALL GC_set_all_interior_pointers(int on) {
    STORE(GC_all_interior_pointers, on != 0);
    check_variables();
}
/* (interior pointers are always recognised: see gc.h) */
GCB_EXPORT int GC_CALL GC_get_all_interior_pointers(void) { return 1; }

GCB_EXPORT void GC_CALL GC_set_no_dls(int on) {
    STORE(GC_no_dls, on);
    check_variables();
}
GCB_EXPORT int GC_CALL GC_get_no_dls(void) { return LOAD(GC_no_dls); }

GCB_EXPORT void GC_CALL GC_set_on_heap_resize(GC_on_heap_resize_proc fn) { STORE(GC_on_heap_resize, fn); }
GCB_EXPORT GC_on_heap_resize_proc GC_CALL GC_get_on_heap_resize(void) { return LOAD(GC_on_heap_resize); }

static _Atomic(GC_on_collection_event_proc) collection_event;
GCB_EXPORT void GC_CALL GC_set_on_collection_event(GC_on_collection_event_proc fn) {
    atomic_store(&collection_event, fn);
    if (fn)
        NOTE("mheap: GC_set_on_collection_event: only GC_EVENT_START and GC_EVENT_END are "
             "given\n");
}
GCB_EXPORT GC_on_collection_event_proc GC_CALL GC_get_on_collection_event(void) {
    return atomic_load(&collection_event);
}

static _Atomic(GC_on_thread_event_proc) thread_event;
GCB_EXPORT void GC_CALL GC_set_on_thread_event(GC_on_thread_event_proc fn) {
    atomic_store(&thread_event, fn);
    if (fn) NOTE("mheap: GC_set_on_thread_event is not honoured (no thread events are given)\n");
}
GCB_EXPORT GC_on_thread_event_proc GC_CALL GC_get_on_thread_event(void) {
    return atomic_load(&thread_event);
}

/* ---- hooks in the cycle (gc.c) ---- */

/* With the world lock held, as a cycle starts: the pacing reads the
 * divisor. */
void mhi_gc_boehm_cycle_begins(void);
void mhi_gc_boehm_cycle_begins(void) {
    sync_divisor();
    GC_push_other_roots_proc other = LOAD(GC_push_other_roots);
    atomic_store(&mhi_gc_other_roots,
                 (void (*)(void))(other == default_push_other_roots ? NULL : other));
    GC_on_collection_event_proc fn = atomic_load(&collection_event);
    if (fn) fn(GC_EVENT_START);
}

static _Atomic uint64_t freed_at_gc, reclaimed_at_gc, reclaimed_before_gc, alloc_at_gc;
static _Atomic size_t resize_seen;

/* After a cycle, no lock held. */
void mhi_gc_boehm_cycle_done(void);
void mhi_gc_boehm_cycle_done(void) {
    __atomic_fetch_add(&GC_gc_no, 1, __ATOMIC_RELAXED);
    mh_gc_stats_t st;
    (void)mh_gc_stats_get(&st, sizeof st);
    atomic_store(&freed_at_gc, st.freed_bytes);
    atomic_store(&reclaimed_before_gc, atomic_load(&reclaimed_at_gc));
    atomic_store(&reclaimed_at_gc, st.swept_bytes + st.reclaimed_bytes);
    atomic_store(&alloc_at_gc, st.alloc_bytes);
    GC_on_heap_resize_proc resize = LOAD(GC_on_heap_resize);
    size_t heap = (size_t)st.heap_bytes;
    if (resize && atomic_exchange(&resize_seen, heap) != heap) resize((GC_word)heap);
    GC_on_collection_event_proc fn = atomic_load(&collection_event);
    if (fn) fn(GC_EVENT_END);
    check_variables();
}

GCB_EXPORT GC_word GC_CALL GC_get_gc_no(void) { return LOAD(GC_gc_no); }

/* GC_push_other_roots is the storage of gc_boehm_kinds.c's
 * GC_set_push_other_roots; the pause calls it through mhi_gc_other_roots,
 * set from the variable as each cycle begins (above). */
GC_push_other_roots_proc mhi_gc_boehm_other_roots_fn(void);
GC_push_other_roots_proc mhi_gc_boehm_other_roots_fn(void) { return LOAD(GC_push_other_roots); }
void mhi_gc_boehm_set_other_roots_fn(GC_push_other_roots_proc fn);
void mhi_gc_boehm_set_other_roots_fn(GC_push_other_roots_proc fn) { STORE(GC_push_other_roots, fn); }
/* mheap's finalization records are always reached: nothing to push. */
GCB_EXPORT void GC_CALL GC_push_finalizer_structures(void) {}

/* ---- statistics ---- */

GCB_EXPORT size_t GC_CALL GC_get_expl_freed_bytes_since_gc(void) {
    mh_gc_stats_t st;
    (void)mh_gc_stats_get(&st, sizeof st);
    return (size_t)(st.freed_bytes - atomic_load(&freed_at_gc));
}
GCB_EXPORT size_t GC_CALL GC_get_obtained_from_os_bytes(void) { return mh_gc_heap_size(); }

static _Atomic int measuring;
static _Atomic uint64_t measure_from_ns;
GCB_EXPORT void GC_CALL GC_start_performance_measurement(void) {
    mh_gc_stats_t st;
    (void)mh_gc_stats_get(&st, sizeof st);
    atomic_store(&measure_from_ns, st.pause_total_ns);
    atomic_store(&measuring, 1);
}
/* The collections' pauses since the measurement started, in ms. */
GCB_EXPORT unsigned long GC_CALL GC_get_full_gc_total_time(void) {
    if (!atomic_load(&measuring)) return 0;
    mh_gc_stats_t st;
    (void)mh_gc_stats_get(&st, sizeof st);
    return (unsigned long)((st.pause_total_ns - atomic_load(&measure_from_ns)) / 1000000);
}

static long markers(void) {
    long m = mh_option_get("gc_markers");
    if (m <= 0) {
        m = (long)mhi_os_ncpu();
        if (m > 8) m = 8;
    }
    return m < 1 ? 1 : m;
}

GCB_EXPORT int GC_CALL GC_get_parallel(void) { return LOAD(GC_parallel); }

static size_t prof_stats(struct GC_prof_stats_s *out, size_t size) {
    struct GC_prof_stats_s s;
    GC_word heap, nfree, unmapped, since, total;
    GC_get_heap_usage_safe(&heap, &nfree, &unmapped, &since, &total);
    mh_gc_stats_t st;
    (void)mh_gc_stats_get(&st, sizeof st);
    s.heapsize_full = heap;
    s.free_bytes_full = nfree;
    s.unmapped_bytes = unmapped;
    s.bytes_allocd_since_gc = since;
    s.allocd_bytes_before_gc = total - since;
    s.non_gc_bytes = LOAD(GC_non_gc_bytes);
    s.gc_no = LOAD(GC_gc_no);
    s.markers_m1 = (GC_word)(st.markers > 0 ? st.markers - 1 : 0);
    s.bytes_reclaimed_since_gc = (GC_word)(st.swept_bytes + st.reclaimed_bytes - atomic_load(&reclaimed_at_gc));
    s.reclaimed_bytes_before_gc = (GC_word)atomic_load(&reclaimed_at_gc);
    s.expl_freed_bytes_since_gc = (GC_word)(st.freed_bytes - atomic_load(&freed_at_gc));
    s.obtained_from_os_bytes = heap;
    size_t n = size < sizeof s ? size : sizeof s;
    memcpy(out, &s, n);
    if (size > n) memset((char *)out + n, 0xff, size - n); /* (fields this layer does not know) */
    return n;
}
GCB_EXPORT size_t GC_CALL GC_get_prof_stats(struct GC_prof_stats_s *out, size_t size) {
    return prof_stats(out, size);
}
GCB_EXPORT size_t GC_CALL GC_get_prof_stats_unsafe(struct GC_prof_stats_s *out, size_t size) {
    return prof_stats(out, size);
}

/* The bytes an allocation of i bytes takes; -1 past the small sizes. */
GCB_EXPORT size_t GC_CALL GC_get_size_map_at(int i) {
    if (i < 0 || (size_t)i > MHI_SMALL_SIZE_MAX) return (size_t)-1;
    return mhi_class_size[mhi_size_class((size_t)i)];
}

/* The debug forms have no header. */

/* ---- allocation ---- */

/* An alignment beyond the objects' own: an interior pointer of a larger
 * object (it keeps the object alive, as every interior pointer does). */
GCB_EXPORT void *GC_CALL GC_memalign(size_t align, size_t lb) {
    if (align <= 16 || (align & (align - 1))) return GC_malloc(lb);
    if (lb > SIZE_MAX - align) return mhi_gc_boehm_oom(lb);
    char *p = GC_malloc(lb + align - 1);
    if (!p) return NULL;
    return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}
GCB_EXPORT int GC_CALL GC_posix_memalign(void **memptr, size_t align, size_t lb) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = GC_memalign(align, lb);
    if (!p) return ENOMEM;
    *memptr = p;
    return 0;
}

/* Stubborn objects are ordinary ones in bdwgc 8 too. */
GCB_EXPORT void *GC_CALL GC_malloc_stubborn(size_t lb) { return GC_malloc(lb); }
GCB_EXPORT void *GC_CALL GC_debug_malloc_stubborn(size_t lb, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc(lb);
}
GCB_EXPORT void GC_CALL GC_change_stubborn(const void *p) { (void)p; }
GCB_EXPORT void GC_CALL GC_debug_change_stubborn(const void *p) { (void)p; }
GCB_EXPORT void GC_CALL GC_end_stubborn_change(const void *p) { (void)p; }
GCB_EXPORT void GC_CALL GC_debug_end_stubborn_change(const void *p) { (void)p; }
GCB_EXPORT void GC_CALL GC_ptr_store_and_dirty(void *p, const void *q) {
    *(const void **)p = q;
}
GCB_EXPORT void GC_CALL GC_debug_ptr_store_and_dirty(void *p, const void *q) {
    *(const void **)p = q;
}

/* ---- pointer checks ---- */

GCB_EXPORT void *GC_CALL GC_same_obj(void *p, void *q) {
    void *bp = mh_gc_base(p, NULL);
    if (bp ? bp != mh_gc_base(q, NULL) : mh_gc_is_heap_ptr(p) && mh_gc_is_heap_ptr(q))
        LOAD(GC_same_obj_print_proc)(p, q);
    return p;
}
GCB_EXPORT void *GC_CALL GC_pre_incr(void **p, ptrdiff_t how_much) {
    void *initial = *p, *result = GC_same_obj((char *)initial + how_much, initial);
    *p = result;
    return result;
}
GCB_EXPORT void *GC_CALL GC_post_incr(void **p, ptrdiff_t how_much) {
    void *initial = *p, *result = GC_same_obj((char *)initial + how_much, initial);
    *p = result;
    return initial;
}
/* Every displacement into an object is valid (interior pointers count);
 * a heap address in no object is not. */
GCB_EXPORT void *GC_CALL GC_is_valid_displacement(void *p) {
    if (mh_gc_is_heap_ptr(p) && !mh_gc_base(p, NULL)) LOAD(GC_is_valid_displacement_print_proc)(p);
    return p;
}
GCB_EXPORT void GC_CALL GC_noop1(GC_word x) { __asm__ volatile("" : : "r"(x) : "memory"); }
GCB_EXPORT void *GC_CALL GC_clear_stack(void *arg) { return arg; }

/* ---- roots and stacks ---- */

GCB_EXPORT void GC_CALL GC_exclude_static_roots(void *lo, void *hi) {
    (void)lo, (void)hi;
    NOTE("mheap: GC_exclude_static_roots is not honoured: static data stays a root\n");
}
GCB_EXPORT void GC_CALL GC_clear_exclusion_table(void) {}
GCB_EXPORT void GC_CALL GC_register_has_static_roots_callback(GC_has_static_roots_func fn) {
    if (fn)
        NOTE("mheap: GC_register_has_static_roots_callback is not honoured: the data of every "
             "loaded library stays a root\n");
}
GCB_EXPORT int GC_CALL GC_is_tmp_root(void *p) {
    (void)p;
    NOTE("mheap: GC_is_tmp_root is not honoured: it answers 0\n");
    return 0;
}

static _Thread_local char thread_handle;

GCB_EXPORT void *GC_CALL GC_get_my_stackbottom(struct GC_stack_base *sb) {
    uintptr_t lo, hi;
    sb->mem_base = mhi_os_stack_bounds(&lo, &hi) ? (void *)hi : NULL;
    return &thread_handle;
}
/* A base inside the thread's stack changes nothing (the whole stack is
 * scanned); one outside (another stack: coroutines) cannot be followed. */
GCB_EXPORT void GC_CALL GC_set_stackbottom(void *handle, const struct GC_stack_base *sb) {
    uintptr_t lo, hi, base = (uintptr_t)sb->mem_base;
    if ((handle && handle != &thread_handle) || !mhi_os_stack_bounds(&lo, &hi) || base < lo ||
        base > hi)
        UNSUPPORTED("GC_set_stackbottom (another stack than the calling thread's own)");
    NOTE("mheap: GC_set_stackbottom is not honoured: the thread's whole stack is scanned\n");
}
GCB_EXPORT void GC_CALL GC_register_altstack(void *stack, GC_word size, void *altstack,
                                             GC_word altsize) {
    (void)stack, (void)size, (void)altstack, (void)altsize;
    NOTE("mheap: GC_register_altstack is not honoured: an alternate signal stack is not "
         "scanned\n");
}

/* ---- threads and fork ---- */

/* mheap handles fork itself, always. */
GCB_EXPORT void GC_CALL GC_set_handle_fork(int on) { (void)on; }
GCB_EXPORT void GC_CALL GC_atfork_prepare(void) {}
GCB_EXPORT void GC_CALL GC_atfork_parent(void) {}
GCB_EXPORT void GC_CALL GC_atfork_child(void) {}

GCB_EXPORT void GC_CALL GC_suspend_thread(void *thread) {
    (void)thread;
    UNSUPPORTED("GC_suspend_thread");
}
GCB_EXPORT void GC_CALL GC_resume_thread(void *thread) {
    (void)thread;
    UNSUPPORTED("GC_resume_thread");
}
/* (no thread is ever suspended so: GC_suspend_thread aborts) */
GCB_EXPORT int GC_CALL GC_is_thread_suspended(void *thread) {
    (void)thread;
    return 0;
}
GCB_EXPORT void GC_CALL GC_stop_world_external(void) { UNSUPPORTED("GC_stop_world_external"); }
GCB_EXPORT void GC_CALL GC_start_world_external(void) { UNSUPPORTED("GC_start_world_external"); }

/* ---- what mheap does not offer ---- */

GCB_EXPORT void GC_CALL GC_init_gcj_malloc(int mp_index, void *mp) {
    (void)mp_index, (void)mp;
    UNSUPPORTED("GC_init_gcj_malloc");
}
GCB_EXPORT void *GC_CALL GC_gcj_malloc(size_t lb, void *vtable) {
    (void)lb, (void)vtable;
    UNSUPPORTED("GC_gcj_malloc");
}
GCB_EXPORT void *GC_CALL GC_gcj_malloc_ignore_off_page(size_t lb, void *vtable) {
    (void)lb, (void)vtable;
    UNSUPPORTED("GC_gcj_malloc_ignore_off_page");
}
GCB_EXPORT void *GC_CALL GC_debug_gcj_malloc(size_t lb, void *vtable, const char *s, int i) {
    (void)lb, (void)vtable, (void)s, (void)i;
    UNSUPPORTED("GC_debug_gcj_malloc");
}
GCB_EXPORT void GC_CALL GC_init_finalized_malloc(void) { UNSUPPORTED("GC_init_finalized_malloc"); }
GCB_EXPORT void *GC_CALL GC_finalized_malloc(size_t size, const struct GC_finalizer_closure *fc) {
    (void)size, (void)fc;
    UNSUPPORTED("GC_finalized_malloc");
}
GCB_EXPORT void GC_CALL GC_register_disclaim_proc(int kind, GC_disclaim_proc proc, int mark) {
    (void)kind, (void)proc, (void)mark;
    UNSUPPORTED("GC_register_disclaim_proc");
}
/* The caller holds GC_alloc_lock (mh_gc_lock), as bdwgc requires; but
 * a program built without GC_THREADS has an empty GC_alloc_lock (as with
 * bdwgc), and mheap's own threads may collect meanwhile: then the lock
 * is taken here. */
GCB_EXPORT void GC_CALL GC_enumerate_reachable_objects_inner(GC_reachable_object_proc proc,
                                                             void *cd) {
    bool take = !mhi_gc_api_locked();
    if (take) mh_gc_lock();
    mhi_gc_each_object(proc, cd);
    if (take) mh_gc_unlock();
}
/* (used only by bdwgc's own object printing) */
GCB_EXPORT void GC_CALL GC_register_describe_type_fn(int kind, GC_describe_type_fn fn) {
    (void)kind, (void)fn;
    NOTE("mheap: GC_register_describe_type_fn is not honoured (no object printing)\n");
}
GCB_EXPORT void GC_CALL GC_print_free_list(int kind, size_t granules) {
    (void)kind, (void)granules;
    NOTE("mheap: GC_print_free_list is not honoured (no free lists to print)\n");
}
GCB_EXPORT void GC_CALL GC_set_log_fd(int fd) {
    (void)fd;
    NOTE("mheap: GC_set_log_fd is not honoured: the collector's lines go to stderr\n");
}
GCB_EXPORT void GC_CALL GC_deinit(void) {
    NOTE("mheap: GC_deinit is not honoured: the GC heap stays until the process exits\n");
}

/* ---- the start ---- */

static _Atomic int started;
GCB_EXPORT int GC_CALL GC_is_init_called(void) { return atomic_load(&started); }

/* A size in bytes with an optional k, M or G (bdwgc's form). */
static bool env_size(const char *name, GC_word *out) {
    const char *s = getenv(name);
    if (!s || !*s) return false;
    GC_word v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (GC_word)-1 / 10 - 10) return false;
        v = v * 10 + (GC_word)(*p - '0');
    }
    if (p == s) goto bad;
    int shift = 0;
    if (*p == 'k' || *p == 'K') shift = 10, p++;
    else if (*p == 'm' || *p == 'M') shift = 20, p++;
    else if (*p == 'g' || *p == 'G') shift = 30, p++;
    if (*p) goto bad;
    if (shift && v > ((GC_word)-1 >> shift)) goto bad;
    *out = v << shift;
    return true;
bad:
    mhi_printf(2, "mheap: warning: ignoring %s=%s (not a size)\n", name, s);
    return false;
}
static bool env_set(const char *name) { return getenv(name) != NULL; }

/* bdwgc's environment variables that change its behaviour and that
 * mheap does not honour; each found is said once. */
static const char *const env_not_honoured[][2] = {
    {"GC_PRINT_VERBOSE_STATS", "the extra detail (GC_PRINT_STATS's one line per collection is given)"},
    {"GC_DUMP_REGULARLY", "no heap dumps"},
    {"GC_ENABLE_INCREMENTAL", "no incremental mode"},
    {"GC_UNMAP_THRESHOLD", "mheap's scavenger returns free pages after scavenge_delay_ms"},
    {"GC_RETRY_SIGNALS", "threads are stopped with one signal each"},
    {"GC_BACKTRACES", "no back-traces"},
    {"GC_LOG_FILE", "the collector's lines go to stderr"},
    {"GC_PRINT_ADDRESS_MAP", "no address map"},
    {"GC_LOOP_ON_ABORT", "mheap's fatal errors abort"},
    {"GC_PRINT_BACK_HEIGHT", "no back graph"},
    {"GC_TRACE", "no tracing"},
};

static void read_environment(void) {
    GC_word v;
    if (env_size("GC_INITIAL_HEAP_SIZE", &v)) {
        size_t heap = mh_gc_heap_size();
        if (v > heap) (void)mh_gc_expand((size_t)(v - heap));
    }
    if (env_size("GC_MAXIMUM_HEAP_SIZE", &v)) mh_gc_set_memory_limit((size_t)v);
    if (env_set("GC_PRINT_STATS") || env_set("GC_PRINT_VERBOSE_STATS")) (void)mh_option_set("gctrace", 1);
    if (env_set("GC_DONT_GC")) STORE(GC_dont_gc, 1);
    if (env_set("GC_FIND_LEAK")) STORE(GC_find_leak, 1);
    if (env_set("GC_ALL_INTERIOR_POINTERS")) STORE(GC_all_interior_pointers, 1);
    if (env_set("GC_USE_ENTIRE_HEAP")) STORE(GC_use_entire_heap, 1);
    if (env_set("GC_FORCE_UNMAP_ON_GCOLLECT")) atomic_store(&force_unmap, 1);
    /* GC_MARKERS before GC_NPROCS, as in bdwgc */
    if ((env_size("GC_MARKERS", &v) || env_size("GC_NPROCS", &v)) && v > 0)
        (void)mh_option_set("gc_markers", (long)(v > 64 ? 64 : v));
    if (env_size("GC_FREE_SPACE_DIVISOR", &v) && v > 0) STORE(GC_free_space_divisor, v);
    if (env_size("GC_FULL_FREQUENCY", &v)) STORE(GC_full_freq, (int)v);
    if (env_size("GC_PAUSE_TIME_TARGET", &v)) {
        STORE(GC_time_limit, (unsigned long)v);
        if (v != GC_TIME_UNLIMITED)
            NOTE("mheap: GC_PAUSE_TIME_TARGET is not honoured: no incremental mode, and the "
                 "markers stay as they are\n");
    }
    for (size_t i = 0; i < sizeof env_not_honoured / sizeof env_not_honoured[0]; i++) {
        const char *s = getenv(env_not_honoured[i][0]);
        if (!s) continue;
        if (strcmp(env_not_honoured[i][0], "GC_RETRY_SIGNALS") == 0 && strcmp(s, "0") == 0)
            continue; /* (0: no retrying, as mheap) */
        char line[200];
        mhi_fmt(line, sizeof line, "mheap: %s is not honoured: %s\n", env_not_honoured[i][0],
                env_not_honoured[i][1]);
        GC_get_warn_proc()(line, 0);
    }
    /* Accepted, and changing nothing (mheap gives no large-allocation
     * warnings, has no gcj objects, no find-leak or incremental mode, and
     * grows its mark stack as needed): GC_NO_BLACKLIST_WARNING,
     * GC_LARGE_ALLOC_WARN_INTERVAL, GC_IGNORE_GCJ_INFO, GC_FINDLEAK_DELAY_FREE,
     * GC_ABORT_ON_LEAK, GC_DISABLE_INCREMENTAL, GC_USE_GETWRITEWATCH,
     * GC_ONLY_LOG_TO_FILE, GC_NO_RETRY_SIGNALS, GC_COLLECT_AT_MALLOC,
     * GC_MARK_STACK_SIZE. */
}

/* Once, when the GC heap starts (gc.c), in the thread that starts it,
 * with no lock held. */
void mhi_gc_boehm_init(void);
void mhi_gc_boehm_init(void) {
    read_environment();
    (void)divisor_in_force();
    STORE(GC_parallel, (int)markers() - 1);
    uintptr_t lo, hi;
    if (LOAD(GC_stackbottom))
        NOTE("mheap: GC_stackbottom is not honoured: each thread's stack is found by mheap\n");
    else if (mhi_os_stack_bounds(&lo, &hi))
        STORE(GC_stackbottom, (char *)hi);
    check_variables();
    atomic_store(&started, 1);
}
