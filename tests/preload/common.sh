# common.sh - helpers for the LD_PRELOAD tests (sourced by tests/preload/*.sh).
#
# Each test runs a real program twice, on the system allocator and with
# LD_PRELOAD=libmheap.so, and fails unless the outputs are the same and
# mheap really served the preloaded run.

set -u

STATS_LINE='mheap: statistics'

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# usage: need_file PATH WHAT
need_file() {
    [ -e "$1" ] || fail "$2 not found: $1"
}

# usage: progpath NAME -- a program's absolute path: NAME with a slash made
# absolute, else looked up in PATH (empty if not found).
progpath() {
    case "$1" in
    */*) abspath "$1" ;;
    *) command -v "$1" || true ;;
    esac
}

# usage: abspath PATH -- PATH made absolute (the scripts cd to their workdir).
abspath() {
    case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}

# usage: run_capture NAME COMMAND... -- runs COMMAND with stdout in NAME.out
# and stderr in NAME.err; fails (showing stderr) unless it exits with 0.
run_capture() {
    local name=$1 rc
    shift
    "$@" > "$name.out" 2> "$name.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "--- stderr of $name ---" >&2
        tail -40 "$name.err" >&2
        fail "$name: '$*' exited with status $rc"
    fi
}

# usage: same_output EXPECTED ACTUAL WHAT -- fails, showing a diff, unless
# the two files are byte for byte the same (and not empty).
same_output() {
    [ -s "$1" ] || fail "$3: the run without mheap printed nothing ($1)"
    if ! cmp -s "$1" "$2"; then
        echo "--- $3: output differs (< system allocator, > mheap) ---" >&2
        diff "$1" "$2" | head -40 >&2
        fail "$3: output with LD_PRELOAD differs from the output without"
    fi
    echo "ok: $3: same output with and without mheap ($(wc -c < "$1") bytes)"
}

# usage: expect_stats STDERR_FILE MIN WHAT -- the file must hold at least MIN
# copies of the statistics mheap prints at exit with MHEAP_OPTIONS=stats=1,
# one per process that ran with mheap.
expect_stats() {
    local n
    n=$(grep -c -F "$STATS_LINE" "$1" || true)
    if [ "$n" -lt "$2" ]; then
        echo "--- stderr of the run ($1) ---" >&2
        head -40 "$1" >&2
        fail "$3: expected at least $2 processes to print '$STATS_LINE', got $n: LD_PRELOAD did not take effect"
    fi
    echo "ok: $3: $n processes ran with mheap (MHEAP_OPTIONS=stats=1)"
}

# usage: no_stats STDERR_FILE WHAT -- the run without mheap must not print them.
no_stats() {
    if grep -q -F "$STATS_LINE" "$1"; then
        fail "$2: mheap statistics in a run without LD_PRELOAD"
    fi
}

# Clear what could change behaviour between the two runs.
unset LD_PRELOAD MHEAP_OPTIONS
export LC_ALL=C
