/* test_print.c - the message formatter (print.h): mhi_fmt against the
 * documented formats, and against snprintf where the two must agree;
 * widths, negatives, %p, truncation and the returned length. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "pageheap_util.h"
#include "print.h"

/* mhi_fmt must agree with snprintf for the formats both support. */
#define SAME_AS_SNPRINTF(...)                                                  \
    do {                                                                       \
        char want_[256], got_[256];                                            \
        int wn_ = snprintf(want_, sizeof want_, __VA_ARGS__);                  \
        size_t gn_ = mhi_fmt(got_, sizeof got_, __VA_ARGS__);                  \
        CHECK_EQ(gn_, (size_t)wn_);                                            \
        if (strcmp(want_, got_) != 0) {                                        \
            CHECK(!"mhi_fmt differs from snprintf");                           \
            fprintf(stderr, "  format %s: want '%s' got '%s'\n", #__VA_ARGS__, \
                    want_, got_);                                              \
        }                                                                      \
    } while (0)

#define FMT_IS(want, ...)                                                      \
    do {                                                                       \
        char got_[256];                                                        \
        size_t gn_ = mhi_fmt(got_, sizeof got_, __VA_ARGS__);                  \
        CHECK_EQ(gn_, strlen(want));                                           \
        if (strcmp(want, got_) != 0) {                                         \
            CHECK(!"mhi_fmt output");                                          \
            fprintf(stderr, "  format %s: want '%s' got '%s'\n", #__VA_ARGS__, \
                    want, got_);                                               \
        }                                                                      \
    } while (0)

static void test_print(void) {
    SAME_AS_SNPRINTF("plain text");
    SAME_AS_SNPRINTF("%s and %s", "abc", "");
    SAME_AS_SNPRINTF("%d %d %d %d", 0, 42, -42, INT_MIN);
    SAME_AS_SNPRINTF("%d", INT_MAX);
    SAME_AS_SNPRINTF("%u %u %u", 0u, 4000000000u, UINT_MAX);
    SAME_AS_SNPRINTF("%x %x %x", 0u, 0xbeefu, UINT_MAX);
    SAME_AS_SNPRINTF("%ld %ld %lu %lx", LONG_MIN, LONG_MAX, ULONG_MAX, ULONG_MAX);
    SAME_AS_SNPRINTF("%lld %lld %llu %llx", LLONG_MIN, -1LL, ULLONG_MAX, 0x123456789abcdefULL);
    SAME_AS_SNPRINTF("%zu %zu %zx", (size_t)0, SIZE_MAX, (size_t)0xdeadbeefcafeULL);
    SAME_AS_SNPRINTF("%c%c%%", 'x', 'y');
    /* Widths: right-aligned by default, left with '-', zero padding. */
    SAME_AS_SNPRINTF("[%-8s]", "ab");
    SAME_AS_SNPRINTF("[%8s]", "ab");
    SAME_AS_SNPRINTF("[%-8s]", "longer than eight");
    SAME_AS_SNPRINTF("[%5d][%5d][%-5d][%5d]", 42, -42, -42, 1234567);
    SAME_AS_SNPRINTF("[%-6u][%6u]", 7u, 7u);
    SAME_AS_SNPRINTF("[%8x][%08x][%-8x]", 0xabcu, 0xabcu, 0xabcu);
    SAME_AS_SNPRINTF("[%05d][%05u]", 42, 42u);
    SAME_AS_SNPRINTF("[%20llu][%-20llu]", 12345ULL, 12345ULL);
    SAME_AS_SNPRINTF("[%-14s %20llu]", "sys", 1048576ULL);
    SAME_AS_SNPRINTF("[%10zu]", (size_t)99);
    /* %p: 0x and lower-case hex, no padding, also for NULL (where glibc
     * would print "(nil)"). */
    {
        char want[64];
        int x;
        snprintf(want, sizeof want, "at 0x%" PRIxPTR "!", (uintptr_t)&x);
        FMT_IS(want, "at %p!", (void *)&x);
    }
    FMT_IS("0x0", "%p", (void *)0);
    FMT_IS("0x1", "%p", (void *)1);
    FMT_IS("0xdeadbeef000", "%p", (void *)(uintptr_t)0xdeadbeef000ULL);
    FMT_IS("0xffffffffffffffff", "%p", (void *)UINTPTR_MAX);
    {
        const char *volatile nullstr = NULL; /* hidden from -Wformat-overflow */
        FMT_IS("[(null)]", "[%s]", nullstr);
    }

    /* Truncation: always NUL terminated, returns the full length, never
     * writes past size. */
    {
        char buf[16];
        memset(buf, '#', sizeof buf);
        size_t n = mhi_fmt(buf, 8, "hello, %s! %d", "world", -7);
        CHECK_EQ(n, strlen("hello, world! -7"));
        CHECK(strcmp(buf, "hello, ") == 0);
        CHECK(all_bytes(buf + 8, sizeof buf - 8, '#'));

        memset(buf, '#', sizeof buf);
        n = mhi_fmt(buf, 6, "[%8d]", 5);
        CHECK_EQ(n, 10);
        CHECK(strcmp(buf, "[    ") == 0);
        CHECK(all_bytes(buf + 6, sizeof buf - 6, '#'));

        memset(buf, '#', sizeof buf);
        n = mhi_fmt(buf, 1, "abc");
        CHECK_EQ(n, 3);
        CHECK_EQ(buf[0], '\0');
        CHECK(all_bytes(buf + 1, sizeof buf - 1, '#'));

        /* Exactly fitting and one short. */
        memset(buf, '#', sizeof buf);
        n = mhi_fmt(buf, 4, "%x", 0xabcu);
        CHECK_EQ(n, 3);
        CHECK(strcmp(buf, "abc") == 0);
        n = mhi_fmt(buf, 3, "%x", 0xabcu);
        CHECK_EQ(n, 3);
        CHECK(strcmp(buf, "ab") == 0);

        /* size 0: nothing written, length still returned. */
        memset(buf, '#', sizeof buf);
        n = mhi_fmt(buf, 0, "%p", (void *)0x1234);
        CHECK_EQ(n, 6);
        CHECK(all_bytes(buf, sizeof buf, '#'));
        CHECK_EQ(mhi_fmt(NULL, 0, "%d", -12345), 6);
    }
}

int main(void) {
    test_print();
    return check_done("test_print");
}
