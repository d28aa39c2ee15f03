/* process.c - process set-up, exit, and fork handling (process.h). */
#include "process.h"

#include <stdatomic.h>
#include <stdbool.h>

#include "background.h"
#include "cache.h"
#include "central.h"
#include "gc.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"
#include "secure.h"

/* The layers with locks, outermost first: prepare runs down the table,
 * parent and child up it. */
static const struct {
    void (*prepare)(void), (*parent)(void), (*child)(void);
} fork_layers[] = {
    /* the collector's world and roots locks: a program may use stdio, and
     * free, while it holds the world lock (mh_gc_lock) */
    {mhi_gc_fork_prepare, mhi_gc_fork_parent, mhi_gc_fork_child}, /* world, roots */
    /* the C library's stream list: its lock is held while streams, which
     * allocate under their own locks, are locked (os.c) */
    {mhi_os_fork_stdio_prepare, mhi_os_fork_stdio_parent, mhi_os_fork_stdio_child},
#if MHEAP_SECURE
    {mhi_secure_fork_prepare, mhi_secure_fork_parent, mhi_secure_fork_child}, /* large quarantine */
#endif
    {mhi_cache_fork_prepare, mhi_cache_fork_parent, mhi_cache_fork_child},
    {mhi_central_fork_prepare, mhi_central_fork_parent, mhi_central_fork_child},
    {mhi_gc_fork_prepare_lock, mhi_gc_fork_parent_lock, 0}, /* the GC lock (reset above) */
    {mhi_heap_fork_prepare, mhi_heap_fork_parent, mhi_heap_fork_child},
    {0, 0, mhi_bg_fork_child}, /* the background thread did not come along */
};
#define NLAYERS (sizeof fork_layers / sizeof fork_layers[0])

/* In a process that has only ever had one thread the handlers do nothing,
 * as glibc's fork does for its own malloc and stream locks then: no other
 * thread can hold a lock, and one that this thread holds belongs to the
 * call a signal handler interrupted to fork (taking it would wait for
 * ever; a child that returns from the handler finds it as the parent
 * does).  That makes fork safe from a signal handler in such a process.
 * The prepare handler decides for all three (fork_skip: the forking
 * thread's), so that they agree even if a C library set the flag again
 * in the child. */
static _Thread_local bool fork_skip;
static void fork_prepare(void) {
    fork_skip = mhi_os_single_threaded();
    if (fork_skip) return;
    for (size_t i = 0; i < NLAYERS; i++)
        if (fork_layers[i].prepare) fork_layers[i].prepare();
}
static void fork_parent(void) {
    if (fork_skip) return;
    for (size_t i = NLAYERS; i-- > 0;)
        if (fork_layers[i].parent) fork_layers[i].parent();
}
static void fork_child(void) {
    if (fork_skip) return;
    for (size_t i = NLAYERS; i-- > 0;)
        if (fork_layers[i].child) fork_layers[i].child();
}

/* 0: not set up; 1: a thread is setting up; 2: done. */
static _Atomic int process_state;
static __thread bool process_setting_up; /* this thread is (registering may allocate) */

void mhi_process_init(void) {
    if (MHI_LIKELY(atomic_load_explicit(&process_state, memory_order_acquire) == 2) ||
        process_setting_up)
        return;
    int expect = 0;
    if (atomic_compare_exchange_strong(&process_state, &expect, 1)) {
        process_setting_up = true;
        (void)mhi_option(MHI_OPT_stats); /* read MHEAP_OPTIONS */
        mhi_os_atfork(fork_prepare, fork_parent, fork_child);
        process_setting_up = false;
        atomic_store_explicit(&process_state, 2, memory_order_release);
        return;
    }
    /* Another thread is registering the handlers: a fork before they are
     * in place could leave a lock held in the child, so wait. */
    while (atomic_load_explicit(&process_state, memory_order_acquire) != 2) mhi_os_yield();
}

/* At load: read MHEAP_OPTIONS, so that stats=1 reports even for a program
 * that never allocates, and register the fork handlers while the process
 * is most likely still one thread (a program that only ever allocates
 * large blocks or page runs makes no thread cache, the other place that
 * calls this). */
__attribute__((constructor)) static void process_at_load(void) {
    mhi_cache_setup(); /* (the thread key among the process's first: cache.h) */
    mhi_process_init();
#if MHEAP_SECURE
    mhi_secure_init(); /* the fault handler, before the program's own */
#endif
}

__attribute__((destructor)) static void process_at_exit(void) {
#if MHEAP_SECURE
    mhi_secure_at_exit();
#endif
    if (atomic_load(&mhi_options_read) && mhi_options[MHI_OPT_stats]) mh_stats_print(mhi_stats_fd);
}
