/* override_new.c - the C++ operator new / delete family on mheap: plain,
 * array, nothrow, sized, aligned.
 *
 * Written in C under the Itanium C++ ABI's mangled names (x86-64 and
 * aarch64: size_t is `unsigned long`, `m`), so that libmheap.so does not
 * depend on libstdc++: a C program preloading mheap would otherwise map
 * libstdc++ and libm, about 1.2 MiB of resident memory, for nothing.
 *
 * Failure follows the standard: call the new handler until it gives up,
 * then throw std::bad_alloc; nothrow forms return NULL.  Both the handler
 * and the throw come from the C++ runtime the program already has
 * (std::get_new_handler, std::__throw_bad_alloc): weak references, resolved
 * when libstdc++ is loaded with the program, else looked up when needed (a
 * library loaded later).  A program with no C++ runtime cannot call
 * operator new except by name; it gets an abort with a message. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "malloc.h"
#include "mheap.h"
#include "print.h"

#define MH_OVERRIDE __attribute__((visibility("default")))

typedef void (*mhi_new_handler)(void);
/* std::get_new_handler() and std::__throw_bad_alloc(). */
extern mhi_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static mhi_new_handler get_handler(void) {
    mhi_new_handler (*get)(void) = _ZSt15get_new_handlerv;
    if (!get) get = (mhi_new_handler(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
    return get ? get() : NULL;
}

MHI_NORETURN static void throw_bad_alloc(size_t n) {
    void (*thr)(void) = _ZSt17__throw_bad_allocv;
    if (!thr) thr = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
    if (thr) thr();
    mhi_fatal("operator new: out of memory (%zu bytes) and no C++ runtime to throw", n);
}

/* nothrow: one try, then the handler loop without the throw. */
MHI_NOINLINE static void *alloc_new(size_t n, size_t align, bool nothrow) {
    for (;;) {
        void *p = align ? mh_aligned_alloc(align, n) : MHI_ENTRY(malloc)(n);
        if (MHI_LIKELY(p != NULL)) return p;
        mhi_new_handler h = get_handler();
        if (!h) {
            if (nothrow) return NULL;
            throw_bad_alloc(n);
        }
        /* A handler may throw; from a nothrow form that would escape a
         * noexcept function, as it would with the C++ runtime's own. */
        h();
    }
}

/* The unaligned forms: malloc's fast path inline (a small size whose
 * stash or current span has an object), everything else in alloc_new. */
static MHI_ALWAYS_INLINE void *new_small(size_t n, bool nothrow) {
#if !MHEAP_SECURE /* (the secure build's blocks all pass its layer) */
    size_t c;
    if (MHI_LIKELY(mhi_small_class(n, &c))) {
        void *p = mhi_cache_pop(c);
        if (MHI_LIKELY(p != NULL)) return p;
    }
#endif
    return alloc_new(n, 0, nothrow);
}

/* operator new(size_t) and friends */
MH_OVERRIDE void *_Znwm(size_t n) { return new_small(n, false); }
MH_OVERRIDE void *_Znam(size_t n) { return new_small(n, false); }
MH_OVERRIDE void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) {
    (void)nt;
    return new_small(n, true);
}
MH_OVERRIDE void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) {
    (void)nt;
    return new_small(n, true);
}
MH_OVERRIDE void *_ZnwmSt11align_val_t(size_t n, size_t a) { return alloc_new(n, a, false); }
MH_OVERRIDE void *_ZnamSt11align_val_t(size_t n, size_t a) { return alloc_new(n, a, false); }
MH_OVERRIDE void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt) {
    (void)nt;
    return alloc_new(n, a, true);
}
MH_OVERRIDE void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt) {
    (void)nt;
    return alloc_new(n, a, true);
}

/* operator delete(void *) and friends */
MH_OVERRIDE void _ZdlPv(void *p) { MHI_ENTRY(free)(p); }
MH_OVERRIDE void _ZdaPv(void *p) { MHI_ENTRY(free)(p); }
MH_OVERRIDE void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) {
    (void)nt;
    MHI_ENTRY(free)(p);
}
MH_OVERRIDE void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) {
    (void)nt;
    MHI_ENTRY(free)(p);
}
MH_OVERRIDE void _ZdlPvm(void *p, size_t n) { MHI_ENTRY(free_sized)(p, n, 0); }
MH_OVERRIDE void _ZdaPvm(void *p, size_t n) { MHI_ENTRY(free_sized)(p, n, 0); }
MH_OVERRIDE void _ZdlPvSt11align_val_t(void *p, size_t a) {
    (void)a;
    MHI_ENTRY(free)(p);
}
MH_OVERRIDE void _ZdaPvSt11align_val_t(void *p, size_t a) {
    (void)a;
    MHI_ENTRY(free)(p);
}
MH_OVERRIDE void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) {
    MHI_ENTRY(free_sized)(p, n, a);
}
MH_OVERRIDE void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) {
    MHI_ENTRY(free_sized)(p, n, a);
}
MH_OVERRIDE void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt) {
    (void)a;
    (void)nt;
    MHI_ENTRY(free)(p);
}
MH_OVERRIDE void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt) {
    (void)a;
    (void)nt;
    MHI_ENTRY(free)(p);
}
