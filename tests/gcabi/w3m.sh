#!/bin/sh
# w3m.sh LIBMHEAP_SO MHEAP_LAUNCHER SRC_DIR WORK_DIR
#
# The gc_abi_w3m test: Debian's w3m, a program linked against libgc1
# (bdwgc), renders a generated HTML page of a few MB (`w3m -dump -T
# text/html`) as it is, with libmheap.so preloaded, and under `mheap run
# --gc`: the three renderings must be the same, byte for byte, and
# mheap's collector must have run several cycles (its gctrace lines).
# w3m is installed with apt-get when missing; exit 77 (skipped) when it
# cannot be had.
set -eu
lib=$1
launcher=$2
src=$3
work=$4
. "$src/need.sh"
if ! command -v w3m >/dev/null 2>&1; then
    install_pkg w3m || true
    command -v w3m >/dev/null 2>&1 || { echo "skipped: w3m is not installed and could not be installed"; exit 77; }
fi
w3m=$(command -v w3m)
if ! ldd "$w3m" 2>/dev/null | grep -q 'libgc\.so'; then
    echo "skipped: this w3m is not linked against libgc"
    exit 77
fi
mkdir -p "$work"
cd "$work"
for v in $(env | sed -n 's/^\(GC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset MHEAP_OPTIONS
export HOME="$work" LANG=C LC_ALL=C

# Sections of text, links, emphasis, and now and then a table and a list.
awk 'BEGIN {
    srand(1)
    print "<html><head><title>generated</title></head><body>"
    for (i = 0; i < 8000; i++) {
        line = "<h2 id=\"s" i "\">Section " i "</h2><p>"
        for (w = 0; w < 20; w++) line = line " word" int(rand() * 1000)
        print line " <a href=\"#s" i "\">link " i "</a> <b>bold</b> <i>italic</i></p>"
        if (i % 50 == 0) {
            printf "<table border=1>"
            for (r = 0; r < 10; r++) {
                printf "<tr>"
                for (c = 0; c < 6; c++) printf "<td>cell %d.%d</td>", r, c
                printf "</tr>"
            }
            printf "</table><ul>"
            for (k = 0; k < 10; k++) printf "<li>item %d of %d</li>", k, i
            print "</ul>"
        }
    }
    print "</body></html>"
}' >page.html

fail=0
"$w3m" -dump -T text/html <page.html >bdwgc.txt 2>bdwgc.err || { echo "FAIL: w3m exited with $?"; exit 1; }
[ -s bdwgc.txt ] || { echo "FAIL: w3m rendered nothing"; exit 1; }
st=0
MHEAP_OPTIONS=gctrace=1 LD_PRELOAD=$lib "$w3m" -dump -T text/html <page.html >mheap.txt 2>mheap.err || st=$?
[ $st = 0 ] || { echo "FAIL: w3m with libmheap.so preloaded exited with $st"; tail -n 3 mheap.err; fail=1; }
cmp -s bdwgc.txt mheap.txt || { echo "FAIL: the renderings differ (bdwgc -, mheap +)"; diff -u bdwgc.txt mheap.txt | head -n 20; fail=1; }
n=$(grep -c '^gc [0-9]* @' mheap.err || true)
[ "$n" -ge 3 ] || { echo "FAIL: mheap's collector ran $n cycles (gctrace), not several"; fail=1; }
st=0
"$launcher" run --gc --stats --options gctrace=1 -- "$w3m" -dump -T text/html <page.html >run.txt 2>run.err || st=$?
[ $st = 0 ] || { echo "FAIL: mheap run --gc -- w3m exited with $st"; tail -n 3 run.err; fail=1; }
cmp -s bdwgc.txt run.txt || { echo "FAIL: the rendering under mheap run --gc differs"; diff -u bdwgc.txt run.txt | head -n 20; fail=1; }
grep -q 'not linked against libgc' run.err && { echo "FAIL: mheap run --gc took w3m for not linked against libgc"; fail=1; }
grep -q '^  gc_cycles ' run.err || { echo "FAIL: mheap run --gc --stats printed no collector statistics"; fail=1; }
[ $fail = 0 ] || exit 1
echo "w3m: the same $(wc -l <bdwgc.txt) lines with bdwgc, with libmheap.so preloaded ($n collections) and under mheap run --gc"
