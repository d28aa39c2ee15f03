/* print.c - formatting without stdio (see print.h). */
#include "print.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t size, len;
} outbuf;

static void put(outbuf *o, char c) {
    if (o->len + 1 < o->size) o->buf[o->len] = c;
    o->len++;
}

/* Field width: pad on the left (or on the right with '-'). */
typedef struct {
    int width;
    bool left, zero;
} spec;

/* prefix ("-" or "0x") goes before zero padding, after space padding. */
static void put_padded_prefix(outbuf *o, const char *prefix, const char *s, size_t len, spec sp) {
    size_t plen = 0;
    while (prefix[plen]) plen++;
    size_t total = plen + len;
    size_t pad = sp.width > 0 && (size_t)sp.width > total ? (size_t)sp.width - total : 0;
    if (!sp.left && !sp.zero)
        while (pad--) put(o, ' ');
    for (size_t i = 0; i < plen; i++) put(o, prefix[i]);
    if (!sp.left && sp.zero)
        while (pad--) put(o, '0');
    for (size_t i = 0; i < len; i++) put(o, s[i]);
    if (sp.left)
        while (pad--) put(o, ' ');
}

static void put_padded(outbuf *o, const char *s, size_t len, spec sp) {
    size_t pad = sp.width > 0 && (size_t)sp.width > len ? (size_t)sp.width - len : 0;
    if (!sp.left)
        while (pad--) put(o, sp.zero ? '0' : ' ');
    for (size_t i = 0; i < len; i++) put(o, s[i]);
    if (sp.left)
        while (pad--) put(o, ' ');
}

static void put_str(outbuf *o, const char *s, spec sp) {
    if (!s) s = "(null)";
    size_t n = 0;
    while (s[n]) n++;
    put_padded(o, s, n, sp);
}

static void put_uint(outbuf *o, unsigned long long v, unsigned base, const char *prefix, spec sp) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    char out[24];
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    put_padded_prefix(o, prefix, out, (size_t)n, sp);
}

size_t mhi_vfmt(char *buf, size_t size, const char *fmt, va_list ap) {
    outbuf o = {buf, size, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        spec sp = {0, false, false};
        for (; *f == '-' || *f == '0'; f++) {
            if (*f == '-') sp.left = true;
            else sp.zero = true;
        }
        for (; *f >= '0' && *f <= '9'; f++) sp.width = sp.width * 10 + (*f - '0');
        int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t */
        if (*f == 'l') {
            lng = 1;
            if (f[1] == 'l') {
                lng = 2;
                f++;
            }
            f++;
        } else if (*f == 'z') {
            lng = 3;
            f++;
        }
        switch (*f) {
        case 'd': {
            long long v = lng == 0   ? va_arg(ap, int)
                          : lng == 1 ? va_arg(ap, long)
                          : lng == 2 ? va_arg(ap, long long)
                                     : (long long)va_arg(ap, size_t);
            if (v < 0) put_uint(&o, 0ULL - (unsigned long long)v, 10, "-", sp);
            else put_uint(&o, (unsigned long long)v, 10, "", sp);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = lng == 0   ? va_arg(ap, unsigned)
                                   : lng == 1 ? va_arg(ap, unsigned long)
                                   : lng == 2 ? va_arg(ap, unsigned long long)
                                              : va_arg(ap, size_t);
            put_uint(&o, v, *f == 'x' ? 16 : 10, "", sp);
            break;
        }
        case 'p':
            put_uint(&o, (uintptr_t)va_arg(ap, void *), 16, "0x", sp);
            break;
        case 's':
            put_str(&o, va_arg(ap, const char *), sp);
            break;
        case 'c': {
            char ch = (char)va_arg(ap, int);
            put_padded(&o, &ch, 1, sp);
            break;
        }
        case '%':
            put(&o, '%');
            break;
        case '\0':
            f--;
            break;
        default:
            put(&o, '%');
            put(&o, *f);
            break;
        }
    }
    if (o.size) o.buf[o.len < o.size ? o.len : o.size - 1] = '\0';
    return o.len;
}

size_t mhi_fmt(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = mhi_vfmt(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void mhi_printf(int fd, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t n = mhi_vfmt(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mhi_os_write(fd, buf, n < sizeof buf ? n : sizeof buf - 1);
}

/* One line on stderr: prefix, the message, a newline (cut to fit). */
static void print_line(const char *prefix, const char *fmt, va_list ap) {
    char buf[256];
    size_t n = mhi_fmt(buf, sizeof buf, "%s", prefix);
    n += mhi_vfmt(buf + n, sizeof buf - n, fmt, ap);
    if (n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    mhi_os_write(2, buf, n);
}

void mhi_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_line("mheap: ", fmt, ap);
    va_end(ap);
    mhi_os_abort();
}

void mhi_fatal_at(const char *what, const void *p) {
    mhi_fatal("%s: %p", what, p);
}

void mhi_fatal_at_unlock(mhi_lock_t *held, const char *what, const void *p) {
    if (held) mhi_unlock(held);
    mhi_fatal_at(what, p);
}

void mhi_verify_report(size_t *errors, const char *fmt, ...) {
    if (++*errors > 20) return;
    va_list ap;
    va_start(ap, fmt);
    print_line("mheap: verify: ", fmt, ap);
    va_end(ap);
}
