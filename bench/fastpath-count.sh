#!/bin/sh
# Instructions per malloc+free pair, counted with callgrind, for mheap and
# (when installed) glibc, jemalloc, tcmalloc and mimalloc.
#   bench/fastpath-count.sh BUILD_DIR [SIZES...]
set -eu
build=${1:-build}
shift || true
sizes=${*:-16 32 64 128 256 512 1024}
prog=$build/bench/mh-fastpath
lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
count() { # preload size iterations
    LD_PRELOAD=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$prog" "$3" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf "%-10s" allocator
for s in $sizes; do printf "%8s" "$s"; done
echo
for a in mheap:$build/src/libmheap.so glibc: jemalloc:$lib/libjemalloc.so.2 \
         tcmalloc:$lib/libtcmalloc_minimal.so.4 mimalloc:$lib/libmimalloc.so.2; do
    name=${a%%:*}
    so=${a#*:}
    [ -z "$so" ] || [ -f "$so" ] || continue
    printf "%-10s" "$name"
    for s in $sizes; do
        a1=$(count "$so" "$s" 100000)
        a2=$(count "$so" "$s" 1100000)
        printf "%8s" $(( (a2 - a1) / 1000000 ))
    done
    echo
done
