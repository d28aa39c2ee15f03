/* gc/gc_mark.h - bdwgc 8.2's gc_mark.h on mheap's collector: object
 * kinds, mark descriptors and mark procedures, the mark-bit calls, the
 * start callback and the bounds of the heap.  With bdwgc's names,
 * values, signatures and macros, so that a program (or a library built
 * against Debian's libgc1) works on mheap unchanged.  Where mheap
 * differs:
 *
 *   - struct GC_ms_entry has bdwgc's real layout (mse_start, then
 *     mse_descr), so a mark procedure may push entries itself; bdwgc's
 *     public header leaves it opaque.  Define GC_BUILD or NOT_GCBUILD to
 *     have it only declared (and declare it yourself).
 *   - A mark procedure is called only for allocated objects (never for
 *     one on a free list), by whichever marker thread pops its entry, in
 *     the pause: the world is stopped and the GC lock held, so it must
 *     not allocate, take locks, or wait for another thread.  Objects of a
 *     kind marked by a procedure or a per-object descriptor are always
 *     zeroed when allocated, so the procedure never sees an older
 *     object's contents.
 *   - GC_mark_and_push(obj, ...) marks the object obj points into
 *     (interior pointers count, as they do everywhere in mheap) and
 *     queues it on the calling marker's own stack: it returns the stack
 *     pointer it was given.  It aborts ("mheap: GC_mark_and_push called
 *     outside a mark procedure: <obj>") unless a marker calls it.
 *   - When a procedure's stack is full (mark_stack_ptr at or past
 *     mark_stack_limit) it may call GC_signal_mark_stack_overflow (an
 *     mheap extension: bdwgc keeps it internal), which moves its entries
 *     to the marker and returns the slot to write the next one into.  A
 *     procedure that returns a pointer outside its stack aborts the
 *     program.  Nothing is lost when memory for marking runs out: the
 *     mark ends with a rescan of the marked objects, procedures
 *     included.
 *   - GC_new_free_list's array is not used by the collector (mheap keeps
 *     no free lists): it is zeroed memory, as bdwgc gives.  At most 21
 *     kinds can be made and 63 procedures registered (gc_typed.h's
 *     objects, once used, take one kind and two procedures); past that,
 *     GC_new_kind and GC_new_proc abort.
 *   - GC_generic_malloc_uncollectable gives an uncollectable object,
 *     scanned conservatively, whatever the kind.
 *   - GC_push_all, GC_push_all_eager and GC_push_conditional push a range
 *     to scan conservatively; they are for mark procedures and the
 *     GC_set_push_other_roots function (which runs in the pause, on the
 *     collecting thread, after the other roots).
 *   - GC_register_describe_type_fn is accepted (there is no debug
 *     printing of objects); GC_get_debug_header_size() is 0.
 *   - GC_generic_malloc_many, GC_malloc_kind and GC_I_PTRFREE /
 *     GC_I_NORMAL (bdwgc's gc_inline.h, which includes this header) are
 *     declared here.
 *
 *   - GC_enumerate_reachable_objects_inner (the caller holding
 *     GC_alloc_lock, as in bdwgc; without GC_THREADS, where
 *     GC_alloc_lock is empty, it takes the lock itself) calls the
 *     procedure for each object the
 *     last collection left live, and each allocated since, uncollectable
 *     ones included; objects other threads allocate meanwhile may or may
 *     not be seen.  The procedure must not allocate or free.
 *
 * Not declared (not supported): GC_clear_stack, GC_is_tmp_root,
 * GC_print_trace, GC_push_finalizer_structures, GC_debug_header_size
 * (deprecated). */
#ifndef GC_MARK_H
#define GC_MARK_H

#include "../gc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* About how many bytes a mark procedure should scan per call. */
#define GC_PROC_BYTES 100

#if defined(GC_BUILD) || defined(NOT_GCBUILD)
struct GC_ms_entry;
#else
/* A mark stack entry: where to start, and how to mark from there. */
struct GC_ms_entry {
    void *mse_start;
    union {
        GC_word w;
        GC_signed_word sw;
        void *vp;
    } mse_descr;
};
#endif

/* Called with an object's start, the top entry of the mark stack (there
 * is room for at least one more), the stack's end and the env of the
 * object's descriptor; returns the new top entry. */
typedef struct GC_ms_entry *(*GC_mark_proc)(GC_word * /* addr */,
                                            struct GC_ms_entry * /* mark_stack_ptr */,
                                            struct GC_ms_entry * /* mark_stack_limit */,
                                            GC_word /* env */);

#define GC_LOG_MAX_MARK_PROCS 6
#define GC_MAX_MARK_PROCS (1 << GC_LOG_MAX_MARK_PROCS)
#define GC_RESERVED_MARK_PROCS 8
#define GC_GCJ_RESERVED_MARK_PROC_INDEX 0

/* Descriptors: a word whose low GC_DS_TAG_BITS bits say what the rest is. */
#define GC_DS_TAG_BITS 2
#define GC_DS_TAGS ((1 << GC_DS_TAG_BITS) - 1)
/* The whole word is a length in bytes (a multiple of 4) to scan. */
#define GC_DS_LENGTH 0
/* The 62 high bits are a bitmap of the words that may be pointers, the
 * most significant bit for the first word. */
#define GC_DS_BITMAP 1
/* Call procedure PROC(descr) with ENV(descr). */
#define GC_DS_PROC 2
#define GC_MAKE_PROC(proc_index, env)                                                       \
    (((((env) << GC_LOG_MAX_MARK_PROCS) | (proc_index)) << GC_DS_TAG_BITS) | GC_DS_PROC)
/* The real descriptor is in the object, descr & ~GC_DS_TAGS bytes from
 * its start; or, when descr is negative, in the record the object's
 * first word points to, at -(descr & ~GC_DS_TAGS) - GC_INDIR_PER_OBJ_BIAS
 * bytes from it.  It should be in the first or last two words of the
 * object. */
#define GC_DS_PER_OBJECT 3
#define GC_INDIR_PER_OBJ_BIAS 0x10

/* Every heap object lies at or above the first address and below the
 * second: the base of the page heap's lowest arena and the end of its
 * highest (they widen as the heap reserves more address space; before
 * the first arena, the first is all ones and the second 0). */
GC_API void *GC_least_plausible_heap_addr;
GC_API void *GC_greatest_plausible_heap_addr;

/* From a mark procedure: mark the object obj points into and queue it
 * for marking (see above); returns mark_stack_ptr.  src is not used. */
GC_API struct GC_ms_entry *GC_CALL GC_mark_and_push(void * /* obj */,
                                                    struct GC_ms_entry * /* mark_stack_ptr */,
                                                    struct GC_ms_entry * /* mark_stack_limit */,
                                                    void ** /* src */);
#define GC_MARK_AND_PUSH(obj, msp, lim, src)                                                \
    ((GC_word)(obj) >= (GC_word)GC_least_plausible_heap_addr &&                             \
             (GC_word)(obj) <= (GC_word)GC_greatest_plausible_heap_addr                     \
         ? GC_mark_and_push(obj, msp, lim, src)                                             \
         : (msp))

/* mheap's: from a mark procedure whose stack is full, with the slot it
 * was about to write (mark_stack_ptr incremented, at or past the limit):
 * its entries go to the marker; returns the slot to write instead. */
GC_API struct GC_ms_entry *GC_CALL GC_signal_mark_stack_overflow(struct GC_ms_entry *);

/* 0: the debug forms add no header. */
GC_API GC_ATTR_CONST size_t GC_CALL GC_get_debug_header_size(void);
#define GC_USR_PTR_FROM_BASE(p) ((void *)((char *)(p) + GC_get_debug_header_size()))

/* A zeroed array for GC_new_kind (not used by the collector). */
GC_API void **GC_CALL GC_new_free_list(void);
GC_API void **GC_CALL GC_new_free_list_inner(void);
/* A new kind: its objects are marked by the descriptor, plus the
 * object's size in bytes when add_size_to_descriptor is 1 (so a
 * GC_DS_LENGTH of 0 with 1 scans the whole object, and one of 0 with 0
 * marks nothing); clear_new_objects 1: objects are zeroed.  The last two
 * must be 0 or 1.  The _inner forms may be called with the allocation
 * lock held (so may the others). */
GC_API unsigned GC_CALL GC_new_kind(void ** /* free_list */, GC_word /* mark_descriptor_template */,
                                    int /* add_size_to_descriptor */, int /* clear_new_objects */)
    GC_ATTR_NONNULL(1);
GC_API unsigned GC_CALL GC_new_kind_inner(void ** /* free_list */,
                                          GC_word /* mark_descriptor_template */,
                                          int /* add_size_to_descriptor */,
                                          int /* clear_new_objects */) GC_ATTR_NONNULL(1);
/* A mark procedure's index, for GC_MAKE_PROC. */
GC_API unsigned GC_CALL GC_new_proc(GC_mark_proc);
GC_API unsigned GC_CALL GC_new_proc_inner(GC_mark_proc);

/* An object of lb bytes of kind knd (GC_I_PTRFREE, GC_I_NORMAL, or one
 * GC_new_kind made); the other forms as the plain one (no blacklisting;
 * GC_generic_malloc_uncollectable: see above). */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_generic_malloc(size_t /* lb */,
                                                                           int /* knd */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_generic_malloc_ignore_off_page(size_t /* lb */, int /* knd */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_generic_malloc_uncollectable(size_t /* lb */, int /* knd */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_generic_or_special_malloc(size_t /* size */, int /* knd */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_debug_generic_or_special_malloc(size_t /* size */, int /* knd */, GC_EXTRA_PARAMS);
#ifdef GC_DEBUG
#define GC_GENERIC_OR_SPECIAL_MALLOC(sz, knd) GC_debug_generic_or_special_malloc(sz, knd, GC_EXTRAS)
#else
#define GC_GENERIC_OR_SPECIAL_MALLOC(sz, knd) GC_generic_or_special_malloc(sz, knd)
#endif

/* The kinds of GC_malloc_atomic and GC_malloc (bdwgc's gc_inline.h). */
#define GC_I_PTRFREE 0
#define GC_I_NORMAL 1
/* *result: a list of objects of lb bytes and kind k, linked through their
 * first word (NULL if none could be had).  The caller keeps the list
 * reachable, pointer-free objects included. */
GC_API void GC_CALL GC_generic_malloc_many(size_t /* lb */, int /* k */, void ** /* result */);
/* Add n to the bytes allocated (they count towards the next collection,
 * as objects handed out do), or to the bytes freed explicitly: for a
 * program handing out objects from its own lists (bdwgc 8.3 declares
 * these here; 8.2's libgc.so.1 exports them). */
GC_API void GC_CALL GC_incr_bytes_allocd(size_t /* n */);
GC_API void GC_CALL GC_incr_bytes_freed(size_t /* n */);
/* GC_generic_malloc. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_kind(size_t /* lb */,
                                                                        int /* k */);
#ifdef GC_THREADS
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_kind_global(size_t /* lb */,
                                                                               int /* k */);
#else
#define GC_malloc_kind_global GC_malloc_kind
#endif

/* The kind (as GC_generic_malloc takes it) of the object starting at p,
 * and in *psize (when not NULL) its size. */
GC_API int GC_CALL GC_get_kind_and_size(const void *, size_t * /* psize */) GC_ATTR_NONNULL(1);

typedef void(GC_CALLBACK *GC_describe_type_fn)(void * /* p */, char * /* out_buf */);
#define GC_TYPE_DESCR_LEN 40
/* Accepted without effect. */
GC_API void GC_CALL GC_register_describe_type_fn(int /* kind */, GC_describe_type_fn);

/* Called at the start of every collection by the collecting thread,
 * before the world stops, with collections held off: it must not
 * allocate from the GC heap, collect, or wait for a thread that does.
 * NULL: none. */
typedef void(GC_CALLBACK *GC_start_callback_proc)(void);
GC_API void GC_CALL GC_set_start_callback(GC_start_callback_proc);
GC_API GC_start_callback_proc GC_CALL GC_get_start_callback(void);

/* The mark bit of the object starting at p: from a mark procedure, the
 * running mark's (setting it marks the object without marking what it
 * points to, as in bdwgc); otherwise the last mark's, which says whether
 * the object survives until its span is swept: once it is, its bits are
 * 0 until the next mark, and setting or clearing them does nothing. */
GC_API int GC_CALL GC_is_marked(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_clear_mark_bit(const void *) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_set_mark_bit(const void *) GC_ATTR_NONNULL(1);

/* From a mark procedure or the other-roots function: scan [bottom, top)
 * conservatively (see above). */
GC_API void GC_CALL GC_push_all(void * /* bottom */, void * /* top */);
GC_API void GC_CALL GC_push_all_eager(void * /* bottom */, void * /* top */);
GC_API void GC_CALL GC_push_conditional(void * /* bottom */, void * /* top */, int /* bool all */);

/* Called in every mark, after the other roots, to push more. */
typedef void(GC_CALLBACK *GC_push_other_roots_proc)(void);
GC_API void GC_CALL GC_set_push_other_roots(GC_push_other_roots_proc);
GC_API GC_push_other_roots_proc GC_CALL GC_get_push_other_roots(void);

/* bdwgc's GC_enumerate_reachable_objects_inner (see above) */
typedef void(GC_CALLBACK *GC_reachable_object_proc)(void * /* obj */, size_t /* bytes */,
                                                   void * /* client_data */);
GC_API void GC_CALL GC_enumerate_reachable_objects_inner(GC_reachable_object_proc,
                                                         void * /* client_data */) GC_ATTR_NONNULL(1);

#ifdef __cplusplus
}
#endif

#endif
