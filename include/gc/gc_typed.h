/* gc/gc_typed.h - bdwgc 8.2's gc_typed.h on mheap's collector: objects
 * scanned only at the words their type descriptor names as pointers.
 * The names, values, signatures and macros are bdwgc's.  Where mheap
 * differs:
 *
 *   - A descriptor is one word, as in bdwgc (GC_make_descriptor keeps the
 *     bitmaps of layouts longer than 62 words; call it once per type).
 *     When it cannot have memory for one, it returns a descriptor that
 *     scans the whole length conservatively.
 *   - An object whose descriptor names every word up to its size as a
 *     possible pointer is allocated as GC_malloc's objects are, and one
 *     whose descriptor names none as GC_malloc_atomic's, zeroed; the
 *     others take one word more, at their end, for the descriptor (as in
 *     bdwgc), and an array three words more.  An array whose element size
 *     is not a multiple of the word size is scanned conservatively.
 *   - The objects may not be passed to GC_realloc (as in bdwgc). */
#ifndef GC_TYPED_H
#define GC_TYPED_H

#include "../gc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bit i (the least significant bit of word 0 first) set: word i of the
 * object may be a pointer. */
typedef GC_word *GC_bitmap;

#define GC_WORDSZ (8 * sizeof(GC_word))
#define GC_get_bit(bm, index) (((bm)[(index) / GC_WORDSZ] >> ((index) % GC_WORDSZ)) & 1)
#define GC_set_bit(bm, index) ((bm)[(index) / GC_WORDSZ] |= (GC_word)1 << ((index) % GC_WORDSZ))
#define GC_WORD_OFFSET(t, f) (offsetof(t, f) / sizeof(GC_word))
#define GC_WORD_LEN(t) (sizeof(t) / sizeof(GC_word))
#define GC_BITMAP_SIZE(t) ((GC_WORD_LEN(t) + GC_WORDSZ - 1) / GC_WORDSZ)

typedef GC_word GC_descr;

/* The descriptor of objects whose first len words are described by bm
 * (any further word is not a pointer). */
GC_API GC_descr GC_CALL GC_make_descriptor(const GC_word * /* GC_bitmap bm */,
                                           size_t /* len (number_of_bits_in_bitmap) */);

/* A zeroed object of at least size_in_bytes bytes (no fewer than the
 * descriptor's words) laid out as d says. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_explicitly_typed(size_t /* size_in_bytes */, GC_descr /* d */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_explicitly_typed_ignore_off_page(size_t /* size_in_bytes */, GC_descr /* d */);
/* A zeroed array of nelements elements of element_size_in_bytes bytes
 * each (a multiple of the word size), each laid out as d says. */
GC_API GC_ATTR_MALLOC GC_ATTR_CALLOC_SIZE(1, 2) void *GC_CALL
GC_calloc_explicitly_typed(size_t /* nelements */, size_t /* element_size_in_bytes */,
                           GC_descr /* d */);

#ifdef GC_DEBUG
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) ((void)(d), GC_MALLOC(bytes))
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d) ((void)(d), GC_MALLOC((n) * (bytes)))
#else
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) GC_malloc_explicitly_typed(bytes, d)
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d) GC_calloc_explicitly_typed(n, bytes, d)
#endif

#ifdef __cplusplus
}
#endif

#endif
