#!/usr/bin/env bash
# Installs Debian's thunderbird for the add-on's end-to-end test (tests/clients/test_thunderbird_e2e.py),
# when missing. Idempotent: with /usr/bin/thunderbird present it only prints the version. The test runs it
# headless with a private profile in a temporary directory; nothing here configures it. scripts/test.sh
# runs this under CI=true, where that test must run, never skip. Needs root for apt-get.
set -euo pipefail

if [ -x /usr/bin/thunderbird ]; then
  echo "install-thunderbird: present ($(/usr/bin/thunderbird --version 2>/dev/null || echo '?'))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-thunderbird: need root (or sudo) for apt-get" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends thunderbird
echo "install-thunderbird: installed ($(/usr/bin/thunderbird --version 2>/dev/null || echo '?'))"
