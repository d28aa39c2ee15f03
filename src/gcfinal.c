/* gcfinal.c - the GC heap's specials: per-object records kept on their
 * span (the seed's specials), and on them finalizers, cleanups and weak
 * handles (gc.h, mheap_gc.h); disappearing and long links, kept in an
 * index of their own; and the toggle references, in a table of their own.
 *
 * A span's records form one list sorted by (offset, kind); offsets are
 * full width.  They come from one fixalloc.  On GC spans they are guarded
 * by the GC lock rather than the span's special lock: the collector reads
 * them in the pause, and no stopped thread may hold a lock it needs.  A
 * span with records has its page's bit set in its arena's `special`
 * bitmap, which reclaim checks (such a span is swept, never freed whole),
 * and is on the list of spans with records that the pause walks.  The
 * records on spans are counted by kind, so the pause skips the steps no
 * record needs.
 *
 * A link is a slot of the links' index: its address (short and long links
 * apart: one address may hold one of each) -> its object, and whether it
 * lies in a GC object (its container).  When the container is freed or
 * dies the link goes without a write, so a link never writes into memory
 * that was reused; when its object is freed or dies it is cleared.
 *
 * Finalization, in the pause after the mark (bdwgc's order):
 *   0. roots: the queued objects, finalizers' and cleanups' arguments
 *      (those that lay in a GC span when registered), weak handles,
 *      objects with a strong toggle reference;
 *   1. short links and weak handles of unmarked objects are cleared;
 *   2. every unmarked object with an ordered, ignore-self or unreachable
 *      finalizer has its contents marked, not itself (ignore-self:
 *      pointers to itself are skipped; no-order: nothing); one that is
 *      marked afterwards is on a cycle, and is reported once;
 *   3. the finalizable objects still unmarked are ready: their records
 *      move to the queue, and they are marked with everything they reach,
 *      to live until their finalizer has run; but with Java-style
 *      finalization (bdwgc's GC_java_finalization, on by default) an
 *      object with an unreachable finalizer is marked last, and goes back
 *      to its span unfinalized if another ready object reached it;
 *   4. long links to objects still unmarked are cleared, their cleanups
 *      queued, links whose container dies are dropped, and weak toggle
 *      references to unmarked objects are cleared (without finalizers
 *      nothing is marked after 0, and 1 and 4 are one walk).
 * An object that a finalizable object reaches is thus kept until that
 * finalizer has run, and a cycle of ordered finalizable objects is never
 * finalized (each keeps the next).  Queued objects are roots until their
 * finalizer runs: on the finalizer thread (started after the first cycle
 * that queues one, registered, so finalizers may allocate and resurrect),
 * or, on demand, when the program calls mh_gc_run_finalizers (told by the
 * notifier).  With an await function set, the objects a pause made ready
 * wait off the queue until it has been called for each, after the pause.
 *
 * bdwgc's switches (GC_finalize_on_demand, GC_java_finalization,
 * GC_finalizer_notifier) are variables a program may write: they are
 * defined in gc_boehm_final.c, are the storage of the mh_gc_ setters too,
 * and are read here each time they decide something (a binary linked
 * against libgc has its own copy of them, which libmheap.so, preloaded
 * beneath it, must read). */
#include <errno.h>

#include "gc.h"

#include "options.h"
#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

/* bdwgc's switches (gc_boehm_final.c): plain variables a program may
 * write, read with relaxed atomic loads. */
extern int GC_finalize_on_demand;
extern int GC_java_finalization;
extern void (*GC_finalizer_notifier)(void);
#define SWITCH_GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define SWITCH_SET(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

/* (sorted within an offset by kind) */
enum {
    SP_FINALIZER = 1,
    SP_CLEANUP = 2,
    SP_WEAK = 3,
};

typedef struct mhi_special mhi_special;
struct mhi_special {
    mhi_special *next;   /* on its span's list, or on the queue */
    mhi_special **pprev; /* on a span's list: the link to it (O(1) removal) */
    mhi_span *span;    /* the span it is on */
    size_t offset;     /* of the object in its span */
    uint8_t kind;
    uint8_t mode; /* finalizers: MH_GC_FINALIZE_* */
    uint8_t rooted; /* its root word (data, or weak: fn) may be a GC object */
    void *fn;     /* finalizer, cleanup: the function; weak: the handle (a
                   * pointer-free GC object) */
    void *data;   /* finalizer, cleanup: the argument (a root) */
    void *obj;    /* queued: the object (NULL for a cleanup); on a span, in
                   * the pause: the next candidate (finalize step 2) */
};

/* Ready finalizers and cleanups are their records, off their span and on
 * the queue (GC lock): nothing is allocated in the pause. */
static mhi_fixalloc special_alloc; /* (GC lock) */
static _Atomic uint64_t special_sys;
static bool special_inited;
static mhi_special *queue_head, **queue_tail = &queue_head;
static _Atomic uint64_t queue_len; /* on the queue and awaiting */
/* Made ready by the last pause, waiting for the await function (GC lock;
 * the world lock holds collections off until they are on the queue). */
static mhi_special *await_head;
static void (*_Atomic await_fn)(void *obj);
/* Ready finalizers are taken from the queue in batches, under one hold
 * of the GC lock: a batch's records stay on the list of batches running
 * (GC lock), whose objects and arguments the pause marks, until the
 * whole batch has run and its records are freed, under a second hold.
 * (Copies of the objects in the running thread's frame would do for one
 * at a time, but a frame's array may live where no collection looks: a
 * sanitizer's fake stack.) */
typedef struct run_batch run_batch;
struct run_batch {
    run_batch *next, **pprev;
    mhi_special *recs; /* off the queue, chained by next */
};
static run_batch *running; /* (GC lock) */
#define RUN_BATCH 32
static uint64_t links_live[2];   /* registered short and long links (GC lock) */
static uint64_t recs_live;       /* records allocated and not freed (GC lock) */
static bool any_unreachable;     /* an unreachable finalizer was registered */
static void *cycle_found;        /* a finalization cycle, for the report */
static bool cycle_reported;      /* (world lock) */
static _Atomic int finalize_all; /* mh_gc_finalize_all: every finalizer is ready */

static void special_init_locked(void) {
    if (special_inited) return;
    mhi_fixalloc_init(&special_alloc, sizeof(mhi_special), &special_sys);
    special_inited = true;
}

static void special_bit(mhi_span *s, bool on) {
    mhi_arena *ar = mhi_arena_must(s->base);
    size_t pg = mhi_arena_page(s->base);
    if (on) mhi_arena_bit_or(ar->special, pg);
    else mhi_arena_bit_and_not(ar->special, pg);
}

/* The records on spans, by kind, so that the pause skips the steps no
 * record needs (GC lock). */
static uint64_t on_spans[SP_WEAK + 1];
static uint64_t rooted_on_spans; /* of them, those whose root word may be a GC object */

/* May p be a GC object (or in one)?  A word that lies in no GC span when
 * it is registered can point to no object the program holds: its record
 * need not be a root (step 0 is skipped when no record is). */
static uint8_t may_root(const void *p) { return mhi_gc_span_of(p) != NULL; }

/* The spans with records, so that the pause walks only those: a span
 * joins when it gets its first record and leaves when a walk finds it
 * without any, or when it is freed (GC lock; gc_rec_next, gc_rec_prev). */
static mhi_span *rec_spans;

static void rec_spans_add(mhi_span *s) {
    if (s->gc_recs) return;
    s->gc_recs = 1;
    s->gc_rec_prev = NULL;
    s->gc_rec_next = rec_spans;
    if (rec_spans) rec_spans->gc_rec_prev = s;
    rec_spans = s;
}

static void rec_spans_remove(mhi_span *s) {
    if (!s->gc_recs) return;
    s->gc_recs = 0;
    if (s->gc_rec_prev) s->gc_rec_prev->gc_rec_next = s->gc_rec_next;
    else rec_spans = s->gc_rec_next;
    if (s->gc_rec_next) s->gc_rec_next->gc_rec_prev = s->gc_rec_prev;
}

/* Call fn on each span with records (fn may take records off any span,
 * and put them on the one it is given). */
static void each_rec_span(void (*fn)(mhi_span *s, void *arg), void *arg) {
    for (mhi_span *s = rec_spans, *next; s; s = next) {
        next = s->gc_rec_next;
        if (s->specials) fn(s, arg);
        if (!s->specials) rec_spans_remove(s);
    }
}

/* Has s records, links to its objects or inside them, or a place on the
 * list of spans with records? (freeing its objects must tell gcfinal.c) */
bool mhi_gc_span_has_specials(const mhi_span *s) {
    return s->specials || s->gc_recs || s->gc_link_objs || s->gc_link_locs;
}

/* Records and the links' index are paced as heap memory (bdwgc takes
 * them from its heap): the bytes taken count as allocated towards the
 * next goal, and those held count in the live heap (mhi_gc_final_live). */
static void count_alloc(uint64_t bytes) {
    atomic_fetch_add_explicit(&G->alloc_since, bytes, memory_order_relaxed);
}
static mhi_special *rec_new(void) {
    mhi_special *x = mhi_fixalloc_alloc(&special_alloc);
    if (x) {
        recs_live++;
        count_alloc(sizeof *x);
    }
    return x;
}
static void rec_free(mhi_special *x) {
    recs_live--;
    mhi_fixalloc_free(&special_alloc, x);
}

/* A record's pprev is the address of the next field of the record before
 * it, or of its span's specials: so the list can be walked backwards. */
static_assert(offsetof(mhi_special, next) == 0, "a record begins with its next field");
static mhi_special *prev_of(const mhi_span *s, const mhi_special *x) {
    return x->pprev == &s->specials ? NULL : (mhi_special *)(void *)x->pprev;
}

static bool before(const mhi_special *x, size_t off, int k) {
    return x->offset < off || (x->offset == off && x->kind < k);
}

/* The record of kind k at offset off of s (and *pp, the link to it or to
 * where it would go).  Searched from the end nearer to off: objects are
 * mostly registered in address order, at the end of the list, which the
 * span keeps (gc_rec_last). */
static mhi_special *find(mhi_span *s, size_t off, int k, mhi_special ***pp) {
    mhi_special **p = &s->specials, *first = s->specials;
    mhi_special *last = first ? s->gc_rec_last : NULL;
    if (last && before(last, off, k)) {
        p = &last->next;
    } else if (last && off > first->offset && off - first->offset > last->offset - off) {
        mhi_special *x = last;
        do x = prev_of(s, x);
        while (x && !before(x, off, k));
        p = x ? &x->next : &s->specials;
    } else {
        while (*p && before(*p, off, k)) p = &(*p)->next;
    }
    *pp = p;
    mhi_special *x = *p;
    return x && x->offset == off && x->kind == k ? x : NULL;
}

/* The GC span and object start of p (a live object's base), or NULL. */
static mhi_span *object_of(const void *p, size_t *off) {
    mhi_span *s = mhi_gc_span_of(p);
    if (!s) return NULL;
    long i = mhi_gc_object_index(s, (uintptr_t)p);
    if (i < 0) return NULL;
    *off = (size_t)i * mhi_gc_elem_size(s);
    return (uintptr_t)p == s->base + *off ? s : NULL;
}

/* The GC span and offset of the allocated object holding p, or NULL. */
static mhi_span *container_of(const void *p, size_t *off) {
    mhi_span *s = mhi_gc_span_of(p);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)p) : -1;
    if (i < 0) return NULL;
    *off = (size_t)i * mhi_gc_elem_size(s);
    return s;
}

/* ---- links: the links' index, link address and kind -> object (GC lock) ----
 * A link is its slot here and nothing else: open addressing, linear
 * probing, memory from the OS (link addresses and their objects are not
 * roots).  The key is the link's address, with bit 2 set for a long link
 * (links are word-aligned); the value is the object's address, with bit 0
 * set when the link lies in a GC object (its container).  Each GC span
 * counts the links to its objects (gc_link_objs) and those inside them
 * (gc_link_locs), so that freeing one of its objects looks for links only
 * where some may be.  The pause walks the index (bdwgc walks its link
 * tables): a link whose container died goes without a write (the memory
 * is reused), one whose object died is cleared and goes. */
typedef struct {
    uintptr_t key; /* 0: empty, 1: deleted */
    uintptr_t obj; /* hidden (HIDE) */
} link_slot;
static link_slot *ht;
static size_t ht_cap, ht_used, ht_dead;
static _Atomic uint64_t ht_sys;

#define LINK_LONG ((uintptr_t)4)
#define LINK_IN_GC ((uintptr_t)1)

/* Keys and objects are kept hidden (their high bits flipped, bdwgc's
 * GC_HIDE_POINTER), so that a copy of a slot left in a frame that a
 * collection scans keeps neither the link's container nor its object. */
#define HIDE (~(uintptr_t)7)
static uintptr_t link_key(void **link, bool is_long) {
    return ((uintptr_t)link | (is_long ? LINK_LONG : 0)) ^ HIDE;
}
static void **slot_link(const link_slot *e) { return (void **)((e->key ^ HIDE) & ~(uintptr_t)7); }
static bool slot_long(const link_slot *e) { return ((e->key ^ HIDE) & LINK_LONG) != 0; }
static void *slot_obj(const link_slot *e) { return (void *)((e->obj ^ HIDE) & ~LINK_IN_GC); }
static bool slot_in_gc(const link_slot *e) { return ((e->obj ^ HIDE) & LINK_IN_GC) != 0; }

static size_t ht_hash(uintptr_t k) { return (size_t)((k >> 2) * 0x9e3779b97f4a7c15ULL >> 17); }

static link_slot *ht_find(uintptr_t key) {
    if (!ht_cap) return NULL;
    for (size_t i = ht_hash(key) & (ht_cap - 1);; i = (i + 1) & (ht_cap - 1)) {
        if (ht[i].key == key) return &ht[i];
        if (ht[i].key == 0) return NULL;
    }
}

/* Rebuilt when live and deleted slots reach 3/4 (linear probing with a
 * multiplicative hash keeps probes short there): at twice the size if the
 * live ones pass 3/8, so that it is at most 3/4 full of them after, else
 * at the same size, without the deleted ones. */
static bool ht_full(size_t more) { return (ht_used + ht_dead + more) * 4 > ht_cap * 3; }

static bool ht_grow(void) {
    size_t cap = !ht_cap ? 1024 : ht_used * 8 > ht_cap * 3 ? ht_cap * 2 : ht_cap;
    link_slot *n = mhi_os_alloc(cap * sizeof *n, &ht_sys);
    if (!n) return false;
    for (size_t i = 0; i < ht_cap; i++)
        if (ht[i].key > 1)
            for (size_t j = ht_hash(ht[i].key) & (cap - 1);; j = (j + 1) & (cap - 1))
                if (!n[j].key) {
                    n[j] = ht[i];
                    break;
                }
    if (ht) mhi_os_release(ht, ht_cap * sizeof *ht, &ht_sys);
    if (cap > ht_cap) count_alloc((cap - ht_cap) * sizeof *n);
    ht = n;
    ht_cap = cap;
    ht_dead = 0;
    return true;
}

/* (key must not be in the table; may grow it, moving every slot; obj
 * hidden) */
static bool ht_put(uintptr_t key, uintptr_t obj) {
    if (ht_full(1) && !ht_grow()) return false;
    for (size_t i = ht_hash(key) & (ht_cap - 1);; i = (i + 1) & (ht_cap - 1))
        if (ht[i].key <= 1) {
            if (ht[i].key == 1) ht_dead--;
            ht[i] = (link_slot){key, obj};
            ht_used++;
            return true;
        }
}

/* The link's object and container spans count it (by = 1) or not (-1). */
static void link_count(void **link, uintptr_t obj, int by) {
    mhi_span *t = mhi_gc_span_of((void *)(obj & ~LINK_IN_GC));
    if (t) t->gc_link_objs += (uint32_t)by;
    if (obj & LINK_IN_GC) {
        mhi_span *c = mhi_gc_span_of(link);
        if (c) c->gc_link_locs += (uint32_t)by;
    }
}

/* A new link (its key not in the index) for obj: false if memory ran
 * out. */
static bool link_add(void **link, bool is_long, void *obj) {
    size_t coff;
    uintptr_t v = (uintptr_t)obj | (container_of(link, &coff) ? LINK_IN_GC : 0);
    if (!ht_put(link_key(link, is_long), v ^ HIDE)) return false;
    link_count(link, v, 1);
    links_live[is_long]++;
    return true;
}

/* The link of slot e goes (the slot is left deleted: walks go on). */
static void link_drop(link_slot *e) {
    link_count(slot_link(e), e->obj ^ HIDE, -1);
    links_live[slot_long(e)]--;
    e->key = 1;
    e->obj = 0;
    ht_used--;
    ht_dead++;
}

/* A dying or freed object's weak handle reads NULL. */
static void clear_ref(mhi_special *x) {
    if (x->kind == SP_WEAK) __atomic_store_n((void **)x->fn, NULL, __ATOMIC_RELAXED);
}

/* Put x on s's list at *p; take *p off s's list.  They keep the span's
 * last record, the counts by kind, the span's bit and its place on the
 * list of spans with records. */
static void put(mhi_span *s, mhi_special **p, mhi_special *x) {
    bool first = !s->specials;
    x->next = *p;
    x->pprev = p;
    if (*p) (*p)->pprev = &x->next;
    else s->gc_rec_last = x;
    *p = x;
    on_spans[x->kind]++;
    rooted_on_spans += x->rooted;
    if (first) {
        special_bit(s, true);
        rec_spans_add(s);
    }
}
static mhi_special *take(mhi_span *s, mhi_special **p) {
    mhi_special *x = *p;
    *p = x->next;
    if (x->next) x->next->pprev = p;
    else if (s->specials) s->gc_rec_last = (mhi_special *)(void *)p; /* (p: the one before) */
    on_spans[x->kind]--;
    rooted_on_spans -= x->rooted;
    x->next = NULL;
    x->pprev = NULL;
    if (!s->specials) special_bit(s, false);
    return x;
}

static void unlink_special(mhi_span *s, mhi_special **p) {
    rec_free(take(s, p));
}

/* Put a record (off every list) back at its place on its span. */
static void attach(mhi_special *x) {
    mhi_special **p;
    (void)find(x->span, x->offset, x->kind, &p);
    put(x->span, p, x);
}

/* A new record on s at *p (its place in the order): NULL with errno
 * ENOMEM. */
static mhi_special *insert(mhi_span *s, mhi_special **p, size_t off, int kind, int mode, void *fn,
                           void *data) {
    mhi_special *x = rec_new();
    if (!x) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t rooted = kind == SP_WEAK ? 1 : may_root(data);
    *x = (mhi_special){NULL, NULL, s, off, (uint8_t)kind, (uint8_t)mode, rooted, fn, data, NULL};
    put(s, p, x);
    return x;
}

MH_API int mh_gc_register_finalizer(void *obj, mh_gc_finalizer_fn fn, void *data, int mode,
                                    mh_gc_finalizer_fn *old_fn, void **old_data) {
    if (old_fn) *old_fn = NULL;
    if (old_data) *old_data = NULL;
    if (mode < MH_GC_FINALIZE_ORDERED || mode > MH_GC_FINALIZE_UNREACHABLE) {
        errno = EINVAL;
        return -1;
    }
    (void)mhi_gc_thread_get();
    size_t off;
    mhi_lock(&G->lock);
    mhi_span *s = object_of(obj, &off);
    if (!s || s->gc_kind == MHI_GC_UNCOLL) {
        mhi_unlock(&G->lock);
        errno = EINVAL; /* not the start of a collectable GC object */
        return -1;
    }
    special_init_locked();
    if (fn && mode == MH_GC_FINALIZE_UNREACHABLE) any_unreachable = true;
    mhi_special **p, *x = find(s, off, SP_FINALIZER, &p);
    if (x) {
        if (old_fn) *old_fn = (mh_gc_finalizer_fn)x->fn;
        if (old_data) *old_data = x->data;
        if (!fn) {
            unlink_special(s, p);
        } else {
            x->fn = (void *)fn;
            x->data = data;
            rooted_on_spans -= x->rooted;
            x->rooted = may_root(data);
            rooted_on_spans += x->rooted;
            x->mode = (uint8_t)mode;
        }
        mhi_unlock(&G->lock);
        return 0;
    }
    if (!fn) {
        mhi_unlock(&G->lock);
        return 0;
    }
    x = insert(s, p, off, SP_FINALIZER, mode, (void *)fn, data);
    mhi_unlock(&G->lock);
    return x ? 0 : -1;
}

static int register_link(void **link, const void *obj, bool is_long) {
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1))) {
        errno = EINVAL;
        return -1;
    }
    (void)mhi_gc_thread_get();
    size_t off;
    mhi_lock(&G->lock);
    mhi_span *s = object_of(obj, &off);
    if (!s) {
        mhi_unlock(&G->lock);
        errno = EINVAL;
        return -1;
    }
    special_init_locked();
    /* A link registered already (for this object or another) now belongs
     * to obj (nothing is allocated). */
    link_slot *e = ht_find(link_key(link, is_long));
    if (e) {
        if (slot_obj(e) != obj) {
            uintptr_t v = e->obj ^ HIDE;
            link_count(link, v, -1);
            v = (uintptr_t)obj | (v & LINK_IN_GC);
            e->obj = v ^ HIDE;
            link_count(link, v, 1);
        }
        mhi_unlock(&G->lock);
        return 1;
    }
    bool ok = link_add(link, is_long, (void *)obj);
    mhi_unlock(&G->lock);
    if (!ok) errno = ENOMEM;
    return ok ? 0 : -1;
}

MH_API int mh_gc_register_disappearing_link(void **link, const void *obj) {
    return register_link(link, obj, false);
}
MH_API int mh_gc_register_long_link(void **link, const void *obj) {
    return register_link(link, obj, true);
}

/* Remove the link of that kind (found by the link's address: its value
 * may be disguised); returns whether it was registered. */
static int unregister_link(void **link, bool is_long) {
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1))) return 0;
    mhi_lock(&G->lock);
    link_slot *e = ht_find(link_key(link, is_long));
    if (e) link_drop(e);
    mhi_unlock(&G->lock);
    return e != NULL;
}

MH_API int mh_gc_unregister_link(void **link) { return unregister_link(link, false); }
MH_API int mh_gc_unregister_long_link(void **link) { return unregister_link(link, true); }

MH_API int mh_gc_move_link(void **link, void **new_link, int long_link) {
    if (!new_link || ((uintptr_t)new_link & (sizeof(void *) - 1))) {
        errno = EINVAL;
        return -1;
    }
    bool is_long = long_link != 0;
    if ((uintptr_t)link & (sizeof(void *) - 1)) return -2;
    mhi_lock(&G->lock);
    link_slot *e = link ? ht_find(link_key(link, is_long)) : NULL;
    int r = 0;
    if (!e) {
        r = -2; /* not registered (as that kind) */
    } else if (new_link != link) {
        void *obj = slot_obj(e);
        if (ht_find(link_key(new_link, is_long))) {
            r = 1; /* new_link has an object already */
        } else if (!link_add(new_link, is_long, obj)) { /* (e is stale from here) */
            errno = ENOMEM;
            r = -1;
        } else {
            link_drop(ht_find(link_key(link, is_long)));
        }
    }
    mhi_unlock(&G->lock);
    return r;
}

/* ---- cleanups and weak handles ---- */

MH_API void *mh_gc_add_cleanup(void *obj, void (*fn)(void *arg), void *arg) {
    (void)mhi_gc_thread_get();
    size_t off;
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    mhi_lock(&G->lock);
    mhi_span *s = object_of(obj, &off);
    if (!s || s->gc_kind == MHI_GC_UNCOLL) {
        mhi_unlock(&G->lock);
        errno = EINVAL;
        return NULL;
    }
    special_init_locked();
    mhi_special **p;
    (void)find(s, off, SP_CLEANUP + 1, &p); /* (after this offset's cleanups) */
    mhi_special *x = insert(s, p, off, SP_CLEANUP, 0, (void *)(void (*)(void))fn, arg);
    mhi_unlock(&G->lock);
    return x;
}

MH_API int mh_gc_cancel_cleanup(void *obj, void *cleanup) {
    size_t off;
    int found = 0;
    mhi_lock(&G->lock);
    mhi_span *s = object_of(obj, &off);
    if (s)
        for (mhi_special **p = &s->specials; *p; p = &(*p)->next)
            if (*p == cleanup && (*p)->kind == SP_CLEANUP) {
                unlink_special(s, p);
                found = 1;
                break;
            }
    mhi_unlock(&G->lock);
    return found;
}

MH_API void *mh_gc_weak_make(const void *p) {
    if (!p) return NULL;
    (void)mhi_gc_thread_get();
    /* (the handle is allocated first, outside the lock; dropped if the
     * object has one already) */
    void **h = mh_gc_malloc_atomic(sizeof *h);
    if (!h) return NULL;
    *h = (void *)p;
    mhi_lock(&G->lock);
    mhi_span *s = mhi_gc_span_of(p);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)p) : -1;
    if (i < 0) {
        mhi_unlock(&G->lock);
        errno = EINVAL;
        return NULL;
    }
    /* One handle per object and offset: the offset is p's, interior
     * pointers included. */
    size_t off = (uintptr_t)p - s->base;
    special_init_locked();
    mhi_special **pp, *x = find(s, off, SP_WEAK, &pp);
    if (x) {
        void *old = x->fn;
        mhi_unlock(&G->lock);
        return old;
    }
    x = insert(s, pp, off, SP_WEAK, 0, h, NULL);
    mhi_unlock(&G->lock);
    return x ? h : NULL;
}

MH_API void *mh_gc_weak_get(const void *handle) {
    if (!handle) return NULL;
    return __atomic_load_n((void *const *)handle, __ATOMIC_RELAXED);
}

/* ---- toggle references (world lock) ----
 * A table of objects, each held strongly (a root) or weakly (cleared with
 * the long links); before each collection the toggle function says what
 * each is to be now.  Memory from the OS (not scanned). */
static uintptr_t *tr;          /* object | 1 if weak; 0: cleared */
static size_t tr_len, tr_cap;
static _Atomic uint64_t tr_sys;
static mh_gc_toggleref_fn _Atomic tr_fn;

MH_API void mh_gc_set_toggleref_fn(mh_gc_toggleref_fn fn) { atomic_store(&tr_fn, fn); }
MH_API mh_gc_toggleref_fn mh_gc_get_toggleref_fn(void) { return atomic_load(&tr_fn); }

MH_API int mh_gc_toggleref_add(void *obj, int strong) {
    if (!obj || mh_gc_base(obj, NULL) != obj) {
        errno = EINVAL;
        return -1;
    }
    mh_gc_lock();
    int r = 0;
    if (!atomic_load(&tr_fn)) {
        /* (as bdwgc: without a function, nothing is registered) */
    } else if (tr_len == tr_cap) {
        size_t cap = tr_cap ? tr_cap * 2 : 512;
        uintptr_t *n = mhi_os_alloc(cap * sizeof *n, &tr_sys);
        if (!n) {
            errno = ENOMEM;
            r = -1;
        } else {
            if (tr) {
                memcpy(n, tr, tr_len * sizeof *n);
                mhi_os_release(tr, tr_cap * sizeof *tr, &tr_sys);
            }
            tr = n;
            tr_cap = cap;
        }
    }
    if (r == 0 && atomic_load(&tr_fn)) tr[tr_len++] = (uintptr_t)obj | (strong ? 0 : 1);
    mh_gc_unlock();
    return r;
}

/* Before a collection (world lock held, the world running): ask the
 * function about each object; drop the cleared and the freed ones. */
void mhi_gc_final_cycle_begins(void) {
    mhi_lock_assert_held(&G->world);
    mh_gc_toggleref_fn fn = atomic_load(&tr_fn);
    if (!fn || !tr_len) return;
    size_t n = 0;
    for (size_t i = 0; i < tr_len; i++) {
        void *o = (void *)(tr[i] & ~(uintptr_t)1);
        if (!o || mh_gc_base(o, NULL) != o) continue; /* (gone, or freed explicitly) */
        int st = fn(o);
        if (st == MH_GC_TOGGLEREF_STRONG) tr[n++] = (uintptr_t)o;
        else if (st == MH_GC_TOGGLEREF_WEAK) tr[n++] = (uintptr_t)o | 1;
        else if (st != MH_GC_TOGGLEREF_DROP) mhi_fatal("toggle-reference function: status %d for %p", st, o);
    }
    if (n < tr_len) memset(tr + n, 0, (tr_len - n) * sizeof *tr);
    tr_len = n;
}

/* ---- in the pause ---- */

typedef struct {
    int phase;
    bool all;     /* mh_gc_finalize_all: every finalizer is ready */
    bool with4;   /* step 1 does step 4's work too (nothing marks between) */
} walk_ctx;

static bool marked(const mhi_span *s, size_t off) {
    if (s->gc_kind == MHI_GC_UNCOLL) return true; /* (alive until freed; marked or not) */
    size_t size = mhi_gc_elem_size(s);
    uint32_t i = (uint32_t)(off / size);
    return mhi_gc_marks(s)[i >> 6] >> (i & 63) & 1;
}

/* Weak handles of unmarked objects are cleared. */
static void clear_weak(mhi_span *s) {
    for (mhi_special **p = &s->specials; *p;) {
        mhi_special *x = *p;
        if (x->kind == SP_WEAK && !marked(s, x->offset)) {
            clear_ref(x);
            unlink_special(s, p);
            continue;
        }
        p = &x->next;
    }
}

static bool object_marked(const void *o) {
    mhi_span *s = mhi_gc_span_of(o);
    return s && marked(s, (uintptr_t)o - s->base);
}

/* Is the GC object holding link marked (allocated, for one freed)? */
static bool location_lives(void **link) {
    mhi_span *s = mhi_gc_span_of(link);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)link) : -1;
    return i >= 0 && marked(s, (size_t)i * mhi_gc_elem_size(s));
}

/* The links in the pause: step 1 (shorts: short links to unmarked
 * objects are cleared) or step 4 (longs: so are long links, and links
 * whose container is unmarked go without a write), or both. */
static void links_walk(bool shorts, bool longs) {
    for (size_t i = 0; i < ht_cap; i++) {
        link_slot *e = &ht[i];
        if (e->key <= 1) continue;
        /* (the next slots' objects, whose marks are read next) */
        if (i + 8 < ht_cap && ht[i + 8].key > 1) __builtin_prefetch(slot_obj(&ht[i + 8]));
        void **link = slot_link(e);
        if (longs && slot_in_gc(e) && !location_lives(link)) {
            link_drop(e);
            continue;
        }
        if ((slot_long(e) ? longs : shorts) && !object_marked(slot_obj(e))) {
            *link = NULL;
            link_drop(e);
        }
    }
}

/* Step 2's candidates for step 3, chained through obj (GC lock, in the
 * pause). */
static void *cand_head, **cand_tail = &cand_head;

/* Move record x (taken off its span) to the queue, for obj (NULL: a
 * cleanup). */
static void enqueue(mhi_special *x, void *obj) {
    x->obj = obj;
    x->next = NULL;
    *queue_tail = x;
    queue_tail = &x->next;
    atomic_fetch_add_explicit(&queue_len, 1, memory_order_relaxed);
}

static void phase(mhi_span *s, void *arg) {
    if (!s->specials) return;
    int ph = ((walk_ctx *)arg)->phase;
    if (ph == 1 && ((walk_ctx *)arg)->with4) {
        clear_weak(s);
        ph = 4;
    }
    if (ph == 0) {
        /* Roots: finalizers' and cleanups' arguments, weak handles. */
        for (mhi_special *x = s->specials; x; x = x->next) {
            if (x->kind == SP_FINALIZER || x->kind == SP_CLEANUP) mhi_gc_mark_word((uintptr_t)x->data);
            if (x->kind == SP_WEAK) mhi_gc_mark_word((uintptr_t)x->fn);
        }
    } else if (ph == 1) {
        clear_weak(s);
    } else if (ph == 2) {
        for (mhi_special *x = s->specials; x; x = x->next) {
            if (x->kind != SP_FINALIZER || marked(s, x->offset)) continue;
            /* (a candidate for step 3: unmarked now) */
            x->obj = NULL;
            *cand_tail = x;
            cand_tail = &x->obj;
            if (x->mode != MH_GC_FINALIZE_NO_ORDER && s->gc_kind != MHI_GC_NOSCAN) {
                uintptr_t o = s->base + x->offset;
                mhi_gc_mark_contents(o, o + mhi_gc_elem_size(s),
                                     x->mode == MH_GC_FINALIZE_IGNORE_SELF ? o : 0);
                /* (marked by what it reaches: it is on a cycle) */
                if (!cycle_found && marked(s, x->offset)) cycle_found = (void *)o;
            }
        }
    } else if (ph == 3) {
        /* (with all: every finalizer is ready) */
        for (mhi_special **p = &s->specials; *p;) {
            mhi_special *x = *p;
            if (x->kind == SP_FINALIZER) {
                enqueue(take(s, p), (void *)(s->base + x->offset));
                continue;
            }
            p = &x->next;
        }
    } else if (ph == 4) {
        /* Cleanups of objects gone for good: queued without their object,
         * which the sweep frees. */
        for (mhi_special **p = &s->specials; *p;) {
            mhi_special *x = *p;
            if (x->kind == SP_CLEANUP && !marked(s, x->offset)) {
                enqueue(take(s, p), NULL);
                continue;
            }
            p = &x->next;
        }
    }
}

/* Step 3: step 2's candidates still unmarked are ready (queued here,
 * marked after: marking one must not hide another that is just as
 * unreachable); with all, every finalizer is, found by a walk after this.
 * (a function of its own: a frame of the pause's that is not the caller's
 * keeps the objects' addresses out of frames a later cycle may scan) */
static MHI_NOINLINE void queue_candidates(bool all) {
    for (mhi_special *x = cand_head, *next; x; x = next) {
        next = x->obj;
        x->obj = NULL;
        if (!all && !marked(x->span, x->offset))
            enqueue(take(x->span, x->pprev), (void *)(x->span->base + x->offset));
    }
    cand_head = NULL;
    cand_tail = &cand_head;
}

/* The objects just queued (from *newly) live until their finalizers have
 * run: marked with what they reach.  With Java-style finalization an
 * object with an unreachable finalizer is left to the last: if another
 * ready object reached it, it goes back to its span and waits. */
static void keep_ready(mhi_special **newly) {
    bool java = SWITCH_GET(GC_java_finalization) != 0;
    bool hold = java && any_unreachable && !atomic_load(&finalize_all);
    for (mhi_special *q = *newly; q; q = q->next)
        if (!hold || q->mode != MH_GC_FINALIZE_UNREACHABLE) mhi_gc_mark_object(q->obj);
    mhi_gc_mark_settle();
    if (!hold) return;
    mhi_special **p = newly;
    while (*p) {
        mhi_special *q = *p;
        if (q->mode == MH_GC_FINALIZE_UNREACHABLE && marked(q->span, q->offset)) {
            *p = q->next;
            atomic_fetch_sub_explicit(&queue_len, 1, memory_order_relaxed);
            q->obj = NULL;
            attach(q);
            continue;
        }
        p = &q->next;
    }
    queue_tail = p;
    for (mhi_special *q = *newly; q; q = q->next)
        if (q->mode == MH_GC_FINALIZE_UNREACHABLE) mhi_gc_mark_object(q->obj);
    mhi_gc_mark_settle();
}

/* Of what finalization marked in the last pause: bytes live as any
 * roots' (strong toggle references, finalizers' arguments, weak handles'
 * targets), and bytes kept only for finalization before its steps (the
 * queue's objects); the steps' own marks are left on the marker. */
static uint64_t rooted_extra, final_extra; /* (GC lock) */

void mhi_gc_final_extra_locked(uint64_t *rooted, uint64_t *final) {
    *rooted = rooted_extra;
    *final = final_extra;
}

uint64_t mhi_gc_finalize_locked(void) {
    mhi_lock_assert_held(&G->lock);
    rooted_extra = final_extra = 0;
    if (!special_inited && !tr_len) return 0;
    uint64_t before = atomic_load_explicit(&queue_len, memory_order_relaxed);
    /* The objects of strong toggle references are roots, live as any
     * (rooted_extra); the queue's objects and arguments too, until they
     * have run (final_extra: garbage once run, they earn no growth). */
    for (size_t i = 0; i < tr_len; i++)
        if (tr[i] && !(tr[i] & 1)) mhi_gc_mark_object((void *)tr[i]);
    rooted_extra = mhi_gc_mark_extra();
    for (mhi_special *q = queue_head; q; q = q->next) {
        if (q->obj) mhi_gc_mark_object(q->obj);
        mhi_gc_mark_word((uintptr_t)q->data);
    }
    for (mhi_special *q = await_head; q; q = q->next) {
        mhi_gc_mark_object(q->obj);
        mhi_gc_mark_word((uintptr_t)q->data);
    }
    for (run_batch *b = running; b; b = b->next) /* (running, or run already) */
        for (mhi_special *q = b->recs; q; q = q->next) {
            if (q->obj) mhi_gc_mark_object(q->obj);
            mhi_gc_mark_word((uintptr_t)q->data);
        }
    final_extra = mhi_gc_mark_extra();
    mhi_special **newly = queue_tail;
    /* Each step walks the spans with records, and only when some record
     * is of a kind it handles; without finalizers nothing is marked after
     * step 0, and steps 1 and 4 are one walk. */
    bool with4 = !on_spans[SP_FINALIZER];
    if (special_inited)
        for (int ph = 0; ph <= 4; ph++) {
            walk_ctx c = {ph, atomic_load(&finalize_all) != 0, with4};
            bool links = links_live[0] + links_live[1] != 0;
            uint64_t n = ph == 0   ? rooted_on_spans
                         : ph == 1 ? on_spans[SP_WEAK] + (with4 ? on_spans[SP_CLEANUP] : 0)
                         : ph == 4 ? (with4 ? 0 : on_spans[SP_CLEANUP])
                                   : on_spans[SP_FINALIZER];
            if (ph == 3) {
                queue_candidates(c.all);
                if (n && c.all) each_rec_span(phase, &c);
            } else if (n) {
                each_rec_span(phase, &c);
            }
            if (ph == 1 && (links_live[0] || (with4 && links))) links_walk(true, with4);
            if (ph == 4 && !with4 && links) links_walk(false, true);
            /* (marks are complete before the next step reads them) */
            mhi_gc_mark_settle();
            /* (finalizers' arguments and weak handles' targets: live) */
            if (ph == 0) rooted_extra += mhi_gc_mark_extra();
            if (ph == 3) {
                keep_ready(newly);
                /* With an await function, the newly ready wait off the
                 * queue until it has been called for each. */
                if (*newly && atomic_load(&await_fn)) {
                    mhi_special **t = &await_head;
                    while (*t) t = &(*t)->next;
                    *t = *newly;
                    *newly = NULL;
                    queue_tail = newly;
                }
            }
        }
    /* Weak toggle references to objects gone for good are cleared. */
    for (size_t i = 0; i < tr_len; i++) {
        size_t off;
        mhi_span *s;
        if ((tr[i] & 1) && (!(s = object_of((void *)(tr[i] & ~(uintptr_t)1), &off)) || !marked(s, off)))
            tr[i] = 0;
    }
    return atomic_load_explicit(&queue_len, memory_order_relaxed) - before;
}

/* Sweeping s: the records of its dead objects go (lock held). */
void mhi_gc_sweep_specials_locked(mhi_span *s, const uint64_t *live) {
    size_t size = mhi_gc_elem_size(s);
    for (mhi_special **p = &s->specials; *p;) {
        mhi_special *x = *p;
        uint32_t i = (uint32_t)(x->offset / size);
        if (!(live[i >> 6] >> (i & 63) & 1)) {
            clear_ref(x);
            unlink_special(s, p);
            continue;
        }
        p = &x->next;
    }
    if (!s->specials) rec_spans_remove(s);
}

/* Memory [lo, hi) of s is freed: links to objects in it are cleared, and
 * links inside it go without a write.  With links inside only and few
 * words, the index is probed for each word; else it is walked. */
static void links_freed(mhi_span *s, uintptr_t lo, uintptr_t hi) {
    if (!ht_cap) return;
    if (!s->gc_link_objs && (hi - lo) / sizeof(void *) < ht_cap / 8) {
        for (uintptr_t a = lo; a < hi; a += sizeof(void *))
            for (int l = 0; l < 2; l++) {
                link_slot *e = ht_find(link_key((void **)a, l));
                if (e) link_drop(e);
            }
        return;
    }
    for (size_t i = 0; i < ht_cap && (s->gc_link_objs || s->gc_link_locs); i++) {
        link_slot *e = &ht[i];
        if (e->key <= 1) continue;
        uintptr_t l = (uintptr_t)slot_link(e), o = (uintptr_t)slot_obj(e);
        if (slot_in_gc(e) && l >= lo && l < hi) {
            link_drop(e);
        } else if (o >= lo && o < hi) {
            *slot_link(e) = NULL;
            link_drop(e);
        }
    }
}

/* Object off of s is freed explicitly (or s is): its records go, links
 * to it are cleared, and links inside it go. */
void mhi_gc_free_specials_locked(mhi_span *s, size_t off, bool all) {
    size_t size = mhi_gc_elem_size(s);
    for (mhi_special **p = &s->specials; *p;) {
        mhi_special *x = *p;
        if (all || x->offset / size == off / size) { /* (weak handles: interior offsets) */
            clear_ref(x);
            unlink_special(s, p);
            continue;
        }
        p = &x->next;
    }
    if (!s->specials) rec_spans_remove(s);
    if (s->gc_link_objs || s->gc_link_locs) {
        uintptr_t lo = s->base + (all ? 0 : off / size * size);
        links_freed(s, lo, all ? s->base + (uintptr_t)s->nelems * size : lo + size);
    }
}

/* ---- after the pause ---- */

MH_API void mh_gc_set_await_finalize_fn(void (*fn)(void *obj)) { atomic_store(&await_fn, fn); }
MH_API mh_gc_await_fn mh_gc_get_await_finalize_fn(void) { return atomic_load(&await_fn); }

/* At the end of a collection, the world running, the world lock held (no
 * other collection starts): the await function is called for each object
 * the pause made ready, which then joins the queue; a finalization cycle
 * found is reported, once, with the option verbose. */
void mhi_gc_final_cycle_end(void) {
    mhi_lock_assert_held(&G->world);
    if (cycle_found && !cycle_reported && mhi_option(MHI_OPT_verbose)) {
        cycle_reported = true;
        mhi_printf(2, "mheap: finalization cycle involving %p: its finalizers never run\n",
                   cycle_found);
    }
    cycle_found = NULL;
    mhi_lock(&G->lock);
    mhi_special *w = await_head;
    await_head = NULL;
    mhi_unlock(&G->lock);
    if (!w) return;
    void (*fn)(void *) = atomic_load(&await_fn);
    /* (off every list, reachable from here only: the world lock keeps
     * collections away until they are on the queue) */
    mhi_special **last = &w;
    for (; *last; last = &(*last)->next)
        if (fn) fn((*last)->obj);
    mhi_lock(&G->lock);
    *queue_tail = w;
    queue_tail = last;
    mhi_unlock(&G->lock);
}

/* ---- running finalizers ---- */


/* Take up to max (at most RUN_BATCH, at least 1) ready finalizers and
 * cleanups and run them; returns how many. */
/* Batches this thread is running (a finalizer may run finalizers). */
static _Thread_local unsigned batch_depth;
/* Threads inside mh_gc_finalize_all: the finalizer thread takes no work
 * meanwhile. */
static _Atomic int fa_callers;

static size_t run_some(size_t max) {
    run_batch b = {NULL, NULL, NULL};
    mhi_special **t = &b.recs;
    size_t n = 0;
    if (!max || max > RUN_BATCH) max = RUN_BATCH;
    mhi_lock(&G->lock);
    while (n < max && queue_head) {
        mhi_special *q = queue_head;
        queue_head = q->next;
        if (!queue_head) queue_tail = &queue_head;
        atomic_fetch_sub_explicit(&queue_len, 1, memory_order_relaxed);
        q->next = NULL;
        *t = q;
        t = &q->next;
        n++;
    }
    if (n) {
        b.next = running;
        b.pprev = &running;
        if (running) running->pprev = &b.next;
        running = &b;
    }
    mhi_unlock(&G->lock);
    if (!n) return 0;
    batch_depth++;
    for (mhi_special *q = b.recs; q; q = q->next) {
        if (q->obj) ((mh_gc_finalizer_fn)q->fn)(q->obj, q->data);
        else ((void (*)(void *))(void (*)(void))q->fn)(q->data); /* a cleanup */
    }
    batch_depth--;
    mhi_lock(&G->lock);
    *b.pprev = b.next;
    if (b.next) b.next->pprev = b.pprev;
    for (mhi_special *q = b.recs, *next; q; q = next) {
        next = q->next;
        rec_free(q);
    }
    mhi_unlock(&G->lock);
    return n;
}

MH_API size_t mh_gc_run_finalizers_max(size_t max) {
    (void)mhi_gc_thread_get();
    size_t n = 0, k;
    while ((!max || n < max) && (k = run_some(max ? max - n : RUN_BATCH)) != 0) n += k;
    return n;
}

MH_API size_t mh_gc_run_finalizers(void) { return mh_gc_run_finalizers_max(0); }

/* Every registered finalizer made ready by a collection in which
 * finalize_all is set, and run here, round after round while finalizers
 * register new ones (as bdwgc's GC_finalize_all does); then the batches
 * other threads took before are waited for, for at most about a second (a
 * finalizer that waits for this thread must not hang it).  The finalizer
 * thread takes no work meanwhile. */
static bool finalizers_left(bool *others) {
    mhi_lock(&G->lock);
    bool left = on_spans[SP_FINALIZER] || queue_head || await_head;
    size_t r = 0;
    for (run_batch *b = running; b; b = b->next) r++;
    *others = r > batch_depth; /* (this thread's own, when called from a finalizer) */
    mhi_unlock(&G->lock);
    return left;
}

MH_API size_t mh_gc_finalize_all(void) {
    (void)mhi_gc_thread_get();
    atomic_fetch_add(&fa_callers, 1);
    size_t n = 0;
    bool others;
    while (finalizers_left(&others)) {
        uint64_t cycles = mh_gc_cycles();
        atomic_fetch_add(&finalize_all, 1);
        mh_gc_collect(0);
        atomic_fetch_sub(&finalize_all, 1);
        size_t k = mh_gc_run_finalizers();
        n += k;
        if (!k && mh_gc_cycles() == cycles && !mh_gc_finalizers_pending()) break; /* (GC_dont_gc) */
    }
    static _Atomic uint32_t tick;
    for (int i = 0; i < 1000 && (finalizers_left(&others), others); i++)
        mhi_os_futex_wait(&tick, 0, 1); /* (1 ms) */
    atomic_fetch_sub(&fa_callers, 1);
    mhi_gc_finalizers_queued(); /* (anything left: the finalizer thread again) */
    return n;
}

MH_API size_t mh_gc_finalizers_pending(void) {
    return (size_t)atomic_load_explicit(&queue_len, memory_order_relaxed);
}

MH_API void mh_gc_set_finalize_on_demand(int on) { SWITCH_SET(GC_finalize_on_demand, on != 0); }
MH_API void mh_gc_set_finalizer_notifier(void (*fn)(void)) { SWITCH_SET(GC_finalizer_notifier, fn); }

static _Atomic uint32_t fin_wake; /* futex word: advanced when work is queued */
static _Atomic int fin_started;

static void *wait_wake(void *arg) {
    mhi_os_futex_wait(&fin_wake, (uint32_t)(uintptr_t)arg, -1);
    return NULL;
}

static void *finalizer_main(void *arg) {
    (void)arg;
    mh_gc_register_thread();
    for (;;) {
        uint32_t w = atomic_load_explicit(&fin_wake, memory_order_acquire);
        /* (finalization on demand, switched on meanwhile, stops it) */
        while (!SWITCH_GET(GC_finalize_on_demand) && !atomic_load(&fa_callers) &&
               run_some(RUN_BATCH)) {
        }
        /* (blocked while it sleeps: it holds no heap pointer) */
        if (atomic_load_explicit(&fin_wake, memory_order_acquire) == w)
            (void)mh_gc_do_blocking(wait_wake, (void *)(uintptr_t)w);
    }
    return NULL;
}

/* After every cycle (no lock held, the world running): with finalizers
 * ready, the notifier is told (on demand) or the finalizer thread woken. */
void mhi_gc_finalizers_queued(void) {
    if (!atomic_load_explicit(&queue_len, memory_order_relaxed)) return;
    if (SWITCH_GET(GC_finalize_on_demand)) {
        void (*n)(void) = SWITCH_GET(GC_finalizer_notifier);
        if (n) n();
        return;
    }
    int expect = 0;
    if (!atomic_load(&fin_started) && atomic_compare_exchange_strong(&fin_started, &expect, 1))
        if (!mhi_os_thread_start(finalizer_main, NULL)) atomic_store(&fin_started, 0);
    atomic_fetch_add_explicit(&fin_wake, 1, memory_order_release);
    mhi_os_futex_wake_all(&fin_wake);
}

void mhi_gc_final_fork_child(void) {
    atomic_store(&fin_started, 0);
    running = NULL; /* (other threads' batches: their threads are gone) */
}

/* The finalization metadata taken from the OS: records, the links'
 * index, the toggle references (counted in meta_sys). */
uint64_t mhi_gc_final_sys(void) {
    return atomic_load(&special_sys) + atomic_load(&ht_sys) + atomic_load(&tr_sys);
}

/* The bytes of records and of the links' index held now, counted in the
 * live heap by each pause (GC lock); *queued: of them, the records of
 * ready finalizers and cleanups (garbage once run, as G->final_bytes). */
uint64_t mhi_gc_final_live_locked(uint64_t *queued) {
    *queued = atomic_load_explicit(&queue_len, memory_order_relaxed) * sizeof(mhi_special);
    return recs_live * sizeof(mhi_special) + ht_cap * sizeof(link_slot);
}

/* For the verifier: records on s sorted and inside s, each naming s and
 * its place; the last one known, and s on the list of spans with
 * records. */
size_t mhi_gc_verify_specials_locked(mhi_span *s) {
    size_t errors = 0, prev = 0;
    int pk = 0;
    if (s->specials) {
        mhi_special *last = s->specials;
        while (last->next) last = last->next;
        MHI_VERIFY(&errors, s->gc_rec_last == last && s->gc_recs,
                   "gc span %p: last special or list of spans with specials wrong", (void *)s->base);
    }
    for (mhi_special *x = s->specials; x; x = x->next) {
        MHI_VERIFY(&errors, x->offset < s->nelems * mhi_gc_elem_size(s) &&
                                (x->offset > prev || (x->offset == prev && x->kind >= pk)),
                   "gc span %p: special at %zu out of order", (void *)s->base, x->offset);
        MHI_VERIFY(&errors, x->span == s && *x->pprev == x,
                   "gc span %p: special at %zu names another span or place", (void *)s->base,
                   x->offset);
        prev = x->offset;
        pk = x->kind;
    }
    return errors;
}
