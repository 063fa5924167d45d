"""End to end on a real Postfix: mail is sent through a private Postfix instance (Debian package) with the
typoguard policy service in front of it, and the audit of the log Postfix wrote must count exactly.

The policy service guards only senders at ``guarded.example`` (``internal_senders``); for everyone else
typoguard is, in effect, absent, so their mail to look-alikes goes out: that is what the audit must find.
Skips (with the reason) without Postfix or root, except under CI=true, where it must run.
"""

from __future__ import annotations

import gzip
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_postfix_lab import PostfixInstance, SmtpSink, free_port, postfix_lab_dir, wait_for_port

pytestmark = pytest.mark.e2e

MESSAGE = b"Subject: audit test\r\n\r\nhello\r\n"


@pytest.fixture
def lab(typoguard_exe: str) -> Iterator[PostfixInstance]:
    with postfix_lab_dir("typoguard-audit-") as root:
        yield from _lab(typoguard_exe, root)


def _lab(typoguard_exe: str, root: Path) -> Iterator[PostfixInstance]:
    policy_port = free_port()
    (root / "typoguard.toml").write_text(
        '[protect]\ndomains = ["army.mil", "navy.mil", "gmail.com"]\n'
        '[policy]\nmode = "enforce"\ninternal_senders = ["guarded.example"]\n'
        f'[policyd]\nlisten = "127.0.0.1:{policy_port}"\n'
        f'[store]\ndata_dir = "{root / "typoguard-data"}"\n'
    )
    sink = SmtpSink().start()
    with (root / "policyd.log").open("wb") as policy_log:
        policy = subprocess.Popen(
            [typoguard_exe, "serve", "--config", str(root / "typoguard.toml")],
            stdout=policy_log,
            stderr=subprocess.STDOUT,
        )
    postfix = PostfixInstance(root, sink.port, policy=f"inet:127.0.0.1:{policy_port}")
    try:
        wait_for_port(policy_port, timeout=30)
        postfix.start()
        yield postfix
    finally:
        postfix.stop()
        policy.terminate()
        policy.wait(10)
        sink.stop()


def _wait_for(log: Path, needles: Counter[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text("utf-8", "replace")
        if all(text.count(n) >= k for n, k in needles.items()):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"Postfix did not log {dict(needles)} in {timeout:.0f} s:\n{text[-3000:]}")
        time.sleep(0.1)


def _audit(typoguard_exe: str, *inputs: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--protect", "navy.mil", "--protect", "gmail.com",
         "--json", *map(str, inputs)],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr.decode()
    doc: dict[str, Any] = orjson.loads(proc.stdout)
    return doc


def test_audit_counts_what_a_real_postfix_logged(
    lab: PostfixInstance, typoguard_exe: str, tmp_path: Path
) -> None:
    with smtplib.SMTP("127.0.0.1", lab.smtp_port, timeout=30) as smtp:
        for _ in range(3):  # an address-book entry: the same slip three times
            smtp.sendmail("alice@army.mil", ["bob@army.ml"], MESSAGE)
        smtp.sendmail("alice@army.mil", ["friend@example.org", "carol@army.mil"], MESSAGE)  # legitimate
        smtp.sendmail("alice@army.mil", ["bounce-1@gmial.com"], MESSAGE)  # the look-alike's server refuses
        smtp.sendmail("alice@army.mil", ["defer-1@navy.ml"], MESSAGE)  # ... or says "later"
        refused = smtp.sendmail("carol@guarded.example", ["dan@army.ml", "ok@example.org"], MESSAGE)
    assert set(refused) == {"dan@army.ml"}  # typoguard guards this sender

    log = _wait_for(
        lab.maillog,
        Counter({"to=<bob@army.ml>": 3, "to=<bounce-1@gmial.com>": 1, "to=<defer-1@navy.ml>": 1,
                 "to=<dan@army.ml>": 1, "to=<ok@example.org>": 1, "to=<carol@army.mil>": 1}),
    )  # fmt: skip
    print(log, file=sys.stderr)  # shown when the test fails

    doc = _audit(typoguard_exe, lab.maillog)
    assert Counter(e["outcome"] for e in doc["events"]) == {
        "delivered": 3,
        "bounced": 1,
        "deferred": 1,
        "rejected-by-typoguard": 1,
    }
    totals = doc["summary"]["totals"]
    assert (totals["events"], totals["leaked"], totals["stopped"], totals["pending"]) == (6, 3, 2, 1)
    assert {(e["sender"], e["recipient"], e["outcome"]) for e in doc["events"]} == {
        ("alice@army.mil", "bob@army.ml", "delivered"),
        ("alice@army.mil", "bounce-1@gmial.com", "bounced"),
        ("alice@army.mil", "defer-1@navy.ml", "deferred"),
        ("carol@guarded.example", "dan@army.ml", "rejected-by-typoguard"),
    }
    assert [(d["domain"], d["events"], d["leaked"]) for d in doc["summary"]["by_domain"]] == [
        ("army.ml", 4, 3),
        ("gmial.com", 1, 0),
        ("navy.ml", 1, 0),
    ]
    assert [(r["sender"], r["domain"], r["events"]) for r in doc["summary"]["repeat_patterns"]] == [
        ("alice@army.mil", "army.ml", 3)
    ]
    assert doc["bad_lines"] == 0

    # The same log rotated and compressed gives the same answer.
    rotated = tmp_path / "maillog.1.gz"
    rotated.write_bytes(gzip.compress(lab.maillog.read_bytes()))
    again = _audit(typoguard_exe, rotated)
    assert again["summary"]["totals"] == doc["summary"]["totals"]
