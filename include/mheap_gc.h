/* mheap_gc.h - mheap's garbage-collected heap: a conservative mark-sweep
 * collector on the same page heap as mheap's malloc.
 *
 * Objects are found from roots: every registered thread's stack and
 * registers, the writable data and bss of the program and of every loaded
 * library, each registered thread's static TLS block, ranges added with
 * mh_gc_add_roots, uncollectable objects, and, with the option
 * gc_scan_malloc, the live blocks of mheap's own malloc.  Any word that
 * holds an address inside an object (its start, its interior, or, from
 * stacks and registers, one byte past its end) keeps it alive.  Objects
 * never move.
 *
 * A thread is registered by its first mh_gc_ call that allocates,
 * collects, blocks or locks, and unregistered when it exits;
 * mh_gc_register_thread does it at once (needed only when the thread
 * keeps GC pointers before its first such call).
 * Collection stops every registered thread with a signal (gc_signal option,
 * default SIGRTMIN+5), except those inside mh_gc_do_blocking.
 *
 * Edge cases, stated once: allocation returns NULL with errno ENOMEM when
 * memory (or the gc_memory_limit) runs out after a full collection has
 * been tried, unless the option abort_on_oom is set; a size of 0 gives a
 * unique object; sizes are in bytes. */
#ifndef MHEAP_GC_H
#define MHEAP_GC_H

#include <stddef.h>
#include <stdint.h>

#include "mheap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- allocation ---------------------------------------------------------- */

/* Scanned memory, zeroed. */
MH_API void *mh_gc_malloc(size_t size);
/* Pointer-free memory: never scanned, not zeroed. */
MH_API void *mh_gc_malloc_atomic(size_t size);
/* Scanned, zeroed, a root itself, and never collected: freed only by
 * mh_gc_free. */
MH_API void *mh_gc_malloc_uncollectable(size_t size);
/* As realloc, keeping the object's kind (scanned, pointer-free or
 * uncollectable); NULL p allocates scanned memory. */
MH_API void *mh_gc_realloc(void *p, size_t size);
/* Free an object now (p NULL: nothing).  The program promises no pointer
 * to it is used again. */
MH_API void mh_gc_free(void *p);
/* The start of the object holding p (its interior included), or NULL if p
 * is not in a live GC object; *size (if given) gets the object's size. */
MH_API void *mh_gc_base(const void *p, size_t *size);
/* The object's usable size (0 if p does not start a live GC object). */
MH_API size_t mh_gc_size(const void *p);

/* ---- collection ------------------------------------------------------------ */

/* Collect now; with release != 0 also return free pages to the OS. */
MH_API void mh_gc_collect(int release);
/* Disable and enable collection; they nest (collection runs again when
 * every disable has been matched).  A disabled heap grows instead. */
MH_API void mh_gc_disable(void);
MH_API void mh_gc_enable(void);
/* Next cycle when the heap reaches live * (1 + percent / 100) (default
 * 100, the option gc_percent); negative: never by pacing. */
MH_API void mh_gc_set_percent(long percent);
/* A hard limit on the GC heap's bytes (0: none; the option
 * gc_memory_limit).  Near it the collector collects first and, failing
 * that, allocation returns NULL with ENOMEM. */
MH_API void mh_gc_set_memory_limit(size_t bytes);

/* ---- roots ----------------------------------------------------------------- */

/* Scan [lo, hi) as a root (word-aligned inside).  Returns 0, or -1 with
 * errno ENOMEM. */
MH_API int mh_gc_add_roots(void *lo, void *hi);
/* Stop scanning ranges added with exactly these bounds. */
MH_API void mh_gc_remove_roots(void *lo, void *hi);

/* ---- threads --------------------------------------------------------------- */

/* Register the calling thread now (idempotent).  Returns 0. */
MH_API int mh_gc_register_thread(void);
/* Unregister the calling thread (it may register again later). */
MH_API void mh_gc_unregister_thread(void);
/* Run fn(arg) with the calling thread marked as blocked: it is not stopped
 * for collections meanwhile, and promises to hold no GC pointer that is
 * not also on its stack above this call or elsewhere in the roots, and not
 * to touch the GC heap until fn returns. */
MH_API void *mh_gc_do_blocking(void *(*fn)(void *), void *arg);

/* ---- statistics ------------------------------------------------------------ */

/* Number of GC pause-time histogram buckets: bucket i counts pauses below
 * 2^i microseconds (the last one, everything longer). */
#define MH_GC_PAUSE_BUCKETS 24
#define MH_GC_STATS_VERSION 1
typedef struct mh_gc_stats {
    uint32_t version;
    uint32_t size;
    uint64_t heap_bytes;     /* bytes of spans the GC heap holds now */
    uint64_t live_bytes;     /* bytes of objects marked by the last cycle */
    uint64_t next_gc;        /* the heap size that starts the next cycle */
    uint64_t cycles;         /* completed collections */
    uint64_t pause_total_ns; /* all stop-the-world pauses */
    uint64_t pause_max_ns;
    uint64_t pause_last_ns;
    uint64_t alloc_bytes;    /* bytes handed to allocation, in all (the free room of each span a thread takes, and each large object) */
    uint64_t swept_bytes;    /* bytes of objects freed by sweeping, in all */
    uint64_t reclaimed_bytes; /* bytes of whole dead spans freed without sweeping, in all */
    uint64_t freed_bytes;    /* bytes freed explicitly (mh_gc_free), in all */
    uint64_t threads;        /* registered threads now */
    uint64_t markers;        /* threads marking in the last cycle */
    uint64_t pause_hist[MH_GC_PAUSE_BUCKETS];
} mh_gc_stats_t;

/* Fill at most size bytes of *out; returns the bytes filled. */
MH_API size_t mh_gc_stats_get(mh_gc_stats_t *out, size_t size);

/* ---- Finalizers and weak links ----
 *
 * A finalizer fn(obj, data) runs once after obj (the start of a
 * collectable GC object) is found unreachable, outside the collector's
 * pause: on mheap's finalizer thread, or, with mh_gc_set_finalize_on_demand
 * (1), when the program calls mh_gc_run_finalizers (the notifier set with
 * mh_gc_set_finalizer_notifier is called after each cycle that ends with
 * some ready).  It may allocate, register finalizers, and resurrect obj by
 * storing it somewhere reachable.  Modes, as bdwgc's:
 *   MH_GC_FINALIZE_ORDERED      (bdwgc's default) everything obj reaches
 *                               stays alive until its finalizer has run; if
 *                               A reaches finalizable B, A's runs first and
 *                               B's in a later cycle; a cycle of such
 *                               objects is never finalized (with the option
 *                               verbose, the first one found is reported
 *                               once, as one line on stderr);
 *   MH_GC_FINALIZE_IGNORE_SELF  the same, but obj's pointers to itself do
 *                               not count;
 *   MH_GC_FINALIZE_NO_ORDER     ready as soon as obj is unreachable, in no
 *                               particular order (what obj reaches is kept
 *                               until its finalizer has run);
 *   MH_GC_FINALIZE_UNREACHABLE  ordered, and moreover not ready while
 *                               another object ready for finalization (a
 *                               no-order one) reaches obj: it runs only once
 *                               no finalizer can bring obj back.  It needs
 *                               Java-style finalization, bdwgc's
 *                               GC_java_finalization, on by default; with it
 *                               off the mode acts as ordered.
 * fn NULL removes obj's finalizer.  *old_fn and *old_data (when not NULL)
 * get the finalizer it replaced.  Returns 0, or -1 with errno EINVAL (obj
 * is not the start of a collectable GC object) or ENOMEM.
 *
 * A disappearing link: *link (which must not itself keep obj alive: keep
 * it in pointer-free memory, or disguised) is set to NULL once obj is
 * unreachable, before finalizers are considered; a long link only once obj
 * is gone for good (after finalization, so not if a finalizer keeps it).
 * Short and long links are apart: one address may be registered as one of
 * each.  A link belongs to one object: register returns 0, or 1 if link
 * was registered already as that kind (it now belongs to obj), or -1 with
 * errno EINVAL or ENOMEM; mh_gc_unregister_link (a short link) and
 * mh_gc_unregister_long_link find it by the link's address (*link may be
 * disguised) and return 1 if it was registered.  A link whose own location
 * is in a GC object that dies or is freed is dropped without a write.
 * Freeing obj explicitly clears its links and drops its finalizer (so does
 * realloc when it moves obj). */
enum {
    MH_GC_FINALIZE_ORDERED = 0,
    MH_GC_FINALIZE_IGNORE_SELF = 1,
    MH_GC_FINALIZE_NO_ORDER = 2,
    MH_GC_FINALIZE_UNREACHABLE = 3
};
typedef void (*mh_gc_finalizer_fn)(void *obj, void *data);
MH_API int mh_gc_register_finalizer(void *obj, mh_gc_finalizer_fn fn, void *data, int mode,
                                    mh_gc_finalizer_fn *old_fn, void **old_data);
MH_API int mh_gc_register_disappearing_link(void **link, const void *obj);
MH_API int mh_gc_register_long_link(void **link, const void *obj);
MH_API int mh_gc_unregister_link(void **link);
MH_API int mh_gc_unregister_long_link(void **link);
/* Move link's registration (a long link's, if long_link) to new_link:
 * 0 (new_link == link: 0 if link is registered), 1 if new_link is
 * registered already as that kind (nothing moves), -2 if link is not
 * registered as that kind, -1 with errno EINVAL or ENOMEM. */
MH_API int mh_gc_move_link(void **link, void **new_link, int long_link);
/* Run the ready finalizers and cleanups on the calling thread; returns how
 * many ran.  The _max form runs at most max of them (0: all). */
MH_API size_t mh_gc_run_finalizers(void);
MH_API size_t mh_gc_run_finalizers_max(size_t max);
/* Run every registered finalizer now, reachable objects' too (for a
 * program's exit, as Java's runFinalizersOnExit): a collection makes them
 * all ready and this thread runs them, again while finalizers register new
 * ones; the finalizer thread takes none meanwhile.  Then it waits, at most
 * about a second, for finalizers other threads were already running.
 * Returns how many ran on this thread.  With collections off (bdwgc's
 * GC_dont_gc), it runs only those already ready. */
MH_API size_t mh_gc_finalize_all(void);
MH_API size_t mh_gc_finalizers_pending(void);
MH_API void mh_gc_set_finalize_on_demand(int on);
MH_API void mh_gc_set_finalizer_notifier(void (*fn)(void));
/* Called with each object a collection made ready for finalization, by
 * the collecting thread after the pause and before the object's finalizer
 * can run, with collections held off: it must not collect, allocate GC
 * memory, or wait for a thread that does.  NULL: none. */
typedef void (*mh_gc_await_fn)(void *obj);
MH_API void mh_gc_set_await_finalize_fn(mh_gc_await_fn fn);
MH_API mh_gc_await_fn mh_gc_get_await_finalize_fn(void);

/* Toggle references, for runtimes whose objects are also counted by
 * another system: mh_gc_toggleref_add(obj, strong) holds obj (the start
 * of a GC object) strongly (as a root) or weakly (dropped once obj is gone
 * for good, as a long link).  Before each collection, the function set
 * with mh_gc_set_toggleref_fn is called for every object held, and says
 * what it is to be now: MH_GC_TOGGLEREF_STRONG, _WEAK, or _DROP (no longer
 * held); it runs on the collecting thread with collections held off, under
 * the same rules as the await function.  Without a function nothing is
 * held: add returns 0 and does nothing.  add returns 0, or -1 with errno
 * EINVAL (not an object's start) or ENOMEM. */
enum { MH_GC_TOGGLEREF_DROP = 0, MH_GC_TOGGLEREF_STRONG = 1, MH_GC_TOGGLEREF_WEAK = 2 };
typedef int (*mh_gc_toggleref_fn)(void *obj);
MH_API void mh_gc_set_toggleref_fn(mh_gc_toggleref_fn fn);
MH_API mh_gc_toggleref_fn mh_gc_get_toggleref_fn(void);
MH_API int mh_gc_toggleref_add(void *obj, int strong);

/* A cleanup, in the manner of Go's runtime.AddCleanup: fn(arg) runs once
 * after obj is unreachable, where finalizers run; it does not keep obj
 * alive and never sees it (arg should not point to obj: that would keep
 * it until the cleanup runs).  Several cleanups may be added to one
 * object.  Returns a handle for mh_gc_cancel_cleanup(obj, handle), which
 * returns 1 if it cancelled one not yet run, or NULL with errno EINVAL or
 * ENOMEM.  Arguments of finalizers and cleanups are roots until they run.
 *
 * A weak handle, in the manner of Go's weak.Pointer: mh_gc_weak_make(p)
 * gives the one handle for p (an address inside a live GC object; the
 * same p gives the same handle while the object lives); mh_gc_weak_get
 * returns p while the object lives, NULL once it is unreachable (cleared
 * with the disappearing links, before finalizers).  The handle is itself a
 * GC object: keep it like any other. */
MH_API void *mh_gc_add_cleanup(void *obj, void (*fn)(void *arg), void *arg);
MH_API int mh_gc_cancel_cleanup(void *obj, void *cleanup);
MH_API void *mh_gc_weak_make(const void *p);
MH_API void *mh_gc_weak_get(const void *handle);
/* Convenience readers. */
MH_API size_t mh_gc_heap_size(void);
MH_API size_t mh_gc_live_bytes(void);
MH_API uint64_t mh_gc_cycles(void);

/* ---- more control and queries (bdwgc's interface, gc.h, is built on
 * these) ----------------------------------------------------------------- */

/* Stop scanning every range added with mh_gc_add_roots. */
MH_API void mh_gc_clear_roots(void);
/* Stop scanning the added ranges that lie wholly inside [lo, hi) (every
 * bound rounded inward to whole words first). */
MH_API void mh_gc_remove_roots_within(void *lo, void *hi);
/* Non-zero while collection is disabled (mh_gc_disable), or while bdwgc's
 * GC_dont_gc is non-zero (gc.h's GC_disable; no collection at all then,
 * mh_gc_collect's included). */
MH_API int mh_gc_is_disabled(void);
/* The percent in force (mh_gc_set_percent, option gc_percent). */
MH_API long mh_gc_get_percent(void);
/* A little of the collector's work: a collection if pacing says one is
 * due (and collection is enabled), then a few spans swept.  Returns
 * non-zero while spans are left to sweep. */
MH_API int mh_gc_collect_a_little(void);
/* Let the GC heap grow by bytes more before the next collection (that
 * collection sets the goal afresh); memory comes from the OS as the heap
 * grows into it.  Returns 0, or -1 with errno ENOMEM when the memory limit
 * is nearer than that. */
MH_API int mh_gc_expand(size_t bytes);

/* Called at the start of every collection by the collecting thread,
 * before the world stops, with collections held off: it must not collect,
 * allocate GC memory, or wait for a thread that does.  NULL: none. */
typedef void (*mh_gc_start_fn)(void);
MH_API void mh_gc_set_start_callback(mh_gc_start_fn fn);
MH_API mh_gc_start_fn mh_gc_get_start_callback(void);

/* Hold off collections: none runs or starts between the two calls
 * (allocation goes on; the calling thread is registered first).  Not
 * reentrant; the holder must not collect, allocate GC memory (that may
 * collect), register or unregister threads, or call mh_gc_stats_get. */
MH_API void mh_gc_lock(void);
MH_API void mh_gc_unlock(void);

/* Is the calling thread registered?  (Does not register it.) */
MH_API int mh_gc_thread_registered(void);
/* From inside the fn of mh_gc_do_blocking: run fn(arg) as a thread that
 * is not blocked (stopped for collections, its whole stack scanned), then
 * block again.  Elsewhere: fn(arg). */
MH_API void *mh_gc_call_active(void *(*fn)(void *), void *arg);
/* The signal that stops threads (before the first thread registers: the
 * one that will be installed). */
MH_API int mh_gc_stop_signal(void);

/* Does p lie in a span of the GC heap (in an object or not)? */
MH_API int mh_gc_is_heap_ptr(const void *p);
/* Is p an aligned word that collections scan: in an allocated scanned or
 * uncollectable object, the calling thread's stack or TLS, the static data
 * of the program or a library, an added range, or (option gc_scan_malloc)
 * a block of malloc's heap? */
MH_API int mh_gc_is_visible(const void *p);

/* Free bytes: the free slots of the GC heap's spans that no thread is
 * allocating from (a lower bound: the free room of threads' current spans,
 * and dead objects not swept yet, count as used); *heap_bytes (if given)
 * gets the GC heap's bytes at the same moment. */
MH_API size_t mh_gc_free_bytes(size_t *heap_bytes);
/* The statistic alloc_bytes, read without a lock, and its growth since
 * the last collection began. */
MH_API uint64_t mh_gc_alloc_bytes(void);
MH_API uint64_t mh_gc_bytes_since_gc(void);

#ifdef __cplusplus
}
#endif

#endif
