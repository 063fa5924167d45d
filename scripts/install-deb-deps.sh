#!/usr/bin/env bash
# Installs the Debian packages `make deb` needs to build typoguard_<version>_<arch>.deb, when missing.
# Idempotent: with everything present it only prints what it found. The Makefile runs it for `make deb`
# under CI=true, and tests/packaging/test_deb.py runs it under CI=true (where that test must run, never skip).
#
#   dh-virtualenv          debhelper add-on that builds a venv under /opt/typoguard inside the .deb
#                          (docs/adr/0020-debian-package.md); pulls debhelper and python3-virtualenv
#   debhelper, dpkg-dev    dh, dpkg-buildpackage
#   python3-dev, gcc       Python headers and a C compiler: pip compiles the policy codec with mypyc and
#                          builds wheels for dependencies that ship no binary wheel
#   python3-venv           `python3 -m venv` (dh-virtualenv's --builtin-venv)
#   systemd                systemd-analyze, which the test runs on every unit (no running systemd needed)
#   util-linux             runuser/setpriv (the test runs ExecStart as the typoguard user)
#
# Needs root for apt-get.
set -euo pipefail

NEEDS=(
  "dh_virtualenv:dh-virtualenv"
  "dh:debhelper"
  "dpkg-buildpackage:dpkg-dev"
  "python3-config:python3-dev"
  "cc:gcc"
  "systemd-analyze:systemd"
  "setpriv:util-linux"
)

missing=()
for need in "${NEEDS[@]}"; do
  cmd="${need%%:*}"
  pkg="${need#*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
# python3-venv ships no command of its own: ask the interpreter.
if ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=("python3-venv")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deb-deps: all present (dh-virtualenv $(dpkg-query -W -f='${Version}' dh-virtualenv 2>/dev/null || echo '?'), debhelper $(dpkg-query -W -f='${Version}' debhelper 2>/dev/null || echo '?'))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deb-deps: need root to apt-get install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deb-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deb-deps: installed ${missing[*]}"
