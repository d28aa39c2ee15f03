/* cache.c - thread caches: their life (creation, the thread key), the
 * spans a cache owns, the slow paths of allocation and free, stashes,
 * flushing, and the trim pass (cache.h; malloc.c gives the overview).
 * cachepark.c parks a cache at its thread's exit and repairs the caches
 * in the child of fork; cacheverify.c checks them. */
#include "cache_impl.h"

#include "background.h"
#include "central.h"
#include "fixalloc.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"
#include "process.h"

mhi_span mhi_span_empty;

#define EMPTY_CUR                                                                  \
    .cur = {[0 ... MHI_NUM_CLASSES - 1] = &mhi_span_empty}
mhi_cache mhi_cache_empty = {EMPTY_CUR};
mhi_cache mhi_cache_dead = {EMPTY_CUR};
__thread mhi_cache *mhi_tls_cache __attribute__((tls_model("initial-exec"))) = &mhi_cache_empty;

mhi_caches_t mhi_caches = {.lock = MHI_LOCK_INIT(MHI_RANK_CACHES)};
/* (mhi_caches.lock also guards these) */
static mhi_fixalloc cache_alloc;
static _Atomic uint64_t cache_sys;
static bool cache_setup_done, cache_key_ok;

/* The thread key's destructor: the cache is parked or flushed
 * (cachepark.c). */
static void thread_exit(void *arg) {
    (void)arg;
    mhi_cache_release();
}

static void cache_setup_locked(void) {
    mhi_lock_assert_held(&mhi_caches.lock);
    if (cache_setup_done) return;
    cache_setup_done = true;
    mhi_fixalloc_init(&cache_alloc, sizeof(mhi_cache), &cache_sys);
    cache_key_ok = mhi_os_thread_key_create(thread_exit);
}

void mhi_cache_setup(void) {
    mhi_lock(&mhi_caches.lock);
    cache_setup_locked();
    mhi_unlock(&mhi_caches.lock);
}

static mhi_cache *cache_create(void) {
    mhi_lock(&mhi_caches.lock);
    cache_setup_locked();
    /* The most recently parked cache first: its spans hold the objects
     * most likely still live (a thread that handed its work on), whose
     * frees are then local again. */
    mhi_cache *c = mhi_caches.parked_first;
    bool fresh = true;
    if (c) {
        /* Its spans, stashes and notify stack as its last thread left
         * them; frees by other threads meanwhile wait on the spans' xfree
         * lists and notices on the stack, as for any owner. */
        mhi_cache_unpark_locked(c);
        mhi_cache_live_push_locked(c);
        fresh = false;
    } else if ((c = mhi_caches.pool)) {
        mhi_caches.pool = c->next;
    } else if ((c = mhi_fixalloc_alloc(&cache_alloc))) {
        mhi_lock_init(&c->lock, MHI_RANK_CACHE);
    }
    if (c && fresh) {
        /* Set up before it joins the list: the trim pass walks the lists
         * of every cache there. */
        for (size_t i = 0; i < MHI_NUM_CLASSES; i++) {
            c->stash[i] = NULL;
            c->cur[i] = &mhi_span_empty;
            c->avail[i] = (mhi_span_list){0};
            c->full[i] = (mhi_span_list){0};
        }
        atomic_store_explicit(&c->notify, NULL, memory_order_relaxed);
        c->empty_bytes = 0;
        c->empty_keep = MHI_EMPTY_KEEP;
        for (size_t i = 0; i < sizeof c->empty_gave / sizeof c->empty_gave[0]; i++)
            c->empty_gave[i] = 0;
        c->empty_low = 0;
        c->empty_takes = 0;
        c->empty_look = 0;
        atomic_store_explicit(&c->empty_grown, false, memory_order_relaxed);
        c->bg_wanted = false;
        c->orphan = false;
        c->parked = false;
        c->stash_bytes = 0;
        mhi_cache_stash_limits_reset(c);
        mhi_cache_live_push_locked(c);
    }
    mhi_unlock(&mhi_caches.lock);
    if (!c) return NULL;
    c->tick = MHI_CACHE_TICK;
    mhi_tls_cache = c;
    if (cache_key_ok) mhi_os_thread_set(c);
    /* Outside every lock: the process set-up may itself allocate, which
     * now finds this thread's cache. */
    mhi_process_init();
    return c;
}

/* The calling thread's cache, made on first use; NULL after thread exit
 * or when no cache can be made. */
static mhi_cache *cache_get(void) {
    mhi_cache *c = mhi_tls_cache;
    if (c == &mhi_cache_empty) c = cache_create();
    else if (c == &mhi_cache_dead) c = NULL;
    return c;
}

/* ---- spans the cache owns ----
 * cur[c]: where allocation pops from when the stash is empty.
 * avail[c]: nfree > 0; partly used spans first (local_return moves one that
 *   becomes entirely free to the end, or gives it back), then entirely free
 *   ones kept for reuse, empty_bytes in all.
 * full[c]: nfree was 0 when filed; back to avail when mhi_cache_unfull_at(s)
 *   objects came back; NOTIFY armed in xfree, so the first remote free
 *   pushes the span onto the notify stack. */

static int trim_task(void);
static _Atomic int trim_task_index = -1; /* the trim pass's task, once registered */
static _Atomic int park_task_index = -1; /* the flush of aged parked caches */

/* Pages are about to go back to the page heap, or a cache was parked:
 * make sure the background thread runs (or, in a process that has only
 * one thread, that heap calls run its tasks: background.h), with the trim
 * pass and the flush of parked caches among its tasks (no allocator lock
 * is held here: starting the thread allocates).  The tasks are added even
 * when another layer (the collector) started the thread first. */
static _Atomic int cache_tasks_added;
static inline void bg_check(void) {
    /* (acquire: a thread that sees the tasks added sees their indexes) */
    if (MHI_UNLIKELY(!atomic_load_explicit(&cache_tasks_added, memory_order_acquire)) &&
        mhi_option(MHI_OPT_background)) {
        atomic_store_explicit(&trim_task_index, mhi_bg_add(trim_task, true), memory_order_relaxed);
        atomic_store_explicit(&park_task_index, mhi_bg_add(mhi_cache_park_task, true),
                              memory_order_relaxed);
        atomic_store_explicit(&cache_tasks_added, 1, memory_order_release);
    }
    if (MHI_UNLIKELY(!atomic_load_explicit(&mhi_bg_started, memory_order_relaxed))) mhi_bg_start();
}

/* Ask the background thread for a trim pass (after bg_check). */
static inline void bg_trim_request(void) {
    mhi_bg_request(atomic_load_explicit(&trim_task_index, memory_order_relaxed));
}

void mhi_cache_trim_request(void) {
    bg_check();
    bg_trim_request();
}

/* (the task is cachepark.c's) */
void mhi_cache_park_request(void) {
    bg_check(); /* (registers the task) */
    mhi_bg_request(atomic_load_explicit(&park_task_index, memory_order_relaxed));
}

static void drain_notify(mhi_cache *cache);

/* s is on avail: if pages of it might come free, have the background
 * thread look at it once it has aged (asked for when the cache's lock is
 * dropped). */
static inline void note_trim_candidate(mhi_cache *cache, const mhi_span *s) {
    if (mhi_span_trim_candidate(s, mhi_os_page_size())) cache->bg_wanted = true;
}

/* s, on avail[c], has every object free: keep it or give it back (then s
 * may be reused at once: the caller must not look at it again). */
static void span_emptied(mhi_cache *cache, mhi_span *s) {
    mhi_span_list *l = &cache->avail[s->sizeclass];
    mhi_span_list_remove(l, s);
    if (cache->empty_bytes + s->nbytes <= cache->empty_keep) {
        cache->empty_bytes += s->nbytes;
        mhi_span_list_push_back(l, s);
        note_trim_candidate(cache, s);
    } else {
        cache->empty_gave[s->sizeclass / 64] |= (uint64_t)1 << (s->sizeclass % 64);
        s->where = MHI_WHERE_NONE;
        cache->bg_wanted = true;
        /* No notice may name s once it is back in the page heap: stop them,
         * then take s off the notify stack if a freer put it there (it
         * went full -> notified -> avail by our own frees -> empty). */
        mhi_span_quiesce(s);
        if (atomic_load_explicit(&s->onstack, memory_order_acquire)) drain_notify(cache);
        mhi_central_retire(s);
    }
}

/* s, on avail, got objects back: give it back if all are free, else ask
 * for a trim pass if pages of it may be free.  As span_emptied, s may be
 * gone after. */
static void avail_returned(mhi_cache *cache, mhi_span *s) {
    if (s->nfree == s->nelems) span_emptied(cache, s);
    else note_trim_candidate(cache, s);
}

/* s, on no list (it was cur, or just left full[c]), goes to the front of
 * avail[c]; s may be gone after. */
static void span_to_avail(mhi_cache *cache, mhi_span *s) {
    s->where = MHI_WHERE_AVAIL;
    mhi_span_list_push(&cache->avail[s->sizeclass], s);
    avail_returned(cache, s);
}

/* s leaves full[c] for the front of avail[c] (it has free objects). */
static void span_unfull(mhi_cache *cache, mhi_span *s) {
    mhi_span_list_remove(&cache->full[s->sizeclass], s);
    span_to_avail(cache, s);
}

/* Give the n objects head .. tail (checked and marked) back to s, which
 * this cache owns, and move s between lists if that changes its state. */
static void local_return(mhi_cache *cache, mhi_span *s, void *head, void *tail, uint32_t n) {
    mhi_lock_assert_held(&cache->lock);
    if (MHI_UNLIKELY(s->nfree + n > s->nelems)) mhi_fatal_at_unlock(&cache->lock, "double free", head);
    mhi_link_set(tail, s->freelist);
    s->freelist = head;
    s->nfree += n;
    s->touched = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed);
    if (s->where == MHI_WHERE_FULL) {
        if (s->nfree < mhi_cache_unfull_at(s)) return;
        /* The notice is no longer needed: the span is back in use. */
        atomic_fetch_and_explicit(&s->xfree, ~MHI_XF_NOTIFY, memory_order_relaxed);
        span_unfull(cache, s);
    } else if (s->where == MHI_WHERE_AVAIL) {
        avail_returned(cache, s);
    } else if (s->where == MHI_WHERE_CUR && 2 * s->nfree >= s->nelems &&
               mhi_span_trim_candidate(s, mhi_os_page_size())) {
        /* Half free or more, pages of it may be free: off cur (which the
         * trim pass never touches) to the front of avail, where the next
         * allocation of the class finds it again. */
        cache->cur[s->sizeclass] = &mhi_span_empty;
        span_to_avail(cache, s);
    }
}

/* Drop the cache's lock; then, outside every allocator lock (starting the
 * thread allocates), wake the background thread if a trim was asked for,
 * or run its due tasks here in a process with one thread. */
static void cache_unlock(mhi_cache *cache) {
    bool want = cache->bg_wanted; /* (the trim pass writes it too, locked) */
    cache->bg_wanted = false;
    mhi_unlock(&cache->lock);
    if (MHI_UNLIKELY(want)) {
        bg_check();
        bg_trim_request();
    }
    mhi_bg_poll();
}

/* Arm the notice of s, which has no free object: the next remote free
 * will push it onto the notify stack.  False if objects arrived meanwhile
 * (then they are collected instead). */
static bool arm_notice(mhi_cache *cache, mhi_span *s) {
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    for (;;) {
        if (x & ~MHI_XF_TAGS) {
            mhi_span_collect_xfree(s, &cache->lock);
            return false;
        }
        if (x & MHI_XF_FREEING) { /* a late notice from the span's last time on full */
            mhi_os_yield();
            x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&s->xfree, &x, x | MHI_XF_NOTIFY,
                                                  memory_order_relaxed, memory_order_relaxed))
            return true;
    }
}

/* Spans of full lists that other threads freed into: back to avail. */
static void drain_notify(mhi_cache *cache) {
    mhi_span *s = atomic_exchange_explicit(&cache->notify, NULL, memory_order_acquire);
    while (s) {
        mhi_span *next = s->xnext;
        atomic_store_explicit(&s->onstack, 0, memory_order_release);
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) == cache &&
            s->where == MHI_WHERE_FULL) {
            mhi_span_collect_xfree(s, &cache->lock);
            /* Nothing there (a free of ours took it first): wait again. */
            if (s->nfree > 0 || !arm_notice(cache, s)) span_unfull(cache, s);
        }
        s = next;
    }
}

/* The owner's current span s is out of objects.  Collect what other
 * threads freed into it (true: s has objects again), or arm its notice and
 * file it as full (false). */
static bool cur_refill_or_file(mhi_cache *cache, mhi_span *s) {
    if (!arm_notice(cache, s)) return true; /* collected at least one */
    size_t c = s->sizeclass;
    s->where = MHI_WHERE_FULL;
    mhi_span_list_push(&cache->full[c], s);
    cache->cur[c] = &mhi_span_empty;
    return false;
}

/* Cache lock held: give cur[c] free objects again (false: out of memory). */
static bool cache_refill_locked(mhi_cache *cache, size_t c) {
    mhi_lock_assert_held(&cache->lock);
    if (atomic_load_explicit(&cache->notify, memory_order_relaxed)) drain_notify(cache);
    /* A cache just taken from the parked list (the thread's first slow
     * path) may hold objects of the class already. */
    if (cache->stash[c] || cache->cur[c]->freelist) return true;
    mhi_span *s = cache->cur[c];
    if (s != &mhi_span_empty) {
        if (mhi_span_carve(s, &cache->lock)) return true;
        if (atomic_load_explicit(&s->relmask, memory_order_relaxed)) {
            mhi_span_unrelease(s);
            return true;
        }
        if (cur_refill_or_file(cache, s)) return true;
    }
    s = cache->avail[c].first;
    if (s) {
        mhi_span_list_remove(&cache->avail[c], s);
        if (s->nfree == s->nelems) {
            cache->empty_bytes -= s->nbytes;
            cache->empty_takes++;
            if (cache->empty_bytes < cache->empty_low) cache->empty_low = cache->empty_bytes;
#if !MHEAP_SECURE
            if (!atomic_load_explicit(&s->relmask, memory_order_relaxed)) mhi_span_relink(s, &cache->lock);
#endif
        }
    } else {
        mhi_cache_keep_before_central(cache, c);
        s = mhi_central_take_span(c, cache);
        if (!s) return false;
    }
    /* every free object never handed out, or released */
    if (!s->freelist && !mhi_span_carve(s, &cache->lock)) mhi_span_unrelease(s);
    s->where = MHI_WHERE_CUR;
    cache->cur[c] = s;
    return true;
}

/* The pop (cache.h) leaves a head whose free mark is damaged to us: a
 * write reached a free block (an overflow of the block before it, or a
 * write after free).  Named before its link is followed. */
static void check_heads(const mhi_cache *cache, size_t c) {
    void *p = cache->stash[c];
    if (p && !mhi_free_marked(p)) mhi_fatal_at("corrupted free block", p);
    p = cache->cur[c]->freelist;
    if (p && !mhi_free_marked(p)) mhi_fatal_at("corrupted free block", p);
}

void *mhi_cache_alloc_slow(size_t c) {
    check_heads(mhi_tls_cache, c);
    mhi_cache *cache = cache_get();
    if (!cache) return mhi_central_alloc_one(c);
    mhi_lock(&cache->lock);
    bool ok = cache_refill_locked(cache, c);
    cache_unlock(cache);
    return ok ? mhi_cache_alloc(c) : NULL;
}

/* Notices wait on some cache's stack: set by the freer whose notice
 * starts an empty stack (which then asks for a trim pass), cleared by a
 * pass that drained nothing and finds every stack empty.  While it is
 * set, the trim task passes again each period, and its passes drain the
 * stacks of owners that no longer allocate (a thread that waits, a parked
 * cache), whose spans would otherwise stay full of freed objects until
 * the owner's next slow path.  Passes come once a period while notices
 * keep coming, and a request wakes the background thread only after a
 * period without any, not once per notice: an owner that allocates drains
 * its own stack many times a period. */
static _Atomic bool notices_waiting;

void mhi_cache_notices_fork_child(void) {
    atomic_store_explicit(&notices_waiting, false, memory_order_relaxed);
}

/* Give the n objects head .. tail of s (linked through their first words,
 * checked and marked) back to s, which another cache owns or nobody does.
 * True if the background thread should be asked for a trim pass (the
 * caller asks, once it holds no allocator lock): s was unowned and pages
 * of it may have come free, or s's notice started its owner's empty stack
 * while no notices were waiting. */
static bool push_remote(mhi_span *s, void *head, void *tail, uint32_t n) {
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    for (;;) {
        if (x & MHI_XF_ABANDONED) {
            int r = mhi_central_free_unowned(s, head, tail, n);
            if (r) return r == 2;
            x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
            continue;
        }
        mhi_link_set(tail, (void *)(x & ~MHI_XF_TAGS));
        bool notice = x & MHI_XF_NOTIFY;
        uintptr_t nx = (uintptr_t)head | (x & MHI_XF_TAGS);
        if (notice) nx = (nx & ~MHI_XF_NOTIFY) | MHI_XF_FREEING;
        if (atomic_compare_exchange_weak_explicit(&s->xfree, &x, nx, memory_order_release,
                                                  memory_order_relaxed))
            break;
    }
    if (!(x & MHI_XF_NOTIFY)) return false;
    /* The span sits on its owner's full list: tell the owner.  While
     * FREEING is set the owner waits before it re-arms or gives up the
     * span, so owner stays valid here. */
    mhi_cache *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
    bool ask = false;
    if (!atomic_exchange_explicit(&s->onstack, 1, memory_order_acq_rel)) {
        mhi_span *top = atomic_load_explicit(&o->notify, memory_order_relaxed);
        /* (seq_cst, with the flag's load after it and the trim pass's
         * store of the flag before its look at the stacks: either the
         * pass sees this notice or this freer sees the flag cleared) */
        do {
            s->xnext = top;
        } while (!atomic_compare_exchange_weak_explicit(&o->notify, &top, s, memory_order_seq_cst,
                                                        memory_order_relaxed));
        ask = !top && !atomic_load_explicit(&notices_waiting, memory_order_seq_cst) &&
              !atomic_exchange_explicit(&notices_waiting, true, memory_order_seq_cst);
    }
    atomic_fetch_and_explicit(&s->xfree, ~MHI_XF_FREEING, memory_order_release);
    return ask;
}

/* Send the objects of list p (a stash's, linked through their first
 * words) back to their spans, in runs of consecutive objects of one span
 * (the cache's lock held). */
static void return_list(mhi_cache *cache, void *p) {
    mhi_lock_assert_held(&cache->lock);
    while (p) {
        /* (p is a stash's head or a link followed through
         * mhi_link_follow: a write that reached a stashed object is named
         * before its link is used.) */
        mhi_span *s = mhi_heap_page_span((uintptr_t)p); /* (checked when freed) */
        void *head = p, *tail = p;
        uint32_t n = 1;
        p = mhi_link_follow(p, &cache->lock);
        while (p && (uintptr_t)p - s->base < s->nbytes) {
            tail = p;
            n++;
            p = mhi_link_follow(p, &cache->lock);
        }
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) == (void *)cache)
            local_return(cache, s, head, tail, n);
        else if (push_remote(s, head, tail, n))
            cache->bg_wanted = true;
    }
}

void mhi_cache_flush_stash(mhi_cache *cache, size_t c) {
    void *p = cache->stash[c];
    cache->stash[c] = NULL;
    cache->stash_room[c] = cache->stash_lim[c];
    return_list(cache, p);
}

/* Objects a stash holds at first: about 16 KiB, 4 to 64 objects.  It may
 * grow to about 128 KiB, 4 to 1024 objects, while what the thread's
 * stashes grew by adds up to at most MHI_STASH_TOTAL bytes. */
#ifndef MHI_STASH_BYTES
#define MHI_STASH_BYTES (16u << 10)
#endif
#ifndef MHI_STASH_MIN
#define MHI_STASH_MIN 4
#endif
#ifndef MHI_STASH_MAX
#define MHI_STASH_MAX 64
#endif
#ifndef MHI_STASH_GROW_BYTES
#define MHI_STASH_GROW_BYTES (128u << 10)
#endif
#ifndef MHI_STASH_GROW_MAX
#define MHI_STASH_GROW_MAX 1024
#endif
#ifndef MHI_STASH_TOTAL
#define MHI_STASH_TOTAL ((size_t)256 << 10)
#endif
/* ... and what all threads' stashes grew by, at most this many bytes. */
#ifndef MHI_STASH_TOTAL_ALL
#define MHI_STASH_TOTAL_ALL ((size_t)16 << 20)
#endif
_Atomic size_t mhi_stash_grown;
static uint32_t clamp_objs(size_t c, uint32_t bytes, uint32_t max) {
    uint32_t n = (uint32_t)(bytes / mhi_class_size[c]);
    return n < MHI_STASH_MIN ? MHI_STASH_MIN : n > max ? max : n;
}
static uint32_t stash_max(size_t c) { return clamp_objs(c, MHI_STASH_BYTES, MHI_STASH_MAX); }
static uint32_t stash_grow_max(size_t c) {
    return clamp_objs(c, MHI_STASH_GROW_BYTES, MHI_STASH_GROW_MAX);
}

/* Every stash limit back to its first value, and all its room (the
 * stashes are empty). */
void mhi_cache_stash_limits_reset(mhi_cache *cache) {
    atomic_fetch_sub_explicit(&mhi_stash_grown, cache->stash_bytes, memory_order_relaxed);
    cache->stash_bytes = 0;
    cache->stash_lim[0] = cache->stash_room[0] = 0; /* (class 0 is "large": never used) */
    for (size_t i = 1; i < MHI_NUM_CLASSES; i++)
        cache->stash_lim[i] = cache->stash_room[i] = stash_max(i);
}

void mhi_cache_stash_full(size_t c) {
    mhi_cache *cache = mhi_tls_cache;
    /* A stash that fills grows (doubles) while the class's and the
     * thread's bounds allow: a program that frees a burst of objects and
     * then allocates them again (a tree dropped and rebuilt) then never
     * sends them through the spans. */
    uint32_t lim = cache->stash_lim[c], max = stash_grow_max(c);
    /* Only for a class the thread allocates from (it has a current span
     * or full spans of it; not avail): a thread that only frees the
     * class (a consumer) would just park more of other threads' objects,
     * and walk a stash grown cold when it sends the older half back.
     * (full[c] is read under the lock: the trim pass drains the notify
     * stack, which moves spans off it.) */
    if (cache->cur[c] == &mhi_span_empty) {
        mhi_lock(&cache->lock);
        if (!cache->full[c].first) {
            /* Nothing here will take them: the whole stash goes back,
             * without a walk to its middle. */
            void *all = cache->stash[c];
            cache->stash[c] = NULL;
            cache->stash_room[c] = lim;
            return_list(cache, all);
            cache_unlock(cache);
            return;
        }
        mhi_unlock(&cache->lock);
    }
    if (lim < max) {
        uint32_t nl = lim * 2 < max ? lim * 2 : max;
        size_t add = (size_t)(nl - lim) * mhi_class_size[c];
        if (cache->stash_bytes + add <= MHI_STASH_TOTAL) {
            size_t was = atomic_fetch_add_explicit(&mhi_stash_grown, add, memory_order_relaxed);
            if (was + add <= MHI_STASH_TOTAL_ALL) {
                cache->stash_lim[c] = nl;
                cache->stash_room[c] += nl - lim;
                cache->stash_bytes += add;
                return;
            }
            atomic_fetch_sub_explicit(&mhi_stash_grown, add, memory_order_relaxed);
        }
    }
    /* Keep the newer half (warm, and what the next allocations take); the
     * older half goes back to the spans. */
    uint32_t keep = cache->stash_lim[c] / 2;
    void *p = cache->stash[c];
    for (uint32_t i = 1; i < keep; i++) {
        void *q = mhi_link_follow(p, NULL);
        /* Shorter than its count: an object of it was pushed here and onto
         * another thread's stash by two frees racing, whose links now run
         * on into the other stash. */
        if (MHI_UNLIKELY(!q)) mhi_fatal_at("double free", p);
        p = q;
    }
    void *rest = mhi_link_follow(p, NULL);
    mhi_link_set(p, NULL);
    cache->stash_room[c] = cache->stash_lim[c] - keep;
    mhi_lock(&cache->lock);
    return_list(cache, rest);
    cache_unlock(cache);
}

/* The tick ran out (cache.h): count again, and while the background
 * thread's start is deferred run its due tasks here; once it runs (or
 * with background=0) the tick no longer matters.  (A deferred start is
 * one not started yet.) */
static MHI_NOINLINE void cache_tick(mhi_cache *cache) {
    bool unstarted = !atomic_load_explicit(&mhi_bg_started, memory_order_relaxed) &&
                     mhi_option(MHI_OPT_background);
    cache->tick = unstarted ? MHI_CACHE_TICK : INT32_MAX;
    mhi_bg_poll();
}

void mhi_cache_free_slow(void *p) {
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    if (!s) {
        if (!p) return; /* free(NULL) */
        mhi_heap_bad_free((uintptr_t)p);
    }
    uint8_t kind = __atomic_load_n(&s->kind, __ATOMIC_ACQUIRE); /* pairs with trim */
    if (kind == MHI_KIND_LARGE) {
        if ((uintptr_t)p != s->base) mhi_fatal_at("invalid pointer", p);
        bg_check(); /* first: creating the thread allocates, and must not reuse p */
        mhi_free_large(s);
        mhi_bg_poll();
        return;
    }
    if (!mhi_kind_small(kind)) mhi_fatal_at("invalid pointer", p);
    uint32_t idx = mhi_span_check(s, p);
    /* Marked, and not handed out since the span was set up or relinked:
     * not a pointer malloc returned since (a double free is of one
     * handed out). */
    if (MHI_UNLIKELY(mhi_free_marked(p)) &&
        idx >= atomic_load_explicit(&s->fresh, memory_order_relaxed))
        mhi_fatal_at("invalid pointer", p);
    /* A released object reads as zero, unmarked: check relmask. */
    if (kind == MHI_KIND_SMALL_REL) mhi_span_check_released(s, idx, p);
    /* A thread's first free before its first allocation makes its cache
     * (before p is marked: the process set-up may allocate).  A thread
     * that only frees, the consumer of a producer, then stashes its frees
     * and sends them back in runs, one CAS per run of a span's objects,
     * rather than a slow path and a CAS on the span's line per object.
     * That first object itself goes back to its span, not onto the new
     * stash, unless the cache made is a parked one that owns the span:
     * an object another thread handed over at a thread's start (from
     * blocks it allocated side by side) would otherwise be the thread's
     * first allocation of the size, sharing a cache line with what the
     * other threads got (passive false sharing: the fs-passive workload
     * ran twice as long). */
    bool first = MHI_UNLIKELY(mhi_tls_cache == &mhi_cache_empty);
    if (first) (void)cache_create();
    mhi_span_mark_remote(p); /* a marked object: double free */
    mhi_cache *cache = mhi_tls_cache;
    if (mhi_cache_is_static(cache) ||
        (first && atomic_load_explicit(&s->owner, memory_order_relaxed) != (void *)cache)) {
        /* No cache (after the thread's exit, or none could be made), or
         * the first free above: straight back to the span, which such a
         * cache does not own. */
        mhi_link_set(p, NULL);
        if (push_remote(s, p, p, 1)) {
            bg_check();
            bg_trim_request();
        }
        return;
    }
    size_t c = s->sizeclass;
    if (cache->stash_room[c] == 0) mhi_cache_stash_full(c);
    mhi_stash_push(cache, c, p);
    if (MHI_UNLIKELY(--cache->tick < 0)) cache_tick(cache); /* (counted here too) */
}

/* Give up every span the cache owns and empty its stashes; true if the
 * background thread should be asked for a trim pass (the caller asks,
 * once it holds no allocator lock). */
bool mhi_cache_flush_spans(mhi_cache *cache) {
    mhi_lock(&cache->lock);
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++)
        if (cache->stash[c]) mhi_cache_flush_stash(cache, c);
    /* Stop every notice first, then empty the notify stack while the cache
     * still owns its spans: a span given up while on the stack would keep
     * its onstack flag, and its next owner would never be told. */
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        if (cache->cur[c] != &mhi_span_empty) mhi_span_quiesce(cache->cur[c]);
        for (mhi_span *s = cache->avail[c].first; s; s = s->next) mhi_span_quiesce(s);
        for (mhi_span *s = cache->full[c].first; s; s = s->next) mhi_span_quiesce(s);
    }
    drain_notify(cache);
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        mhi_span *s = cache->cur[c];
        if (s != &mhi_span_empty) {
            cache->cur[c] = &mhi_span_empty;
            s->where = MHI_WHERE_NONE;
            mhi_central_abandon(s);
        }
        mhi_span_list *lists[2] = {&cache->avail[c], &cache->full[c]};
        for (int i = 0; i < 2; i++) {
            while ((s = lists[i]->first)) {
                /* central's partial spans are trimmed too */
                note_trim_candidate(cache, s);
                mhi_span_list_remove(lists[i], s);
                s->where = MHI_WHERE_NONE;
                mhi_central_abandon(s);
            }
        }
    }
    cache->empty_bytes = 0;
    mhi_cache_empty_keep_reset(cache);
    mhi_cache_stash_limits_reset(cache);
    bool want = cache->bg_wanted;
    cache->bg_wanted = false;
    mhi_unlock(&cache->lock);
    return want;
}

static void cache_flush(mhi_cache *cache) {
    if (mhi_cache_flush_spans(cache)) {
        bg_check();
        bg_trim_request();
    }
}

void mhi_cache_flush(void) {
    mhi_cache *cache = mhi_tls_cache;
    if (!mhi_cache_is_static(cache)) cache_flush(cache);
}

/* A cache about to be parked gives the entirely free spans it kept on
 * avail back to the page heap, where any thread can reuse them; it keeps
 * the spans that hold objects (those are what its next thread frees). */
void mhi_cache_drop_empty_spans(mhi_cache *cache, size_t keep) {
    mhi_lock_assert_held(&cache->lock);
    for (size_t c = 1; c < MHI_NUM_CLASSES && cache->empty_bytes > keep; c++) {
        mhi_span *s;
        while (cache->empty_bytes > keep && (s = cache->avail[c].last) &&
               s->nfree == s->nelems) {
            mhi_span_list_remove(&cache->avail[c], s);
            cache->empty_bytes -= s->nbytes;
            s->where = MHI_WHERE_NONE;
            cache->bg_wanted = true;
            /* as span_emptied: no notice may name s in the page heap */
            mhi_span_quiesce(s);
            if (atomic_load_explicit(&s->onstack, memory_order_acquire)) drain_notify(cache);
            mhi_central_retire(s);
        }
    }
}

/* ---- the trim pass (trim.h) ----
 * Every cache's avail spans, then the central lists' partial spans.  The
 * epoch advances at most every quarter of the scavenger delay; a span
 * trims once no object came back to it for two epochs (a quarter to a
 * half of the delay), so memory a program is still cycling through stays.
 * A pass trims at most TRIM_BUDGET spans (each a madvise or a few, which
 * in a process with threads on other CPUs costs a TLB shootdown), so it
 * holds mhi_caches.lock (thread start and exit wait for it) for a bounded
 * time; it takes a cache's lock one size class at a time with trylock: an
 * owner in its slow path is never made to wait for more than one class's
 * spans, and the pass never waits for an owner. */
#define TRIM_BUDGET 64

static int64_t trim_epoch_ms;

/* mhi_caches.lock held: does a live or parked cache (not an orphan) have
 * notices on its stack? */
static bool notices_left(void) {
    for (mhi_cache *c = mhi_caches.live; c; c = c->next)
        if (!c->orphan && atomic_load_explicit(&c->notify, memory_order_seq_cst)) return true;
    for (mhi_cache *c = mhi_caches.parked_first; c; c = c->next)
        if (atomic_load_explicit(&c->notify, memory_order_seq_cst)) return true;
    return false;
}

static _Atomic uint64_t trim_passes, trim_passes_done;
uint64_t mhi_cache_trim_passes(void) {
    return atomic_load_explicit(&trim_passes, memory_order_seq_cst);
}
uint64_t mhi_cache_trim_passes_done(void) {
    return atomic_load_explicit(&trim_passes_done, memory_order_seq_cst);
}

static void trim_caches_now(mhi_trim_pass *tp);
/* The caches' part of a pass, counted when it starts and when it ends. */
static void trim_caches(mhi_trim_pass *tp) {
    atomic_fetch_add_explicit(&trim_passes, 1, memory_order_seq_cst);
    trim_caches_now(tp);
    atomic_fetch_add_explicit(&trim_passes_done, 1, memory_order_seq_cst);
}

static void trim_caches_now(mhi_trim_pass *tp) {
    /* (OS pages larger than heap pages: nothing a span could release) */
    if (mhi_os_page_size() > MHI_PAGE_SIZE) return;
    mhi_lock(&mhi_caches.lock);
    /* The live caches, then the parked ones (mhi_caches.lock keeps them
     * parked meanwhile). */
    mhi_cache *cache = mhi_caches.live;
    bool in_parked = false, drained = false;
    for (;; cache = cache->next) {
        if (!cache && !in_parked) {
            in_parked = true;
            cache = mhi_caches.parked_first;
        }
        if (!cache || !tp->budget) break;
        if (cache->orphan) continue;
        /* Full spans other threads freed into wait on the notify stack
         * for the owner's next slow path, which a thread that no longer
         * allocates (one that took a parked cache and then waits) never
         * reaches: drain it as the owner would, so such spans go back to
         * avail, and once entirely free to the page heap. */
        if (atomic_load_explicit(&cache->notify, memory_order_relaxed) &&
            mhi_trylock(&cache->lock)) {
            drained = true; /* (more may come: see the pass's end) */
            drain_notify(cache);
            if (cache->bg_wanted) { /* (as below) */
                cache->bg_wanted = false;
                tp->young = true;
            }
            mhi_unlock(&cache->lock);
        }
        mhi_cache_keep_pass(cache, tp);
        for (size_t c = 1; c < MHI_NUM_CLASSES && tp->budget; c++) {
            if (mhi_class_nobjs[c] > 64) continue;
            if (!mhi_trylock(&cache->lock)) {
                tp->young = true;
                break;
            }
            for (mhi_span *s = cache->avail[c].first, *next; s && tp->budget; s = next) {
                next = s->next;
                /* Other threads' frees wait on xfree until the owner takes
                 * the span as cur: collect them as the owner would (this
                 * marks the span changed; it trims once aged). */
                if (atomic_load_explicit(&s->xfree, memory_order_relaxed) & ~MHI_XF_TAGS &&
                    mhi_span_collect_xfree(s, &cache->lock) && s->nfree == s->nelems) {
                    span_emptied(cache, s); /* moved to the end, or gone */
                    continue;
                }
                (void)mhi_span_trim_aged(s, tp);
            }
            if (cache->bg_wanted) { /* set by span_emptied above: no need to ask */
                cache->bg_wanted = false;
                tp->young = true;
            }
            mhi_unlock(&cache->lock);
        }
    }
    /* Notices waiting: a pass that drained some keeps the flag (more tend
     * to follow) and comes back next period.  One that drained none clears
     * it, then looks at every stack (seq_cst: push_remote, so either it
     * sees a notice pushed meanwhile or that freer sees the flag clear and
     * asks), and one that still holds notices (its owner held its lock, the
     * budget ran out) sets it again.  Coming back is asked for, since
     * freers ask no more while the flag is set and this pass may be
     * mh_trim's, not the task's.  (Orphans, never drained, do not count.) */
    bool again = false;
    if (atomic_load_explicit(&notices_waiting, memory_order_seq_cst)) {
        if (drained) {
            again = true;
        } else {
            atomic_store_explicit(&notices_waiting, false, memory_order_seq_cst);
            if ((again = notices_left()))
                atomic_store_explicit(&notices_waiting, true, memory_order_relaxed);
        }
        if (again) tp->young = true;
    }
    mhi_unlock(&mhi_caches.lock);
    if (again) bg_trim_request();
    if (tp->budget) mhi_central_trim(tp);
}

/* The background thread's task: advance the epoch when due, then trim
 * what has aged, within the budget. */
static int trim_task(void) {
    int64_t now = mhi_os_millitime(), period = mhi_heap_scavenge_delay() / 4;
    if (period < 10) period = 10;
    uint32_t epoch = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed);
    if (now - trim_epoch_ms >= period) {
        trim_epoch_ms = now;
        atomic_store_explicit(&mhi_trim_epoch, ++epoch, memory_order_relaxed);
    }
    mhi_trim_pass tp = {.epoch = epoch, .budget = TRIM_BUDGET};
    trim_caches(&tp);
    return !tp.budget ? MHI_BG_SOON : tp.young ? MHI_BG_LATER : MHI_BG_IDLE;
}

size_t mhi_cache_trim_now(void) {
    (void)mhi_cache_park_expire(INT64_MAX);
    mhi_trim_pass tp = {.epoch = atomic_load_explicit(&mhi_trim_epoch, memory_order_relaxed),
                        .force = true,
                        .budget = SIZE_MAX};
    trim_caches(&tp);
    return tp.bytes;
}
