#!/usr/bin/env bash
# Unpacks Debian's Exim into a private prefix for tests/exim, WITHOUT installing it as a package:
# exim4-daemon-light conflicts with mail-transport-agent, so `apt-get install` would REMOVE the machine's
# postfix. Instead (issue 18, "One machine, three MTAs"):
#
#   1. apt-get download exim4-daemon-light    (the binary, /usr/sbin/exim4; nothing else from the package)
#   2. dpkg-deb -x into $PREFIX               (default /var/tmp/typoguard-exim; tests/exim/exim_lab.py
#                                              reads TYPOGUARD_EXIM_PREFIX too)
#   3. apt-get install the libraries it links to and the machine lacks (on Debian 12 only libidn12;
#      checked with ldd: anything still "not found" is an error)
#   4. the system user Debian-exim: the binary looks its compiled-in user up before reading any config
#      ("exim: failed to find uid for user name"), as Debian's exim4-base postinst creates it
#
# Idempotent; needs root. Nothing in /etc/exim4 is written, no service is started, postfix is untouched.
set -euo pipefail

PREFIX="${TYPOGUARD_EXIM_PREFIX:-/var/tmp/typoguard-exim}"
EXIM="$PREFIX/usr/sbin/exim4"
LIBS=(libidn12)

if [ "$(id -u)" != 0 ]; then
  echo "install-exim-unpacked: needs root (apt-get, useradd)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

missing_libs=()
for lib in "${LIBS[@]}"; do
  dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || missing_libs+=("$lib")
done
if [ "${#missing_libs[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_libs[@]}" >/dev/null
  echo "install-exim-unpacked: installed ${missing_libs[*]}"
fi

if [ ! -x "$EXIM" ]; then
  work="$(mktemp -d /var/tmp/typoguard-exim-dl.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  # apt's sandbox user _apt must be able to write where it downloads
  chown _apt "$work" 2>/dev/null || true
  (cd "$work" && apt-get download -q exim4-daemon-light >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download -q exim4-daemon-light >/dev/null; })
  mkdir -p "$PREFIX"
  dpkg-deb -x "$work"/exim4-daemon-light_*.deb "$PREFIX"
  echo "install-exim-unpacked: unpacked $(basename "$work"/exim4-daemon-light_*.deb) into $PREFIX"
fi

# grep without -q reads all of ldd's output: under pipefail, -q can end the pipe early and fail it (SIGPIPE)
if ldd "$EXIM" | grep "not found" >/dev/null; then
  echo "install-exim-unpacked: $EXIM still lacks libraries:" >&2
  ldd "$EXIM" | grep "not found" >&2
  exit 1
fi

if ! getent passwd Debian-exim >/dev/null; then
  # what Debian's exim4-base postinst does (adduser --system --group Debian-exim), without a home
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim
  echo "install-exim-unpacked: added the system user Debian-exim"
fi

# sed -n 1p reads to the end (no SIGPIPE for exim); exim's own exit status is not this script's
version="$("$EXIM" -bV 2>/dev/null | sed -n 1p || true)"
echo "install-exim-unpacked: $EXIM: $version"
