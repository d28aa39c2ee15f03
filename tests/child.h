/* child.h - running a piece of a test in a child of fork, with its stderr
 * captured: for misuse that must abort with an exact message, and for
 * output a test reads back.
 *
 * Everything here is static, so a test that uses part of it builds without
 * unused-function warnings. */
#ifndef MHEAP_TEST_CHILD_H
#define MHEAP_TEST_CHILD_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Read fd to its end into out (what does not fit is read and dropped, so
 * the writer never blocks on a full pipe), NUL-terminated, and close it;
 * returns the bytes kept. */
static inline size_t child_read_all(int fd, char *out, size_t outsz) {
    size_t n = 0;
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t k = (size_t)r < outsz - 1 - n ? (size_t)r : outsz - 1 - n;
        memcpy(out + n, tmp, k);
        n += k;
    }
    out[n] = '\0';
    close(fd);
    return n;
}

/* Wait for pid; its wait status. */
static inline int child_wait(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

/* Run fn(arg) in a child with its stderr on a pipe; returns its wait
 * status (it exits 0 if fn returns), with what it wrote in out. */
static inline int child_run(void (*fn)(uintptr_t), uintptr_t arg, char *out, size_t outsz) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        fn(arg);
        _exit(0); /* survived */
    }
    close(fds[1]);
    child_read_all(fds[0], out, outsz);
    return child_wait(pid);
}

/* The same for a function without an argument. */
static void (*child_fn0)(void);
static inline void child_call0(uintptr_t arg) {
    (void)arg;
    child_fn0();
}
static inline int child_run0(void (*fn)(void), char *out, size_t outsz) {
    child_fn0 = fn; /* (read in the child, a copy of this process) */
    return child_run(child_call0, 0, out, outsz);
}

/* fn(arg) in a child must die of SIGABRT after printing exactly the
 * misuse line "mheap: <what>: <addr>". */
static inline void child_expect_abort(const char *name, void (*fn)(uintptr_t), uintptr_t arg,
                                      const char *what, uintptr_t addr) {
    char want[192], got[1024];
    snprintf(want, sizeof want, "mheap: %s: 0x%" PRIxPTR "\n", what, addr);
    int st = child_run(fn, arg, got, sizeof got);
    bool aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    CHECK(aborted);
    CHECK(strcmp(got, want) == 0);
    if (!aborted || strcmp(got, want) != 0)
        fprintf(stderr, "  %s: status %#x, want \"%.*s\\n\", got \"%s\"\n", name, st,
                (int)strlen(want) - 1, want, got);
}
static inline void child_expect_abort0(const char *name, void (*fn)(void), const char *what,
                                       uintptr_t addr) {
    child_fn0 = fn;
    child_expect_abort(name, child_call0, 0, what, addr);
}

/* fn(arg) in a child must exit 0 and print nothing. */
static inline void child_expect_clean(const char *name, void (*fn)(uintptr_t), uintptr_t arg) {
    char got[1024];
    int st = child_run(fn, arg, got, sizeof got);
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && got[0] == '\0';
    CHECK(ok);
    if (!ok) fprintf(stderr, "  %s: status %#x, stderr \"%s\"\n", name, st, got);
}
static inline void child_expect_clean0(const char *name, void (*fn)(void)) {
    child_fn0 = fn;
    child_expect_clean(name, child_call0, 0);
}

#endif
