// fastpath-new - new + delete of a 64-byte class in a loop: the C++
// counterpart of fastpath.c.  A delete of a complete type compiles (C++14
// on) to the sized operator delete(void *, std::size_t), _ZdlPvm, which is
// what this program measures (tests/fastpath-budget.sh checks the call is
// there).  Plain libstdc++: any allocator can be preloaded.
//
//   fastpath-new ITERATIONS
#include <cstdlib>

namespace {

struct Obj {
    char bytes[64];
};
static_assert(sizeof(Obj) == 64, "a 64-byte object");

}  // namespace

int main(int argc, char **argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 1000000;
    Obj *volatile keep;
    for (int i = 0; i < 1000; i++) {  // warm up, as fastpath.c does
        Obj *p = new Obj;
        keep = p;
        delete p;
    }
    for (long i = 0; i < n; i++) {
        Obj *p = new Obj;
        keep = p;
        delete p;
    }
    (void)keep;
    return 0;
}
