"""Outcomes a real Postfix logs that the audit must name right (issue 15 item 14): a ``discard:`` transport
accepted the mail (dropped, not stopped); typoguard's refusals in its new wording, in a site's own template
and in a bounce from a later hop are "stopped by typoguard"; the queue id and the Message-ID are reported
apart. One private Postfix instance (Debian package) with typoguard's policy service in front of it, a
transport table, an access table, and a next hop that answers some recipients as typoguard would.
Skips (with the reason) without Postfix or root, except under CI=true, where it must run.
"""

from __future__ import annotations

import csv
import io
import re
import smtplib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_postfix_lab import PostfixInstance, SmtpSink, free_port, postfix_lab_dir, wait_for_port
from test_audit_real_postfix import _wait_for

pytestmark = pytest.mark.e2e

PROTECT = ["--protect", "army.mil", "--protect", "navy.mil", "--protect", "gmail.com"]
# typoguard's policy reply in the plain wording that replaces "looks like" (issue 15 item 13).
NEW_WORDING = "5.1.2 Not sent: {domain} is not {intended}. Did you mean {suggestion}? Nothing was delivered."
# What typoguard's sink answers on a later hop (its default template).
LATER_HOP = (
    "550 5.1.2 <{rcpt}>: gmial.com is not gmail.com; you probably meant <typo-1@gmail.com>."
    " Check the address and send again"
)


def _message(message_id: str) -> bytes:
    return f"Message-ID: {message_id}\r\nSubject: audit test\r\n\r\nhello\r\n".encode()


@pytest.fixture(scope="module")
def maillog(typoguard_exe: str) -> Iterator[Path]:
    """The log of a real Postfix that handled one mail of each kind (see the module docstring)."""
    with postfix_lab_dir("typoguard-audit-outcomes-") as root:
        policy_port = free_port()
        (root / "typoguard.toml").write_text(
            '[protect]\ndomains = ["army.mil", "navy.mil", "gmail.com"]\n'
            '[policy]\nmode = "enforce"\ninternal_senders = ["guarded.example"]\n'
            f'[policyd]\nlisten = "127.0.0.1:{policy_port}"\nreject_template = "{NEW_WORDING}"\n'
            f'[store]\ndata_dir = "{root / "typoguard-data"}"\n'
        )
        sink = SmtpSink({"typo-": LATER_HOP}).start()
        with (root / "policyd.log").open("wb") as policy_log:
            policy = subprocess.Popen(
                [typoguard_exe, "serve", "--config", str(root / "typoguard.toml")],
                stdout=policy_log,
                stderr=subprocess.STDOUT,
            )
        tables = {
            "transport": "navy.ml discard:\n",  # the site drops mail to this look-alike
            # a site's own template, without typoguard's words: only its 5.1.2 tells
            "access": "armymil.com 550 5.1.2 Please check this address\n",
        }
        postfix = PostfixInstance(root, sink.port, policy=f"inet:127.0.0.1:{policy_port}", tables=tables)
        try:
            wait_for_port(policy_port, timeout=30)
            postfix.start()
            with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=30) as smtp:
                sends = [
                    ("alice@army.mil", "bob@navy.ml", "<drop-1@test.example>"),
                    ("carol@guarded.example", "dan@army.ml", "<policy-1@test.example>"),
                    ("alice@army.mil", "eve@armymil.com", "<access-1@test.example>"),
                    ("alice@army.mil", "typo-1@gmial.com", "<hop-1@test.example>"),
                    ("alice@army.mil", "bounce-1@gmial.com", "<bounce-1@test.example>"),
                    ("alice@army.mil", "frank@army.ml", "<sent-1@test.example>"),
                ]
                for sender, rcpt, message_id in sends:
                    try:
                        smtp.sendmail(sender, [rcpt], _message(message_id))
                    except smtplib.SMTPRecipientsRefused:
                        smtp.rset()
            log = _wait_for(
                postfix.maillog,
                Counter({"to=<bob@navy.ml>": 1, "to=<dan@army.ml>": 1, "to=<eve@armymil.com>": 1,
                         "to=<typo-1@gmial.com>": 1, "to=<bounce-1@gmial.com>": 1, "to=<frank@army.ml>": 1,
                         "status=bounced": 2}),
            )  # fmt: skip
            print(log, file=sys.stderr)  # shown when a test fails
            yield postfix.maillog
        finally:
            postfix.stop()
            policy.terminate()
            policy.wait(10)
            sink.stop()


def _audit(typoguard_exe: str, log: Path, *options: str) -> bytes:
    proc = subprocess.run(
        [typoguard_exe, "audit", *PROTECT, *options, str(log)], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 1, proc.stderr.decode()
    return proc.stdout


@pytest.fixture(scope="module")
def doc(maillog: Path, typoguard_exe: str) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(_audit(typoguard_exe, maillog, "--json"))
    return result


def _by_recipient(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["recipient"]: e for e in doc["events"]}


def test_mail_through_a_discard_transport_is_dropped_not_stopped(doc: dict[str, Any]) -> None:
    event = _by_recipient(doc)["bob@navy.ml"]
    assert event["outcome"] == "discarded"
    assert not event["leaked"]
    totals = doc["summary"]["totals"]
    # Postfix accepted it (the sender was told it went) and threw it away: not "stopped".
    assert totals["dropped"] == 1
    assert totals["stopped"] == 4  # the four refusals and bounces below
    assert totals["events"] == totals["leaked"] + totals["stopped"] + totals["dropped"] + totals["pending"]


def test_typoguard_refusals_in_any_wording_and_in_bounces_are_stopped_by_typoguard(
    doc: dict[str, Any],
) -> None:
    by_rcpt = _by_recipient(doc)
    outcomes = {r: e["outcome"] for r, e in by_rcpt.items()}
    assert outcomes == {
        "bob@navy.ml": "discarded",
        "dan@army.ml": "rejected-by-typoguard",  # policy service, new plain wording
        "eve@armymil.com": "rejected-by-typoguard",  # a site's own 5.1.2 template
        "typo-1@gmial.com": "rejected-by-typoguard",  # bounced by typoguard on the next hop
        "bounce-1@gmial.com": "bounced",  # the look-alike's own server: "550 5.1.1 No such user here"
        "frank@army.ml": "delivered",
    }
    assert "Not sent: army.ml is not army.mil" in by_rcpt["dan@army.ml"]["detail"]
    assert "you probably meant" in by_rcpt["typo-1@gmial.com"]["detail"]


def test_csv_has_the_queue_id_and_the_message_id(maillog: Path, typoguard_exe: str) -> None:
    log = maillog.read_text("utf-8", "replace")
    queue_id = re.search(r" ([0-9A-F]{6,}): to=<frank@army\.ml>", log)
    assert queue_id is not None, log
    rows = list(csv.DictReader(io.StringIO(_audit(typoguard_exe, maillog, "--csv").decode())))
    assert {"queue_id", "message_id"} <= set(rows[0])
    sent = next(r for r in rows if r["recipient"] == "frank@army.ml")
    assert (sent["queue_id"], sent["message_id"]) == (queue_id[1], "<sent-1@test.example>")
    policy = next(r for r in rows if r["recipient"] == "dan@army.ml")
    assert (policy["queue_id"], policy["message_id"]) == ("", "")  # refused before it had either


def test_json_events_carry_the_same_ids(doc: dict[str, Any]) -> None:
    by_rcpt = _by_recipient(doc)
    assert by_rcpt["frank@army.ml"]["message_id"] == "<sent-1@test.example>"
    assert by_rcpt["bob@navy.ml"]["message_id"] == "<drop-1@test.example>"
    assert by_rcpt["frank@army.ml"]["queue_id"] != by_rcpt["bob@navy.ml"]["queue_id"]
    assert all(e["queue_id"] for r, e in by_rcpt.items() if r not in ("dan@army.ml", "eve@armymil.com"))
