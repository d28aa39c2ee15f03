/* os.h - the operating-system layer: the only place that calls mmap,
 * madvise, clock_gettime, futex, write, abort.
 *
 * Address space moves through four states, as in the Go runtime's mem.go:
 *
 *   None --reserve--> Reserved --commit--> Ready --decommit--> Prepared
 *     ^                  |                   ^                    |
 *     +-----release------+                   +-------reuse--------+
 *
 * Reserved: address range is ours but not accessible (PROT_NONE).
 * Ready:    readable and writable; may be resident.
 * Prepared: readable and writable, contents dropped (MADV_DONTNEED): reads
 *           as zero, not resident until touched.  On Linux, writing to it
 *           makes it Ready again with no call.
 *
 * Each call does one transition.  Those given a counter (reserve, commit,
 * release, alloc) add or subtract the bytes they moved; decommit keeps no
 * count (the page heap counts released pages itself, per page).  Failures
 * return NULL / false and never abort. */
#ifndef MHEAP_OS_H
#define MHEAP_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MHI_LIKELY(x) __builtin_expect(!!(x), 1)
#define MHI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MHI_NOINLINE __attribute__((noinline))
#define MHI_NORETURN __attribute__((noreturn))
#define MHI_CACHE_LINE 64

/* Reserve len bytes aligned to align (a power of two >= the OS page size),
 * at hint if that address is free.  Returns NULL on failure. */
void *mhi_os_reserve(void *hint, size_t len, size_t align, _Atomic uint64_t *stat);
/* Reserved -> Ready. */
bool mhi_os_commit(void *p, size_t len, _Atomic uint64_t *stat);
/* Ready -> Prepared: drop the contents, keep the range. */
/* False if the OS refused (e.g. the pages are locked by mlockall): the
 * pages then keep their contents. */
bool mhi_os_decommit(void *p, size_t len);
/* Reserved/Ready -> None. */
void mhi_os_release(void *p, size_t len, _Atomic uint64_t *stat);
/* Reserve and commit in one step, for metadata: zeroed memory or NULL. */
void *mhi_os_alloc(size_t len, _Atomic uint64_t *stat);

/* 64 random bits: the kernel's getrandom(2), without blocking; where that
 * fails (no entropy yet, a seccomp filter, an old kernel), a mix of the
 * clocks, the process id and the addresses ASLR chose.  Allocates nothing. */
uint64_t mhi_os_random64(void);

/* Number of pages of [p, p+len) resident in memory (mincore). */
size_t mhi_os_resident(void *p, size_t len);

size_t mhi_os_page_size(void);

/* A cheap coarse monotonic millisecond clock, for slow-path time checks,
 * and a precise nanosecond one (pause times). */
int64_t mhi_os_millitime(void);
int64_t mhi_os_nanotime(void);

/* Messages: write(2) only, never stdio. */
void mhi_os_write(int fd, const char *buf, size_t len);
MHI_NORETURN void mhi_os_abort(void);
/* A close-on-exec copy of fd (or fd itself if that fails): for messages at
 * exit, after the program may have closed its stderr. */
int mhi_os_dup_fd(int fd);

/* ---- locks --------------------------------------------------------------
 * A futex-based mutex (0 unlocked, 1 locked, 2 locked with waiters),
 * statically initialisable with MHI_LOCK_INIT(rank); safe to use before
 * anything else in the process is set up.
 *
 * The lock order, in one place: a thread may take a lock only while every
 * lock it holds has a lower rank, so two locks of one rank are never held
 * together.  Debug builds (MHI_DEBUG) check it on every mhi_lock (trylock
 * cannot deadlock and is not checked), and mhi_lock_assert_held checks
 * that the calling thread holds a lock; release builds compile both away. */
enum mhi_lock_rank {
    MHI_RANK_NONE = 0,     /* not checked */
    MHI_RANK_OPTIONS = 1,  /* options.c: the one-time read of MHEAP_OPTIONS */
    MHI_RANK_GC_WORLD = 2, /* gc: one collection at a time; the thread list */
    MHI_RANK_GC_ROOTS = 3, /* gc: the added root ranges */
    MHI_RANK_CACHES = 4,   /* cache.c: the list and pool of thread caches */
    MHI_RANK_CACHE = 5,    /* a thread cache's own lock */
    MHI_RANK_CENTRAL = 6,  /* a size class's central list */
    MHI_RANK_GC = 7,       /* gc: the GC heap's span lists and counters */
    MHI_RANK_HEAP = 8,     /* the page heap */
    MHI_RANK_SPECIAL = 9,  /* a span's specials */
    MHI_RANK_PERSIST = 10, /* fixalloc.c: persistent metadata chunks */
    MHI_RANK_COUNT
};

typedef struct {
    _Atomic uint32_t state;
#ifdef MHI_DEBUG
    uint8_t rank;
    const void *_Atomic holder; /* the holding thread's tag, or NULL */
#endif
} mhi_lock_t;
#ifdef MHI_DEBUG
#define MHI_LOCK_INIT(r) {.state = 0, .rank = (r)}
#else
#define MHI_LOCK_INIT(r) {0}
#endif

void mhi_lock_slow(mhi_lock_t *l);
void mhi_unlock_wake(mhi_lock_t *l);

#ifdef MHI_DEBUG
void mhi_lock_debug_order(const mhi_lock_t *l);
void mhi_lock_debug_acquired(mhi_lock_t *l, bool counted);
void mhi_lock_debug_release(mhi_lock_t *l, bool counted);
void mhi_lock_assert_held(const mhi_lock_t *l);
#define MHI_LOCK_ORDER(l) mhi_lock_debug_order(l)
#define MHI_LOCK_ACQUIRED(l, c) mhi_lock_debug_acquired(l, c)
#define MHI_LOCK_RELEASE(l, c) mhi_lock_debug_release(l, c)
#else
#define MHI_LOCK_ORDER(l) ((void)0)
#define MHI_LOCK_ACQUIRED(l, c) ((void)0)
#define MHI_LOCK_RELEASE(l, c) ((void)0)
#define mhi_lock_assert_held(l) ((void)0)
#endif

/* A lock set up at run time (in memory that may hold an old lock). */
static inline void mhi_lock_init(mhi_lock_t *l, enum mhi_lock_rank rank) {
    atomic_store_explicit(&l->state, 0, memory_order_relaxed);
#ifdef MHI_DEBUG
    l->rank = (uint8_t)rank;
    atomic_store_explicit(&l->holder, NULL, memory_order_relaxed);
#else
    (void)rank;
#endif
}

static inline void mhi_lock_raw(mhi_lock_t *l) {
    uint32_t expect = 0;
    if (MHI_LIKELY(atomic_compare_exchange_strong_explicit(
            &l->state, &expect, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    mhi_lock_slow(l);
}
static inline void mhi_unlock_raw(mhi_lock_t *l) {
    if (MHI_UNLIKELY(atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2))
        mhi_unlock_wake(l);
}

static inline void mhi_lock(mhi_lock_t *l) {
    MHI_LOCK_ORDER(l);
    mhi_lock_raw(l);
    MHI_LOCK_ACQUIRED(l, true);
}
static inline bool mhi_trylock(mhi_lock_t *l) {
    uint32_t expect = 0;
    bool ok = atomic_compare_exchange_strong_explicit(&l->state, &expect, 1,
                                                      memory_order_acquire,
                                                      memory_order_relaxed);
    if (ok) MHI_LOCK_ACQUIRED(l, true);
    return ok;
}
static inline void mhi_unlock(mhi_lock_t *l) {
    MHI_LOCK_RELEASE(l, true);
    mhi_unlock_raw(l);
}
/* fork(): the prepare handlers take every lock at once, outside the
 * order (nothing else can run meanwhile: they hold the outermost first). */
static inline void mhi_lock_for_fork(mhi_lock_t *l) {
    mhi_lock_raw(l);
    MHI_LOCK_ACQUIRED(l, false);
}
static inline void mhi_unlock_for_fork(mhi_lock_t *l) {
    MHI_LOCK_RELEASE(l, false);
    mhi_unlock_raw(l);
}
/* After fork() in the child: the lock's holder may not exist; reset it. */
static inline void mhi_lock_reset(mhi_lock_t *l) {
    atomic_store_explicit(&l->state, 0, memory_order_relaxed);
#ifdef MHI_DEBUG
    atomic_store_explicit(&l->holder, NULL, memory_order_relaxed);
#endif
}

/* Per-thread hook: register a destructor called at thread exit with the
 * value set by mhi_os_thread_set (pthread key).  Returns false on failure. */
bool mhi_os_thread_key_create(void (*destructor)(void *));
void mhi_os_thread_set(void *value);
void mhi_os_yield(void);
/* Make [p, p+len) resident and writable now (MADV_POPULATE_WRITE), one
 * call instead of a fault per page; does nothing where the kernel lacks it
 * (before Linux 5.14). */
void mhi_os_populate(void *p, size_t len);

/* The most heap memory that could ever be backed: physical memory plus
 * swap, or RLIMIT_AS if that is lower (read once). */
size_t mhi_os_memory_limit(void);

/* Start a detached thread running fn(arg) with every signal blocked.
 * False on failure. */
bool mhi_os_thread_start(void *(*fn)(void *), void *arg);
/* The CPUs this process may run on (at least 1). */
unsigned mhi_os_ncpu(void);
/* Sleep until *addr != val, a wake, or timeout_ms passes (< 0: no timeout). */
void mhi_os_futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ms);
void mhi_os_futex_wake(_Atomic uint32_t *addr);
void mhi_os_futex_wake_all(_Atomic uint32_t *addr);

/* More pthread keys: one with its destructor; false on failure. */
bool mhi_os_key_new(unsigned *key, void (*destructor)(void *));
void mhi_os_key_set(unsigned key, void *value);

/* ---- for the collector ---- */
/* The calling thread's id, and a signal sent to a thread by id (false if
 * it could not be sent). */
uintptr_t mhi_os_thread_id(void);
bool mhi_os_thread_kill(uintptr_t id, int sig);
/* The default stop signal (a real-time signal: SIGRTMIN + 5). */
int mhi_os_stop_signal_default(void);
/* Install handler for sig with SA_RESTART | SA_SIGINFO and every signal
 * blocked while it runs; false on failure. */
bool mhi_os_signal_install(int sig, void (*handler)(int));
/* Make sure sig is not blocked in the calling thread. */
void mhi_os_signal_unblock(int sig);
/* The calling thread's stack: [*lo, *hi) (hi is the base, the highest
 * address).  May allocate (call with no allocator lock held). */
bool mhi_os_stack_bounds(uintptr_t *lo, uintptr_t *hi);
/* Every writable data range of the program and its loaded libraries
 * (writable PT_LOAD segments less PT_GNU_RELRO), and, with tls, instead
 * every static TLS block of the calling thread: fn(ctx, lo, hi) for each.
 * Takes the loader's lock: not while other threads are stopped. */
/* Run fn(arg) with the dynamic loader's list of loaded objects locked
 * (inside a dl_iterate_phdr callback: glibc holds its lock there, and takes
 * it recursively, so mhi_os_each_data_range may be called from fn): no
 * object is loaded or unloaded meanwhile. */
void mhi_os_with_objects_locked(void (*fn)(void *arg), void *arg);
void mhi_os_each_data_range(bool tls, void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi),
                            void *ctx);

/* True while the process has only ever had one thread: the C library
 * says no thread was created (glibc's __libc_single_threaded); false
 * where it cannot say. */
bool mhi_os_single_threaded(void);
/* pthread_atfork. */
void mhi_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
/* The C library's stream list lock around fork, outside every lock of
 * mheap's (os.c says why): prepare takes it, the parent releases it, the
 * child resets it.  No-ops where the C library has no such lock. */
void mhi_os_fork_stdio_prepare(void);
void mhi_os_fork_stdio_parent(void);
void mhi_os_fork_stdio_child(void);

#if MHEAP_SECURE
/* ---- for the secure build (secure.c) ---- */
/* Make [p, p+len) readable and writable (access) or inaccessible
 * (PROT_NONE); never executable.  False on failure. */
bool mhi_os_protect(void *p, size_t len, bool access);
/* The fault handler: handler(sig, info, ucontext) for SIGSEGV and SIGBUS,
 * with SA_SIGINFO | SA_ONSTACK, keeping the dispositions it
 * replaces (mhi_os_fault_chain passes on to them).  False on failure. */
bool mhi_os_fault_install(void (*handler)(int, void *, void *));
/* Pass signal sig (SIGSEGV or SIGBUS; info, ctx as the handler got them)
 * to the disposition mhi_os_fault_install replaced, leaving mheap's in
 * place: a handler is called with the same arguments (sa_sigaction for
 * SA_SIGINFO, else sa_handler) under its own signal mask; for SIG_DFL and
 * SIG_IGN the disposition is put back, and a sent signal sent again, so
 * that on return the kernel's action follows (async-signal-safe). */
void mhi_os_fault_chain(int sig, void *info, void *ctx);
/* Whether the fault the signal context ctx describes was an instruction
 * fetch (x86-64 page-fault error code; false where it cannot tell). */
bool mhi_os_fault_is_fetch(const void *ctx);
#endif

#endif
