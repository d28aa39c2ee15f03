// cxx_new.cpp - the C++ operators new / delete of libmheap.a: every form
// allocates through mheap (mh_usable_size knows the block: it would abort
// with "mheap: invalid pointer" otherwise), alignment holds, sized delete
// with the right size works, a huge size throws std::bad_alloc (after
// calling the new handler) and the nothrow forms return nullptr.
//
// Built and run by tests/contract.cmake (not with sanitizers).
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "../check.h"
#include "mheap.h"

namespace {

volatile std::size_t v_huge = static_cast<std::size_t>(PTRDIFF_MAX) + 1;
volatile std::size_t v_big = static_cast<std::size_t>(PTRDIFF_MAX);  // the OS refuses

// Is p a block of mheap's with at least n usable bytes, aligned to align?
bool ours(const void *p, std::size_t n, std::size_t align = 16) {
    if (!p) return false;
    std::size_t u = mh_usable_size(p);
    return u >= n && u > 0 && reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

struct Small {
    char buf[300];
};
struct alignas(256) Aligned {
    char buf[1000];
};
struct alignas(4096) Page {
    char buf[100];
};

int handler_calls;
void give_up_handler() {
    handler_calls++;
    std::set_new_handler(nullptr);
}

// A handler that gives up by throwing, as the standard lets it: the
// nothrow forms must still return nullptr (they return what operator
// new(size) returns, or nullptr if it does not return normally).
void throwing_handler() {
    handler_calls++;
    throw std::bad_alloc();
}

void test_plain() {
    int *i = new int(42);
    CHECK(ours(i, sizeof(int)));
    CHECK_EQ(*i, 42);
    delete i;

    int *a = new int[1000];
    CHECK(ours(a, 1000 * sizeof(int)));
    for (int k = 0; k < 1000; k++) a[k] = k;
    CHECK_EQ(a[999], 999);
    delete[] a;

    char *big = new char[3 << 20];
    CHECK(ours(big, 3 << 20));
    std::memset(big, 1, 3 << 20);
    delete[] big;

    Small *s = new Small();  // delete calls the sized operator delete
    CHECK(ours(s, sizeof(Small)));
    delete s;
    Small *sa = new Small[7];
    CHECK(ours(sa, 7 * sizeof(Small)));
    delete[] sa;

    void *raw = ::operator new(100);
    CHECK(ours(raw, 100));
    ::operator delete(raw, 100);  // sized delete with the right size
    raw = ::operator new[](100000);
    CHECK(ours(raw, 100000));
    ::operator delete[](raw, 100000);
    raw = ::operator new(0);
    CHECK(ours(raw, 0));
    ::operator delete(raw, static_cast<std::size_t>(0));
    raw = ::operator new(40000);
    CHECK(ours(raw, 40000));
    ::operator delete(raw);

    // Sized delete with the size asked for, for every size up to 4 KiB:
    // most pass the inline size check, the smallest only the slow path's.
    for (std::size_t n = 0; n <= 4096; n++) {
        raw = ::operator new(n);
        CHECK(ours(raw, n));
        ::operator delete(raw, n);
        raw = ::operator new[](n);
        ::operator delete[](raw, n);
    }
}

void test_nothrow() {
    int *i = new (std::nothrow) int(7);
    CHECK(ours(i, sizeof(int)));
    delete i;
    char *a = new (std::nothrow) char[5000];
    CHECK(ours(a, 5000));
    delete[] a;
    void *raw = ::operator new(123, std::nothrow);
    CHECK(ours(raw, 123));
    ::operator delete(raw, std::nothrow);
    raw = ::operator new[](1 << 20, std::nothrow);
    CHECK(ours(raw, 1 << 20));
    ::operator delete[](raw, std::nothrow);
}

void test_aligned() {
    Aligned *x = new Aligned();
    CHECK(ours(x, sizeof(Aligned), 256));
    delete x;  // sized + aligned delete
    Aligned *xa = new Aligned[5];
    CHECK(ours(xa, 5 * sizeof(Aligned), 256));
    delete[] xa;
    Page *pg = new Page();
    CHECK(ours(pg, sizeof(Page), 4096));
    delete pg;
    Aligned *xn = new (std::nothrow) Aligned();
    CHECK(ours(xn, sizeof(Aligned), 256));
    delete xn;

    for (std::size_t al = 1; al <= (std::size_t(1) << 20); al <<= 1) {
        for (std::size_t n : {std::size_t(1), std::size_t(100), std::size_t(5000),
                              std::size_t(40000), std::size_t(1) << 20}) {
            std::align_val_t a{al};
            void *p = ::operator new(n, a);
            CHECK(ours(p, n, al));
            std::memset(p, 2, n);
            ::operator delete(p, n, a);  // sized, aligned
            p = ::operator new[](n, a);
            CHECK(ours(p, n, al));
            ::operator delete[](p, a);
            p = ::operator new(n, a, std::nothrow);
            CHECK(ours(p, n, al));
            ::operator delete(p, a, std::nothrow);
            p = ::operator new[](n, a, std::nothrow);
            CHECK(ours(p, n, al));
            ::operator delete[](p, n, a);
        }
    }
}

void test_library_types() {
    std::vector<int> v(10000, 3);
    CHECK(ours(v.data(), 10000 * sizeof(int)));
    std::string s(5000, 'x');
    CHECK(ours(s.data(), 5001));
    auto u = std::make_unique<Aligned>();
    CHECK(ours(u.get(), sizeof(Aligned), 256));
}

template <typename F>
bool throws_bad_alloc(F f) {
    try {
        f();
    } catch (const std::bad_alloc &) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

void test_huge() {
    for (std::size_t n : {std::size_t(v_huge), std::size_t(v_big), SIZE_MAX}) {
        CHECK(throws_bad_alloc([n] { ::operator delete(::operator new(n)); }));
        CHECK(throws_bad_alloc([n] { ::operator delete[](::operator new[](n)); }));
        CHECK(throws_bad_alloc(
            [n] { ::operator delete(::operator new(n, std::align_val_t(64)), std::align_val_t(64)); }));
        CHECK(throws_bad_alloc([n] {
            ::operator delete[](::operator new[](n, std::align_val_t(1 << 16)),
                                std::align_val_t(1 << 16));
        }));
        CHECK(::operator new(n, std::nothrow) == nullptr);
        CHECK(::operator new[](n, std::nothrow) == nullptr);
        CHECK(::operator new(n, std::align_val_t(256), std::nothrow) == nullptr);
        CHECK(::operator new[](n, std::align_val_t(256), std::nothrow) == nullptr);
    }
    // The new handler is called until it gives up (here: once).
    handler_calls = 0;
    std::set_new_handler(give_up_handler);
    CHECK(throws_bad_alloc([] { ::operator delete(::operator new(v_huge)); }));
    CHECK_EQ(handler_calls, 1);
    std::set_new_handler(give_up_handler);
    CHECK(::operator new(v_huge, std::nothrow) == nullptr);
    CHECK_EQ(handler_calls, 2);
    std::set_new_handler(throwing_handler);
    bool escaped = false;
    try {
        CHECK(::operator new(v_huge, std::nothrow) == nullptr);
        CHECK(::operator new[](v_huge, std::nothrow) == nullptr);
        CHECK(::operator new(v_huge, std::align_val_t(256), std::nothrow) == nullptr);
        CHECK(::operator new[](v_huge, std::align_val_t(256), std::nothrow) == nullptr);
    } catch (...) {
        escaped = true;
    }
    CHECK(!escaped);
    CHECK_EQ(handler_calls, 6);
    std::set_new_handler(nullptr);
    // After all that the heap works.
    char *p = new char[100];
    CHECK(ours(p, 100));
    delete[] p;
}

}  // namespace

int main() {
    test_plain();
    test_nothrow();
    test_aligned();
    test_library_types();
    test_huge();
    CHECK_EQ(mh_heap_verify(), 0);
    return check_done("cxx_new");
}
