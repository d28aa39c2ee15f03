/* test_secure.c - the secure build (libmheap-secure.a, linked with its libc
 * overrides): each catch in a child process, with its exact message, and
 * the behaviour the secure build documents (docs/design.md, "Secure
 * mode"): zeroed blocks, malloc_usable_size, delayed and shuffled reuse, no
 * executable heap page.  Each check is a row (`test_secure ROW`, or every
 * row without an argument). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* (<malloc.h> is src/malloc.h here) */
size_t malloc_usable_size(void *p);
void free_sized(void *p, size_t size);

#include "check.h"
#include "child.h"
#include "pageheap.h"

/* (calls below misuse memory on purpose: keep the compiler from seeing
 * through them) */
static void *volatile sink;
static void *opaque(void *p) {
    sink = p;
    return sink;
}

/* ---- overflow caught by the canary, on free and realloc ---- */

typedef struct {
    size_t size, by;
    int how; /* 0: free, 1: realloc, 2: malloc_usable_size, 3: free_sized */
} overflow_arg;

static void do_overflow(uintptr_t a) {
    const overflow_arg *o = (const overflow_arg *)a;
    char *p = opaque(malloc(o->size));
    memset(p, 'a', o->size + o->by);
    if (o->how == 0) free(p);
    else if (o->how == 1) sink = realloc(p, o->size * 2);
    else if (o->how == 2) sink = (void *)(uintptr_t)malloc_usable_size(p);
    else free_sized(p, o->size);
}

/* The block a child's first malloc(size) returns: the parent's first
 * malloc(size) after fork would return it too, but the order of a fresh
 * span is random; the child reports it instead, through a pipe. */
static uintptr_t first_block(size_t size) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        uintptr_t p = (uintptr_t)opaque(malloc(size));
        ssize_t w = write(fds[1], &p, sizeof p);
        _exit(w == (ssize_t)sizeof p ? 0 : 1);
    }
    close(fds[1]);
    uintptr_t p = 0;
    ssize_t r = read(fds[0], &p, sizeof p);
    close(fds[0]);
    child_wait(pid);
    REQUIRE(r == (ssize_t)sizeof p);
    return p;
}

/* The overflow is named at the block ("heap overflow"), or, where the
 * block is the last of its span (the shuffle puts it there one time in
 * nelems) and the overflow runs on past its slot into the guard page, by
 * the fault at that page's first byte. */
static void expect_overflow(const char *name, const overflow_arg *o, uintptr_t p) {
    char want[96], guard[96], got[1024];
    snprintf(want, sizeof want, "mheap: heap overflow: 0x%" PRIxPTR "\n", p);
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE), end = p + o->size;
    uintptr_t g = (end + ps - 1) & ~(ps - 1); /* the first page boundary at or past the end */
    snprintf(guard, sizeof guard, "mheap: heap overflow (guard page): 0x%" PRIxPTR "\n", g);
    bool may_fault = g < end + o->by;
    int st = child_run(do_overflow, (uintptr_t)o, got, sizeof got);
    bool aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    bool named = strcmp(got, want) == 0 || (may_fault && strcmp(got, guard) == 0);
    CHECK(aborted);
    CHECK(named);
    if (!aborted || !named)
        fprintf(stderr, "  %s: status %#x, want \"%.*s\\n\"%s, got \"%s\"\n", name, st,
                (int)strlen(want) - 1, want, may_fault ? " (or the guard page's)" : "", got);
}

static void row_overflow(void) {
    static const size_t sizes[] = {24, 1000, 1024, 4000, 4096, 256 << 10, (256 << 10) + 100,
                                   1 << 20};
    static const size_t bys[] = {1, 32};
    static const char *hows[] = {"free", "realloc", "malloc_usable_size", "free_sized"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < 2; j++)
            for (int h = 0; h < 4; h++) {
                overflow_arg o = {sizes[i], bys[j], h};
                uintptr_t p = first_block(o.size);
                char name[96];
                snprintf(name, sizeof name, "overflow of %zu by %zu, %s", o.size, o.by, hows[h]);
                expect_overflow(name, &o, p);
            }
}

/* Writing before a block damages the trailer of the slot before it. */
static void do_underflow(uintptr_t a) {
    char *p = (char *)a;
    p[-1] = 'u';
    free(p);
}

static void row_underflow(void) {
    /* a block that does not start its span (its slot has one before it) */
    char *keep[64];
    size_t n = 0;
    char *p = NULL;
    while (n < 64) {
        p = malloc(100);
        mhi_span *s = mhi_heap_span((uintptr_t)p);
        REQUIRE(s != NULL);
        /* (and whose slot before has its trailer word in p's cache line,
         * where free looks) */
        if ((uintptr_t)p != s->base && ((uintptr_t)p & 63) >= 8) break;
        keep[n++] = p;
    }
    REQUIRE(p != NULL);
    child_expect_abort("underflow", do_underflow, (uintptr_t)p, "heap underflow", (uintptr_t)p);
    free(p);
    while (n) free(keep[--n]);
}

/* ---- guard pages ---- */

/* Write byte by byte from p on: the first fault is the guard page. */
static void do_run_over(uintptr_t a) {
    volatile char *p = (volatile char *)a;
    for (size_t i = 0;; i++) p[i] = 'g';
}

static void row_guard(void) {
    /* a small block: its span's guard page follows its last page */
    char *p = malloc(1000);
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    REQUIRE(s != NULL);
    CHECK_EQ(s->guard, MHI_GUARD_SMALL);
    child_expect_abort("small span guard", do_run_over, (uintptr_t)p,
                       "heap overflow (guard page)", mhi_span_end(s) - MHI_PAGE_SIZE);
    /* a large block: its guard page follows its pages */
    char *q = malloc(300 << 10);
    s = mhi_heap_span((uintptr_t)q);
    REQUIRE(s != NULL);
    CHECK_EQ(s->guard, MHI_GUARD_LARGE);
    child_expect_abort("large block guard", do_run_over, (uintptr_t)q,
                       "heap overflow (guard page)", mhi_span_end(s) - MHI_PAGE_SIZE);
    free(p);
    free(q);
    /* the guard pages are undone when the pages go back */
    s = mhi_heap_span((uintptr_t)q);
    CHECK(s != NULL && s->guard == MHI_GUARD_FREED); /* (in quarantine) */
}

/* ---- use after free ---- */

static void do_write(uintptr_t a) { *(volatile char *)a = 'w'; }
static void do_read(uintptr_t a) { sink = (void *)(uintptr_t)*(volatile char *)a; }

static void row_uaf_large(void) {
    char *p = malloc(256 << 10);
    free(p);
    child_expect_abort("write to a freed large block", do_write, (uintptr_t)p + 100,
                       "use after free", (uintptr_t)p + 100);
    child_expect_abort("read of a freed large block", do_read, (uintptr_t)p, "use after free",
                       (uintptr_t)p);
}

/* A write to a freed small block is found when the block is reused: free
 * and malloc of its size until then. */
static void do_uaf_small(uintptr_t a) {
    char *p = (char *)a;
    p[40] = 'x';
    for (int i = 0; i < 1000000; i++) free(opaque(malloc(64)));
}

static void row_uaf_small(void) {
    char *p = malloc(64);
    free(p);
    child_expect_abort("write after free, found on reuse", do_uaf_small, (uintptr_t)p,
                       "write after free", (uintptr_t)p);
}

/* ... and while the block waits in the quarantine, with no free to send
 * it on: mallocs look at the waiting blocks in turn. */
static void do_uaf_waiting(uintptr_t a) {
    memset((char *)a, 0x41, 64);
    for (int i = 0; i < 200; i++) sink = malloc(64);
}

static void row_uaf_waiting(void) {
    char *p = malloc(64);
    free(p);
    child_expect_abort("write after free, found while the block waits", do_uaf_waiting,
                       (uintptr_t)p, "write after free", (uintptr_t)p);
}

static void do_free(uintptr_t a) { free((void *)a); }

static void row_double_free(void) {
    static const size_t sizes[] = {7, 64, 4000, 32000, 256 << 10};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = malloc(sizes[i]);
        free(p);
        char name[64];
        snprintf(name, sizeof name, "double free of %zu bytes", sizes[i]);
        child_expect_abort(name, do_free, (uintptr_t)p, "double free", (uintptr_t)p);
    }
}

/* ---- the fault handler: heap execution, and chaining ---- */

static void do_exec(uintptr_t a) {
    void (*fn)(void);
    memcpy(&fn, &a, sizeof fn);
    fn();
}

static void row_exec(void) {
#if defined(__x86_64__)
    unsigned char *p = malloc(64);
    p[0] = 0xc3; /* ret */
    child_expect_abort("instruction fetch", do_exec, (uintptr_t)p, "instruction fetch from heap",
                       (uintptr_t)p);
    free(p);
#endif
}

/* Installed before mheap's handler (a constructor that runs first): a
 * fault that is not mheap's reaches it, with its siginfo.  It exits 42,
 * or, armed, records the address and jumps back (a program that handles
 * its own faults: write barriers, guard pages of its own). */
static sigjmp_buf early_env;
static volatile sig_atomic_t early_armed, early_count;
static void *volatile early_addr;
static void early_handler(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    if (!early_armed) _exit(42);
    early_addr = info->si_addr;
    early_count++;
    siglongjmp(early_env, 1);
}
__attribute__((constructor(101))) static void install_early(void) {
    /* (not in the process row_chain_ignored starts, which sets SIG_IGN) */
    if (getenv("TEST_SECURE_IGNORED")) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = early_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
}

static void do_null(uintptr_t a) { *(volatile char *)opaque((void *)a) = 1; }

static void do_raise(uintptr_t sig) { raise((int)sig); }

static void row_chain(void) {
    char out[256];
    int st = child_run(do_null, 0, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
    CHECK(out[0] == 0);
    /* A sent signal (no fault to repeat) reaches the disposition before
     * mheap's too: the early handler, and for SIGBUS the default one. */
    st = child_run(do_raise, SIGSEGV, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
    CHECK(out[0] == 0);
    st = child_run(do_raise, SIGBUS, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS);
    CHECK(out[0] == 0);
    /* (and mheap's handler is the one in place: row_guard and row_uaf_large) */
    struct sigaction cur;
    REQUIRE(sigaction(SIGSEGV, NULL, &cur) == 0);
    CHECK(cur.sa_flags & SA_SIGINFO);
    CHECK(cur.sa_flags & SA_ONSTACK);
}

/* A fault of the program's own, which its handler recovers from, leaves
 * mheap's handler in place: a later overflow into a guard page is still
 * named.  (Twice, so the second foreign fault goes the same way.) */
static void do_recover_then_guard(uintptr_t a) {
    char *own = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (own == MAP_FAILED) _exit(3);
    early_armed = 1;
    for (int i = 0; i < 2; i++)
        if (sigsetjmp(early_env, 1) == 0) {
            ((volatile char *)own)[100 + i] = 1;
            _exit(4); /* (no fault) */
        }
    early_armed = 0;
    /* the handler saw both faults, at their addresses */
    if (early_count != 2 || early_addr != own + 101) _exit(5);
    do_run_over(a);
}

static void row_chain_recover(void) {
    char *p = malloc(1000);
    mhi_span *s = mhi_heap_span((uintptr_t)p);
    REQUIRE(s != NULL);
    REQUIRE(s->guard == MHI_GUARD_SMALL);
    child_expect_abort("guard page after a recovered foreign fault", do_recover_then_guard,
                       (uintptr_t)p, "heap overflow (guard page)", mhi_span_end(s) - MHI_PAGE_SIZE);
    free(p);
}

/* A program that ignores SIGSEGV before mheap's handler is installed,
 * and is sent one: the signal is ignored, mheap's handler stays, and a
 * later overflow into a guard page is still named.  The disposition must
 * be SIG_IGN when mheap installs its handler, at load, so the row starts
 * this program again (ignored_child, below) with SIGSEGV ignored. */
static void do_exec_ignored(uintptr_t a) {
    (void)a;
    signal(SIGSEGV, SIG_IGN);
    setenv("TEST_SECURE_IGNORED", "1", 1);
    execl("/proc/self/exe", "test_secure", "ignored_child", (char *)NULL);
    _exit(3);
}
static void ignored_child(void) {
    char *p = malloc(1000);
    if (!p) _exit(4);
    raise(SIGSEGV); /* ignored */
    do_run_over((uintptr_t)p);
}
static void row_chain_ignored(void) {
    char out[256];
    int st = child_run(do_exec_ignored, 0, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    const char *want = "mheap: heap overflow (guard page): 0x";
    CHECK(strncmp(out, want, strlen(want)) == 0);
    if (strncmp(out, want, strlen(want)) != 0) fprintf(stderr, "  got: \"%s\"\n", out);
}

/* Threads replacing 16-byte blocks (sizes 0..7) of a shared array, each
 * block freed once: a free reads the slot before its block while other
 * threads take that slot from a stash (clearing its free mark) or relink
 * it.  No false heap underflow or overflow: the child exits 0. */
#define RACE_SLOTS 2048
#define RACE_THREADS 4
static void *_Atomic race_shared[RACE_SLOTS];
static void *race_work(void *arg) {
    unsigned r = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    for (long it = 0; it < 600000; it++) {
        r = r * 1103515245u + 12345u;
        void *p = malloc((r >> 24) & 7);
        if (!p) _exit(6);
        void *old = atomic_exchange(&race_shared[(r >> 8) % RACE_SLOTS], p);
        free(old);
    }
    return NULL;
}
static void do_race_neighbour(uintptr_t a) {
    (void)a;
    pthread_t t[RACE_THREADS];
    for (uintptr_t i = 0; i < RACE_THREADS; i++)
        if (pthread_create(&t[i], NULL, race_work, (void *)i) != 0) _exit(7);
    for (int i = 0; i < RACE_THREADS; i++) pthread_join(t[i], NULL);
    _exit(0);
}
static void row_race_neighbour(void) {
    char out[256];
    int st = child_run(do_race_neighbour, 0, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(out[0] == 0);
    if (out[0]) fprintf(stderr, "  child said: \"%s\"\n", out);
}

/* One thread grows and shrinks a block of a 2048-byte slot in place, over
 * and over, while another frees the block right after it: the free looks
 * at the slot before its block, whose owner's grow and shrink back write
 * the same trailer word again.  60 rounds of 4096 blocks, paired by address,
 * each pair's second block freed once its first has been resized at
 * least twice meanwhile; no false heap overflow: the child exits 0. */
#define RESIZE_N 4096
#define RESIZE_ROUNDS 60
static char *resize_q[RESIZE_N], *resize_p[RESIZE_N];
static _Atomic int resize_at = -1, resize_stop, resize_idle;
static _Atomic long resize_cycles;
static void *resize_work(void *arg) {
    (void)arg;
    while (!atomic_load(&resize_stop)) {
        int k = atomic_load(&resize_at);
        if (k < 0) {
            atomic_store(&resize_idle, 1);
            continue;
        }
        atomic_store(&resize_idle, 0);
        char *q = resize_q[k];
        if (realloc(q, 2030) != q) _exit(8); /* (in place: the point) */
        memset(q + 1984, 0x5a, 46);
        if (realloc(q, 1100) != q) _exit(9);
        atomic_fetch_add(&resize_cycles, 1);
    }
    return NULL;
}
static int addr_cmp(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}
static void do_race_resize(uintptr_t a) {
    (void)a;
    pthread_t t;
    if (pthread_create(&t, NULL, resize_work, NULL) != 0) _exit(7);
    static char *all[RESIZE_N];
    for (int round = 0; round < RESIZE_ROUNDS; round++) {
        for (int i = 0; i < RESIZE_N; i++)
            if (!(all[i] = malloc(2000))) _exit(6);
        qsort(all, RESIZE_N, sizeof all[0], addr_cmp);
        int n = 0;
        for (int i = 0; i + 1 < RESIZE_N; i++)
            if (all[i] && all[i + 1] - all[i] == 2048) {
                resize_q[n] = realloc(all[i], 1100);
                resize_p[n++] = all[i + 1];
                all[i] = all[i + 1] = NULL;
                i++;
            }
        for (int i = 0; i < RESIZE_N; i++) free(all[i]);
        for (int k = 0; k < n; k++) {
            long c0 = atomic_load(&resize_cycles);
            atomic_store(&resize_at, k);
            while (atomic_load(&resize_cycles) < c0 + 2) sched_yield();
            free(resize_p[k]);
        }
        atomic_store(&resize_at, -1);
        atomic_store(&resize_idle, 0);
        while (!atomic_load(&resize_idle)) sched_yield();
        for (int k = 0; k < n; k++) free(resize_q[k]);
    }
    atomic_store(&resize_stop, 1);
    pthread_join(t, NULL);
    _exit(0);
}
static void row_race_resize(void) {
    char out[256];
    int st = child_run(do_race_resize, 0, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(out[0] == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) || out[0])
        fprintf(stderr, "  child: status %#x, said \"%s\"\n", st, out);
}

/* ---- a protection that fails part way ----
 * mprotect may change part of a range before it fails (each VMA in turn);
 * this one, while armed, makes the first page of a PROT_NONE request of
 * more than a page inaccessible and then fails.  (It replaces the C
 * library's for mheap's calls: test_secure links mheap statically.) */
static volatile int mprotect_fail_part;
int mprotect(void *addr, size_t len, int prot) {
    long rc;
    if (mprotect_fail_part && prot == PROT_NONE && len > 4096) {
        (void)syscall(SYS_mprotect, addr, 4096, PROT_NONE);
        errno = ENOMEM;
        return -1;
    }
    rc = syscall(SYS_mprotect, addr, len, prot);
    return (int)rc;
}

/* A large block whose freeing protection fails goes back to the page heap
 * at once, every page accessible: the next block on its pages is usable. */
static void row_protect_fail(void) {
    size_t size = 300 << 10;
    char *p = malloc(size);
    REQUIRE(p != NULL);
    memset(p, 1, size);
    mprotect_fail_part = 1;
    free(p);
    mprotect_fail_part = 0;
    char *q = malloc(size);
    REQUIRE(q != NULL);
    CHECK(q == p); /* (the freed span, straight back: no quarantine) */
    char out[256];
    int st = child_run(do_write, (uintptr_t)q, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "  protect_fail: status %#x, stderr \"%s\"\n", st, out);
    free(q);
}

/* ---- what the secure build promises besides catches ---- */

static void row_zeroed(void) {
    /* blocks come zeroed, also when reused */
    for (int round = 0; round < 4; round++) {
        static const size_t sizes[] = {1, 16, 100, 1000, 5000, 30000, 100000, 300000};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = malloc(sizes[i]);
            REQUIRE(p != NULL);
            size_t nz = 0;
            for (size_t j = 0; j < sizes[i]; j++) nz += p[j] != 0;
            CHECK_EQ(nz, 0);
            memset(p, 0xee, sizes[i]);
            free(p);
        }
    }
    /* calloc's overflow and errno as in the default build */
    errno = 0;
    size_t volatile half = SIZE_MAX / 2;
    CHECK(calloc(half, 3) == NULL);
    CHECK_EQ(errno, ENOMEM);
}

static void row_usable(void) {
    static const size_t sizes[] = {0, 1, 7, 24, 100, 4000, 40000, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = malloc(sizes[i]);
        CHECK_EQ(malloc_usable_size(p), sizes[i]);
        memset(p, 'z', malloc_usable_size(p)); /* all of it may be written */
        free(p);
    }
    CHECK_EQ(malloc_usable_size(NULL), 0);
    /* realloc keeps the contents and moves the trailer */
    char *p = malloc(10);
    memcpy(p, "0123456789", 10);
    for (size_t n = 11; n < 70000; n = n * 3 / 2) {
        p = realloc(p, n);
        REQUIRE(p != NULL);
        CHECK(memcmp(p, "0123456789", 10) == 0);
        CHECK_EQ(malloc_usable_size(p), n);
        memset(p + 10, 'r', n - 10);
    }
    p = realloc(p, 5);
    CHECK(memcmp(p, "01234", 5) == 0);
    CHECK_EQ(malloc_usable_size(p), 5);
    free(p);
    /* aligned blocks keep their alignment and their canary */
    for (size_t al = 32; al <= (1 << 16); al *= 4) {
        void *q = aligned_alloc(al, 100);
        REQUIRE(q != NULL);
        CHECK_EQ((uintptr_t)q % al, 0);
        CHECK_EQ(malloc_usable_size(q), 100);
        free(q);
    }
}

static void row_reuse(void) {
    /* a freed block is never the next malloc of its size */
    for (int i = 0; i < 2000; i++) {
        void *p = malloc(48);
        free(p);
        void *q = malloc(48);
        CHECK(q != p);
        free(q);
    }
    /* a fresh span hands its objects out in no address order */
    enum { N = 32 };
    uintptr_t a[N];
    for (int i = 0; i < N; i++) a[i] = (uintptr_t)malloc(2900);
    int ascending = 0;
    for (int i = 1; i < N; i++) ascending += a[i] > a[i - 1];
    CHECK(ascending < N - 1);
    for (int i = 0; i < N; i++) free((void *)a[i]);
}

/* No mapping holding a heap block may be executable. */
static void row_no_exec(void) {
    void *blocks[] = {malloc(16), malloc(5000), malloc(1 << 20)};
    FILE *f = fopen("/proc/self/maps", "r");
    REQUIRE(f != NULL);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        char perms[8];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) != 3) continue;
        for (size_t i = 0; i < 3; i++)
            if ((uintptr_t)blocks[i] >= lo && (uintptr_t)blocks[i] < hi) {
                found++;
                CHECK(strchr(perms, 'x') == NULL);
            }
    }
    fclose(f);
    CHECK_EQ(found, 3);
    for (size_t i = 0; i < 3; i++) free(blocks[i]);
}

static const struct {
    const char *name;
    void (*fn)(void);
} rows[] = {
    {"overflow", row_overflow},     {"underflow", row_underflow}, {"guard", row_guard},
    {"uaf_large", row_uaf_large},   {"uaf_small", row_uaf_small}, {"uaf_waiting", row_uaf_waiting},
    {"double_free", row_double_free},
    {"exec", row_exec},             {"chain", row_chain},         {"chain_recover", row_chain_recover},
    {"chain_ignored", row_chain_ignored}, {"race_neighbour", row_race_neighbour},
    {"race_resize", row_race_resize},
    {"zeroed", row_zeroed},
    {"usable", row_usable},         {"reuse", row_reuse},         {"no_exec", row_no_exec},
    {"protect_fail", row_protect_fail},
};

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "ignored_child") == 0) {
        ignored_child();
        return 5; /* (the overflow did not stop it) */
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (argc < 2 || strcmp(argv[1], rows[i].name) == 0) {
            printf("%s\n", rows[i].name);
            rows[i].fn();
        }
    return check_done("test_secure");
}
