"""End to end with a real Postfix as the *sending* server: mail to bob@army.ml comes back to its sender.

A private Postfix instance (``tests/audit/audit_postfix_lab.py``: own config, queue and log in a temporary
directory, not /etc/postfix) relays every message to ``typoguard sink`` (the real command, a separate
process) on loopback. The sink refuses ``bob@army.ml`` at RCPT; Postfix bounces the message to the
sender, and the sender's domain is routed (``transport_maps``) to a capturing SMTP server, so the test reads
the delivery status notification the sender would get. Then the sink's database and logs are scanned for
the local part ``bob``: it must not be there.

Skips (with the reason) without Postfix or root, except under CI=true, where it must run.
"""

from __future__ import annotations

import signal
import smtplib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from audit_postfix_lab import PostfixInstance, free_port, postfix_lab_dir, wait_for_port

pytestmark = pytest.mark.e2e

SENDER = "alice@sender.example"


class _Capture:
    """aiosmtpd handler keeping every message it is given (the sender's mailbox, in effect)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 2.0.0 Ok: captured"


@pytest.fixture
def lab(typoguard_exe: str) -> Iterator[dict[str, Any]]:
    with postfix_lab_dir("typoguard-sink-") as root:
        yield from _lab(typoguard_exe, root)


def _lab(typoguard_exe: str, root: Path) -> Iterator[dict[str, Any]]:
    sink_port = free_port()
    (root / "typoguard.toml").write_text(
        '[protect]\ndomains = ["army.mil", "navy.mil", "gmail.com"]\n'
        f'[store]\ndata_dir = "{root / "sinkdata"}"\n'
        f'[log]\nfile = "{root / "sink.log"}"\n'
        f'[sink]\nlisten = ["127.0.0.1:{sink_port}"]\nflush_interval = 0.2\n'
    )
    capture = _Capture()
    controller = Controller(capture, hostname="127.0.0.1", port=free_port())
    controller.start()
    with (root / "sink.out").open("wb") as out:
        sink = subprocess.Popen(
            [typoguard_exe, "sink", "--config", str(root / "typoguard.toml")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    postfix = PostfixInstance(root, sink_port)
    try:
        wait_for_port(sink_port, timeout=30)
        postfix.start()
        # The sender's domain is delivered to the capturing server, so its bounce can be read.
        transport = f"inline:{{sender.example=smtp:[127.0.0.1]:{controller.port}}}"
        subprocess.run(
            ["postconf", "-c", str(postfix.conf), "-e", f"transport_maps = {transport}"], check=True
        )
        subprocess.run(["postfix", "-c", str(postfix.conf), "reload"], check=True, capture_output=True)
        yield {"postfix": postfix, "sink": sink, "capture": capture, "root": root}
    finally:
        postfix.stop()
        if sink.poll() is None:
            sink.terminate()
            sink.wait(10)
        controller.stop()


def test_sender_gets_a_bounce_naming_the_intended_domain_and_the_sink_keeps_no_address(
    lab: dict[str, Any],
) -> None:
    postfix: PostfixInstance = lab["postfix"]
    capture: _Capture = lab["capture"]
    root: Path = lab["root"]
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=10) as client:
        client.ehlo("client.example.org")
        refused = client.sendmail(
            SENDER,
            ["bob@army.ml"],
            b"From: alice@sender.example\r\nSubject: orders\r\n\r\nTOP SECRET body\r\n",
        )
    assert refused == {}  # Postfix, the sending server, accepted it: the sink is the next hop

    deadline = time.monotonic() + 30
    while not capture.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert capture.messages, "no bounce reached the sender; maillog:\n" + postfix.maillog.read_text()[-3000:]
    mail_from, rcpts, dsn = capture.messages[0]
    assert mail_from in ("", "<>")  # a bounce has the null sender
    assert rcpts == [SENDER]
    text = dsn.decode("utf-8", "replace")
    assert "multipart/report" in text and "report-type=delivery-status" in text
    assert "army.mil" in text and "bob@army.mil" in text
    assert "550 5.1.2" in text
    log = postfix.maillog.read_text()
    assert "status=bounced" in log and "you probably meant <bob@army.mil>" in log

    sink: subprocess.Popen[bytes] = lab["sink"]
    sink.send_signal(signal.SIGTERM)  # drains: the last counts are written
    assert sink.wait(15) == 0
    db = root / "sinkdata" / "sink.db"
    con = sqlite3.connect(db)
    try:
        counts = con.execute(
            "SELECT lookalike, intended, sender_domain, count FROM tg_sink_counts"
        ).fetchall()
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    assert counts == [("army.ml", "army.mil", "sender.example", 1)]
    for where, content in (
        ("database", dump),
        ("database file", db.read_bytes().decode("latin-1")),
        ("sink log", (root / "sink.log").read_text()),
        ("sink output", (root / "sink.out").read_text()),
    ):
        lowered = content.lower()
        assert "bob" not in lowered, where
        assert "alice" not in lowered and "top secret" not in lowered, where
