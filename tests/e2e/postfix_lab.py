"""A private Postfix on loopback for end-to-end tests of the policy service: configure, run, send, look.

    lab = PostfixLab(smtp_port=52525, policy_service="inet:127.0.0.1:40123")
    lab.start()                       # writes <lab.root>/conf/{main,master}.cf, ``postfix -c <conf> start``
    lab.purge()                       # empty every queue (incl. hold) so assertions start clean
    lab.swaks("alice@army.mil", ["bob@army.ml"])   # -> SwaksResult(exit_code, transcript)
    lab.queue()                       # postqueue -c <conf> -j, parsed
    lab.wait_delivered("bob@army.mil")
    lab.stop()                        # postfix -c <conf> stop, waits for the master to exit, removes lab.root

Also a command line for poking at it by hand (as root):
``python tests/e2e/postfix_lab.py start|stop|status|purge [--dir DIR] [--smtp-port N] [--policy ...]``
(``--dir`` defaults to /var/tmp/typoguard-postfix-lab; ``postqueue -c DIR/conf -p`` looks at its queue).

It is a private instance, so it runs on a machine that has its own mail server, and several labs run at
once (pytest sessions, checkouts): everything lives under ``lab.root`` (a fresh directory under /var/tmp):
``conf/`` (config_directory: main.cf, master.cf), ``spool/`` (queue_directory), ``data/``
(data_directory), ``maillog``. Every Postfix command gets ``-c <conf>`` (``sendmail -C``). The machine's
``/etc/postfix/main.cf`` and ``master.cf`` are never read or written (a test checks they stay byte-identical
and the machine's instance keeps its status); only the package's read-only ``master.cf.proto`` (our
master.cf's template), ``postfix-files`` and ``dynamicmaps.cf`` (``meta_directory``) are read.

Pitfalls this avoids (checked on Debian's Postfix 3.8 as root):
* ``postfix -c DIR start|stop|reload|status``, ``postqueue -c DIR`` and ``postsuper -c DIR`` need no
  ``/etc/postfix/main.cf`` and no ``alternate_config_directories`` entry when run as root. A NON-root
  ``postqueue -c DIR`` (or ``MAIL_CONFIG=DIR``) is refused unless the default instance's main.cf lists DIR
  in ``alternate_config_directories``: its fatal reads "open file /etc/postfix/main.cf" when there is none;
* Postfix's daemons run as ``postfix``: every parent of the queue must be searchable (mkdtemp makes 0700,
  so ``root`` is chmod 0755) and ``data/`` must be owned by ``postfix`` ("open lock file .../master.lock:
  Permission denied" otherwise); ``postfix start`` creates the queue tree itself (``set-permissions``);
* one smtpd on 127.0.0.1:<smtp_port> (the package's port-25 listener is commented out), IPv4 only;
  mynetworks is 127.0.0.0/8 and any recipient domain is accepted from there - after
  ``check_policy_service`` said DUNNO;
* nothing is local (empty mydestination, no aliases) and every transport is ``discard:``: accepted mail is
  queued, logged ``status=sent``, dropped; nothing can leave the machine. With ``mailbox_domains``, mail to
  those domains is delivered by virtual(8) into one Maildir (``lab.mailbox()`` reads it) instead;
* no systemd/syslog in containers: Postfix logs through its own postlogd to ``maillog_file`` (allowed by
  ``maillog_file_prefixes = <root>``); chroot is off everywhere (Debian's chroot needs copies of /etc files
  only its init script makes); myhostname is pinned (container host names are not FQDNs);
* ``smtpd_peername_lookup = no`` (no DNS in CI), error sleep off (many rejects in one session are the point);
* main.cf is backdated 2 s after each write: Postfix dozes in 300 ms steps while main.cf is < 1 s old;
* ``postfix stop`` returns before the master has exited: we wait for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The package's pristine master.cf (Debian ships it as master.cf.proto / .dist); never /etc/postfix/master.cf.
MASTER_PROTO = next(
    (
        p
        for p in (Path("/etc/postfix/master.cf.proto"), Path("/usr/share/postfix/master.cf.dist"))
        if p.exists()
    ),
    Path("/etc/postfix/master.cf.proto"),
)
DEFAULT_DIR = Path("/var/tmp/typoguard-postfix-lab")  # the command line's lab (start and stop are two runs)
NOBODY = 65534  # owner of the lab's mailboxes (uid and gid; virtual(8) delivers as them)


def missing_tools() -> list[str]:
    """What this lab needs and does not find (empty when it can run)."""
    missing = [
        tool for tool in ("postfix", "postconf", "postqueue", "postsuper", "swaks") if not _which(tool)
    ]
    if os.geteuid() != 0:
        missing.append("root (Postfix's master runs as root)")
    return missing


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin")


def _run(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    exe = _which(cmd[0]) or cmd[0]
    return subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, check=check, timeout=timeout)


@dataclass(frozen=True)
class SwaksResult:
    exit_code: int  # 0: at least one recipient accepted and the message queued; 24: every RCPT refused
    transcript: str

    def reply_to(self, command: str) -> str:
        """The server's reply right after the client line starting with ``command`` (e.g. RCPT TO:<x>)."""
        lines = self.transcript.splitlines()
        for i, line in enumerate(lines):
            if line.lstrip(" ->~*").startswith(command):
                for reply in lines[i + 1 :]:
                    if reply.startswith(("<-", "<**", "<~")):
                        return reply.lstrip("<-*~ ").strip()
        raise AssertionError(f"no {command!r} in swaks transcript:\n{self.transcript}")

    @property
    def queue_id(self) -> str | None:
        for line in self.transcript.splitlines():
            if "queued as " in line:
                return line.rsplit("queued as ", 1)[1].strip()
        return None


class PostfixLab:
    """One private Postfix instance under ``root`` (default: a fresh directory under /var/tmp)."""

    def __init__(
        self,
        smtp_port: int,
        policy_service: str,
        root: Path | None = None,
        *,
        mailbox_domains: tuple[str, ...] = (),
        listeners: dict[int, tuple[str, ...]] | None = None,
    ) -> None:
        self.smtp_port = smtp_port
        # more smtpd listeners: port -> main.cf overrides (``-o name=value``) of that listener only
        self.listeners = dict(listeners or {})
        self.policy_service = policy_service
        self.mailbox_domains = mailbox_domains  # delivered (virtual(8), one Maildir) instead of discarded
        self.root = (
            root
            if root is not None
            else Path(tempfile.mkdtemp(prefix="typoguard-postfix-lab-", dir="/var/tmp"))
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "conf"  # config_directory: pass to postqueue/postsuper -c, sendmail -C
        self.spool = self.root / "spool"  # queue_directory
        self.data = self.root / "data"  # data_directory
        self.maillog = self.root / "maillog"
        self.mailboxes = self.root / "mailboxes"  # virtual_mailbox_base: inbox/ is the one Maildir

    # ------------------------------------------------------------------ config
    def main_cf(self) -> str:
        restrictions = (
            "permit_mynetworks, reject"
            if self.policy_service == "none"
            else f"check_policy_service {self.policy_service}, permit_mynetworks, reject"
        )
        return f"""# Written by tests/e2e/postfix_lab.py: a private loopback-only Postfix. Do not edit.
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
myhostname = lab.localdomain
mydomain = localdomain
myorigin = $myhostname
smtpd_banner = $myhostname ESMTP typoguard-e2e
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
default_transport = discard:
relay_transport = discard:
local_transport = discard:
virtual_transport = {"virtual" if self.mailbox_domains else "discard:"}
biff = no
append_dot_mydomain = no
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = {restrictions}
smtpd_policy_service_default_action = 451 4.3.5 Policy service unavailable
smtpd_policy_service_timeout = 10s
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 1000
maillog_file = {self.maillog}
maillog_file_prefixes = {self.root}
{self._mailbox_cf()}"""

    def _mailbox_cf(self) -> str:
        """``mailbox_domains``: every recipient there lands in the Maildir ``mailboxes/inbox/`` (owned by
        nobody, written by virtual(8)); mail to any other domain is still discarded."""
        if not self.mailbox_domains:
            return ""
        return f"""virtual_mailbox_domains = {", ".join(self.mailbox_domains)}
virtual_mailbox_base = {self.mailboxes}
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{NOBODY}
virtual_gid_maps = static:{NOBODY}
virtual_minimum_uid = 1
"""

    def _write_config(self) -> None:
        self.root.chmod(0o755)  # the postfix user must reach spool/ and data/
        for d in (self.conf, self.spool, self.data):
            d.mkdir(exist_ok=True)
        shutil.chown(self.data, "postfix", "postfix")
        if self.mailbox_domains:
            self.mailboxes.mkdir(exist_ok=True)
            os.chown(self.mailboxes, NOBODY, NOBODY)
        text = self.main_cf()
        main = self.conf / "main.cf"
        if not main.exists() or main.read_text() != text:
            tmp = self.conf / "main.cf.tmp"
            tmp.write_text(text)
            tmp.replace(main)
            past = time.time() - 2  # Postfix distrusts a main.cf younger than 1 s (slow commands)
            os.utime(main, (past, past))
        (self.conf / "master.cf").write_text(MASTER_PROTO.read_text())
        self._postconf("-M#", "smtp/inet")
        self._postconf(
            "-M", f"127.0.0.1:{self.smtp_port}/inet=127.0.0.1:{self.smtp_port} inet n - n - - smtpd"
        )
        for port, overrides in self.listeners.items():
            opts = "".join(f" -o {o}" for o in overrides)
            self._postconf("-M", f"127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd{opts}")
        self._postconf("-F", "*/*/chroot = n")
        self.maillog.touch()

    def _postconf(self, *args: str) -> None:
        _run("postconf", "-c", str(self.conf), *args)

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``postfix -c <conf> ARGS`` (this instance only)."""
        return _run("postfix", "-c", str(self.conf), *args, check=check)

    # ------------------------------------------------------------------ lifecycle
    def running(self) -> bool:
        if not self.conf.joinpath("main.cf").exists():
            return False
        try:
            return self.postfix("status", check=False).returncode == 0
        except subprocess.TimeoutExpired:  # a machine too busy to answer: ask the kernel instead
            return self._master_pid() is not None

    def _master_pid(self) -> int | None:
        """The master's pid if that process is alive (``spool/pid/master.pid``), else None."""
        try:
            pid = int(self.spool.joinpath("pid", "master.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def start(self) -> None:
        """Start this instance, or restart it with the new config when it runs. Not ``postfix reload``:
        after a reload, on a loaded machine, this lab's Postfix once in a few full runs stopped answering for
        minutes (smtpd accepted no client, the maillog stayed silent, ``postfix stop`` took a minute); the
        tests are about typoguard, not Postfix's reload, so a changed config gets a full stop and start."""
        self._write_config()
        self.postfix("check")
        if self.running():
            self.stop(remove=False)
        done = self.postfix("start", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"postfix -c {self.conf} start failed: {done.stderr}\n{self.log_tail()}")
        self._wait_for_port()

    def set_policy_service(self, policy_service: str) -> None:
        """Point smtpd at another policy endpoint (a restart: new smtpd processes)."""
        self.policy_service = policy_service
        self.start()

    def _wait_for_port(self, seconds: float = 15) -> None:
        import socket

        deadline = time.monotonic() + seconds
        seen = "nothing yet"
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2) as sock:
                    banner = sock.recv(512)
                    if banner.startswith(b"220"):
                        return
                    seen = f"banner {banner[:100]!r}"
            except OSError as exc:
                seen = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
        port = f"127.0.0.1:{self.smtp_port}"
        raise RuntimeError(f"smtpd is not answering on {port} (last probe: {seen}); log:\n{self.log_tail()}")

    def stop(self, *, remove: bool = True) -> None:
        """Stop this instance (waits for its master to exit); unless ``remove=False``, delete ``root``.

        Robust for teardown: ``postfix stop`` first; a master still there after 15 s (or a ``postfix``
        command that timed out) gets SIGTERM (Postfix's ``abort``: the master ends its children and exits),
        then SIGKILL. Raises only if the master outlives SIGKILL."""
        try:
            if self.running():
                self.postfix("stop", check=False)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 15
        while self._master_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)  # "postfix stop" returns before the master has exited
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            pid = self._master_pid()
            if pid is None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while self._master_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)
        if self._master_pid() is not None:
            raise RuntimeError(f"Postfix in {self.conf} did not stop")
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def purge(self) -> None:
        _run("postsuper", "-c", str(self.conf), "-d", "ALL", check=False)

    # ------------------------------------------------------------------ sending and looking
    def swaks(
        self, sender: str, recipients: list[str], *, timeout: float = 30, port: int | None = None
    ) -> SwaksResult:
        """One SMTP transaction with swaks, to this lab's smtpd (or to another of its listeners, ``port``)."""
        proc = subprocess.run(
            [
                _which("swaks") or "swaks",
                "--server", f"127.0.0.1:{port or self.smtp_port}",
                "--helo", "client.example.org",
                "--from", sender,
                "--to", ",".join(recipients),
                "--header", "Subject: typoguard e2e",
                "--timeout", "20",
            ],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return SwaksResult(proc.returncode, proc.stdout + proc.stderr)

    def queue(self) -> list[dict[str, object]]:
        out = _run("postqueue", "-c", str(self.conf), "-j", check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def log_tail(self, n: int = 15) -> str:
        return "\n".join(self.log_lines()[-n:])

    def log_lines(self) -> list[str]:
        try:
            return self.maillog.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def wait_delivered(self, recipient: str, queue_id: str | None = None, timeout: float = 15) -> str:
        """The log line saying ``recipient`` was delivered (``status=sent``) - by discard:, our sink."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if (
                    f"to=<{recipient}>" in line
                    and "status=sent" in line
                    and (queue_id is None or f" {queue_id}:" in line)
                ):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"{recipient} not delivered within {timeout}s; log tail:\n{self.log_tail()}")

    def mailbox(self) -> list[bytes]:
        """The messages delivered to ``mailbox_domains`` (the Maildir's ``new/``), oldest first."""
        new = self.mailboxes / "inbox" / "new"
        if not new.is_dir():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime)]

    def delivered_to(self, queue_id: str) -> set[str]:
        found = set()
        for line in self.log_lines():
            if f" {queue_id}: to=<" in line and "status=sent" in line:
                found.add(line.split("to=<", 1)[1].split(">", 1)[0])
        return found


def main() -> int:
    ap = argparse.ArgumentParser(
        description="A private, loopback-only Postfix lab for typoguard's e2e tests."
    )
    ap.add_argument("command", choices=("start", "stop", "status", "purge"))
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the lab's directory (conf/, spool/, ...)")
    ap.add_argument("--smtp-port", type=int, default=2525)
    ap.add_argument("--policy", default="inet:127.0.0.1:10040", help='policy endpoint, or "none"')
    args = ap.parse_args()
    if missing := missing_tools():
        print(f"postfix_lab: missing: {', '.join(missing)} (scripts/install-system-deps.sh)", file=sys.stderr)
        return 1
    lab = PostfixLab(args.smtp_port, args.policy, root=args.dir)
    if args.command == "start":
        lab.start()
        print(
            f"postfix_lab: SMTP on 127.0.0.1:{args.smtp_port}, policy {args.policy}, "
            f"config {lab.conf}, log {lab.maillog}"
        )
    elif args.command == "stop":
        lab.stop()
    elif args.command == "purge":
        lab.purge()
    else:
        print("running" if lab.running() else "not running")
        print(_run("postconf", "-c", str(lab.conf), "-n", check=False).stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
