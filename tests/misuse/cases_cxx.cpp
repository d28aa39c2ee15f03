// cases_cxx.cpp - the misuse cases of the C++ operators delete:
// `misuse_cases_cxx <case>` (run by driver.c like misuse_cases).
//
//   <op>_<kind>   op delete (operator delete(void *)), delete_array
//                 (operator delete[]), delete_sized (operator delete(void *,
//                 size_t) with the block's size) or delete_aligned
//                 (operator delete(void *, align_val_t) of a block from
//                 operator new(size_t, align_val_t)), on a pointer of kind
//                 freed, stack, interior, p4096, mmap, minus8 (cases.h).
//   delete_sized_wrong   sized delete of a 64-byte block with size 1000.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cases.h"

namespace {

void *new64(std::size_t n) { return ::operator new(n); }
void *new_array(std::size_t n) { return ::operator new[](n); }
void *new_aligned(std::size_t n) { return ::operator new(n, std::align_val_t(64)); }
void del(void *p) { ::operator delete(p); }
void del_array(void *p) { ::operator delete[](p); }
void del_sized(void *p) { ::operator delete(p, std::size_t(64)); }
void del_aligned(void *p) { ::operator delete(p, std::align_val_t(64)); }

struct Op {
    const char *name;
    void *(*alloc)(std::size_t);
    void (*release)(void *);
};
const Op ops[] = {
    {"delete_aligned", new_aligned, del_aligned},
    {"delete_sized", new64, del_sized},
    {"delete_array", new_array, del_array},
    {"delete", new64, del},
};
const char *const kinds[] = {"freed", "stack", "interior", "p4096", "mmap", "minus8"};

void then_more() {
    void *a = ::operator new(64), *b = ::operator new(64);
    std::memset(a, 2, 64);
    std::memset(b, 3, 64);
    ::operator delete(a);
    ::operator delete(b);
}

bool op_by_name(const char *name) {
    for (const Op &op : ops) {
        std::size_t n = std::strlen(op.name);
        if (std::strncmp(name, op.name, n) != 0 || name[n] != '_') continue;
        int k = misuse_kind(name + n + 1);
        if (k < 0) continue;
        alignas(64) char stack[128];
        std::memset(stack, 1, sizeof stack);
        void *bad = misuse_bad_pointer(k, op.alloc, op.release, stack + 64);
        op.release(bad);
        then_more();
        return true;
    }
    return false;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: misuse_cases_cxx <case> | --list\n");
        return 2;
    }
    const char *c = argv[1];
    if (std::strcmp(c, "--list") == 0) {
        for (int o = 3; o >= 0; o--)
            for (const char *k : kinds) std::printf("%s_%s\n", ops[o].name, k);
        std::printf("delete_sized_wrong\n");
        return 0;
    }
    misuse_need_mheap();
    if (op_by_name(c)) return 0;
    if (std::strcmp(c, "delete_sized_wrong") == 0) {
        void *p = ::operator new(64);
        std::memset(p, 1, 64);
        ::operator delete(misuse_opaque(p), std::size_t(1000));
        then_more();
        return 0;
    }
    misuse_setup_fail("no such case");
}
