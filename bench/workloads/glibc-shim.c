/* LD_PRELOAD shim that routes the malloc family to glibc's own malloc.
 *
 * Only for programs linked against another allocator: Debian's redis-server
 * is linked with libjemalloc.so.2, so running it "without LD_PRELOAD" would
 * measure jemalloc, not glibc.  Preloading this shim puts glibc's malloc
 * (__libc_malloc and friends) in front of jemalloc's symbols.  The runner
 * uses it only for the glibc column of such programs.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *calloc(size_t n, size_t s) { return __libc_calloc(n, s); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return __libc_pvalloc(n); }

EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(a, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

/* C++ operators (libjemalloc.so.2 defines them too).  Out of memory aborts:
 * C cannot throw std::bad_alloc. */
static void *must(void *p) {
  if (p == NULL) abort();
  return p;
}
EXPORT void *_Znwm(size_t n) { return must(__libc_malloc(n ? n : 1)); }
EXPORT void *_Znam(size_t n) { return must(__libc_malloc(n ? n : 1)); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return __libc_malloc(n ? n : 1); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return __libc_malloc(n ? n : 1); }
EXPORT void _ZdlPv(void *p) { __libc_free(p); }
EXPORT void _ZdaPv(void *p) { __libc_free(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; __libc_free(p); }
EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; __libc_free(p); }

EXPORT size_t malloc_usable_size(void *p) {
  static size_t (*libc_mus)(void *);
  if (libc_mus == NULL) {
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *sym = h ? dlvsym(h, "malloc_usable_size", "GLIBC_2.2.5") : NULL;
    if (sym) memcpy(&libc_mus, &sym, sizeof sym); /* object -> function pointer */
    if (libc_mus == NULL) return 0;
  }
  return libc_mus(p);
}
