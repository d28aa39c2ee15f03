/* gc/gc_mark.h - of bdwgc 8.2's gc_mark.h, what mheap's collector offers
 * so far: the start callback and the bounds of the heap.
 *
 * Not declared yet (kinds and mark procedures are being built in the
 * core): the mark descriptors (GC_DS_*, GC_MAKE_PROC), GC_mark_and_push
 * and GC_MARK_AND_PUSH, GC_new_free_list, GC_new_kind, GC_new_proc,
 * GC_generic_malloc and its variants, GC_get_kind_and_size,
 * GC_register_describe_type_fn, the mark-bit calls (GC_is_marked, ...),
 * the push calls, GC_set_push_other_roots,
 * GC_enumerate_reachable_objects_inner, GC_get_debug_header_size.
 * Not declared (not supported): GC_clear_stack, GC_is_tmp_root,
 * GC_print_trace. */
#ifndef GC_MARK_H
#define GC_MARK_H

#include "../gc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every heap object lies at or above the first address and below the
 * second: the base of the page heap's lowest arena and the end of its
 * highest (they widen as the heap reserves more address space; before
 * the first arena, the first is all ones and the second 0). */
GC_API void *GC_least_plausible_heap_addr;
GC_API void *GC_greatest_plausible_heap_addr;

/* Called at the start of every collection by the collecting thread,
 * before the world stops, with collections held off: it must not
 * allocate from the GC heap, collect, or wait for a thread that does.
 * NULL: none. */
typedef void(GC_CALLBACK *GC_start_callback_proc)(void);
GC_API void GC_CALL GC_set_start_callback(GC_start_callback_proc);
GC_API GC_start_callback_proc GC_CALL GC_get_start_callback(void);

#ifdef __cplusplus
}
#endif

#endif
