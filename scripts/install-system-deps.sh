#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests need, when missing. Idempotent: with everything present
# it only prints what it found. scripts/test.sh runs it under CI=true (where those tests must run, never skip).
#
#   postfix  the real MTA the policy-service tests drive (preseeded "No configuration": the package writes
#            no main.cf and starts nothing; tests/e2e/postfix_lab.py writes its own loopback-only config)
#   swaks    the SMTP client those tests send with
#   gcc, python3.11-dev
#            a C compiler and the Python headers: `pip install` compiles the policy codec with mypyc
#            (setup.py; without them it runs as Python). The Makefile runs this script before installing
#            under CI=true, where tests/protocols/test_compiled_codec.py needs the compiled codec.
#
#   exim     tests/exim runs Debian's Exim 4 from the package files unpacked into a private prefix
#            (scripts/install-exim-unpacked.sh: apt-get download + dpkg-deb -x, its library libidn12 and
#            the Debian-exim system user); never `apt-get install exim4-daemon-light`, which removes postfix
#
# To add a dependency for another area, add "command:package" to NEEDS (and a preseed below if the package
# asks questions). Needs root for apt-get.
set -euo pipefail

NEEDS=(
  "/usr/sbin/postfix:postfix"
  "swaks:swaks"
  "cc:gcc"
  "python3.11-config:python3.11-dev"
  "sudo:sudo"  # held mail as an unprivileged user: sudo + the postfix-held helper (tests/held), visudo
  "node:nodejs"  # the JavaScript detector (clients/detector) run against typoguard check in tests/clients
  # [log] targets (tests/test_logging.py): the logrotate snippet, a private rsyslogd and systemd-journald
  "logrotate:logrotate"
  "rsyslogd:rsyslog"
  "/lib/systemd/systemd-journald:systemd"
)
# Libraries only (checked with dpkg-query): the MTA binaries the milter tests run come from `apt-get download`
# + `dpkg-deb -x` into a private prefix (issue 18: installing sendmail or exim4 would remove postfix).
#   libwrap0  the only library Debian's unpacked sendmail binary (sendmail-bin) lacks here
LIBS=(libwrap0)

missing=()
for need in "${NEEDS[@]}"; do
  cmd="${need%%:*}"
  pkg="${need#*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done

for pkg in "${LIBS[@]}"; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done

# Exim (tests/exim): unpacked, not installed; the helper is idempotent and says what it did.
if [ ! -x "${TYPOGUARD_EXIM_PREFIX:-/var/tmp/typoguard-exim}/usr/sbin/exim4" ] \
  || ! getent passwd Debian-exim >/dev/null || ! ldconfig -p | grep 'libidn\.so\.12 ' >/dev/null; then
  bash "$(dirname "$0")/install-exim-unpacked.sh"
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps: all present (postfix $(postconf -dh mail_version 2>/dev/null || echo '?'), $(swaks --version 2>&1 | head -1))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: need root to apt-get install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix: "No configuration" = no generated main.cf, no questions; the tests write the whole config.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string lab.localdomain" | debconf-set-selections

echo "install-system-deps: installing ${missing[*]}"
apt-get update -qq
# --no-install-recommends keeps it small (swaks needs no Net::DNS/Net::SSLeay for plain SMTP on loopback).
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: installed ${missing[*]}"
