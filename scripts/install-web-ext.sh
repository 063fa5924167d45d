#!/usr/bin/env bash
# Installs web-ext (Mozilla's add-on tool; its `lint` is addons-linter) for tests/clients/test_web_ext_lint.py,
# exactly as locked in scripts/web-ext/package-lock.json, into build/tools/web-ext/ (WEB_EXT_PREFIX
# overrides). Idempotent: with the locked tree already there it only says so. scripts/test.sh runs it
# under CI=true, where the lint tests must run, never skip.
#
# The pin: web-ext 8.3.0 and a lock resolved so that every package in it declares support for Node 18.18+
# (Debian 12's nodejs is 18.20): web-ext 9 and 10 pull in packages that need Node 20 (undici 7, cheerio
# 1.2, open 11). Install scripts are not run (--ignore-scripts): none is needed for `lint`.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${WEB_EXT_PREFIX:-build/tools/web-ext}
LOCK=scripts/web-ext/package-lock.json

need_node_major=18
need_node_minor=18
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    command -v node >/dev/null 2>&1 || apt-get install -y -qq nodejs
    command -v npm >/dev/null 2>&1 || apt-get install -y -qq npm
  else
    echo "install-web-ext: node and npm are needed (apt-get install nodejs npm, as root)" >&2
    exit 1
  fi
fi
version=$(node -p 'process.versions.node')
IFS=. read -r major minor _ <<<"$version"
if [ "$major" -lt "$need_node_major" ] || { [ "$major" -eq "$need_node_major" ] && [ "$minor" -lt "$need_node_minor" ]; }; then
  echo "install-web-ext: node $version is older than $need_node_major.$need_node_minor, which the locked web-ext needs" >&2
  exit 1
fi

if [ -x "$PREFIX/node_modules/.bin/web-ext" ] && cmp -s "$LOCK" "$PREFIX/package-lock.json"; then
  echo "install-web-ext: web-ext $("$PREFIX/node_modules/.bin/web-ext" --version) already in $PREFIX"
  exit 0
fi
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
cp scripts/web-ext/package.json "$LOCK" "$PREFIX/"
npm ci --prefix "$PREFIX" --no-audit --no-fund --ignore-scripts --loglevel=error
echo "install-web-ext: web-ext $("$PREFIX/node_modules/.bin/web-ext" --version) installed in $PREFIX"
