/* gc.h - the Boehm-Demers-Weiser collector's interface, as bdwgc 8.2's
 * gc.h declares it, on mheap's garbage-collected heap (mheap_gc.h).  A
 * program written for bdwgc builds unchanged: compile and link with
 * `pkg-config --cflags --libs mheap-gc` (or -I<mheap>/include and
 * libmheap).  <gc/gc.h> is the same header; <gc/gc_mark.h> has object
 * kinds, mark procedures, the start callback and the heap bounds;
 * <gc/gc_typed.h> (and <gc_typed.h>) typed objects; with GC_THREADS this
 * header redirects the pthread calls as bdwgc's does
 * (gc/gc_pthread_redirects.h).  A library or program built against
 * bdwgc's libgc.so runs on mheap with libmheap.so preloaded: the same
 * functions, calling conventions and structure layouts.
 *
 * Every function has bdwgc's C signature and every macro expands as
 * bdwgc's does, GC_DEBUG, GC_THREADS and GC_INIT's configuration macros
 * included.  A bdwgc name this header does not declare fails at compile
 * time.  Where the behaviour differs from bdwgc's:
 *
 *   - Interior pointers are always recognised (as with bdwgc's default);
 *     GC_all_interior_pointers 0 (or GC_set_all_interior_pointers(0))
 *     says once that it is not honoured, and
 *     GC_get_all_interior_pointers() is 1.
 *   - No incremental or generational mode: GC_enable_incremental() and
 *     GC_set_time_limit() are accepted and change nothing (bdwgc too may
 *     decline incremental mode), GC_is_incremental_mode() is 0.
 *   - No blacklisting: the _ignore_off_page forms allocate as the plain
 *     ones.  GC_malloc_atomic_uncollectable gives an uncollectable object
 *     that is scanned and zeroed (it may keep more alive, never less).
 *   - The GC_debug_ forms (what GC_MALLOC and friends call when GC_DEBUG
 *     is defined) allocate as the plain forms: no header, no checks, the
 *     file and line are not kept.
 *   - GC_set_free_space_divisor(d) sets the GC percent (mh_gc_set_percent)
 *     to 100 / d, rounded: bdwgc collects after allocating about heap / d
 *     bytes, mheap when the heap has grown by percent / 100 of the live
 *     heap.  d = 0 is misuse (bdwgc divides by it): the program aborts.
 *   - GC_gcollect() and GC_gcollect_and_unmap() do nothing while
 *     collection is disabled, as in bdwgc.  GC_disable() adds 1 to
 *     GC_dont_gc, GC_enable() takes 1 off (never below 0): while it is
 *     non-zero no collection runs, not even near the memory limit (as in
 *     bdwgc: allocation then fails there), and mh_gc_is_disabled() is 1.
 *     GC_collect_a_little() runs a collection when one is due, else
 *     sweeps a few spans, and returns non-zero while spans are left to
 *     sweep.  GC_expand_hp(n) lets the
 *     heap grow by n bytes more before the next collection (memory comes
 *     from the OS as the heap grows into it); it fails only when the
 *     limit (GC_set_max_heap_size) is nearer.
 *   - Statistics are mheap's own figures (equal values are not to be
 *     expected from the two collectors): GC_get_heap_size() is the bytes
 *     of the spans the GC heap holds; GC_get_free_bytes() the free slots
 *     of the spans no thread is allocating from (a lower bound);
 *     GC_get_memory_use() the heap size less that; GC_get_total_bytes()
 *     the bytes handed to allocation (a span's free room when a thread
 *     takes it, a large object's size); GC_get_bytes_since_gc() the same
 *     since the last collection began; no unmapped bytes.
 *   - Roots: the data and bss of the program and of every loaded library
 *     are always scanned; GC_set_no_dls(1) says once that it is not
 *     honoured.  GC_remove_roots(lo, hi) removes the added ranges lying
 *     inside [lo, hi), GC_clear_roots() every added range.
 *   - Threads: a thread is registered by its first GC call (bdwgc needs
 *     GC_register_my_thread or GC_pthread_create), and GC_pthread_create
 *     starts the thread registered, so that its start argument is safe
 *     even if only the new thread holds it.  The stack base given to
 *     GC_register_my_thread is not needed (the thread's stack is known);
 *     one outside the thread's stack is reported once.  Threads are
 *     stopped with one signal (GC_get_suspend_signal(), the option
 *     gc_signal) and woken without one: GC_get_thr_restart_signal()
 *     gives the same signal, GC_set_thr_restart_signal() changes nothing.
 *   - GC_call_with_alloc_lock(fn, cd) and GC_alloc_lock() hold off every
 *     collection (mh_gc_lock); allocation is not held up.  fn must not
 *     collect (bdwgc: nor allocate).
 *   - GC_is_visible(p) aborts ("mheap: GC_is_visible: <p>") unless p is
 *     an aligned word of a scanned or uncollectable object, the calling
 *     thread's stack or TLS, static data, an added root or (with the
 *     option gc_scan_malloc) a block of mheap's malloc.
 *   - Messages for what is not honoured go through the warn procedure
 *     (GC_set_warn_proc), each once, as "mheap: <what>" without printf
 *     conversions; the default prints the line on stderr.
 *
 *   - bdwgc's variables (declared below, deprecated as in bdwgc) are
 *     read where bdwgc reads them, each time, so that writing one
 *     directly works, also from a binary built against libgc.so.1 (whose
 *     copy of the variable libmheap.so then uses): GC_dont_gc at every
 *     collection; GC_free_space_divisor as a collection starts and in
 *     its getter (a new value sets the GC percent, 100 / d; 0 is said not
 *     to be honoured); GC_oom_fn when an allocation fails (NULL: NULL is
 *     returned); GC_on_heap_resize after a collection that left the heap
 *     another size (it may shrink to 0); GC_push_other_roots (or what
 *     GC_set_push_other_roots set) as each collection begins, and it is
 *     called in the mark after the other roots, the world stopped, where
 *     GC_push_all, GC_push_all_eager and GC_push_conditional mark a range
 *     as a root (elsewhere they abort); GC_is_visible_print_proc and the
 *     GC_same_obj and GC_is_valid_displacement print procedures when a
 *     check fails.  Written by mheap: GC_gc_no (+1 after every
 *     collection), GC_non_gc_bytes (the live uncollectable objects'
 *     bytes; bdwgc 8.2.2 does not count its small ones), GC_parallel (the
 *     markers less one, at the start; bdwgc sets it when its marker
 *     threads start), GC_stackbottom (the starting thread's stack base).
 *     Said once not to be honoured (at the start, after a collection, or
 *     when set): GC_all_interior_pointers 0, GC_no_dls, GC_find_leak
 *     (no leak-finding mode), GC_dont_expand, GC_use_entire_heap,
 *     GC_max_retries (at a failed allocation), GC_stackbottom set before
 *     the start.  GC_full_freq and GC_time_limit act in bdwgc only in
 *     incremental mode: kept for the getters.  GC_dont_precollect: mheap
 *     never collects as it starts.  The internals libgc.so.1 exports as
 *     data (GC_arrays, GC_objfreelist_ptr and the other free-list
 *     pointers, GC_gcj_kind, GC_gcj_debug_kind, GC_debug_header_size,
 *     GC_on_abort) are not defined: no public header declares them.
 *   - bdwgc's environment variables, read when the GC heap starts
 *     (whichever interface starts it): GC_INITIAL_HEAP_SIZE (GC_expand_hp
 *     to that size), GC_MAXIMUM_HEAP_SIZE (GC_set_max_heap_size), both
 *     with an optional k, M or G; GC_PRINT_STATS (one line per
 *     collection, the option gctrace); GC_DONT_GC (GC_dont_gc = 1);
 *     GC_MARKERS, else GC_NPROCS (the option gc_markers);
 *     GC_FREE_SPACE_DIVISOR (the percent, as above); GC_FIND_LEAK,
 *     GC_USE_ENTIRE_HEAP and GC_ALL_INTERIOR_POINTERS (their variables);
 *     GC_FORCE_UNMAP_ON_GCOLLECT (GC_gcollect releases memory as
 *     GC_gcollect_and_unmap); GC_FULL_FREQUENCY and GC_PAUSE_TIME_TARGET
 *     (their variables; a pause target is said not to be honoured).  Said
 *     once not to be honoured: GC_PRINT_VERBOSE_STATS (its extra detail),
 *     GC_DUMP_REGULARLY, GC_ENABLE_INCREMENTAL, GC_UNMAP_THRESHOLD,
 *     GC_RETRY_SIGNALS (but 0), GC_BACKTRACES, GC_LOG_FILE,
 *     GC_PRINT_ADDRESS_MAP, GC_LOOP_ON_ABORT, GC_PRINT_BACK_HEIGHT,
 *     GC_TRACE.  Accepted without a word (nothing they would change
 *     exists in mheap): GC_NO_BLACKLIST_WARNING,
 *     GC_LARGE_ALLOC_WARN_INTERVAL, GC_IGNORE_GCJ_INFO,
 *     GC_FINDLEAK_DELAY_FREE, GC_ABORT_ON_LEAK, GC_DISABLE_INCREMENTAL,
 *     GC_USE_GETWRITEWATCH, GC_ONLY_LOG_TO_FILE, GC_NO_RETRY_SIGNALS,
 *     GC_COLLECT_AT_MALLOC, GC_MARK_STACK_SIZE.
 *   - Binaries built against libgc.so.1 (LD_PRELOAD=libmheap.so, or
 *     `mheap run --gc`): libmheap.so defines every function libgc.so.1
 *     exports from bdwgc's public headers, also those this header does
 *     not declare (src/gc_boehm_abi.c): each is honoured, or answers
 *     harmlessly and says once that it is not honoured, or prints
 *     "mheap: GC_xxx is not supported" and aborts.  Not defined yet: the
 *     kinds, mark procedures, typed allocation, mark bits, dumps and
 *     Java-style finalization (tests/gcabi/symbols.sh lists them).
 *
 *   - Finalizers run on mheap's finalizer thread unless
 *     GC_set_finalize_on_demand(1) (bdwgc runs them in allocating threads);
 *     with it, as in bdwgc, the program calls GC_invoke_finalizers.  The
 *     await procedure and the toggle-reference function run after and
 *     before the collector's pause, on the collecting thread, collections
 *     held off (bdwgc: with its lock held).
 *   - A finalization cycle is not reported through the warn procedure
 *     each collection (bdwgc: "Finalization cycle involving ..."): with the
 *     option verbose, the first one found is said once on stderr.
 *   - With GC_java_finalization 0, what a no-order object reaches is still
 *     kept until its finalizer has run (bdwgc frees it, and the finalizer
 *     may read freed memory); only unreachable finalizers change (they act
 *     as ordered ones, as in bdwgc).
 *   - A link whose own location is in an object freed explicitly (GC_free)
 *     is dropped (bdwgc: unsafe; it may later write into reused memory).
 *   - GC_set_interrupt_finalizers is bdwgc 8.3's, declared here too.
 *   - Kinds, mark procedures and typed objects (gc/gc_mark.h,
 *     gc/gc_typed.h): allocation of a made kind (typed objects included)
 *     takes the GC lock each time; mark procedures run in the pause on
 *     any marker thread.  Those headers list what else differs.
 *   - GC_dump() prints mheap's statistics (mh_stats_print) on standard
 *     output.
 *
 * GC_finalize_all is in <gc/javaxfc.h>, as in bdwgc.
 *
 * The rest of bdwgc 8.2's gc.h that libmheap.so answers is declared in
 * its own section below (alignment, GC_try_to_collect, the settings of
 * incremental mode and the others mheap keeps only for their getters,
 * events, statistics, stubborn objects, the pointer checks, stack bottoms,
 * fork); gc/gc_inline.h has bdwgc's inline allocation macros.
 *
 * Not declared (not supported): GC_register_altstack,
 * GC_stop_world_external, GC_suspend_thread and the other calls of
 * javaxfc.h but GC_finalize_all, GC_wcsdup, gcj and disclaim allocation
 * (gc_gcj.h, gc_disclaim.h), back pointers (gc_backptr.h), leak finding
 * (leak_detector.h), and the configuration macros GC_DONT_EXPAND,
 * GC_FORCE_UNMAP_ON_GCOLLECT, GC_MAX_RETRIES, GC_FULL_FREQ,
 * GC_ALLOCD_BYTES_PER_FINALIZER and GC_USE_LD_WRAP (each an #error).
 *
 * MHEAP_GC_BOEHM_COMPAT is defined, so that a program can tell this
 * header from bdwgc's. */
#ifndef GC_H
#define GC_H

#include "gc/gc_version.h"

#define MHEAP_GC_BOEHM_COMPAT 1

/* ---- configuration (bdwgc's gc_config_macros.h, for Linux) ---------------- */

#if defined(GC_LINUX_THREADS) || defined(LINUX_THREADS)
#ifndef GC_THREADS
#define GC_THREADS
#endif
#endif
#undef GC_PTHREADS
#ifdef GC_THREADS
#define GC_PTHREADS
#ifndef GC_LINUX_THREADS
#define GC_LINUX_THREADS
#endif
#ifndef _REENTRANT
#define _REENTRANT 1
#endif
#ifndef GC_HAVE_PTHREAD_EXIT
#define GC_HAVE_PTHREAD_EXIT
#define GC_PTHREAD_EXIT_ATTRIBUTE __attribute__((__noreturn__))
#endif
#endif

#if defined(GC_USE_LD_WRAP)
#error "mheap's gc.h: GC_USE_LD_WRAP is not supported (there are no __wrap_ functions); use the redirecting macros"
#endif
#ifdef GC_DONT_EXPAND
#error "mheap's gc.h: GC_DONT_EXPAND (GC_set_dont_expand) is not supported"
#endif
#ifdef GC_FORCE_UNMAP_ON_GCOLLECT
#error "mheap's gc.h: GC_FORCE_UNMAP_ON_GCOLLECT is not supported (GC_gcollect_and_unmap releases memory)"
#endif
#ifdef GC_MAX_RETRIES
#error "mheap's gc.h: GC_MAX_RETRIES (GC_set_max_retries) is not supported"
#endif
#ifdef GC_FULL_FREQ
#error "mheap's gc.h: GC_FULL_FREQ (GC_set_full_freq) is not supported (no generational mode)"
#endif
#ifdef GC_ALLOCD_BYTES_PER_FINALIZER
#error "mheap's gc.h: GC_ALLOCD_BYTES_PER_FINALIZER is not supported yet (finalizers run on mheap's finalizer thread)"
#endif

#include <stddef.h>

#ifndef GC_API
#if defined(__GNUC__)
#define GC_API extern __attribute__((__visibility__("default")))
#else
#define GC_API extern
#endif
#endif
#ifndef GC_CALL
#define GC_CALL
#endif
#ifndef GC_CALLBACK
#define GC_CALLBACK GC_CALL
#endif

#ifndef GC_ATTR_MALLOC
#if defined(GC_OOM_FUNC_RETURNS_ALIAS)
#define GC_ATTR_MALLOC
#elif defined(__GNUC__)
#define GC_ATTR_MALLOC __attribute__((__malloc__))
#else
#define GC_ATTR_MALLOC
#endif
#endif
#ifndef GC_ATTR_ALLOC_SIZE
#undef GC_ATTR_CALLOC_SIZE
#if defined(__GNUC__)
#define GC_ATTR_ALLOC_SIZE(argnum) __attribute__((__alloc_size__(argnum)))
#define GC_ATTR_CALLOC_SIZE(n, s) __attribute__((__alloc_size__(n, s)))
#else
#define GC_ATTR_ALLOC_SIZE(argnum)
#endif
#endif
#ifndef GC_ATTR_CALLOC_SIZE
#define GC_ATTR_CALLOC_SIZE(n, s)
#endif
#ifndef GC_ATTR_NONNULL
#if defined(__GNUC__)
#define GC_ATTR_NONNULL(argnum) __attribute__((__nonnull__(argnum)))
#else
#define GC_ATTR_NONNULL(argnum)
#endif
#endif
#ifndef GC_ATTR_CONST
#if defined(__GNUC__)
#define GC_ATTR_CONST __attribute__((__const__))
#else
#define GC_ATTR_CONST
#endif
#endif
#ifndef GC_ATTR_DEPRECATED
#if defined(__GNUC__)
#define GC_ATTR_DEPRECATED __attribute__((__deprecated__))
#else
#define GC_ATTR_DEPRECATED
#endif
#endif

/* The debug forms' extra arguments: the file and line, as bdwgc passes
 * them where the C library can save call stacks (every glibc). */
#define GC_EXTRAS __FILE__, __LINE__
#define GC_EXTRA_PARAMS const char *s, int i

#ifdef __cplusplus
extern "C" {
#endif

/* Unsigned and signed integers of a pointer's width. */
typedef unsigned long GC_word;
typedef long GC_signed_word;
typedef void *GC_PTR;

/* ((major << 16) | (minor << 8) | micro) of gc_version.h. */
GC_API unsigned GC_CALL GC_get_version(void);

/* ---- set-up ------------------------------------------------------------------ */

/* Initialise the collector and register the calling thread; repeated
 * calls do nothing more.  Optional: every GC function initialises. */
GC_API void GC_CALL GC_init(void);

/* ---- allocation ---------------------------------------------------------------- */

/* Scanned, zeroed memory. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc(size_t /* size_in_bytes */);
/* Memory that holds no pointers: never scanned, not zeroed. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_atomic(size_t /* size_in_bytes */);
/* Copies in pointer-free memory; NULL s gives NULL. */
GC_API GC_ATTR_MALLOC char *GC_CALL GC_strdup(const char *);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_strndup(const char *, size_t) GC_ATTR_NONNULL(1);
/* Scanned, zeroed, never collected; released only by GC_free. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_uncollectable(size_t /* size_in_bytes */);
/* The same (scanned and zeroed too: there is no pointer-free
 * uncollectable kind). */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_atomic_uncollectable(size_t /* size_in_bytes */);
/* As GC_malloc and GC_malloc_atomic (no blacklisting to steer). */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_ignore_off_page(size_t /* lb */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_atomic_ignore_off_page(size_t /* lb */);
/* Release an object now; GC_free(0) does nothing.  p must start an
 * object (else "mheap: invalid pointer" and abort). */
GC_API void GC_CALL GC_free(void *);
/* The start of the object holding p (its interior too), or NULL. */
GC_API void *GC_CALL GC_base(void * /* displaced_pointer */);
/* Non-zero if p lies in a span of the GC heap (in an object or not). */
GC_API int GC_CALL GC_is_heap_ptr(const void *);
/* The usable size of the object starting at p (0 if p starts none). */
GC_API size_t GC_CALL GC_size(const void * /* obj_addr */) GC_ATTR_NONNULL(1);
/* Resize, keeping the object's kind, as realloc; NULL old_object:
 * GC_malloc; a new size of 0 with a non-NULL old_object: GC_free, and
 * NULL is returned.  Growing a scanned object zeroes the new part. */
GC_API void *GC_CALL GC_realloc(void * /* old_object */, size_t /* new_size_in_bytes */)
    GC_ATTR_ALLOC_SIZE(2);

/* Called with the size when an allocation fails (after collecting): its
 * result is returned instead of NULL (it must be NULL or an object of
 * the GC heap; GC_realloc copies into it what fits of the old object's
 * contents and frees the old object, as bdwgc does).  The default
 * returns NULL (errno is ENOMEM). */
typedef void *(GC_CALLBACK *GC_oom_func)(size_t /* bytes_requested */);
GC_API void GC_CALL GC_set_oom_fn(GC_oom_func) GC_ATTR_NONNULL(1);
GC_API GC_oom_func GC_CALL GC_get_oom_fn(void);

/* The debug forms allocate as the plain forms (no header, no checks). */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_debug_malloc(size_t /* size_in_bytes */,
                                                                         GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_malloc_atomic(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_debug_strdup(const char *, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_debug_strndup(const char *, size_t, GC_EXTRA_PARAMS)
    GC_ATTR_NONNULL(1);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_malloc_uncollectable(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_malloc_atomic_uncollectable(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_malloc_ignore_off_page(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_malloc_atomic_ignore_off_page(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API void GC_CALL GC_debug_free(void *);
GC_API void *GC_CALL GC_debug_realloc(void * /* old_object */, size_t /* new_size_in_bytes */,
                                      GC_EXTRA_PARAMS) GC_ATTR_ALLOC_SIZE(2);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_malloc_replacement(size_t /* size_in_bytes */);
GC_API GC_ATTR_ALLOC_SIZE(2) void *GC_CALL GC_debug_realloc_replacement(void * /* object_addr */,
                                                                        size_t /* size_in_bytes */);

#ifdef GC_DEBUG_REPLACEMENT
#define GC_MALLOC(sz) GC_debug_malloc_replacement(sz)
#define GC_REALLOC(old, sz) GC_debug_realloc_replacement(old, sz)
#elif defined(GC_DEBUG)
#define GC_MALLOC(sz) GC_debug_malloc(sz, GC_EXTRAS)
#define GC_REALLOC(old, sz) GC_debug_realloc(old, sz, GC_EXTRAS)
#else
#define GC_MALLOC(sz) GC_malloc(sz)
#define GC_REALLOC(old, sz) GC_realloc(old, sz)
#endif

#ifdef GC_DEBUG
#define GC_MALLOC_ATOMIC(sz) GC_debug_malloc_atomic(sz, GC_EXTRAS)
#define GC_STRDUP(s) GC_debug_strdup(s, GC_EXTRAS)
#define GC_STRNDUP(s, sz) GC_debug_strndup(s, sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(sz) GC_debug_malloc_atomic_uncollectable(sz, GC_EXTRAS)
#define GC_MALLOC_UNCOLLECTABLE(sz) GC_debug_malloc_uncollectable(sz, GC_EXTRAS)
#define GC_MALLOC_IGNORE_OFF_PAGE(sz) GC_debug_malloc_ignore_off_page(sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(sz) GC_debug_malloc_atomic_ignore_off_page(sz, GC_EXTRAS)
#define GC_FREE(p) GC_debug_free(p)
#define GC_REGISTER_DISPLACEMENT(n) GC_debug_register_displacement(n)
#else
#define GC_MALLOC_ATOMIC(sz) GC_malloc_atomic(sz)
#define GC_STRDUP(s) GC_strdup(s)
#define GC_STRNDUP(s, sz) GC_strndup(s, sz)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(sz) GC_malloc_atomic_uncollectable(sz)
#define GC_MALLOC_UNCOLLECTABLE(sz) GC_malloc_uncollectable(sz)
#define GC_MALLOC_IGNORE_OFF_PAGE(sz) GC_malloc_ignore_off_page(sz)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(sz) GC_malloc_atomic_ignore_off_page(sz)
#define GC_FREE(p) GC_free(p)
#define GC_REGISTER_DISPLACEMENT(n) GC_register_displacement(n)
#endif

#define GC_NEW(t) ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t) ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
#define GC_NEW_UNCOLLECTABLE(t) ((t *)GC_MALLOC_UNCOLLECTABLE(sizeof(t)))

/* A list of objects of lb bytes (scanned, zeroed but for the link),
 * linked through their first word; NULL if none could be allocated. */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_many(size_t /* lb */);
#define GC_NEXT(p) (*(void **)(p))

/* Every interior pointer counts already: these do nothing. */
GC_API void GC_CALL GC_register_displacement(size_t /* n */);
GC_API void GC_CALL GC_debug_register_displacement(size_t /* n */);

/* ---- collection ---------------------------------------------------------------- */

/* A full collection now (nothing while collection is disabled). */
GC_API void GC_CALL GC_gcollect(void);
/* The same, then sweeping finishes and free memory goes back to the OS. */
GC_API void GC_CALL GC_gcollect_and_unmap(void);
/* A collection if one is due, else a few spans swept; returns non-zero
 * while spans are left to sweep. */
GC_API int GC_CALL GC_collect_a_little(void);
/* Disable and enable collection; they nest.  A disabled heap grows. */
GC_API void GC_CALL GC_disable(void);
GC_API void GC_CALL GC_enable(void);
GC_API int GC_CALL GC_is_disabled(void);
/* Let the heap grow by n bytes more before the next collection; 1, or 0
 * when the heap's limit is nearer. */
GC_API int GC_CALL GC_expand_hp(size_t /* number_of_bytes */);
/* A hard limit on the GC heap (0: none), mh_gc_set_memory_limit. */
GC_API void GC_CALL GC_set_max_heap_size(GC_word /* n */);
/* The pacing, as a divisor (see above); the getter gives the divisor
 * last set while the percent is the one it gave, else 100 / percent
 * rounded (at least 1; 201 for a percent of 0, 0 for a negative one: no
 * pacing). */
GC_API void GC_CALL GC_set_free_space_divisor(GC_word);
GC_API GC_word GC_CALL GC_get_free_space_divisor(void);
/* No incremental mode: accepted, without effect. */
GC_API void GC_CALL GC_enable_incremental(void);
GC_API int GC_CALL GC_is_incremental_mode(void);
#define GC_TIME_UNLIMITED 999999
GC_API void GC_CALL GC_set_time_limit(unsigned long);
GC_API unsigned long GC_CALL GC_get_time_limit(void);
/* Always 1 (see above). */
GC_API void GC_CALL GC_set_all_interior_pointers(int);
GC_API int GC_CALL GC_get_all_interior_pointers(void);

/* ---- roots ---------------------------------------------------------------------- */

/* Scan [low_address, high_address_plus_1) as a root (aligned inward to
 * whole words).  Out of memory for the table: "mheap: ..." and abort. */
GC_API void GC_CALL GC_add_roots(void * /* low_address */, void * /* high_address_plus_1 */);
/* Remove the added ranges lying wholly inside the region. */
GC_API void GC_CALL GC_remove_roots(void * /* low_address */, void * /* high_address_plus_1 */);
/* Remove every added range (the program's and libraries' data stay). */
GC_API void GC_CALL GC_clear_roots(void);
/* Libraries' data are always roots: setting 1 says so once. */
GC_API void GC_CALL GC_set_no_dls(int);
GC_API int GC_CALL GC_get_no_dls(void);

/* ---- statistics ---------------------------------------------------------------- */

/* mheap's statistics on standard output (mh_stats_print), where bdwgc
 * lists its heap's blocks. */
GC_API void GC_CALL GC_dump(void);
/* The same after a line naming the dump; GC_dump_regions the same;
 * GC_dump_finalization the number of finalizers ready to run. */
GC_API void GC_CALL GC_dump_named(const char * /* name */);
GC_API void GC_CALL GC_dump_regions(void);
GC_API void GC_CALL GC_dump_finalization(void);

/* Completed collections. */
GC_API GC_word GC_CALL GC_get_gc_no(void);
/* Bytes (see above for what each counts). */
GC_API size_t GC_CALL GC_get_heap_size(void);
GC_API size_t GC_CALL GC_get_free_bytes(void);
GC_API size_t GC_CALL GC_get_unmapped_bytes(void);
GC_API size_t GC_CALL GC_get_bytes_since_gc(void);
GC_API size_t GC_CALL GC_get_total_bytes(void);
GC_API size_t GC_CALL GC_get_memory_use(void);
/* The five at one moment; any pointer may be NULL. */
GC_API void GC_CALL GC_get_heap_usage_safe(GC_word * /* pheap_size */, GC_word * /* pfree_bytes */,
                                           GC_word * /* punmapped_bytes */,
                                           GC_word * /* pbytes_since_gc */,
                                           GC_word * /* ptotal_bytes */);

/* ---- messages ------------------------------------------------------------------ */

/* Where the layer's notes go: msg is a printf format for one GC_word
 * argument (mheap's own notes have no conversion).  The default prints
 * msg on stderr; GC_ignore_warn_proc drops it. */
typedef void(GC_CALLBACK *GC_warn_proc)(char * /* msg */, GC_word /* arg */);
GC_API void GC_CALL GC_set_warn_proc(GC_warn_proc /* p */) GC_ATTR_NONNULL(1);
GC_API GC_warn_proc GC_CALL GC_get_warn_proc(void);
GC_API void GC_CALLBACK GC_ignore_warn_proc(char *, GC_word);

/* ---- bdwgc's variables (deprecated there: the setters and getters are
 * the interface) ------------------------------------------------------------ */

/* Each is read where bdwgc reads it, so that a program writing one
 * directly (even a binary built against libgc.so.1, whose copy of the
 * variable libmheap.so then uses) gets what the top of this header says. */
GC_API GC_ATTR_DEPRECATED GC_word GC_gc_no;              /* +1 per collection */
GC_API GC_ATTR_DEPRECATED int GC_parallel;               /* markers > 1, set at start */
GC_API GC_ATTR_DEPRECATED GC_oom_func GC_oom_fn;         /* GC_set_oom_fn's */
typedef void(GC_CALLBACK *GC_on_heap_resize_proc)(GC_word /* new_size */);
GC_API GC_ATTR_DEPRECATED GC_on_heap_resize_proc GC_on_heap_resize;
GC_API GC_ATTR_DEPRECATED int GC_find_leak;              /* not supported */
GC_API GC_ATTR_DEPRECATED int GC_all_interior_pointers;  /* 0: not honoured */
GC_API
#ifndef GC_DONT_GC
GC_ATTR_DEPRECATED
#endif
    int GC_dont_gc; /* non-zero: no collection (GC_disable adds 1) */
GC_API GC_ATTR_DEPRECATED int GC_dont_expand;            /* not honoured */
GC_API GC_ATTR_DEPRECATED int GC_use_entire_heap;        /* not honoured */
GC_API GC_ATTR_DEPRECATED int GC_full_freq;              /* (incremental mode only) */
GC_API GC_ATTR_DEPRECATED GC_word GC_non_gc_bytes;       /* uncollectable bytes */
GC_API GC_ATTR_DEPRECATED int GC_no_dls;                 /* 1: not honoured */
GC_API GC_ATTR_DEPRECATED GC_word GC_free_space_divisor; /* the GC percent, as 100 / d */
GC_API GC_ATTR_DEPRECATED GC_word GC_max_retries;        /* non-zero: not honoured */
GC_API GC_ATTR_DEPRECATED char *GC_stackbottom;          /* the main stack's base */
GC_API GC_ATTR_DEPRECATED int GC_dont_precollect;        /* (never precollects) */
GC_API GC_ATTR_DEPRECATED unsigned long GC_time_limit;   /* (incremental mode only) */

/* ---- threads and locking ------------------------------------------------------- */

#define GC_SUCCESS 0
#define GC_DUPLICATE 1
#define GC_NO_THREADS 2
#define GC_UNIMPLEMENTED 3
#define GC_NOT_FOUND 4
#define GC_NO_MEMORY 2

/* ---- finalization and links (mheap_gc.h's, with bdwgc's names) ----------------- */

typedef void(GC_CALLBACK *GC_finalization_proc)(void * /* obj */, void * /* client_data */);
/* obj: the start of a collectable object (anything else is ignored, and
 * *ofn, *ocd get NULL).  fn NULL removes its finalizer; *ofn, *ocd (when
 * not NULL) get the one it replaced. */
GC_API void GC_CALL GC_register_finalizer(void * /* obj */, GC_finalization_proc /* fn */,
                                          void * /* cd */, GC_finalization_proc * /* ofn */,
                                          void ** /* ocd */) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer(void *, GC_finalization_proc, void *,
                                                GC_finalization_proc *, void **) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_register_finalizer_ignore_self(void *, GC_finalization_proc, void *,
                                                      GC_finalization_proc *, void **)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer_ignore_self(void *, GC_finalization_proc, void *,
                                                            GC_finalization_proc *, void **)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_register_finalizer_no_order(void *, GC_finalization_proc, void *,
                                                   GC_finalization_proc *, void **)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer_no_order(void *, GC_finalization_proc, void *,
                                                         GC_finalization_proc *, void **)
    GC_ATTR_NONNULL(1);
/* Not run while another object ready for finalization reaches obj (see
 * GC_java_finalization, which it needs). */
GC_API void GC_CALL GC_register_finalizer_unreachable(void *, GC_finalization_proc, void *,
                                                      GC_finalization_proc *, void **)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer_unreachable(void *, GC_finalization_proc, void *,
                                                            GC_finalization_proc *, void **)
    GC_ATTR_NONNULL(1);
/* Run the ready finalizers (at most the interrupt count, if not 0);
 * returns how many ran. */
GC_API int GC_CALL GC_invoke_finalizers(void);
GC_API int GC_CALL GC_should_invoke_finalizers(void);
/* (bdwgc 8.3's) */
GC_API void GC_CALL GC_set_interrupt_finalizers(unsigned);
GC_API unsigned GC_CALL GC_get_interrupt_finalizers(void);
/* The switches are these variables, which a program may also write
 * (unsynchronised, as in bdwgc); each is read where it decides.
 * GC_finalize_on_demand (0): finalizers run only in GC_invoke_finalizers,
 * and the notifier is called after each collection that ends with some
 * ready.  GC_java_finalization (1, as Debian builds bdwgc): what no-order
 * objects reach is marked after the ready ones are chosen, and unreachable
 * finalizers work (with 0 they act as ordered ones). */
GC_API GC_ATTR_DEPRECATED int GC_finalize_on_demand;
GC_API GC_ATTR_DEPRECATED int GC_java_finalization;
GC_API void GC_CALL GC_set_finalize_on_demand(int);
GC_API int GC_CALL GC_get_finalize_on_demand(void);
GC_API void GC_CALL GC_set_java_finalization(int);
GC_API int GC_CALL GC_get_java_finalization(void);
typedef void(GC_CALLBACK *GC_finalizer_notifier_proc)(void);
GC_API GC_ATTR_DEPRECATED GC_finalizer_notifier_proc GC_finalizer_notifier;
GC_API void GC_CALL GC_set_finalizer_notifier(GC_finalizer_notifier_proc);
GC_API GC_finalizer_notifier_proc GC_CALL GC_get_finalizer_notifier(void);
/* Called with each object a collection makes ready, after the pause, by
 * the collecting thread with collections held off (it must not allocate
 * or collect); 0: none. */
typedef void(GC_CALLBACK *GC_await_finalize_proc)(void * /* obj */);
GC_API void GC_CALL GC_set_await_finalize_proc(GC_await_finalize_proc);
GC_API GC_await_finalize_proc GC_CALL GC_get_await_finalize_proc(void);

/* Links: GC_SUCCESS, GC_DUPLICATE (registered already: it now belongs to
 * obj) or GC_NO_MEMORY; short and long links are apart (one address may
 * be both); unregister returns 1 if it was registered (as that kind);
 * move: GC_SUCCESS, GC_DUPLICATE (new_link taken) or GC_NOT_FOUND.  A NULL
 * or unaligned link, and an obj outside the GC heap, are misuse (an
 * interior pointer counts for its object). */
GC_API int GC_CALL GC_register_disappearing_link(void ** /* link */) GC_ATTR_NONNULL(1);
GC_API int GC_CALL GC_general_register_disappearing_link(void ** /* link */, const void * /* obj */)
    GC_ATTR_NONNULL(1) GC_ATTR_NONNULL(2);
GC_API int GC_CALL GC_move_disappearing_link(void ** /* link */, void ** /* new_link */)
    GC_ATTR_NONNULL(2);
GC_API int GC_CALL GC_unregister_disappearing_link(void ** /* link */);
GC_API int GC_CALL GC_register_long_link(void ** /* link */, const void * /* obj */)
    GC_ATTR_NONNULL(1) GC_ATTR_NONNULL(2);
GC_API int GC_CALL GC_move_long_link(void **, void **) GC_ATTR_NONNULL(2);
GC_API int GC_CALL GC_unregister_long_link(void **);

/* Toggle references (mh_gc_toggleref_add): before each collection the
 * function says, for every object added, whether it is now held strongly,
 * weakly, or no more.  It runs on the collecting thread with collections
 * held off.  Without a function, GC_toggleref_add registers nothing and
 * returns GC_SUCCESS; else GC_SUCCESS or GC_NO_MEMORY (an obj that does
 * not start a GC object is misuse). */
typedef enum { GC_TOGGLE_REF_DROP, GC_TOGGLE_REF_STRONG, GC_TOGGLE_REF_WEAK } GC_ToggleRefStatus;
typedef GC_ToggleRefStatus(GC_CALLBACK *GC_toggleref_func)(void * /* obj */);
GC_API void GC_CALL GC_set_toggleref_func(GC_toggleref_func);
GC_API GC_toggleref_func GC_CALL GC_get_toggleref_func(void);
GC_API int GC_CALL GC_toggleref_add(void * /* obj */, int /* is_strong */) GC_ATTR_NONNULL(1);

/* A pointer kept where the collector does not take it for one. */
#define GC_HIDE_POINTER(p) (~(GC_word)(p))
#define GC_REVEAL_POINTER(p) ((void *)GC_HIDE_POINTER(p))
#ifdef GC_DEBUG
#define GC_REGISTER_FINALIZER(p, f, d, of, od) GC_debug_register_finalizer(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_IGNORE_SELF(p, f, d, of, od)                                  \
    GC_debug_register_finalizer_ignore_self(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_NO_ORDER(p, f, d, of, od)                                     \
    GC_debug_register_finalizer_no_order(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_UNREACHABLE(p, f, d, of, od)                                  \
    GC_debug_register_finalizer_unreachable(p, f, d, of, od)
#define GC_GENERAL_REGISTER_DISAPPEARING_LINK(link, obj)                                    \
    GC_general_register_disappearing_link(link, GC_base((/* no const */ void *)(obj)))
#define GC_REGISTER_LONG_LINK(link, obj)                                                    \
    GC_register_long_link(link, GC_base((/* no const */ void *)(obj)))
#else
#define GC_REGISTER_FINALIZER(p, f, d, of, od) GC_register_finalizer(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_IGNORE_SELF(p, f, d, of, od)                                  \
    GC_register_finalizer_ignore_self(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_NO_ORDER(p, f, d, of, od)                                     \
    GC_register_finalizer_no_order(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_UNREACHABLE(p, f, d, of, od)                                  \
    GC_register_finalizer_unreachable(p, f, d, of, od)
#define GC_GENERAL_REGISTER_DISAPPEARING_LINK(link, obj)                                    \
    GC_general_register_disappearing_link(link, obj)
#define GC_REGISTER_LONG_LINK(link, obj) GC_register_long_link(link, obj)
#endif

/* Keep ptr's object reachable up to this point (its finalizer not run
 * while the program still uses what it releases). */
#define GC_reachable_here(ptr) __asm__ __volatile__(" " : : "X"(ptr) : "memory")

typedef void *(GC_CALLBACK *GC_fn_type)(void * /* client_data */);

#ifdef GC_THREADS
/* Collections are held off between the two (not reentrant). */
GC_API void GC_CALL GC_alloc_lock(void);
GC_API void GC_CALL GC_alloc_unlock(void);
#else
#define GC_alloc_lock() (void)0
#define GC_alloc_unlock() (void)0
#endif
/* fn(client_data) with collections held off; fn must not collect. */
GC_API void *GC_CALL GC_call_with_alloc_lock(GC_fn_type /* fn */, void * /* client_data */)
    GC_ATTR_NONNULL(1);

/* The cold end of a thread's stack. */
struct GC_stack_base {
    void *mem_base;
};
typedef void *(GC_CALLBACK *GC_stack_base_func)(struct GC_stack_base * /* sb */, void * /* arg */);
/* fn(sb, arg) with sb in this call's frame. */
GC_API void *GC_CALL GC_call_with_stack_base(GC_stack_base_func /* fn */, void * /* arg */)
    GC_ATTR_NONNULL(1);
/* The calling thread's stack base: GC_SUCCESS or GC_UNIMPLEMENTED. */
GC_API int GC_CALL GC_get_stack_base(struct GC_stack_base *) GC_ATTR_NONNULL(1);

#ifdef GC_THREADS
/* The marker threads start when a collection wants them: this only
 * records the count (the option gc_markers; 0: one per core). */
GC_API void GC_CALL GC_set_markers_count(unsigned);
/* The stop signal (the option gc_signal): only before the first thread
 * registers.  The restart signal is not used. */
GC_API void GC_CALL GC_set_suspend_signal(int);
GC_API void GC_CALL GC_set_thr_restart_signal(int);
GC_API int GC_CALL GC_get_suspend_signal(void);
GC_API int GC_CALL GC_get_thr_restart_signal(void);
/* Registration is always allowed: this does nothing. */
GC_API void GC_CALL GC_allow_register_threads(void);
/* GC_SUCCESS, or GC_DUPLICATE if the thread was registered already
 * (every GC call registers it). */
GC_API int GC_CALL GC_register_my_thread(const struct GC_stack_base *) GC_ATTR_NONNULL(1);
GC_API int GC_CALL GC_thread_is_registered(void);
/* GC_SUCCESS; the thread may register again later. */
GC_API int GC_CALL GC_unregister_my_thread(void);
#endif
/* Does nothing: marker threads start as collections need them. */
GC_API void GC_CALL GC_start_mark_threads(void);

/* fn(client_data) in a blocked region (mh_gc_do_blocking): the thread is
 * not stopped for collections, and its frames below this call are not
 * scanned; fn may call GC_call_with_gc_active to touch the heap again. */
GC_API void *GC_CALL GC_do_blocking(GC_fn_type /* fn */, void * /* client_data */)
    GC_ATTR_NONNULL(1);
GC_API void *GC_CALL GC_call_with_gc_active(GC_fn_type /* fn */, void * /* client_data */)
    GC_ATTR_NONNULL(1);

/* Aborts ("mheap: GC_is_visible: <p>") unless p is a word the collector
 * scans (see above); returns p. */
GC_API void *GC_CALL GC_is_visible(void * /* p */);
/* What GC_is_visible calls with p when p is not visible (as bdwgc; the
 * default prints that line and aborts). */
GC_API void(GC_CALLBACK *GC_is_visible_print_proc)(void * /* p */);

#ifdef GC_PTHREADS
#ifdef __cplusplus
}
#endif
#include "gc/gc_pthread_redirects.h"
#ifdef __cplusplus
extern "C" {
#endif
#endif

/* ---- the rest of bdwgc 8.2's gc.h that mheap answers (src/gc_boehm_abi.c) ----- */

/* Each is honoured, or accepted and said once through the warn procedure
 * not to be honoured ("mheap: GC_xxx is not honoured: ..."): what a
 * binary built against libgc.so.1 gets with libmheap.so preloaded. */

/* Alignment: an object of lb + align - 1 bytes, the aligned address in it
 * (an interior pointer, which keeps it alive; GC_base gives the start).
 * GC_posix_memalign: EINVAL for an alignment that is not a power of two
 * of at least a pointer, ENOMEM when memory runs out. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(2) void *GC_CALL GC_memalign(size_t /* align */,
                                                                     size_t /* lb */);
GC_API int GC_CALL GC_posix_memalign(void ** /* memptr */, size_t /* align */, size_t /* lb */)
    GC_ATTR_NONNULL(1);

/* Collection: GC_try_to_collect collects (1), or does nothing while
 * collection is disabled (0); a collection is never interrupted, so the
 * stop function is kept for the getter only (said once). */
typedef int(GC_CALLBACK *GC_stop_func)(void);
GC_API int GC_CALL GC_try_to_collect(GC_stop_func /* stop_func */) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_set_stop_func(GC_stop_func /* stop_func */) GC_ATTR_NONNULL(1);
GC_API GC_stop_func GC_CALL GC_get_stop_func(void);
/* 1: GC_gcollect gives memory back as GC_gcollect_and_unmap does. */
GC_API void GC_CALL GC_set_force_unmap_on_gcollect(int);
GC_API int GC_CALL GC_get_force_unmap_on_gcollect(void);
GC_API void GC_CALL GC_set_disable_automatic_collection(int);
GC_API int GC_CALL GC_get_disable_automatic_collection(void);
/* 1 once the GC heap has started (by GC_INIT or any first GC call). */
GC_API int GC_CALL GC_is_init_called(void);

/* Settings mheap keeps for their getters: incremental mode's (there is
 * none: GC_incremental_protection_needs() is GC_PROTECTS_NONE,
 * GC_start_incremental_collection does nothing), and those said once not
 * to be honoured when set (the least allocation between collections,
 * finalizers pacing collections, executable heap pages, retries,
 * GC_dont_expand, leak finding, another abort function). */
#define GC_PROTECTS_POINTER_HEAP 1
#define GC_PROTECTS_PTRFREE_HEAP 2
#define GC_PROTECTS_STATIC_DATA 4
#define GC_PROTECTS_STACK 8
#define GC_PROTECTS_NONE 0
GC_API int GC_CALL GC_incremental_protection_needs(void);
GC_API void GC_CALL GC_start_incremental_collection(void);
GC_API void GC_CALL GC_set_manual_vdb_allowed(int);
GC_API int GC_CALL GC_get_manual_vdb_allowed(void);
GC_API void GC_CALL GC_set_rate(int);
GC_API int GC_CALL GC_get_rate(void);
GC_API void GC_CALL GC_set_max_prior_attempts(int);
GC_API int GC_CALL GC_get_max_prior_attempts(void);
GC_API void GC_CALL GC_set_full_freq(int);
GC_API int GC_CALL GC_get_full_freq(void);
struct GC_timeval_s {
    unsigned long tv_ms;   /* milliseconds */
    unsigned long tv_nsec; /* and nanoseconds (< 1000000) */
};
GC_API void GC_CALL GC_set_time_limit_tv(struct GC_timeval_s);
GC_API struct GC_timeval_s GC_CALL GC_get_time_limit_tv(void);
GC_API void GC_CALL GC_set_min_bytes_allocd(size_t);
GC_API size_t GC_CALL GC_get_min_bytes_allocd(void);
GC_API void GC_CALL GC_set_allocd_bytes_per_finalizer(GC_word);
GC_API GC_word GC_CALL GC_get_allocd_bytes_per_finalizer(void);
GC_API void GC_CALL GC_set_pages_executable(int);
GC_API int GC_CALL GC_get_pages_executable(void); /* 0 */
GC_API void GC_CALL GC_set_max_retries(GC_word);
GC_API GC_word GC_CALL GC_get_max_retries(void);
GC_API void GC_CALL GC_set_dont_expand(int);
GC_API int GC_CALL GC_get_dont_expand(void);
GC_API void GC_CALL GC_set_dont_precollect(int);
GC_API int GC_CALL GC_get_dont_precollect(void);
GC_API void GC_CALL GC_set_find_leak(int);
GC_API int GC_CALL GC_get_find_leak(void);
GC_API void GC_CALL GC_set_non_gc_bytes(GC_word);
GC_API GC_word GC_CALL GC_get_non_gc_bytes(void);
typedef void(GC_CALLBACK *GC_abort_func)(const char * /* msg */);
GC_API void GC_CALL GC_set_abort_func(GC_abort_func) GC_ATTR_NONNULL(1);
GC_API GC_abort_func GC_CALL GC_get_abort_func(void);

/* Events: the heap-resize procedure is called after a collection that
 * left the heap another size; of the collection events only
 * GC_EVENT_START and GC_EVENT_END are given; no thread events (said
 * once). */
typedef enum {
    GC_EVENT_START,
    GC_EVENT_MARK_START,
    GC_EVENT_MARK_END,
    GC_EVENT_RECLAIM_START,
    GC_EVENT_RECLAIM_END,
    GC_EVENT_END,
    GC_EVENT_PRE_STOP_WORLD,
    GC_EVENT_POST_STOP_WORLD,
    GC_EVENT_PRE_START_WORLD,
    GC_EVENT_POST_START_WORLD,
    GC_EVENT_THREAD_SUSPENDED,
    GC_EVENT_THREAD_UNSUSPENDED
} GC_EventType;
typedef void(GC_CALLBACK *GC_on_collection_event_proc)(GC_EventType);
GC_API void GC_CALL GC_set_on_collection_event(GC_on_collection_event_proc);
GC_API GC_on_collection_event_proc GC_CALL GC_get_on_collection_event(void);
typedef void(GC_CALLBACK *GC_on_thread_event_proc)(GC_EventType, void * /* thread_id */);
GC_API void GC_CALL GC_set_on_thread_event(GC_on_thread_event_proc);
GC_API GC_on_thread_event_proc GC_CALL GC_get_on_thread_event(void);
GC_API void GC_CALL GC_set_on_heap_resize(GC_on_heap_resize_proc);
GC_API GC_on_heap_resize_proc GC_CALL GC_get_on_heap_resize(void);

/* Statistics (mheap's figures, as above): the pause time of the
 * collections since GC_start_performance_measurement, in ms; the bytes
 * from the OS are the heap's size; GC_get_size_map_at(i) the bytes an
 * object of i bytes takes (-1 past the small sizes). */
GC_API void GC_CALL GC_start_performance_measurement(void);
GC_API unsigned long GC_CALL GC_get_full_gc_total_time(void);
GC_API size_t GC_CALL GC_get_obtained_from_os_bytes(void);
GC_API size_t GC_CALL GC_get_expl_freed_bytes_since_gc(void);
GC_API int GC_CALL GC_get_parallel(void);
GC_API size_t GC_CALL GC_get_size_map_at(int /* i */);
struct GC_prof_stats_s {
    GC_word heapsize_full, free_bytes_full, unmapped_bytes, bytes_allocd_since_gc,
        allocd_bytes_before_gc, non_gc_bytes, gc_no, markers_m1, bytes_reclaimed_since_gc,
        reclaimed_bytes_before_gc, expl_freed_bytes_since_gc, obtained_from_os_bytes;
};
/* Fills at most stats_sz bytes (a larger struct's other fields get all
 * bits set, as bdwgc does); returns the bytes filled. */
GC_API size_t GC_CALL GC_get_prof_stats(struct GC_prof_stats_s *, size_t /* stats_sz */);
GC_API size_t GC_CALL GC_get_prof_stats_unsafe(struct GC_prof_stats_s *, size_t /* stats_sz */);

/* Stubborn objects are ordinary ones (as in bdwgc 8): the change calls
 * do nothing, GC_ptr_store_and_dirty stores. */
GC_API void GC_CALL GC_change_stubborn(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_change_stubborn(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_end_stubborn_change(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_end_stubborn_change(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_ptr_store_and_dirty(void * /* p */, const void * /* q */);
GC_API void GC_CALL GC_debug_ptr_store_and_dirty(void *, const void *);
#define GC_MALLOC_STUBBORN(sz) GC_MALLOC(sz)
#define GC_NEW_STUBBORN(t) GC_NEW(t)
#define GC_CHANGE_STUBBORN(p) GC_change_stubborn(p)
#ifdef GC_DEBUG
#define GC_END_STUBBORN_CHANGE(p) GC_debug_end_stubborn_change(p)
#define GC_PTR_STORE_AND_DIRTY(p, q) GC_debug_ptr_store_and_dirty(p, q)
#else
#define GC_END_STUBBORN_CHANGE(p) GC_end_stubborn_change(p)
#define GC_PTR_STORE_AND_DIRTY(p, q) GC_ptr_store_and_dirty(p, q)
#endif

/* Pointer checks: GC_same_obj(p, q) calls GC_same_obj_print_proc when p
 * and q are in different objects (or one is in none while the other is
 * in the heap); GC_is_valid_displacement(p) calls its print procedure for
 * a heap address in no object (every offset into an object is valid).
 * The defaults print "mheap: ...: <p>" and abort.  Each returns p;
 * GC_pre_incr and GC_post_incr move *p by how_much, checked so. */
GC_API void *GC_CALL GC_same_obj(void * /* p */, void * /* q */);
GC_API void *GC_CALL GC_pre_incr(void **, ptrdiff_t /* how_much */) GC_ATTR_NONNULL(1);
GC_API void *GC_CALL GC_post_incr(void **, ptrdiff_t /* how_much */) GC_ATTR_NONNULL(1);
GC_API void *GC_CALL GC_is_valid_displacement(void * /* p */);
GC_API void(GC_CALLBACK *GC_same_obj_print_proc)(void * /* p */, void * /* q */);
GC_API void(GC_CALLBACK *GC_is_valid_displacement_print_proc)(void * /* p */);
#if defined(GC_DEBUG) && defined(__GNUC__)
#define GC_PTR_ADD3(x, n, type_of_result) ((type_of_result)GC_same_obj((x) + (n), (x)))
#define GC_PRE_INCR3(x, n, type_of_result)                                                  \
    ((type_of_result)GC_pre_incr((void **)(&(x)), (n) * sizeof(*x)))
#define GC_POST_INCR3(x, n, type_of_result)                                                 \
    ((type_of_result)GC_post_incr((void **)(&(x)), (n) * sizeof(*x)))
#define GC_PTR_ADD(x, n) GC_PTR_ADD3(x, n, __typeof__(x))
#define GC_PRE_INCR(x, n) GC_PRE_INCR3(x, n, __typeof__(x))
#define GC_POST_INCR(x) GC_POST_INCR3(x, 1, __typeof__(x))
#define GC_POST_DECR(x) GC_POST_INCR3(x, -1, __typeof__(x))
#else
#define GC_PTR_ADD(x, n) ((x) + (n))
#define GC_PRE_INCR(x, n) ((x) += (n))
#define GC_POST_INCR(x) ((x)++)
#define GC_POST_DECR(x) ((x)--)
#endif
#ifdef GC_DEBUG
#define GC_PTR_STORE(p, q)                                                                  \
    (*(void **)GC_is_visible((void *)(p)) = GC_is_valid_displacement((void *)(q)))
#else
#define GC_PTR_STORE(p, q) (*(void **)(p) = (void *)(q))
#endif
/* Keeps x in a register or memory up to here (an empty asm). */
GC_API void GC_CALL GC_noop1(GC_word);

/* Stacks: GC_get_my_stackbottom gives the calling thread's stack base
 * and a handle for GC_set_stackbottom, which accepts a base inside the
 * thread's own stack (the whole stack is scanned anyway: said once) and
 * aborts for another stack ("mheap: GC_set_stackbottom (another stack
 * than the calling thread's own) is not supported"). */
GC_API void *GC_CALL GC_get_my_stackbottom(struct GC_stack_base *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_set_stackbottom(void * /* gc_thread_handle */, const struct GC_stack_base *)
    GC_ATTR_NONNULL(2);
/* Roots: static data and every library's data stay roots (said once). */
GC_API void GC_CALL GC_exclude_static_roots(void * /* low */, void * /* high */);
GC_API void GC_CALL GC_clear_exclusion_table(void);

/* Fork is always handled (mheap's pthread_atfork handlers): these do
 * nothing, whatever GC_set_handle_fork was given. */
GC_API void GC_CALL GC_set_handle_fork(int);
GC_API void GC_CALL GC_atfork_prepare(void);
GC_API void GC_CALL GC_atfork_parent(void);
GC_API void GC_CALL GC_atfork_child(void);

GC_API void GC_CALL GC_set_log_fd(int);   /* said once: lines go to stderr */
GC_API void GC_CALL GC_deinit(void);      /* said once: the heap stays */

/* ---- GC_INIT ------------------------------------------------------------------- */

#ifdef GC_DONT_GC
#define GC_INIT_CONF_DONT_GC GC_disable()
#else
#define GC_INIT_CONF_DONT_GC
#endif
#if defined(GC_FREE_SPACE_DIVISOR)
#define GC_INIT_CONF_FREE_SPACE_DIVISOR GC_set_free_space_divisor(GC_FREE_SPACE_DIVISOR)
#else
#define GC_INIT_CONF_FREE_SPACE_DIVISOR
#endif
#if defined(GC_TIME_LIMIT)
#define GC_INIT_CONF_TIME_LIMIT GC_set_time_limit(GC_TIME_LIMIT)
#else
#define GC_INIT_CONF_TIME_LIMIT
#endif
#if defined(GC_MARKERS) && defined(GC_THREADS)
#define GC_INIT_CONF_MARKERS GC_set_markers_count(GC_MARKERS)
#else
#define GC_INIT_CONF_MARKERS
#endif
#if defined(GC_SIG_SUSPEND) && defined(GC_THREADS)
#define GC_INIT_CONF_SUSPEND_SIGNAL GC_set_suspend_signal(GC_SIG_SUSPEND)
#else
#define GC_INIT_CONF_SUSPEND_SIGNAL
#endif
#if defined(GC_SIG_THR_RESTART) && defined(GC_THREADS)
#define GC_INIT_CONF_THR_RESTART_SIGNAL GC_set_thr_restart_signal(GC_SIG_THR_RESTART)
#else
#define GC_INIT_CONF_THR_RESTART_SIGNAL
#endif
#if defined(GC_MAXIMUM_HEAP_SIZE)
#define GC_INIT_CONF_MAXIMUM_HEAP_SIZE GC_set_max_heap_size(GC_MAXIMUM_HEAP_SIZE)
#else
#define GC_INIT_CONF_MAXIMUM_HEAP_SIZE
#endif
#ifdef GC_IGNORE_WARN
#define GC_INIT_CONF_IGNORE_WARN GC_set_warn_proc(GC_ignore_warn_proc)
#else
#define GC_INIT_CONF_IGNORE_WARN
#endif
#if defined(GC_INITIAL_HEAP_SIZE)
#define GC_INIT_CONF_INITIAL_HEAP_SIZE                                                      \
    {                                                                                       \
        size_t heap_size = GC_get_heap_size();                                              \
        if (heap_size < (GC_INITIAL_HEAP_SIZE))                                             \
            (void)GC_expand_hp((GC_INITIAL_HEAP_SIZE) - heap_size);                         \
    }
#else
#define GC_INIT_CONF_INITIAL_HEAP_SIZE
#endif

/* From the main program, before other GC calls: the configuration
 * macros above, then GC_init.  Repeated calls are harmless. */
#define GC_INIT()                                                                           \
    {                                                                                       \
        GC_INIT_CONF_DONT_GC;                                                               \
        GC_INIT_CONF_FREE_SPACE_DIVISOR;                                                    \
        GC_INIT_CONF_TIME_LIMIT;                                                            \
        GC_INIT_CONF_MARKERS;                                                               \
        GC_INIT_CONF_SUSPEND_SIGNAL;                                                        \
        GC_INIT_CONF_THR_RESTART_SIGNAL;                                                    \
        GC_INIT_CONF_MAXIMUM_HEAP_SIZE;                                                     \
        GC_init();                                                                          \
        GC_INIT_CONF_IGNORE_WARN;                                                           \
        GC_INIT_CONF_INITIAL_HEAP_SIZE;                                                     \
    }

#ifdef __cplusplus
}
#endif

#endif
