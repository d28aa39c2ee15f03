#!/bin/sh
# run.sh LIBMHEAP_SO SRC_DIR WORK_DIR [CC]
#
# The gc_abi test: programs built against Debian's libgc (bdwgc 8.2, -lgc,
# its headers only) run as they are and with libmheap.so preloaded.
#   vars.c  writes and reads bdwgc's variables directly: the same output
#           both ways, and mheap's collector is the one running with the
#           preload (its gctrace lines on stderr);
#   env.c   under bdwgc's environment variables: GC_DONT_GC, GC_PRINT_STATS,
#           GC_MAXIMUM_HEAP_SIZE, GC_FREE_SPACE_DIVISOR, GC_INITIAL_HEAP_SIZE,
#           GC_NPROCS and GC_MARKERS, and notes for those not honoured.
# Exit 77 (skipped) when bdwgc cannot be had.
set -eu
lib=$1
src=$2
work=$3
CC=${4:-cc}
. "$src/need.sh"
need_libgc
mkdir -p "$work"
cd "$work"
# (none of bdwgc's variables may come from the caller's environment)
for v in $(env | sed -n 's/^\(GC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset MHEAP_OPTIONS

"$CC" -std=c11 -O2 -Wall -Wextra -Werror -Wno-deprecated-declarations -o vars "$src/vars.c" -lgc
"$CC" -std=c11 -O2 -Wall -Wextra -Werror -Wno-deprecated-declarations -o env "$src/env.c" -lgc -lpthread

fail=0
bad() { echo "FAIL: $*"; fail=1; }

# ---- vars ----
st=0; ./vars >vars.bdwgc 2>vars.bdwgc.err || st=$?
[ $st = 0 ] || { bad "vars (bdwgc) exited with $st"; grep -v ': yes$' vars.bdwgc || true; }
st=0; MHEAP_OPTIONS=gctrace=1 LD_PRELOAD=$lib ./vars >vars.mheap 2>vars.mheap.err || st=$?
[ $st = 0 ] || { bad "vars (mheap) exited with $st"; grep -v ': yes$' vars.mheap || true; tail -n 3 vars.mheap.err; }
cmp -s vars.bdwgc vars.mheap || { bad "vars: the outputs differ (bdwgc -, mheap +)"; diff -u vars.bdwgc vars.mheap || true; }
n=$(grep -c '^gc [0-9]* @' vars.mheap.err || true)
[ "$n" -ge 3 ] || bad "vars: with the preload, mheap's gctrace shows $n collections (not mheap's collector?)"
if grep -v '^gc [0-9]* @' vars.mheap.err | grep -q .; then bad "vars (mheap) said on stderr:"; grep -v '^gc ' vars.mheap.err; fi
echo "vars: the same $(wc -l <vars.mheap) lines both ways; $n collections of mheap's"

# ---- env ----
# same_both EXPECTED VAR=VALUE... -- ARG: bdwgc and mheap print EXPECTED
same_both() {
    want=$1; shift
    vars=""; while [ "$1" != -- ]; do vars="$vars $1"; shift; done; shift
    b=$(env $vars ./env "$@" 2>/dev/null) || bad "env $vars ./env $* (bdwgc) failed"
    m=$(env $vars LD_PRELOAD="$lib" ./env "$@" 2>env.err) || bad "env $vars ./env $* (mheap) failed"
    [ "$b" = "$want" ] || bad "bdwgc,$vars $*: '$b', not '$want'"
    [ "$m" = "$want" ] || bad "mheap,$vars $*: '$m', not '$want'"
}
# mheap_says EXPECTED VAR=VALUE... -- ARG: mheap prints EXPECTED
mheap_says() {
    want=$1; shift
    vars=""; while [ "$1" != -- ]; do vars="$vars $1"; shift; done; shift
    m=$(env $vars LD_PRELOAD="$lib" ./env "$@" 2>env.err) || bad "env $vars ./env $* (mheap) failed"
    [ "$m" = "$want" ] || bad "mheap,$vars $*: '$m', not '$want'"
}
same_both "collections while allocating: some" -- collections
same_both "collections while allocating: none" GC_DONT_GC=1 -- collections
mheap_says "disabled 1, GC_dont_gc 1" GC_DONT_GC=1 -- dont_gc
same_both "disabled 0, GC_dont_gc 0" -- dont_gc
limit="an allocation failed before 256 MiB: yes
it returned NULL after asking the OOM function: yes
at least 16 MiB were had: yes"
same_both "$limit" GC_MAXIMUM_HEAP_SIZE=64M -- limit
same_both "divisor 4, variable 4" GC_FREE_SPACE_DIVISOR=4 -- divisor
mheap_says "divisor 10, variable 10" GC_FREE_SPACE_DIVISOR=10 -- divisor
mheap_says "parallel 2" GC_NPROCS=3 -- parallel
mheap_says "parallel 1" GC_MARKERS=2 GC_NPROCS=5 -- parallel
mheap_says "parallel 0" GC_MARKERS=1 -- parallel
# (mheap: GC_INITIAL_HEAP_SIZE lets the heap grow that far before collecting)
mheap_says "collections while allocating: some" -- collections32
mheap_says "collections while allocating: none" GC_INITIAL_HEAP_SIZE=64M -- collections32
# GC_PRINT_STATS: one line per collection, as gctrace
mheap_says "collections while allocating: some" -- collections
grep -q . env.err && { bad "without GC_PRINT_STATS, mheap said:"; cat env.err; }
mheap_says "collections while allocating: some" GC_PRINT_STATS=1 -- collections
n=$(grep -c '^gc [0-9]* @.* markers$' env.err || true)
[ "$n" -ge 3 ] || bad "GC_PRINT_STATS=1: $n lines of statistics"
# not honoured: said once each, through the warn procedure
mheap_says "collections while allocating: some" GC_FIND_LEAK=1 GC_DUMP_REGULARLY=1 GC_LOG_FILE=/nonexistent GC_NO_BLACKLIST_WARNING=1 GC_RETRY_SIGNALS=0 -- collections
for w in "GC_find_leak is not supported" "GC_DUMP_REGULARLY is not honoured" "GC_LOG_FILE is not honoured"; do
    [ "$(grep -c "^mheap: $w" env.err)" = 1 ] || bad "'mheap: $w' is not said once"
done
[ "$(wc -l <env.err)" = 3 ] || { bad "more than the three notes:"; cat env.err; }
[ $fail = 0 ] || exit 1
echo "env: bdwgc's environment variables honoured (or said not to be)"
