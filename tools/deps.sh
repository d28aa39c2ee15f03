#!/bin/sh
# Installs what the build and tests need on a fresh Debian machine.
# Does nothing when everything is already there.
need=""
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v c++ >/dev/null 2>&1 || need="$need g++"
command -v make >/dev/null 2>&1 || need="$need make"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
[ -n "$need" ] || exit 0
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing:$need"
$sudo apt-get update -q && $sudo apt-get install -y -q $need
