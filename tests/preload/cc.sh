#!/usr/bin/env bash
# cc.sh LIBMHEAP CC WORKDIR
#
# Compiles a generated C file of a few thousand lines with `CC -O2 -c`, once
# on the system allocator and once with LD_PRELOAD=libmheap.so (inherited by
# the compiler's own child processes: cc1, as); the object files must be
# byte for byte the same.  Then compiles and links a small program with the
# preloaded compiler and runs it, with and without mheap: same output.
. "$(dirname "$0")/common.sh"

[ $# -eq 3 ] || fail "usage: $0 LIBMHEAP CC WORKDIR"
lib=$(abspath "$1") cc=$(progpath "$2") dir=$3
need_file "$lib" libmheap
[ -n "$cc" ] && [ -x "$cc" ] || fail "compiler not found: $2"
mkdir -p "$dir/sys" "$dir/mheap" && cd "$dir" || fail "cannot use $dir"

# ---- a generated source file: 300 functions of about 16 lines ----
nfunc=300
{
    echo '#include <stddef.h>'
    echo 'struct rec { int a; long b; double c; unsigned char tag[8]; };'
    i=1
    while [ "$i" -le "$nfunc" ]; do
        cat <<EOT
static long f$i(const struct rec *v, size_t n, long seed) {
    long acc = seed + $i;
    for (size_t k = 0; k < n; k++) {
        switch ((v[k].a + $i) % 6) {
        case 0: acc += v[k].b * $i; break;
        case 1: acc ^= (long)(v[k].c * $i.25); break;
        case 2: acc -= (long)v[k].a << ($i % 7); break;
        case 3: acc = acc * 31 + v[k].tag[($i + k) % 8]; break;
        case 4: for (int j = 0; j < ($i % 5) + 1; j++) acc += j * v[k].a; break;
        default: acc += (long)k * $i; break;
        }
    }
    return acc;
}
EOT
        i=$((i + 1))
    done
    echo 'long run_all(const struct rec *v, size_t n) {'
    echo '    long t = 0;'
    i=1
    while [ "$i" -le "$nfunc" ]; do
        echo "    t = t * 3 + f$i(v, n, t & 1023);"
        i=$((i + 1))
    done
    echo '    return t;'
    echo '}'
} > gen.c
cat > main.c <<'EOT'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct rec { int a; long b; double c; unsigned char tag[8]; };
long run_all(const struct rec *v, size_t n);
int main(void) {
    size_t n = 1000;
    struct rec *v = malloc(n * sizeof *v);
    if (!v) return 1;
    for (size_t i = 0; i < n; i++) {
        v[i].a = (int)(i * 7 % 101);
        v[i].b = (long)(i * i % 1009);
        v[i].c = (double)i / 3.0;
        memset(v[i].tag, (int)(i & 255), sizeof v[i].tag);
    }
    char *s = NULL;
    for (int r = 0; r < 20; r++) {
        s = realloc(s, (size_t)(r + 1) * 4096);
        if (!s) return 1;
        s[r * 4096] = (char)r;
    }
    printf("run_all = %ld\n", run_all(v, n));
    free(s);
    free(v);
    return 0;
}
EOT
echo "generated gen.c: $(wc -l < gen.c) lines"

# ---- the same compile on both allocators ----
(cd sys && run_capture cc "$cc" -O2 -c ../gen.c -o gen.o) || exit 1
(cd mheap && run_capture cc env LD_PRELOAD="$lib" MHEAP_OPTIONS=stats=1 "$cc" -O2 -c ../gen.c -o gen.o) || exit 1
no_stats sys/cc.err "cc (system allocator)"
# gcc runs cc1 (and as) as children: each must have had mheap too.
min=1
cc1=$("$cc" -print-prog-name=cc1 2> /dev/null || true)
case "$cc1" in /*) [ -x "$cc1" ] && min=2 ;; esac
expect_stats mheap/cc.err "$min" "cc -O2 -c"
if ! cmp sys/gen.o mheap/gen.o; then
    size sys/gen.o mheap/gen.o >&2
    objdump -d sys/gen.o > sys/gen.dis 2>&1
    objdump -d mheap/gen.o > mheap/gen.dis 2>&1
    diff sys/gen.dis mheap/gen.dis | head -40 >&2
    fail "cc: the object file compiled with mheap differs from the one compiled without"
fi
echo "ok: cc: object files are identical ($(wc -c < sys/gen.o) bytes)"
command -v size > /dev/null && size sys/gen.o

# ---- compile and link a program with the preloaded compiler, run it ----
(cd mheap && run_capture link env LD_PRELOAD="$lib" "$cc" -O2 ../main.c gen.o -o prog) || exit 1
(cd sys && run_capture link "$cc" -O2 ../main.c gen.o -o prog) || exit 1
(cd sys && run_capture run ./prog) || exit 1
(cd mheap && run_capture run env LD_PRELOAD="$lib" MHEAP_OPTIONS=stats=1 ./prog) || exit 1
cat mheap/run.out
same_output sys/run.out mheap/run.out "program built by the preloaded compiler"
expect_stats mheap/run.err 1 "program built by the preloaded compiler"
if cmp -s sys/prog mheap/prog; then
    echo "ok: cc: linked programs are identical too"
else
    fail "cc: the program linked with mheap differs from the one linked without"
fi
