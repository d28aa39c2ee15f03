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

#endif
