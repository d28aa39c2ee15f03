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
 * of the layers: they register their tasks (mhi_bg_add). */
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
 * from any thread, before or after the thread starts. */
int mhi_bg_add(mhi_bg_task fn);
/* Ask for task i to run soon, and wake the thread if it sleeps.
 * Lock-free; may be called with allocator locks held.  Does nothing for
 * i < 0.  (Before the thread starts nothing runs; every task runs once
 * when it does.) */
void mhi_bg_request(int i);
/* Start the thread if it is not running (with no allocator lock held:
 * creating a thread may allocate).  Every task runs once at start. */
void mhi_bg_start(void);
/* 1 once mhi_bg_start ran in this process (reset in a child of fork). */
extern _Atomic int mhi_bg_started;
/* True once mhi_bg_start found the thread cannot run (OS pages larger
 * than the heap's, or no thread could be made); reset in a child of fork. */
bool mhi_bg_cannot_run(void);
/* The period of MHI_BG_LATER, in milliseconds (at least 10). */
void mhi_bg_set_period(int64_t ms);

/* In the child of fork: the thread did not come along. */
void mhi_bg_fork_child(void);

#endif
