"""What the real-MTA milter tests share: ``typoguard milter`` as a process, and an SMTP sink that keeps what
the MTA delivers (the warn header is looked for in the delivered message itself).

    milter = MilterProcess(exe, workdir); milter.start(); ...; milter.kill()   # SIGKILL: the MTA's default
    sink = DeliverySink(); sink.start(); sink.wait_for("bob@army.mil"); sink.stop()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
from postfix_lab import PostfixLab

# Postfix's milter timeouts in the lab. Its defaults (30 s connect and command, 300 s content) are longer
# than any test's patience: a milter that accepts and never answers (hung, or another process that took
# its port) made swaks time out before Postfix gave up on the milter. With these, Postfix applies
# milter_default_action within seconds, and the tests wait longer than that (swaks: 20 s per step).
MILTER_TIMEOUTS = {
    "milter_connect_timeout": "5s",
    "milter_command_timeout": "5s",
    "milter_content_timeout": "10s",
}

CONFIG = """
[protect]
domains = ["army.mil", "gmail.com"]
[policy]
internal_senders = ["army.mil", "*.army.mil"]
hold_at = 0.85
[milter]
listen = "127.0.0.1:{port}"
[log]
file = "{log}"
[store]
data_dir = "{data}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MilterProcess:
    """``typoguard milter --config FILE`` on a free loopback port."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.config = workdir / "milter.toml"
        self.log = workdir / "milter.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None
        self._tombstone: socket.socket | None = None

    def start(self) -> None:
        self.config.write_text(CONFIG.format(port=self.port, log=self.log, data=self.workdir / "data"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
        with (self.workdir / "milter.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [self.exe, "milter", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"typoguard milter did not start: {(self.workdir / 'milter.out').read_text()}")

    def suspend(self) -> None:
        """SIGSTOP: a hung milter. The kernel still accepts connections; nothing answers them."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (a stopped one too), then keep the port bound but not listening: connections to it are
        refused at once, and no other process on this shared machine can take the port and leave the MTA
        waiting for a milter that never answers."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self._tombstone is None:
            tomb = socket.socket()
            tomb.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tomb.bind(("127.0.0.1", self.port))
            except OSError:
                tomb.close()
            else:
                self._tombstone = tomb

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)  # a suspended one cannot act on SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._tombstone is not None:
            self._tombstone.close()
            self._tombstone = None


class PostfixMilterLab(PostfixLab):
    """The e2e Postfix lab with the milter in smtpd and in cleanup (non-SMTP mail), delivering to a sink
    (``sink_port``; None: the lab's ``discard:``); short milter timeouts (``MILTER_TIMEOUTS``).
    ``milter_port`` None: no milter (set ``lab.milter`` and ``lab.start()`` again: a restart).

    ``closed_port``: a second smtpd listener with ``-o milter_default_action=tempfail`` (fail closed), so a
    test sees both defaults without changing the config: a restart of this lab once in a few full runs left
    smtpd accepting clients without a greeting (ADR 0025, addendum 3)."""

    def __init__(
        self,
        smtp_port: int,
        milter_port: int | None,
        sink_port: int | None,
        default_action: str = "accept",
        closed_port: int | None = None,
    ) -> None:
        super().__init__(smtp_port, "none")
        self.milter = None if milter_port is None else f"inet:127.0.0.1:{milter_port}"
        self.sink_port = sink_port
        self.default_action = default_action
        self.closed_port = closed_port

    def _write_config(self) -> None:
        super()._write_config()
        if self.closed_port is not None:
            port = self.closed_port
            service = f"127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd"
            self._postconf("-M", f"{service} -o milter_default_action=tempfail")

    def main_cf(self) -> str:  # later lines win in main.cf
        text = super().main_cf()
        if self.milter is not None:
            text += f"smtpd_milters = {self.milter}\nnon_smtpd_milters = {self.milter}\n"
        text += f"milter_default_action = {self.default_action}\nmilter_protocol = 6\n"
        text += "".join(f"{key} = {value}\n" for key, value in MILTER_TIMEOUTS.items())
        if self.sink_port is not None:
            nexthop = f"smtp:[127.0.0.1]:{self.sink_port}"
            text += f"default_transport = {nexthop}\nrelay_transport = {nexthop}\n"
        return text

    def sendmail(self, sender: str, recipient: str, subject: str) -> subprocess.CompletedProcess[str]:
        """Non-SMTP mail: Postfix's ``sendmail`` command (postdrop, pickup, cleanup's milters)."""
        message = f"From: {sender}\nTo: {recipient}\nSubject: {subject}\n\nhello\n"
        return subprocess.run(
            ["/usr/sbin/sendmail", "-C", str(self.conf), "-f", sender, recipient],
            input=message, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip


class _Keep:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append((list(envelope.rcpt_tos), content))
        return "250 2.0.0 kept"


class DeliverySink:
    """An SMTP server on loopback that keeps every message the MTA delivers to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self._keep = _Keep()
        self._controller = Controller(self._keep, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, recipient: str, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rcpts, content in self._keep.messages:
                if recipient in rcpts:
                    return content
            time.sleep(0.05)
        raise AssertionError(f"{recipient} not delivered within {timeout}s")

    def delivered(self, recipient: str) -> bool:
        return any(recipient in rcpts for rcpts, _ in self._keep.messages)


class MilterClient:
    """The MTA side of the milter protocol over a blocking socket, driven by the codec (what Postfix or
    Sendmail send): ``client.rcpt("alice@army.mil", "bob@army.ml")`` -> the reply frames' (command, data)."""

    def __init__(self, port: int, actions: int = 0x1FF) -> None:
        from typoguard.protocols import milter as wire

        self.wire = wire
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(wire.encode_optneg(6, actions, 0x3FF))  # actions: what this MTA lets a milter do
        self.read()

    def read(self) -> tuple[bytes, bytes]:
        head = self._exactly(4)
        body = self._exactly(int.from_bytes(head, "big"))
        return self.wire.split_frame(head + body)

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("milter closed the connection")
            buf += chunk
        return buf

    def rcpt(self, sender: str, recipient: str) -> tuple[bytes, bytes]:
        """MAIL then RCPT; the RCPT's reply (``b"c"`` continue, ``b"y"`` a reply code...)."""
        self.sock.sendall(self.wire.encode_command(b"M", f"<{sender}>\0".encode()))
        self.read()
        self.sock.sendall(self.wire.encode_command(b"R", f"<{recipient}>\0".encode()))
        reply = self.read()
        self.sock.sendall(self.wire.encode_command(b"A"))
        return reply

    def close(self) -> None:
        self.sock.sendall(self.wire.encode_command(b"Q"))
        self.sock.close()
