#!/usr/bin/env bash
# Runs the whole suite. Under CI=true, first installs the system packages the end-to-end tests need
# (they must run there, never skip); elsewhere those tests skip with a printed reason if the packages
# are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ] && [ -x scripts/install-system-deps.sh ]; then
  bash scripts/install-system-deps.sh
fi
exec .venv/bin/python -m pytest "$@"
