#!/bin/sh
# run.sh LIBMHEAP SRC_DIR WORK_DIR
#
# The guile test: Debian's Guile 3.0 (libguile links bdwgc's libgc.so.1:
# kinds, mark procedures, typed objects, weak tables, finalizers, threads)
# runs tests/guile/garbage.scm on bdwgc, then with libmheap.so preloaded,
# where mheap's collector replaces bdwgc's: once as it is, once with four
# markers, and once compiled by Guile's compiler under mheap.  Every run
# must exit 0 and print the same standard output, and mheap's collector
# must have run (gctrace's lines on standard error).  guile-3.0 is
# installed with apt-get when missing; exit 77 (skipped) when it cannot
# be had.
set -eu
lib=$1
src=$2
work=$3
mkdir -p "$work"

. "$src/../gcabi/need.sh" # (install_pkg)

guile=""
find_guile() {
    for g in guile-3.0 guile; do
        p=$(command -v "$g" 2>/dev/null) || continue
        "$p" -c '(exit (if (string-prefix? "3." (version)) 0 1))' >/dev/null 2>&1 || continue
        ldd "$p" 2>/dev/null | grep -q 'libgc\.so' || continue
        guile=$p
        return 0
    done
    return 1
}
if ! find_guile; then
    install_pkg guile-3.0 || true
    if ! find_guile; then
        echo "guile skipped: guile-3.0 (built with bdwgc) is not installed and could not be installed"
        exit 77
    fi
fi
echo "guile: $guile"

script=$src/garbage.scm
# (no compiled-file cache is read or written: HOME and XDG_CACHE_HOME point
# into the work directory)
run() { # name env... -- args...: stdout to NAME.out, stderr to NAME.err
    name=$1
    shift
    status=0
    env -u GC_PRINT_STATS -u GC_MARKERS -u GC_DONT_GC -u GC_INITIAL_HEAP_SIZE \
        HOME="$work" XDG_CACHE_HOME="$work/cache" GUILE_AUTO_COMPILE=0 "$@" \
        >"$work/$name.out" 2>"$work/$name.err" || status=$?
    if [ $status != 0 ]; then
        echo "FAIL: $name exited with $status"
        tail -n 20 "$work/$name.err"
        exit 1
    fi
}
same() { # name: its output is bdwgc's
    if ! cmp -s "$work/bdwgc.out" "$work/$1.out"; then
        echo "FAIL: $1 printed other output than bdwgc's run"
        diff "$work/bdwgc.out" "$work/$1.out" | head -n 20
        exit 1
    fi
    echo "$1: the same output as bdwgc's"
}
collected() { # name: mheap's collector ran
    n=$(grep -c '^gc [0-9]* @' "$work/$1.err" || true)
    if [ "$n" -lt 1 ]; then
        echo "FAIL: $1: no collection by mheap (no gctrace line)"
        tail -n 20 "$work/$1.err"
        exit 1
    fi
    echo "$1: $n collections by mheap"
}

run bdwgc "$guile" --no-auto-compile "$script"
run mheap LD_PRELOAD="$lib" MHEAP_OPTIONS=gctrace=1 "$guile" --no-auto-compile "$script"
same mheap
collected mheap
run markers4 LD_PRELOAD="$lib" MHEAP_OPTIONS=gctrace=1,gc_markers=4 "$guile" --no-auto-compile "$script"
same markers4
collected markers4
run compile LD_PRELOAD="$lib" MHEAP_OPTIONS=gctrace=1 "$guile" --no-auto-compile -c \
    "(use-modules (system base compile)) (compile-file \"$script\" #:output-file \"$work/garbage.go\")"
collected compile
run compiled LD_PRELOAD="$lib" MHEAP_OPTIONS=gctrace=1 "$guile" --no-auto-compile -c \
    "(load-compiled \"$work/garbage.go\")"
same compiled
collected compiled
echo "guile: ok"
