/* background.c - the background thread and its task list (background.h). */
#include "background.h"

#include <stdbool.h>
#include <stddef.h>

#include "layout.h"
#include "options.h"
#include "os.h"

_Atomic int mhi_bg_started;
_Atomic int mhi_bg_deferred;
/* 1 once the thread was asked for and could not run (pages too large, or
 * no thread could be made). */
static _Atomic int bg_cannot_run;

static struct {
    _Atomic(mhi_bg_task) fn;
    _Atomic bool want;            /* asked for since its last run */
    _Atomic bool from_heap_calls; /* may run from mhi_bg_poll */
} tasks[MHI_BG_MAX_TASKS];
static _Atomic int ntasks;
static mhi_lock_t tasks_lock = MHI_LOCK_INIT(MHI_RANK_NONE); /* registration only */
static _Atomic int64_t period_ms = 125;
/* 1 while the thread sleeps with nothing to do; a request sets it to 0
 * and wakes the thread. */
static _Atomic uint32_t bg_idle;

int mhi_bg_add(mhi_bg_task fn, bool from_heap_calls) {
    mhi_lock(&tasks_lock);
    int n = atomic_load_explicit(&ntasks, memory_order_relaxed), i;
    for (i = 0; i < n; i++)
        if (atomic_load_explicit(&tasks[i].fn, memory_order_relaxed) == fn) break;
    if (i == n) {
        if (n == MHI_BG_MAX_TASKS) {
            i = -1;
        } else {
            atomic_store_explicit(&tasks[n].fn, fn, memory_order_relaxed);
            atomic_store_explicit(&tasks[n].from_heap_calls, from_heap_calls, memory_order_relaxed);
            atomic_store_explicit(&ntasks, n + 1, memory_order_release);
        }
    }
    mhi_unlock(&tasks_lock);
    if (i == n) mhi_bg_request(i); /* a new task runs once, as at start */
    return i;
}

void mhi_bg_set_period(int64_t ms) {
    atomic_store_explicit(&period_ms, ms > 10 ? ms : 10, memory_order_relaxed);
}

/* No lock: want and bg_idle are written and read in opposite orders here
 * and in bg_main (sequentially consistent), so one side sees the other
 * and no request is slept through. */
void mhi_bg_request(int i) {
    if (i < 0 || atomic_load_explicit(&tasks[i].want, memory_order_relaxed)) return;
    atomic_store(&tasks[i].want, true);
    if (atomic_load(&bg_idle) && atomic_exchange(&bg_idle, 0)) mhi_os_futex_wake(&bg_idle);
}

/* Every slot, not only the tasks this pass ran: one registered meanwhile
 * and asked for must not be slept through. */
static bool any_wanted(void) {
    for (int i = 0; i < MHI_BG_MAX_TASKS; i++)
        if (atomic_load(&tasks[i].want)) return true;
    return false;
}

/* 1 while a pass runs tasks, the thread's or a heap call's: no task runs
 * twice at once (a heap call's pass may still be running when the thread
 * starts). */
static _Atomic int pass_busy;

/* Run the tasks that were asked for or are not idle, with their last
 * answers in last[]; from a heap call only those registered for it (the
 * others keep their requests for the thread).  Returns whether any is
 * not idle, and in *soon whether one wants to run again in 1 ms. */
static bool run_pass(int *last, bool heap_call, bool *soon) {
    int n = atomic_load_explicit(&ntasks, memory_order_acquire);
    bool pending = false;
    *soon = false;
    for (int i = 0; i < n; i++) {
        if (heap_call && !atomic_load_explicit(&tasks[i].from_heap_calls, memory_order_relaxed))
            continue;
        bool want = atomic_exchange(&tasks[i].want, false);
        if (want || last[i] != MHI_BG_IDLE)
            last[i] = atomic_load_explicit(&tasks[i].fn, memory_order_relaxed)();
        pending |= last[i] != MHI_BG_IDLE;
        *soon |= last[i] == MHI_BG_SOON;
    }
    return pending;
}

static void *bg_main(void *arg) {
    (void)arg;
    int last[MHI_BG_MAX_TASKS]; /* each task's last answer */
    for (int i = 0; i < MHI_BG_MAX_TASKS; i++) last[i] = MHI_BG_LATER; /* all run at start */
    for (;;) {
        while (atomic_exchange_explicit(&pass_busy, 1, memory_order_acquire)) mhi_os_yield();
        bool soon, pending = run_pass(last, false, &soon);
        atomic_store_explicit(&pass_busy, 0, memory_order_release);
        if (!pending) {
            atomic_store(&bg_idle, 1);
            if (any_wanted()) { /* a request raced with the decision */
                atomic_store(&bg_idle, 0);
                pending = soon = true;
            }
        }
        if (!pending) mhi_os_futex_wait(&bg_idle, 1, -1);
        else
            mhi_os_futex_wait(&bg_idle, 0,
                              soon ? 1 : atomic_load_explicit(&period_ms, memory_order_relaxed));
    }
    return NULL;
}

void mhi_bg_start(void) {
    if (atomic_load_explicit(&mhi_bg_started, memory_order_relaxed)) return;
    long mode = mhi_option(MHI_OPT_background);
    if (mode == 0) return;
    /* (pages too large: nothing it could release) */
    bool can = mhi_os_page_size() <= MHI_PAGE_SIZE;
    if (can && mode == 1 && mhi_os_single_threaded()) {
        if (!atomic_load_explicit(&mhi_bg_deferred, memory_order_relaxed))
            atomic_store_explicit(&mhi_bg_deferred, 1, memory_order_relaxed);
        return;
    }
    int expect = 0;
    if (!atomic_compare_exchange_strong(&mhi_bg_started, &expect, 1)) return;
    atomic_store_explicit(&mhi_bg_deferred, 0, memory_order_relaxed);
    /* (on failure heap calls still scavenge) */
    if (!can || !mhi_os_thread_start(bg_main, NULL))
        atomic_store_explicit(&bg_cannot_run, 1, memory_order_relaxed);
}

/* ---- the tasks run from heap calls while the start is deferred ---- */

/* Each task's last answer in passes from heap calls (under pass_busy). */
static int poll_last[MHI_BG_MAX_TASKS] = {
    [0 ... MHI_BG_MAX_TASKS - 1] = MHI_BG_LATER}; /* all run at the first */
static bool poll_pending = true;    /* (under pass_busy) a task is not idle */
static _Atomic int64_t poll_next_ms; /* no pass before */

static bool any_wanted_from_heap_calls(void) {
    for (int i = 0; i < MHI_BG_MAX_TASKS; i++)
        if (atomic_load_explicit(&tasks[i].want, memory_order_relaxed) &&
            atomic_load_explicit(&tasks[i].from_heap_calls, memory_order_relaxed))
            return true;
    return false;
}

void mhi_bg_poll_slow(void) {
    if (mhi_option(MHI_OPT_background) == 0) { /* set to 0 since: nothing runs */
        atomic_store_explicit(&mhi_bg_deferred, 0, memory_order_relaxed);
        return;
    }
    if (!mhi_os_single_threaded()) { /* the process has a thread of its own now */
        mhi_bg_start();
        return;
    }
    int64_t now = mhi_os_millitime();
    if (now < atomic_load_explicit(&poll_next_ms, memory_order_relaxed) ||
        atomic_exchange_explicit(&pass_busy, 1, memory_order_acquire)) /* (a task's own heap call) */
        return;
    int64_t next = now + atomic_load_explicit(&period_ms, memory_order_relaxed);
    if (poll_pending || any_wanted_from_heap_calls()) {
        bool soon;
        poll_pending = run_pass(poll_last, true, &soon);
        if (soon) next = now + 1;
    }
    atomic_store_explicit(&poll_next_ms, next, memory_order_relaxed);
    atomic_store_explicit(&pass_busy, 0, memory_order_release);
}

bool mhi_bg_cannot_run(void) { return atomic_load_explicit(&bg_cannot_run, memory_order_relaxed); }

void mhi_bg_fork_child(void) {
    mhi_lock_reset(&tasks_lock);
    atomic_store_explicit(&mhi_bg_started, 0, memory_order_relaxed);
    atomic_store_explicit(&mhi_bg_deferred, 0, memory_order_relaxed);
    atomic_store_explicit(&bg_cannot_run, 0, memory_order_relaxed);
    atomic_store_explicit(&pass_busy, 0, memory_order_relaxed); /* (the thread may have been in one) */
    for (int i = 0; i < MHI_BG_MAX_TASKS; i++) poll_last[i] = MHI_BG_LATER;
    poll_pending = true;
    atomic_store_explicit(&poll_next_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&bg_idle, 0, memory_order_relaxed);
    for (int i = 0; i < MHI_BG_MAX_TASKS; i++)
        atomic_store_explicit(&tasks[i].want, false, memory_order_relaxed);
}
