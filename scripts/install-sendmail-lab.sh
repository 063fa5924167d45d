#!/usr/bin/env bash
# Unpacks Debian's Sendmail into a private prefix for the real-Sendmail milter tests (tests/milter/
# sendmail_lab.py), WITHOUT installing the sendmail package: on Debian `apt-get install sendmail` removes
# postfix (issue 18, "One machine, three MTAs"). `apt-get download` + `dpkg-deb -x` only: nothing under
# /etc, /usr or /var/spool is written, no service is started.
#
#   prefix (default /var/tmp/typoguard-sendmail, or $TYPOGUARD_SENDMAIL_PREFIX)
#     usr/libexec/sendmail/sendmail   the MTA binary (needs libwrap0: scripts/install-system-deps.sh)
#     usr/share/sendmail/cf/          the m4 macros the lab builds its sendmail.cf from (needs m4)
#
# Idempotent: an existing unpacked binary is kept. scripts/test.sh runs it under CI=true. Needs network
# access to the Debian mirror (apt-get download runs as any user; as root it warns about the _apt sandbox).
set -euo pipefail

prefix="${TYPOGUARD_SENDMAIL_PREFIX:-/var/tmp/typoguard-sendmail}"
binary="$prefix/usr/libexec/sendmail/sendmail"
if [ -x "$binary" ] && [ -d "$prefix/usr/share/sendmail/cf/m4" ]; then
  echo "install-sendmail-lab: present ($binary)"
  exit 0
fi
if ! command -v m4 >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends m4 >/dev/null  # builds sendmail.cf
fi
for tool in apt-get dpkg-deb m4; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-sendmail-lab: $tool is missing" >&2; exit 1; }
done

work="$(mktemp -d /var/tmp/typoguard-sendmail-dl.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"  # apt-get download as root drops to _apt when it can write here
(cd "$work" && apt-get download -q sendmail-bin sendmail-base sendmail-cf 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
ls "$work"/sendmail-bin_*.deb "$work"/sendmail-base_*.deb "$work"/sendmail-cf_*.deb >/dev/null
mkdir -p "$prefix.new"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$prefix.new"
done
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
chmod 0755 "$prefix"
echo "install-sendmail-lab: unpacked $("$binary" -d0.1 -bt -C /dev/null </dev/null 2>/dev/null | head -1 || true) into $prefix"
