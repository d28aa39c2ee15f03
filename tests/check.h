/* check.h - a small CHECK helper for mheap's tests.
 *
 * CHECK(cond) records a failure (file, line, expression) and goes on;
 * CHECK_EQ(a, b) also prints both values.  check_done() prints a summary
 * and returns the process exit code: 0 when nothing failed.
 *
 * Tests may use stdio and libc freely: they are clients of the allocator. */
#ifndef MHEAP_TEST_CHECK_H
#define MHEAP_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* MHEAP_TEST_SANITIZED: 1 in an ASan or TSan build (where a test that
 * locks memory, counts threads or forks from signal handlers skips). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define MHEAP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define MHEAP_TEST_SANITIZED 1
#endif
#endif
#ifndef MHEAP_TEST_SANITIZED
#define MHEAP_TEST_SANITIZED 0
#endif

static unsigned long check_npass, check_nfail;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            check_npass++;                                                 \
        } else {                                                           \
            check_nfail++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                     \
    do {                                                                   \
        unsigned long long check_a_ = (unsigned long long)(a);             \
        unsigned long long check_b_ = (unsigned long long)(b);             \
        if (check_a_ == check_b_) {                                        \
            check_npass++;                                                 \
        } else {                                                           \
            check_nfail++;                                                 \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%llu vs %llu)\n", \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);       \
        }                                                                  \
    } while (0)

/* Stop the test now: for failures that make the rest meaningless. */
#define REQUIRE(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                      \
            exit(1);                                                       \
        }                                                                  \
        check_npass++;                                                     \
    } while (0)

static inline int check_done(const char *name) {
    fprintf(stderr, "%s: %lu checks passed, %lu failed\n", name, check_npass,
            check_nfail);
    return check_nfail == 0 ? 0 : 1;
}

/* Seed for randomized tests: MHEAP_TEST_SEED overrides the default, and the
 * seed in use is printed so a failure can be replayed. */
static inline uint64_t check_seed(uint64_t dflt) {
    const char *s = getenv("MHEAP_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : dflt;
    fprintf(stderr, "seed=%" PRIu64 " (set MHEAP_TEST_SEED to replay)\n", seed);
    return seed;
}

/* xorshift64*: small deterministic generator for tests. */
static inline uint64_t check_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
