#!/usr/bin/env bash
# python.sh LIBMHEAP PYTHON3 WORKLOAD_PY WORKDIR
#
# Runs a Python workload (dicts, strings, json, sorting, an object graph,
# threads) with PYTHONMALLOC=malloc, so that every Python object comes from
# malloc, once on the system allocator and once with LD_PRELOAD=libmheap.so;
# the digests printed must be the same.  The preloaded run must print mheap's
# exit statistics (MHEAP_OPTIONS=stats=1) and the workload itself checks via
# ctypes that mh_stats_get is (or is not) there and counts its memory.
. "$(dirname "$0")/common.sh"

[ $# -eq 4 ] || fail "usage: $0 LIBMHEAP PYTHON3 WORKLOAD_PY WORKDIR"
lib=$(abspath "$1") py=$(progpath "$2") workload=$(abspath "$3") dir=$4
need_file "$lib" libmheap
[ -n "$py" ] && [ -x "$py" ] || fail "python3 not found: $2"
need_file "$workload" workload
mkdir -p "$dir" && cd "$dir" || fail "cannot use $dir"

export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

run_capture sys env MHEAP_EXPECT=0 MHEAP_OPTIONS=stats=1 "$py" "$workload"
no_stats sys.err python

run_capture mheap env LD_PRELOAD="$lib" MHEAP_EXPECT=1 MHEAP_OPTIONS=stats=1 "$py" "$workload"

cat mheap.out
grep -q '^digest: [0-9a-f]\{64\}$' sys.out || fail "python: no digest in the output"
same_output sys.out mheap.out python
expect_stats mheap.err 1 python
grep -F 'python: malloc is mheap' mheap.err
