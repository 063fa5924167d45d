"""The real Postfix as the relay's next hop: a private instance (tests/audit/audit_postfix_lab.py: its own
config directory, queue and port) that relays to an SMTP sink.

Skips (with the reason) without Postfix or root, except under CI=true, where it must run.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator

import orjson
import pytest
from audit_postfix_lab import PostfixInstance, SmtpSink, postfix_lab_dir
from click.testing import CliRunner
from relay_lab import RunningRelay

from typoguard.cli import main

pytestmark = pytest.mark.e2e

MESSAGE = b"From: alice@army.mil\r\nSubject: via postfix\r\n\r\nhello\r\n"


@pytest.fixture
def lab() -> Iterator[tuple[PostfixInstance, SmtpSink]]:
    with postfix_lab_dir("typoguard-relay-") as root:
        sink = SmtpSink().start()
        postfix = PostfixInstance(root, sink.port)
        try:
            postfix.start()
            yield postfix, sink
        finally:
            postfix.stop()
            sink.stop()


def _wait(sink: SmtpSink, n: int, timeout: float = 30.0) -> list[tuple[str, list[str]]]:
    deadline = time.monotonic() + timeout
    while len(sink.received) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return sink.received


def test_postfix_next_hop_refuse_deliver_down_release(
    lab: tuple[PostfixInstance, SmtpSink], start_relay: Callable[..., RunningRelay]
) -> None:
    postfix, sink = lab
    relay = start_relay(next_hop_port=postfix.smtp_port, store=True)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        code, text = s.rcpt("bob@army.ml")
        assert code == 550 and b"Did you mean bob@army.mil?" in text
        assert s.rcpt("bob@navy.mil")[0] == 250
        code, text = s.data(MESSAGE)
        assert code == 250 and b"queued as" in text  # Postfix's own reply, passed back
    got = _wait(sink, 1)
    assert len(got) == 1 and "bob@navy.mil" in got[0][1][0]

    # the next hop goes down: 4xx, and the sender's retry arrives once it is back
    postfix.stop()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail("alice@army.mil")[0] == 451
    postfix._postfix("start")
    deadline = time.monotonic() + 30
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
                assert s.sendmail("alice@army.mil", ["carol@navy.mil"], MESSAGE) == {}
            break
        except smtplib.SMTPSenderRefused:
            assert time.monotonic() < deadline, "Postfix did not come back"
            time.sleep(0.3)
    assert any("carol@navy.mil" in r[1][0] for r in _wait(sink, 2))

    # held by the relay, listed beside the lab Postfix's hold queue, released into Postfix
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        assert s.rcpt("dave@nvy.mil")[0] == 250
        code, text = s.data(MESSAGE)
    assert b"held for review" in text
    qid = text.decode().rsplit(" ", 1)[1]
    args = ["--config", str(relay.config_path), "--postfix-config", str(postfix.conf)]
    listed = CliRunner().invoke(main, ["held", "list", "--format", "json", *args], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert [orjson.loads(line)["queue_id"] for line in listed.stdout.splitlines()] == [qid]
    released = CliRunner().invoke(main, ["held", "release", qid, *args], catch_exceptions=False)
    assert released.exit_code == 0, released.output
    assert any("dave@nvy.mil" in r[1][0] for r in _wait(sink, 3))
