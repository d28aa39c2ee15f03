/* contract.c - the allocator's contract for bad input and hostile use,
 * through the C library's own names (linked with libmheap.a, whose libc
 * overrides make malloc, free, ... mheap's).
 *
 * Usage: contract <row>.  Each row is one CTest (tests/contract.cmake).
 * Misuse runs in a forked child whose stderr goes to a pipe: the parent
 * checks that the child died of SIGABRT and that stderr holds exactly
 * mheap's message, "mheap: <what>: 0x<hex>\n".  The child sends the
 * address it is about to misuse through a second pipe, so the parent can
 * build the exact message.
 *
 * Not run with sanitizers: ASan and TSan bring their own malloc, and
 * overriding it in the same program conflicts (see contract.cmake). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "../check.h"
#include "../child.h"
#include "mheap.h"
#include "mheap_gc.h"

/* C23 / glibc 2.38; older headers lack them.  libmheap defines them. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
/* operator delete(void *, std::size_t) under its mangled name (libmheap.a
 * defines the C++ operators in C). */
void _ZdlPvm(void *p, size_t size);

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Sizes the compiler cannot see (no -Walloc-size-larger-than, no folding). */
static volatile size_t v_huge = (size_t)PTRDIFF_MAX + 1;
static volatile size_t v_max = SIZE_MAX;

/* p, with the compiler unable to tell it is p (no -Wuse-after-free on a
 * block a failed realloc left alone). */
static void *opaque(void *p) {
    void *volatile v = p;
    return v;
}

static uint64_t inuse_now(void) {
    mh_stats_t st;
    mh_stats_get(&st, sizeof st);
    return st.heap_inuse;
}

/* ---- child processes ---- */

static int info_fd = -1; /* child: where tell() writes */

/* Child: announce the address about to be misused. */
static void tell(const void *p) {
    uintptr_t v = (uintptr_t)p;
    ssize_t n = write(info_fd, &v, sizeof v);
    (void)n;
}

/* Child: report a failure of its own on stderr (no stdio, no malloc). */
static void say(const char *msg) {
    ssize_t n = write(2, msg, strlen(msg));
    (void)n;
}

typedef struct {
    int status;       /* from waitpid */
    char err[8192];   /* the child's stderr */
    size_t errlen;
    uintptr_t info;   /* the last address the child told */
    bool has_info;
} child_result;

/* Run fn in a child with its stderr captured; the child gets timeout_s
 * seconds (SIGALRM) and no core file. */
static void run_child(void (*fn)(void), unsigned timeout_s, child_result *r) {
    int errp[2], infop[2];
    REQUIRE(pipe(errp) == 0 && pipe(infop) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(timeout_s);
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        close(errp[0]);
        close(infop[0]);
        dup2(errp[1], 2);
        close(errp[1]);
        info_fd = infop[1];
        fn();
        _exit(0);
    }
    close(errp[1]);
    close(infop[1]);
    r->errlen = child_read_all(errp[0], r->err, sizeof r->err);
    r->has_info = false;
    uintptr_t v;
    while (read(infop[0], &v, sizeof v) == (ssize_t)sizeof v) {
        r->info = v;
        r->has_info = true;
    }
    close(infop[0]);
    while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {}
}

static void describe(const char *what, const child_result *r) {
    if (WIFSIGNALED(r->status))
        fprintf(stderr, "  %s: child killed by signal %d (%s)\n", what, WTERMSIG(r->status),
                strsignal(WTERMSIG(r->status)));
    else if (WIFEXITED(r->status))
        fprintf(stderr, "  %s: child exited with status %d\n", what, WEXITSTATUS(r->status));
    fprintf(stderr, "  %s: child stderr (%zu bytes): \"%s\"\n", what, r->errlen, r->err);
}

/* fn must abort with stderr exactly "mheap: <what>: 0x<told address>\n". */
static void expect_abort(const char *name, void (*fn)(void), const char *what) {
    child_result r;
    run_child(fn, 30, &r);
    char want[256] = "";
    if (r.has_info) snprintf(want, sizeof want, "mheap: %s: 0x%" PRIxPTR "\n", what, r.info);
    bool ok_sig = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT;
    bool ok_msg = r.has_info && strcmp(r.err, want) == 0;
    CHECK(ok_sig);
    CHECK(r.has_info);
    CHECK(ok_msg);
    if (!ok_sig || !ok_msg) {
        fprintf(stderr, "%s: expected SIGABRT and stderr \"%.*s\\n\"\n", name,
                (int)(strlen(want) ? strlen(want) - 1 : 0), want);
        describe(name, &r);
    } else {
        fprintf(stderr, "%s: ok: %s", name, r.err);
    }
}

/* fn must abort with stderr starting with prefix (one line). */
static void expect_abort_prefix(const char *name, void (*fn)(void), const char *prefix) {
    child_result r;
    run_child(fn, 30, &r);
    bool ok_sig = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT;
    bool ok_msg = strncmp(r.err, prefix, strlen(prefix)) == 0 && r.errlen > 0 &&
                  strchr(r.err, '\n') == r.err + r.errlen - 1;
    CHECK(ok_sig);
    CHECK(ok_msg);
    if (!ok_sig || !ok_msg) {
        fprintf(stderr, "%s: expected SIGABRT and stderr starting \"%s\"\n", name, prefix);
        describe(name, &r);
    } else {
        fprintf(stderr, "%s: ok: %s", name, r.err);
    }
}

/* fn must exit 0 with nothing on stderr. */
static void expect_clean_exit(const char *name, void (*fn)(void), unsigned timeout_s) {
    child_result r;
    run_child(fn, timeout_s, &r);
    bool ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.errlen == 0;
    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "%s: expected exit 0 and empty stderr\n", name);
        describe(name, &r);
    }
    if (r.has_info) fprintf(stderr, "%s: child reported %" PRIuPTR "\n", name, r.info);
}

/* Mallocs and frees of many sizes except those in [avoid_lo, avoid_hi]:
 * everything allocated here is freed again before it returns. */
static void churn(int rounds, size_t avoid_lo, size_t avoid_hi) {
    static const size_t sizes[] = {8,     16,    40,      48,       64,       100,       200,
                                   500,   1000,  3000,    5000,     9000,     20000,     32768,
                                   40000, 70000, 200000,  300 * KiB, 700 * KiB, 2 * MiB, 3 * MiB};
    enum { NS = sizeof sizes / sizeof sizes[0], LIVE = 48 };
    void *b[LIVE];
    for (int r = 0; r < rounds; r++) {
        int n = 0;
        for (int k = 0; k < LIVE; k++) {
            size_t s = sizes[(size_t)(r * 7 + k * 3) % NS];
            if (s >= avoid_lo && s <= avoid_hi) continue;
            b[n] = malloc(s);
            if (!b[n]) {
                say("contract: churn: malloc failed\n");
                _exit(3);
            }
            memset(b[n], 0x77, s < 256 ? s : 256);
            n++;
        }
        for (int k = n - 1; k >= 0; k -= 2) free(b[k]);
        for (int k = n - 2; k >= 0; k -= 2) free(b[k]);
    }
}

/* ---- rows: free of NULL, errno ---- */

static void row_free_null(void) {
    errno = 1234;
    free(NULL);
    CHECK_EQ(errno, 1234);
    free_sized(NULL, 0);
    free_sized(NULL, 100);
    free_sized(NULL, (size_t)1 << 40);
    CHECK_EQ(errno, 1234);
    CHECK_EQ(malloc_usable_size(NULL), 0);
    CHECK_EQ(errno, 1234);
}

static void row_free_errno(void) {
    static const size_t sizes[] = {1, 32, 1000, 32768, 32769, 100000, 1 * MiB, 4 * MiB};
    for (int pass = 0; pass < 2; pass++) {
        /* Second pass: free pages go back to the OS at once (madvise on the
         * free path). */
        if (pass == 1) CHECK_EQ(mh_option_set("scavenge_delay_ms", 0), 0);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p[40];
            for (int k = 0; k < 40; k++) {
                p[k] = malloc(sizes[i]);
                REQUIRE(p[k] != NULL);
                memset(p[k], 1, sizes[i]);
            }
            for (int k = 0; k < 40; k++) {
                errno = 1234;
                if (k % 2) free_sized(p[k], sizes[i]);
                else free(p[k]);
                if (errno != 1234) {
                    CHECK_EQ(errno, 1234);
                    fprintf(stderr, "free of %zu bytes (pass %d) changed errno to %d\n", sizes[i],
                            pass, errno);
                }
            }
        }
        errno = 1234;
        (void)malloc_trim(0);
        CHECK_EQ(errno, 1234);
    }
    /* The library is really in charge: its own and libc's blocks are known. */
    void *p = malloc(100);
    char *s = strdup("libc allocates through mheap too");
    REQUIRE(p != NULL && s != NULL);
    CHECK(mh_usable_size(p) >= 100);
    CHECK(mh_usable_size(s) >= strlen(s) + 1);
    free(s);
    free(p);
}

/* ---- rows: double free ---- */

static void c_df_small_now(void) {
    void *volatile p = malloc(32);
    tell(p);
    free(p);
    free(p);
}
static void c_df_large_now(void) {
    void *volatile p = malloc(1 * MiB);
    tell(p);
    free(p);
    free(p);
}
static void c_df_small_later(void) {
    void *volatile p = malloc(32);
    memset(p, 1, 32);
    tell(p);
    free(p);
    churn(200, 17, 32);
    free(p);
}
static void c_df_large_later(void) {
    void *volatile p = malloc(1 * MiB);
    memset(p, 1, 1 * MiB);
    tell(p);
    free(p);
    churn(200, 1 * MiB - 8191, 1 * MiB);
    free(p);
}

static void *free_in_thread(void *p) {
    free(p);
    return NULL;
}

/* Are any two of the n pointers equal? */
static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}
static bool has_dup(void **v, size_t n) {
    static uintptr_t s[20000];
    if (n > 20000) n = 20000;
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        if (s[i] == s[i - 1]) return true;
    return false;
}

/* First free in another thread, second in this one.  The library may
 * notice later (when the other thread's free reaches the block's span):
 * allocate a lot to get there.  A block handed out twice meanwhile is the
 * failure the check exists to prevent. */
static void c_df_cross_thread_size(size_t size) {
    void *volatile p = malloc(size);
    memset(p, 1, size);
    tell(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) != 0 || pthread_join(t, NULL) != 0) {
        say("contract: pthread failed\n");
        _exit(3);
    }
    free(p);
    static void *live[20000];
    size_t n = 0;
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < 5000; k++) {
            live[n] = malloc(size);
            if (!live[n]) _exit(3);
            n++;
        }
        if (has_dup(live, n)) {
            say("contract: a block was handed out twice after the double free\n");
            _exit(4);
        }
    }
    for (size_t i = 0; i < n; i++) free(live[i]);
    churn(50, 0, 0);
}
static void c_df_cross_thread_small(void) { c_df_cross_thread_size(32); }

/* First free in the allocating thread (the block sits on that thread's free
 * list), second in another thread. */
static void c_df_local_then_remote(void) {
    void *volatile p = malloc(64);
    memset(p, 1, 64);
    void *keep = malloc(64); /* the span stays in use */
    tell(p);
    free(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) != 0 || pthread_join(t, NULL) != 0) {
        say("contract: pthread failed\n");
        _exit(3);
    }
    /* Reached only if the second free went unnoticed: two mallocs now
     * return the same block. */
    void *a = malloc(64), *b = malloc(64);
    if (a == b) say("contract: a block was handed out twice after the double free\n");
    free(keep);
}
static void c_df_cross_thread_large(void) { c_df_cross_thread_size(1 * MiB); }

/* The second free comes after the background thread released the page
 * the freed object lies on (the object reads as zero then, with no free
 * mark): 4 KiB objects, eight to a span, seven of each eight freed.  The
 * second free is free_sized when sized is set. */
static void df_small_released(bool sized) {
    enum { K = 64 };
    static char *p[K];
    /* (background = 2: the thread releases it in a process of one thread) */
    if (mh_option_set("scavenge_delay_ms", 20) != 0 || mh_option_set("background", 2) != 0)
        _exit(2);
    for (int i = 0; i < K; i++) {
        p[i] = malloc(4096);
        memset(p[i], 1, 4096);
    }
    for (int i = 0; i < K; i++)
        if (i % 8 != 0) free(p[i]);
    char *v = p[1];
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char inmem = 1;
    for (int t = 0; t < 300 && inmem; t++) {
        usleep(10000);
        if (mincore((void *)((uintptr_t)v & ~(uintptr_t)(pg - 1)), 1, &inmem) != 0) _exit(4);
        inmem &= 1;
    }
    if (inmem) {
        say("the freed object's page was never released\n");
        _exit(3);
    }
    tell(v);
    if (sized) free_sized(v, 4096);
    else free(v);
}
static void c_df_small_released(void) { df_small_released(false); }
static void c_df_small_released_sized(void) { df_small_released(true); }

static void row_double_free_small(void) {
    expect_abort("double free, small, immediate", c_df_small_now, "double free");
    expect_abort("double free, small, later", c_df_small_later, "double free");
    expect_abort("double free, small, after its page was released", c_df_small_released,
                 "double free");
}
static void row_double_free_large(void) {
    expect_abort("double free, large, immediate", c_df_large_now, "double free");
    expect_abort("double free, large, later", c_df_large_later, "double free");
}
static void row_double_free_thread(void) {
    expect_abort("double free, small, first free in another thread", c_df_cross_thread_small,
                 "double free");
    expect_abort("double free, large, first free in another thread", c_df_cross_thread_large,
                 "double free");
    expect_abort("double free, small, second free in another thread", c_df_local_then_remote,
                 "double free");
}

/* ---- row: a free block damaged by a write (an overflow of the block
 * before it, or a write after free) is named when it is next handed out;
 * the default build checks the free mark, word 1 of a free block, which
 * depends on the link in word 0 ---- */

/* Two adjacent blocks of one class, the second at a + size. */
static char *adjacent_pair(size_t size, char **b) {
    for (int i = 0; i < 64; i++) {
        char *a = malloc(size), *c = malloc(size);
        if (c == a + size) {
            *b = c;
            return a;
        }
    }
    say("no adjacent blocks\n");
    _exit(3);
}

static void c_overflow_into_stashed(void) {
    char *b, *a = adjacent_pair(48, &b);
    free(b);     /* b on this thread's stash */
    tell(b);
    memset(a, 'A', 48 + 32); /* 32 bytes past a's end */
    (void)malloc(48);
}
static void c_overflow_memcpy_into_unused(void) {
    /* A class this program has not used: a is the first block of a new
     * span, and the block after it is still on the span's free list. */
    char *a = malloc(1792), src[1792 + 16];
    memset(src, 'B', sizeof src);
    tell(a + 1792);
    memcpy(a, src, sizeof src); /* 16 bytes past a's end */
    (void)malloc(1792);
}
static void c_write_after_free(void) {
    long *p = malloc(64);
    free(p);
    tell(p);
    p[0] = 1; /* its link and mark, overwritten after free */
    p[1] = 2;
    (void)malloc(64);
}
/* The mark covers the link: damage to the link alone is named too, before
 * the damaged link is followed. */
static void c_overflow_by_one_into_link(void) {
    char *b, *a = adjacent_pair(48, &b);
    free(b);
    tell(b);
    char *v = a;
    __asm__ volatile("" : "+r"(v)); /* (the compiler may not drop the write) */
    v[48] ^= 0x40; /* one byte past a's end: the low byte of b's link */
    (void)malloc(48);
}
static void c_write_link_after_free(void) {
    void **p = malloc(64), **q = malloc(64);
    free(q);
    free(p); /* p's link points to q */
    tell(p);
    *(void *volatile *)p = (char *)q + 16; /* a forged link, mark untouched */
    (void)malloc(64);
}

/* Two bytes written past a live 512-byte block into the link of its free
 * neighbour, which sits on the free list of an unowned span (its thread
 * exited), rewrite the link to name a live block of the next page; then a
 * trim pass.  Trimming must not follow the damaged link (it would release
 * the live block's page and put the block on the list): the next
 * allocation names the damage. */
static char *trim_blocks[17];
static void *trim_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        trim_blocks[0] = malloc(512);
        if (((uintptr_t)trim_blocks[0] & 8191) == 0) break;
    }
    for (int i = 1; i < 17; i++) trim_blocks[i] = malloc(512);
    for (int i = 1; i < 16; i++)
        if (trim_blocks[i] != trim_blocks[0] + 512 * i) _exit(3);
    free(trim_blocks[0]);
    for (int i = 8; i < 15; i++) free(trim_blocks[i]);
    return NULL;
}
static void c_overflow_into_link_then_trim(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, trim_thread, NULL) || pthread_join(t, NULL)) _exit(3);
    char *live = trim_blocks[15];
    memset(live, 0, 512);
    strcpy(live + 16, "live");
    uint16_t lo = (uint16_t)(uintptr_t)live;
    memcpy(trim_blocks[7] + 512, &lo, 2);
    tell(trim_blocks[8]);
    (void)mh_release_memory();
    if (strcmp(live + 16, "live") != 0) {
        say("contract: trimming released the page of a live block\n");
        _exit(4);
    }
    for (int i = 0; i < 40; i++)
        if (malloc(512) == live) {
            say("contract: a live block was handed out again\n");
            _exit(4);
        }
}

/* A SIGABRT handler that allocates (as crash reporters do) must run when
 * the damage is found while the thread's cache is locked: a stash sent
 * back whole, a free block in it with its link rewritten. */
static void on_abort_allocate(int sig) {
    (void)sig;
    void *volatile q = malloc(200);
    (void)q;
    signal(SIGABRT, SIG_DFL); /* abort raises it again */
}
static void c_stash_sent_back_handler_allocates(void) {
    enum { N = 4000 };
    static char *a[N];
    for (int i = 0; i < N; i++) a[i] = malloc(64);
    signal(SIGABRT, on_abort_allocate);
    free(a[0]);
    tell(a[0]);
    ((volatile uintptr_t *)a[0])[0] ^= 0x40;
    for (int i = 1; i < N; i++) free(a[i]);
}

static void row_corrupted_free(void) {
    expect_abort("overflow by 32 bytes into a freed neighbour", c_overflow_into_stashed,
                 "corrupted free block");
    expect_abort("overflow by memcpy into a never-used neighbour", c_overflow_memcpy_into_unused,
                 "corrupted free block");
    expect_abort("write after free, then malloc", c_write_after_free, "corrupted free block");
    expect_abort("overflow by 1 byte into a freed neighbour's link", c_overflow_by_one_into_link,
                 "corrupted free block");
    expect_abort("a free block's link rewritten after free", c_write_link_after_free,
                 "corrupted free block");
    expect_abort("overflow into a free neighbour's link, then a trim pass",
                 c_overflow_into_link_then_trim, "corrupted free block");
    expect_abort("damage found with the cache locked, a SIGABRT handler allocates",
                 c_stash_sent_back_handler_allocates, "corrupted free block");
}

/* ---- rows: interior and foreign pointers ---- */

static void c_free_interior_small(void) {
    char *p = malloc(32);
    tell(p + 8);
    free(p + 8);
}
static void c_free_interior_large(void) {
    char *p = malloc(1 * MiB);
    tell(p + 4096);
    free(p + 4096);
}
static void c_realloc_interior_small(void) {
    char *p = malloc(32);
    tell(p + 8);
    void *q = realloc(p + 8, 64);
    (void)q;
}
static void c_realloc_interior_large(void) {
    char *p = malloc(1 * MiB);
    tell(p + 4096);
    void *q = realloc(p + 4096, 2 * MiB);
    (void)q;
}
static void c_usable_interior_small(void) {
    char *p = malloc(32);
    tell(p + 8);
    volatile size_t n = malloc_usable_size(p + 8);
    (void)n;
}
static void c_usable_interior_large(void) {
    char *p = malloc(1 * MiB);
    tell(p + 4096);
    volatile size_t n = malloc_usable_size(p + 4096);
    (void)n;
}
static void c_free_sized_interior(void) {
    char *p = malloc(100);
    tell(p + 16);
    free_sized(p + 16, 100);
}

/* The 48-byte class fills one 8 KiB page with 170 objects and leaves 32
 * bytes at the end (src/sizeclass_table.h): offset 8160 is a multiple of
 * the object size but not an object. */
static void c_free_tail(void) {
    char *p = malloc(48);
    char *tail = (char *)((uintptr_t)p & ~(uintptr_t)8191) + 170 * 48;
    tell(tail);
    free(tail);
}
static void c_usable_tail(void) {
    char *p = malloc(48);
    char *tail = (char *)((uintptr_t)p & ~(uintptr_t)8191) + 170 * 48;
    tell(tail);
    volatile size_t n = malloc_usable_size(tail);
    (void)n;
}

static void row_interior(void) {
    expect_abort("free of a span's tail past the last object", c_free_tail, "invalid pointer");
    expect_abort("malloc_usable_size of a span's tail", c_usable_tail, "invalid pointer");
    expect_abort("free(p + 8), small", c_free_interior_small, "invalid pointer");
    expect_abort("free(p + 4096), large", c_free_interior_large, "invalid pointer");
    expect_abort("realloc(p + 8), small", c_realloc_interior_small, "invalid pointer");
    expect_abort("realloc(p + 4096), large", c_realloc_interior_large, "invalid pointer");
    expect_abort("malloc_usable_size(p + 8), small", c_usable_interior_small, "invalid pointer");
    expect_abort("malloc_usable_size(p + 4096), large", c_usable_interior_large,
                 "invalid pointer");
    expect_abort("free_sized(p + 16), small", c_free_sized_interior, "invalid pointer");
}

/* A 64-byte block that starts a heap page (8 KiB): the first object of a
 * fresh span of its class, which hands out its objects front to back. */
static char *span_start64(void) {
    for (int i = 0; i < 20000; i++) {
        char *p = malloc(64);
        if (!p) _exit(3);
        if (((uintptr_t)p & 8191) == 0) return p;
    }
    say("contract: no 64-byte block starts a page\n");
    _exit(3);
}
/* p + 4096 starts an object of p's span that was never handed out. */
static void c_free_never_handed_out(void) {
    char *p = span_start64();
    tell(p + 4096);
    free(p + 4096);
}
static void c_free_sized_never_handed_out(void) {
    char *p = span_start64();
    tell(p + 4096);
    free_sized(p + 4096, 64);
}
static void c_realloc_never_handed_out(void) {
    char *p = span_start64();
    tell(p + 4096);
    void *q = realloc(p + 4096, 200);
    (void)q;
}
/* realloc to a size the block holds: kept in place, unless it is free. */
static void c_realloc_in_place_never_handed_out(void) {
    char *p = span_start64();
    tell(p + 4096);
    void *q = realloc(p + 4096, 64);
    (void)q;
}
static void c_realloc_in_place_freed(void) {
    char *p = malloc(64);
    free(p);
    tell(p);
    void *q = realloc(opaque(p), 64);
    (void)q;
}
/* The same object once it was handed out and freed: a double free. */
static void c_free_handed_out_freed(void) {
    char *p = span_start64(), *q = NULL;
    for (int i = 1; i <= 64; i++) q = malloc(64);
    if (q != p + 4096) {
        say("contract: the span did not hand out its objects in order\n");
        _exit(3);
    }
    tell(q);
    free(q);
    free(opaque(q));
}

static void row_never_handed_out(void) {
    expect_abort("free of an object never handed out", c_free_never_handed_out, "invalid pointer");
    expect_abort("free_sized of an object never handed out", c_free_sized_never_handed_out,
                 "invalid pointer");
    expect_abort("realloc of an object never handed out", c_realloc_never_handed_out,
                 "invalid pointer");
    expect_abort("realloc in place of an object never handed out",
                 c_realloc_in_place_never_handed_out, "invalid pointer");
    expect_abort("realloc in place of a freed object", c_realloc_in_place_freed, "double free");
    expect_abort("the same object handed out, freed twice", c_free_handed_out_freed,
                 "double free");
}

static char static_buf[256];

static void c_free_stack(void) {
    char buf[64];
    memset(buf, 0, sizeof buf);
    char *volatile p = buf + 16;
    tell(p);
    free(p);
}
static void c_free_static(void) {
    char *volatile p = static_buf + 32;
    tell(p);
    free(p);
}
static void c_free_one(void) {
    void *volatile p = (void *)1;
    tell(p);
    free(p);
}
static void c_free_mmap(void) {
    void *p = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(3);
    tell(p);
    free(p);
}
/* A heap object's address with bit 47 set: above the address map's range,
 * though its low bits name a live object. */
static void c_free_above_map(void) {
    char *p = malloc(64);
    void *volatile q = (void *)((uintptr_t)p + ((uintptr_t)1 << 47));
    tell(q);
    free(q);
}
static void c_free_sized_above_map(void) {
    char *p = malloc(64);
    void *volatile q = (void *)((uintptr_t)p + ((uintptr_t)1 << 47));
    tell(q);
    free_sized(q, 64);
}
static void c_realloc_stack(void) {
    char buf[64];
    memset(buf, 0, sizeof buf);
    char *volatile p = buf;
    tell(p);
    void *q = realloc(p, 100);
    (void)q;
}
static void c_usable_static(void) {
    char *volatile p = static_buf;
    tell(p);
    volatile size_t n = malloc_usable_size(p);
    (void)n;
}

static void row_foreign(void) {
    expect_abort("free(stack address)", c_free_stack, "invalid pointer");
    expect_abort("free(static variable)", c_free_static, "invalid pointer");
    expect_abort("free((void *)1)", c_free_one, "invalid pointer");
    expect_abort("free(foreign mmap)", c_free_mmap, "invalid pointer");
    expect_abort("free(heap object + 2^47)", c_free_above_map, "invalid pointer");
    expect_abort("free_sized(heap object + 2^47)", c_free_sized_above_map, "invalid pointer");
    expect_abort("realloc(stack address)", c_realloc_stack, "invalid pointer");
    expect_abort("malloc_usable_size(static variable)", c_usable_static, "invalid pointer");
}

/* ---- row: free_sized ---- */

static void c_mismatch_small(void) {
    void *p = malloc(100);
    free_sized(p, 1000);
}
static void c_mismatch_small_big(void) {
    void *p = malloc(100);
    free_sized(p, 1 * MiB);
}
static void c_mismatch_large_small(void) {
    void *p = malloc(1 * MiB);
    free_sized(p, 100);
}

static void row_free_sized(void) {
    /* Every size up to 4 KiB and some above, freed with the size asked
     * for: the sizes the inline check takes and those only the slow path
     * accepts (below 8 bytes, in the 16-byte class). */
    for (size_t n = 0; n <= 4096; n++) free_sized(malloc(n), n);
    for (size_t n = 4096; n <= 40000; n += 1000) free_sized(malloc(n), n);
    /* Aligned blocks freed with their alignment and size, among them
     * sizes far below the block's (an alignment of 4 KiB takes a 4 KiB
     * object for 100 bytes). */
    for (size_t align = 32; align <= 64 * KiB; align *= 2) {
        static const size_t sizes[] = {1, 100, 1000, 5000, 40000};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = (sizes[i] + align - 1) / align * align; /* aligned_alloc wants a multiple */
            void *q = aligned_alloc(align, n);
            REQUIRE(q != NULL);
            free_aligned_sized(q, align, n);
        }
    }
    /* Right sizes: the request, or another size of the same class. */
    void *p = malloc(100);
    REQUIRE(p != NULL);
    free_sized(p, 100);
    p = malloc(100);
    REQUIRE(p != NULL);
    free_sized(p, malloc_usable_size(p));
    p = malloc(1 * MiB);
    REQUIRE(p != NULL);
    free_sized(p, 1 * MiB);
    p = malloc(0);
    REQUIRE(p != NULL);
    free_sized(p, 0);
    expect_abort_prefix("free_sized(malloc(100), 1000)", c_mismatch_small,
                        "mheap: size mismatch: ");
    expect_abort_prefix("free_sized(malloc(100), 1 MiB)", c_mismatch_small_big,
                        "mheap: size mismatch: ");
    expect_abort_prefix("free_sized(malloc(1 MiB), 100)", c_mismatch_large_small,
                        "mheap: size mismatch: ");
}

/* ---- row: free_sized_misuse: what free catches, sized free catches ---- */

static void c_sized_df_small(void) {
    void *volatile p = malloc(64);
    tell(p);
    free_sized(p, 64);
    free_sized(p, 64);
}
static void c_sized_df_after_free(void) {
    void *volatile p = malloc(100);
    tell(p);
    free(p);
    free_sized(p, 100);
}
static void c_sized_df_large(void) {
    void *volatile p = malloc(1 * MiB);
    tell(p);
    free_sized(p, 1 * MiB);
    free_sized(p, 1 * MiB);
}
static void c_sized_df_delete(void) {
    void *volatile p = malloc(64);
    tell(p);
    _ZdlPvm(p, 64);
    _ZdlPvm(p, 64);
}
static void c_sized_stack(void) {
    char buf[64];
    memset(buf, 0, sizeof buf);
    char *volatile p = buf + 16;
    tell(p);
    free_sized(p, 16);
}
static void c_sized_tail(void) {
    char *p = malloc(48);
    char *tail = (char *)((uintptr_t)p & ~(uintptr_t)8191) + 170 * 48;
    tell(tail);
    free_sized(tail, 32);
}
static void c_sized_below_half(void) {
    void *p = malloc(100); /* a 112-byte object */
    free_sized(p, 40);
}
static void c_sized_max(void) {
    void *p = malloc(64);
    free_sized(p, SIZE_MAX);
}
/* Twice this size is 128 modulo 2^64: a check that doubled the size
 * without minding the overflow would take it for a 64-byte object. */
static void c_sized_wraps(void) {
    void *p = malloc(64);
    free_sized(p, ((size_t)1 << 63) + 64);
}
static void c_sized_delete_wrong(void) {
    void *p = malloc(64);
    _ZdlPvm(p, 128);
}
static void c_sized_aligned_wrong(void) {
    void *p = aligned_alloc(64, 64);
    free_aligned_sized(p, 64, 1000);
}

static void row_free_sized_misuse(void) {
    expect_abort("free_sized twice, small", c_sized_df_small, "double free");
    expect_abort("free then free_sized, small", c_sized_df_after_free, "double free");
    expect_abort("free_sized twice, large", c_sized_df_large, "double free");
    expect_abort("sized operator delete twice", c_sized_df_delete, "double free");
    expect_abort("free_sized twice, small, after its page was released",
                 c_df_small_released_sized, "double free");
    expect_abort("free_sized(stack address)", c_sized_stack, "invalid pointer");
    expect_abort("free_sized of a span's tail past the last object", c_sized_tail,
                 "invalid pointer");
    expect_abort_prefix("free_sized(malloc(100), 40)", c_sized_below_half,
                        "mheap: size mismatch: ");
    expect_abort_prefix("free_sized(malloc(64), SIZE_MAX)", c_sized_max, "mheap: size mismatch: ");
    expect_abort_prefix("free_sized(malloc(64), 2^63 + 64)", c_sized_wraps,
                        "mheap: size mismatch: ");
    expect_abort_prefix("operator delete(malloc(64), 128)", c_sized_delete_wrong,
                        "mheap: size mismatch: ");
    expect_abort_prefix("free_aligned_sized(aligned_alloc(64, 64), 64, 1000)",
                        c_sized_aligned_wrong, "mheap: size mismatch: ");
}

/* ---- rows: sizes the heap cannot give ---- */

#define EXPECT_NULL_ERRNO(call, err)                                                   \
    do {                                                                               \
        errno = 0;                                                                     \
        void *r_ = (call);                                                             \
        CHECK(r_ == NULL);                                                             \
        CHECK_EQ(errno, err);                                                          \
        if (r_ != NULL || errno != (err))                                              \
            fprintf(stderr, "  %s: got %p, errno %d\n", #call, r_, errno);             \
    } while (0)

static void huge_sizes(size_t n) {
    /* The heap is set up first (a first allocation takes a span that then
     * stays cached): only the failing calls are measured. */
    free(malloc(200));
    uint64_t before = inuse_now();
    EXPECT_NULL_ERRNO(malloc(n), ENOMEM);
    EXPECT_NULL_ERRNO(calloc(1, n), ENOMEM);
    EXPECT_NULL_ERRNO(calloc(n, 1), ENOMEM);
    EXPECT_NULL_ERRNO(realloc(NULL, n), ENOMEM);
    EXPECT_NULL_ERRNO(reallocarray(NULL, 1, n), ENOMEM);
    EXPECT_NULL_ERRNO(aligned_alloc(16, n), ENOMEM);
    EXPECT_NULL_ERRNO(aligned_alloc(64, n), ENOMEM);
    EXPECT_NULL_ERRNO(aligned_alloc(1 << 20, n), ENOMEM);
    EXPECT_NULL_ERRNO(memalign(8, n), ENOMEM);
    EXPECT_NULL_ERRNO(memalign(4096, n), ENOMEM);
    EXPECT_NULL_ERRNO(valloc(n), ENOMEM);
    EXPECT_NULL_ERRNO(pvalloc(n), ENOMEM);
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 20); a <<= 4) {
        void *out = &out;
        CHECK_EQ(posix_memalign(&out, a, n), ENOMEM);
        CHECK(out == (void *)&out);
    }
    CHECK_EQ(inuse_now(), before);
    /* realloc / reallocarray of a live block: NULL, the block intact. */
    unsigned char *p = malloc(200);
    REQUIRE(p != NULL);
    before = inuse_now();
    memset(p, 0x3c, 200);
    EXPECT_NULL_ERRNO(realloc(opaque(p), n), ENOMEM);
    EXPECT_NULL_ERRNO(reallocarray(opaque(p), 1, n), ENOMEM);
    bool intact = true;
    for (int i = 0; i < 200; i++) intact &= p[i] == 0x3c;
    CHECK(intact);
    CHECK_EQ(inuse_now(), before);
    if (inuse_now() != before)
        fprintf(stderr, "  size %zu: heap_inuse %" PRIu64 " -> %" PRIu64 "\n", n, before,
                inuse_now());
    free(p);
}

static void row_huge(void) {
    /* Above PTRDIFF_MAX: refused up front. */
    huge_sizes(v_huge);
    huge_sizes(v_huge + 4096);
    huge_sizes(v_max);
    huge_sizes(v_max - 8191);
}

static void row_huge_below_ptrdiff(void) {
    /* At or below PTRDIFF_MAX, more than the address space: the OS says no
     * (the same contract: NULL, ENOMEM, heap unchanged). */
    huge_sizes((size_t)PTRDIFF_MAX);
    huge_sizes((size_t)PTRDIFF_MAX - 8191);
    huge_sizes((size_t)1 << 62);
    huge_sizes((size_t)1 << 48);
    CHECK_EQ(mh_heap_verify(), 0);
}

static void row_overflow(void) {
    uint64_t before = inuse_now();
    volatile size_t half = (size_t)1 << 32;
    EXPECT_NULL_ERRNO(calloc(half, half), ENOMEM);
    EXPECT_NULL_ERRNO(calloc(v_max, 2), ENOMEM);
    EXPECT_NULL_ERRNO(calloc(3, v_max / 2), ENOMEM);
    EXPECT_NULL_ERRNO(reallocarray(NULL, half, half), ENOMEM);
    CHECK_EQ(inuse_now(), before);
    for (int large = 0; large < 2; large++) {
        size_t n = large ? 2 * MiB : 300;
        unsigned char *p = malloc(n);
        REQUIRE(p != NULL);
        for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 13);
        EXPECT_NULL_ERRNO(reallocarray(opaque(p), half, half), ENOMEM);
        EXPECT_NULL_ERRNO(reallocarray(opaque(p), v_max, 16), ENOMEM);
        EXPECT_NULL_ERRNO(reallocarray(opaque(p), 16, v_max / 8), ENOMEM);
        bool intact = true;
        for (size_t i = 0; i < n; i++) intact &= p[i] == (unsigned char)(i * 13);
        CHECK(intact);
        CHECK(malloc_usable_size(p) >= n);
        /* Still a live block: it can grow and be freed. */
        p = reallocarray(p, 2, n);
        REQUIRE(p != NULL);
        for (size_t i = 0; i < n; i++) intact &= p[i] == (unsigned char)(i * 13);
        CHECK(intact);
        free(p);
    }
}

static void row_bad_align(void) {
    static const size_t bad[] = {0, 3, 24, 100, 4097, ((size_t)1 << 20) + 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_NULL_ERRNO(aligned_alloc(bad[i], 64), EINVAL);
        EXPECT_NULL_ERRNO(memalign(bad[i], 64), EINVAL);
    }
    /* Good alignments still work. */
    for (size_t a = 1; a <= ((size_t)1 << 20); a <<= 1) {
        void *p = aligned_alloc(a, 100), *q = memalign(a, 3000);
        REQUIRE(p != NULL && q != NULL);
        CHECK((uintptr_t)p % a == 0 && (uintptr_t)q % a == 0);
        free(p);
        free(q);
    }
}

static void row_posix_memalign(void) {
    static const size_t bad[] = {0, 1, 2, 3, 4, 24, 48, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = &out;
        errno = 4321;
        CHECK_EQ(posix_memalign(&out, bad[i], 64), EINVAL);
        CHECK(out == (void *)&out);
        CHECK_EQ(errno, 4321);
    }
    void *out = &out;
    CHECK_EQ(posix_memalign(&out, 64, v_huge), ENOMEM);
    CHECK(out == (void *)&out);
    CHECK_EQ(posix_memalign(&out, 8, v_max), ENOMEM);
    CHECK(out == (void *)&out);
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 20); a <<= 1) {
        void *p = NULL;
        CHECK_EQ(posix_memalign(&p, a, 5000), 0);
        REQUIRE(p != NULL);
        CHECK((uintptr_t)p % a == 0);
        CHECK(malloc_usable_size(p) >= 5000);
        free(p);
    }
}

/* ---- rows: zero sizes ---- */

static void row_malloc_zero(void) {
    enum { N = 100 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        REQUIRE(p[i] != NULL);
        CHECK(((uintptr_t)p[i] & 15) == 0);
        for (int j = 0; j < i; j++) CHECK(p[i] != p[j]);
    }
    for (int i = 0; i < N; i++) free(p[i]);
    void *a = malloc(0), *b = malloc(0);
    CHECK(a != NULL && b != NULL && a != b);
    free(b);
    free(a);
    void *c = calloc(0, 0), *d = calloc(0, 16);
    CHECK(c != NULL && d != NULL && c != d);
    free(c);
    free(d);
}

static void c_realloc_zero_then_free_small(void) {
    void *volatile p = malloc(32);
    tell(p);
    void *q = realloc(p, 0);
    if (q != NULL) {
        say("contract: realloc(p, 0) returned non-NULL\n");
        _exit(3);
    }
    free(p); /* p was freed by realloc: a double free */
}
static void c_realloc_zero_then_free_large(void) {
    void *volatile p = malloc(1 * MiB);
    tell(p);
    void *q = realloc(p, 0);
    if (q != NULL) {
        say("contract: realloc(p, 0) returned non-NULL\n");
        _exit(3);
    }
    free(p);
}

static void row_realloc_zero(void) {
    void *p = realloc(NULL, 0);
    CHECK(p != NULL);
    void *p2 = realloc(NULL, 0);
    CHECK(p2 != NULL && p2 != p);
    free(p2);
    CHECK(realloc(p, 0) == NULL);
    /* A large block's pages leave heap_inuse when realloc(p, 0) frees it.
     * (The first free of a large block starts the background scavenger,
     * whose creation allocates a little: get that done first.) */
    free(malloc(2 * MiB));
    uint64_t before = inuse_now();
    p = malloc(2 * MiB);
    REQUIRE(p != NULL);
    CHECK(inuse_now() >= before + 2 * MiB);
    CHECK(realloc(p, 0) == NULL);
    CHECK_EQ(inuse_now(), before);
    expect_abort("realloc(p, 0) then free(p), small", c_realloc_zero_then_free_small,
                 "double free");
    expect_abort("realloc(p, 0) then free(p), large", c_realloc_zero_then_free_large,
                 "double free");
}

/* ---- row: the OS refuses memory ---- */

static size_t vm_size_bytes(void) {
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return 0;
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *s = strstr(buf, "VmSize:");
    if (!s) return 0;
    return (size_t)strtoull(s + 7, NULL, 10) * 1024;
}

static void c_oom(void) {
    enum { MAXB = 1 << 16 };
    static unsigned char *blk[MAXB];
    /* Set the heap up first (its first arena is a 64 MiB reservation, as
     * large as the whole margin below). */
    free(malloc(1 * MiB));
    free(malloc(100));
    size_t vm = vm_size_bytes();
    if (vm == 0) {
        say("contract: cannot read VmSize\n");
        _exit(3);
    }
    struct rlimit rl = {vm + 64 * MiB, vm + 64 * MiB};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        say("contract: setrlimit failed\n");
        _exit(3);
    }
    size_t n = 0;
    errno = 0;
    for (; n < MAXB; n++) {
        blk[n] = malloc(1 * MiB);
        if (!blk[n]) break;
        blk[n][0] = (unsigned char)n;
        blk[n][MiB - 1] = (unsigned char)(n ^ 0x55);
    }
    if (n == MAXB) {
        say("contract: RLIMIT_AS did not stop the heap\n");
        _exit(3);
    }
    if (errno != ENOMEM) {
        say("contract: malloc failed without ENOMEM\n");
        _exit(3);
    }
    if (n == 0) {
        say("contract: not even one 1 MiB block under the limit\n");
        _exit(3);
    }
    /* Other entry points fail cleanly too (still under the limit). */
    errno = 0;
    if (calloc(64, MiB) != NULL || errno != ENOMEM) {
        say("contract: calloc(64 MiB) did not fail with ENOMEM\n");
        _exit(3);
    }
    /* Free half; then the heap works again. */
    for (size_t i = 0; i < n; i += 2) free(blk[i]);
    for (size_t i = 1; i < n; i += 2)
        if (blk[i][0] != (unsigned char)i || blk[i][MiB - 1] != (unsigned char)(i ^ 0x55)) {
            say("contract: a live block changed\n");
            _exit(3);
        }
    /* A size that fits where a freed block was: one, then all of them. */
    if (n >= 2) {
        void *one = malloc(1 * MiB);
        if (!one) {
            say("contract: 1 MiB malloc failed after freeing half\n");
            _exit(3);
        }
        free(one);
        for (size_t i = 0; i < n; i += 2) {
            blk[i] = malloc(1 * MiB);
            if (!blk[i]) {
                say("contract: 1 MiB malloc into the freed holes failed\n");
                _exit(3);
            }
        }
        for (size_t i = 0; i < n; i += 2) free(blk[i]);
    }
    for (int round = 0; round < 3; round++) {
        void *s[500];
        for (int k = 0; k < 500; k++) {
            s[k] = malloc(16 + (size_t)k * 37 % 20000);
            if (!s[k]) {
                say("contract: small malloc failed after freeing half\n");
                _exit(3);
            }
            memset(s[k], k, 16);
        }
        for (int k = 0; k < 500; k++) free(s[k]);
    }
    if (n >= 2) {
        void *c = calloc(1, 512 * KiB);
        if (!c) {
            say("contract: calloc(512 KiB) failed after freeing half\n");
            _exit(3);
        }
        for (size_t i = 0; i < 512 * KiB; i++)
            if (((unsigned char *)c)[i]) {
                say("contract: calloc gave dirty memory\n");
                _exit(3);
            }
        free(c);
    }
    for (size_t i = 1; i < n; i += 2) free(blk[i]);
    void *a = malloc(100), *b = malloc(3 * MiB);
    if (!a || !b) {
        say("contract: malloc failed after freeing everything\n");
        _exit(3);
    }
    free(a);
    free(b);
    if (mh_heap_verify() != 0) _exit(5);
    tell((void *)(uintptr_t)n); /* for the parent's report */
}

static void row_oom(void) {
    expect_clean_exit("OS refuses memory (RLIMIT_AS): 1 MiB blocks before ENOMEM", c_oom, 60);
}

/* ---- row: fork while other threads allocate ---- */

static _Atomic int fork_stop;

static void *fork_worker(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    void *ring[32] = {0};
    size_t i = 0;
    while (!fork_stop) {
        uint64_t r = check_rand(&rng);
        size_t n = r % 64 == 0 ? 32768 + r % (512 * KiB) : 1 + r % 4096;
        free(ring[i % 32]);
        ring[i % 32] = r % 8 == 0 ? calloc(1, n) : malloc(n);
        if (ring[i % 32]) memset(ring[i % 32], 1, n < 64 ? n : 64);
        i++;
    }
    for (int k = 0; k < 32; k++) free(ring[k]);
    return NULL;
}

static void row_fork_threads(void) {
    enum { NT = 4, NFORK = 20 };
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        REQUIRE(pthread_create(&t[i], NULL, fork_worker, (void *)(uintptr_t)(i + 1)) == 0);
    usleep(20000);
    int bad = 0;
    for (int f = 0; f < NFORK; f++) {
        usleep(2000 + 1000 * (unsigned)f % 7000);
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            alarm(20); /* a deadlocked child dies of SIGALRM */
            uint64_t rng = (uint64_t)f + 77;
            void *b[300];
            for (int round = 0; round < 3; round++) {
                for (int k = 0; k < 300; k++) {
                    uint64_t r = check_rand(&rng);
                    size_t n = k % 20 == 0 ? 40000 + r % (2 * MiB) : 1 + r % 8000;
                    b[k] = malloc(n);
                    if (!b[k]) _exit(3);
                    memset(b[k], k, n < 128 ? n : 128);
                }
                for (int k = 0; k < 300; k++) free(b[k]);
            }
            void *p = calloc(100, 100), *q = aligned_alloc(4096, 10000);
            if (!p || !q) _exit(3);
            p = realloc(p, 50000);
            if (!p) _exit(3);
            free(p);
            free(q);
            _exit(0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            bad++;
            if (WIFSIGNALED(status))
                fprintf(stderr, "fork %d: child killed by signal %d (%s)\n", f, WTERMSIG(status),
                        strsignal(WTERMSIG(status)));
            else
                fprintf(stderr, "fork %d: child exited %d\n", f, WEXITSTATUS(status));
        }
    }
    fork_stop = 1;
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    CHECK_EQ(bad, 0);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- row: 10^5 short-lived threads ---- */

enum { HAND = 3, PER_THREAD = 100 };
typedef struct {
    uint64_t seed;
    void *hand[HAND];
    int fail;
} thread_arg;

static void *short_thread(void *arg) {
    thread_arg *t = arg;
    void *b[PER_THREAD];
    uint64_t rng = t->seed;
    for (int i = 0; i < PER_THREAD; i++) {
        uint64_t r = check_rand(&rng);
        size_t n = r % 50 == 0 ? 32768 + r % (128 * KiB) : r % 5 == 0 ? 1 + r % 16384 : 1 + r % 512;
        b[i] = malloc(n);
        if (!b[i]) {
            t->fail = 1;
            return NULL;
        }
        memset(b[i], 0x11, n < 32 ? n : 32);
    }
    /* Hand over HAND blocks from spread-out slots; free the rest, half
     * of them sized. */
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % (PER_THREAD / HAND) == 0 && i / (PER_THREAD / HAND) < HAND)
            t->hand[i / (PER_THREAD / HAND)] = b[i];
        else
            free(b[i]);
    }
    return NULL;
}

/* fork against stdio: one thread forks again and again, one flushes every
 * stream (fflush(NULL): the C library's stream list lock, then each
 * stream's lock), readers grow long lines with getline (a stream's lock,
 * then malloc's slow path for a large block), and one opens and closes a
 * stream under the collector's lock (mh_gc_lock, then the stream list
 * lock).  An allocator whose fork handler takes its locks and then waits
 * for the stream list lock deadlocks against the flusher and the readers;
 * one that takes the stream list lock before the collector's, against
 * the last. */
static _Atomic int fs_stop;
static char fs_path[64];
static void *fs_forker(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load(&fs_stop)) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid > 0) (void)child_wait(pid);
        n++;
    }
    return (void *)n;
}
static void *fs_flusher(void *arg) {
    while (!atomic_load(&fs_stop)) fflush(NULL);
    return arg;
}
static void *fs_reader(void *arg) {
    FILE *f = fopen(fs_path, "r");
    if (!f) return (void *)1;
    while (!atomic_load(&fs_stop)) {
        rewind(f);
        char *line = NULL;
        size_t cap = 0;
        if (getline(&line, &cap, f) < 0) break;
        free(line);
    }
    fclose(f);
    return arg;
}
/* stdio under the collector's lock (allocation goes on meanwhile), which
 * the fork handlers take before the stream list lock */
static void *fs_gclocker(void *arg) {
    while (!atomic_load(&fs_stop)) {
        mh_gc_lock();
        FILE *f = fopen("/dev/null", "r");
        if (f) fclose(f);
        free(malloc(100000));
        mh_gc_unlock();
    }
    return arg;
}
static void fork_stdio_child(void) {
    enum { NREAD = 3 };
    pthread_t fk, fl, gl, rd[NREAD];
    REQUIRE(pthread_create(&fk, NULL, fs_forker, NULL) == 0);
    REQUIRE(pthread_create(&fl, NULL, fs_flusher, NULL) == 0);
    REQUIRE(pthread_create(&gl, NULL, fs_gclocker, NULL) == 0);
    for (int i = 0; i < NREAD; i++) REQUIRE(pthread_create(&rd[i], NULL, fs_reader, NULL) == 0);
    usleep(1500 * 1000);
    atomic_store(&fs_stop, 1);
    void *forks, *r;
    pthread_join(fk, &forks);
    pthread_join(fl, NULL);
    pthread_join(gl, NULL);
    for (int i = 0; i < NREAD; i++) {
        pthread_join(rd[i], &r);
        if (r) _exit(3);
    }
    _exit((intptr_t)forks > 0 ? 0 : 4);
}
static void row_fork_stdio(void) {
    snprintf(fs_path, sizeof fs_path, "/tmp/mheap-fork-stdio-%d", (int)getpid());
    FILE *f = fopen(fs_path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 100000; i++) fputc('x', f); /* (a line of a large block) */
    fputc('\n', f);
    REQUIRE(fclose(f) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) fork_stdio_child();
    /* A deadlock leaves the child stuck: give it 30 s (it runs 1.5 s). */
    int status = 0;
    bool done = false;
    for (int i = 0; i < 3000 && !done; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) done = true;
        else usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        (void)child_wait(pid);
        fprintf(stderr, "fork_stdio: still running after 30 s (deadlocked)\n");
    }
    unlink(fs_path);
    CHECK(done);
    CHECK(done && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Threads whose first allocation happens inside the C library's
 * pthread_setspecific, for a key of the program's numbered 32 or more:
 * glibc then allocates that thread's second block of key values, and its
 * calloc is the thread's first malloc.  A cache key made there, in the
 * same block, had its value overwritten when that outer calloc returned,
 * so the cache's thread-exit handler never ran: one cache and its spans
 * lost per thread.  Each thread's cache must be given back at its exit. */
static pthread_key_t tk_key;
static void *tk_worker(void *arg) {
    pthread_setspecific(tk_key, arg); /* (the thread's first allocation) */
    void *v[64];
    for (int i = 0; i < 64; i++) v[i] = malloc(1000);
    for (int i = 0; i < 64; i++) free(v[i]);
    return NULL;
}
static void row_thread_key_late(void) {
    /* Keys before any allocation of the program's own, so that tk_key is
     * in glibc's second block (keys 32 and up). */
    pthread_key_t k;
    for (int i = 0; i < 40; i++) REQUIRE(pthread_key_create(&k, NULL) == 0);
    REQUIRE(pthread_key_create(&tk_key, NULL) == 0);
    REQUIRE(tk_key >= 32);
    enum { NT = 200 };
    for (int i = 0; i < NT; i++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, tk_worker, (void *)(uintptr_t)1) == 0);
        REQUIRE(pthread_join(t, NULL) == 0);
    }
    mh_stats_t st;
    REQUIRE(mh_stats_get(&st, sizeof st) > 0);
    /* (main's cache, and the background thread's if it made one) */
    CHECK(st.thread_caches <= 2);
    if (st.thread_caches > 2)
        fprintf(stderr, "thread_key_late: %" PRIu64 " live caches after %d threads exited\n",
                st.thread_caches, NT);
}

static void row_many_threads(void) {
    enum { TOTAL = 100000, BATCH = 8, MARK = 1000 };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * KiB);
    thread_arg args[BATCH], prev[BATCH];
    memset(prev, 0, sizeof prev);
    uint64_t at_mark = 0, at_end = 0;
    int fails = 0;
    for (int done = 0; done < TOTAL; done += BATCH) {
        pthread_t t[BATCH];
        for (int i = 0; i < BATCH; i++) {
            memset(&args[i], 0, sizeof args[i]);
            args[i].seed = (uint64_t)(done + i) * 0x9E3779B97F4A7C15ULL + 12345;
            int rc = pthread_create(&t[i], &attr, short_thread, &args[i]);
            REQUIRE(rc == 0);
        }
        for (int i = 0; i < BATCH; i++) pthread_join(t[i], NULL);
        /* The blocks handed over by the batch before are freed now, by
         * this thread: long after their threads exited. */
        for (int i = 0; i < BATCH; i++)
            for (int h = 0; h < HAND; h++) free(prev[i].hand[h]);
        for (int i = 0; i < BATCH; i++) fails += args[i].fail;
        memcpy(prev, args, sizeof prev);
        if (done + BATCH == MARK) at_mark = inuse_now();
    }
    at_end = inuse_now();
    for (int i = 0; i < BATCH; i++)
        for (int h = 0; h < HAND; h++) free(prev[i].hand[h]);
    pthread_attr_destroy(&attr);
    CHECK_EQ(fails, 0);
    fprintf(stderr, "heap_inuse after %d threads: %" PRIu64 " bytes; after %d: %" PRIu64 " bytes\n",
            MARK, at_mark, TOTAL, at_end);
    CHECK(at_mark > 0);
    CHECK(at_end < 2 * at_mark + 8 * MiB);
    CHECK_EQ(mh_heap_verify(), 0);
}

/* ---- main ---- */

static const struct {
    const char *name;
    void (*fn)(void);
} rows[] = {
    {"free_null", row_free_null},
    {"free_errno", row_free_errno},
    {"double_free_small", row_double_free_small},
    {"double_free_large", row_double_free_large},
    {"double_free_thread", row_double_free_thread},
    {"corrupted_free", row_corrupted_free},
    {"interior", row_interior},
    {"never_handed_out", row_never_handed_out},
    {"foreign", row_foreign},
    {"free_sized", row_free_sized},
    {"free_sized_misuse", row_free_sized_misuse},
    {"huge", row_huge},
    {"huge_below_ptrdiff", row_huge_below_ptrdiff},
    {"overflow", row_overflow},
    {"bad_align", row_bad_align},
    {"posix_memalign", row_posix_memalign},
    {"malloc_zero", row_malloc_zero},
    {"realloc_zero", row_realloc_zero},
    {"oom", row_oom},
    {"fork_threads", row_fork_threads},
    {"fork_stdio", row_fork_stdio},
    {"thread_key_late", row_thread_key_late},
    {"many_threads", row_many_threads},
};

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) printf("%s\n", rows[i].name);
        return 0;
    }
    for (size_t i = 0; argc == 2 && i < sizeof rows / sizeof rows[0]; i++) {
        if (strcmp(argv[1], rows[i].name) == 0) {
            rows[i].fn();
            return check_done(rows[i].name);
        }
    }
    fprintf(stderr, "usage: contract <row> | --list\n");
    return 2;
}
