"""A real webmail on loopback for the browser extension's end-to-end test: Roundcube, Dovecot, Postfix.

    lab = RoundcubeLab()
    lab.start()            # private Postfix, Dovecot and PHP's web server on ephemeral 127.0.0.1 ports
    lab.url                # http://127.0.0.1:PORT/  - log in as lab.user / lab.password
    lab.delivered()        # every message the Postfix lab delivered, parsed (email.message.EmailMessage)
    lab.wait_delivered("bob@army.mil")
    lab.stop()             # stops all three (waits for them), removes lab.root

Or by hand (as root): ``python tests/clients/roundcube_lab.py`` starts it, prints the URL and the login, and
stops it on Enter or Ctrl-C.

Everything is Debian's own packages (scripts/install-roundcube.sh: roundcube-core 1.6, roundcube-sqlite3,
php-cli, dovecot-imapd) run as private instances; nothing of the machine's is configured, started or
changed: ``/etc/roundcube``, ``/etc/dovecot`` and ``/etc/postfix`` are only read (Roundcube's shipped
``defaults.inc.php`` and ``mimetypes.php``; Postfix's ``master.cf.proto``). Under ``lab.root`` (a fresh
directory in /var/tmp, made searchable for the ``nobody`` mailbox owner):

* ``roundcube/``: its config directory (``ROUNDCUBE_CONFIG_DIR``: the shipped defaults plus our
  ``config.inc.php``), the SQLite database (created from Roundcube's ``SQL/sqlite.initial.sql``),
  ``logs/`` and ``temp/``. PHP's built-in server (``php -S``, 4 workers) serves Debian's
  ``/var/lib/roundcube/public_html``.
* ``dovecot/``: ``dovecot.conf`` (``dovecot -c``), its own ``base_dir``/``state_dir``, a passwd-file with the
  one user (mails stored as ``nobody`` in ``mail/``), ``dovecot.log``. IMAP only, plaintext on loopback.
* the Postfix lab of tests/e2e/postfix_lab.py, changed to deliver instead of discard: every domain is a
  virtual mailbox domain mapped to one Maildir, ``delivered/sink/``, so the test reads what was sent -
  including mail to ``army.ml`` (nothing leaves the machine either way). No policy service.

Roundcube sends through that Postfix without authentication (``smtp_user`` empty; the lab's Postfix
relays for 127.0.0.0/8), and logs in to Dovecot with the lab's user.
"""

from __future__ import annotations

import email.parser
import email.policy
import grp
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # tests/e2e is no package
from postfix_lab import PostfixLab
from postfix_lab import missing_tools as postfix_missing

ROUNDCUBE_HOME = Path("/var/lib/roundcube")  # Debian's INSTALL_PATH; public_html/ is its web root
ROUNDCUBE_SHARE = Path("/usr/share/roundcube")
ROUNDCUBE_ETC = Path("/etc/roundcube")
DOVECOT = Path("/usr/sbin/dovecot")
MAIL_OWNER = "nobody"  # uid/gid of every mailbox file (Dovecot's and Postfix's); never root


def missing_tools() -> list[str]:
    """What this lab needs and does not find (empty when it can run)."""
    missing = postfix_missing()
    for path in (
        ROUNDCUBE_HOME / "public_html" / "index.php",
        ROUNDCUBE_SHARE / "SQL" / "sqlite.initial.sql",
        ROUNDCUBE_ETC / "defaults.inc.php",
        DOVECOT,
        Path("/usr/lib/dovecot/imap"),
    ):
        if not path.exists():
            missing.append(str(path))
    php = shutil.which("php")
    if php is None:
        missing.append("php")
    elif subprocess.run(
        [php, "-r", 'exit(extension_loaded("pdo_sqlite") ? 0 : 1);'], capture_output=True, check=False
    ).returncode:
        missing.append("php-sqlite3")
    return missing


def free_port() -> int:
    """An ephemeral loopback port, free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _php_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class DeliveringPostfixLab(PostfixLab):
    """The e2e Postfix lab, but every accepted message lands in the Maildir ``<root>/delivered/sink/``."""

    @property
    def mailbox_base(self) -> Path:
        return self.root / "delivered"

    def main_cf(self) -> str:
        text = super().main_cf().replace("virtual_transport = discard:\n", "")
        return text + (
            "# RoundcubeLab: every domain is a virtual mailbox domain, every address one Maildir (the sink)\n"
            "virtual_transport = virtual\n"
            "virtual_mailbox_domains = static:all\n"
            f"virtual_mailbox_base = {self.mailbox_base}\n"
            "virtual_mailbox_maps = static:sink/\n"
            f"virtual_uid_maps = static:{_uid(MAIL_OWNER)}\n"
            f"virtual_gid_maps = static:{_gid(MAIL_OWNER)}\n"
        )

    def start(self) -> None:
        self.mailbox_base.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.mailbox_base, MAIL_OWNER, _group(MAIL_OWNER))
        super().start()


def _uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def _gid(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


def _group(user: str) -> str:
    return grp.getgrgid(_gid(user)).gr_name


class RoundcubeLab:
    """Roundcube (PHP's built-in server) + Dovecot IMAP + a delivering Postfix lab, all under ``root``."""

    user = "alice@army.mil"
    password = "correct horse battery staple"

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="typoguard-roundcube-lab-", dir="/var/tmp"))
        self.http_port = free_port()
        self.imap_port = free_port()
        self.postfix = DeliveringPostfixLab(free_port(), "none", root=self.root / "postfix")
        self.rc_dir = self.root / "roundcube"
        self.dc_dir = self.root / "dovecot"
        self._php: subprocess.Popen[bytes] | None = None
        self._dovecot: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start Postfix, Dovecot, Roundcube; return once the login page answers (on failure: stop all)."""
        self.root.chmod(0o755)  # Postfix and Dovecot work as other users below it
        try:
            self.postfix.start()
            self._start_dovecot()
            self._start_roundcube()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process this lab started (each waited for) and remove ``root``."""
        errors: list[str] = []
        if self._php is not None:
            _terminate(self._php)  # php -S with workers: the whole process group
            self._php = None
        self._stop_dovecot()
        try:
            self.postfix.stop()
        except RuntimeError as exc:
            errors.append(str(exc))
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise RuntimeError("; ".join(errors))

    # ------------------------------------------------------------------ Dovecot
    def _dovecot_conf(self) -> Path:
        return self.dc_dir / "dovecot.conf"

    def _start_dovecot(self) -> None:
        d = self.dc_dir
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        shutil.chown(d / "mail", MAIL_OWNER, _group(MAIL_OWNER))
        uid, gid = _uid(MAIL_OWNER), _gid(MAIL_OWNER)
        (d / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{d / 'mail'}/%u::\n")
        self._dovecot_conf().write_text(
            f"""# Written by tests/clients/roundcube_lab.py: a private loopback-only Dovecot. Do not edit.
base_dir = {d / "run"}
state_dir = {d / "state"}
instance_name = typoguard-lab-{self.imap_port}
log_path = {d / "dovecot.log"}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:{d / "mail"}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d / "users"}
}}
userdb {{
  driver = passwd-file
  args = {d / "users"}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        with (d / "dovecot.out").open("wb") as out:
            self._dovecot = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(self._dovecot_conf())],  # foreground: our child, we stop it
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_for(self.imap_port, b"* OK", "Dovecot", self._dovecot_log)

    def _dovecot_log(self) -> str:
        return _tail(self.dc_dir / "dovecot.out") + _tail(self.dc_dir / "dovecot.log")

    def _stop_dovecot(self) -> None:
        if self._dovecot is None:
            return
        _terminate(self._dovecot)  # SIGTERM to the master: it stops its children and exits
        self._dovecot = None

    # ------------------------------------------------------------------ Roundcube
    def _start_roundcube(self) -> None:
        c = self.rc_dir
        for sub in ("config", "logs", "temp"):
            (c / sub).mkdir(parents=True, exist_ok=True)
        for shipped in ("defaults.inc.php", "mimetypes.php"):
            shutil.copy(ROUNDCUBE_ETC / shipped, c / "config" / shipped)
        db = c / "roundcube.db"
        with sqlite3.connect(db) as conn:  # what Debian's dbconfig would do, in our file
            conn.executescript((ROUNDCUBE_SHARE / "SQL" / "sqlite.initial.sql").read_text())
        conn.close()
        settings = {
            "db_dsnw": f"sqlite:///{db}?mode=0600",
            "imap_host": f"127.0.0.1:{self.imap_port}",
            "smtp_host": f"127.0.0.1:{self.postfix.smtp_port}",
            "smtp_user": "",  # the lab's Postfix relays for loopback, no AUTH offered
            "smtp_pass": "",
            "log_dir": f"{c / 'logs'}/",
            "temp_dir": f"{c / 'temp'}/",
            "des_key": "typoguard-lab-des-key-24",
            "product_name": "Roundcube (typoguard lab)",
            "support_url": "",
            "skin": "elastic",
            "enable_installer": False,
            "enable_spellcheck": False,
            "create_default_folders": True,
            "draft_autosave": 0,  # no background draft saves mid-test
            "refresh_interval": 0,
            "login_rate_limit": 0,
            "plugins": [],
        }
        (c / "config" / "config.inc.php").write_text(
            "<?php\n// Written by tests/clients/roundcube_lab.py. Do not edit.\n$config = [];\n"
            + "".join(f"$config['{k}'] = {_php_value(v)};\n" for k, v in settings.items())
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ROUNDCUBE_", "RCUBE_"))},
            "ROUNDCUBE_CONFIG_DIR": str(c / "config"),
            "PHP_CLI_SERVER_WORKERS": "4",  # the page's scripts and styles load in parallel
        }
        with (c / "logs" / "php-server.log").open("wb") as out:
            self._php = subprocess.Popen(
                [
                    shutil.which("php") or "php",
                    "-S", f"127.0.0.1:{self.http_port}",
                    "-t", str(ROUNDCUBE_HOME / "public_html"),
                ],
                cwd=ROUNDCUBE_HOME / "public_html",
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._php.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url, timeout=5) as page:
                    body = page.read().decode(errors="replace")
                if 'id="rcmloginuser"' in body:
                    return
                raise RuntimeError(f"no login page at {self.url}:\n{body[:2000]}{self.roundcube_log()}")
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Roundcube (php -S) is not answering on {self.url}:\n{self.roundcube_log()}")

    def roundcube_log(self) -> str:
        """The tails of PHP's server log and Roundcube's error log (for failure messages)."""
        return "".join(_tail(self.rc_dir / "logs" / name) for name in ("php-server.log", "errors.log"))

    # ------------------------------------------------------------------ what was sent
    def delivered(self) -> list[EmailMessage]:
        """Every message the Postfix lab delivered so far (to any recipient), by delivery second."""
        sink = self.postfix.mailbox_base / "sink"
        if not sink.exists():
            return []
        # Maildir file names start with the delivery time (seconds)
        files = sorted(
            (p for sub in ("new", "cur") if (sink / sub).is_dir() for p in (sink / sub).iterdir()),
            key=lambda p: p.name,
        )
        return [
            email.parser.BytesParser(policy=email.policy.default).parsebytes(p.read_bytes()) for p in files
        ]

    def delivered_to(self, recipient: str) -> list[EmailMessage]:
        """The delivered messages whose envelope recipient was ``recipient`` (Postfix's Delivered-To)."""
        return [m for m in self.delivered() if m.get("Delivered-To", "").lower() == recipient.lower()]

    def wait_delivered(self, recipient: str, timeout: float = 15) -> EmailMessage:
        """The first message delivered to ``recipient``, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.delivered_to(recipient):
                return found[0]
            time.sleep(0.1)
        raise AssertionError(
            f"nothing delivered to {recipient} within {timeout}s; Postfix log:\n{self.postfix.log_tail()}"
        )

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _wait_for(port: int, greeting: bytes, what: str, log: Callable[[], str]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    if sock.recv(512).startswith(greeting):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{what} is not answering on 127.0.0.1:{port}:\n{log()}")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``proc``'s process group (started with start_new_session), SIGKILL after 10 s; waits."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        proc.wait(timeout=10)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return f"--- {path.name}\n{path.read_text(errors='replace')[-size:]}\n"
    except FileNotFoundError:
        return ""


def _php_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _php_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_php_value(v) for v in value) + "]"
    raise TypeError(f"no PHP literal for {value!r}")


def main() -> int:
    if missing := missing_tools():
        print(f"roundcube_lab: missing: {', '.join(missing)} (scripts/install-roundcube.sh)", file=sys.stderr)
        return 1
    lab = RoundcubeLab()
    lab.start()
    try:
        print(f"Roundcube on {lab.url} - log in as {lab.user} / {lab.password}")
        print(f"delivered mail: {lab.postfix.mailbox_base / 'sink'}; Enter or Ctrl-C stops the lab")
        input()
    except (KeyboardInterrupt, EOFError):
        pass
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
