#!/bin/sh
# symbols.sh LIBMHEAP_SO
#
# The gc_abi_symbols test: every function that Debian's libgc.so.1
# (bdwgc 8.2) exports from bdwgc's public headers, and every public
# variable, is defined by libmheap.so, so that a binary built against
# libgc.so.1 and run with libmheap.so preloaded never calls into libgc's
# own code (its heap was never set up).  Variables must also have
# libgc's sizes (a binary's copy relocation takes that size).
set -eu
lib=$1
here=$(dirname "$0")
. "$here/need.sh"
need_libgc
gc=$libgc_dir/libgc.so.1

# Functions libgc.so.1 exports that no public header declares (they are
# bdwgc's private gc_priv.h's: a program cannot call them through bdwgc's
# headers).
known_internal="
GC_printf GC_err_printf GC_log_printf
GC_incr_bytes_allocd GC_incr_bytes_freed
"

# Public functions libmheap.so does not define yet (none today).  A name
# listed here that libmheap.so defines fails the test, so the list cannot
# go stale.
not_yet="
"

# Public variables (bdwgc's gc.h) and their sizes in libmheap.so.
# Left out: the data of
# bdwgc's own inline allocation and internals (GC_arrays, GC_objfreelist_ptr,
# GC_aobjfreelist_ptr, GC_uobjfreelist_ptr, GC_auobjfreelist_ptr,
# GC_gcj_kind, GC_gcj_debug_kind, GC_debug_header_size, GC_on_abort).
data="
GC_gc_no GC_dont_gc GC_all_interior_pointers GC_no_dls GC_free_space_divisor
GC_max_retries GC_oom_fn GC_non_gc_bytes GC_full_freq GC_dont_expand
GC_time_limit GC_stackbottom GC_use_entire_heap GC_parallel GC_find_leak
GC_dont_precollect GC_on_heap_resize GC_push_other_roots
GC_is_visible_print_proc GC_same_obj_print_proc
GC_is_valid_displacement_print_proc
GC_least_plausible_heap_addr GC_greatest_plausible_heap_addr
GC_finalize_on_demand GC_java_finalization GC_finalizer_notifier
"

listed() { # listed NAME LIST
    case " $(echo $2) " in *" $1 "*) return 0 ;; esac
    return 1
}

nm -D --defined-only "$gc" | awk '$2 == "T" || $2 == "W" || $2 == "i" { print $3 }' | sort -u >gc.funcs
nm -D --defined-only "$lib" | awk '{ print $3 }' | sort -u >mheap.syms
[ -s gc.funcs ] || { echo "FAIL: no functions found in $gc"; exit 1; }
fail=0
checked=0
for f in $(cat gc.funcs); do
    listed "$f" "$known_internal" && continue
    if listed "$f" "$not_yet"; then
        if grep -qx "$f" mheap.syms; then
            echo "FAIL: $f is defined by libmheap.so now: remove it from not_yet in $0"
            fail=1
        fi
        continue
    fi
    checked=$((checked + 1))
    if ! grep -qx "$f" mheap.syms; then
        echo "FAIL: libgc.so.1 exports $f and libmheap.so does not define it"
        fail=1
    fi
done
for f in $not_yet $known_internal; do
    grep -qx "$f" gc.funcs || echo "note: $f is not exported by this libgc.so.1"
done

size_of() { # size_of LIB NAME: the size of an OBJECT symbol, or nothing
    readelf -W --dyn-syms "$1" | awk -v n="$2" '$4 == "OBJECT" && $8 == n { print $3; exit }'
}
nd=0
for v in $data; do
    want=$(size_of "$gc" "$v")
    have=$(size_of "$lib" "$v")
    [ -n "$want" ] || { echo "note: libgc.so.1 has no variable $v"; continue; }
    nd=$((nd + 1))
    if [ -z "$have" ]; then
        echo "FAIL: libgc.so.1 exports the variable $v and libmheap.so does not define it"
        fail=1
    elif [ $((want)) != $((have)) ]; then
        echo "FAIL: $v has $have bytes in libmheap.so, $want in libgc.so.1"
        fail=1
    fi
done
[ $fail = 0 ] || exit 1
echo "libmheap.so defines the $checked public functions and $nd public variables of $gc" \
     "($(echo $not_yet | wc -w) not yet, $(echo $known_internal | wc -w) internal)"
