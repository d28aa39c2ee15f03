/* test_stats.c - every statistic of mh_stats_t is filled, printed and
 * counts what it says.
 *
 * 1. mhi_stats_collect into a struct filled with 0xA5 bytes leaves no
 *    field of MH_STATS_FIELDS holding 0xA5A5A5A5A5A5A5A5; version is
 *    MH_STATS_VERSION and size is sizeof(mh_stats_t).
 * 2. mh_stats_get(out, size) writes exactly min(size, sizeof) bytes and
 *    returns that count, for sizes 0, 4, 8, a few fields, sizeof - 8,
 *    sizeof and more; what it writes is the statistics.
 * 3. mh_stats_print(fd) writes "mheap: statistics", then one line per
 *    field of MH_STATS_FIELDS in order, "  <name> <value>  <meaning>",
 *    except the pause histogram's fields, which make one line in the
 *    place of the first, "  gc_pause_hist <bucket>:<count> ...  <meaning>"
 *    with exactly the buckets that counted something, or "none"; then the
 *    size-class table.  Checked before the first collection and after.
 * 4. Values move: a large malloc raises heap_inuse, large_bytes and
 *    nspan_inuse by its pages and span_allocs by one, and its free puts
 *    them back and counts a span_free; the first object of a class not
 *    used yet takes a new span (small_span_allocs, small_spans, small_bytes,
 *    span_allocs); a thread counts in thread_caches while it lives, and
 *    its cache goes to cache_pool when it exits.
 * 5. The collector's figures: five collections of garbage count five
 *    cycles, pause time (total, maximum, and a histogram whose buckets add
 *    up to the cycles), allocated and swept bytes; the heap and live bytes
 *    are mh_gc_stats_get's; mh_gc_free counts the object's size as freed;
 *    dead large objects left unswept by a collection are reclaimed whole
 *    when a new span is taken; and every gc_ field equals its counterpart
 *    in mh_gc_stats_get. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "malloc.h"
#include "mheap.h"
#include "mheap_gc.h"
#include "pageheap.h"
#include "sizeclass.h"

#define FILL 0xA5A5A5A5A5A5A5A5ULL

static const struct {
    const char *name, *doc;
    size_t offset;
} fields[] = {
#define X(version, name, doc) {#name, doc, offsetof(mh_stats_t, name)},
    MH_STATS_FIELDS(X)
#undef X
};
#define NFIELDS (sizeof fields / sizeof fields[0])

#define HIST_FIRST offsetof(mh_stats_t, gc_pause_hist_0)
#define HIST_LAST offsetof(mh_stats_t, gc_pause_hist_23)
static bool is_hist(size_t i) {
    return fields[i].offset >= HIST_FIRST && fields[i].offset <= HIST_LAST;
}

static uint64_t hist(const mh_stats_t *st, int b) {
    uint64_t v;
    memcpy(&v, (const char *)st + HIST_FIRST + 8 * (size_t)b, sizeof v);
    return v;
}

static uint64_t field(const mh_stats_t *st, size_t i) {
    uint64_t v;
    memcpy(&v, (const char *)st + fields[i].offset, sizeof v);
    return v;
}

static void collect(mh_stats_t *st) {
    memset(st, 0xA5, sizeof *st);
    mhi_stats_collect(st);
}

static void every_field_filled(void) {
    mh_stats_t st;
    collect(&st);
    CHECK_EQ(st.version, MH_STATS_VERSION);
    CHECK_EQ(st.size, sizeof st);
    CHECK_EQ(8 + 8 * NFIELDS, sizeof st); /* the list covers the struct */
    for (size_t i = 0; i < NFIELDS; i++) {
        bool filled = field(&st, i) != FILL;
        CHECK(filled);
        if (!filled) fprintf(stderr, "  field %s not filled\n", fields[i].name);
    }
}

static void partial_get(void) {
    const size_t sizes[] = {0, 4, 8, 8 + 3 * 8, sizeof(mh_stats_t) - 8, sizeof(mh_stats_t),
                            sizeof(mh_stats_t) + 40};
    unsigned char buf[sizeof(mh_stats_t) + 64];
    mh_stats_t ref;
    collect(&ref);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k], want = size < sizeof ref ? size : sizeof ref;
        memset(buf, 0x5A, sizeof buf);
        size_t got = mh_stats_get((mh_stats_t *)buf, size);
        CHECK_EQ(got, want);
        size_t spill = 0;
        for (size_t i = want; i < sizeof buf; i++) spill += buf[i] != 0x5A;
        CHECK_EQ(spill, 0);
        /* Nothing allocates meanwhile: the bytes written are the
         * statistics (version, size, then the fields). */
        CHECK(memcmp(buf, &ref, want) == 0);
    }
}

/* The histogram line after its name: " <1us:3 <64us:2 >=4194304us:1  meaning",
 * exactly the nonzero buckets of st, or " none  meaning". */
static bool hist_line_ok(const char *rest, const mh_stats_t *st) {
    const char *doc = "  collection pauses by length (fields gc_pause_hist_<b>)";
    int b = 0, listed = 0;
    for (;;) {
        while (b < MH_STATS_GC_PAUSE_BUCKETS && hist(st, b) == 0) b++;
        if (b == MH_STATS_GC_PAUSE_BUCKETS) break;
        char want[64];
        if (b == MH_STATS_GC_PAUSE_BUCKETS - 1)
            snprintf(want, sizeof want, " >=%lluus:%llu", 1ULL << (b - 1),
                     (unsigned long long)hist(st, b));
        else
            snprintf(want, sizeof want, " <%lluus:%llu", 1ULL << b, (unsigned long long)hist(st, b));
        if (strncmp(rest, want, strlen(want)) != 0) return false;
        rest += strlen(want);
        listed++;
        b++;
    }
    if (!listed) {
        if (strncmp(rest, " none", 5) != 0) return false;
        rest += 5;
    }
    return strcmp(rest, doc) == 0;
}

static void print_lists_every_field(void) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    mh_stats_t now;
    collect(&now); /* (nothing changes before the print) */
    mh_stats_print(fds[1]); /* (a few KiB: within the pipe's buffer) */
    close(fds[1]);
    static char out[65536];
    child_read_all(fds[0], out, sizeof out);

    const char *head = "mheap: statistics\n";
    REQUIRE(strncmp(out, head, strlen(head)) == 0);
    char *line = out + strlen(head);
    for (size_t i = 0; i < NFIELDS; i++) {
        if (is_hist(i) && fields[i].offset != HIST_FIRST) continue; /* (one line for all) */
        char *end = strchr(line, '\n');
        REQUIRE(end != NULL);
        *end = '\0';
        if (is_hist(i)) {
            const char *name = "  gc_pause_hist     ";
            bool ok = strncmp(line, name, strlen(name)) == 0 &&
                      hist_line_ok(line + strlen(name), &now);
            CHECK(ok);
            if (!ok) fprintf(stderr, "  histogram line: \"%s\"\n", line);
            line = end + 1;
            continue;
        }
        /* "  <name padded>  <value>  <doc>" */
        char name[64];
        unsigned long long value;
        int pos = 0;
        bool parsed = sscanf(line, "  %63s %llu  %n", name, &value, &pos) == 2 && pos > 0;
        CHECK(parsed);
        bool named = parsed && strcmp(name, fields[i].name) == 0;
        CHECK(named);
        bool doc = parsed && strcmp(line + pos, fields[i].doc) == 0;
        CHECK(doc);
        if (!named || !doc) fprintf(stderr, "  line %zu for %s: \"%s\"\n", i, fields[i].name, line);
        line = end + 1;
    }
    CHECK(strncmp(line, "mheap: small objects by size class\n", 35) == 0);
}

static _Atomic int thread_stage;

static void *short_lived(void *arg) {
    (void)arg;
    void *p = mh_malloc(48);
    if (!p) abort();
    mh_free(p);
    atomic_store(&thread_stage, 1);
    while (atomic_load(&thread_stage) != 2) usleep(100);
    return NULL;
}

static void values_move(void) {
    mh_stats_t a, b, c;

    /* A large block: 40 pages. */
    size_t npages = 40, bytes = npages * MHI_PAGE_SIZE;
    collect(&a);
    void *big = mh_malloc(bytes);
    REQUIRE(big != NULL);
    collect(&b);
    CHECK_EQ(b.heap_inuse - a.heap_inuse, bytes);
    CHECK_EQ(b.large_bytes - a.large_bytes, bytes);
    CHECK_EQ(b.nspan_inuse - a.nspan_inuse, 1);
    CHECK_EQ(b.span_allocs - a.span_allocs, 1);
    CHECK_EQ(b.heap_sys, b.heap_inuse + b.heap_idle);
    mh_free(big);
    collect(&c);
    CHECK_EQ(c.heap_inuse, a.heap_inuse);
    CHECK_EQ(c.large_bytes, a.large_bytes);
    CHECK_EQ(c.nspan_inuse, a.nspan_inuse);
    CHECK_EQ(c.span_frees - b.span_frees, 1);

    /* The first object of a class nobody used: a new span. */
    size_t size = 20000, cls = mhi_size_class(size);
    collect(&a);
    void *obj = mh_malloc(size);
    REQUIRE(obj != NULL);
    collect(&b);
    CHECK_EQ(b.small_span_allocs - a.small_span_allocs, 1);
    CHECK_EQ(b.small_spans - a.small_spans, 1);
    CHECK_EQ(b.small_bytes - a.small_bytes, (uint64_t)mhi_class_npages[cls] * MHI_PAGE_SIZE);
    CHECK_EQ(b.span_allocs - a.span_allocs, 1);
    CHECK_EQ(b.heap_inuse - a.heap_inuse, (uint64_t)mhi_class_npages[cls] * MHI_PAGE_SIZE);
    CHECK_EQ(b.large_bytes, a.large_bytes);
    mh_free(obj);

    /* A thread's cache. */
    collect(&a);
    pthread_t t;
    atomic_store(&thread_stage, 0);
    REQUIRE(pthread_create(&t, NULL, short_lived, NULL) == 0);
    while (atomic_load(&thread_stage) != 1) usleep(100);
    collect(&b);
    CHECK_EQ(b.thread_caches, a.thread_caches + 1);
    CHECK_EQ(b.cache_pool, a.cache_pool ? a.cache_pool - 1 : 0);
    atomic_store(&thread_stage, 2);
    REQUIRE(pthread_join(t, NULL) == 0);
    collect(&c);
    CHECK_EQ(c.thread_caches, a.thread_caches);
    CHECK_EQ(c.cache_pool, b.cache_pool + 1);
}

/* ---- the collector's figures ---- */

/* Objects nothing keeps: n of size bytes each. */
static __attribute__((noinline)) void garbage(int n, size_t size) {
    for (int i = 0; i < n; i++) {
        void *volatile p = mh_gc_malloc(size);
        REQUIRE(p != NULL);
    }
}

/* Erase stale copies of dropped addresses below the caller's frame. */
static __attribute__((noinline)) void scrub_stack(void) {
    volatile char buf[65536];
    memset((char *)buf, 0, sizeof buf);
}

static void *volatile gc_kept; /* a live object: the GC heap is not empty */

static void gc_values_move(void) {
    mh_stats_t a, b;
    gc_kept = mh_gc_malloc(100);
    REQUIRE(gc_kept != NULL);
    collect(&a);
    for (int r = 0; r < 5; r++) {
        garbage(4000, 48);
        scrub_stack();
        mh_gc_collect(1); /* (1: sweeping finishes too) */
    }
    collect(&b);
    CHECK_EQ(b.gc_cycles - a.gc_cycles, 5);
    CHECK(b.gc_pause_total_ns > a.gc_pause_total_ns);
    CHECK(b.gc_pause_max_ns > 0 && b.gc_pause_max_ns <= b.gc_pause_total_ns);
    uint64_t pauses = 0;
    for (int k = 0; k < MH_STATS_GC_PAUSE_BUCKETS; k++) pauses += hist(&b, k);
    CHECK_EQ(pauses, b.gc_cycles);
    CHECK(b.gc_alloc_bytes - a.gc_alloc_bytes >= 5 * 4000 * 48);
    /* (most of the garbage: a stale copy may keep a few objects) */
    CHECK(b.gc_swept_bytes - a.gc_swept_bytes >= 4 * 4000 * 48);
    CHECK(b.gc_heap_bytes > 0 && b.gc_live_bytes >= 100);
    CHECK(mh_gc_base(gc_kept, NULL) == gc_kept);
    CHECK_EQ(b.gc_heap_bytes, mh_gc_heap_size());
    CHECK_EQ(b.gc_live_bytes, mh_gc_live_bytes());

    /* An explicit free. */
    void *obj = mh_gc_malloc(1000);
    REQUIRE(obj != NULL);
    size_t size = mh_gc_size(obj);
    collect(&a);
    mh_gc_free(obj);
    collect(&b);
    CHECK_EQ(b.gc_freed_bytes - a.gc_freed_bytes, size);

    /* Dead large objects a collection leaves unswept (no background
     * thread here) are freed whole when the next span is taken. */
    garbage(32, 40000);
    scrub_stack();
    mh_gc_collect(0);
    collect(&a);
    void *big = mh_gc_malloc(40000);
    REQUIRE(big != NULL);
    collect(&b);
    CHECK(b.gc_reclaimed_bytes - a.gc_reclaimed_bytes >= 40000);
    fprintf(stderr, "gc: %llu cycles, pause max %llu us, swept %llu KiB, reclaimed %llu KiB\n",
            (unsigned long long)b.gc_cycles, (unsigned long long)b.gc_pause_max_ns / 1000,
            (unsigned long long)b.gc_swept_bytes >> 10,
            (unsigned long long)b.gc_reclaimed_bytes >> 10);

    /* The same figures as the collector's own statistics. */
    mh_gc_stats_t g;
    REQUIRE(mh_gc_stats_get(&g, sizeof g) == sizeof g);
    collect(&b);
    CHECK_EQ(b.gc_cycles, g.cycles);
    CHECK_EQ(b.gc_pause_total_ns, g.pause_total_ns);
    CHECK_EQ(b.gc_pause_max_ns, g.pause_max_ns);
    CHECK_EQ(b.gc_alloc_bytes, g.alloc_bytes);
    CHECK_EQ(b.gc_swept_bytes, g.swept_bytes);
    CHECK_EQ(b.gc_reclaimed_bytes, g.reclaimed_bytes);
    CHECK_EQ(b.gc_freed_bytes, g.freed_bytes);
    CHECK_EQ(b.gc_heap_bytes, g.heap_bytes);
    CHECK_EQ(b.gc_live_bytes, g.live_bytes);
    for (int k = 0; k < MH_STATS_GC_PAUSE_BUCKETS; k++) CHECK_EQ(hist(&b, k), g.pause_hist[k]);
}

int main(void) {
    /* No background thread: the statistics change only through the test. */
    REQUIRE(mh_option_set("background", 0) == 0);
    void *warm = mh_malloc(100); /* this thread's cache, the heap */
    REQUIRE(warm != NULL);

    every_field_filled();
    partial_get();
    print_lists_every_field();
    values_move();
    gc_values_move();
    print_lists_every_field(); /* now with pauses in the histogram */

    mh_free(warm);
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("test_stats");
}
