#!/bin/sh
# The mheap demo: the same Python workload on the system allocator and on
# mheap (through the `mheap run` launcher), with each run's time, peak RSS
# and result digest, then mheap's statistics for its run.
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
