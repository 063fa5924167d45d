#!/usr/bin/env bash
# Installs what the webmail end-to-end test (tests/clients/test_webmail_roundcube.py) needs, when missing:
# Debian's Roundcube 1.6 with its SQLite driver, PHP's command-line interpreter (its built-in web server serves
# Roundcube) and Dovecot's IMAP server. The test runs private instances of them (tests/clients/roundcube_lab.py):
# nothing here configures or starts a system service.
#   * no web server: --no-install-recommends keeps apache2 itself out (php's "some SAPI" dependency still brings
#     apache2-bin and libapache2-mod-php: binaries and a module only, no service, no site enabled);
#   * dbconfig-common is told not to set up a database (the lab gives Roundcube its own SQLite file);
#   * a temporary policy-rc.d forbids every service start during the install (Dovecot's postinst would start
#     the machine's dovecot; invoke-rc.d and deb-systemd-invoke both honour it); an existing policy-rc.d is left
#     as it is, and if a dovecot service runs after the install anyway, it is stopped (and disabled on systemd).
# Idempotent: with everything present it only says so. Needs root (or sudo) for apt-get.
# scripts/test.sh runs it under CI=true, where the Roundcube test must run, never skip.
set -euo pipefail

PACKAGES=(roundcube-core roundcube-sqlite3 php-cli php-sqlite3 php-mbstring php-intl php-xml dovecot-imapd)

have_all() {
  [ -f /usr/share/roundcube/index.php ] || return 1
  [ -f /usr/share/roundcube/SQL/sqlite.initial.sql ] || return 1
  command -v php >/dev/null 2>&1 || return 1
  php -r 'exit(extension_loaded("pdo_sqlite") && extension_loaded("mbstring") ? 0 : 1);' || return 1
  [ -x /usr/sbin/dovecot ] || return 1
  [ -f /usr/lib/dovecot/imap ] || return 1
}

if have_all; then
  echo "install-roundcube: present (roundcube $(dpkg-query -W -f '${Version}' roundcube-core 2>/dev/null || echo '?'))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-roundcube: need root (or sudo) for apt-get" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# dbconfig-common: do not configure a database for Roundcube (the test lab uses its own SQLite file).
printf '%s\n' \
  "roundcube-core roundcube/dbconfig-install boolean false" \
  "roundcube-core roundcube/dbconfig-reinstall boolean false" \
  "roundcube-core roundcube/database-type select sqlite3" \
  | $SUDO debconf-set-selections

POLICY=/usr/sbin/policy-rc.d
OURS=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# written by typoguard scripts/install-roundcube.sh for the install only\nexit 101\n' \
    | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 0755 "$POLICY"
  OURS=1
fi
cleanup() { if [ -n "$OURS" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"

# Belt and braces: if a dovecot service runs after all (policy-rc.d already present and permissive), stop it
# and keep it from starting at boot; the lab runs its own dovecot with its own config and base_dir.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
elif [ -f /run/dovecot/master.pid ]; then
  $SUDO /usr/sbin/dovecot stop >/dev/null 2>&1 || true
fi

if have_all; then
  echo "install-roundcube: installed (roundcube $(dpkg-query -W -f '${Version}' roundcube-core 2>/dev/null || echo '?'))"
else
  echo "install-roundcube: packages installed, but something is still missing" >&2
  exit 1
fi
