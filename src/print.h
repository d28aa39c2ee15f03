/* print.h - mheap's own message printer: a small formatter into a stack
 * buffer and write(2).  Never stdio, never malloc.
 *
 * Formats: %s %c %d %u %x %p %%, with the length modifiers l, ll, z.
 * %p prints 0x followed by lower-case hex. */
#ifndef MHEAP_PRINT_H
#define MHEAP_PRINT_H

#include <stdarg.h>
#include <stddef.h>

#include "os.h"

size_t mhi_vfmt(char *buf, size_t size, const char *fmt, va_list ap);
size_t mhi_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mhi_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "mheap: <message>\n" on stderr, then abort(). */
MHI_NORETURN void mhi_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Misuse found at an address: "mheap: <what>: <p>" and abort. */
MHI_NORETURN void mhi_fatal_at(const char *what, const void *p);
/* The same, found while holding lock `held` (NULL: none), which is dropped
 * first: a SIGABRT handler that allocates may need it. */
MHI_NORETURN void mhi_fatal_at_unlock(mhi_lock_t *held, const char *what, const void *p);

/* Verifiers: report one violation, counted in *errors; the first 20 of a
 * count are printed, each as "mheap: verify: <message>". */
void mhi_verify_report(size_t *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define MHI_VERIFY(errors, cond, ...)                                          \
    do {                                                                       \
        if (MHI_UNLIKELY(!(cond))) mhi_verify_report(errors, __VA_ARGS__);     \
    } while (0)

#endif
