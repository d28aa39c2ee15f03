/* span.h - a span is a run of heap pages (the seed's mspan).
 *
 * Every page of the heap that has been taken from the OS belongs to exactly
 * one span.  A span's state says who owns its pages:
 *
 *   FREE    in the page heap's free structures (an exact-size list or the
 *           large tree); the arena map points to the span from its first
 *           and its last page only (interior entries are stale).
 *   INUSE   handed to the malloc / GC layers; `kind` says for what.  Every
 *           page of the span maps to it.
 *   MANUAL  handed out raw through the page-run API (the seed's stack
 *           spans); every page maps to it.
 *   DEAD    back in the span fixalloc; must never be reachable from the map
 *           through a live lookup (lookups check the address range).
 *
 * Transitions: FREE -> INUSE|MANUAL (alloc), INUSE|MANUAL -> FREE (free),
 * FREE -> DEAD (absorbed by coalescing), DEAD -> FREE|INUSE (reused).
 * A GC must never see INUSE -> FREE while it marks; the sweeper does that
 * transition (sweepgen below). */
#ifndef MHEAP_SPAN_H
#define MHEAP_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "os.h"

enum mhi_span_state {
    MHI_SPAN_DEAD = 0,
    MHI_SPAN_FREE = 1,
    MHI_SPAN_INUSE = 2,
    MHI_SPAN_MANUAL = 3,
};

enum mhi_span_kind {
    MHI_KIND_NONE = 0,  /* FREE, MANUAL, DEAD spans */
    MHI_KIND_SMALL = 1, /* malloc: objects of one size class */
    MHI_KIND_LARGE = 2, /* malloc: one object of npages pages */
    MHI_KIND_GC = 3,    /* garbage-collected heap (objects of one class or one large) */
    /* malloc: objects of one size class, some of whose free objects sit on
     * released pages (relmask below).  The free fast path takes only
     * KIND_SMALL, so frees into such a span go through the slow path,
     * which checks relmask for double frees. */
    MHI_KIND_SMALL_REL = 4,
};

struct mhi_special;

/* Which list holds a small-object span. */
enum mhi_span_where {
    MHI_WHERE_NONE = 0,
    MHI_WHERE_CUR = 1,      /* a cache's current span for its class */
    MHI_WHERE_AVAIL = 2,    /* a cache's list of spans with free objects */
    MHI_WHERE_FULL = 3,     /* a cache's list of spans with none (notify armed) */
    MHI_WHERE_CPARTIAL = 4, /* unowned, on central's partial list */
    MHI_WHERE_CFULL = 5,    /* unowned, no free object, on no list */
};

/* Tag bits of mhi_span.xfree. */
#define MHI_XF_NOTIFY ((uintptr_t)1)    /* owner asks for a notice on the next remote free */
#define MHI_XF_ABANDONED ((uintptr_t)2) /* unowned: free under central's lock */
#define MHI_XF_FREEING ((uintptr_t)4)   /* a remote freer is delivering the notice */
#define MHI_XF_TAGS ((uintptr_t)15)
/* The second word of every free small object (on a free list or an xfree
 * list) holds its address xor this; allocation clears it.  A free that
 * finds the mark is a double free, or (rarely) data that happens to match:
 * the slow paths tell the two apart where they can (see cache.c). */
#define MHI_FREE_MARK ((uintptr_t)0xa5c3e1f70b2d4968ULL)

typedef struct mhi_span mhi_span;
struct mhi_span {
    /* ---- line 0: everything the malloc fast paths touch ----
     * (next is first: the span fixalloc links dead spans through word 0,
     * and base must stay readable for range checks of stale map entries.) */
    /* List links.  FREE: the exact-size free list for npages < MHI_FREE_LISTS.
     * INUSE small: the owning cache's lists or central's partial list.
     * NULL when on no list. */
    mhi_span *next;
    uintptr_t base;  /* address of the first page; multiple of MHI_PAGE_SIZE */
    /* KIND_SMALL: free objects, linked through their first word; the second
     * word of each holds its address ^ MHI_FREE_MARK. */
    void *freelist;
    /* KIND_SMALL: struct mhi_cache * or NULL.  Read without a lock by the
     * free fast path, which only compares it with the reader's own cache
     * (and only that cache makes it equal to itself). */
    void *_Atomic owner;
    uint32_t elemsize;       /* object size */
    uint32_t nelems;         /* objects in the span */
    uint32_t divmul;         /* offset / elemsize == (offset * divmul) >> 32 */
    uint32_t nfree;          /* objects on freelist */
    uint8_t state;   /* enum mhi_span_state; written under the heap lock */
    uint8_t kind;    /* enum mhi_span_kind; meaningful while INUSE */
    uint8_t sizeclass; /* size class for KIND_SMALL, 0 otherwise */
    /* INUSE/MANUAL: some page may hold old data (set by the heap at alloc
     * from the scavenged bitmap; pages fresh from the OS or released are
     * known zero and need no clearing: the seed's needzero). */
    uint8_t needzero;
    size_t npages;   /* > 0 for every non-DEAD span */

    /* ---- the page heap, and the malloc layer's slow paths ---- */
    mhi_span *prev;
    /* GC sweep generation, relative to the heap's sweepgen h:
     *   h-2: needs sweeping, h-1: being swept, h: swept and ready.
     * Set to the heap's sweepgen when the span is allocated. */
    _Atomic uint32_t sweepgen;
    uint32_t tprio;
    /* FREE spans with npages >= MHI_FREE_LISTS live in a treap ordered by
     * (npages, base): best fit, ties to the lowest address. */
    mhi_span *tleft, *tright;

    /* Small-object spans (KIND_SMALL) are either owned by one thread cache
     * (owner != NULL) or unowned (owner == NULL, and then xfree carries
     * MHI_XF_ABANDONED).  The owner alone touches freelist, nfree,
     * where and the list links of an owned span; central[c]'s lock guards
     * those of an unowned span.  owner and the ABANDONED tag change
     * together, only under central[c]'s lock.  Threads that do not own a
     * span free into it through xfree (lock-free), or under central[c]'s
     * lock when unowned. */
    size_t nbytes;           /* npages << MHI_PAGE_SHIFT, for range checks */
    uint8_t where;           /* enum mhi_span_where: which list holds it */
    /* Trimming (free pages inside a span in use, see trim in central.h):
     * spans of at most 64 objects only.  relmask: free objects taken off
     * the free list because pages they overlap were released; counted in
     * nfree.  Written by whoever may change freelist (owner under its
     * cache's lock, or central's lock), read by freers' slow paths.
     * touched: the trim epoch of the last return of objects to the span;
     * trimmed: the epoch of the last trim look at it. */
    _Atomic uint64_t relmask;
    uint32_t touched, trimmed;

    /* ---- written by other threads: a line of its own ----
     * Objects freed by threads other than the owner, linked through their
     * first word (and marked like those on freelist), with tag bits
     * (MHI_XF_*) in the low four bits (objects are 16-byte aligned).  Pushed
     * with CAS, taken by the owner. */
    _Atomic uintptr_t xfree __attribute__((aligned(MHI_CACHE_LINE)));
    mhi_span *xnext;         /* link on a cache's notify stack */
    _Atomic uint8_t onstack; /* on some cache's notify stack (see cache.c) */

    /* Per-object records (finalizers, profile samples, weak refs), sorted by
     * offset; guarded by speciallock. */
    mhi_lock_t speciallock;
    struct mhi_special *specials;
};
static_assert(offsetof(mhi_span, npages) + sizeof(size_t) <= MHI_CACHE_LINE,
              "fast-path and lookup fields share line 0");

/* The span's kind, read by threads that may race with the switch between
 * SMALL and SMALL_REL (only those two change while the span is in use). */
static inline uint8_t mhi_span_kind(const mhi_span *s) {
    return __atomic_load_n(&s->kind, __ATOMIC_RELAXED);
}
static inline bool mhi_kind_small(uint8_t k) {
    return k == MHI_KIND_SMALL || k == MHI_KIND_SMALL_REL;
}

static inline uintptr_t mhi_span_end(const mhi_span *s) {
    return s->base + (s->npages << MHI_PAGE_SHIFT);
}

/* Doubly linked span lists with a sentinel head. */
typedef struct {
    mhi_span *first, *last;
    size_t count;
} mhi_span_list;

static inline void mhi_span_list_push(mhi_span_list *l, mhi_span *s) {
    s->prev = NULL;
    s->next = l->first;
    if (l->first) l->first->prev = s;
    else l->last = s;
    l->first = s;
    l->count++;
}

static inline void mhi_span_list_push_back(mhi_span_list *l, mhi_span *s) {
    s->next = NULL;
    s->prev = l->last;
    if (l->last) l->last->next = s;
    else l->first = s;
    l->last = s;
    l->count++;
}

static inline void mhi_span_list_remove(mhi_span_list *l, mhi_span *s) {
    if (s->prev) s->prev->next = s->next;
    else l->first = s->next;
    if (s->next) s->next->prev = s->prev;
    else l->last = s->prev;
    s->next = s->prev = NULL;
    l->count--;
}

#endif
