"""A private, throw-away Postfix instance for the audit's end-to-end test.

It does not touch ``/etc/postfix`` or the shared lab: its own config directory, queue and log live in a
temporary directory, so it can run next to the policy-service lab. Mail goes to an SMTP sink on loopback
(``SmtpSink``) that accepts, bounces (5xx at RCPT) or defers (4xx at RCPT) by recipient local part, so the
log gets real ``status=sent``, ``status=bounced`` and ``status=deferred`` lines from ``postfix/smtp``.
Needs root and the Debian ``postfix`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTFIX = Path("/usr/sbin/postfix")

# The package's pristine master.cf (Debian), else the installed one.
MASTER_CF = next(
    (
        p
        for p in (Path("/usr/share/postfix/master.cf.dist"), Path("/etc/postfix/master.cf.proto"))
        if p.exists()
    ),
    Path("/etc/postfix/master.cf"),
)


def postfix_missing() -> str | None:
    """Why a private Postfix instance cannot run here, or None."""
    if not POSTFIX.exists():
        return "Postfix is not installed (scripts/install-system-deps.sh installs it)"
    if os.geteuid() != 0:
        return "running a Postfix instance needs root"
    return None


@contextlib.contextmanager
def postfix_lab_dir(prefix: str) -> Iterator[Path]:
    """For a lab fixture: skip (with the reason) without Postfix or root, except under CI=true, where the
    test fails instead; else put the sbin directories on PATH and yield a fresh directory under /var/tmp
    (removed afterwards) for the instance and whatever runs next to it."""
    reason = postfix_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        print(f"skipped: {reason}")
        pytest.skip(reason)
    os.environ["PATH"] = f"/usr/sbin:/usr/bin:/sbin:/bin:{os.environ.get('PATH', '')}"
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class SmtpSink:
    """A minimal SMTP server in a thread: RCPT ``bounce*@`` -> 550, ``defer*@`` -> 451, else 250.

    ``refusals`` maps more local-part prefixes to a whole RCPT reply (``{rcpt}`` is the address): e.g. what
    typoguard answers on a later hop."""

    def __init__(self, refusals: dict[str, str] | None = None) -> None:
        self.refusals = refusals or {}
        self.port = free_port()
        self.received: list[tuple[str, list[str]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> SmtpSink:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._session, "127.0.0.1", self.port), self._loop
        )
        self._server = fut.result(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender, rcpts = "", []

        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        try:
            await reply("220 sink.test ESMTP")
            while line := await reader.readline():
                cmd = line.decode("utf-8", "replace").strip()
                verb = cmd[:4].upper()
                if verb in ("EHLO", "HELO"):
                    await reply("250 sink.test")
                elif verb == "MAIL":
                    sender, rcpts = cmd, []
                    await reply("250 2.1.0 Ok")
                elif verb == "RCPT":
                    local = cmd.split("<", 1)[-1].lower()
                    refusal = next((r for k, r in self.refusals.items() if local.startswith(k)), None)
                    if refusal is not None:
                        await reply(refusal.format(rcpt=cmd.split("<", 1)[-1].split(">", 1)[0]))
                    elif local.startswith("bounce"):
                        await reply("550 5.1.1 No such user here")
                    elif local.startswith("defer"):
                        await reply("451 4.3.0 Try again later")
                    else:
                        rcpts.append(cmd)
                        await reply("250 2.1.5 Ok")
                elif verb == "DATA":
                    await reply("354 End data with <CR><LF>.<CR><LF>")
                    while (await reader.readline()) not in (b".\r\n", b".\n", b""):
                        pass
                    self.received.append((sender, rcpts))
                    await reply("250 2.0.0 Ok: queued by sink")
                elif verb == "QUIT":
                    await reply("221 2.0.0 Bye")
                    break
                else:
                    await reply("250 Ok")
        finally:
            writer.close()


class PostfixInstance:
    """``postfix -c <tmp>/conf start`` with everything under ``root``; the log is ``root/maillog``."""

    def __init__(
        self, root: Path, relay_port: int, policy: str | None = None, tables: dict[str, str] | None = None
    ) -> None:
        """``tables``: ``"access"`` (checked first for every recipient, ``check_recipient_access``) and
        ``"transport"`` (``transport_maps``) as texthash tables, when given."""
        self.tables = tables or {}
        self.root = root
        self.conf = root / "conf"
        self.maillog = root / "maillog"
        self.smtp_port = free_port()
        self.relay_port = relay_port
        self.policy = policy  # e.g. "inet:127.0.0.1:10040"; None: no policy service

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.conf), *args], capture_output=True, text=True, check=check, timeout=30
        )

    def start(self) -> PostfixInstance:
        # Postfix's daemons run as user "postfix" and must reach the queue: every parent must be searchable.
        self.root.chmod(0o755)
        self.conf.mkdir(parents=True)
        for sub in ("spool", "data"):
            (self.root / sub).mkdir()
        shutil.chown(self.root / "data", "postfix", "postfix")
        restrictions = "permit_mynetworks, reject"
        if self.policy:
            restrictions = f"check_policy_service {self.policy}, {restrictions}"
        extra = []
        for name, text in self.tables.items():
            (self.conf / name).write_text(text)
        if "access" in self.tables:
            restrictions = f"check_recipient_access texthash:{self.conf / 'access'}, {restrictions}"
        if "transport" in self.tables:
            extra.append(f"transport_maps = texthash:{self.conf / 'transport'}")
        relay = f"smtp:[127.0.0.1]:{self.relay_port}"
        (self.conf / "main.cf").write_text(
            "\n".join(
                [
                    "compatibility_level = 3.6",
                    f"queue_directory = {self.root / 'spool'}",
                    f"data_directory = {self.root / 'data'}",
                    "myhostname = lab.localdomain",
                    "mydomain = localdomain",
                    "inet_interfaces = 127.0.0.1",
                    "inet_protocols = ipv4",
                    "mynetworks = 127.0.0.0/8",
                    "smtpd_peername_lookup = no",
                    "mydestination =",
                    "relay_domains =",
                    "local_recipient_maps =",
                    "alias_maps =",
                    "alias_database =",
                    f"default_transport = {relay}",
                    f"relay_transport = {relay}",
                    f"local_transport = {relay}",
                    "smtp_dns_support_level = disabled",
                    "smtpd_relay_restrictions = permit_mynetworks, reject",
                    f"smtpd_recipient_restrictions = {restrictions}",
                    "smtpd_policy_service_default_action = 451 4.3.5 Policy service unavailable",
                    "smtpd_error_sleep_time = 0",
                    f"maillog_file = {self.maillog}",
                    f"maillog_file_prefixes = {self.root}",
                    *extra,
                    "",
                ]
            )
        )
        master = MASTER_CF.read_text().replace("\nsmtp      inet", "\n#smtp      inet")
        master += f"127.0.0.1:{self.smtp_port} inet n - n - - smtpd\n"
        (self.conf / "master.cf").write_text(master)
        subprocess.run(["postconf", "-c", str(self.conf), "-F", "*/*/chroot = n"], check=True, timeout=30)
        self.maillog.touch()
        self._postfix("start")
        wait_for_port(self.smtp_port)
        return self

    def stop(self) -> None:
        self._postfix("stop", check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._postfix("status", check=False).returncode == 0:
            time.sleep(0.1)
