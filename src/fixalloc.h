/* fixalloc.h - fixed-size allocators for metadata (the seed's fixalloc).
 *
 * Memory comes from the OS in chunks and is never returned; freed objects go
 * on a free list and are reused.  Objects start zeroed the first time and
 * carry whatever was left in them afterwards unless the caller clears them.
 * A fixalloc has no lock of its own: the owner's lock guards it (for the span
 * allocator, the heap lock). */
#ifndef MHEAP_FIXALLOC_H
#define MHEAP_FIXALLOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mhi_fixlink {
    struct mhi_fixlink *next;
} mhi_fixlink;

typedef struct {
    size_t size;             /* object size, rounded to 16 */
    mhi_fixlink *list;       /* freed objects */
    char *chunk;             /* bump region */
    size_t nchunk;           /* bytes left in chunk */
    uint64_t inuse;          /* objects handed out and not freed */
    _Atomic uint64_t *stat;  /* bytes taken from the OS are added here */
} mhi_fixalloc;

void mhi_fixalloc_init(mhi_fixalloc *f, size_t size, _Atomic uint64_t *stat);
/* Returns NULL if the OS refuses memory. */
void *mhi_fixalloc_alloc(mhi_fixalloc *f);
void mhi_fixalloc_free(mhi_fixalloc *f, void *p);

/* Persistent metadata: zeroed memory that is never freed, carved from
 * OS chunks.  Takes its own lock. */
void *mhi_persistent_alloc(size_t size, size_t align, _Atomic uint64_t *stat);

#endif
