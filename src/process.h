/* process.h - what the whole process sets up once, and fork(), for every
 * layer in one place.
 *
 * fork() in a threaded program: the child has only the forking thread, so
 * a lock another thread held at the fork would stay held for ever.  The
 * prepare handler therefore takes every allocator lock, outermost first in
 * the order of os.h (the cache list, every central list, the page heap),
 * so that no structure is mid-update at the fork; the parent releases them
 * and the child resets them, then each layer repairs what the threads that
 * did not come along left behind.  A layer with locks of its own adds its
 * handlers to the table in process.c, at its place in the order. */
#ifndef MHEAP_PROCESS_H
#define MHEAP_PROCESS_H

/* Once per process (at load, and again, harmlessly, at each thread's
 * first cache), with no allocator lock held: read MHEAP_OPTIONS and
 * register the fork handlers.  Registering may allocate; the calling
 * thread's own allocations meanwhile go on, and other threads wait until
 * the handlers are in place. */
void mhi_process_init(void);

#endif
