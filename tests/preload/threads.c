/* threads.c - a threaded malloc workload for the LD_PRELOAD tests.
 *
 * Built against the C library only (NOT linked with mheap): run as is it
 * uses the system allocator, run with LD_PRELOAD=libmheap.so it uses mheap.
 * tests/preload/threads.sh runs it both ways and compares the output, which
 * must not depend on the allocator or on thread interleaving.
 *
 * 8 threads malloc / calloc / realloc / aligned-allocate / free blocks of
 * random sizes (seeded per thread), fill each with a pattern derived from
 * (thread, block) and check it before every realloc, hand-off and free.
 * Blocks are handed to other threads through mutex-protected mailboxes and
 * freed by the receiver.  The checksum printed is a sum over every freed
 * block of a hash of (key, size), so it does not depend on who freed what.
 *
 * TEST_EXPECT_MHEAP=1: check that malloc is mheap's (mh_stats_get is found
 * with dlsym and counts a 10 MiB block as in use); TEST_EXPECT_MHEAP=0:
 * check that it is not (mh_stats_get is not found).  Exit status 0 only if
 * every check passed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mheap.h" /* only for mh_stats_t; nothing of mheap is linked */

#define NTHREADS 8
#define NOPS 60000
#define MAX_LIVE 256
#define MAILBOX_CAP 512

typedef struct {
    uint8_t *p;
    size_t size;
    uint64_t key;
} blk;

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s) {
    *s = mix64(*s);
    return *s;
}

/* Byte i of a block: position-dependent, so realloc keeps a prefix of it. */
static inline uint8_t pat(uint64_t key, size_t i) {
    return (uint8_t)((key >> ((i & 7) * 8)) ^ (i >> 3) ^ (i >> 11));
}

static void fill(blk *b, size_t from) {
    for (size_t i = from; i < b->size; i++) b->p[i] = pat(b->key, i);
}

static _Atomic unsigned long nerrors;
static _Atomic uint64_t checksum;
static _Atomic unsigned long nfreed, nhandoffs;

static bool check(const blk *b, size_t upto, const char *what) {
    if (((uintptr_t)b->p & 15) != 0) {
        fprintf(stderr, "%s: %p not 16-byte aligned\n", what, (void *)b->p);
        atomic_fetch_add(&nerrors, 1);
        return false;
    }
    for (size_t i = 0; i < upto; i++) {
        if (b->p[i] != pat(b->key, i)) {
            fprintf(stderr, "%s: block %p (size %zu) corrupt at %zu\n", what, (void *)b->p,
                    b->size, i);
            atomic_fetch_add(&nerrors, 1);
            return false;
        }
    }
    if (malloc_usable_size(b->p) < b->size) {
        fprintf(stderr, "%s: malloc_usable_size(%p) < %zu\n", what, (void *)b->p, b->size);
        atomic_fetch_add(&nerrors, 1);
        return false;
    }
    return true;
}

static void release(blk *b) {
    check(b, b->size, "free");
    atomic_fetch_add(&checksum, mix64(b->key ^ ((uint64_t)b->size << 40)));
    atomic_fetch_add(&nfreed, 1);
    free(b->p);
    b->p = NULL;
}

static size_t pick_size(uint64_t *s) {
    uint64_t r = rnd(s);
    unsigned sel = (unsigned)(r % 1000);
    r = rnd(s);
    if (sel < 3) return (33u << 10) + (size_t)(r % (1u << 20));  /* large */
    if (sel < 80) return 1025 + (size_t)(r % (32u << 10));       /* medium */
    return 1 + (size_t)((r >> 8) % ((size_t)1 << (r % 11)));      /* small */
}

static struct {
    pthread_mutex_t mu;
    blk v[MAILBOX_CAP];
    size_t n;
} box[NTHREADS];

static void drain(int me) {
    blk got[64];
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&box[me].mu);
        while (n < 64 && box[me].n > 0) got[n++] = box[me].v[--box[me].n];
        pthread_mutex_unlock(&box[me].mu);
        if (n == 0) return;
        for (size_t i = 0; i < n; i++) release(&got[i]);
    }
}

typedef struct {
    int id;
    uint64_t allocated_bytes, nallocs;
} targ;

static void *thread_main(void *arg) {
    targ *t = arg;
    uint64_t s = mix64(0xC0FFEEull + (uint64_t)t->id);
    blk *live = calloc(MAX_LIVE, sizeof *live);
    size_t nlive = 0;
    uint64_t bid = 0;
    if (!live) {
        atomic_fetch_add(&nerrors, 1);
        return NULL;
    }
    for (int op = 0; op < NOPS; op++) {
        unsigned r = (unsigned)(rnd(&s) % 100);
        if (r < 40 || nlive == 0) {
            if (nlive == MAX_LIVE) {
                size_t i = rnd(&s) % nlive;
                release(&live[i]);
                live[i] = live[--nlive];
            }
            blk b = {NULL, pick_size(&s), mix64(((uint64_t)t->id << 48) ^ bid++)};
            unsigned how = (unsigned)(rnd(&s) % 10);
            if (how == 0) {
                b.p = calloc(1, b.size);
                for (size_t i = 0; b.p && i < b.size; i++)
                    if (b.p[i] != 0) {
                        fprintf(stderr, "calloc block %p not zero at %zu\n", (void *)b.p, i);
                        atomic_fetch_add(&nerrors, 1);
                        break;
                    }
            } else if (how == 1) {
                void *q = NULL;
                size_t align = (size_t)64 << (rnd(&s) % 6);
                if (posix_memalign(&q, align, b.size) == 0) b.p = q;
                if (b.p && ((uintptr_t)b.p & (align - 1))) {
                    fprintf(stderr, "posix_memalign(%zu) gave %p\n", align, q);
                    atomic_fetch_add(&nerrors, 1);
                }
            } else {
                b.p = malloc(b.size);
            }
            if (!b.p) {
                fprintf(stderr, "allocation of %zu bytes failed\n", b.size);
                atomic_fetch_add(&nerrors, 1);
                continue;
            }
            fill(&b, 0);
            t->allocated_bytes += b.size;
            t->nallocs++;
            live[nlive++] = b;
        } else if (r < 65) {
            size_t i = rnd(&s) % nlive;
            release(&live[i]);
            live[i] = live[--nlive];
        } else if (r < 78) {
            blk *b = &live[rnd(&s) % nlive];
            size_t nsz = (rnd(&s) & 1) ? 1 + (size_t)(rnd(&s) % (b->size * 2 + 64))
                                       : pick_size(&s);
            check(b, b->size, "before realloc");
            uint8_t *q = realloc(b->p, nsz);
            if (!q) {
                fprintf(stderr, "realloc(%zu) failed\n", nsz);
                atomic_fetch_add(&nerrors, 1);
                continue;
            }
            b->p = q;
            size_t old = b->size;
            b->size = nsz;
            check(b, old < nsz ? old : nsz, "after realloc");
            if (nsz > old) fill(b, old);
        } else if (r < 93) {
            size_t i = rnd(&s) % nlive;
            int to = (t->id + 1 + (int)(rnd(&s) % (NTHREADS - 1))) % NTHREADS;
            check(&live[i], live[i].size, "send");
            bool sent = false;
            pthread_mutex_lock(&box[to].mu);
            if (box[to].n < MAILBOX_CAP) {
                box[to].v[box[to].n++] = live[i];
                sent = true;
            }
            pthread_mutex_unlock(&box[to].mu);
            if (sent) atomic_fetch_add(&nhandoffs, 1);
            else release(&live[i]);
            live[i] = live[--nlive];
        } else {
            drain(t->id);
        }
    }
    for (size_t i = 0; i < nlive; i++) release(&live[i]);
    free(live);
    drain(t->id);
    return NULL;
}

static int expect_mheap(const char *want) {
    typedef size_t (*stats_fn)(mh_stats_t *, size_t);
    void *sym = dlsym(RTLD_DEFAULT, "mh_stats_get");
    stats_fn get;
    memcpy(&get, &sym, sizeof get);
    if (strcmp(want, "0") == 0) {
        if (sym) {
            fprintf(stderr, "TEST_EXPECT_MHEAP=0 but mh_stats_get is defined\n");
            return 1;
        }
        fprintf(stderr, "malloc is the system allocator (no mh_stats_get)\n");
        return 0;
    }
    if (!sym) {
        fprintf(stderr, "TEST_EXPECT_MHEAP=1 but mh_stats_get is not found: mheap not preloaded\n");
        return 1;
    }
    mh_stats_t before, after;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    get(&before, sizeof before);
    size_t big = (size_t)10 << 20;
    char *volatile p = malloc(big);
    if (!p) return 1;
    memset(p, 0xAB, big);
    get(&after, sizeof after);
    int rc = 0;
    if (after.heap_inuse == 0 || after.heap_inuse < big ||
        after.heap_inuse < before.heap_inuse + big) {
        fprintf(stderr, "malloc(10 MiB) not seen by mheap: heap_inuse %" PRIu64 " -> %" PRIu64 "\n",
                before.heap_inuse, after.heap_inuse);
        rc = 1;
    } else {
        fprintf(stderr, "malloc is mheap: heap_inuse %" PRIu64 " -> %" PRIu64 " after malloc(10 MiB)\n",
                before.heap_inuse, after.heap_inuse);
    }
    free(p);
    return rc;
}

int main(void) {
    const char *want = getenv("TEST_EXPECT_MHEAP");
    int rc = 0;
    if (want && *want) rc |= expect_mheap(want);

    pthread_t th[NTHREADS];
    targ args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_mutex_init(&box[i].mu, NULL);
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (targ){.id = i};
        if (pthread_create(&th[i], NULL, thread_main, &args[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    uint64_t bytes = 0, nallocs = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        bytes += args[i].allocated_bytes;
        nallocs += args[i].nallocs;
        printf("thread %d: %" PRIu64 " blocks, %" PRIu64 " bytes\n", i, args[i].nallocs,
               args[i].allocated_bytes);
    }
    for (int i = 0; i < NTHREADS; i++) drain(i); /* blocks sent to threads that had exited */
    printf("total: %" PRIu64 " blocks, %" PRIu64 " bytes, %lu freed\n", nallocs, bytes,
           atomic_load(&nfreed));
    printf("checksum: %016" PRIx64 "\n", atomic_load(&checksum));
    printf("errors: %lu\n", atomic_load(&nerrors));
    fprintf(stderr, "%lu hand-offs between threads\n", atomic_load(&nhandoffs));
    if (atomic_load(&nfreed) != nallocs) {
        fprintf(stderr, "freed %lu blocks of %" PRIu64 "\n", atomic_load(&nfreed), nallocs);
        rc = 1;
    }
    if (atomic_load(&nerrors)) rc = 1;
    return rc;
}
