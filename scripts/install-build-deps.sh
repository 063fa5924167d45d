#!/usr/bin/env bash
# Makes sure `pip install` can compile the policy codec with mypyc (setup.py): a C compiler and the
# Python headers of the interpreter that builds. Idempotent. The Makefile runs it under CI=true before
# installing (there the compiled codec is tested); elsewhere a missing compiler only means the codec runs
# as plain Python (slower, same behaviour). Needs root for apt-get.
set -euo pipefail
PY="${1:-python3.11}"

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
include="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
if [ ! -f "$include/Python.h" ]; then
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  missing+=("python${ver}-dev")
fi
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-build-deps: all present ($(cc --version | head -1); $include/Python.h)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-build-deps: need root to apt-get install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-build-deps: installed ${missing[*]}"
