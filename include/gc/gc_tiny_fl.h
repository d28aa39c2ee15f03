/* gc/gc_tiny_fl.h - bdwgc 8.2's granule and tiny free-list sizes, for
 * gc/gc_inline.h's macros: a granule is 16 bytes (two words, mheap's
 * smallest size class), and a tiny free-list array has one entry per
 * granule count below GC_TINY_FREELISTS (up to 384 bytes). */
#ifndef GC_TINY_FL_H
#define GC_TINY_FL_H

#define GC_GRANULE_BYTES 16
#define GC_GRANULE_WORDS 2
#define GC_WORDS_TO_GRANULES(n) ((n) * sizeof(void *) / GC_GRANULE_BYTES)
#ifndef GC_TINY_FREELISTS
#define GC_TINY_FREELISTS 25
#endif
/* The bytes of the objects of tiny free list i. */
#define GC_RAW_BYTES_FROM_INDEX(i) ((i) * GC_GRANULE_BYTES)

#endif
