#!/usr/bin/env bash
# Runs the whole suite. Under CI=true it first installs every system package a test needs (Postfix and
# swaks, PostgreSQL, Chromium, Thunderbird, Roundcube+Dovecot+PHP; Sendmail unpacked into /var/tmp; web-ext
# from npm into build/tools; dh-virtualenv and debhelper for the .deb, which tests/conftest.py starts building in
# the background once the tests are collected): there those tests must run, never skip.
# Elsewhere they skip with a printed reason when their package is missing; run the install scripts yourself (as root) to run them too.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then
  for script in install-system-deps.sh install-postgres.sh install-chromium.sh install-sendmail-lab.sh install-web-ext.sh install-thunderbird.sh install-roundcube.sh install-deb-deps.sh; do
    if [ -f "scripts/$script" ]; then
      bash "scripts/$script"
    fi
  done
fi
exec .venv/bin/python -m pytest "$@"
