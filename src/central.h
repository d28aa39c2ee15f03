/* central.h - the central lists: per size class, the spans no thread cache
 * owns (the seed's mcentral, padded to its own cache line as the seed pads
 * mheap.central[]).  Caches take spans from here and give them back.
 *
 * central[c].lock guards: the partial list, the count of full spans, the
 * span counters, and the freelist / nfree / where / relmask fields of
 * every unowned span of class c.  A span's owner and its ABANDONED tag
 * change only under it.  Lock order (os.h): central[c].lock, then the heap
 * lock; never two central locks at once. */
#ifndef MHEAP_CENTRAL_H
#define MHEAP_CENTRAL_H

#include <stddef.h>
#include <stdint.h>

#include "os.h"
#include "sizeclass.h"
#include "span.h"
#include "trim.h"

typedef struct {
    mhi_lock_t lock;
    mhi_span_list partial; /* unowned spans with at least one free object */
    uint64_t nfull;        /* unowned spans with no free object (on no list) */
    uint64_t nspans;       /* spans of this class taken from the page heap, live */
    uint64_t nspan_alloc;  /* spans taken from the page heap, in all */
    uint64_t nspan_free;   /* spans returned to the page heap, in all */
} __attribute__((aligned(MHI_CACHE_LINE))) mhi_central;

extern mhi_central mhi_centrals[MHI_NUM_CLASSES];

/* A span of class c for the cache `owner`: an unowned partial span, or a
 * new one from the page heap.  NULL if out of memory. */
mhi_span *mhi_central_take_span(size_t c, void *owner);
/* The owner gives s up (s is on none of its lists): s becomes unowned and
 * is filed as partial, full, or given back to the page heap if every
 * object is free. */
void mhi_central_abandon(mhi_span *s);
/* The owner gives back s, every object of which is free, to the page heap. */
void mhi_central_retire(mhi_span *s);
/* Free the n objects head .. tail of s (linked through their first words,
 * each checked and marked by mhi_span_mark_remote) into s, which was seen
 * unowned.  0 if s has an owner again (the caller then frees through
 * xfree); 1 done; 2 done, and pages may have come free (the caller asks
 * the background thread for a pass). */
int mhi_central_free_unowned(mhi_span *s, void *head, void *tail, uint32_t n);
/* One object of class c without a cache (exiting threads). */
void *mhi_central_alloc_one(size_t c);

/* Trim the unowned spans of every central list. */
void mhi_central_trim(mhi_trim_pass *tp);

/* Totals over all classes (each central read under its lock). */
typedef struct {
    uint64_t spans, bytes;       /* live small-object spans, and their bytes */
    uint64_t partial, full;      /* unowned ones with and without free objects */
    uint64_t span_allocs, span_frees; /* spans taken from / returned to the page heap */
} mhi_central_totals_t;
void mhi_central_totals(mhi_central_totals_t *out);
/* Check every central list (each under its lock): its partial spans
 * (mhi_span_verify_small, with free objects, not entirely free) and its
 * counts.  Returns the number of violations, printed as "mheap: verify: ...". */
size_t mhi_central_verify(void);
/* Print one line per class in use. */
void mhi_central_print(int fd);

void mhi_central_fork_prepare(void);
void mhi_central_fork_parent(void);
void mhi_central_fork_child(void);

#endif
