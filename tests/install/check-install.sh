#!/bin/sh
# Installs the build into a temporary prefix, then uses it the ways README
# describes: pkg-config + shared library, the static library, the
# launcher, and a program for bdwgc's gc.h built with mheap-gc.pc.  Exit 77
# (skipped) when pkg-config is missing.
set -eu
build=$1
src=$2
command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config missing: skipped"; exit 77; }
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name mheap.pc)
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir mheap)
cc "$src/tests/install/use.c" $(pkg-config --cflags --libs mheap) -Wl,-rpath,"$libdir" -o "$prefix/use_shared"
out=$("$prefix/use_shared")
echo "shared: $out"
case "$out" in "mheap owns malloc"*) ;; *) echo "FAIL: shared"; exit 1 ;; esac
cc "$src/tests/install/use.c" $(pkg-config --cflags mheap) "$libdir/libmheap.a" -lpthread -ldl -o "$prefix/use_static"
out=$("$prefix/use_static")
echo "static: $out"
case "$out" in "mheap owns malloc"*) ;; *) echo "FAIL: static"; exit 1 ;; esac
out=$("$prefix/bin/mheap" run --stats -- true 2>&1)
echo "$out" | grep -q "mheap: statistics" || { echo "FAIL: launcher"; exit 1; }
echo "launcher: ok"
# (mheap-gc.pc's include directory comes before /usr/include, where a
# bdwgc's gc.h may be)
cc "$src/tests/install/use_gc.c" $(pkg-config --cflags --libs mheap-gc) -Wl,-rpath,"$libdir" -o "$prefix/use_gc"
out=$("$prefix/use_gc")
echo "gc.h: $out"
case "$out" in "mheap's gc.h works"*) ;; *) echo "FAIL: gc.h"; exit 1 ;; esac
[ ! -e "$prefix/include/gc.h" ] || { echo "FAIL: gc.h installed beside mheap.h"; exit 1; }
