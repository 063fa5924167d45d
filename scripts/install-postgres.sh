#!/usr/bin/env bash
# Installs the PostgreSQL server binaries (initdb, pg_ctl) the store's multi-node tests need, if missing.
# Idempotent: does nothing when they are already there. Debian puts them under /usr/lib/postgresql/*/bin.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

if have_pg; then
  echo "install-postgres: PostgreSQL server binaries present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-postgres: need root to apt-get install postgresql" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql
# The Debian package starts a cluster of its own; the tests start their own throwaway clusters instead.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do
    pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
  done
fi
have_pg && echo "install-postgres: installed"
