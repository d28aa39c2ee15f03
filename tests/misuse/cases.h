/* cases.h - what the misuse cases (cases.c, cases_cxx.cpp) share.
 *
 * A case program runs with the library under test preloaded
 * (LD_PRELOAD, set by the driver, driver.c).  Each case does one misuse,
 * then, if still alive, a few heap calls that would use the damage, and
 * returns: the program then exits 0 ("unnoticed").  A case that measures a
 * property instead of a misuse prints one word on stdout (e.g. "reused").
 * Setup failures exit 2 with a line on stderr that starts "misuse:".
 *
 * No stdio before the misuse: its buffers are heap blocks and would shift
 * which block a case gets. */
#ifndef MHEAP_MISUSE_CASES_H
#define MHEAP_MISUSE_CASES_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A line on stderr without stdio or malloc. */
static inline void misuse_say(const char *msg) {
    ssize_t n = write(2, msg, strlen(msg));
    (void)n;
}

/* Exit 2 with a setup error. */
static inline void misuse_setup_fail(const char *msg) {
    misuse_say("misuse: ");
    misuse_say(msg);
    misuse_say("\n");
    _exit(2);
}

/* A program's first heap blocks start the heap, with nothing mapped
 * below them: take a few (kept) so that the cases' blocks have spans
 * before them, as in any program that has been running a while. */
static inline void misuse_warm_up(void) {
    static void *keep[2];
    keep[0] = malloc(100);
    keep[1] = malloc(5000);
    if (!keep[0] || !keep[1]) misuse_setup_fail("out of memory");
}

/* Setup fails unless mheap (any build) is the process's allocator, or
 * MISUSE_ANY_ALLOCATOR is set (the driver's comparison with the C
 * library's allocator). */
static inline void misuse_need_mheap(void) {
    if (!getenv("MISUSE_ANY_ALLOCATOR") && !dlsym(RTLD_DEFAULT, "mh_usable_size"))
        misuse_setup_fail("mheap is not loaded (run through misuse_driver)");
    misuse_warm_up();
}

/* A word on stdout, for property cases. */
static inline void misuse_report(const char *word) {
    ssize_t n = write(1, word, strlen(word));
    n = write(1, "\n", 1);
    (void)n;
}

/* p, with the compiler unable to tell it is p (no folding of a second
 * free, no -Wuse-after-free or -Wfree-nonheap-object on the misuse). */
static inline void *misuse_opaque(void *p) {
    void *volatile v = p;
    return v;
}

/* Kinds of pointer a free-like call gets in the double / invalid free
 * cases, and the block it is made from (64 bytes, from alloc):
 *   freed     the block, already released with release()
 *   stack     an address in this function's frame
 *   interior  16 bytes into the block
 *   p4096     4096 bytes past the block, which starts a fresh span:
 *             an object slot of the block's span never handed out
 *   mmap      a page from mmap, outside the heap
 *   minus8    8 bytes before the block (a later block of its span) */
static inline int misuse_kind(const char *k) {
    static const char *const kinds[] = {"freed", "stack", "interior", "p4096", "mmap", "minus8"};
    for (int i = 0; i < 6; i++)
        if (strcmp(k, kinds[i]) == 0) return i;
    return -1;
}

/* A block of 64 bytes from alloc that starts a heap page (8 KiB): the
 * first object of a fresh span of its class in the default build.  The
 * blocks allocated on the way stay allocated. */
static inline char *misuse_span_start(void *(*alloc)(size_t), size_t size) {
    char *p = NULL;
    for (int i = 0; i < 20000; i++) {
        p = (char *)alloc(size);
        if (!p) misuse_setup_fail("out of memory");
        if (((uintptr_t)p & 8191) == 0) break;
    }
    return p;
}

/* The pointer of kind k (misuse_kind) for the cases; release frees a
 * block (for "freed"). */
static inline void *misuse_bad_pointer(int k, void *(*alloc)(size_t), void (*release)(void *),
                                       char *stack) {
    char *p;
    switch (k) {
    case 0:
        p = (char *)alloc(64);
        memset(p, 1, 64);
        release(p);
        return misuse_opaque(p);
    case 1:
        return misuse_opaque(stack);
    case 2:
        p = (char *)alloc(64);
        return misuse_opaque(p + 16);
    case 3:
        p = misuse_span_start(alloc, 64);
        return misuse_opaque(p + 4096);
    case 4: {
        void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) misuse_setup_fail("mmap failed");
        return misuse_opaque(m);
    }
    case 5:
        (void)alloc(64);
        p = (char *)alloc(64);
        return misuse_opaque(p - 8);
    }
    return NULL;
}

#endif
