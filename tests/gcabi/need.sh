# need.sh - sourced by the gc_abi, gc_compat and guile scripts:
# have_libgc, install_pkg, need_libgc.  bdwgc (Debian's libgc-dev), w3m
# and guile-3.0 are installed with apt-get when missing; a script that
# still lacks them exits 77 (skipped).

# The directory holding libgc.so.1, in $libgc_dir.
have_libgc() {
    [ -f /usr/include/gc.h ] && [ -f /usr/include/gc/gc_mark.h ] || return 1
    for d in /usr/lib/$("${CC:-cc}" -print-multiarch 2>/dev/null) /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
        if [ -e "$d/libgc.so" ] && [ -e "$d/libgc.so.1" ]; then libgc_dir=$d; return 0; fi
    done
    return 1
}

# install_pkg PACKAGE...
install_pkg() {
    if [ "$(id -u)" = 0 ]; then sudo=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"
    else echo "$* missing, and this is not root and has no sudo"; return 1
    fi
    command -v apt-get >/dev/null 2>&1 || { echo "$* missing, and there is no apt-get"; return 1; }
    echo "installing $* with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
        { $sudo apt-get update -q >/dev/null 2>&1 &&
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; }
}

need_libgc() {
    have_libgc && return 0
    install_pkg libgc-dev || true
    have_libgc && return 0
    echo "skipped: bdwgc (libgc-dev) is not installed and could not be installed"
    exit 77
}
