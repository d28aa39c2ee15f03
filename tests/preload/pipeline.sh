#!/usr/bin/env bash
# pipeline.sh LIBMHEAP WORKDIR
#
# Runs shell pipelines of coreutils (seq, sort, uniq, awk, tr, cut, sha256sum,
# a large multi-threaded sort that spills to temporary files) under
# `bash -c`, once on the system allocator and once with LD_PRELOAD and
# MHEAP_OPTIONS=stats=1 exported to that bash, so that the shell and every
# process of every pipeline run with mheap; the output must be the same.
#
# That mheap served every process is checked with the dynamic linker's own
# record: LD_DEBUG=bindings with LD_DEBUG_OUTPUT writes one file per process,
# and each must show `malloc' bound to libmheap.  (The exit statistics of
# MHEAP_OPTIONS=stats=1 cannot show it for every process: coreutils close
# stderr in an atexit handler, before mheap's destructor prints; so only the
# processes that leave stderr open - bash, awk - print them.)
. "$(dirname "$0")/common.sh"

[ $# -eq 2 ] || fail "usage: $0 LIBMHEAP WORKDIR"
lib=$(abspath "$1") dir=$(abspath "$2")
need_file "$lib" libmheap
mkdir -p "$dir/tmp-sys" "$dir/tmp-mheap" && cd "$dir" || fail "cannot use $dir"

# The pipelines; TMPDIR is set per run.  Keep NCMDS = the number of external
# commands started.
script='
set -e -o pipefail
export LC_ALL=C
echo "== seq | sort -r | uniq | awk | sha256sum"
seq 1 200000 | sort -r | uniq | awk "{ s += \$1; if (\$1 % 7 == 0) n++ } END { print NR, s, n }"
seq 1 200000 | sort -r | uniq | sha256sum
echo "== generated records | sort (large, parallel, spills to disk) | sha256sum"
awk "BEGIN { x = 12345; for (i = 0; i < 300000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf \"%08x,%d,name%d,%s\n\", x, x % 1000, i % 977, substr(\"abcdefghijklmnopqrstuvwxyz\", x % 26 + 1, 5) } }" > records.txt
sort -S 2M --parallel=2 -T "$TMPDIR" records.txt | sha256sum
sort -S 2M --parallel=2 -T "$TMPDIR" -t, -k2,2n -k1,1 records.txt | sed -n 1,3p
sort -u -t, -k3,3 records.txt | wc -l
echo "== tr | cut | sort | uniq -c | sort -rn"
tr "a-z" "A-Z" < records.txt | cut -d, -f3,4 | cut -c1-7 | sort | uniq -c | sort -k1,1rn -k2 | sed -n 1,5p
cut -d, -f2 records.txt | sort -n | uniq -c | sort -rn -k1,1 -k2,2n | sed -n 1,3p | tr -s " "
echo "== word counts"
tr -cs "a-z" "\n" < records.txt | sort | uniq -c | sort -rn | sed -n 1,3p | tr -s " "
'
# seq sort uniq awk | seq sort uniq sha256sum | awk | sort sha256sum | sort sed |
# sort wc | tr cut cut sort uniq sort sed | cut sort uniq sort sed tr |
# tr sort uniq sort sed tr
NCMDS=34

run_capture sys env TMPDIR="$dir/tmp-sys" MHEAP_OPTIONS=stats=1 bash -c "$script"
no_stats sys.err pipeline
rm -rf ld-debug && mkdir ld-debug || fail "cannot make ld-debug"
run_capture mheap env TMPDIR="$dir/tmp-mheap" LD_PRELOAD="$lib" MHEAP_OPTIONS=stats=1 \
    LD_DEBUG=bindings LD_DEBUG_OUTPUT="$dir/ld-debug/p" bash -c "$script"
cat mheap.out
same_output sys.out mheap.out pipeline
expect_stats mheap.err 1 pipeline

# One LD_DEBUG file per process: bash, its subshells and every command.
nproc=0 nbound=0
for f in ld-debug/p.*; do
    [ -e "$f" ] || break
    nproc=$((nproc + 1))
    if grep -q "to [^ ]*libmheap[^ ]* \[[0-9]*\]: normal symbol \`malloc'" "$f"; then
        nbound=$((nbound + 1))
    else
        prog=$(grep -m1 -o 'binding file [^ ]*' "$f" || true)
        echo "process $f ($prog): malloc not bound to libmheap" >&2
    fi
done
[ "$nproc" -gt "$NCMDS" ] ||
    fail "pipeline: LD_DEBUG recorded $nproc processes, expected more than $NCMDS (bash and $NCMDS commands)"
[ "$nbound" -eq "$nproc" ] ||
    fail "pipeline: malloc bound to libmheap in only $nbound of $nproc processes"
echo "ok: pipeline: malloc bound to libmheap in all $nproc processes (LD_DEBUG=bindings)"
