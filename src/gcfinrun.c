/* gcfinrun.c - running ready finalizers and cleanups: on mheap's
 * finalizer thread (started after the first cycle that queues one,
 * registered, so finalizers may allocate and resurrect), or on demand
 * (mh_gc_run_finalizers, the program told by the notifier), in batches
 * (gcfinal.h); and mh_gc_finalize_all.  The records and the pause's steps
 * that make them ready are gcfinal.c's. */
#include "gcfinal.h"

#include "options.h"

#define G (&mhi_gc_)

/* Take up to max (at most RUN_BATCH, at least 1) ready finalizers and
 * cleanups and run them; returns how many. */
/* Batches this thread is running (a finalizer may run finalizers). */
static _Thread_local unsigned batch_depth;
/* Threads inside mh_gc_finalize_all: the finalizer thread takes no work
 * meanwhile. */
static _Atomic int fa_callers;

static size_t run_some(size_t max) {
    run_batch b = {NULL, NULL, NULL};
    mhi_special **t = &b.recs;
    size_t n = 0;
    if (!max || max > RUN_BATCH) max = RUN_BATCH;
    mhi_lock(&G->lock);
    while (n < max && mhi_gcf_queue_head) {
        mhi_special *q = mhi_gcf_queue_head;
        mhi_gcf_queue_head = q->next;
        if (!mhi_gcf_queue_head) mhi_gcf_queue_tail = &mhi_gcf_queue_head;
        atomic_fetch_sub_explicit(&mhi_gcf_queue_len, 1, memory_order_relaxed);
        q->next = NULL;
        *t = q;
        t = &q->next;
        n++;
    }
    if (n) {
        b.next = mhi_gcf_running;
        b.pprev = &mhi_gcf_running;
        if (mhi_gcf_running) mhi_gcf_running->pprev = &b.next;
        mhi_gcf_running = &b;
    }
    mhi_unlock(&G->lock);
    if (!n) return 0;
    batch_depth++;
    for (mhi_special *q = b.recs; q; q = q->next) {
        if (q->obj) ((mh_gc_finalizer_fn)q->fn)(q->obj, q->data);
        else ((void (*)(void *))(void (*)(void))q->fn)(q->data); /* a cleanup */
    }
    batch_depth--;
    mhi_lock(&G->lock);
    *b.pprev = b.next;
    if (b.next) b.next->pprev = b.pprev;
    for (mhi_special *q = b.recs, *next; q; q = next) {
        next = q->next;
        mhi_gcf_rec_free(q);
    }
    mhi_unlock(&G->lock);
    return n;
}

MH_API size_t mh_gc_run_finalizers_max(size_t max) {
    (void)mhi_gc_thread_get();
    size_t n = 0, k;
    while ((!max || n < max) && (k = run_some(max ? max - n : RUN_BATCH)) != 0) n += k;
    return n;
}

MH_API size_t mh_gc_run_finalizers(void) { return mh_gc_run_finalizers_max(0); }

/* Every registered finalizer made ready by a collection in which
 * mhi_gcf_all is set, and run here, round after round while finalizers
 * register new ones (as bdwgc's GC_finalize_all does); then the batches
 * other threads took before are waited for, for at most about a second (a
 * finalizer that waits for this thread must not hang it).  The finalizer
 * thread takes no work meanwhile. */
static bool finalizers_left(bool *others) {
    mhi_lock(&G->lock);
    bool left = mhi_gcf_finalizers_registered_locked() || mhi_gcf_queue_head || mhi_gcf_await_head;
    size_t r = 0;
    for (run_batch *b = mhi_gcf_running; b; b = b->next) r++;
    *others = r > batch_depth; /* (this thread's own, when called from a finalizer) */
    mhi_unlock(&G->lock);
    return left;
}

MH_API size_t mh_gc_finalize_all(void) {
    (void)mhi_gc_thread_get();
    atomic_fetch_add(&fa_callers, 1);
    size_t n = 0;
    bool others;
    while (finalizers_left(&others)) {
        uint64_t cycles = mh_gc_cycles();
        atomic_fetch_add(&mhi_gcf_all, 1);
        mh_gc_collect(0);
        atomic_fetch_sub(&mhi_gcf_all, 1);
        size_t k = mh_gc_run_finalizers();
        n += k;
        if (!k && mh_gc_cycles() == cycles && !mh_gc_finalizers_pending()) break; /* (GC_dont_gc) */
    }
    static _Atomic uint32_t tick;
    for (int i = 0; i < 1000 && (finalizers_left(&others), others); i++)
        mhi_os_futex_wait(&tick, 0, 1); /* (1 ms) */
    atomic_fetch_sub(&fa_callers, 1);
    mhi_gc_finalizers_queued(); /* (anything left: the finalizer thread again) */
    return n;
}

MH_API size_t mh_gc_finalizers_pending(void) {
    return (size_t)atomic_load_explicit(&mhi_gcf_queue_len, memory_order_relaxed);
}

MH_API void mh_gc_set_finalize_on_demand(int on) { SWITCH_SET(GC_finalize_on_demand, on != 0); }
MH_API void mh_gc_set_finalizer_notifier(void (*fn)(void)) { SWITCH_SET(GC_finalizer_notifier, fn); }

static _Atomic uint32_t fin_wake; /* futex word: advanced when work is queued */
static _Atomic int fin_started;

static void *wait_wake(void *arg) {
    mhi_os_futex_wait(&fin_wake, (uint32_t)(uintptr_t)arg, -1);
    return NULL;
}

static void *finalizer_main(void *arg) {
    (void)arg;
    mh_gc_register_thread();
    for (;;) {
        uint32_t w = atomic_load_explicit(&fin_wake, memory_order_acquire);
        /* (finalization on demand, switched on meanwhile, stops it) */
        while (!SWITCH_GET(GC_finalize_on_demand) && !atomic_load(&fa_callers) &&
               run_some(RUN_BATCH)) {
        }
        /* (blocked while it sleeps: it holds no heap pointer) */
        if (atomic_load_explicit(&fin_wake, memory_order_acquire) == w)
            (void)mh_gc_do_blocking(wait_wake, (void *)(uintptr_t)w);
    }
    return NULL;
}

/* After every cycle (no lock held, the world running): with finalizers
 * ready, the notifier is told (on demand) or the finalizer thread woken. */
void mhi_gc_finalizers_queued(void) {
    if (!atomic_load_explicit(&mhi_gcf_queue_len, memory_order_relaxed)) return;
    if (SWITCH_GET(GC_finalize_on_demand)) {
        void (*n)(void) = SWITCH_GET(GC_finalizer_notifier);
        if (n) n();
        return;
    }
    int expect = 0;
    if (!atomic_load(&fin_started) && atomic_compare_exchange_strong(&fin_started, &expect, 1))
        if (!mhi_os_thread_start(finalizer_main, NULL)) atomic_store(&fin_started, 0);
    atomic_fetch_add_explicit(&fin_wake, 1, memory_order_release);
    mhi_os_futex_wake_all(&fin_wake);
}

void mhi_gc_final_fork_child(void) {
    atomic_store(&fin_started, 0);
    mhi_gcf_running = NULL; /* (other threads' batches: their threads are gone) */
}
