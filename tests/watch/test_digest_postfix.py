"""The e-mail digest through a real Postfix (``tests/e2e/postfix_lab.py``: a private instance on loopback,
its own config directory and queue, never /etc/postfix): by SMTP to the lab's port and by its ``sendmail
-C <conf>``; the delivered message is text + HTML with the chart; a digest to a look-alike is refused by
typoguard's own check - at configuration time, and at delivery after a reload made a recipient a
look-alike - while this Postfix would have delivered it.

Needs Postfix, swaks and root. Elsewhere these tests skip with the reason; under CI=true they must run.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from dns_server import LocalDnsServer
from watch_lab import lab_zones, write_config

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))

from postfix_lab import PostfixLab, missing_tools

from typoguard.cli import main
from typoguard.config import load_config
from typoguard.guard import Guard
from typoguard.policyd.decider import PolicyDecider
from typoguard.store import open_store
from typoguard.watch.companion import WatchCompanion

pytestmark = pytest.mark.e2e

_MISSING = missing_tools()
if _MISSING:
    _REASON = f"needs {', '.join(_MISSING)}; run scripts/install-system-deps.sh as root"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: the Postfix digest tests must run, but: {_REASON}")
    print(f"\nSKIP tests/watch/test_digest_postfix.py: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

SENDMAIL = next((p for p in ("/usr/sbin/sendmail", "/usr/lib/sendmail") if Path(p).exists()), "sendmail")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab() -> object:
    """One Postfix for the module; army.mil and the look-alikes army.ml, navy.ml are delivered to its
    Maildir (so a digest sent there would be seen), the rest discarded."""
    lab = PostfixLab(_free_port(), "none", mailbox_domains=("army.mil", "army.ml", "navy.ml"))
    lab.start()
    yield lab
    lab.stop()


def _wait_mail(lab: PostfixLab, before: int, n: int, timeout: float = 15) -> list[bytes]:
    """The ``n`` messages delivered to the lab's Maildir after the first ``before`` (then no more)."""
    deadline = time.monotonic() + timeout
    while len(lab.mailbox()) < before + n and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # one more would be late, not missing
    return lab.mailbox()[before:]


def _parts(raw: bytes) -> tuple[EmailMessage, dict[str, str]]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    return msg, parts


def _digest_alerts(lab: PostfixLab, *, smtp_to: str, sendmail_to: str) -> str:
    return f"""
[[alert]]
type = "email"
name = "smtp"
to = [{smtp_to}]
smtp = "127.0.0.1:{lab.smtp_port}"
sender = "typoguard@army.mil"
min_severity = "info"
[[alert]]
type = "email"
name = "sendmail"
to = [{sendmail_to}]
sendmail = "{SENDMAIL} -C {lab.conf}"
sender = "typoguard@army.mil"
min_severity = "info"
retries = 0
"""


def test_the_digest_is_delivered_by_smtp_and_by_sendmail_as_text_and_html(
    lab: PostfixLab, dns_server: LocalDnsServer, tmp_path: Path
) -> None:
    before = len(lab.mailbox())
    alerts = _digest_alerts(lab, smtp_to='"soc@army.mil"', sendmail_to='"ops@army.mil"')
    cfg = write_config(tmp_path, dns_server.port, alerts)
    result = CliRunner().invoke(main, ["watch", "--once", "--no-held", "--json", "--config", str(cfg)])
    assert result.exit_code == 1, result.output  # new events: the first round's three look-alikes
    delivered = _wait_mail(lab, before, 2)
    for raw in delivered:
        msg, parts = _parts(raw)
        assert msg["Subject"] == "typoguard watch: 3 event(s), worst critical"
        assert msg["Auto-Submitted"] == "auto-generated" and msg["From"] == "typoguard@army.mil"
        assert msg.get_content_type() == "multipart/alternative"
        assert set(parts) == {"text/plain", "text/html"}
        assert "army.ml (look-alike of army.mil) accepts mail" in parts["text/plain"]
        html = parts["text/html"]
        assert "<svg" in html and "events by kind" in html and "army.ml" in html  # the chart and table
    assert {_parts(raw)[0]["Delivered-To"] for raw in delivered} == {"soc@army.mil", "ops@army.mil"}


def test_a_lookalike_recipient_is_refused_by_typoguard_not_left_to_the_mta(
    lab: PostfixLab, tmp_path: Path
) -> None:
    zones = lab_zones()
    zones["navy.mil"] = {"NS": ["ns1.navy.mil."], "MX": ["10 mx.navy.mil."]}
    with LocalDnsServer(zones) as dns_server:
        _refused(lab, dns_server, tmp_path)


def _refused(lab: PostfixLab, dns_server: LocalDnsServer, tmp_path: Path) -> None:
    # at configuration time: exit 2, nothing queued
    alerts = _digest_alerts(lab, smtp_to='"soc@army.mil", "soc@army.ml"', sendmail_to='"ops@army.mil"')
    cfg = write_config(tmp_path, dns_server.port, alerts)
    result = CliRunner().invoke(main, ["watch", "--once", "--no-held", "--config", str(cfg)])
    assert result.exit_code == 2 and "soc@army.ml look(s) like a protected domain" in result.output

    # navy.ml is no look-alike until navy.mil is protected too: the reload (SIGHUP of serve) makes it one,
    # and the next digest leaves it out though it is still configured
    alerts = _digest_alerts(lab, smtp_to='"soc@army.mil", "soc@navy.ml"', sendmail_to='"ops@navy.ml"')
    cfg = write_config(tmp_path, dns_server.port, alerts)
    config = load_config(cfg)
    store = open_store(config)
    log = _Log()
    try:
        companion = WatchCompanion(config, Guard.from_config(config), store, log)
        cfg.write_text(
            cfg.read_text().replace('domains = ["army.mil"]', 'domains = ["army.mil", "navy.mil"]')
        )
        companion.reloaded(PolicyDecider.build(load_config(cfg)))
        before = len(lab.mailbox())
        report = companion.watch.round()
        companion.watch.close(20.0)
    finally:
        store.close()
    assert report.ok and report.new_events
    (raw,) = _wait_mail(lab, before, 1)
    assert _parts(raw)[0]["To"] == "soc@army.mil"
    assert not [line for line in lab.log_lines() if "navy.ml" in line]  # never handed to Postfix
    stats = {s["name"]: s for s in companion.watch.dispatcher.stats()}
    assert (stats["smtp"]["sent"], stats["sendmail"]["sent"]) == (len(report.alerts), 0)
    assert stats["sendmail"]["failed"] == len(report.alerts)  # its only recipient: never sent, counted
    assert any("every recipient looks like a protected domain" in why for _, why in log.failures)


class _Log:
    """The service log's ``event`` interface, keeping what the watch reports."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    def event(self, level: str, event: str, **fields: object) -> None:
        if event == "alert_failed":
            self.failures.append((str(fields["alert"]), str(fields["error"])))
