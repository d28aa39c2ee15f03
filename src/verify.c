/* verify.c - the page heap's verifier (mhi_heap_verify, pageheap.h).
 *
 * Under the heap lock it walks every arena in address order and checks
 * that spans tile the committed pages, the map, the per-page bitmaps,
 * coalescing, the free structures (freespans.c) and the statistics. */
#include "pageheap.h"

#include "print.h"

#define H MHI_H

/* What the walk counted. */
typedef struct {
    size_t errors;
    uint64_t npg_free, npg_inuse, npg_manual, npg_scav, ncommitted;
    uint64_t nfree, ninuse, nmanual;
    mhi_span *prev; /* previous span in address order */
    uintptr_t next; /* end of the previous span */
} walk;

/* The pages of span s, which starts at page p of arena ar. */
static void verify_pages(walk *w, mhi_arena *ar, size_t p, mhi_span *s) {
    uintptr_t a = s->base, end = mhi_span_end(s);
    bool isfree = s->state == MHI_SPAN_FREE;
    MHI_VERIFY(&w->errors, mhi_arena_bit(ar->inuse, p) == (s->state == MHI_SPAN_INUSE),
               "in-use bit wrong for span %p", (void *)a);
    for (uintptr_t q = a; q < end; q += MHI_PAGE_SIZE) {
        mhi_arena *qa = mhi_arena_of(q);
        size_t qp = mhi_arena_page(q);
        MHI_VERIFY(&w->errors, mhi_arena_bit(qa->free, qp) == isfree,
                   "free bit wrong at %p (span %p)", (void *)q, (void *)a);
        if (mhi_arena_bit(qa->scav, qp)) {
            w->npg_scav++;
            MHI_VERIFY(&w->errors, isfree, "scavenged bit on in-use page %p", (void *)q);
        }
        MHI_VERIFY(&w->errors, !mhi_arena_bit(qa->rel, qp) || mhi_arena_bit(qa->scav, qp),
                   "released bit without scavenged bit at %p", (void *)q);
        if (!isfree)
            MHI_VERIFY(&w->errors, mhi_arena_span(qa, q) == s, "page %p of span %p not mapped",
                       (void *)q, (void *)a);
        if (q != a)
            MHI_VERIFY(&w->errors, !mhi_arena_bit(qa->inuse, qp), "in-use bit inside span %p",
                       (void *)a);
        /* The fast map: 0, or for a small span in use this page's place
         * and the class (0 on some pages while trimming, under the span's
         * owner's lock, closes or opens it) */
        uint32_t fc = atomic_load_explicit(&qa->fast[qp].cls, memory_order_acquire);
        /* (off only where cls says open: it was stored before cls, and is
         * stored again only once its span died, which takes the heap lock
         * held here; a span being opened now writes it under its central
         * lock alone) */
        uint32_t fo = fc ? qa->fast[qp].off : 0;
        MHI_VERIFY(&w->errors,
                   fc == 0 || (s->state == MHI_SPAN_INUSE && mhi_kind_small(mhi_span_kind(s)) &&
                               fc == s->sizeclass && fo == q - a),
                   "page %p of span %p (state %d, kind %d, class %d): fast map class %u at %x",
                   (void *)q, (void *)a, s->state, s->kind, s->sizeclass, fc, fo);
    }
}

/* The span at page p of ar (which starts it); false if the walk of this
 * arena must stop. */
static bool verify_span(walk *w, mhi_arena *ar, size_t p, mhi_span *s) {
    uintptr_t a = s->base;
    MHI_VERIFY(&w->errors, s->npages > 0, "empty span at %p", (void *)a);
    uintptr_t end = mhi_span_end(s);
    MHI_VERIFY(&w->errors, mhi_heap_page_span(end - MHI_PAGE_SIZE) == s,
               "last page of %p not mapped", (void *)a);
    mhi_arena *last_ar = mhi_arena_of(end - MHI_PAGE_SIZE);
    MHI_VERIFY(&w->errors, last_ar && mhi_arena_page(end - MHI_PAGE_SIZE) < last_ar->ncommitted,
               "span %p runs past the committed heap", (void *)a);
    if (!last_ar) return false;
    switch (s->state) {
    case MHI_SPAN_FREE:
        w->nfree++;
        w->npg_free += s->npages;
        MHI_VERIFY(&w->errors,
                   !(w->prev && w->prev->state == MHI_SPAN_FREE && mhi_span_end(w->prev) == a),
                   "free spans %p and %p not coalesced", (void *)w->prev->base, (void *)a);
        break;
    case MHI_SPAN_INUSE: w->ninuse++; w->npg_inuse += s->npages; break;
    case MHI_SPAN_MANUAL: w->nmanual++; w->npg_manual += s->npages; break;
    default: MHI_VERIFY(&w->errors, 0, "span %p has bad state %d", (void *)a, s->state);
    }
    /* (a span in use may have specials, under its speciallock; a free one
     * never: freeing a span with specials aborts) */
    MHI_VERIFY(&w->errors, s->state != MHI_SPAN_FREE || !s->specials,
               "free span %p has specials", (void *)a);
    /* (only a small span in use opens its objects to free's fast path;
     * trimming switches SMALL and SMALL_REL, and the limit with them, under
     * the span's owner's lock, not this one, so either kind may be read
     * with either limit here: mhi_span_verify_small checks the pair) */
    MHI_VERIFY(&w->errors,
               mhi_span_fast_limit(s) == 0 ||
                   (s->state == MHI_SPAN_INUSE && mhi_kind_small(mhi_span_kind(s))),
               "span %p (state %d, kind %d) open to the free fast path", (void *)a, s->state,
               s->kind);
    verify_pages(w, ar, p, s);
    w->prev = s;
    w->next = end;
    return true;
}

/* Every span of arena ar, in address order. */
static void verify_arena(walk *w, mhi_arena *ar) {
    MHI_VERIFY(&w->errors, !ar->prev || ar->prev->base < ar->base,
               "arena list out of order at %p", (void *)ar->base);
    MHI_VERIFY(&w->errors, mhi_arena_of(ar->base) == ar, "arena map does not find arena %p",
               (void *)ar->base);
    w->ncommitted += ar->ncommitted;
    for (size_t p = ar->ncommitted; p < MHI_ARENA_PAGES; p++) {
        uintptr_t a = ar->base + (p << MHI_PAGE_SHIFT);
        MHI_VERIFY(&w->errors,
                   !mhi_arena_bit(ar->free, p) && !mhi_arena_bit(ar->scav, p) &&
                       !mhi_arena_bit(ar->inuse, p),
                   "bits set on uncommitted page %p", (void *)a);
        MHI_VERIFY(&w->errors, mhi_arena_span(ar, a) == NULL, "uncommitted page %p is mapped",
                   (void *)a);
    }
    size_t p = 0;
    if (w->next > ar->base) /* a span continues from below */
        p = w->next >= ar->base + MHI_ARENA_SIZE ? MHI_ARENA_PAGES
                                                 : (w->next - ar->base) >> MHI_PAGE_SHIFT;
    while (p < ar->ncommitted) {
        uintptr_t a = ar->base + (p << MHI_PAGE_SHIFT);
        mhi_span *s = mhi_arena_span(ar, a);
        if (!s || s->base != a) {
            MHI_VERIFY(&w->errors, 0, "page %p does not start a span (map %p)", (void *)a,
                       (void *)s);
            p++;
            continue;
        }
        if (!verify_span(w, ar, p, s)) break;
        if (w->next > ar->base + MHI_ARENA_SIZE) break; /* continues in the next arena */
        p = (w->next - ar->base) >> MHI_PAGE_SHIFT;
    }
}

/* The statistics add up to what the walk counted. */
static void verify_stats(walk *w) {
    const mhi_heap_stats *st = &H->stats;
    size_t *e = &w->errors;
    MHI_VERIFY(e, st->heap_idle == w->npg_free << MHI_PAGE_SHIFT, "idle %zu != free pages %zu",
               (size_t)st->heap_idle, (size_t)(w->npg_free << MHI_PAGE_SHIFT));
    MHI_VERIFY(e, st->heap_inuse == (w->npg_inuse + w->npg_manual) << MHI_PAGE_SHIFT,
               "inuse %zu wrong", (size_t)st->heap_inuse);
    MHI_VERIFY(e, st->heap_manual == w->npg_manual << MHI_PAGE_SHIFT, "manual %zu wrong",
               (size_t)st->heap_manual);
    MHI_VERIFY(e, st->heap_released == w->npg_scav << MHI_PAGE_SHIFT,
               "released %zu != scavenged pages %zu", (size_t)st->heap_released,
               (size_t)(w->npg_scav << MHI_PAGE_SHIFT));
    MHI_VERIFY(e, st->heap_sys == st->heap_inuse + st->heap_idle, "sys %zu != inuse + idle",
               (size_t)st->heap_sys);
    MHI_VERIFY(e, st->heap_sys == w->ncommitted << MHI_PAGE_SHIFT,
               "sys %zu != committed arena pages", (size_t)st->heap_sys);
    MHI_VERIFY(e, st->heap_sys == atomic_load(&mhi_arena_stat.committed),
               "sys != arena committed bytes");
    MHI_VERIFY(e,
               st->nspan_free == w->nfree && st->nspan_inuse == w->ninuse &&
                   st->nspan_manual == w->nmanual,
               "span counts %zu/%zu/%zu, found %zu/%zu/%zu", (size_t)st->nspan_free,
               (size_t)st->nspan_inuse, (size_t)st->nspan_manual, (size_t)w->nfree,
               (size_t)w->ninuse, (size_t)w->nmanual);
    MHI_VERIFY(e, H->spanalloc.inuse == w->nfree + w->ninuse + w->nmanual,
               "span allocator has %zu live, heap has %zu spans", (size_t)H->spanalloc.inuse,
               (size_t)(w->nfree + w->ninuse + w->nmanual));
}

size_t mhi_heap_verify(void) {
    mhi_lock(&H->lock);
    mhi_heap_init_locked();
    walk w = {0};
    for (mhi_arena *ar = mhi_arena_list; ar; ar = ar->next) verify_arena(&w, ar);
    /* The free structures hold exactly the free spans. */
    size_t nlisted = mhi_free_verify_locked(&w.errors);
    MHI_VERIFY(&w.errors, nlisted == w.nfree, "free structures hold %zu spans, heap has %zu",
               nlisted, (size_t)w.nfree);
    verify_stats(&w);
    mhi_unlock(&H->lock);
    return w.errors;
}
