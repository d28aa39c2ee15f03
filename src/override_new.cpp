// override_new.cpp - the C++ operator new / delete family on mheap: plain,
// array, nothrow, sized, aligned.  Failure follows the standard: call the
// new handler until it gives up, then throw std::bad_alloc (nothrow forms
// return nullptr).
#include <cstddef>
#include <new>

#include "mheap.h"

#define MH_OVERRIDE __attribute__((visibility("default")))

static void *alloc_or_throw(std::size_t n, std::size_t align) {
    for (;;) {
        void *p = align ? mh_aligned_alloc(align, n) : mh_malloc(n);
        if (p) return p;
        std::new_handler h = std::get_new_handler();
        if (!h) throw std::bad_alloc();
        h();
    }
}

static void *alloc_nothrow(std::size_t n, std::size_t align) noexcept {
    try {
        return alloc_or_throw(n, align);
    } catch (...) {
        return nullptr;
    }
}

MH_OVERRIDE void *operator new(std::size_t n) { return alloc_or_throw(n, 0); }
MH_OVERRIDE void *operator new[](std::size_t n) { return alloc_or_throw(n, 0); }
MH_OVERRIDE void *operator new(std::size_t n, const std::nothrow_t &) noexcept {
    return alloc_nothrow(n, 0);
}
MH_OVERRIDE void *operator new[](std::size_t n, const std::nothrow_t &) noexcept {
    return alloc_nothrow(n, 0);
}
MH_OVERRIDE void *operator new(std::size_t n, std::align_val_t a) {
    return alloc_or_throw(n, static_cast<std::size_t>(a));
}
MH_OVERRIDE void *operator new[](std::size_t n, std::align_val_t a) {
    return alloc_or_throw(n, static_cast<std::size_t>(a));
}
MH_OVERRIDE void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return alloc_nothrow(n, static_cast<std::size_t>(a));
}
MH_OVERRIDE void *operator new[](std::size_t n, std::align_val_t a,
                                 const std::nothrow_t &) noexcept {
    return alloc_nothrow(n, static_cast<std::size_t>(a));
}

MH_OVERRIDE void operator delete(void *p) noexcept { mh_free(p); }
MH_OVERRIDE void operator delete[](void *p) noexcept { mh_free(p); }
MH_OVERRIDE void operator delete(void *p, const std::nothrow_t &) noexcept { mh_free(p); }
MH_OVERRIDE void operator delete[](void *p, const std::nothrow_t &) noexcept { mh_free(p); }
MH_OVERRIDE void operator delete(void *p, std::size_t n) noexcept { mh_free_sized(p, n); }
MH_OVERRIDE void operator delete[](void *p, std::size_t n) noexcept { mh_free_sized(p, n); }
MH_OVERRIDE void operator delete(void *p, std::align_val_t a) noexcept {
    (void)a;
    mh_free(p);
}
MH_OVERRIDE void operator delete[](void *p, std::align_val_t a) noexcept {
    (void)a;
    mh_free(p);
}
MH_OVERRIDE void operator delete(void *p, std::size_t n, std::align_val_t a) noexcept {
    mh_free_aligned_sized(p, static_cast<std::size_t>(a), n);
}
MH_OVERRIDE void operator delete[](void *p, std::size_t n, std::align_val_t a) noexcept {
    mh_free_aligned_sized(p, static_cast<std::size_t>(a), n);
}
MH_OVERRIDE void operator delete(void *p, std::align_val_t a, const std::nothrow_t &) noexcept {
    (void)a;
    mh_free(p);
}
MH_OVERRIDE void operator delete[](void *p, std::align_val_t a, const std::nothrow_t &) noexcept {
    (void)a;
    mh_free(p);
}
