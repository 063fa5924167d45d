"""Real Postfix with ``smtpd_milters`` and ``non_smtpd_milters`` pointing at ``typoguard milter``.

smtpd (swaks) and the ``sendmail`` command (non-SMTP mail, which no policy service sees) both meet the
decision: reject with the did-you-mean text, hold in the hold queue, the warn header in the delivered
message, allow delivered; with typoguard killed Postfix applies ``milter_default_action``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from milter_labs import DeliverySink, MilterProcess, PostfixMilterLab, free_port
from postfix_lab import PostfixLab, missing_tools

pytestmark = pytest.mark.e2e

_MISSING = missing_tools()
if _MISSING:
    _REASON = f"needs {', '.join(_MISSING)}; run scripts/install-system-deps.sh as root"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: Postfix milter tests must run, but: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

SENDER = "alice@army.mil"


@pytest.fixture(scope="module")
def sink() -> Iterator[DeliverySink]:
    s = DeliverySink()
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def milter(typoguard_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilterProcess]:
    m = MilterProcess(typoguard_exe, tmp_path_factory.mktemp("milter"))
    m.start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def postfix(milter: MilterProcess, sink: DeliverySink) -> Iterator[PostfixMilterLab]:
    lab = PostfixMilterLab(free_port(), milter.port, sink.port, "accept", closed_port=free_port())
    lab.start()
    yield lab
    lab.stop()


def _wait_queue(lab: PostfixLab, queue_name: str, timeout: float = 15) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in lab.queue() if m["queue_name"] == queue_name]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing in the {queue_name} queue; log:\n{lab.log_tail()}")


def test_smtpd_reject_carries_the_did_you_mean_text(postfix: PostfixMilterLab) -> None:
    result = postfix.swaks(SENDER, ["bob@army.ml"])
    reply = result.reply_to("RCPT TO:<bob@army.ml>")
    assert reply.startswith("550 5.1.2 <bob@army.ml>: Not sent: army.ml is not army.mil."), reply
    assert "Did you mean bob@army.mil?" in reply
    assert result.exit_code == 24


def test_smtpd_allow_is_delivered_and_warn_adds_the_header(
    postfix: PostfixMilterLab, sink: DeliverySink
) -> None:
    assert postfix.swaks(SENDER, ["carol@army.mil"]).exit_code == 0
    assert b"X-Typoguard-Warning" not in sink.wait_for("carol@army.mil")
    assert postfix.swaks(SENDER, ["erin@arny.mil"]).exit_code == 0  # 0.84: warn with hold_at = 0.85
    delivered = sink.wait_for("erin@arny.mil")
    assert b"X-Typoguard-Warning: erin@arny.mil may be a typo for erin@army.mil" in delivered


def test_smtpd_hold_lands_in_the_hold_queue(postfix: PostfixMilterLab) -> None:
    postfix.purge()
    assert postfix.swaks(SENDER, ["dave@amry.mil"]).exit_code == 0
    held = _wait_queue(postfix, "hold")
    assert held[0]["recipients"][0]["address"] == "dave@amry.mil"  # type: ignore[index]
    # Postfix logs no quarantine reason ("milter triggers HOLD action"); the reason is in typoguard's log
    assert any("milter-hold:" in line and "to=<dave@amry.mil>" in line for line in postfix.log_lines())
    postfix.purge()


def test_the_audit_counts_the_mail_the_milter_held(postfix: PostfixMilterLab, typoguard_exe: str) -> None:
    # Postfix logs a milter's hold as "QID: milter-hold: END-OF-MESSAGE from ...: milter triggers HOLD
    # action; from=<s> to=<r> ...": `typoguard audit` over Postfix's own log must count it as held.
    postfix.purge()
    assert postfix.swaks(SENDER, ["dave@amry.mil"]).exit_code == 0
    qid = _wait_queue(postfix, "hold")[0]["queue_id"]
    deadline = time.monotonic() + 10  # postlogd writes the line a moment after cleanup queued the mail
    while not any(f"{qid}: milter-hold:" in line for line in postfix.log_lines()):
        assert time.monotonic() < deadline, postfix.log_tail()
        time.sleep(0.05)
    held = _audit_events(postfix, typoguard_exe, qid)
    assert [(e["recipient"], e["outcome"], e["sender"]) for e in held] == [
        ("dave@amry.mil", "held", SENDER)
    ], held
    postfix.purge()


def _audit_events(lab: PostfixLab, typoguard_exe: str, queue_id: object) -> list[dict[str, object]]:
    """The events of ``typoguard audit --json`` over the lab's log that carry ``queue_id``."""
    proc = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--json", str(lab.maillog)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return [e for e in json.loads(proc.stdout)["events"] if e["queue_id"] == queue_id]


def test_sendmail_command_mail_is_checked_too(postfix: PostfixMilterLab, sink: DeliverySink) -> None:
    postfix.purge()
    assert postfix.sendmail(SENDER, "frank@amry.mil", "held").returncode == 0
    held = _wait_queue(postfix, "hold")
    assert held[0]["recipients"][0]["address"] == "frank@amry.mil"  # type: ignore[index]
    postfix.purge()
    assert postfix.sendmail(SENDER, "gina@arny.mil", "warned").returncode == 0
    assert b"X-Typoguard-Warning: gina@arny.mil" in sink.wait_for("gina@arny.mil")
    postfix.sendmail(SENDER, "hank@army.ml", "refused")
    time.sleep(2)
    assert not sink.delivered("hank@army.ml")
    assert any("hank@army.ml" in line and "5.1.2" in line for line in postfix.log_lines()), postfix.log_tail()


def test_postfix_keeps_working_when_typoguard_hangs(
    postfix: PostfixMilterLab, milter: MilterProcess, sink: DeliverySink
) -> None:
    milter.suspend()  # connections are accepted by the kernel and never answered
    try:
        started = time.monotonic()
        result = postfix.swaks(SENDER, ["ivy@army.ml"])
        took = time.monotonic() - started
        assert result.exit_code == 0, f"{result.transcript}\n{postfix.log_tail()}"
        assert took < 15, took  # the lab's milter timeouts (5 s), not Postfix's 30 s defaults
        sink.wait_for("ivy@army.ml")
    finally:
        milter.resume()


def test_postfix_keeps_working_when_typoguard_is_killed(
    postfix: PostfixMilterLab, milter: MilterProcess, sink: DeliverySink
) -> None:
    milter.kill()  # milter_default_action = accept (fail open): mail flows, unchecked
    result = postfix.swaks(SENDER, ["ivan@army.ml"])
    assert result.exit_code == 0, result.transcript
    sink.wait_for("ivan@army.ml")
    # fail closed (the lab's second smtpd, -o milter_default_action=tempfail): 451 and the sender retries
    result = postfix.swaks(SENDER, ["judy@army.mil"], port=postfix.closed_port)
    assert result.exit_code != 0
    assert "451 4.7.1" in result.transcript
