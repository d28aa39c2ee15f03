/* background.h - mheap's background thread and the tasks it runs.
 *
 * One thread, started on demand (mhi_bg_start), runs a short list of
 * tasks: the page heap's scavenger, the malloc layer's trim pass, and
 * whatever else a layer registers.  A task is a function that does one
 * bounded step of its work and says when it wants to run again:
 *
 *   MHI_BG_IDLE   nothing left: run again only when asked (mhi_bg_request);
 *   MHI_BG_LATER  work that is not due yet: run again after the period;
 *   MHI_BG_SOON   more work now (a budget ran out): run again in 1 ms.
 *
 * While every task is idle and nothing was asked for, the thread sleeps on
 * a futex word until a request wakes it.  The thread holds no allocator
 * lock of its own; each task takes the locks it needs.  It knows nothing
 * of the layers: they register their tasks (mhi_bg_add).
 *
 * A process that has only ever had one thread gets no thread of mheap's
 * (with the default background=1): a second thread would change what the
 * process is (glibc's and libstdc++'s single-threaded shortcuts in stdio
 * and shared_ptr end, unshare(CLONE_NEWUSER) fails, fork from a signal
 * handler is no longer safe).  mhi_bg_start then only defers, and the
 * tasks registered as safe to run from a heap call run from the heap
 * calls' slow paths instead (mhi_bg_poll), at most once per period; the
 * thread starts at the first such poll or mhi_bg_start after the process
 * has made a thread of its own.  background=2 starts it in any process. */
#ifndef MHEAP_BACKGROUND_H
#define MHEAP_BACKGROUND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { MHI_BG_IDLE = 0, MHI_BG_LATER = 1, MHI_BG_SOON = 2 };
#define MHI_BG_MAX_TASKS 8

typedef int (*mhi_bg_task)(void);

/* Register fn as a task (once per function: a second call returns the
 * same index).  Returns its index, or -1 when the table is full.  Safe
 * from any thread, before or after the thread starts.  from_heap_calls:
 * fn may also run from a heap call's slow path (mhi_bg_poll), where the
 * calling thread may hold any lock that a caller of malloc or free may
 * hold (none of mheap's allocator locks): fn takes only locks that malloc
 * and free take. */
int mhi_bg_add(mhi_bg_task fn, bool from_heap_calls);
/* Ask for task i to run soon, and wake the thread if it sleeps.
 * Lock-free; may be called with allocator locks held.  Does nothing for
 * i < 0.  (Before the thread starts nothing runs; every task runs once
 * when it does.) */
void mhi_bg_request(int i);
/* Start the thread if it is not running and the background option allows
 * it in this process (with no allocator lock held: creating a thread may
 * allocate); in a single-threaded process, defer it (above).  Every task
 * runs once at start. */
void mhi_bg_start(void);
/* 1 once the thread was started, or could not be, in this process (reset
 * in a child of fork). */
extern _Atomic int mhi_bg_started;
/* 1 while a start is deferred: the process was single-threaded when the
 * thread was first wanted. */
extern _Atomic int mhi_bg_deferred;
__attribute__((noinline)) void mhi_bg_poll_slow(void);
/* A heap call's slow path, with no allocator lock held: while the start
 * is deferred, start the thread if the process has made one of its own
 * since, else run the due tasks that allow it here. */
static inline void mhi_bg_poll(void) {
    if (__builtin_expect(atomic_load_explicit(&mhi_bg_deferred, memory_order_relaxed), 0))
        mhi_bg_poll_slow();
}
/* True once mhi_bg_start found the thread cannot run (OS pages larger
 * than the heap's, or no thread could be made); reset in a child of fork. */
bool mhi_bg_cannot_run(void);
/* The period of MHI_BG_LATER, in milliseconds (at least 10). */
void mhi_bg_set_period(int64_t ms);

/* In the child of fork: the thread did not come along. */
void mhi_bg_fork_child(void);

#endif
