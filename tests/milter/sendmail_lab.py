"""A private Sendmail on loopback for the real-Sendmail milter tests: Debian's binary unpacked (never the
installed package: ``apt-get install sendmail`` removes postfix), a sendmail.cf generated with m4, a private
queue, started with ``-bd`` and stopped by the test.

    lab = SendmailLab(smtp_port, milter_port, sink_port, flags="T")   # F=T: typoguard down -> 4xx
    lab.start()                       # writes <root>/sendmail.mc, m4 -> sendmail.cf, sendmail -bd
    lab.swaks("alice@army.mil", ["bob@army.ml"])     # -> SwaksResult (tests/e2e/postfix_lab.py)
    lab.quarantined()                 # sendmail -bp -qQ: {queue id: (reason, recipients)}
    lab.stop()                        # SIGTERM to the daemon (pid file), removes the root

The binary comes from scripts/install-sendmail-lab.sh (``apt-get download sendmail-bin sendmail-base
sendmail-cf`` + ``dpkg-deb -x`` into /var/tmp/typoguard-sendmail; ``TYPOGUARD_SENDMAIL_PREFIX`` moves it);
it needs libwrap0 (scripts/install-system-deps.sh) and m4.

Everything lives under ``lab.root`` (a fresh directory under /var/tmp): sendmail.mc/.cf, ``mqueue/``
(QueueDirectory), the pid, status, alias and service-switch files, ``sendmail.log`` (the daemon's stderr;
there is no syslog in a container). Every sendmail command gets ``-C <root>/sendmail.cf``: the machine's
/etc/mail and /var/spool/mqueue are never read or written.

Pitfalls this avoids (Debian's Sendmail 8.17 as root):
* ``OSTYPE(linux)``, not Debian's ``debian`` ostype (that one includes /etc/mail/sendmail.conf settings);
* sendmail wants a qualified host name before it reads the .cf ("My unqualified host name (vm) unknown;
  sleeping for retry": a minute per command in a container): every command runs in a private UTS
  namespace (``unshare --uts``) named sendmail-lab.localdomain; the machine's host name is untouched;
* no aliases (``ALIAS_FILE`` empty): nothing is delivered locally, and a private aliases.db under the
  world-writable /var/tmp is refused as unsafe;
* no DNS: the service switch names only ``files`` for hosts, ``confDOMAIN_NAME`` pins $j (otherwise
  "My unqualified host name ... unknown; sleeping for retry" costs a minute), ``FEATURE(nocanonify)``,
  ``confDONT_PROBE_INTERFACES``, ``accept_unresolvable_domains``, and SMART_HOST is a bracketed IP;
* everything not local goes to ``esmtp:[127.0.0.1]`` on the sink's port (``ESMTP_MAILER_ARGS``), so
  nothing can leave the machine; relaying is allowed from 127.0.0.1 (``RELAY_DOMAIN``) only;
* the daemon listens on 127.0.0.1:<smtp_port> only (``DAEMON_OPTIONS``; the default MSA on 587 is off:
  ``FEATURE(no_default_msa)``);
* as root, sendmail insists on safe files: root's 0700 queue and a 0644 .cf; the parents are /var/tmp
  (sticky), which it accepts;
* ``sendmail -bd`` returns once the daemon has forked; it writes its pid file and listens a little later:
  the lab waits for the port.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
from postfix_lab import SwaksResult

PREFIX = Path(os.environ.get("TYPOGUARD_SENDMAIL_PREFIX", "/var/tmp/typoguard-sendmail"))
BINARY = PREFIX / "usr/libexec/sendmail/sendmail"
CF_DIR = PREFIX / "usr/share/sendmail/cf"
HOSTNAME = "sendmail-lab.localdomain"
# sendmail wants a qualified host name before it reads its .cf ("My unqualified host name (vm) unknown;
# sleeping for retry": 60 s). Container host names are not; a private UTS namespace gives it one without
# renaming the machine.
_HOSTNAME = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', HOSTNAME]

MC = """\
divert(-1)
Private Sendmail for typoguard's milter tests (tests/milter/sendmail_lab.py).
divert(0)dnl
include(`{cf_dir}/m4/cf.m4')dnl
VERSIONID(`typoguard sendmail lab')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{hostname}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confSERVICE_SWITCH_FILE', `{root}/service.switch')dnl
define(`confHOSTS_FILE', `{root}/hosts')dnl
define(`QUEUE_DIR', `{root}/mqueue')dnl
define(`confPID_FILE', `{root}/sendmail.pid')dnl
define(`STATUS_FILE', `{root}/sendmail.st')dnl
define(`ALIAS_FILE', `')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confTO_QUEUEWARN', `4h')dnl
define(`confDELIVERY_MODE', `background')dnl
define(`confLOG_LEVEL', `{log_level}')dnl
define(`confPRIVACY_FLAGS', `goaway')dnl
define(`confDEF_USER_ID', `{uid}:{gid}')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {sink_port}')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`accept_unqualified_senders')dnl
FEATURE(`no_default_msa')dnl
RELAY_DOMAIN(`127.0.0.1')dnl
DAEMON_OPTIONS(`Port={smtp_port}, Addr=127.0.0.1, Family=inet, Name=MTA')dnl
INPUT_MAIL_FILTER(`typoguard', `S=inet:{milter_port}@127.0.0.1, {flags}T=C:5s;S:10s;R:10s;E:30s')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""


def missing_tools() -> list[str]:
    """What this lab needs and does not find (empty when it can run)."""
    missing = []
    if not BINARY.is_file():
        missing.append(f"{BINARY} (scripts/install-sendmail-lab.sh)")
    if not (CF_DIR / "m4/cf.m4").is_file():
        missing.append(f"{CF_DIR}/m4/cf.m4 (scripts/install-sendmail-lab.sh)")
    for tool in ("m4", "swaks", "unshare"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if os.geteuid() != 0:
        missing.append("root (sendmail -bd binds and switches users as root)")
    return missing


def require_sendmail(what: str) -> None:
    """At a test module's top: skip it (with the reason printed) when the lab cannot run here, except under
    ``CI=true``, where the tests must run: then it is an error naming what is missing."""
    missing = missing_tools()
    if not missing:
        return
    reason = (
        f"needs {', '.join(missing)}; "
        "run scripts/install-system-deps.sh and scripts/install-sendmail-lab.sh as root"
    )
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: {what} must run, but: {reason}")
    pytest.skip(reason, allow_module_level=True)


class SendmailLab:
    def __init__(
        self,
        smtp_port: int,
        milter_port: int,
        sink_port: int,
        *,
        flags: str = "T",
        maillog: bool = False,
        log_level: int = 14,
    ) -> None:
        self.smtp_port = smtp_port
        self.milter_port = milter_port
        self.sink_port = sink_port
        self.flags = flags  # "T": unreachable filter -> tempfail; "R": reject; "": skip (mail flows)
        self.root = Path(tempfile.mkdtemp(prefix="typoguard-sendmail-lab.", dir="/var/tmp"))
        self.cf = self.root / "sendmail.cf"
        self.log = self.root / "sendmail.log"
        # maillog: sendmail's syslog lines, received on a private /dev/log (see SyslogReceiver)
        self.syslog = SyslogReceiver(self.root) if maillog else None
        self.log_level = log_level  # Sendmail's default is 9; 14 also logs every milter action

    def mc(self) -> str:
        flags = f"F={self.flags}, " if self.flags else ""
        nobody = _nobody()
        return MC.format(
            cf_dir=CF_DIR, root=self.root, hostname=HOSTNAME, smtp_port=self.smtp_port,
            milter_port=self.milter_port, sink_port=self.sink_port, flags=flags, uid=nobody[0], gid=nobody[1],
            log_level=self.log_level,
        )  # fmt: skip

    def _write_config(self) -> None:
        os.chmod(self.root, 0o755)
        (self.root / "service.switch").write_text("hosts files\naliases files\n")
        (self.root / "hosts").write_text("127.0.0.1 localhost sendmail-lab.localdomain\n")
        queue = self.root / "mqueue"
        queue.mkdir(mode=0o700, exist_ok=True)
        (self.root / "sendmail.mc").write_text(self.mc())
        m4 = subprocess.run(
            ["m4", str(self.root / "sendmail.mc")], capture_output=True, text=True, check=False, timeout=30
        )
        if m4.returncode != 0:
            raise RuntimeError(f"m4 failed: {m4.stderr}")
        self.cf.write_text(m4.stdout)
        os.chmod(self.cf, 0o644)

    def sendmail(
        self, *args: str, stdin: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix(), str(BINARY), "-C", str(self.cf), *args],
            input=stdin, capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip

    def _prefix(self) -> list[str]:
        """How every sendmail command runs: in a private UTS namespace (the host name), and with ``maillog``
        also a private mount namespace whose /dev/log is the lab's receiver."""
        if self.syslog is None:
            return _HOSTNAME
        return ["unshare", "--uts", "--mount", "sh", "-c", _PRIVATE_DEVLOG, HOSTNAME, str(self.root)]

    def pid(self) -> int | None:
        try:
            return int((self.root / "sendmail.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> None:
        self._write_config()
        with self.log.open("ab") as out:
            subprocess.run(
                [*self._prefix(), str(BINARY), "-C", str(self.cf), "-bd", "-q15s",
                 "-O", f"LogLevel={self.log_level}"],
                stdout=out, stderr=out, check=True, timeout=30,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1) as s:
                    if s.recv(512)[:1].isdigit():  # 220, or 554 when an F=R filter is down
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sendmail did not start on {self.smtp_port}:\n{self.log_tail()}")

    def restart(self) -> None:
        self.stop(remove=False)
        self.start()

    def stop(self, *, remove: bool = True) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            (self.root / "sendmail.pid").unlink(missing_ok=True)
        if self.syslog is not None and remove:
            self.syslog.close()
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def swaks(self, sender: str, recipients: list[str], *, timeout: float = 30) -> SwaksResult:
        proc = subprocess.run(
            [
                "swaks", "--server", f"127.0.0.1:{self.smtp_port}", "--helo", "client.example.org",
                "--from", sender, "--to", ",".join(recipients), "--header", "Subject: typoguard sendmail",
                "--timeout", "20",
            ],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return SwaksResult(proc.returncode, proc.stdout + proc.stderr)

    def quarantined(self) -> dict[str, tuple[str, list[str]]]:
        """``mailq -qQ`` of the private queue: {queue id: (quarantine reason, recipients)}."""
        out = self.sendmail("-bp", "-qQ").stdout
        found: dict[str, tuple[str, list[str]]] = {}
        current = ""
        for line in out.splitlines():
            head = re.match(r"^(\w+)\s+\d+\s+\w{3} \w{3}", line)
            if head:
                current = head.group(1)
                found[current] = ("", [])
            elif current and "QUARANTINE:" in line:
                found[current] = (line.split("QUARANTINE:", 1)[1].strip(), found[current][1])
            elif current and "@" in line:
                found[current][1].append(line.strip().strip("<>"))
        return found

    def queue_files(self) -> list[Path]:
        return sorted((self.root / "mqueue").iterdir())

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


# In a private mount namespace (never the machine's /dev): /dev becomes a tmpfs holding the few device nodes
# sendmail opens (bound from the real /dev, kept at <root>/hostdev) and /dev/log, a link to the lab's socket.
_PRIVATE_DEVLOG = """
set -e
hostname "$0"
root="$1"; shift
mkdir -p "$root/hostdev"
mount --make-rprivate /
mount --rbind /dev "$root/hostdev"
mount -t tmpfs -o mode=755 lab-dev /dev
for n in null zero full random urandom tty console; do
    touch "/dev/$n"; mount --bind "$root/hostdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
ln -s "$root/log.sock" /dev/log
exec "$@"
"""


class SyslogReceiver:
    """A private syslog daemon for the lab: sendmail's ``syslog()`` datagrams (RFC 3164 as glibc sends
    them: ``<22>Dec  7 15:20:35 sm-mta[123]: msg``) on ``<root>/log.sock``, kept as received
    (``datagrams``) and written to ``<root>/maillog`` the way rsyslog's traditional file format does
    (``Dec  7 15:20:35 sendmail-lab sm-mta[123]: msg``), and to ``<root>/maillog-rfc3339`` as its
    high-precision format does (``2026-12-07T15:20:35.123456+00:00 sendmail-lab sm-mta[123]: msg``)."""

    def __init__(self, root: Path) -> None:
        self.path = root / "log.sock"
        self.maillog = root / "maillog"
        self.datagrams: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self._closed = False
        os.chmod(self.path, 0o666)  # sendmail's children may run as another user
        self._out = self.maillog.open("ab")
        self.maillog_rfc3339 = root / "maillog-rfc3339"
        self._precise = self.maillog_rfc3339.open("ab")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams.append(data)
            m = re.match(rb"<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$", data.rstrip(b"\n\0"), re.S)
            if m is None:
                continue
            host = HOSTNAME.split(".", maxsplit=1)[0].encode()
            self._out.write(m[1] + b" " + host + b" " + m[2] + b"\n")
            self._out.flush()
            stamp = datetime.now(UTC).isoformat().encode()  # when it was received, as rsyslog stamps it
            self._precise.write(stamp + b" " + host + b" " + m[2] + b"\n")
            self._precise.flush()

    def lines(self) -> list[bytes]:
        try:
            return self.maillog.read_bytes().splitlines()
        except OSError:
            return []

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self._sock.close()
        self._out.close()
        self._precise.close()


def _nobody() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534
