/* os.c - Linux implementation of the OS layer (see os.h). */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MHI_HAS_TSAN 1
#endif
#endif
#ifndef MHI_HAS_TSAN
#define MHI_HAS_TSAN 0
#endif

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static _Atomic size_t os_page_size;

size_t mhi_os_page_size(void) {
    size_t n = atomic_load_explicit(&os_page_size, memory_order_relaxed);
    if (MHI_UNLIKELY(n == 0)) {
        long v = sysconf(_SC_PAGESIZE);
        n = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&os_page_size, n, memory_order_relaxed);
    }
    return n;
}

static void stat_add(_Atomic uint64_t *stat, int64_t delta) {
    if (stat) atomic_fetch_add_explicit(stat, (uint64_t)delta, memory_order_relaxed);
}

static void *map_none(void *hint, size_t len, int extra) {
    int errno_saved = errno;
    void *p = mmap(hint, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | extra, -1, 0);
    errno = errno_saved;
    return p == MAP_FAILED ? NULL : p;
}

void *mhi_os_reserve(void *hint, size_t len, size_t align, _Atomic uint64_t *stat) {
    void *p = NULL;
#if defined(__SANITIZE_THREAD__) || MHI_HAS_TSAN
    hint = NULL; /* ThreadSanitizer allows application mappings only in its own ranges */
#endif
    if (hint && ((uintptr_t)hint & (align - 1)) == 0)
        p = map_none(hint, len, MAP_FIXED_NOREPLACE);
    if (p && p != hint) { /* old kernels ignore the flag and treat it as a hint */
        munmap(p, len);
        p = NULL;
    }
    if (!p) {
        p = map_none(NULL, len, 0);
        if (!p) return NULL;
        if (((uintptr_t)p & (align - 1)) != 0) {
            /* Over-reserve and trim to the alignment. */
            munmap(p, len);
            if (len + align < len) return NULL;
            char *q = map_none(NULL, len + align, 0);
            if (!q) return NULL;
            uintptr_t a = ((uintptr_t)q + align - 1) & ~(uintptr_t)(align - 1);
            size_t head = a - (uintptr_t)q, tail = align - head;
            if (head) munmap(q, head);
            if (tail) munmap((char *)a + len, tail);
            p = (void *)a;
        }
    }
    stat_add(stat, (int64_t)len);
    return p;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t mhi_os_random64(void) {
    uint64_t r = 0;
    int errno_saved = errno;
#ifdef SYS_getrandom
    long n = syscall(SYS_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */);
    errno = errno_saved;
    if (n == (long)sizeof r) return r;
#endif
    /* The fallback never exposes the kernel's AT_RANDOM bytes (the C
     * library's stack canary comes from them): they go in only through
     * the one-way mix, with the clocks, the pid and ASLR'd addresses. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    clock_gettime(CLOCK_REALTIME, &ts);
    r = mix64(r ^ ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec));
    r = mix64(r ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&ts);
    r = mix64(r ^ (uint64_t)(uintptr_t)&mhi_os_random64);
    const uint64_t *at = (const uint64_t *)getauxval(AT_RANDOM);
    if (at) r = mix64(r ^ mix64(at[0] ^ mix64(at[1])));
    errno = errno_saved;
    return r;
}

bool mhi_os_commit(void *p, size_t len, _Atomic uint64_t *stat) {
    int errno_saved = errno;
    int rc = mprotect(p, len, PROT_READ | PROT_WRITE);
    errno = errno_saved;
    if (rc != 0) return false;
    stat_add(stat, (int64_t)len);
    return true;
}

bool mhi_os_decommit(void *p, size_t len) {
    int errno_saved = errno;
    int r = madvise(p, len, MADV_DONTNEED);
    errno = errno_saved;
    return r == 0;
}

void mhi_os_release(void *p, size_t len, _Atomic uint64_t *stat) {
    int errno_saved = errno;
    munmap(p, len);
    errno = errno_saved;
    stat_add(stat, -(int64_t)len);
}

void *mhi_os_alloc(size_t len, _Atomic uint64_t *stat) {
    int errno_saved = errno;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = errno_saved;
    if (p == MAP_FAILED) return NULL;
    stat_add(stat, (int64_t)len);
    return p;
}

size_t mhi_os_resident(void *p, size_t len) {
    size_t ps = mhi_os_page_size();
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(ps - 1);
    uintptr_t hi = ((uintptr_t)p + len + ps - 1) & ~(uintptr_t)(ps - 1);
    unsigned char vec[256];
    size_t n = 0;
    int errno_saved = errno;
    for (uintptr_t a = lo; a < hi;) {
        size_t chunk = (hi - a) / ps;
        if (chunk > sizeof vec) chunk = sizeof vec;
        if (mincore((void *)a, chunk * ps, vec) == 0)
            for (size_t i = 0; i < chunk; i++) n += vec[i] & 1;
        a += chunk * ps;
    }
    errno = errno_saved;
    return n;
}

int64_t mhi_os_nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mhi_os_millitime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mhi_os_write(int fd, const char *buf, size_t len) {
    int errno_saved = errno;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf += n;
        len -= (size_t)n;
    }
    errno = errno_saved;
}

void mhi_os_abort(void) {
    abort();
}

static inline void mhi_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

#if defined(__SANITIZE_THREAD__) || MHI_HAS_TSAN
/* ThreadSanitizer holds a signal that arrives during a system call it
 * does not know (futex) until the thread next enters its runtime: a
 * waiter that slept without a timeout would never take the collector's
 * stop signal, and the collector (holding the lock) would wait for it
 * forever.  So lock waiters sleep 10 ms at a time there. */
static const struct timespec lock_nap = {0, 10 * 1000 * 1000};
#define LOCK_WAIT_TIMEOUT (&lock_nap)
#else
#define LOCK_WAIT_TIMEOUT NULL
#endif

void mhi_lock_slow(mhi_lock_t *l) {
    int errno_saved = errno;
    /* Spin a little: heap critical sections are short. */
    for (int i = 0; i < 100; i++) {
        uint32_t expect = 0;
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&l->state, &expect, 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed)) {
            errno = errno_saved;
            return;
        }
        mhi_cpu_relax();
    }
    /* Mark contended and sleep until woken. */
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, (uint32_t *)&l->state, FUTEX_WAIT_PRIVATE, 2, LOCK_WAIT_TIMEOUT, NULL,
                0);
    errno = errno_saved;
}

void mhi_unlock_wake(mhi_lock_t *l) {
    int errno_saved = errno;
    futex(&l->state, FUTEX_WAKE_PRIVATE, 1);
    errno = errno_saved;
}

#ifdef MHI_DEBUG
/* The lock-order check: how many locks of each rank this thread holds
 * (taken with mhi_lock or mhi_trylock), and a tag naming the thread. */
static __thread uint8_t lock_held[MHI_RANK_COUNT];
static __thread char lock_self_tag;

static void lock_fatal(const char *what, const mhi_lock_t *l) {
    /* (no print.h here: the os layer is below it) */
    static const char hex[] = "0123456789abcdef";
    char buf[96] = "mheap: ";
    size_t n = 7;
    for (const char *w = what; *w && n < 60; w++) buf[n++] = *w;
    buf[n++] = ':';
    buf[n++] = ' ';
    buf[n++] = '0';
    buf[n++] = 'x';
    uintptr_t a = (uintptr_t)l;
    int top = 60;
    while (top > 0 && !((a >> top) & 15)) top -= 4;
    for (; top >= 0; top -= 4) buf[n++] = hex[(a >> top) & 15];
    buf[n++] = '\n';
    mhi_os_write(2, buf, n);
    mhi_os_abort();
}

void mhi_lock_debug_order(const mhi_lock_t *l) {
    if (l->rank == MHI_RANK_NONE) return;
    for (int r = l->rank; r < MHI_RANK_COUNT; r++)
        if (lock_held[r]) lock_fatal("lock order violated", l);
}

void mhi_lock_debug_acquired(mhi_lock_t *l, bool counted) {
    atomic_store_explicit(&l->holder, &lock_self_tag, memory_order_relaxed);
    if (counted && l->rank != MHI_RANK_NONE) lock_held[l->rank]++;
}

void mhi_lock_debug_release(mhi_lock_t *l, bool counted) {
    if (atomic_load_explicit(&l->holder, memory_order_relaxed) != &lock_self_tag)
        lock_fatal("unlock of a lock this thread does not hold", l);
    atomic_store_explicit(&l->holder, NULL, memory_order_relaxed);
    if (counted && l->rank != MHI_RANK_NONE) lock_held[l->rank]--;
}

void mhi_lock_assert_held(const mhi_lock_t *l) {
    if (atomic_load_explicit(&l->holder, memory_order_relaxed) != &lock_self_tag)
        lock_fatal("lock not held", l);
}
#endif

static pthread_key_t os_thread_key;

bool mhi_os_thread_key_create(void (*destructor)(void *)) {
    return pthread_key_create(&os_thread_key, destructor) == 0;
}

void mhi_os_thread_set(void *value) {
    pthread_setspecific(os_thread_key, value);
}

void mhi_os_yield(void) {
    sched_yield();
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void mhi_os_populate(void *p, size_t len) {
    static _Atomic bool unsupported;
    if (atomic_load_explicit(&unsupported, memory_order_relaxed)) return;
    int errno_saved = errno;
    if (madvise(p, len, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        atomic_store_explicit(&unsupported, true, memory_order_relaxed);
    errno = errno_saved;
}

size_t mhi_os_memory_limit(void) {
    static _Atomic size_t limit;
    size_t l = atomic_load_explicit(&limit, memory_order_relaxed);
    if (MHI_LIKELY(l)) return l;
    int errno_saved = errno;
    l = SIZE_MAX / 2;
    struct sysinfo si;
    if (sysinfo(&si) == 0) {
        unsigned __int128 b = ((unsigned __int128)si.totalram + si.totalswap) * si.mem_unit;
        if (b && b < l) l = (size_t)b;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < l)
        l = (size_t)rl.rlim_cur;
    errno = errno_saved;
    atomic_store_explicit(&limit, l, memory_order_relaxed);
    return l;
}

bool mhi_os_thread_start(void *(*fn)(void *), void *arg) {
    int errno_saved = errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
    pthread_attr_t attr;
    bool ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 << 10);
        pthread_t t;
        ok = pthread_create(&t, &attr, fn, arg) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = errno_saved;
    return ok;
}

unsigned mhi_os_ncpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

void mhi_os_futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ms) {
    int errno_saved = errno;
    struct timespec ts, *tp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = (time_t)(timeout_ms / 1000);
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
    errno = errno_saved;
}

void mhi_os_futex_wake_all(_Atomic uint32_t *addr) {
    int errno_saved = errno;
    futex(addr, FUTEX_WAKE_PRIVATE, 0x7fffffff);
    errno = errno_saved;
}

void mhi_os_futex_wake(_Atomic uint32_t *addr) {
    int errno_saved = errno;
    futex(addr, FUTEX_WAKE_PRIVATE, 1);
    errno = errno_saved;
}

/* glibc 2.32 and later: false from the process's first pthread_create
 * on, never true again (not even in a child of fork); weak, so that a C
 * library without it reads as threaded. */
extern char __libc_single_threaded __attribute__((weak));

bool mhi_os_single_threaded(void) {
    return &__libc_single_threaded != NULL &&
           __atomic_load_n(&__libc_single_threaded, __ATOMIC_RELAXED) != 0;
}

void mhi_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    pthread_atfork(prepare, parent, child);
}

/* glibc's lock of its list of open streams (libc.so exports these three
 * since 2.2.5, without a header; weak, so a C library without them leaves
 * them NULL).  glibc's fork runs the atfork prepare handlers first and
 * takes this lock after them, but stdio holds it while it takes a stream's
 * lock (fflush(NULL)), and a stream's lock while it allocates (getline):
 * a prepare handler that takes the allocator's locks and then waits on it
 * closes a cycle.  So the handlers take it before the allocator's locks.
 * It is recursive, so fork takes it again after them; the parent releases
 * it after the allocator's, and the child resets it (as glibc's fork does
 * in a child of a process with several threads). */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

static bool stdio_list_lock(void) { return _IO_list_lock && _IO_list_unlock && _IO_list_resetlock; }

void mhi_os_fork_stdio_prepare(void) {
    if (stdio_list_lock()) _IO_list_lock();
}
void mhi_os_fork_stdio_parent(void) {
    if (stdio_list_lock()) _IO_list_unlock();
}
void mhi_os_fork_stdio_child(void) {
    if (stdio_list_lock()) _IO_list_resetlock();
}

int mhi_os_dup_fd(int fd) {
    int errno_saved = errno;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    errno = errno_saved;
    return d < 0 ? fd : d;
}

/* ---- for the collector ---- */

#define OS_MAX_KEYS 4
static pthread_key_t os_keys[OS_MAX_KEYS];
static _Atomic unsigned os_nkeys;

bool mhi_os_key_new(unsigned *key, void (*destructor)(void *)) {
    unsigned k = atomic_fetch_add(&os_nkeys, 1);
    if (k >= OS_MAX_KEYS || pthread_key_create(&os_keys[k], destructor) != 0) return false;
    *key = k;
    return true;
}

void mhi_os_key_set(unsigned key, void *value) {
    pthread_setspecific(os_keys[key], value);
}

uintptr_t mhi_os_thread_id(void) { return (uintptr_t)pthread_self(); }

bool mhi_os_thread_kill(uintptr_t id, int sig) {
    int errno_saved = errno;
    bool ok = pthread_kill((pthread_t)id, sig) == 0;
    errno = errno_saved;
    return ok;
}

int mhi_os_stop_signal_default(void) { return SIGRTMIN + 5; }

bool mhi_os_signal_install(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL) == 0;
}

void mhi_os_signal_unblock(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

bool mhi_os_stack_bounds(uintptr_t *lo, uintptr_t *hi) {
    int errno_saved = errno;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    bool ok = pthread_getattr_np(pthread_self(), &attr) == 0;
    if (ok) {
        ok = pthread_attr_getstack(&attr, &addr, &size) == 0;
        pthread_attr_destroy(&attr);
    }
    errno = errno_saved;
    if (!ok) return false;
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return true;
}

typedef struct {
    bool tls;
    void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi);
    void *ctx;
} each_range;

static int each_phdr(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    each_range *er = arg;
    uintptr_t relro_lo = 0, relro_hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = info->dlpi_addr + ph->p_vaddr;
            relro_hi = relro_lo + ph->p_memsz;
        }
        if (er->tls && ph->p_type == PT_TLS && info->dlpi_tls_data)
            er->fn(er->ctx, (uintptr_t)info->dlpi_tls_data,
                   (uintptr_t)info->dlpi_tls_data + ph->p_memsz);
    }
    if (er->tls) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        /* minus the part made read-only after relocation */
        if (relro_hi > lo && relro_lo < hi) {
            if (relro_lo > lo) er->fn(er->ctx, lo, relro_lo);
            if (relro_hi < hi) er->fn(er->ctx, relro_hi, hi);
        } else {
            er->fn(er->ctx, lo, hi);
        }
    }
    return 0;
}

typedef struct {
    void (*fn)(void *arg);
    void *arg;
    bool done;
} locked_call;

static int call_locked(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)info;
    (void)size;
    locked_call *c = arg;
    if (!c->done) {
        c->done = true;
        c->fn(c->arg);
    }
    return 1; /* (once) */
}

void mhi_os_with_objects_locked(void (*fn)(void *arg), void *arg) {
    locked_call c = {fn, arg, false};
    dl_iterate_phdr(call_locked, &c);
    if (!c.done) fn(arg); /* (no object at all: not on Linux) */
}

void mhi_os_each_data_range(bool tls, void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi),
                            void *ctx) {
    each_range er = {tls, fn, ctx};
    int errno_saved = errno;
    dl_iterate_phdr(each_phdr, &er);
    errno = errno_saved;
}

#if MHEAP_SECURE
bool mhi_os_protect(void *p, size_t len, bool access) {
    int errno_saved = errno;
    int rc = mprotect(p, len, access ? PROT_READ | PROT_WRITE : PROT_NONE);
    errno = errno_saved;
    return rc == 0;
}

static struct sigaction os_fault_old[2]; /* SIGSEGV, SIGBUS */

bool mhi_os_fault_install(void (*handler)(int, void *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))handler;
    sigemptyset(&sa.sa_mask);
    /* On the alternate stack when the thread has one (a stack overflow
     * still reaches the program's own handler, which this chains to). */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    int errno_saved = errno;
    bool ok = sigaction(SIGSEGV, &sa, &os_fault_old[0]) == 0 &&
              sigaction(SIGBUS, &sa, &os_fault_old[1]) == 0;
    errno = errno_saved;
    return ok;
}

/* Put back the disposition of sig that mhi_os_fault_install replaced. */
static void fault_restore(int sig) {
    int errno_saved = errno;
    sigaction(sig, &os_fault_old[sig == SIGBUS], NULL);
    errno = errno_saved;
}

/* Send sig again to the calling thread with the siginfo_t it came with:
 * for a signal another process or the program sent (kill, raise), not a
 * fault, a return from the handler does not repeat it. */
static void fault_resend(int sig, const void *info) {
    int errno_saved = errno;
    siginfo_t si;
    memcpy(&si, info, sizeof si);
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    /* (blocked while the handler runs: pending until it returns; the same
     * siginfo, so a handler put back sees the sender's) */
    if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si) != 0)
        (void)syscall(SYS_tgkill, pid, tid, sig);
    errno = errno_saved;
}

void mhi_os_fault_chain(int sig, void *info, void *ctx) {
    struct sigaction *old = &os_fault_old[sig == SIGBUS];
    /* A sent signal the program ignores: ignored, and mheap's handler
     * stays. */
    if (old->sa_handler == SIG_IGN && ((siginfo_t *)info)->si_code <= 0) return;
    if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
        /* The kernel's own action: put it back; a fault repeats under it
         * on return, a sent signal is sent again (a return drops it). */
        fault_restore(sig);
        if (((siginfo_t *)info)->si_code <= 0) fault_resend(sig, info);
        return;
    }
    /* As the kernel would have run it: its mask added to ours (which
     * blocks sig already; not with SA_NODEFER, unless its mask has sig).
     * The mask comes back on return (from the context), or with its
     * siglongjmp. */
    int errno_saved = errno;
    pthread_sigmask(SIG_BLOCK, &old->sa_mask, NULL);
    if ((old->sa_flags & SA_NODEFER) && !sigismember(&old->sa_mask, sig)) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    struct sigaction h = *old;
    /* (SA_RESETHAND: it runs once, then the default action is the one
     * chained to) */
    if (h.sa_flags & SA_RESETHAND) {
        old->sa_handler = SIG_DFL;
        old->sa_flags = 0;
    }
    errno = errno_saved;
    if (h.sa_flags & SA_SIGINFO) h.sa_sigaction(sig, (siginfo_t *)info, ctx);
    else h.sa_handler(sig);
}

bool mhi_os_fault_is_fetch(const void *ctx) {
#if defined(__x86_64__) && defined(REG_ERR)
    const ucontext_t *uc = ctx;
    return ctx && (uc->uc_mcontext.gregs[REG_ERR] & 0x10) != 0; /* the fetch bit */
#else
    (void)ctx;
    return false;
#endif
}
#endif
