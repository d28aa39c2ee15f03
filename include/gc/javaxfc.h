/* gc/javaxfc.h - bdwgc's javaxfc.h on mheap: GC_finalize_all runs every
 * registered finalizer, reachable objects' too (mh_gc_finalize_all).
 * bdwgc's thread suspension calls (GC_suspend_thread, ...) are not
 * declared: mheap does not suspend single threads. */
#ifndef GC_JAVAXFC_H
#define GC_JAVAXFC_H

#ifndef GC_H
#include "../gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

GC_API void GC_CALL GC_finalize_all(void);

#ifdef __cplusplus
}
#endif

#endif
