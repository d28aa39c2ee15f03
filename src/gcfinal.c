/* gcfinal.c - the GC heap's specials: per-object records kept on their
 * span (the seed's specials), and on them finalizers, cleanups and weak
 * handles (gc.h, mheap_gc.h); the toggle references, in a table of their
 * own; and the finalization steps of the pause.  Disappearing and long
 * links, in an index of their own, are gclinks.c's; running the ready
 * finalizers is gcfinrun.c's (gcfinal.h holds what the three share).
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

#include "gcfinal.h"

#include "options.h"
#include "pageheap.h"
#include "print.h"

#define G (&mhi_gc_)

/* Ready finalizers and cleanups (gcfinal.h). */
static mhi_fixalloc special_alloc; /* (GC lock) */
static _Atomic uint64_t special_sys;
static bool special_inited;
mhi_special *mhi_gcf_queue_head, **mhi_gcf_queue_tail = &mhi_gcf_queue_head;
_Atomic uint64_t mhi_gcf_queue_len;
mhi_special *mhi_gcf_await_head;
static void (*_Atomic await_fn)(void *obj);
run_batch *mhi_gcf_running;
static uint64_t recs_live;       /* records allocated and not freed (GC lock) */
static bool any_unreachable;     /* an unreachable finalizer was registered */
static void *cycle_found;        /* a finalization cycle, for the report */
static bool cycle_reported;      /* (world lock) */
_Atomic int mhi_gcf_all; /* (gcfinal.h) */

void mhi_gcf_init_locked(void) {
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
void mhi_gcf_count_alloc(uint64_t bytes) {
    atomic_fetch_add_explicit(&G->alloc_since, bytes, memory_order_relaxed);
}
static mhi_special *rec_new(void) {
    mhi_special *x = mhi_fixalloc_alloc(&special_alloc);
    if (x) {
        recs_live++;
        mhi_gcf_count_alloc(sizeof *x);
    }
    return x;
}
void mhi_gcf_rec_free(mhi_special *x) {
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
mhi_span *mhi_gcf_object_of(const void *p, size_t *off) {
    mhi_span *s = mhi_gc_span_of(p);
    if (!s) return NULL;
    long i = mhi_gc_object_index(s, (uintptr_t)p);
    if (i < 0) return NULL;
    *off = (size_t)i * mhi_gc_elem_size(s);
    return (uintptr_t)p == s->base + *off ? s : NULL;
}

/* The GC span and offset of the allocated object holding p, or NULL. */
mhi_span *mhi_gcf_container_of(const void *p, size_t *off) {
    mhi_span *s = mhi_gc_span_of(p);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)p) : -1;
    if (i < 0) return NULL;
    *off = (size_t)i * mhi_gc_elem_size(s);
    return s;
}

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
    mhi_gcf_rec_free(take(s, p));
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
    mhi_span *s = mhi_gcf_object_of(obj, &off);
    if (!s || s->gc_kind == MHI_GC_UNCOLL) {
        mhi_unlock(&G->lock);
        errno = EINVAL; /* not the start of a collectable GC object */
        return -1;
    }
    mhi_gcf_init_locked();
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

/* ---- cleanups and weak handles ---- */

MH_API void *mh_gc_add_cleanup(void *obj, void (*fn)(void *arg), void *arg) {
    (void)mhi_gc_thread_get();
    size_t off;
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    mhi_lock(&G->lock);
    mhi_span *s = mhi_gcf_object_of(obj, &off);
    if (!s || s->gc_kind == MHI_GC_UNCOLL) {
        mhi_unlock(&G->lock);
        errno = EINVAL;
        return NULL;
    }
    mhi_gcf_init_locked();
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
    mhi_span *s = mhi_gcf_object_of(obj, &off);
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
    mhi_gcf_init_locked();
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

bool mhi_gcf_marked(const mhi_span *s, size_t off) {
    if (s->gc_kind == MHI_GC_UNCOLL) return true; /* (alive until freed; marked or not) */
    size_t size = mhi_gc_elem_size(s);
    uint32_t i = (uint32_t)(off / size);
    return mhi_gc_marks(s)[i >> 6] >> (i & 63) & 1;
}

/* Weak handles of unmarked objects are cleared. */
static void clear_weak(mhi_span *s) {
    for (mhi_special **p = &s->specials; *p;) {
        mhi_special *x = *p;
        if (x->kind == SP_WEAK && !mhi_gcf_marked(s, x->offset)) {
            clear_ref(x);
            unlink_special(s, p);
            continue;
        }
        p = &x->next;
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
    *mhi_gcf_queue_tail = x;
    mhi_gcf_queue_tail = &x->next;
    atomic_fetch_add_explicit(&mhi_gcf_queue_len, 1, memory_order_relaxed);
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
            if (x->kind != SP_FINALIZER || mhi_gcf_marked(s, x->offset)) continue;
            /* (a candidate for step 3: unmarked now) */
            x->obj = NULL;
            *cand_tail = x;
            cand_tail = &x->obj;
            if (x->mode != MH_GC_FINALIZE_NO_ORDER && s->gc_kind != MHI_GC_NOSCAN) {
                uintptr_t o = s->base + x->offset;
                mhi_gc_mark_contents(o, o + mhi_gc_elem_size(s),
                                     x->mode == MH_GC_FINALIZE_IGNORE_SELF ? o : 0);
                /* (marked by what it reaches: it is on a cycle) */
                if (!cycle_found && mhi_gcf_marked(s, x->offset)) cycle_found = (void *)o;
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
            if (x->kind == SP_CLEANUP && !mhi_gcf_marked(s, x->offset)) {
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
        if (!all && !mhi_gcf_marked(x->span, x->offset))
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
    bool hold = java && any_unreachable && !atomic_load(&mhi_gcf_all);
    for (mhi_special *q = *newly; q; q = q->next)
        if (!hold || q->mode != MH_GC_FINALIZE_UNREACHABLE) mhi_gc_mark_object(q->obj);
    mhi_gc_mark_settle();
    if (!hold) return;
    mhi_special **p = newly;
    while (*p) {
        mhi_special *q = *p;
        if (q->mode == MH_GC_FINALIZE_UNREACHABLE && mhi_gcf_marked(q->span, q->offset)) {
            *p = q->next;
            atomic_fetch_sub_explicit(&mhi_gcf_queue_len, 1, memory_order_relaxed);
            q->obj = NULL;
            attach(q);
            continue;
        }
        p = &q->next;
    }
    mhi_gcf_queue_tail = p;
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
    uint64_t before = atomic_load_explicit(&mhi_gcf_queue_len, memory_order_relaxed);
    /* The objects of strong toggle references are roots, live as any
     * (rooted_extra); the queue's objects and arguments too, until they
     * have run (final_extra: garbage once run, they earn no growth). */
    for (size_t i = 0; i < tr_len; i++)
        if (tr[i] && !(tr[i] & 1)) mhi_gc_mark_object((void *)tr[i]);
    rooted_extra = mhi_gc_mark_extra();
    for (mhi_special *q = mhi_gcf_queue_head; q; q = q->next) {
        if (q->obj) mhi_gc_mark_object(q->obj);
        mhi_gc_mark_word((uintptr_t)q->data);
    }
    for (mhi_special *q = mhi_gcf_await_head; q; q = q->next) {
        mhi_gc_mark_object(q->obj);
        mhi_gc_mark_word((uintptr_t)q->data);
    }
    for (run_batch *b = mhi_gcf_running; b; b = b->next) /* (running, or run already) */
        for (mhi_special *q = b->recs; q; q = q->next) {
            if (q->obj) mhi_gc_mark_object(q->obj);
            mhi_gc_mark_word((uintptr_t)q->data);
        }
    final_extra = mhi_gc_mark_extra();
    mhi_special **newly = mhi_gcf_queue_tail;
    /* Each step walks the spans with records, and only when some record
     * is of a kind it handles; without finalizers nothing is marked after
     * step 0, and steps 1 and 4 are one walk. */
    bool with4 = !on_spans[SP_FINALIZER];
    if (special_inited)
        for (int ph = 0; ph <= 4; ph++) {
            walk_ctx c = {ph, atomic_load(&mhi_gcf_all) != 0, with4};
            bool links = mhi_gcf_links_live[0] + mhi_gcf_links_live[1] != 0;
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
            if (ph == 1 && (mhi_gcf_links_live[0] || (with4 && links))) mhi_gcf_links_walk(true, with4);
            if (ph == 4 && !with4 && links) mhi_gcf_links_walk(false, true);
            /* (marks are complete before the next step reads them) */
            mhi_gc_mark_settle();
            /* (finalizers' arguments and weak handles' targets: live) */
            if (ph == 0) rooted_extra += mhi_gc_mark_extra();
            if (ph == 3) {
                keep_ready(newly);
                /* With an await function, the newly ready wait off the
                 * queue until it has been called for each. */
                if (*newly && atomic_load(&await_fn)) {
                    mhi_special **t = &mhi_gcf_await_head;
                    while (*t) t = &(*t)->next;
                    *t = *newly;
                    *newly = NULL;
                    mhi_gcf_queue_tail = newly;
                }
            }
        }
    /* Weak toggle references to objects gone for good are cleared. */
    for (size_t i = 0; i < tr_len; i++) {
        size_t off;
        mhi_span *s;
        if ((tr[i] & 1) && (!(s = mhi_gcf_object_of((void *)(tr[i] & ~(uintptr_t)1), &off)) || !mhi_gcf_marked(s, off)))
            tr[i] = 0;
    }
    return atomic_load_explicit(&mhi_gcf_queue_len, memory_order_relaxed) - before;
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
        mhi_gcf_links_freed(s, lo, all ? s->base + (uintptr_t)s->nelems * size : lo + size);
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
    mhi_special *w = mhi_gcf_await_head;
    mhi_gcf_await_head = NULL;
    mhi_unlock(&G->lock);
    if (!w) return;
    void (*fn)(void *) = atomic_load(&await_fn);
    /* (off every list, reachable from here only: the world lock keeps
     * collections away until they are on the queue) */
    mhi_special **last = &w;
    for (; *last; last = &(*last)->next)
        if (fn) fn((*last)->obj);
    mhi_lock(&G->lock);
    *mhi_gcf_queue_tail = w;
    mhi_gcf_queue_tail = last;
    mhi_unlock(&G->lock);
}


/* (gcfinal.h) */
uint64_t mhi_gcf_finalizers_registered_locked(void) { return on_spans[SP_FINALIZER]; }

/* The finalization metadata taken from the OS: records, the links'
 * index, the toggle references (counted in meta_sys). */
uint64_t mhi_gc_final_sys(void) {
    return atomic_load(&special_sys) + mhi_gcf_links_sys() + atomic_load(&tr_sys);
}

/* The bytes of records and of the links' index held now, counted in the
 * live heap by each pause (GC lock); *queued: of them, the records of
 * ready finalizers and cleanups (garbage once run, as G->final_bytes). */
uint64_t mhi_gc_final_live_locked(uint64_t *queued) {
    *queued = atomic_load_explicit(&mhi_gcf_queue_len, memory_order_relaxed) * sizeof(mhi_special);
    return recs_live * sizeof(mhi_special) + mhi_gcf_links_bytes();
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
