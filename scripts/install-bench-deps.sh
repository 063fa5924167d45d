#!/usr/bin/env bash
# Installs the Debian packages the benchmarks compare against, when missing. Idempotent.
#
#   pflogsumm  the Postfix log summariser benchmarks/bench_audit.py times `typoguard audit` against
#              (without it that comparison is skipped, with the reason printed)
#
# Needs root for apt-get.
set -euo pipefail

if command -v pflogsumm >/dev/null 2>&1; then
  echo "install-bench-deps: pflogsumm present ($(dpkg-query -W -f='${Version}' pflogsumm 2>/dev/null || echo '?'))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-bench-deps: need root to apt-get install pflogsumm" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends pflogsumm >/dev/null
echo "install-bench-deps: installed pflogsumm $(dpkg-query -W -f='${Version}' pflogsumm)"
