/* freespans.c - the page heap's free spans: exact-size lists for spans
 * shorter than MHI_FREE_LISTS pages, with a 128-bit index of the non-empty
 * ones, and a treap keyed (npages, base) for longer spans (pageheap.h).
 * Heap lock held throughout. */
#include "pageheap.h"

#include "print.h"

#define H MHI_H

/* ---- the treap of large free spans, keyed (npages, base) ---- */

static inline bool treap_less(const mhi_span *a, const mhi_span *b) {
    return a->npages < b->npages || (a->npages == b->npages && a->base < b->base);
}

static uint32_t treap_prio(uintptr_t base) {
    uint64_t x = base >> MHI_PAGE_SHIFT;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static mhi_span *treap_insert(mhi_span *root, mhi_span *s) {
    if (!root) return s;
    if (treap_less(s, root)) {
        root->tleft = treap_insert(root->tleft, s);
        if (root->tleft->tprio > root->tprio) { /* rotate right */
            mhi_span *l = root->tleft;
            root->tleft = l->tright;
            l->tright = root;
            return l;
        }
    } else {
        root->tright = treap_insert(root->tright, s);
        if (root->tright->tprio > root->tprio) { /* rotate left */
            mhi_span *r = root->tright;
            root->tright = r->tleft;
            r->tleft = root;
            return r;
        }
    }
    return root;
}

static mhi_span *treap_merge(mhi_span *a, mhi_span *b) {
    /* Every key in a is less than every key in b. */
    if (!a) return b;
    if (!b) return a;
    if (a->tprio > b->tprio) {
        a->tright = treap_merge(a->tright, b);
        return a;
    }
    b->tleft = treap_merge(a, b->tleft);
    return b;
}

static mhi_span *treap_remove(mhi_span *root, mhi_span *s) {
    if (!root) mhi_fatal("free span missing from the large tree: %p", (void *)s->base);
    if (root == s) return treap_merge(s->tleft, s->tright);
    if (treap_less(s, root)) root->tleft = treap_remove(root->tleft, s);
    else root->tright = treap_remove(root->tright, s);
    return root;
}

/* Smallest span with npages >= n; ties to the lowest address. */
static mhi_span *treap_best_fit(mhi_span *t, size_t n) {
    mhi_span *best = NULL;
    while (t) {
        if (t->npages >= n) {
            best = t;
            t = t->tleft;
        } else {
            t = t->tright;
        }
    }
    return best;
}

void mhi_free_insert_locked(mhi_span *s) {
    mhi_lock_assert_held(&H->lock);
    if (s->npages < MHI_FREE_LISTS) {
        mhi_span_list_push(&H->free[s->npages], s);
        H->nonempty[s->npages / 64] |= 1ULL << (s->npages % 64);
    } else {
        s->tleft = s->tright = NULL;
        s->tprio = treap_prio(s->base);
        H->large = treap_insert(H->large, s);
    }
    H->stats.nspan_free++;
}

void mhi_free_remove_locked(mhi_span *s) {
    mhi_lock_assert_held(&H->lock);
    if (s->npages < MHI_FREE_LISTS) {
        mhi_span_list_remove(&H->free[s->npages], s);
        if (H->free[s->npages].count == 0)
            H->nonempty[s->npages / 64] &= ~(1ULL << (s->npages % 64));
    } else {
        H->large = treap_remove(H->large, s);
        s->tleft = s->tright = NULL;
    }
    H->stats.nspan_free--;
}

mhi_span *mhi_free_find_locked(size_t npages) {
    mhi_lock_assert_held(&H->lock);
    if (npages < MHI_FREE_LISTS) {
        for (size_t w = npages / 64; w < MHI_FREE_LISTS / 64; w++) {
            uint64_t bits = H->nonempty[w];
            if (w == npages / 64) bits &= ~0ULL << (npages % 64);
            if (bits) return H->free[w * 64 + (size_t)__builtin_ctzll(bits)].first;
        }
    }
    return treap_best_fit(H->large, npages);
}

static size_t verify_treap(mhi_span *t, mhi_span **prev, int depth, size_t *errors) {
    if (!t) return 0;
    MHI_VERIFY(errors, depth < 200, "large tree too deep at %p", (void *)t->base);
    if (depth >= 200) return 0;
    size_t n = verify_treap(t->tleft, prev, depth + 1, errors);
    MHI_VERIFY(errors, t->state == MHI_SPAN_FREE, "span in large tree not free: %p", (void *)t->base);
    MHI_VERIFY(errors, t->npages >= MHI_FREE_LISTS, "short span in large tree: %p", (void *)t->base);
    MHI_VERIFY(errors, !*prev || treap_less(*prev, t), "large tree out of order at %p", (void *)t->base);
    MHI_VERIFY(errors, !t->tleft || t->tleft->tprio <= t->tprio, "treap priority at %p", (void *)t->base);
    MHI_VERIFY(errors, !t->tright || t->tright->tprio <= t->tprio, "treap priority at %p", (void *)t->base);
    *prev = t;
    return n + 1 + verify_treap(t->tright, prev, depth + 1, errors);
}


size_t mhi_free_verify_locked(size_t *errors) {
    mhi_lock_assert_held(&H->lock);
    size_t nlisted = 0;
    for (size_t n = 1; n < MHI_FREE_LISTS; n++) {
        size_t c = 0;
        for (mhi_span *s = H->free[n].first; s; s = s->next, c++) {
            MHI_VERIFY(errors, s->state == MHI_SPAN_FREE && s->npages == n,
                       "span %p on free list %zu", (void *)s->base, n);
            if (c > H->free[n].count) break;
        }
        MHI_VERIFY(errors, c == H->free[n].count, "free list %zu count %zu, found %zu", n,
                   (size_t)H->free[n].count, c);
        MHI_VERIFY(errors, ((H->nonempty[n / 64] >> (n % 64)) & 1) == (c != 0),
                   "free list index bit %zu", n);
        nlisted += c;
    }
    MHI_VERIFY(errors, H->free[0].count == 0, "free list 0 not empty");
    mhi_span *tprev = NULL;
    return nlisted + verify_treap(H->large, &tprev, 0, errors);
}
