#!/bin/sh
# vs-libc.sh BUILD_DIR - run every case of the misuse suite (tests/misuse)
# on the C library's own allocator (no preload) and print, per case, what
# it did beside what the suite expects of mheap's builds
# (tests/misuse/expect.txt), then a summary.  A comparison for the
# documents, not a test: the C library's checks are its own.
#   caught   killed by SIGABRT after a message on stderr
#   signal   killed by another signal (SIGSEGV, ...)
#   ok       the program went on and exited 0
#   setup    the case cannot run on this allocator (no free_sized)
set -eu
build=${1:-build}
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for prog in misuse_cases misuse_cases_cxx; do
    for c in $("$build/tests/$prog" --list); do
        msg=$( (ulimit -c 0; MISUSE_ANY_ALLOCATOR=1 timeout 20 "$build/tests/$prog" "$c" 2>&1 >/dev/null &&
            echo rc=0 || echo "rc=$?") 2>/dev/null)
        rc=${msg##*rc=}
        first=$(printf '%s\n' "$msg" | grep -v '^rc=' | head -n 1 | cut -c1-48)
        case $rc in
            0) what=ok ;;
            2) what=setup ;;
            134) if [ -n "$first" ]; then what="caught: $first"; else what=signal:SIGABRT; fi ;;
            *) what=signal:$((rc - 128)) ;;
        esac
        printf '%s|%s\n' "$c" "$what" >>"$out"
    done
done
awk -F'|' -v OFS=' | ' '
    NR == FNR { if ($0 ~ /^[a-z]/) { gsub(/ /, "", $1); d[$1] = $3; s[$1] = $4 } next }
    {
        def = d[$1]; gsub(/^ +| +$/, "", def); sec = s[$1]; gsub(/^ +| +$/, "", sec)
        printf "%-30s %-48s %-28s %s\n", $1, $2, def, sec
        lc = $2 ~ /^caught/; dn = def ~ /^named/; sn = sec ~ /^named/
        n++; nl += lc; nd += dn; ns += sn
        if (lc && !dn) ld++
        if (lc && !sn) ls++
    }
    END {
        printf "\n%d cases: the C library caught %d; the default build names %d, the secure build %d\n", n, nl, nd, ns
        printf "caught by the C library but not named by the default build: %d; by the secure build: %d\n", ld, ls
    }' "$src/tests/misuse/expect.txt" "$out"
