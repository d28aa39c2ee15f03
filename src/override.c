/* override.c - the C library's allocation functions, defined on mheap, so
 * that linking libmheap or preloading it (LD_PRELOAD) replaces the system
 * allocator for the whole program, the C library's own allocations
 * included.  The C++ operators are in override_new.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>

#include "malloc.h"
#include "mheap.h"
#include "pageheap.h"

#define MH_OVERRIDE __attribute__((visibility("default")))

MH_OVERRIDE void *malloc(size_t size) { return MHI_ENTRY(malloc)(size); }
MH_OVERRIDE void free(void *p) { MHI_ENTRY(free)(p); }
MH_OVERRIDE void *calloc(size_t n, size_t size) { return MHI_ENTRY(calloc)(n, size); }
MH_OVERRIDE void *realloc(void *p, size_t size) { return MHI_ENTRY(realloc)(p, size); }
MH_OVERRIDE void *reallocarray(void *p, size_t n, size_t size) {
    return MHI_ENTRY(reallocarray)(p, n, size);
}
MH_OVERRIDE void *aligned_alloc(size_t align, size_t size) { return mh_aligned_alloc(align, size); }
MH_OVERRIDE void *memalign(size_t align, size_t size) { return mh_aligned_alloc(align, size); }
MH_OVERRIDE int posix_memalign(void **out, size_t align, size_t size) {
    return mh_posix_memalign(out, align, size);
}
MH_OVERRIDE void *valloc(size_t size) {
    return MHI_ENTRY(malloc_aligned)(mhi_os_page_size(), size);
}
MH_OVERRIDE void *pvalloc(size_t size) {
    size_t ps = mhi_os_page_size();
    if (size > PTRDIFF_MAX) return mhi_malloc_oom(size);
    size = (size + ps - 1) & ~(ps - 1);
    return MHI_ENTRY(malloc_aligned)(ps, size ? size : ps);
}
MH_OVERRIDE size_t malloc_usable_size(void *p) { return MHI_ENTRY(usable_size)(p); }
MH_OVERRIDE void free_sized(void *p, size_t size) { MHI_ENTRY(free_sized)(p, size, 0); }
MH_OVERRIDE void free_aligned_sized(void *p, size_t align, size_t size) {
    MHI_ENTRY(free_sized)(p, size, align);
}
MH_OVERRIDE void cfree(void *p) { MHI_ENTRY(free)(p); }
MH_OVERRIDE int malloc_trim(size_t pad) {
    (void)pad;
    return mh_trim() > 0;
}
MH_OVERRIDE void malloc_stats(void) { mh_stats_print(2); }

/* glibc's internal names, used by some programs and by glibc itself. */
MH_OVERRIDE void *__libc_malloc(size_t size) { return MHI_ENTRY(malloc)(size); }
MH_OVERRIDE void __libc_free(void *p) { MHI_ENTRY(free)(p); }
MH_OVERRIDE void *__libc_calloc(size_t n, size_t size) { return MHI_ENTRY(calloc)(n, size); }
MH_OVERRIDE void *__libc_realloc(void *p, size_t size) { return MHI_ENTRY(realloc)(p, size); }
MH_OVERRIDE void *__libc_memalign(size_t align, size_t size) {
    return mh_aligned_alloc(align, size);
}
