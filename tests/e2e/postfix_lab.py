"""A real Postfix on loopback for end-to-end tests of the policy service: configure, run, send, look.

    lab = PostfixLab(smtp_port=52525, policy_service="inet:127.0.0.1:40123")
    lab.start()                       # writes /etc/postfix/{main,master}.cf, starts (or reloads) Postfix
    lab.purge()                       # empty every queue (incl. hold) so assertions start clean
    lab.swaks("alice@army.mil", ["bob@army.ml"])   # -> SwaksResult(exit_code, transcript)
    lab.queue()                       # postqueue -j, parsed
    lab.wait_delivered("bob@army.mil")
    lab.stop()                        # postfix stop, waits for the master to exit, restores /etc/postfix

Also a command line for poking at it by hand (as root):
``python tests/e2e/postfix_lab.py start|stop|status [--smtp-port N] [--policy inet:127.0.0.1:10040]``.

What the lab Postfix is (and the pitfalls each line avoids):
* one smtpd on 127.0.0.1:<smtp_port> (the port-25 listener is commented out), IPv4 only; mynetworks is
  127.0.0.0/8 and any recipient domain is accepted from there - after ``check_policy_service`` said DUNNO;
* nothing is local (empty mydestination, no aliases) and every transport is ``discard:``: accepted mail is
  queued, logged ``status=sent``, dropped; nothing can leave the machine;
* no systemd/syslog in containers: Postfix logs through its own postlogd to ``maillog_file`` (which must be
  under /var, ``maillog_file_prefixes``); chroot is off everywhere (Debian's chroot needs copies of /etc files
  only its init script makes); myhostname is pinned (container host names are not FQDNs);
* ``smtpd_peername_lookup = no`` (no DNS in CI), error sleep off (many rejects in one session are the point);
* main.cf is backdated 2 s after each write: Postfix dozes in 300 ms steps while main.cf is < 1 s old;
* ``postfix stop`` returns before the master has exited: we wait for it;
* there is one /etc/postfix per machine: ``start`` takes an exclusive lock (``LOCK``, held by this process
  until ``stop``), so test runs in parallel (several checkouts, pytest sessions) wait for each other
  instead of rewriting each other's Postfix.

It owns /etc/postfix and empties the queue: lab and CI machines only. The first start keeps the package's
master.cf (and main.cf, if any) and ``stop(restore=True)`` puts them back.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CONF = Path("/etc/postfix")
MAILLOG = Path("/var/log/typoguard-e2e/postfix.log")
SAVED = ".typoguard-e2e-orig"
LOCK = Path("/tmp/typoguard-postfix-lab.lock")
LOCK_WAIT_SECONDS = 900.0
_held_lock: int | None = None  # this process's descriptor holding LOCK


def _lock() -> None:
    """Wait (bounded) until no other process runs a lab; re-entrant within this process."""
    global _held_lock  # noqa: PLW0603 - one lock per process, whatever the number of PostfixLab objects
    if _held_lock is not None:
        return
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(f"another Postfix lab held {LOCK} for {LOCK_WAIT_SECONDS:g}s") from None
            time.sleep(0.2)
    _held_lock = fd


def _unlock() -> None:
    global _held_lock  # noqa: PLW0603
    if _held_lock is not None:
        os.close(_held_lock)  # closing the descriptor releases the flock
        _held_lock = None


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
    def __init__(self, smtp_port: int, policy_service: str, maillog: Path = MAILLOG) -> None:
        self.smtp_port = smtp_port
        self.policy_service = policy_service
        self.maillog = maillog

    # ------------------------------------------------------------------ config
    def main_cf(self) -> str:
        restrictions = (
            "permit_mynetworks, reject"
            if self.policy_service == "none"
            else f"check_policy_service {self.policy_service}, permit_mynetworks, reject"
        )
        return f"""# Written by tests/e2e/postfix_lab.py: loopback-only Postfix lab. Do not edit.
compatibility_level = 3.6
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
virtual_transport = discard:
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
"""

    def _write_config(self) -> None:
        for name in ("main.cf", "master.cf"):
            saved = CONF / (name + SAVED)
            if not saved.exists():
                if (CONF / name).exists():
                    shutil.copy2(CONF / name, saved)
                else:
                    saved.write_text("")  # empty marker: there was none; restore() removes ours
        text = self.main_cf()
        main = CONF / "main.cf"
        if not main.exists() or main.read_text() != text:
            tmp = CONF / "main.cf.tmp"
            tmp.write_text(text)
            tmp.replace(main)
            past = time.time() - 2  # Postfix distrusts a main.cf younger than 1 s (slow commands)
            os.utime(main, (past, past))
        master_orig = (CONF / ("master.cf" + SAVED)).read_text() or (CONF / "master.cf.proto").read_text()
        (CONF / "master.cf").write_text(master_orig)
        _run("postconf", "-M#", "smtp/inet")
        _run(
            "postconf",
            "-M",
            f"127.0.0.1:{self.smtp_port}/inet=127.0.0.1:{self.smtp_port} inet n - n - - smtpd",
        )
        _run("postconf", "-F", "*/*/chroot = n")

    def restore(self) -> None:
        """Put back the package's main.cf/master.cf (or remove ours if there was none)."""
        for name in ("main.cf", "master.cf"):
            saved = CONF / (name + SAVED)
            if not saved.exists():
                continue
            if saved.stat().st_size == 0:
                (CONF / name).unlink(missing_ok=True)
                saved.unlink()
            else:
                saved.replace(CONF / name)

    # ------------------------------------------------------------------ lifecycle
    def running(self) -> bool:
        return _run("postfix", "status", check=False).returncode == 0

    def start(self) -> None:
        _lock()
        self.maillog.parent.mkdir(parents=True, exist_ok=True)
        self.maillog.touch()
        self._write_config()
        _run("postfix", "check")
        if self.running():
            _run("postfix", "reload")
        else:
            _run("postfix", "start")
        self._wait_for_port()

    def set_policy_service(self, policy_service: str) -> None:
        """Point smtpd at another policy endpoint (``postfix reload``: new smtpd processes)."""
        self.policy_service = policy_service
        self.start()

    def _wait_for_port(self) -> None:
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1) as sock:
                    if sock.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"smtpd is not answering on 127.0.0.1:{self.smtp_port}; see {self.maillog}")

    def stop(self, *, restore: bool = True) -> None:
        if self.running():
            _run("postfix", "stop", check=False)
            deadline = time.monotonic() + 10
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)  # "postfix stop" returns before the master has exited
            if self.running():
                raise RuntimeError("Postfix did not stop")
        if restore:
            self.restore()
            _unlock()

    def purge(self) -> None:
        _run("postsuper", "-d", "ALL", check=False)

    # ------------------------------------------------------------------ sending and looking
    def swaks(self, sender: str, recipients: list[str], *, timeout: float = 30) -> SwaksResult:
        proc = subprocess.run(
            [
                _which("swaks") or "swaks",
                "--server", f"127.0.0.1:{self.smtp_port}",
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
        out = _run("postqueue", "-j", check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

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
        raise AssertionError(
            f"{recipient} not delivered within {timeout}s; log tail:\n" + "\n".join(self.log_lines()[-15:])
        )

    def delivered_to(self, queue_id: str) -> set[str]:
        found = set()
        for line in self.log_lines():
            if f" {queue_id}: to=<" in line and "status=sent" in line:
                found.add(line.split("to=<", 1)[1].split(">", 1)[0])
        return found


def main() -> int:
    ap = argparse.ArgumentParser(description="A loopback-only Postfix lab for typoguard's e2e tests.")
    ap.add_argument("command", choices=("start", "stop", "status", "purge"))
    ap.add_argument("--smtp-port", type=int, default=2525)
    ap.add_argument("--policy", default="inet:127.0.0.1:10040", help='policy endpoint, or "none"')
    args = ap.parse_args()
    if missing := missing_tools():
        print(f"postfix_lab: missing: {', '.join(missing)} (scripts/install-system-deps.sh)", file=sys.stderr)
        return 1
    lab = PostfixLab(args.smtp_port, args.policy)
    if args.command == "start":
        lab.start()
        print(f"postfix_lab: SMTP on 127.0.0.1:{args.smtp_port}, policy {args.policy}, log {lab.maillog}")
    elif args.command == "stop":
        lab.stop()
    elif args.command == "purge":
        lab.purge()
    else:
        print("running" if lab.running() else "not running")
        print(_run("postconf", "-n", check=False).stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
