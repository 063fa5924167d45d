#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser tests (tests/web/test_browser.py), when missing.
# Idempotent: with /usr/bin/chromium present it only prints the version. Playwright drives this binary
# (executable_path); never run `playwright install` (no browser downloads). scripts/test.sh must run this
# under CI=true, where the browser tests must run, never skip. Needs root for apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: present ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-chromium: need root (or sudo) for apt-get" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "install-chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
