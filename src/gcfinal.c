/* gcfinal.c - the GC heap's specials: per-object records kept on their
 * span (the seed's specials), and on them finalizers and disappearing
 * links (gc.h, mheap_gc.h).
 *
 * A span's records form one list sorted by (offset, kind); offsets are
 * full width.  They come from one fixalloc.  On GC spans they are guarded
 * by the GC lock rather than the span's special lock: the collector reads
 * them in the pause, and no stopped thread may hold a lock it needs.  A
 * span with records has its page's bit set in its arena's `special`
 * bitmap, which reclaim checks (such a span is swept, never freed whole).
 *
 * Finalization, in the pause after the mark (bdwgc's order):
 *   1. short links to unmarked objects are cleared;
 *   2. every unmarked object with an ordered finalizer has its contents
 *      marked, not itself (ignore-self: pointers to itself are skipped;
 *      no-order: nothing);
 *   3. the finalizable objects still unmarked are ready: their finalizer
 *      records move to the queue, and they are marked with everything
 *      they reach, to live until their finalizer has run;
 *   4. long links to objects still unmarked are cleared.
 * An object that a finalizable object reaches is thus kept until that
 * finalizer has run, and a cycle of ordered finalizable objects is never
 * finalized (each keeps the next).  Queued objects are roots until their
 * finalizer runs: on the finalizer thread (started after the first cycle
 * that queues one, registered, so finalizers may allocate and resurrect),
 * or, on demand, when the program calls mh_gc_run_finalizers (told by the
 * notifier). */
#include <errno.h>

#include "gc.h"

#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

/* (sorted within an offset by kind) */
enum { SP_FINALIZER = 1, SP_LINK = 2, SP_LONG_LINK = 3, SP_CLEANUP = 4, SP_WEAK = 5 };

typedef struct mhi_special mhi_special;
struct mhi_special {
    mhi_special *next; /* on its span's list, or on the queue */
    mhi_span *span;    /* the span it is on */
    size_t offset;     /* of the object in its span */
    uint8_t kind;
    uint8_t mode; /* finalizers: MH_GC_FINALIZE_* */
    void *fn;     /* finalizer, cleanup: the function; link: the link's
                   * address; weak: the handle (a pointer-free GC object) */
    void *data;   /* finalizer, cleanup: the argument (a root) */
    void *obj;    /* queued: the object (NULL for a cleanup) */
};

/* Ready finalizers and cleanups are their records, off their span and on
 * the queue (GC lock): nothing is allocated in the pause. */
static mhi_fixalloc special_alloc; /* (GC lock) */
static _Atomic uint64_t special_sys;
static bool special_inited;
static mhi_special *queue_head, **queue_tail = &queue_head;
static _Atomic uint64_t queue_len;
static _Atomic int on_demand;
static void (*_Atomic notifier)(void);
static uint64_t links_live; /* registered links (GC lock) */
static uint64_t kind_live[SP_WEAK + 1]; /* records on spans, by kind (GC lock) */

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

bool mhi_gc_span_has_specials(const mhi_span *s) { return s->specials != NULL; }

/* The record of kind k at offset off of s (and *pp, the link to it or to
 * where it would go). */
static mhi_special *find(mhi_span *s, size_t off, int k, mhi_special ***pp) {
    mhi_special **p = &s->specials;
    for (; *p; p = &(*p)->next) {
        mhi_special *x = *p;
        if (x->offset > off || (x->offset == off && x->kind >= k)) break;
    }
    *pp = p;
    mhi_special *x = *p;
    return x && x->offset == off && x->kind == k ? x : NULL;
}

static bool is_link(int kind) { return kind == SP_LINK || kind == SP_LONG_LINK; }

/* ---- the links' index: link address -> its record (GC lock) ----
 * Open addressing, linear probing; memory from the OS (link addresses
 * are not roots).  A link belongs to one object at a time. */
typedef struct {
    uintptr_t link; /* 0: empty, 1: deleted */
    mhi_special *rec;
} link_slot;
static link_slot *ht;
static size_t ht_cap, ht_used, ht_dead;
static _Atomic uint64_t ht_sys;

static size_t ht_hash(uintptr_t k) { return (size_t)((k >> 3) * 0x9e3779b97f4a7c15ULL >> 17); }

static link_slot *ht_find(uintptr_t link) {
    if (!ht_cap) return NULL;
    for (size_t i = ht_hash(link) & (ht_cap - 1);; i = (i + 1) & (ht_cap - 1)) {
        if (ht[i].link == link) return &ht[i];
        if (ht[i].link == 0) return NULL;
    }
}

static bool ht_grow(void) {
    /* (twice the size, unless deleted slots were most of the load) */
    size_t cap = !ht_cap ? 1024 : ht_used * 4 > ht_cap ? ht_cap * 2 : ht_cap;
    link_slot *n = mhi_os_alloc(cap * sizeof *n, &ht_sys);
    if (!n) return false;
    for (size_t i = 0; i < ht_cap; i++)
        if (ht[i].link > 1)
            for (size_t j = ht_hash(ht[i].link) & (cap - 1);; j = (j + 1) & (cap - 1))
                if (!n[j].link) {
                    n[j] = ht[i];
                    break;
                }
    if (ht) mhi_os_release(ht, ht_cap * sizeof *ht, &ht_sys);
    ht = n;
    ht_cap = cap;
    ht_dead = 0;
    return true;
}

static bool ht_put(uintptr_t link, mhi_special *rec) {
    if ((ht_used + ht_dead + 1) * 2 > ht_cap && !ht_grow()) return false;
    for (size_t i = ht_hash(link) & (ht_cap - 1);; i = (i + 1) & (ht_cap - 1))
        if (ht[i].link <= 1) {
            if (ht[i].link == 1) ht_dead--;
            ht[i] = (link_slot){link, rec};
            ht_used++;
            return true;
        }
}

static void ht_del(uintptr_t link) {
    link_slot *e = ht_find(link);
    if (!e) return;
    e->link = 1;
    e->rec = NULL;
    ht_used--;
    ht_dead++;
}

/* A dying or freed object's record: a link or a weak handle reads NULL. */
static void clear_ref(mhi_special *x) {
    if (is_link(x->kind)) *(void **)x->fn = NULL;
    else if (x->kind == SP_WEAK) __atomic_store_n((void **)x->fn, NULL, __ATOMIC_RELAXED);
}

/* Take *p off s's list (and a link out of the index), keeping it. */
static mhi_special *detach(mhi_span *s, mhi_special **p) {
    mhi_special *x = *p;
    *p = x->next;
    x->next = NULL;
    kind_live[x->kind]--;
    if (is_link(x->kind)) {
        links_live--;
        ht_del((uintptr_t)x->fn);
    }
    if (!s->specials) special_bit(s, false);
    return x;
}

static void unlink_special(mhi_span *s, mhi_special **p) {
    mhi_fixalloc_free(&special_alloc, detach(s, p));
}

/* The link to rec on its span's list. */
static mhi_special **link_to(mhi_special *rec) {
    mhi_special **p = &rec->span->specials;
    while (*p != rec) p = &(*p)->next;
    return p;
}

/* A new record on s at *p (its place in the order): NULL with errno
 * ENOMEM. */
static mhi_special *insert(mhi_span *s, mhi_special **p, size_t off, int kind, int mode, void *fn,
                           void *data) {
    mhi_special *x = mhi_fixalloc_alloc(&special_alloc);
    if (!x) {
        errno = ENOMEM;
        return NULL;
    }
    *x = (mhi_special){*p, s, off, (uint8_t)kind, (uint8_t)mode, fn, data, NULL};
    *p = x;
    kind_live[kind]++;
    special_bit(s, true);
    return x;
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

MH_API int mh_gc_register_finalizer(void *obj, mh_gc_finalizer_fn fn, void *data, int mode,
                                    mh_gc_finalizer_fn *old_fn, void **old_data) {
    if (old_fn) *old_fn = NULL;
    if (old_data) *old_data = NULL;
    if (mode < MH_GC_FINALIZE_ORDERED || mode > MH_GC_FINALIZE_NO_ORDER) {
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
    mhi_special **p, *x = find(s, off, SP_FINALIZER, &p);
    if (x) {
        if (old_fn) *old_fn = (mh_gc_finalizer_fn)x->fn;
        if (old_data) *old_data = x->data;
        if (!fn) {
            unlink_special(s, p);
        } else {
            x->fn = (void *)fn;
            x->data = data;
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

static int register_link(void **link, const void *obj, int kind) {
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
    /* A link registered already (for this object or another) is moved:
     * it belongs to its last object. */
    int was = 0;
    link_slot *e = ht_find((uintptr_t)link);
    if (e) {
        mhi_special *old = e->rec;
        if (old->span == s && old->offset == off && old->kind == kind) {
            mhi_unlock(&G->lock);
            return 1;
        }
        unlink_special(old->span, link_to(old));
        was = 1;
    }
    mhi_special **p;
    (void)find(s, off, kind, &p);
    mhi_special *x = insert(s, p, off, kind, 0, (void *)link, NULL);
    if (x) {
        links_live++;
        if (!ht_put((uintptr_t)link, x)) {
            unlink_special(s, p); /* (*p is x) */
            errno = ENOMEM;
            x = NULL;
        }
    }
    mhi_unlock(&G->lock);
    return x ? was : -1;
}

MH_API int mh_gc_register_disappearing_link(void **link, const void *obj) {
    return register_link(link, obj, SP_LINK);
}
MH_API int mh_gc_register_long_link(void **link, const void *obj) {
    return register_link(link, obj, SP_LONG_LINK);
}

/* Remove link's record (found by the link's address: its value may be
 * disguised); returns whether it was registered. */
static int unregister_link(void **link) {
    if (!link) return 0;
    mhi_lock(&G->lock);
    link_slot *e = ht_find((uintptr_t)link);
    if (e) unlink_special(e->rec->span, link_to(e->rec));
    mhi_unlock(&G->lock);
    return e != NULL;
}

MH_API int mh_gc_unregister_link(void **link) { return unregister_link(link); }

MH_API int mh_gc_move_link(void **link, void **new_link, int long_link) {
    if (!new_link || ((uintptr_t)new_link & (sizeof(void *) - 1))) {
        errno = EINVAL;
        return -1;
    }
    mhi_lock(&G->lock);
    link_slot *e = ht_find((uintptr_t)link);
    int r = 0;
    if (!e || (e->rec->kind == SP_LONG_LINK) != (long_link != 0)) {
        r = -2; /* not registered (as that kind) */
    } else if (new_link != link) {
        if (ht_find((uintptr_t)new_link)) {
            r = 1; /* new_link has an object already */
        } else {
            mhi_special *rec = e->rec;
            ht_del((uintptr_t)link);
            if (ht_put((uintptr_t)new_link, rec)) {
                rec->fn = (void *)new_link;
            } else {
                (void)ht_put((uintptr_t)link, rec); /* (a slot was just freed) */
                r = -1;
                errno = ENOMEM;
            }
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

/* ---- in the pause ---- */

typedef struct {
    int phase;
} walk_ctx;

static bool marked(const mhi_span *s, size_t off) {
    if (s->gc_kind == MHI_GC_UNCOLL) return true; /* (alive until freed; marked or not) */
    size_t size = mhi_gc_elem_size(s);
    uint32_t i = (uint32_t)(off / size);
    return mhi_gc_marks(s)[i >> 6] >> (i & 63) & 1;
}

static void clear_links(mhi_span *s, int kind, int kind2) {
    for (mhi_special **p = &s->specials; *p;) {
        mhi_special *x = *p;
        if ((x->kind == kind || x->kind == kind2) && !marked(s, x->offset)) {
            clear_ref(x);
            unlink_special(s, p);
            continue;
        }
        p = &x->next;
    }
}

/* Move record x (detached) to the queue, for obj (NULL: a cleanup). */
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
    if (ph == 0) {
        /* Roots: finalizers' and cleanups' arguments, weak handles. */
        for (mhi_special *x = s->specials; x; x = x->next) {
            if (x->kind == SP_FINALIZER || x->kind == SP_CLEANUP) mhi_gc_mark_word((uintptr_t)x->data);
            if (x->kind == SP_WEAK) mhi_gc_mark_word((uintptr_t)x->fn);
        }
    } else if (ph == 1) {
        clear_links(s, SP_LINK, SP_WEAK);
    } else if (ph == 2) {
        for (mhi_special *x = s->specials; x; x = x->next)
            if (x->kind == SP_FINALIZER && x->mode != MH_GC_FINALIZE_NO_ORDER &&
                s->gc_kind != MHI_GC_NOSCAN && !marked(s, x->offset)) {
                uintptr_t o = s->base + x->offset;
                mhi_gc_mark_contents(o, o + mhi_gc_elem_size(s),
                                     x->mode == MH_GC_FINALIZE_IGNORE_SELF ? o : 0);
            }
    } else if (ph == 3) {
        /* (queued here, marked after the whole walk: marking one must not
         * hide another that is just as unreachable) */
        for (mhi_special **p = &s->specials; *p;) {
            mhi_special *x = *p;
            if (x->kind == SP_FINALIZER && !marked(s, x->offset)) {
                enqueue(detach(s, p), (void *)(s->base + x->offset));
                continue;
            }
            p = &x->next;
        }
    } else if (ph == 4) {
        clear_links(s, SP_LONG_LINK, 0);
        /* Cleanups of objects gone for good: queued without their object,
         * which the sweep frees. */
        for (mhi_special **p = &s->specials; *p;) {
            mhi_special *x = *p;
            if (x->kind == SP_CLEANUP && !marked(s, x->offset)) {
                enqueue(detach(s, p), NULL);
                continue;
            }
            p = &x->next;
        }
    }
}

/* Links whose own location is in an object that dies in this cycle go,
 * without a write (bdwgc's dangling links): the memory is reused. */
static void drop_dangling_links(void) {
    for (size_t i = 0; i < ht_cap; i++) {
        if (ht[i].link <= 1) continue;
        uintptr_t l = ht[i].link;
        mhi_span *s = mhi_gc_span_of((const void *)l);
        if (!s || s->gc_kind == MHI_GC_UNCOLL) continue;
        uint32_t k = mhi_span_index(s, (const void *)l);
        if (k >= s->nelems || !mhi_gc_allocated(s, k)) continue;
        if (marked(s, (size_t)k * mhi_gc_elem_size(s))) continue;
        mhi_special *rec = ht[i].rec;
        unlink_special(rec->span, link_to(rec)); /* (marks slot i deleted) */
    }
}

uint64_t mhi_gc_finalize_locked(void) {
    mhi_lock_assert_held(&G->lock);
    if (!special_inited) return 0;
    uint64_t before = atomic_load_explicit(&queue_len, memory_order_relaxed);
    /* The queue's objects and arguments are roots (not run yet). */
    for (mhi_special *q = queue_head; q; q = q->next) {
        if (q->obj) mhi_gc_mark_object(q->obj);
        mhi_gc_mark_word((uintptr_t)q->data);
    }
    mhi_special **newly = queue_tail;
    const uint64_t *n = kind_live;
    /* (a step no record needs skips its walk over every span) */
    bool needed[5] = {n[SP_FINALIZER] || n[SP_CLEANUP] || n[SP_WEAK], n[SP_LINK] || n[SP_WEAK],
                      n[SP_FINALIZER] != 0, n[SP_FINALIZER] != 0,
                      n[SP_LONG_LINK] || n[SP_CLEANUP]};
    for (int ph = 0; ph <= 4; ph++) {
        walk_ctx c = {ph};
        if (needed[ph]) mhi_gc_each_span_locked(phase, &c);
        if (ph == 3) {
            /* What the newly ready objects reach lives until they are
             * finalized. */
            for (mhi_special *q = *newly; q; q = q->next) mhi_gc_mark_object(q->obj);
        }
        /* (marks are complete before the next step reads them) */
        mhi_gc_mark_settle();
        if ((ph == 1 || ph == 4) && links_live) drop_dangling_links();
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
}

/* Object off of s is freed explicitly (or s is): its records go. */
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
}

/* ---- running finalizers ---- */

/* Take one ready finalizer or cleanup and run it; false if none. */
static bool run_one(void) {
    /* (copied to this frame under the lock: from the unlock on, a
     * collection finds the object and argument here, and nowhere else) */
    void *volatile obj, *volatile data;
    void *fn;
    mhi_lock(&G->lock);
    mhi_special *q = queue_head;
    if (q) {
        queue_head = q->next;
        if (!queue_head) queue_tail = &queue_head;
        atomic_fetch_sub_explicit(&queue_len, 1, memory_order_relaxed);
        obj = q->obj;
        data = q->data;
        fn = q->fn;
        mhi_fixalloc_free(&special_alloc, q);
    }
    mhi_unlock(&G->lock);
    if (!q) return false;
    if (obj) ((mh_gc_finalizer_fn)fn)(obj, data);
    else ((void (*)(void *))(void (*)(void))fn)(data); /* a cleanup */
    obj = data = NULL;
    return true;
}

MH_API size_t mh_gc_run_finalizers(void) {
    (void)mhi_gc_thread_get();
    size_t n = 0;
    while (run_one()) n++;
    return n;
}

MH_API size_t mh_gc_finalizers_pending(void) {
    return (size_t)atomic_load_explicit(&queue_len, memory_order_relaxed);
}

MH_API void mh_gc_set_finalize_on_demand(int on) { atomic_store(&on_demand, on != 0); }
MH_API void mh_gc_set_finalizer_notifier(void (*fn)(void)) { atomic_store(&notifier, fn); }

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
        while (run_one()) {
        }
        /* (blocked while it sleeps: it holds no heap pointer) */
        if (atomic_load_explicit(&fin_wake, memory_order_acquire) == w)
            (void)mh_gc_do_blocking(wait_wake, (void *)(uintptr_t)w);
    }
    return NULL;
}

/* After a cycle that queued finalizers (no lock held, the world running). */
void mhi_gc_finalizers_queued(void) {
    if (!atomic_load_explicit(&queue_len, memory_order_relaxed)) return;
    void (*n)(void) = atomic_load(&notifier);
    if (atomic_load(&on_demand)) {
        if (n) n();
        return;
    }
    int expect = 0;
    if (!atomic_load(&fin_started) && atomic_compare_exchange_strong(&fin_started, &expect, 1))
        if (!mhi_os_thread_start(finalizer_main, NULL)) atomic_store(&fin_started, 0);
    atomic_fetch_add_explicit(&fin_wake, 1, memory_order_release);
    mhi_os_futex_wake_all(&fin_wake);
}

void mhi_gc_final_fork_child(void) { atomic_store(&fin_started, 0); }

/* For the verifier: records on s sorted, inside s, and links counted. */
size_t mhi_gc_verify_specials_locked(mhi_span *s) {
    size_t errors = 0, prev = 0;
    int pk = 0;
    for (mhi_special *x = s->specials; x; x = x->next) {
        MHI_VERIFY(&errors, x->offset < s->nelems * mhi_gc_elem_size(s) &&
                                (x->offset > prev || (x->offset == prev && x->kind >= pk)),
                   "gc span %p: special at %zu out of order", (void *)s->base, x->offset);
        prev = x->offset;
        pk = x->kind;
    }
    return errors;
}
