/* test_free_race.c - two threads freeing one block at the same moment.
 *
 * The free fast path checks the block's free mark and writes it with plain
 * loads and stores (cache.h), so two threads freeing one block within a
 * few nanoseconds can both pass the check, and the block lands on both
 * threads' stashes.  What must hold afterwards: the program is stopped
 * with mheap's one-line message ("double free" or "corrupted free block")
 * before the block, or any other, is handed to two live users at once,
 * and never by a bare signal.
 *
 * The race is too narrow to hit reliably on a small machine, so each case
 * builds the state it leaves, exactly, with the stash push the fast path
 * uses: thread X frees the block and thread Y pushes it too, as if Y had
 * passed the check before X's mark was written; or both pushes skip the
 * check, in either order; or the two pushes' words interleave (the link
 * of one, the mark of the other).  Then X and Y take turns at random
 * allocations and frees of the class (writing into every block they
 * hold), then exit; a block handed out while another user holds it fails
 * the test, and so does a child that survives or dies without the line.
 * A last case lets the second copy make a span look entirely free while
 * one of its blocks is live (run_kept, below). */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "cache_impl.h"
#include "pageheap.h"
#include "check.h"
#include "child.h"
#include "mheap.h"
#include "sizeclass.h"

enum { SIZE = 64, MAXLIVE = 512, TURNS = 400, OPS = 64 };
enum race { X_FREES_Y_PUSHES, BOTH_PUSH_Y_LAST, BOTH_PUSH_X_LAST, TORN };

static enum race the_race;
static void *victim;
static sem_t turn[2];

/* Blocks held live by either thread (only one runs at a time). */
static void *live[2][MAXLIVE];
static int nlive[2];

static bool held(const void *p) {
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < nlive[t]; i++)
            if (live[t][i] == p) return true;
    return false;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void say_and_exit(const char *what, const void *p) {
    char line[96];
    int n = snprintf(line, sizeof line, "test: %s: %p\n", what, p);
    (void)!write(2, line, (size_t)n);
    _exit(1);
}

/* One turn of thread t: random allocations (checked against every block
 * held) and frees of its own blocks. */
static void play(int t) {
    for (int k = 0; k < OPS; k++) {
        if (nlive[t] < MAXLIVE && (nlive[t] == 0 || rnd(2))) {
            char *p = mh_malloc(SIZE);
            if (!p) say_and_exit("out of memory", NULL);
            if (held(p)) say_and_exit("block handed out twice", p);
            memset(p, 'a' + t, SIZE); /* a user writes its whole block */
            live[t][nlive[t]++] = p;
        } else {
            int i = (int)rnd((uint32_t)nlive[t]);
            void *p = live[t][i];
            live[t][i] = live[t][--nlive[t]];
            mh_free(p);
        }
    }
}

/* The stash push of the free fast path, without its check. */
static void raw_push(void *p) {
    mhi_stash_push(mhi_tls_cache, mhi_size_class(SIZE), p);
}

static void *player(void *arg) {
    int t = (int)(intptr_t)arg;
    sem_wait(&turn[t]);
    /* Set-up: both threads have caches and stashes of the class. */
    for (int i = 0; i < 8; i++) live[t][nlive[t]++] = mh_malloc(SIZE);
    for (int i = 0; i < 4; i++) mh_free(live[t][--nlive[t]]);
    if (t == 0) victim = live[0][--nlive[0]];
    sem_post(&turn[1 - t]);
    /* The two frees of the victim, in two rounds of turns (X, Y, X, Y). */
    for (int round = 0; round < 2; round++) {
        sem_wait(&turn[t]);
        uintptr_t *w = victim;
        static uintptr_t x_link;
        switch (the_race) {
        case X_FREES_Y_PUSHES:
            if (round == 0) {
                if (t == 0) mh_free(victim);
                else raw_push(victim);
            }
            break;
        case BOTH_PUSH_Y_LAST:
            if (round == 0) raw_push(victim);
            break;
        case BOTH_PUSH_X_LAST:
            if ((round == 0 && t == 1) || (round == 1 && t == 0)) raw_push(victim);
            break;
        case TORN:
            if (round == 0) {
                raw_push(victim);
                if (t == 0) x_link = w[0];
                else w[0] = x_link; /* X's link with Y's mark */
            }
            break;
        }
        sem_post(&turn[1 - t]);
    }
    for (int k = 0; k < TURNS; k++) {
        sem_wait(&turn[t]);
        play(t);
        sem_post(&turn[1 - t]);
    }
    sem_wait(&turn[t]);
    while (nlive[t]) mh_free(live[t][--nlive[t]]);
    sem_post(&turn[1 - t]);
    return NULL; /* the thread's exit gives its stashes back */
}

static void run_race(uintptr_t race) {
    the_race = (enum race)race;
    sem_init(&turn[0], 0, 0);
    sem_init(&turn[1], 0, 0);
    pthread_t th[2];
    pthread_create(&th[0], NULL, player, (void *)0);
    pthread_create(&th[1], NULL, player, (void *)1);
    sem_post(&turn[0]); /* X goes first */
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    /* Both exited: their stashes went back to the spans.  Take the class
     * out of them again. */
    static void *p[4096];
    for (int i = 0; i < 4096; i++) {
        p[i] = mh_malloc(SIZE);
        for (int j = 0; j < i; j++)
            if (p[j] == p[i]) say_and_exit("block handed out twice", p[i]);
    }
}

/* ---- the race's second copy makes a span look entirely free ----
 * X frees a block of span S and Y pushes it too (Y passed the check); Y's
 * copy reaches S's xfree list, X's goes back to S with every other block
 * of S but one, q, which stays live.  The trim pass, collecting the xfree
 * list for its owner, counts S entirely free and keeps it; the owner's
 * next allocations take S as a kept span and hand it out again from the
 * front (relinked).  q must not be handed out while it is live: the
 * carve finds its free mark gone. */
enum { KSIZE = 1024 };
static void *kept_victim;

static void *kept_y(void *arg) {
    (void)arg;
    size_t c = mhi_size_class(KSIZE);
    mh_free(mh_malloc(KSIZE)); /* a cache with stash room for the class */
    mhi_stash_push(mhi_tls_cache, c, kept_victim); /* Y's free, past the check */
    mhi_cache_flush(); /* Y's stash back: the victim onto S's xfree */
    return NULL;
}

static void run_kept(uintptr_t unused) {
    (void)unused;
    size_t c = mhi_size_class(KSIZE), n = mhi_class_nobjs[c], total = 4 * n;
    static void *o[4 * 64], *mine[64];
    if (total > sizeof o / sizeof o[0] || n > 64) say_and_exit("class too large", NULL);
    mh_free(mh_malloc(KSIZE));
    mhi_cache_flush();
    for (size_t i = 0; i < total; i++)
        if (!(o[i] = mh_malloc(KSIZE))) say_and_exit("out of memory", NULL);
    /* a span all of whose objects are among them */
    mhi_span *s = mhi_heap_span((uintptr_t)o[n + n / 2]);
    size_t k = 0;
    for (size_t i = 0; i < total; i++)
        if (mhi_heap_span((uintptr_t)o[i]) == s) mine[k++] = o[i];
    if (k != s->nelems) say_and_exit("no span wholly allocated here", s);
    void *q = mine[k - 1];
    kept_victim = mine[0];
    mh_free(kept_victim); /* X's free */
    pthread_t y;
    pthread_create(&y, NULL, kept_y, NULL);
    pthread_join(y, NULL);
    for (size_t i = 1; i < k - 1; i++) mh_free(mine[i]);
    mhi_cache *x = mhi_tls_cache;
    mhi_lock(&x->lock);
    mhi_cache_flush_stash(x, c);
    mhi_unlock(&x->lock);
    (void)mhi_cache_trim_now();
    memset(q, 'q', KSIZE); /* its user writes it */
    for (int i = 0; i < 2 * (int)n; i++) {
        void *p = mh_malloc(KSIZE);
        if (p == q) say_and_exit("live block handed out again", p);
    }
}

static void expect_stopped_fn(const char *name, void (*fn)(uintptr_t), uintptr_t arg) {
    char got[1024];
    int st = child_run(fn, arg, got, sizeof got);
    bool aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    bool named = strncmp(got, "mheap: double free: 0x", 22) == 0 ||
                 strncmp(got, "mheap: corrupted free block: 0x", 31) == 0;
    bool one_line = strchr(got, '\n') == got + strlen(got) - 1;
    CHECK(aborted && named && one_line);
    printf("%s: status %#x, \"%.*s\"\n", name, st, (int)strcspn(got, "\n"), got);
    fflush(stdout);
}

static void expect_stopped(const char *name, enum race race) {
    expect_stopped_fn(name, run_race, (uintptr_t)race);
}

int main(void) {
    expect_stopped("X frees, Y pushes too", X_FREES_Y_PUSHES);
    expect_stopped("both push, Y last", BOTH_PUSH_Y_LAST);
    expect_stopped("both push, X last", BOTH_PUSH_X_LAST);
    expect_stopped("torn: X's link, Y's mark", TORN);
    expect_stopped_fn("a span made to look entirely free, kept and handed out again", run_kept, 0);
    return check_done("test_free_race");
}
