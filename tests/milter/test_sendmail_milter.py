"""Real Sendmail (Debian's binary, unpacked; tests/milter/sendmail_lab.py) with
``INPUT_MAIL_FILTER(`typoguard', `S=inet:PORT@127.0.0.1, F=T')`` pointing at ``typoguard milter``.

Reject with the did-you-mean text reaches the SMTP client, allow is delivered, warn adds the header to the
delivered message, hold lands in Sendmail's quarantine (``mailq -qQ``) with the reason; with typoguard
killed Sendmail applies the filter's ``F=`` flag: T tempfails, R rejects, none lets mail through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from milter_labs import DeliverySink, MilterProcess, free_port
from sendmail_lab import SendmailLab, require_sendmail

pytestmark = pytest.mark.e2e

require_sendmail("Sendmail milter tests")

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
def sendmail(milter: MilterProcess, sink: DeliverySink) -> Iterator[SendmailLab]:
    lab = SendmailLab(free_port(), milter.port, sink.port, flags="T")
    lab.start()
    yield lab
    lab.stop()


def _wait_quarantined(lab: SendmailLab, recipient: str, timeout: float = 15) -> tuple[str, list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for reason, rcpts in lab.quarantined().values():
            if recipient in rcpts:
                return reason, rcpts
        time.sleep(0.1)
    raise AssertionError(f"{recipient} not quarantined: {lab.sendmail('-bp', '-qQ').stdout}")


def test_reject_carries_the_did_you_mean_text(sendmail: SendmailLab, sink: DeliverySink) -> None:
    result = sendmail.swaks(SENDER, ["bob@army.ml"])
    reply = result.reply_to("RCPT TO:<bob@army.ml>")
    # Sendmail puts its own "<rcpt>... " before a milter's text (as in "<x>... User unknown")
    expected = "550 5.1.2 <bob@army.ml>... <bob@army.ml>: Not sent: army.ml is not army.mil."
    assert reply.startswith(expected), reply
    assert "Did you mean bob@army.mil?" in reply
    assert result.exit_code == 24
    assert not sink.delivered("bob@army.ml")


def test_allow_is_delivered_and_warn_adds_the_header(sendmail: SendmailLab, sink: DeliverySink) -> None:
    assert sendmail.swaks(SENDER, ["carol@army.mil"]).exit_code == 0
    assert b"X-Typoguard-Warning" not in sink.wait_for("carol@army.mil")
    assert sendmail.swaks(SENDER, ["erin@arny.mil"]).exit_code == 0  # 0.84: warn with hold_at = 0.85
    delivered = sink.wait_for("erin@arny.mil")
    assert b"X-Typoguard-Warning: erin@arny.mil may be a typo for erin@army.mil" in delivered


def test_hold_is_quarantined_with_the_reason(sendmail: SendmailLab, sink: DeliverySink) -> None:
    assert sendmail.swaks(SENDER, ["dave@amry.mil"]).exit_code == 0
    reason, _rcpts = _wait_quarantined(sendmail, "dave@amry.mil")
    assert reason.startswith("typoguard: amry.mil looks like army.mil"), reason
    time.sleep(1)
    assert not sink.delivered("dave@amry.mil")
    # Sendmail keeps quarantined mail as hf* files (qf with a q line) in the queue directory
    held = [p for p in sendmail.queue_files() if p.name.startswith("hf")]
    assert held, sendmail.queue_files()
    q_lines = [line for line in held[0].read_bytes().splitlines() if line.startswith(b"q")]
    assert q_lines, held[0].read_bytes()
    full = q_lines[0][1:].decode()  # mailq -qQ cuts the reason to its column
    assert full.startswith(reason)
    assert full == "typoguard: amry.mil looks like army.mil (with the 'rm' of army swapped)"
    queue_id = held[0].name[2:]
    released = sendmail.sendmail("-Q", "-qQ", f"-qI{queue_id}")  # the postmaster releases it
    assert released.returncode == 0, released.stderr
    sendmail.sendmail("-q", f"-qI{queue_id}")
    sink.wait_for("dave@amry.mil")


def _restart_with(lab: SendmailLab, flags: str) -> None:
    lab.flags = flags
    lab.restart()


def test_sendmail_follows_its_f_flag_when_typoguard_is_killed(
    sendmail: SendmailLab, milter: MilterProcess, sink: DeliverySink
) -> None:
    milter.kill()
    result = sendmail.swaks(SENDER, ["ivan@army.mil"])  # F=T: temporary failure, the client retries
    assert result.exit_code != 0
    assert result.reply_to("MAIL FROM:<alice@army.mil>") == "451 4.3.2 Please try again later"
    assert not sink.delivered("ivan@army.mil")
    _restart_with(sendmail, "R")  # F=R: every connection refused at the greeting
    result = sendmail.swaks(SENDER, ["judy@army.mil"])
    assert result.exit_code != 0
    assert "554 sendmail-lab.localdomain ESMTP not accepting messages" in result.transcript, result.transcript
    assert not sink.delivered("judy@army.mil")
    _restart_with(sendmail, "")  # no F=: the filter is skipped, mail flows unchecked (fail open)
    assert sendmail.swaks(SENDER, ["kim@army.ml"]).exit_code == 0
    sink.wait_for("kim@army.ml")


def test_the_machines_sendmail_files_are_untouched(sendmail: SendmailLab) -> None:
    assert str(sendmail.root).startswith("/var/tmp/")
    assert f"O QueueDirectory={sendmail.root}/mqueue" in sendmail.cf.read_text()
