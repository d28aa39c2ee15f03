#!/bin/sh
# Instructions per allocation+free pair, counted with callgrind, for mheap
# and (when installed) glibc, jemalloc, tcmalloc and mimalloc: malloc+free
# and malloc+free_sized at each size, then new+delete of a 64-byte class
# (the sized operator delete).  "-": the allocator has no free_sized.
#   bench/fastpath-count.sh BUILD_DIR [SIZES...]
set -eu
build=${1:-build}
shift || true
sizes=${*:-16 32 64 128 256 512 1024}
lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
count1() { # preload iterations program args...
    so=$1 it=$2 prog=$3
    shift 3
    LD_PRELOAD=$so valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$build/bench/$prog" "$it" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
pair() { # preload program args...: per pair, or - when the program fails
    so=$1 prog=$2
    shift 2
    LD_PRELOAD=$so "$build/bench/$prog" 1 "$@" >/dev/null 2>&1 || { echo -; return; }
    a1=$(count1 "$so" 100000 "$prog" "$@")
    a2=$(count1 "$so" 1100000 "$prog" "$@")
    echo $(( (a2 - a1 + 500000) / 1000000 ))
}
allocators="mheap:$build/src/libmheap.so glibc: jemalloc:$lib/libjemalloc.so.2
    tcmalloc:$lib/libtcmalloc_minimal.so.4 mimalloc:$lib/libmimalloc.so.2"
for mode in free sized; do
    if [ $mode = free ]; then echo "malloc+free"; else echo "malloc+free_sized"; fi
    printf "%-10s" allocator
    for s in $sizes; do printf "%8s" "$s"; done
    echo
    for a in $allocators; do
        name=${a%%:*}
        so=${a#*:}
        [ -z "$so" ] || [ -f "$so" ] || continue
        printf "%-10s" "$name"
        for s in $sizes; do printf "%8s" "$(pair "$so" mh-fastpath "$s" $mode)"; done
        echo
    done
    echo
done
echo "new+delete (64-byte class, sized delete)"
for a in $allocators; do
    name=${a%%:*}
    so=${a#*:}
    [ -z "$so" ] || [ -f "$so" ] || continue
    printf "%-10s%8s\n" "$name" "$(pair "$so" mh-fastpath-new)"
done
