/* gclinks.c - disappearing and long links (mh_gc_register_*_link, bdwgc's
 * GC_general_register_disappearing_link and friends): the links' index,
 * registering, moving and dropping links, and what the pause and explicit
 * frees do to them.  The records and the finalization steps that call
 * these are gcfinal.c's (gcfinal.h). */
#include <errno.h>

#include "gcfinal.h"

#define G (&mhi_gc_)

uint64_t mhi_gcf_links_live[2]; /* registered short and long links (GC lock) */

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
    if (cap > ht_cap) mhi_gcf_count_alloc((cap - ht_cap) * sizeof *n);
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
    uintptr_t v = (uintptr_t)obj | (mhi_gcf_container_of(link, &coff) ? LINK_IN_GC : 0);
    if (!ht_put(link_key(link, is_long), v ^ HIDE)) return false;
    link_count(link, v, 1);
    mhi_gcf_links_live[is_long]++;
    return true;
}

/* The link of slot e goes (the slot is left deleted: walks go on). */
static void link_drop(link_slot *e) {
    link_count(slot_link(e), e->obj ^ HIDE, -1);
    mhi_gcf_links_live[slot_long(e)]--;
    e->key = 1;
    e->obj = 0;
    ht_used--;
    ht_dead++;
}

/* A dying or freed object's weak handle reads NULL. */
static int register_link(void **link, const void *obj, bool is_long) {
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1))) {
        errno = EINVAL;
        return -1;
    }
    (void)mhi_gc_thread_get();
    size_t off;
    mhi_lock(&G->lock);
    mhi_span *s = mhi_gcf_object_of(obj, &off);
    if (!s) {
        mhi_unlock(&G->lock);
        errno = EINVAL;
        return -1;
    }
    mhi_gcf_init_locked();
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

/* (the pause) */
static bool object_marked(const void *o) {
    mhi_span *s = mhi_gc_span_of(o);
    return s && mhi_gcf_marked(s, (uintptr_t)o - s->base);
}

/* Is the GC object holding link marked (allocated, for one freed)? */
static bool location_lives(void **link) {
    mhi_span *s = mhi_gc_span_of(link);
    long i = s ? mhi_gc_object_index(s, (uintptr_t)link) : -1;
    return i >= 0 && mhi_gcf_marked(s, (size_t)i * mhi_gc_elem_size(s));
}

/* The links in the pause: step 1 (shorts: short links to unmarked
 * objects are cleared) or step 4 (longs: so are long links, and links
 * whose container is unmarked go without a write), or both. */
void mhi_gcf_links_walk(bool shorts, bool longs) {
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

void mhi_gcf_links_freed(mhi_span *s, uintptr_t lo, uintptr_t hi) {
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

uint64_t mhi_gcf_links_sys(void) { return atomic_load(&ht_sys); }
uint64_t mhi_gcf_links_bytes(void) { return ht_cap * sizeof(link_slot); }
