/* trim.c - releasing the free pages inside small-object spans in use
 * (see trim.h). */
#include "trim.h"

#include "os.h"
#include "print.h"

_Atomic uint32_t mhi_trim_epoch;
struct mhi_trim_stat mhi_trim_stat;
/* Set when the OS refused a release (mlockall): released objects may then
 * sit on pages that kept their data, so no trim runs any more and no page
 * is reported released to the page heap. */
static _Atomic bool trim_off;

/* Bits a..b (a <= b < 64). */
static inline uint64_t bits_between(uint32_t a, uint32_t b) {
    return (b - a == 63 ? ~0ULL : (2ULL << (b - a)) - 1) << a;
}

/* The objects of s (at most 64, OS pages no larger than heap pages) that
 * overlap its OS page i; 0 for a page past the last object. */
static uint64_t page_objects(const mhi_span *s, size_t i, size_t ps) {
    size_t size = s->elemsize, used = (size_t)s->nelems * size, lo = i * ps;
    if (lo >= used) return 0;
    size_t hi = lo + ps < used ? lo + ps : used;
    return bits_between((uint32_t)(lo / size), (uint32_t)((hi - 1) / size));
}

/* The OS pages of s (bit i: page i) all of whose objects are in mask;
 * never a page past the last object. */
static uint64_t pages_within(const mhi_span *s, uint64_t mask, size_t ps) {
    uint64_t out = 0;
    for (size_t i = 0; i < s->nbytes / ps && i < 64; i++) {
        uint64_t m = page_objects(s, i, ps);
        if (m && (mask & m) == m) out |= 1ULL << i;
    }
    return out;
}

size_t mhi_span_trim(mhi_span *s) {
    size_t ps = mhi_os_page_size();
    if (s->nelems > 64 || ps > MHI_PAGE_SIZE ||
        atomic_load_explicit(&trim_off, memory_order_relaxed))
        return 0;
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed), onlist = 0;
    /* A link is followed only once its object's mark says it is sound: a
     * damaged one could name a live object (whose page would go) or lead
     * anywhere.  Such a span is left whole, for allocation to name. */
    for (void *p = s->freelist; p; p = mhi_link_get(p)) {
        uintptr_t off = (uintptr_t)p - s->base;
        uint32_t idx = mhi_span_index(s, p);
        if (off >= s->nbytes || idx >= s->nelems || (uintptr_t)idx * s->elemsize != off ||
            (onlist >> idx & 1) || !mhi_free_marked(p))
            return 0;
        onlist |= 1ULL << idx;
    }
    /* The pages whose objects are all free, less those whose objects are
     * all released (released with them already). */
    uint64_t pages = pages_within(s, onlist | rel, ps) & ~pages_within(s, rel, ps), take = 0;
    for (uint64_t m = pages; m; m &= m - 1)
        take |= page_objects(s, (size_t)__builtin_ctzll(m), ps) & onlist;
    if (!take) return 0;
    /* Off the list first: the links live in the pages about to go. */
    void *prev = NULL;
    for (void *p = s->freelist; p;) {
        void *next = mhi_link_get(p);
        if (take >> mhi_span_index(s, p) & 1) {
            if (prev) mhi_link_set(prev, next); /* (re-marks prev) */
            else s->freelist = next;
        } else {
            prev = p;
        }
        p = next;
    }
    atomic_store_explicit(&s->relmask, rel | take, memory_order_relaxed);
    /* release: a freer that sees SMALL_REL sees relmask (acquire in
     * mhi_cache_free_slow) */
    mhi_span_set_fast(s, false); /* (frees go to the slow path, which checks relmask) */
    __atomic_store_n(&s->kind, (uint8_t)MHI_KIND_SMALL_REL, __ATOMIC_RELEASE);
    /* A refused madvise leaves the data: harmless, the objects are
     * relinked and re-marked when they come back. */
    size_t released = 0;
    while (pages) {
        uint32_t lo = (uint32_t)__builtin_ctzll(pages), hi = lo;
        while (hi + 1 < 64 && (pages >> (hi + 1) & 1)) hi++;
        pages &= ~bits_between(lo, hi);
        if (mhi_os_decommit((void *)(s->base + lo * ps), (size_t)(hi - lo + 1) * ps))
            released += (size_t)(hi - lo + 1) * ps;
        else
            atomic_store_explicit(&trim_off, true, memory_order_relaxed);
    }
    if (released) {
        atomic_fetch_add_explicit(&mhi_trim_stat.bytes, released, memory_order_relaxed);
        atomic_fetch_add_explicit(&mhi_trim_stat.spans, 1, memory_order_relaxed);
    }
    return released;
}

void mhi_span_unrelease(mhi_span *s) {
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed);
    size_t ps = mhi_os_page_size(), size = s->elemsize;
    /* The span is about to hand these objects out: bring their pages in
     * with one call rather than a fault per page. */
    uintptr_t lo = (s->base + (size_t)__builtin_ctzll(rel) * size) & ~(uintptr_t)(ps - 1);
    uintptr_t hi = s->base + (size_t)(64 - __builtin_clzll(rel)) * size;
    if (hi - lo > ps) mhi_os_populate((void *)lo, hi - lo);
    /* Highest first, so that the list runs in address order. */
    for (uint64_t m = rel; m;) {
        uint32_t i = 63 - (uint32_t)__builtin_clzll(m);
        m &= ~(1ULL << i);
        char *q = (char *)s->base + (size_t)i * size;
        mhi_link_set(q, s->freelist);
        s->freelist = q;
    }
    atomic_store_explicit(&s->relmask, 0, memory_order_relaxed);
    __atomic_store_n(&s->kind, (uint8_t)MHI_KIND_SMALL, __ATOMIC_RELAXED);
    mhi_span_set_fast(s, true);
}

uint64_t mhi_span_released_pages(const mhi_span *s) {
    uint64_t rel = atomic_load_explicit(&s->relmask, memory_order_relaxed);
    if (!rel || atomic_load_explicit(&trim_off, memory_order_relaxed)) return 0;
    /* An OS page whose objects are all released was released with the
     * last of them to leave the free list (mhi_span_trim releases every
     * page whose objects are all free), and nothing wrote to it since.  A
     * heap page counts when all its OS pages do.  (rel != 0: the span was
     * trimmed, so OS pages are no larger than heap pages.) */
    size_t ps = mhi_os_page_size(), per = MHI_PAGE_SIZE / ps;
    uint64_t os = pages_within(s, rel, ps), all = per == 64 ? ~0ULL : (1ULL << per) - 1, out = 0;
    for (size_t j = 0; j < s->npages; j++)
        if ((os >> (j * per) & all) == all) out |= 1ULL << j;
    return out;
}

void mhi_span_check_released(const mhi_span *s, uint32_t idx, const void *p) {
    if (atomic_load_explicit(&s->relmask, memory_order_relaxed) >> idx & 1)
        mhi_fatal_at("double free", p);
}

bool mhi_span_trim_aged(mhi_span *s, mhi_trim_pass *tp) {
    if (s->trimmed == s->touched || !mhi_span_trim_candidate(s, mhi_os_page_size())) return false;
    if (!tp->force && tp->epoch - s->touched < 2) {
        tp->young = true;
        return false;
    }
    s->trimmed = s->touched;
    size_t n = mhi_span_trim(s);
    tp->bytes += n;
    if (n && tp->budget) tp->budget--;
    return n > 0;
}
