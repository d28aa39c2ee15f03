/* gc_boehm.c - bdwgc's interface (include/gc.h, gc/gc_mark.h,
 * gc/gc_pthread_redirects.h) on the mh_gc_* calls of mheap_gc.h.  What
 * maps to what, and what is accepted without effect, is listed at the top
 * of include/gc.h.
 *
 * GC_malloc and GC_malloc_atomic are in gc.c, beside the inline fast
 * path; this file answers for them when they fail (mhi_gc_boehm_oom).
 * The thread and dlopen wrappers call the C library's functions they
 * wrap. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* The whole interface declared, and no redirection inside this file;
 * without the nonnull attributes, so that the checks for NULL below stay
 * (a NULL where the header says nonnull is misuse, and aborts). */
#define GC_ATTR_NONNULL(argnum)
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "../include/gc.h" /* by path: src/gc.h is the collector's own header */
#include "../include/gc/gc_mark.h"

#include "arena.h"
#include "mheap_gc.h"
#include "print.h"

#define GCB_EXPORT __attribute__((visibility("default")))

/* ---- messages ---- */

static void GC_CALLBACK default_warn(char *msg, GC_word arg) {
    (void)arg;
    mhi_printf(2, "%s", msg);
}

static _Atomic(GC_warn_proc) warn_proc = default_warn;

GCB_EXPORT void GC_CALL GC_set_warn_proc(GC_warn_proc p) {
    if (!p) mhi_fatal_at("GC_set_warn_proc", NULL);
    atomic_store(&warn_proc, p);
}
GCB_EXPORT GC_warn_proc GC_CALL GC_get_warn_proc(void) { return atomic_load(&warn_proc); }
GCB_EXPORT void GC_CALLBACK GC_ignore_warn_proc(char *msg, GC_word arg) {
    (void)msg;
    (void)arg;
}

/* Say msg (a whole line, no printf conversion) through the warn
 * procedure, the first time only. */
static void note_once(_Atomic int *said, char *msg) {
    if (!atomic_exchange(said, 1)) atomic_load(&warn_proc)(msg, 0);
}

/* ---- set-up ---- */

GCB_EXPORT unsigned GC_CALL GC_get_version(void) {
    return (GC_VERSION_MAJOR << 16) | (GC_VERSION_MINOR << 8) | GC_VERSION_MICRO;
}

GCB_EXPORT void GC_CALL GC_init(void) { (void)mh_gc_register_thread(); }

/* ---- allocation ---- */

/* gc_boehm_abi.c: what a failed allocation of size bytes returns (errno
 * is ENOMEM), and the count of uncollectable bytes (GC_non_gc_bytes). */
void *mhi_gc_boehm_oom(size_t size);
void mhi_gc_boehm_non_gc(const void *p, int sign);

static inline void *got(void *p, size_t size) { return p ? p : mhi_gc_boehm_oom(size); }

static void *uncollectable(size_t size) {
    void *p = mh_gc_malloc_uncollectable(size);
    if (!p) return mhi_gc_boehm_oom(size);
    mhi_gc_boehm_non_gc(p, 1);
    return p;
}
GCB_EXPORT void *GC_CALL GC_malloc_uncollectable(size_t size) { return uncollectable(size); }
GCB_EXPORT void *GC_CALL GC_malloc_atomic_uncollectable(size_t size) { return uncollectable(size); }
GCB_EXPORT void *GC_CALL GC_malloc_ignore_off_page(size_t size) {
    return got(mh_gc_malloc(size), size);
}
GCB_EXPORT void *GC_CALL GC_malloc_atomic_ignore_off_page(size_t size) {
    return got(mh_gc_malloc_atomic(size), size);
}

GCB_EXPORT char *GC_CALL GC_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = got(mh_gc_malloc_atomic(n), n);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(p, s, n);
    return p;
}

GCB_EXPORT char *GC_CALL GC_strndup(const char *s, size_t size) {
    size_t n = strnlen(s, size);
    char *p = got(mh_gc_malloc_atomic(n + 1), n + 1);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* bdwgc's rule for a size of 0 is fixed (free, return NULL) where C's
 * realloc leaves it to the implementation, so it is handled here.  When
 * the new object cannot be had, the OOM function's object (if another)
 * takes what of the contents fits, and the old object goes, as in bdwgc. */
GCB_EXPORT void *GC_CALL GC_realloc(void *old_object, size_t new_size) {
    if (old_object && new_size == 0) {
        GC_free(old_object);
        return NULL;
    }
    if (old_object) mhi_gc_boehm_non_gc(old_object, -1);
    void *q = mh_gc_realloc(old_object, new_size);
    if (q) mhi_gc_boehm_non_gc(q, 1);
    if (q || !old_object) return got(q, new_size);
    mhi_gc_boehm_non_gc(old_object, 1); /* (still there) */
    q = mhi_gc_boehm_oom(new_size);
    if (q && q != old_object) {
        size_t n = mh_gc_size(old_object), room = mh_gc_size(q);
        if (n > new_size) n = new_size;
        if (n > room) n = room;
        memcpy(q, old_object, n);
        GC_free(old_object);
    }
    return q;
}

GCB_EXPORT void GC_CALL GC_free(void *p) {
    mhi_gc_boehm_non_gc(p, -1);
    mh_gc_free(p);
}
GCB_EXPORT void *GC_CALL GC_base(void *p) { return mh_gc_base(p, NULL); }
GCB_EXPORT int GC_CALL GC_is_heap_ptr(const void *p) { return mh_gc_is_heap_ptr(p); }
GCB_EXPORT size_t GC_CALL GC_size(const void *p) { return mh_gc_size(p); }

/* About a page of objects, as bdwgc hands out a block's free list (one
 * object when they are large). */
GCB_EXPORT void *GC_CALL GC_malloc_many(size_t lb) {
    size_t size = lb < sizeof(void *) ? sizeof(void *) : lb;
    size_t n = size >= 4096 ? 1 : 8192 / size;
    if (n > 64) n = 64;
    void *head = NULL;
    for (size_t i = 0; i < n; i++) {
        void *p = mh_gc_malloc(size);
        if (!p) break;
        *(void **)p = head;
        head = p;
    }
    return got(head, size);
}

GCB_EXPORT void GC_CALL GC_register_displacement(size_t n) { (void)n; }
GCB_EXPORT void GC_CALL GC_debug_register_displacement(size_t n) { (void)n; }

/* The debug forms: the plain ones. */
GCB_EXPORT void *GC_CALL GC_debug_malloc(size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc(size);
}
GCB_EXPORT void *GC_CALL GC_debug_malloc_atomic(size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc_atomic(size);
}
GCB_EXPORT char *GC_CALL GC_debug_strdup(const char *str, const char *s, int i) {
    (void)s, (void)i;
    return GC_strdup(str);
}
GCB_EXPORT char *GC_CALL GC_debug_strndup(const char *str, size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_strndup(str, size);
}
GCB_EXPORT void *GC_CALL GC_debug_malloc_uncollectable(size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc_uncollectable(size);
}
GCB_EXPORT void *GC_CALL GC_debug_malloc_atomic_uncollectable(size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc_atomic_uncollectable(size);
}
GCB_EXPORT void *GC_CALL GC_debug_malloc_ignore_off_page(size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc_ignore_off_page(size);
}
GCB_EXPORT void *GC_CALL GC_debug_malloc_atomic_ignore_off_page(size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_malloc_atomic_ignore_off_page(size);
}
GCB_EXPORT void GC_CALL GC_debug_free(void *p) { GC_free(p); }
GCB_EXPORT void *GC_CALL GC_debug_realloc(void *p, size_t size, const char *s, int i) {
    (void)s, (void)i;
    return GC_realloc(p, size);
}
GCB_EXPORT void *GC_CALL GC_debug_malloc_replacement(size_t size) { return GC_malloc(size); }
GCB_EXPORT void *GC_CALL GC_debug_realloc_replacement(void *p, size_t size) {
    return GC_realloc(p, size);
}

/* ---- collection ---- */

/* (GC_gcollect, GC_disable and the other calls on bdwgc's variables are
 * in gc_boehm_abi.c) */
GCB_EXPORT int GC_CALL GC_collect_a_little(void) { return mh_gc_collect_a_little(); }
GCB_EXPORT int GC_CALL GC_expand_hp(size_t bytes) { return mh_gc_expand(bytes) == 0; }
GCB_EXPORT void GC_CALL GC_set_max_heap_size(GC_word n) { mh_gc_set_memory_limit((size_t)n); }

GCB_EXPORT void GC_CALL GC_enable_incremental(void) { GC_init(); }
GCB_EXPORT int GC_CALL GC_is_incremental_mode(void) { return 0; }

/* ---- roots ---- */

GCB_EXPORT void GC_CALL GC_add_roots(void *lo, void *hi) {
    if (mh_gc_add_roots(lo, hi) != 0) mhi_fatal("GC_add_roots: out of memory for the table of roots");
}
GCB_EXPORT void GC_CALL GC_remove_roots(void *lo, void *hi) { mh_gc_remove_roots_within(lo, hi); }
GCB_EXPORT void GC_CALL GC_clear_roots(void) { mh_gc_clear_roots(); }

/* ---- statistics ---- */

GCB_EXPORT size_t GC_CALL GC_get_heap_size(void) { return mh_gc_heap_size(); }
GCB_EXPORT size_t GC_CALL GC_get_free_bytes(void) { return mh_gc_free_bytes(NULL); }
GCB_EXPORT size_t GC_CALL GC_get_unmapped_bytes(void) { return 0; }
GCB_EXPORT size_t GC_CALL GC_get_bytes_since_gc(void) { return (size_t)mh_gc_bytes_since_gc(); }
GCB_EXPORT size_t GC_CALL GC_get_total_bytes(void) { return (size_t)mh_gc_alloc_bytes(); }
GCB_EXPORT size_t GC_CALL GC_get_memory_use(void) {
    size_t heap, nfree = mh_gc_free_bytes(&heap);
    return heap > nfree ? heap - nfree : 0;
}

GCB_EXPORT void GC_CALL GC_get_heap_usage_safe(GC_word *pheap_size, GC_word *pfree_bytes,
                                               GC_word *punmapped_bytes, GC_word *pbytes_since_gc,
                                               GC_word *ptotal_bytes) {
    size_t heap, nfree = mh_gc_free_bytes(&heap);
    /* (since before total: the total is then at least since) */
    uint64_t since = mh_gc_bytes_since_gc(), total = mh_gc_alloc_bytes();
    if (pheap_size) *pheap_size = heap;
    if (pfree_bytes) *pfree_bytes = nfree;
    if (punmapped_bytes) *punmapped_bytes = 0;
    if (pbytes_since_gc) *pbytes_since_gc = (GC_word)since;
    if (ptotal_bytes) *ptotal_bytes = (GC_word)total;
}

/* ---- gc_mark.h ---- */

GCB_EXPORT void *GC_least_plausible_heap_addr = (void *)~(uintptr_t)0;
GCB_EXPORT void *GC_greatest_plausible_heap_addr = (void *)0;

void mhi_gc_boehm_heap_bounds(uintptr_t lo, uintptr_t hi) {
    __atomic_store_n(&GC_least_plausible_heap_addr, (void *)lo, __ATOMIC_RELAXED);
    __atomic_store_n(&GC_greatest_plausible_heap_addr, (void *)hi, __ATOMIC_RELAXED);
}

GCB_EXPORT void GC_CALL GC_set_start_callback(GC_start_callback_proc fn) {
    mh_gc_set_start_callback(fn);
}
GCB_EXPORT GC_start_callback_proc GC_CALL GC_get_start_callback(void) {
    return mh_gc_get_start_callback();
}

/* ---- threads and locking ---- */

GCB_EXPORT void GC_CALL GC_alloc_lock(void) { mh_gc_lock(); }
GCB_EXPORT void GC_CALL GC_alloc_unlock(void) { mh_gc_unlock(); }
GCB_EXPORT void *GC_CALL GC_call_with_alloc_lock(GC_fn_type fn, void *client_data) {
    mh_gc_lock();
    void *r = fn(client_data);
    mh_gc_unlock();
    return r;
}

GCB_EXPORT void *GC_CALL GC_call_with_stack_base(GC_stack_base_func fn, void *arg) {
    struct GC_stack_base sb;
    sb.mem_base = (void *)&sb;
    return fn(&sb, arg);
}

GCB_EXPORT int GC_CALL GC_get_stack_base(struct GC_stack_base *sb) {
    uintptr_t lo, hi;
    if (!mhi_os_stack_bounds(&lo, &hi)) return GC_UNIMPLEMENTED;
    sb->mem_base = (void *)hi;
    return GC_SUCCESS;
}

GCB_EXPORT void GC_CALL GC_set_markers_count(unsigned n) { (void)mh_option_set("gc_markers", (long)n); }
GCB_EXPORT void GC_CALL GC_set_suspend_signal(int sig) { (void)mh_option_set("gc_signal", sig); }
GCB_EXPORT void GC_CALL GC_set_thr_restart_signal(int sig) { (void)sig; }
GCB_EXPORT int GC_CALL GC_get_suspend_signal(void) { return mh_gc_stop_signal(); }
GCB_EXPORT int GC_CALL GC_get_thr_restart_signal(void) { return mh_gc_stop_signal(); }
GCB_EXPORT void GC_CALL GC_allow_register_threads(void) {}
GCB_EXPORT void GC_CALL GC_start_mark_threads(void) {}

static _Atomic int said_stack_base;

GCB_EXPORT int GC_CALL GC_register_my_thread(const struct GC_stack_base *sb) {
    if (!sb) mhi_fatal_at("GC_register_my_thread", NULL);
    int was = mh_gc_thread_registered();
    (void)mh_gc_register_thread();
    uintptr_t lo, hi, base = (uintptr_t)sb->mem_base;
    if (mhi_os_stack_bounds(&lo, &hi) && (base < lo || base > hi))
        note_once(&said_stack_base, "mheap: GC_register_my_thread: the stack base given is not in "
                                    "the thread's stack, which is scanned instead\n");
    return was ? GC_DUPLICATE : GC_SUCCESS;
}
GCB_EXPORT int GC_CALL GC_thread_is_registered(void) { return mh_gc_thread_registered(); }
GCB_EXPORT int GC_CALL GC_unregister_my_thread(void) {
    mh_gc_unregister_thread();
    return GC_SUCCESS;
}

GCB_EXPORT void *GC_CALL GC_do_blocking(GC_fn_type fn, void *client_data) {
    return mh_gc_do_blocking(fn, client_data);
}
GCB_EXPORT void *GC_CALL GC_call_with_gc_active(GC_fn_type fn, void *client_data) {
    return mh_gc_call_active(fn, client_data);
}

GCB_EXPORT void *GC_CALL GC_is_visible(void *p) {
    if (!mh_gc_is_visible(p)) __atomic_load_n(&GC_is_visible_print_proc, __ATOMIC_RELAXED)(p);
    return p;
}

/* A new thread starts registered: its start routine and argument wait in
 * an uncollectable record (a root) until it has registered and holds
 * them itself. */
typedef struct {
    void *(*fn)(void *);
    void *arg;
} start_record;

static void *thread_main(void *p) {
    start_record *r = p;
    (void)mh_gc_register_thread();
    void *(*fn)(void *) = r->fn;
    void *arg = r->arg;
    mh_gc_free(r);
    return fn(arg);
}

GCB_EXPORT int GC_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                 void *arg) {
    start_record *r = mh_gc_malloc_uncollectable(sizeof *r);
    if (!r) return EAGAIN;
    r->fn = fn;
    r->arg = arg;
    int rc = pthread_create(t, attr, thread_main, r);
    if (rc) mh_gc_free(r);
    return rc;
}

GCB_EXPORT int GC_pthread_join(pthread_t t, void **retval) { return pthread_join(t, retval); }
GCB_EXPORT int GC_pthread_detach(pthread_t t) { return pthread_detach(t); }
GCB_EXPORT int GC_pthread_cancel(pthread_t t) { return pthread_cancel(t); }
GCB_EXPORT void GC_pthread_exit(void *retval) { pthread_exit(retval); }

/* The stop signal stays deliverable, or no collection could stop the
 * thread. */
GCB_EXPORT int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *oset) {
    sigset_t fudged;
    if (set && (how == SIG_BLOCK || how == SIG_SETMASK)) {
        fudged = *set;
        sigdelset(&fudged, mh_gc_stop_signal());
        set = &fudged;
    }
    return pthread_sigmask(how, set, oset);
}

GCB_EXPORT void *GC_dlopen(const char *path, int mode) { return dlopen(path, mode); }
