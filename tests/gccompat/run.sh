#!/bin/sh
# run.sh MHEAP_PROGRAM SRC_DIR WORK_DIR [CC [LIBMHEAP_SO]]
#
# The gc_compat test: tests/gccompat/compat.c built against bdwgc here
# (Debian's libgc-dev: its gc.h from /usr/include, -lgc; installed with
# apt-get when missing, as demo/run-demo.sh does) and, by CMake, against
# mheap (MHEAP_PROGRAM).  Both must exit 0 and print the same standard
# output, byte for byte.  With LIBMHEAP_SO, the bdwgc build runs a second
# time with it preloaded (the binary unchanged, mheap's collector standing
# in for libgc's): the same output again, and mheap's gctrace lines on
# stderr show that its collector is the one that ran.  Exit 77 (skipped)
# when bdwgc cannot be had.
set -eu
mh=$1
src=$2
work=$3
cc=${4:-cc}
lib=${5:-}
mkdir -p "$work"

CC=$cc
. "$src/../gcabi/need.sh" # (have_libgc, install_pkg)
if ! have_libgc; then
    install_pkg libgc-dev || true
    if ! have_libgc; then
        echo "gc_compat skipped: bdwgc (libgc-dev) is not installed and could not be installed"
        exit 77
    fi
fi

# bdwgc's build sees only the system headers: never mheap's include/.
bdw=$work/compat-bdwgc
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -o "$bdw" "$src/compat.c" "$src/compat_debug.c" -lgc -lpthread -ldl

status=0
env -u GC_PRINT_STATS -u GC_MARKERS -u GC_DONT_GC "$bdw" >"$work/bdwgc.out" 2>"$work/bdwgc.err" || status=$?
if [ $status != 0 ]; then
    echo "FAIL: the bdwgc build exited with $status"
    grep -v ': ok$' "$work/bdwgc.out" || true
    tail -n 5 "$work/bdwgc.err"
    exit 1
fi
"$mh" >"$work/mheap.out" 2>"$work/mheap.err" || status=$?
if [ $status != 0 ]; then
    echo "FAIL: the mheap build exited with $status"
    grep -v ': ok$' "$work/mheap.out" || true
    tail -n 5 "$work/mheap.err"
    exit 1
fi
if ! cmp -s "$work/bdwgc.out" "$work/mheap.out"; then
    echo "FAIL: the outputs differ (bdwgc -, mheap +)"
    diff -u "$work/bdwgc.out" "$work/mheap.out" || true
    exit 1
fi
if [ -n "$lib" ]; then
    status=0
    env -u GC_PRINT_STATS -u GC_MARKERS -u GC_DONT_GC MHEAP_OPTIONS=gctrace=1 LD_PRELOAD="$lib" \
        "$bdw" >"$work/preload.out" 2>"$work/preload.err" || status=$?
    if [ $status != 0 ]; then
        echo "FAIL: the bdwgc build with libmheap.so preloaded exited with $status"
        grep -v ': ok$' "$work/preload.out" || true
        tail -n 5 "$work/preload.err"
        exit 1
    fi
    if ! cmp -s "$work/bdwgc.out" "$work/preload.out"; then
        echo "FAIL: the bdwgc build's outputs differ with libmheap.so preloaded (bdwgc -, preload +)"
        diff -u "$work/bdwgc.out" "$work/preload.out" || true
        exit 1
    fi
    n=$(grep -c '^gc [0-9]* @' "$work/preload.err" || true)
    if [ "$n" -lt 1 ]; then
        echo "FAIL: with libmheap.so preloaded, no gctrace line: mheap's collector did not run"
        exit 1
    fi
    echo "the bdwgc build with libmheap.so preloaded: the same lines again ($n collections of mheap's)"
fi
echo "bdwgc and mheap: the same $(wc -l <"$work/mheap.out") lines"
tail -n 1 "$work/mheap.out"
