#!/bin/sh
# The fast-path instruction budget: count instructions per malloc+free
# pair with callgrind (repeatable on a noisy machine) and compare with
# tests/fastpath-budget.txt.  Exit 77 (skipped) without valgrind.
set -eu
build=$1
src=$2
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed: skipped"; exit 77; }
budget=$(grep -v '^#' "$src/tests/fastpath-budget.txt" | head -n 1)
count() {
    LD_PRELOAD="$build/src/libmheap.so" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$build/bench/mh-fastpath" "$1" 64 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a1=$(count 100000)
a2=$(count 1100000)
per=$(( (a2 - a1) / 1000000 ))
echo "instructions per malloc+free pair: $per (budget $budget)"
[ "$per" -le "$budget" ] || { echo "FAIL: fast path over budget"; exit 1; }
