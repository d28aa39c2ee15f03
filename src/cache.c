/* cache.c - thread caches: creation, slow paths, thread exit, fork. */
#include "cache.h"

#include "fixalloc.h"
#include "options.h"
#include "pageheap.h"
#include "print.h"

mhi_span mhi_span_empty;

#define EMPTY_CUR                                                                  \
    .cur = {[0 ... MHI_NUM_CLASSES - 1] = &mhi_span_empty}
mhi_cache mhi_cache_empty = {EMPTY_CUR};
mhi_cache mhi_cache_dead = {EMPTY_CUR};
__thread mhi_cache *mhi_tls_cache __attribute__((tls_model("initial-exec"))) = &mhi_cache_empty;

/* cache_lock guards: the cache fixalloc, the list of live caches and the
 * pool of unused ones, and the one-time set-up below. */
static mhi_lock_t cache_lock = MHI_LOCK_INIT;
static mhi_fixalloc cache_alloc;
static _Atomic uint64_t cache_sys;
static mhi_cache *cache_pool;
static bool cache_setup_done, cache_key_ok;
static uint64_t ncaches_live;

/* Pending frees per class before a flush: about 64 KiB or 64 objects. */
static uint32_t pending_max(size_t c) {
    uint32_t n = (uint32_t)((64u << 10) / mhi_class_size[c]);
    return n < 4 ? 4 : n > 64 ? 64 : n;
}

static void thread_exit(void *arg);

/* fork(): take every allocator lock in order (cache, central, heap) so
 * the child starts with consistent structures; reset them in the child,
 * where the threads that may have held them do not exist. */
static void fork_prepare(void) {
    mhi_cache_fork_prepare();
    mhi_central_fork_prepare();
    mhi_heap_fork_prepare();
}
static void fork_parent(void) {
    mhi_heap_fork_parent();
    mhi_central_fork_parent();
    mhi_cache_fork_parent();
}
static void fork_child(void) {
    mhi_heap_fork_child();
    mhi_central_fork_child();
    mhi_cache_fork_child();
}
static _Atomic bool atfork_done;

static void cache_setup_locked(void) {
    if (cache_setup_done) return;
    cache_setup_done = true;
    mhi_fixalloc_init(&cache_alloc, sizeof(mhi_cache), &cache_sys);
    cache_key_ok = mhi_os_thread_key_create(thread_exit);
}

static mhi_cache *cache_create(void) {
    mhi_lock(&cache_lock);
    cache_setup_locked();
    mhi_cache *c = cache_pool;
    if (c) cache_pool = c->next;
    else c = mhi_fixalloc_alloc(&cache_alloc);
    if (c) ncaches_live++;
    mhi_unlock(&cache_lock);
    if (!c) return NULL;
    for (size_t i = 0; i < MHI_NUM_CLASSES; i++) {
        c->cur[i] = &mhi_span_empty;
        c->pending[i] = NULL;
        c->npending[i] = 0;
    }
    c->live = true;
    mhi_tls_cache = c;
    if (cache_key_ok) mhi_os_thread_set(c);
    /* Once, outside every lock: pthread_atfork may itself allocate, which
     * now finds this thread's cache. */
    if (!atomic_load_explicit(&atfork_done, memory_order_relaxed) &&
        !atomic_exchange(&atfork_done, true)) {
        (void)mhi_option(MHI_OPT_stats); /* read MHEAP_OPTIONS */
        mhi_os_atfork(fork_prepare, fork_parent, fork_child);
    }
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

void *mhi_cache_alloc_slow(size_t c) {
    mhi_cache *cache = cache_get();
    if (!cache) return mhi_central_alloc_one(c);
    mhi_span *s = cache->cur[c];
    if (s != &mhi_span_empty) {
        if (atomic_load_explicit(&s->xfree, memory_order_relaxed) && mhi_span_collect_xfree(s))
            return mhi_cache_alloc(c);
        cache->cur[c] = &mhi_span_empty;
        mhi_central_uncache_span(s);
    }
    s = mhi_central_cache_span(c, cache);
    if (!s) return NULL;
    cache->cur[c] = s;
    return mhi_cache_alloc(c);
}

static void flush_pending(mhi_cache *cache, size_t c) {
    void *list = cache->pending[c];
    cache->pending[c] = NULL;
    cache->npending[c] = 0;
    if (list) mhi_central_free_list(c, list, cache);
}

void mhi_cache_free_slow(void *p) {
    mhi_span *s = mhi_heap_lookup_maybe((uintptr_t)p);
    if (!s) mhi_heap_bad_free((uintptr_t)p);
    if (s->kind == MHI_KIND_LARGE) {
        if ((uintptr_t)p != s->base) mhi_malloc_fatal("invalid pointer", p);
        mhi_heap_free(s);
        return;
    }
    if (s->kind != MHI_KIND_SMALL) mhi_malloc_fatal("invalid pointer", p);
    size_t c = s->sizeclass;
    uintptr_t off = (uintptr_t)p - s->base;
    uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
    if ((uintptr_t)idx * s->elemsize != off) mhi_malloc_fatal("invalid pointer", p);
    mhi_cache *cache = cache_get();
    if (cache && s == cache->cur[c]) {
        mhi_span_put(s, p); /* our span: the fast path declined a double free */
        return;
    }
    /* Not our span: record the free now, so that a second free of p by any
     * thread is caught at once, whenever this one is applied. */
    mhi_span_mark_remote(s, p);
    if (!cache) {
        *(void **)p = NULL;
        mhi_central_free_list(c, p, NULL);
        return;
    }
    *(void **)p = cache->pending[c];
    cache->pending[c] = p;
    if (++cache->npending[c] >= pending_max(c)) flush_pending(cache, c);
}

static void cache_flush(mhi_cache *cache) {
    for (size_t c = 1; c < MHI_NUM_CLASSES; c++) {
        flush_pending(cache, c);
        mhi_span *s = cache->cur[c];
        if (s != &mhi_span_empty) {
            cache->cur[c] = &mhi_span_empty;
            mhi_central_uncache_span(s);
        }
    }
}

void mhi_cache_flush(void) {
    mhi_cache *cache = mhi_tls_cache;
    if (cache != &mhi_cache_empty && cache != &mhi_cache_dead) cache_flush(cache);
}

void mhi_cache_release(void) {
    mhi_cache *cache = mhi_tls_cache;
    if (cache == &mhi_cache_empty || cache == &mhi_cache_dead) return;
    mhi_tls_cache = &mhi_cache_dead;
    cache_flush(cache);
    cache->live = false;
    mhi_lock(&cache_lock);
    cache->next = cache_pool;
    cache_pool = cache;
    ncaches_live--;
    mhi_unlock(&cache_lock);
}

static void thread_exit(void *arg) {
    (void)arg;
    mhi_cache_release();
}

uint64_t mhi_cache_count(void) {
    mhi_lock(&cache_lock);
    uint64_t n = ncaches_live;
    mhi_unlock(&cache_lock);
    return n;
}

void mhi_cache_fork_prepare(void) { mhi_lock(&cache_lock); }
void mhi_cache_fork_parent(void) { mhi_unlock(&cache_lock); }
void mhi_cache_fork_child(void) { mhi_lock_reset(&cache_lock); }
