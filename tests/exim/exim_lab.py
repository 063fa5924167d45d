"""A private Exim on loopback for the tests of examples/exim/: configure, run, send, look.

    lab = EximLab(smtp_port=52526, acl_include=Path("examples/exim/typoguard-rcpt.acl"),
                  macros={"TYPOGUARD_SOCKET": "inet:127.0.0.1:40123"})
    lab.start()                       # writes <lab.root>/exim.conf, runs ``exim4 -C <conf> -bd``
    lab.swaks("alice@army.mil", ["bob@army.ml"])   # -> SwaksResult(exit_code, transcript)
    lab.delivered()                   # the messages in the private maildir, parsed
    lab.queue()                       # ``exim4 -C <conf> -bp``
    lab.stop()                        # SIGTERM to the daemon, waits for it, removes lab.root

One machine, three MTAs: Debian's ``exim4-daemon-light`` conflicts with postfix (installing it REMOVES the
machine's MTA), so it is never installed. scripts/install-exim-unpacked.sh downloads the package
(``apt-get download``), unpacks it with ``dpkg-deb -x`` into /var/tmp/typoguard-exim, installs the only
library the machine lacked (``libidn12``) and adds Debian's system user ``Debian-exim``. Checked on Debian
12's Exim 4.96 as root:

* the binary looks up its compiled-in user ``Debian-exim`` before it reads any config ("exim: failed to
  find uid for user name"): without that user nothing runs, whatever ``exim_user`` says;
* ``-C FILE`` from root keeps root's privileges (Debian's TRUSTED_CONFIG_LIST /etc/exim4/trusted_configs
  only matters for other callers); the file must be owned by root and not writable by others;
* every path is in the config: ``exim_path`` (Exim re-executes itself for deliveries: the compiled-in
  /usr/sbin/exim4 does not exist here), ``spool_directory``, ``log_file_path``, ``-oP`` pid file; the
  spool and log directories belong to ``Debian-exim`` (Exim writes them after dropping root), and every
  parent must be searchable by it;
* ``-C`` and deliveries: Exim re-executes itself to deliver, as the Exim user by then, and an Exim user
  passing ``-C`` loses privilege ("exim user lost privilege for using -C option" in the panic log, the
  Exim spec on ``-C``); ``deliver_drop_privilege = true`` makes that the plan rather than an accident:
  deliveries run as ``Debian-exim`` from the start, which is all a maildir owned by it needs;
* no DNS (``host_lookup`` unset, no ident), no TLS offered (no certificate warning), one listener on
  127.0.0.1:<smtp_port>; ``-bdf`` (foreground daemon, so stop() ends the right process) without ``-q``:
  no queue runner, a frozen message stays frozen;
* every accepted recipient is delivered by an ``accept`` router to one ``appendfile`` maildir under
  ``lab.root`` (``envelope_to_add``: each file names its recipient), as ``Debian-exim`` (Exim never
  delivers as root); nothing can leave the machine;
* ``keep_environment`` is set (empty), or Exim warns "purging the environment" on every run;
* one ``plaintext`` authenticator (AUTH PLAIN) accepts exactly ``LAB_USER``/``LAB_PASSWORD``
  (``server_set_id``: ``$authenticated_id`` is the login), advertised on loopback without TLS;
* non-SMTP mail (``lab.submit(...)``: ``exim -t``/``-bm`` as root, ``-odi``: delivered before it returns)
  goes through ``acl_not_smtp``, which calls the example's ``acl_typoguard_not_smtp``.

The machine's own MTA (postfix) and its files are never touched.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

PREFIX = Path(os.environ.get("TYPOGUARD_EXIM_PREFIX", "/var/tmp/typoguard-exim"))
EXIM = PREFIX / "usr/sbin/exim4"
EXIM_USER = "Debian-exim"  # compiled into Debian's binary (EXIM_USER=ref:Debian-exim)
# The one SMTP AUTH login the lab accepts (PLAIN, on loopback, no TLS: a test fixture, nothing else)
LAB_USER, LAB_PASSWORD = "labuser", "lab-secret"
AUTH_CONDITION = "${if and{{eq{$auth2}{%s}}{eq{$auth3}{%s}}}}" % (LAB_USER, LAB_PASSWORD)  # noqa: UP031


def missing_tools() -> list[str]:
    """What this lab needs and does not find (empty when it can run)."""
    missing = []
    if not EXIM.exists():
        missing.append(f"{EXIM} (scripts/install-exim-unpacked.sh)")
    if shutil.which("swaks") is None:
        missing.append("swaks")
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        missing.append(f"the system user {EXIM_USER} (scripts/install-exim-unpacked.sh)")
    if os.geteuid() != 0:
        missing.append("root (Exim's daemon starts as root)")
    if not missing:
        done = subprocess.run([str(EXIM), "--version"], capture_output=True, text=True, check=False)
        if "Exim version" not in done.stdout:  # e.g. a library missing: "error while loading shared ..."
            missing.append(f"a runnable {EXIM}: {(done.stderr or done.stdout).strip()[:200]}")
    return missing


@dataclass(frozen=True)
class SwaksResult:
    exit_code: int  # 0: accepted and queued; 24: every RCPT refused
    transcript: str

    def reply_to(self, command: str) -> str:
        """The server's whole reply to the client line starting with ``command``, its lines joined:
        Exim sends a long ACL message as several lines ("550-5.1.2 ...", ..., "550 5.1.2 ..."), each
        with the code and enhanced code; the result is "550 5.1.2 " and the texts joined by spaces."""
        lines = self.transcript.splitlines()
        for i, line in enumerate(lines):
            if line.lstrip(" ->~*").startswith(command):
                texts: list[str] = []
                for raw in lines[i + 1 :]:
                    if not raw.startswith(("<-", "<**", "<~")):
                        break
                    reply = raw.lstrip("<-*~ ").rstrip()
                    code, sep, rest = reply[:4], reply[3:4], reply[4:]
                    ext, _, text = (
                        rest.partition(" ") if rest[:1].isdigit() and "." in rest[:6] else ("", "", rest)
                    )
                    texts.append(text)
                    if sep != "-":
                        return f"{code[:3]} {ext + ' ' if ext else ''}{' '.join(t for t in texts if t)}"
        raise AssertionError(f"no {command!r} in swaks transcript:\n{self.transcript}")

    @property
    def queue_id(self) -> str | None:
        for line in self.transcript.splitlines():
            if "id=" in line and line.lstrip("<-~ ").startswith("250"):
                return line.rsplit("id=", 1)[1].split()[0]
        return None


class EximLab:
    """One private Exim daemon under ``root`` (default: a fresh directory under /var/tmp)."""

    def __init__(
        self,
        smtp_port: int,
        acl_include: Path,
        macros: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        self.smtp_port = smtp_port
        self.acl_include = acl_include.resolve()
        self.macros = dict(macros or {})
        self.root = (
            root if root is not None else Path(tempfile.mkdtemp(prefix="typoguard-exim-lab-", dir="/var/tmp"))
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "exim.conf"
        self.spool = self.root / "spool"
        self.logdir = self.root / "log"
        self.maildir = self.root / "mail"
        self.pidfile = self.root / "exim.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        macros = "".join(f"{name} = {value}\n" for name, value in self.macros.items())
        return f"""# Written by tests/exim/exim_lab.py: a private loopback-only Exim. Do not edit.
{macros}
exim_path = {EXIM}
exim_user = {EXIM_USER}
exim_group = {EXIM_USER}
spool_directory = {self.spool}
log_file_path = {self.logdir}/%slog
primary_hostname = exim.lab.test
qualify_domain = lab.test
local_interfaces = 127.0.0.1
daemon_smtp_ports = {self.smtp_port}
keep_environment =
tls_advertise_hosts =
deliver_drop_privilege = true
host_lookup =
rfc1413_hosts =
smtp_banner = $smtp_active_hostname ESMTP Exim $version_number typoguard-exim-lab
acl_smtp_rcpt = acl_check_rcpt
acl_not_smtp = acl_check_not_smtp
auth_advertise_hosts = 127.0.0.1
log_selector = +all -arguments
freeze_tell =

begin acl

.include {self.acl_include}

acl_check_rcpt:
  accept  hosts = :
  require acl = acl_typoguard_rcpt
  accept  hosts = 127.0.0.0/8
  deny    message = relay not permitted

acl_check_not_smtp:
  require acl = acl_typoguard_not_smtp
  accept

begin authenticators

lab_plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = {AUTH_CONDITION}
  server_set_id = $auth2

begin routers

lab_sink:
  driver = accept
  transport = lab_maildir

begin transports

lab_maildir:
  driver = appendfile
  directory = {self.maildir}
  maildir_format
  create_directory
  user = {EXIM_USER}
  group = {EXIM_USER}
  envelope_to_add
  return_path_add
"""

    def exim(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``exim4 -C <conf> ARGS`` (this instance only)."""
        return subprocess.run(
            [str(EXIM), "-C", str(self.conf), *args],
            capture_output=True, text=True, check=check, timeout=timeout,
        )  # fmt: skip

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.root.chmod(0o755)  # the Exim user must reach spool/, log/ and mail/
        for d in (self.spool, self.logdir, self.maildir):
            d.mkdir(exist_ok=True)
            shutil.chown(d, EXIM_USER, EXIM_USER)
        self.conf.write_text(self.config_text())
        self.conf.chmod(0o644)
        checked = self.exim("-bV", check=False)
        if checked.returncode != 0:
            raise RuntimeError(f"exim4 -C {self.conf} -bV failed:\n{checked.stdout}{checked.stderr}")
        # -bdf: the daemon stays in the foreground, so this process is the daemon and stop() can end it
        # (plain -bd forks and the parent exits at once).
        with (self.root / "daemon.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [str(EXIM), "-C", str(self.conf), "-bdf", "-oP", str(self.pidfile)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._wait_for_port()

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1) as sock:
                    if sock.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Exim is not answering on 127.0.0.1:{self.smtp_port}; log:\n{self.log_tail()}")

    def stop(self, *, remove: bool = True) -> None:
        """SIGTERM to the daemon (it exits at once; deliveries in progress finish); remove ``root``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ sending and looking
    def swaks(
        self, sender: str, recipients: list[str], *, login: bool = False, timeout: float = 30
    ) -> SwaksResult:
        """Send over SMTP; ``login``: AUTH PLAIN as ``LAB_USER`` first."""
        auth = ["--auth", "PLAIN", "--auth-user", LAB_USER, "--auth-password", LAB_PASSWORD] if login else []
        proc = subprocess.run(
            [
                shutil.which("swaks") or "swaks",
                "--server", f"127.0.0.1:{self.smtp_port}",
                "--helo", "client.example.org",
                "--from", sender,
                "--to", ",".join(recipients),
                "--header", "Subject: typoguard exim",
                "--timeout", "20",
                *auth,
            ],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return SwaksResult(proc.returncode, proc.stdout + proc.stderr)

    def submit(
        self, sender: str, recipients: list[str], *, mode: str = "-t", timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Non-SMTP mail, as a local program sends it: ``exim -t`` (recipients from the To: header) or
        ``exim -bm RCPT...``; ``-odi`` delivers (or bounces) before the command returns."""
        message = f"From: {sender}\nTo: {', '.join(recipients)}\nSubject: typoguard exim -t\n\nhello\n"
        args = ["-odi", "-f", sender, "-t"] if mode == "-t" else ["-odi", "-f", sender, "-bm", *recipients]
        return subprocess.run(
            [str(EXIM), "-C", str(self.conf), *args],
            input=message, capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip

    def delivered(self) -> list[EmailMessage]:
        """Every message in the lab's maildir (one file per delivered recipient)."""
        out = []
        for path in sorted((self.maildir / "new").glob("*")) if (self.maildir / "new").exists() else []:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def wait_delivered(self, recipient: str, timeout: float = 15) -> EmailMessage:
        """The delivered copy whose ``Envelope-to`` is ``recipient``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.delivered():
                if msg.get("Envelope-to", "").strip() == recipient:
                    return msg
            time.sleep(0.1)
        raise AssertionError(f"{recipient} not delivered within {timeout}s; log tail:\n{self.log_tail()}")

    def queue(self) -> str:
        """``exim -bp``: the queue as an Exim postmaster reads it ("*** frozen ***" marks frozen ones)."""
        return self.exim("-bp", check=False).stdout

    def log_lines(self, which: str = "main") -> list[str]:
        try:
            return (self.logdir / f"{which}log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def log_tail(self, n: int = 20) -> str:
        panic = self.log_lines("panic")
        return "\n".join(self.log_lines()[-n:] + (["paniclog:", *panic[-5:]] if panic else []))
