#!/bin/sh
# The mheap demo: the same Python workload on the system allocator and on
# mheap (through the `mheap run` launcher), with each run's time, peak RSS
# and result digest, then mheap's statistics for its run; then a C program
# on a garbage collector (demo/gc-demo.c), built against bdwgc and against
# mheap's collector, side by side, with mheap's trace of each collection.
set -e
build=${1:-build}
# Debian's interpreter when present: version managers put wrapper scripts
# first in PATH, which would run (and report) several processes.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ]; then
    echo "demo: python3 is needed (tools/deps.sh installs it)" >&2
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONMALLOC=malloc   # Python's objects come from malloc, not its own arenas
echo "== Python workload on the system allocator"
"$py" "$here/workload.py"
echo
echo "== The same workload on mheap: $build/tools/mheap run --stats -- python3 demo/workload.py"
"$build/tools/mheap" run --stats -- "$py" "$here/workload.py" 2>&1

# ---- the collector: demo/gc-demo.c on bdwgc and on mheap
echo
echo "== A C program on a garbage collector: demo/gc-demo.c, built against bdwgc's gc.h (-lgc)"
echo "   and against mheap's include/gc.h (libmheap)"

bdw="$build/demo/mh-demo-gc-bdwgc"
have_libgc() {
    [ -f /usr/include/gc.h ] || return 1
    for d in /usr/lib/$(cc -print-multiarch 2>/dev/null) /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
        [ -e "$d/libgc.so" ] && return 0
    done
    return 1
}
install_libgc() {
    if [ "$(id -u)" = 0 ]; then sudo=""
    elif command -v sudo >/dev/null 2>&1; then sudo="sudo"
    else echo "demo: libgc-dev (bdwgc) is missing, and this is not root and has no sudo"; return 1
    fi
    command -v apt-get >/dev/null 2>&1 || { echo "demo: libgc-dev (bdwgc) is missing, and there is no apt-get"; return 1; }
    echo "installing libgc-dev (bdwgc) with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libgc-dev >/dev/null 2>&1 ||
        { $sudo apt-get update -q >/dev/null 2>&1 &&
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libgc-dev >/dev/null 2>&1; }
}
if [ ! -x "$bdw" ]; then
    # CMake looks for libgc again on the next configure when it found none.
    if have_libgc || install_libgc; then
        { cmake "$build" >/dev/null && cmake --build "$build" --target mh-demo-gc-bdwgc >/dev/null; } ||
            echo "demo: building the bdwgc variant failed"
    fi
    [ -x "$bdw" ] || echo "demo: bdwgc (libgc-dev) could not be installed or built: only the mheap side runs"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runs=""
status=0
if [ -x "$bdw" ]; then
    env -u GC_PRINT_STATS -u GC_MARKERS "$bdw" >"$tmp/bdwgc.out" 2>"$tmp/bdwgc.err" ||
        echo $? >"$tmp/bdwgc.rc"
    runs="bdwgc"
fi
MHEAP_OPTIONS="${MHEAP_OPTIONS:+$MHEAP_OPTIONS,}gctrace=1" \
    "$build/demo/mh-demo-gc" >"$tmp/mheap.out" 2>"$tmp/mheap.err" || echo $? >"$tmp/mheap.rc"
runs="$runs mheap"

echo
for c in $runs; do
    if grep -q '^result:' "$tmp/$c.out"; then
        grep '^result:' "$tmp/$c.out" | sed "s/^result:/$c/"
    else
        echo "$c FAILED (exit status $(cat "$tmp/$c.rc" 2>/dev/null)): $(grep -v '^gc ' "$tmp/$c.err" | tail -n 1)"
    fi
done | awk '
    BEGIN { printf "%-10s %-18s %10s %10s %12s\n", "collector", "digest", "wall time", "peak RSS", "collections" }
    / FAILED / { print; bad = 1; next }
    {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "%-10s %-18s %8.3f s %6.1f MiB %12s", $1, f["digest"], f["time_s"], f["maxrss_kib"] / 1024, f["gc_no"]
        if (f["errors"] != 0) { printf "   ** %s damaged structures", f["errors"]; bad = 1 }
        printf "\n"
        d[$1] = f["digest"]; n++
    }
    END {
        if (n == 2 && d["bdwgc"] == d["mheap"]) print "The digests match: the same values computed on both collectors."
        else if (n == 2) { print "** The digests differ."; bad = 1 }
        exit bad
    }' || status=1
echo "(wall time and peak RSS as the program measures them; the collections include the"
echo " GC_gcollect() at the end, and for bdwgc the one it runs in GC_INIT())"

echo
total=$(grep -c '^gc ' "$tmp/mheap.err" || true)
echo "mheap's trace (MHEAP_OPTIONS=gctrace=1): cycle, time since start, pause; GC heap before,"
echo "after, and found live; the next cycle's goal; marker threads."
if [ "$total" -gt 13 ]; then
    echo "The first 10 and the last 3 of $total cycles:"
    grep '^gc ' "$tmp/mheap.err" | head -n 10
    echo "..."
    grep '^gc ' "$tmp/mheap.err" | tail -n 3
else
    grep '^gc ' "$tmp/mheap.err" || true
fi
exit $status
