/* gcworld.c - the GC's threads: registration (at a thread's first mh_gc_
 * call), unregistration at exit, stopping and starting the world with a
 * signal, blocked regions, and fork (gc.h).
 *
 * Stopping: the collector, holding the world lock (so the thread list is
 * fixed), sets `stopping`, then signals every registered thread that is
 * not blocked.  The handler spills the registers onto the stack (the
 * interrupted context is saved there too), publishes its stack pointer,
 * counts itself in `acks` and waits on the futex word `epoch` until the
 * collector advances it.  A thread leaving a blocked region stores RUNNING
 * and then reads `stopping` (the collector stores `stopping`, then reads
 * the states: both sequentially consistent), so either the collector
 * signals it or it sees the stop and waits, blocked, until the world runs
 * again. */
#include <errno.h>
#include <setjmp.h>

#include "gc.h"

#include "options.h"
#include "print.h"

#define G (&mhi_gc_)

mhi_gc_thread mhi_gc_thread_none = {.cur = {[0 ... MHI_NUM_CLASSES - 1] = {
                                                [0 ... MHI_GC_NKINDS - 1] = &mhi_gc_span_empty}}};
__thread mhi_gc_thread *mhi_gc_self __attribute__((tls_model("initial-exec"))) = &mhi_gc_thread_none;

static _Atomic uint32_t epoch;    /* advanced when the world starts again */
static _Atomic uint32_t acks;     /* threads stopped in this stop */
static _Atomic uint32_t stopping; /* 1 from the stop to the start */
static _Atomic uint32_t stop_id;  /* advanced by each stop */
static mhi_fixalloc thread_alloc; /* world lock */
static _Atomic uint64_t thread_sys;
static unsigned thread_key;
static bool world_inited, key_ok;

static void stop_handler(int sig) {
    (void)sig;
    int saved = errno;
    mhi_gc_thread *t = mhi_gc_self;
    uint32_t id = atomic_load(&stop_id);
    /* (a signal sent again for a stop this thread already obeys waits
     * masked until it leaves, and then finds no stop or a newer one) */
    if (t->registered && atomic_load(&stopping) &&
        atomic_load_explicit(&t->acked, memory_order_relaxed) != id) {
        /* (the interrupted context, every register, is saved on this
         * stack above the handler's frame; the address of a local is
         * below everything this frame saved) */
        __builtin_unwind_init();
        uint32_t e = atomic_load_explicit(&epoch, memory_order_acquire);
        volatile uintptr_t here = 0;
        here = (uintptr_t)&here;
        atomic_store_explicit(&t->sp, here, memory_order_release);
        atomic_store_explicit(&t->acked, id, memory_order_relaxed);
        atomic_fetch_add_explicit(&acks, 1, memory_order_acq_rel);
        mhi_os_futex_wake(&acks);
        while (atomic_load_explicit(&epoch, memory_order_acquire) == e)
            mhi_os_futex_wait(&epoch, e, -1);
    }
    errno = saved;
}

static void thread_exit(void *arg) {
    (void)arg;
    mh_gc_unregister_thread();
}

/* Once, under the world lock. */
static void world_init_locked(void) {
    if (world_inited) return;
    world_inited = true;
    mhi_fixalloc_init(&thread_alloc, sizeof(mhi_gc_thread), &thread_sys);
    long sig = mhi_option(MHI_OPT_gc_signal);
    /* (atomic: mh_gc_stop_signal reads it without the lock) */
    __atomic_store_n(&G->stop_signal, sig > 0 ? (int)sig : mhi_os_stop_signal_default(),
                     __ATOMIC_RELEASE);
    if (!mhi_os_signal_install(G->stop_signal, stop_handler))
        mhi_fatal("cannot install the GC's stop signal %d", G->stop_signal);
    key_ok = mhi_os_key_new(&thread_key, thread_exit);
}

static void add_tls(void *ctx, uintptr_t lo, uintptr_t hi) {
    mhi_gc_thread *t = ctx;
    if (t->ntls < 8 && hi > lo) {
        t->tls[t->ntls][0] = lo;
        t->tls[t->ntls][1] = hi;
        t->ntls++;
    }
}

mhi_gc_thread *mhi_gc_thread_get(void) {
    mhi_gc_thread *t = mhi_gc_self;
    if (MHI_LIKELY(t->registered)) return t;
    mhi_gc_init();
    /* (starting the heap calls the program's procedures, bdwgc's warning
     * procedure among them, which may have registered this thread) */
    t = mhi_gc_self;
    if (t->registered) return t;
    /* Outside every lock: these may allocate or take the loader's lock. */
    mhi_gc_thread tmp = {0};
    if (!mhi_os_stack_bounds(&tmp.stack_lo, &tmp.stack_hi)) {
        tmp.stack_lo = (uintptr_t)__builtin_frame_address(0);
        tmp.stack_hi = tmp.stack_lo + 4096; /* unknown: this frame's neighbourhood */
    }
    mhi_os_each_data_range(true, add_tls, &tmp);
    mhi_lock(&G->world);
    world_init_locked();
    t = mhi_fixalloc_alloc(&thread_alloc);
    if (!t) {
        mhi_unlock(&G->world);
        mhi_fatal("out of memory for a GC thread record");
    }
    *t = tmp;
    for (size_t c = 0; c < MHI_NUM_CLASSES; c++)
        for (int k = 0; k < MHI_GC_NKINDS; k++) t->cur[c][k] = &mhi_gc_span_empty;
    t->id = mhi_os_thread_id();
    atomic_store_explicit(&t->state, MHI_GC_RUNNING, memory_order_relaxed);
    t->registered = true;
    t->prev = NULL;
    t->next = G->threads;
    if (G->threads) G->threads->prev = t;
    G->threads = t;
    G->nthreads++;
    mhi_gc_self = t;
    mhi_unlock(&G->world);
    mhi_os_signal_unblock(G->stop_signal);
    if (key_ok) mhi_os_key_set(thread_key, t);
    return t;
}

MH_API int mh_gc_register_thread(void) {
    (void)mhi_gc_thread_get();
    return 0;
}

MH_API void mh_gc_unregister_thread(void) {
    mhi_gc_thread *t = mhi_gc_self;
    if (!t->registered) return;
    mhi_lock(&G->world);
    mhi_gc_release_thread_spans(t);
    if (t->prev) t->prev->next = t->next;
    else G->threads = t->next;
    if (t->next) t->next->prev = t->prev;
    G->nthreads--;
    t->registered = false;
    mhi_gc_self = &mhi_gc_thread_none;
    mhi_fixalloc_free(&thread_alloc, t);
    mhi_unlock(&G->world);
}

/* The calling thread t, blocked, runs again: once no collection is
 * stopping the world. */
static void leave_blocked(mhi_gc_thread *t) {
    for (;;) {
        atomic_store(&t->state, MHI_GC_RUNNING);
        if (!atomic_load(&stopping)) break;
        /* A collection is stopping the world: wait it out, blocked. */
        atomic_store(&t->state, MHI_GC_BLOCKED);
        uint32_t e = atomic_load_explicit(&epoch, memory_order_acquire);
        while (atomic_load(&stopping) && atomic_load_explicit(&epoch, memory_order_acquire) == e)
            mhi_os_futex_wait(&epoch, e, 10);
    }
}

MH_API void *mh_gc_do_blocking(void *(*fn)(void *), void *arg) {
    mhi_gc_thread *t = mhi_gc_thread_get();
    jmp_buf regs; /* the callee-saved registers, on this frame */
    __builtin_unwind_init();
    (void)setjmp(regs);
    atomic_store_explicit(&t->sp, (uintptr_t)&regs, memory_order_release);
    atomic_store(&t->state, MHI_GC_BLOCKED);
    void *r = fn(arg);
    leave_blocked(t);
    return r;
}

void mhi_gc_stop_world(void) {
    mhi_lock_assert_held(&G->world);
    mhi_gc_thread *self = mhi_gc_self;
    uint32_t id = atomic_fetch_add(&stop_id, 1) + 1;
    atomic_store(&acks, 0);
    atomic_store(&stopping, 1);
    uint32_t n = 0;
    for (mhi_gc_thread *t = G->threads; t; t = t->next) {
        if (t == self || atomic_load(&t->state) == MHI_GC_BLOCKED) continue;
        if (mhi_os_thread_kill(t->id, G->stop_signal)) n++;
        else atomic_store_explicit(&t->sp, 0, memory_order_relaxed); /* gone: scan it whole */
    }
    /* Each thread counts itself once per stop (t->acked), so a signal
     * sent again is harmless: after 100 ms without every answer, the
     * threads that have not answered get theirs again (a signal can be
     * lost: ThreadSanitizer defers signals to a thread's next intercepted
     * call, and drops some that arrive in a futex wait). */
    uint32_t got;
    while ((got = atomic_load_explicit(&acks, memory_order_acquire)) < n) {
        int64_t t0 = mhi_os_nanotime();
        mhi_os_futex_wait(&acks, got, 100);
        if (atomic_load_explicit(&acks, memory_order_acquire) == got &&
            mhi_os_nanotime() - t0 >= 90 * 1000000LL)
            for (mhi_gc_thread *t = G->threads; t; t = t->next)
                if (t != self && atomic_load(&t->state) != MHI_GC_BLOCKED &&
                    atomic_load_explicit(&t->acked, memory_order_relaxed) != id)
                    (void)mhi_os_thread_kill(t->id, G->stop_signal);
    }
}

void mhi_gc_start_world(void) {
    atomic_store(&stopping, 0);
    atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
    mhi_os_futex_wake_all(&epoch);
}

/* ---- fork ---- */

void mhi_gc_fork_prepare_lock(void) { mhi_lock_for_fork(&G->lock); }
void mhi_gc_fork_parent_lock(void) { mhi_unlock_for_fork(&G->lock); }

void mhi_gc_fork_prepare(void) {
    mhi_lock_for_fork(&G->world);
    mhi_lock_for_fork(&G->roots);
}
void mhi_gc_fork_parent(void) {
    mhi_unlock_for_fork(&G->roots);
    mhi_unlock_for_fork(&G->world);
}
/* The child has only the forking thread: the others' records go, their
 * cached spans back to the lists. */
void mhi_gc_fork_child(void) {
    mhi_lock_reset(&G->world);
    mhi_lock_reset(&G->roots);
    mhi_lock_reset(&G->lock);
    mhi_gc_mark_fork_child();
    mhi_gc_final_fork_child();
    atomic_store(&stopping, 0);
    atomic_store(&acks, 0);
    mhi_gc_thread *self = mhi_gc_self, *next;
    for (mhi_gc_thread *t = G->threads; t; t = next) {
        next = t->next;
        if (t == self) continue;
        mhi_gc_release_thread_spans(t);
        if (t->prev) t->prev->next = t->next;
        else G->threads = t->next;
        if (t->next) t->next->prev = t->prev;
        G->nthreads--;
        if (world_inited) mhi_fixalloc_free(&thread_alloc, t);
    }
    if (self->registered) self->id = mhi_os_thread_id();
}

/* ---- an active region inside a blocked one ---- */

/* The stack pointer the blocked region saved stays as it was: when the
 * thread blocks again, its frames below the region are not scanned, as
 * before (a collection meanwhile scans them all: the thread runs). */
MH_API void *mh_gc_call_active(void *(*fn)(void *), void *arg) {
    mhi_gc_thread *t = mhi_gc_thread_get();
    if (atomic_load(&t->state) != MHI_GC_BLOCKED) return fn(arg);
    uintptr_t sp = atomic_load_explicit(&t->sp, memory_order_relaxed);
    leave_blocked(t);
    void *r = fn(arg);
    atomic_store_explicit(&t->sp, sp, memory_order_release);
    atomic_store(&t->state, MHI_GC_BLOCKED);
    return r;
}
