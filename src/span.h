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
#include "print.h"

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

/* mhi_span.guard: in the secure build, which pages of the span are
 * PROT_NONE (the page heap makes them accessible again when the span
 * comes back to it, mhi_heap_free_released); in the default build only
 * MHI_GUARD_DELAYED is used. */
enum mhi_guard {
    MHI_GUARD_NONE = 0,
    MHI_GUARD_SMALL = 1, /* small-object span: its last page is a guard page */
    MHI_GUARD_LARGE = 2, /* large object: its last page is a guard page */
    MHI_GUARD_FREED = 3, /* large object freed, in quarantine: every page */
    /* (the default build) large object freed, held back from reuse until
     * the next such free (malloc.c, mhi_free_large); no page protected */
    MHI_GUARD_DELAYED = 4,
};

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
/* The free mark.  Every free small object (on a free list, an xfree list
 * or a stash) holds its link, the next object, in its first word and
 * link ^ mhi_mark_key in its second; allocation clears the second.  A
 * free that finds the mark is a double free, or (one chance in 2^64) data
 * that happens to match.  Allocation checks the mark before it follows
 * the link, so a write that reached a free object, through its link or its
 * mark, is named ("corrupted free block") instead of followed.  The key is
 * drawn at random when the first arena is mapped, before any object
 * exists, so a forged link needs the process's key. */
extern uintptr_t mhi_mark_key __attribute__((visibility("hidden")));
#if MHEAP_SECURE
/* The secure build also encodes the link: the first word holds
 * next ^ mhi_link_key (drawn with mhi_mark_key), so no free object shows a
 * heap address, and a forged link needs this key too. */
extern uintptr_t mhi_link_key __attribute__((visibility("hidden")));
#define MHI_LINK_KEY mhi_link_key
#else
#define MHI_LINK_KEY ((uintptr_t)0) /* (the default build stores the link as it is) */
#endif

typedef struct mhi_span mhi_span;
struct mhi_span {
    /* ---- line 0: everything the malloc fast paths and lookups touch ----
     * (next is first: the span fixalloc links dead spans through word 0,
     * and base must stay readable for range checks of stale map entries.) */
    /* List links.  FREE: the exact-size free list for npages < MHI_FREE_LISTS.
     * INUSE small: the owning cache's lists or central's partial list.
     * NULL when on no list. */
    mhi_span *next;
    uintptr_t base; /* address of the first page; multiple of MHI_PAGE_SIZE */
    union {
        /* KIND_SMALL: free objects, linked through their first word and
         * carrying the free mark in their second (above). */
        void *freelist;
        /* KIND_GC, a thread's current span: bit j set iff slot
         * gc_freeindex + j is free, up to the end of that slot's bitmap
         * word (Go's allocCache); the owner's alone. */
        uint64_t gc_cache;
    };
    union {
        /* KIND_SMALL: struct mhi_cache * or NULL.  Read without a lock by
         * the free fast path, which only compares it with the reader's own
         * cache (and only that cache makes it equal to itself). */
        void *_Atomic owner;
        /* KIND_GC: the alloc bits, one per object (bits past nelems set),
         * then at MHI_GC_BITWORDS words on the mark bits (gc.h). */
        uint64_t *gc_alloc;
    };
    uint32_t elemsize; /* object size (classes); 0 for a span of one object */
    uint16_t nelems;   /* objects in the span (at most 512) */
    /* enum mhi_span_state.  Written under the heap lock; a span that
     * becomes INUSE or MANUAL has its state stored last, with release
     * (mhi_span_publish), and lock-free readers load it with acquire
     * (mhi_span_state), so a thread that finds the span through the map
     * and sees it live sees the page heap's other fields complete. */
    uint8_t state;
    uint8_t kind; /* enum mhi_span_kind; meaningful while INUSE */
    /* nelems * elemsize while kind is KIND_SMALL and the span is open to
     * free's fast path (its pages' entries in the arena's fast map are set
     * with it: mhi_small_object_fast), 0 otherwise.  Read without a lock,
     * like kind, and set with it (mhi_span_set_kind, mhi_span_set_fast). */
    uint32_t fast_limit;
    /* offset / elemsize == (offset * divmul) >> 32, and for an offset
     * below the span's end, offset is a multiple of elemsize iff
     * (uint32_t)(offset * divmul) < divmul (divmul is 2^32 / elemsize
     * rounded up; tests/test_sizeclass.c checks both for every class) */
    uint32_t divmul;
    union {
        uint32_t nfree; /* KIND_SMALL: objects on freelist plus released ones */
        /* KIND_GC: slots below it are allocated (gc.h); written by the
         * owner of a current span, read by the collector while the owner
         * is stopped and by lock-free lookups (relaxed atomics). */
        _Atomic uint32_t gc_freeindex;
    };
    uint8_t sizeclass; /* size class for KIND_SMALL, 0 otherwise */
    /* INUSE/MANUAL: some page may hold old data (set by the heap at alloc
     * from the scavenged bitmap; pages fresh from the OS or released are
     * known zero and need no clearing: the seed's needzero).  The owner
     * clears it once it has zeroed the span. */
    uint8_t needzero;
    uint8_t gc_kind; /* KIND_GC: enum mhi_gc_kind */
    /* The secure build's protections of an INUSE span, or the default
     * build's delayed large blocks (enum mhi_guard; secure.c, malloc.c). */
    uint8_t guard;
    size_t npages; /* > 0 for every non-DEAD span */

    /* ---- line 1: the page heap's fields, then the kind's ---- */
    mhi_span *prev;
    /* GC sweep generation, relative to the heap's sweepgen h:
     *   h-2: needs sweeping, h-1: being swept, h: swept and ready.
     * Set to the heap's sweepgen when the span goes into use; kept when the
     * span struct is reused (a sweeper may still read a span it found
     * before the span died, and must see an old generation, not zero). */
    _Atomic uint32_t sweepgen;
    uint32_t tprio;
    /* FREE spans with npages >= MHI_FREE_LISTS live in a treap ordered by
     * (npages, base): best fit, ties to the lowest address. */
    mhi_span *tleft, *tright;
    size_t nbytes; /* npages << MHI_PAGE_SHIFT, for range checks */

    /* Fields of one kind of span.  Each user of a span in use sets up its
     * own arm when it takes the span from the page heap. */
    union {
        /* KIND_SMALL / KIND_SMALL_REL (malloc's size classes).  A span is
         * either owned by one thread cache (owner != NULL) or unowned
         * (owner == NULL, and then xfree carries MHI_XF_ABANDONED).  The
         * owner alone touches freelist, nfree, where, relmask and the list
         * links of an owned span (in its slow paths under its cache's
         * lock, except cur spans' free lists); central[c]'s lock guards
         * those of an unowned span.  owner and the ABANDONED tag change
         * together, only under central[c]'s lock. */
        struct {
            /* Trimming (trim.h): free objects taken off the free list
             * because the OS pages they overlap were released; counted in
             * nfree.  Read by freers' slow paths (relaxed). */
            _Atomic uint64_t relmask;
            /* The trim epoch of the last return of objects to the span, and
             * of the last trim look at it. */
            uint32_t touched, trimmed;
            /* Objects from this index on have not been on the free list
             * since the span was set up or relinked (mhi_span_relink):
             * counted in nfree, marked free, taken onto the list by
             * mhi_span_carve when the list runs dry.  Grows, but for a
             * relink, which sets it to 0; written by whoever may change
             * the free list, read by freers' slow paths (relaxed), which
             * call a free of such an object an invalid pointer, not a
             * double free. */
            _Atomic uint32_t fresh;
            uint8_t where; /* enum mhi_span_where: which list holds it */
            /* The objects past fresh keep the links they had on a free
             * list in the order they were freed (mhi_span_relink), not the
             * set-up's: mhi_span_carve links each run itself.  Written and
             * read with the free list. */
            uint8_t relinked;
        };
        /* KIND_GC (gc.h): an object is allocated iff its index is below
         * gc_freeindex or its alloc bit is set (the owner of a current span
         * allocates by advancing gc_freeindex, writing no bit). */
        struct {
            uint8_t gc_cached; /* a thread's current span (gc lock) */
            uint8_t gc_where;  /* the GC list holding it (gcheap.c) */
            /* On gcfinal.c's list of spans with records (gc lock), by
             * gc_rec_next and gc_rec_prev, valid while it is set. */
            uint8_t gc_recs;
            mhi_span *gc_rec_next, *gc_rec_prev;
        };
    };

    /* ---- line 2: written by other threads, then the specials ---- */
    struct {
        union {
            /* KIND_SMALL: objects freed by threads other than the owner,
             * linked through their first word (and marked like those on
             * freelist), with tag bits (MHI_XF_*) in the low four bits
             * (objects are 16-byte aligned).  Pushed with CAS, taken by
             * the owner. */
            struct {
                _Atomic uintptr_t xfree;
                mhi_span *xnext;         /* link on a cache's notify stack */
                _Atomic uint8_t onstack; /* on some cache's notify stack (cache.c) */
            };
            /* KIND_GC: gc_snap, the freeindex when the world stopped while
             * a thread had the span cached (gc_snapped): objects allocated
             * from there on are live at the span's next sweep. */
            struct {
                uint32_t gc_snap;
                uint8_t gc_snapped;
                /* the last of specials (gcfinal.c), valid while specials
                 * is not NULL */
                struct mhi_special *gc_rec_last;
                /* links to its objects and inside them (gclinks.c) */
                uint32_t gc_link_objs, gc_link_locs;
            };
        };
        /* Per-object records (finalizers, profile samples, weak refs),
         * sorted by offset; guarded by speciallock.  Must be NULL when the
         * span is freed. */
        mhi_lock_t speciallock;
        struct mhi_special *specials;
    } __attribute__((aligned(MHI_CACHE_LINE)));
};
static_assert(offsetof(mhi_span, npages) + sizeof(size_t) <= MHI_CACHE_LINE,
              "fast-path and lookup fields share line 0");
static_assert(offsetof(mhi_span, xfree) == 2 * MHI_CACHE_LINE,
              "page heap and kind fields fit line 1; remote frees have line 2");
static_assert(sizeof(mhi_span) == 3 * MHI_CACHE_LINE, "a span is three lines");

/* The span's kind, read by threads that may race with the switch between
 * SMALL and SMALL_REL (only those two change while the span is in use). */
static inline uint8_t mhi_span_kind(const mhi_span *s) {
    return __atomic_load_n(&s->kind, __ATOMIC_RELAXED);
}
/* Heap lock held: set the kind.  Lock-free readers load it (the free fast
 * path, the collector's lookups of map entries, stale ones included), so
 * every write to it is atomic. */
void mhi_span_set_fast(mhi_span *s, bool open);
static inline void mhi_span_set_kind(mhi_span *s, uint8_t k) {
    if (__atomic_load_n(&s->fast_limit, __ATOMIC_RELAXED)) mhi_span_set_fast(s, false);
    __atomic_store_n(&s->kind, k, __ATOMIC_RELAXED);
}
/* The free fast path's bound, read without a lock. */
static inline uint32_t mhi_span_fast_limit(const mhi_span *s) {
    return __atomic_load_n(&s->fast_limit, __ATOMIC_RELAXED);
}
/* (mhi_span_set_fast, arena.c: a KIND_SMALL span whose sizeclass,
 * nelems and elemsize are set: open its objects to the free fast path,
 * setting fast_limit and its pages' entries in the arena's fast map; or,
 * on false, close them to it, before its kind changes from SMALL.) */
static inline bool mhi_kind_small(uint8_t k) {
    return k == MHI_KIND_SMALL || k == MHI_KIND_SMALL_REL;
}

/* The state of a span found without the heap lock (through the map). */
static inline uint8_t mhi_span_state(const mhi_span *s) {
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}
/* Heap lock held: make s live in state st after every other field. */
static inline void mhi_span_publish(mhi_span *s, uint8_t st) {
    __atomic_store_n(&s->state, st, __ATOMIC_RELEASE);
}

static inline uintptr_t mhi_span_end(const mhi_span *s) {
    return s->base + (s->npages << MHI_PAGE_SHIFT);
}

/* Doubly linked span lists: first and last, NULL when empty, and a count. */
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

/* ---- objects of small-object spans ---- */

static inline uint32_t mhi_span_index(const mhi_span *s, const void *p) {
    return (uint32_t)(((uint64_t)((uintptr_t)p - s->base) * s->divmul) >> 32);
}

/* Abort unless p is the start of an object of s. */
static inline uint32_t mhi_span_check(const mhi_span *s, const void *p) {
    uintptr_t off = (uintptr_t)p - s->base;
    uint32_t idx = mhi_span_index(s, p);
    if (MHI_UNLIKELY(off >= s->nbytes || idx >= s->nelems || (uintptr_t)idx * s->elemsize != off))
        mhi_fatal_at("invalid pointer", p);
    return idx;
}

/* The free mark (above).  Every write of a free object's link goes
 * through mhi_link_set, which writes the mark with it. */
static inline uintptr_t mhi_mark_of(uintptr_t link) { return link ^ mhi_mark_key; }
static inline bool mhi_free_marked(const void *p) {
    const uintptr_t *w = (const uintptr_t *)p;
    return w[1] == mhi_mark_of(w[0]);
}
/* The link of free object p. */
static inline void *mhi_link_get(const void *p) {
    return (void *)(*(const uintptr_t *)p ^ MHI_LINK_KEY);
}
/* The link of free object p, once its mark says the link is sound (the
 * walks of free chains: a write that reached p is named, not followed);
 * `held`, a lock the caller holds or NULL, is dropped before the abort. */
static inline void *mhi_link_follow(const void *p, mhi_lock_t *held) {
    if (MHI_UNLIKELY(!mhi_free_marked(p))) mhi_fatal_at_unlock(held, "corrupted free block", p);
    return mhi_link_get(p);
}
/* Link free object p to next, and mark it. */
static inline void mhi_link_set(void *p, void *next) {
    uintptr_t *w = (uintptr_t *)p;
    w[0] = (uintptr_t)next ^ MHI_LINK_KEY;
    w[1] = mhi_mark_of(w[0]);
}
/* Mark p free with whatever its first word holds (its link is set later,
 * through mhi_link_set). */
static inline void mhi_mark_free(void *p) {
    uintptr_t *w = (uintptr_t *)p;
    w[1] = mhi_mark_of(w[0]);
}
static inline void mhi_mark_clear(void *p) { ((uintptr_t *)p)[1] = 0; }

/* Check and mark the free of object p by a thread that does not own its
 * span.  A marked object is free already (on a free list, an xfree list or
 * a cache's stash): abort.  A plain load and store: two frees of one object
 * by two threads within the same few nanoseconds can both pass, and are
 * stopped later, before the object reaches a second user (docs/design.md,
 * "free"). */
static inline void mhi_span_mark_remote(void *p) {
    if (MHI_UNLIKELY(mhi_free_marked(p))) mhi_fatal_at("double free", p);
    mhi_mark_free(p);
}

/* Splice a chain of objects (linked through their first words, marked by
 * their freers) onto the free list of s; returns its length.  The caller
 * may change the free list of s.  A chain longer than the room left in s
 * means an object was pushed twice (two frees racing): a double free.
 * held: the lock the caller holds (NULL: none), dropped before such an
 * abort. */
uint32_t mhi_span_splice(mhi_span *s, void *chain, mhi_lock_t *held);

/* The free list of s is empty: put the next objects never handed out
 * (from s->fresh on, linked and marked by the set-up) on it, in address
 * order; false if there are none.
 * Each call takes the objects that start below twice the offset of the
 * first (below 4 KiB for the first call), at least 4: a span is carved in
 * a few calls, and a free of an object past the frontier is told from a
 * double free.  held: the lock the caller holds, dropped before an abort
 * (a relinked span's object found without its free mark). */
bool mhi_span_carve(mhi_span *s, mhi_lock_t *held);

/* Every object of s is free and on its free list, none released: hand
 * them out again front to back, as from a new span, carving the first run
 * now (the default build; the secure build keeps its shuffled order).
 * Each run's links are written, not read, and the objects past the run
 * keep their free marks, so a span whose objects other threads freed is
 * handed out in address order without its owner reading each link from
 * another core's cache. */
void mhi_span_relink(mhi_span *s, mhi_lock_t *held);

/* Move the objects other threads freed into s onto its free list (owner
 * only; tags are kept).  Returns how many there were.  held: as for
 * mhi_span_splice. */
size_t mhi_span_collect_xfree(mhi_span *s, mhi_lock_t *held);

/* Owner: stop notices for s (clear NOTIFY) and wait until no remote freer
 * is delivering one (FREEING), so that no freer pushes s onto the owner's
 * notify stack from now on. */
void mhi_span_quiesce(mhi_span *s);

/* Problems with small-object span s, whose owner is `owner` (NULL: the
 * caller holds central's lock for it) and which its list says is at
 * `where`: counted into *errors and printed as "mheap: verify: ...".  The
 * caller has the right to read its free list (owner's lock, or central's).
 * Checks kind, class, owner against the ABANDONED tag, where, that nfree
 * equals the listed objects plus the released ones, and that every listed
 * object starts an object of s and carries its free mark. */
void mhi_span_verify_small(const mhi_span *s, const void *owner, int where, size_t *errors);

#endif
