#!/usr/bin/env bash
# threads.sh LIBMHEAP PROGRAM WORKDIR
#
# Runs tests/preload/threads.c (built against the C library only: 8 threads
# malloc / realloc / free with pattern checks and hand-offs) on the system
# allocator and with LD_PRELOAD=libmheap.so; the output (per-thread counts
# and a checksum over every freed block) must be the same.  With
# TEST_EXPECT_MHEAP=1 the program checks that malloc is mheap's, with 0 that
# it is not.
. "$(dirname "$0")/common.sh"

[ $# -eq 3 ] || fail "usage: $0 LIBMHEAP PROGRAM WORKDIR"
lib=$(abspath "$1") prog=$(abspath "$2") dir=$3
need_file "$lib" libmheap
need_file "$prog" "threads program"
mkdir -p "$dir" && cd "$dir" || fail "cannot use $dir"

run_capture sys env TEST_EXPECT_MHEAP=0 MHEAP_OPTIONS=stats=1 "$prog"
no_stats sys.err threads

run_capture mheap env LD_PRELOAD="$lib" TEST_EXPECT_MHEAP=1 MHEAP_OPTIONS=stats=1 "$prog"

cat mheap.out
grep -q '^errors: 0$' sys.out || fail "threads: no 'errors: 0' in the output"
same_output sys.out mheap.out threads
expect_stats mheap.err 1 threads
grep -F 'malloc is mheap' mheap.err
