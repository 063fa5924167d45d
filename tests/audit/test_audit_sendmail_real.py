"""End to end on a real Sendmail (tests/milter/sendmail_lab.py: Debian's 8.17 binary, a private config,
queue and /dev/log) with ``typoguard milter`` in front of it at Sendmail's default LogLevel 9: mail goes
through it to a sink that defers one recipient once and refuses another, and ``typoguard audit`` of the
log Sendmail wrote must count exactly. Skips (with the reason) without the lab's tools or root, except
under CI=true, where it must run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).parent.parent / "milter"))
from milter_labs import MilterProcess, free_port
from sendmail_lab import SendmailLab, require_sendmail

pytestmark = pytest.mark.e2e

require_sendmail("the real-Sendmail audit test")


class _Picky:
    """The look-alike domains' server: ``later@`` is deferred once, ``nobody@`` does not exist."""

    def __init__(self) -> None:
        self.tries: dict[str, int] = {}

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        self.tries[address] = self.tries.get(address, 0) + 1
        if address.startswith("later@") and self.tries[address] == 1:
            return "451 4.3.0 try again later"
        if address.startswith("nobody@"):
            return f"550 5.1.1 {address}... User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        return "250 2.0.0 kept"


@pytest.fixture
def lab(typoguard_exe: str, tmp_path: Path) -> Iterator[SendmailLab]:
    sink_port = free_port()
    sink = Controller(_Picky(), hostname="127.0.0.1", port=sink_port)
    sink.start()
    milter = MilterProcess(typoguard_exe, tmp_path)
    milter.start()
    lab = SendmailLab(free_port(), milter.port, sink_port, flags="T", maillog=True, log_level=9)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        milter.stop()
        sink.stop()


def _wait_logged(
    lab: SendmailLab, *wanted: tuple[bytes, bytes], timeout: float = 20, queue_run: tuple[str, ...] = ()
) -> None:
    """Until, for each (recipient, status) of ``wanted``, a line names both (``stat=...`` comes last).
    ``queue_run``: run ``sendmail <queue_run>`` first and again every second: a queue run passes over a
    message another sendmail process still has locked (the one that just deferred it, finishing up)."""
    assert lab.syslog is not None
    deadline = time.monotonic() + timeout
    ran = 0.0
    while time.monotonic() < deadline:
        if queue_run and time.monotonic() - ran > 1:
            lab.sendmail(*queue_run)
            ran = time.monotonic()
        lines = lab.syslog.lines()
        if all(any(rcpt in line and b"stat=" + stat in line for line in lines) for rcpt, stat in wanted):
            return
        time.sleep(0.05)
    log = b"\n".join(lab.syslog.lines()).decode(errors="replace")
    raise AssertionError(f"not logged: {wanted}\n{log}")


def _events(doc: dict[str, Any]) -> dict[str, tuple[str, str, int, str, str]]:
    return {
        e["recipient"]: (e["outcome"], e["sender"], e["attempts"], e["queue_id"], e["message_id"])
        for e in doc["events"]
    }


def test_the_audit_of_real_sendmails_log_counts_every_outcome(
    lab: SendmailLab, audit_json: Callable[..., dict[str, Any]]
) -> None:
    sender = "alice@army.mil"
    assert lab.swaks(sender, ["bob@army.ml"]).exit_code == 24  # typoguard's milter refuses it at RCPT
    assert (
        lab.swaks(sender, ["carol@arny.mil", "later@arny.mil", "nobody@arny.mil", "x@army.mil"]).exit_code
        == 0
    )
    assert lab.swaks(sender, ["dave@amry.mil", "erin@arny.mil"]).exit_code == 0  # typoguard holds it
    _wait_logged(
        lab,
        (b"<nobody@arny.mil>", b"User unknown"),
        (b"<later@arny.mil>", b"Deferred"),
        (b"<carol@arny.mil>", b"Sent"),
        (b"<erin@arny.mil>", b"quarantined"),
    )
    _wait_logged(lab, (b"<later@arny.mil>", b"Sent"), queue_run=("-q",))  # retried: now accepted
    held = lab.quarantined()
    assert len(held) == 1
    [(held_id, (_reason, _rcpts))] = held.items()
    assert lab.syslog is not None
    ids = _message_ids(lab.syslog.lines())

    for log in (lab.syslog.maillog, lab.syslog.maillog_rfc3339):
        doc = audit_json(log)
        assert doc["bad_lines"] == 0
        found = _events(doc)
        many = found["carol@arny.mil"][3]
        assert found == {
            "bob@army.ml": ("rejected-by-typoguard", sender, 1, found["bob@army.ml"][3], ""),
            "carol@arny.mil": ("delivered", sender, 1, many, ids[many]),
            "later@arny.mil": ("delivered", sender, 2, many, ids[many]),  # deferred, then sent
            "nobody@arny.mil": ("bounced", sender, 1, many, ids[many]),
            "dave@amry.mil": ("held", sender, 1, held_id, ids[held_id]),
            "erin@arny.mil": ("held", sender, 1, held_id, ids[held_id]),  # the whole envelope is held
        }

    released = lab.sendmail("-Q", "-qQ", f"-qI{held_id}")  # the postmaster releases it: delivered
    assert released.returncode == 0, released.stderr
    _wait_logged(lab, (b"<dave@amry.mil>", b"Sent"), queue_run=("-q", f"-qI{held_id}"))
    found = _events(audit_json(lab.syslog.maillog))
    assert found["dave@amry.mil"][:3] == ("delivered", sender, 2)
    assert found["erin@arny.mil"][:3] == ("delivered", sender, 2)


def _message_ids(lines: list[bytes]) -> dict[str, str]:
    """Queue id -> Message-ID, from the ``from=`` lines as Sendmail wrote them."""
    found = {}
    for line in lines:
        if b": from=<" in line and b" msgid=" in line:
            qid = line.split(b": from=<")[0].rsplit(b" ", 1)[1].decode()
            found[qid] = line.split(b" msgid=")[1].split(b",")[0].decode()
    return found
