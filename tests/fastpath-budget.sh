#!/bin/sh
# The fast-path instruction budget of one allocation+free pair: count
# instructions per pair with callgrind (repeatable on a noisy machine) and
# compare with the pair's line in tests/fastpath-budget.txt.
#   fastpath-budget.sh BUILD_DIR SOURCE_DIR PAIR
# PAIR: malloc_free, malloc_free_sized (bench/fastpath.c) or new_delete
# (bench/fastpath-new.cpp, whose delete must call the sized operator
# delete, _ZdlPvm).  Exit 77 (skipped) without valgrind or objdump.
set -eu
build=$1
src=$2
pair=$3
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed: skipped"; exit 77; }
budget=$(sed -n "s/^$pair[[:space:]]\{1,\}\([0-9]\{1,\}\)[[:space:]]*\$/\1/p" "$src/tests/fastpath-budget.txt")
[ -n "$budget" ] || { echo "FAIL: no budget for $pair in tests/fastpath-budget.txt"; exit 1; }
case $pair in
    malloc_free) prog=mh-fastpath args="64 free" call=free ;;
    malloc_free_sized) prog=mh-fastpath args="64 sized" call=free_sized ;;
    new_delete) prog=mh-fastpath-new args="" call=_ZdlPvm ;;
    *) echo "FAIL: unknown pair $pair"; exit 1 ;;
esac
# The loop must call what is being measured (through the PLT, so the
# preloaded library's definition runs), not something the compiler chose.
command -v objdump >/dev/null 2>&1 || { echo "objdump not installed: skipped"; exit 77; }
objdump -d "$build/bench/$prog" | grep -q "call.*<$call@plt>" ||
    { echo "FAIL: $prog does not call $call"; exit 1; }
count() {
    # $args is split on purpose (it holds two words or none).
    # shellcheck disable=SC2086
    LD_PRELOAD="$build/src/libmheap.so" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$build/bench/$prog" "$1" $args 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a1=$(count 100000)
a2=$(count 1100000)
[ -n "$a1" ] && [ -n "$a2" ] || { echo "FAIL: callgrind gave no count"; exit 1; }
# Rounded to the nearest: start-up differs by a few instructions per run.
per=$(( (a2 - a1 + 500000) / 1000000 ))
echo "instructions per $pair pair: $per (budget $budget)"
[ "$per" -le "$budget" ] || { echo "FAIL: fast path over budget"; exit 1; }
