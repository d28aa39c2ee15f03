/* override_new.c - the C++ operator new / delete family on mheap: plain,
 * array, nothrow, sized, aligned.
 *
 * Written in C under the Itanium C++ ABI's mangled names (x86-64 and
 * aarch64: size_t is `unsigned long`, `m`), so that libmheap.so does not
 * depend on libstdc++: a C program preloading mheap would otherwise map
 * libstdc++ and libm, about 1.2 MiB of resident memory, for nothing.
 *
 * Failure follows the standard: call the new handler until it gives up,
 * then throw std::bad_alloc; nothrow forms return NULL, also where the
 * handler gives up by throwing (through the C++ runtime's own nothrow
 * forms, which catch: nothrow_new).  Both the handler
 * and the throw come from the C++ runtime the program already has
 * (std::get_new_handler, std::__throw_bad_alloc): weak references, resolved
 * when libstdc++ is loaded with the program, else looked up when needed (a
 * library loaded later).  A program with no C++ runtime cannot call
 * operator new except by name; it gets an abort with a message. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
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

/* The C++ runtime's own nothrow form: the definition of `name` after
 * ours (libstdc++'s, RTLD_NEXT from here: it calls the throwing form,
 * ours, in a try block and returns NULL for what it throws), or NULL
 * where there is none (a static C++ runtime). */
typedef void *(*mhi_nothrow_new)(size_t, const void *);
typedef void *(*mhi_nothrow_new_al)(size_t, size_t, const void *);
static void *runtime_nothrow(unsigned form, const char *name, void *ours) {
    /* (looked up once per form: dlsym takes the loader's lock; threads
     * racing here look up and store the same value) */
    static void *_Atomic found[4];
    static _Atomic bool looked[4];
    if (atomic_load_explicit(&looked[form], memory_order_acquire))
        return atomic_load_explicit(&found[form], memory_order_relaxed);
    void *f = dlsym(RTLD_NEXT, name);
    if (f == ours) f = NULL;
    atomic_store_explicit(&found[form], f, memory_order_relaxed);
    atomic_store_explicit(&looked[form], true, memory_order_release);
    return f;
}

/* nothrow: one try, then the handler loop without the throw.  A handler
 * may give up by throwing, which a nothrow form must turn into NULL; C
 * cannot catch, so with a handler the nothrow forms go through the C++
 * runtime's own (nothrow_new), and alloc_new runs only the throwing form
 * for them; where there is no such runtime the throw escapes. */
MHI_NOINLINE static void *alloc_new(size_t n, size_t align, bool nothrow) {
    for (;;) {
        void *p = align ? mh_aligned_alloc(align, n) : MHI_ENTRY(malloc)(n);
        if (MHI_LIKELY(p != NULL)) return p;
        mhi_new_handler h = get_handler();
        if (!h) {
            if (nothrow) return NULL;
            throw_bad_alloc(n);
        }
        h();
    }
}

/* A nothrow form's slow path: as alloc_new, through the C++ runtime's own
 * nothrow form `name` when a new handler is set (alloc_new above). */
MHI_NOINLINE static void *nothrow_new(size_t n, size_t align, unsigned form, const char *name,
                                      void *ours, const void *nt) {
    void *p = align ? mh_aligned_alloc(align, n) : MHI_ENTRY(malloc)(n);
    if (MHI_LIKELY(p != NULL) || !get_handler()) return p;
    void *f = runtime_nothrow(form, name, ours);
    if (!f) return alloc_new(n, align, true);
    if (align) return ((mhi_nothrow_new_al)f)(n, align, nt);
    return ((mhi_nothrow_new)f)(n, nt);
}

/* The unaligned forms: malloc's fast path inline (a small size whose
 * stash or current span has an object; NULL otherwise), everything else
 * in alloc_new or nothrow_new. */
static MHI_ALWAYS_INLINE void *new_pop(size_t n) {
#if !MHEAP_SECURE /* (the secure build's blocks all pass its layer) */
    size_t c;
    if (MHI_LIKELY(mhi_small_class(n, &c))) return mhi_cache_pop(c);
#else
    (void)n;
#endif
    return NULL;
}
static MHI_ALWAYS_INLINE void *new_small(size_t n) {
    void *p = new_pop(n);
    return MHI_LIKELY(p != NULL) ? p : alloc_new(n, 0, false);
}

/* operator new(size_t) and friends */
MH_OVERRIDE void *_Znwm(size_t n) { return new_small(n); }
MH_OVERRIDE void *_Znam(size_t n) { return new_small(n); }
MH_OVERRIDE void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) {
    void *p = new_pop(n);
    if (MHI_LIKELY(p != NULL)) return p;
    return nothrow_new(n, 0, 0, "_ZnwmRKSt9nothrow_t", (void *)_ZnwmRKSt9nothrow_t, nt);
}
MH_OVERRIDE void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) {
    void *p = new_pop(n);
    if (MHI_LIKELY(p != NULL)) return p;
    return nothrow_new(n, 0, 1, "_ZnamRKSt9nothrow_t", (void *)_ZnamRKSt9nothrow_t, nt);
}
MH_OVERRIDE void *_ZnwmSt11align_val_t(size_t n, size_t a) { return alloc_new(n, a, false); }
MH_OVERRIDE void *_ZnamSt11align_val_t(size_t n, size_t a) { return alloc_new(n, a, false); }
MH_OVERRIDE void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt) {
    return nothrow_new(n, a, 2, "_ZnwmSt11align_val_tRKSt9nothrow_t",
                       (void *)_ZnwmSt11align_val_tRKSt9nothrow_t, nt);
}
MH_OVERRIDE void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt) {
    return nothrow_new(n, a, 3, "_ZnamSt11align_val_tRKSt9nothrow_t",
                       (void *)_ZnamSt11align_val_tRKSt9nothrow_t, nt);
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
