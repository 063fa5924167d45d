"""``typoguard audit`` on Sendmail logs: the fixtures are real Sendmail 8.17 lines (LogLevel 9), captured by
the Sendmail lab (tests/milter/sendmail_lab.py, a private /dev/log) with typoguard's milter in front of it
and a sink that defers and refuses some recipients; the synthesised lines below follow their shape."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from typoguard.audit import runner
from typoguard.audit.sources import Format, detect

FIXTURES = Path(__file__).parent / "fixtures"
# The syslog fixture was written on 2026-12-07: its lines carry no year, which comes from the file's date.
WRITTEN = datetime(2026, 12, 7, 16, 0, tzinfo=UTC).timestamp()

FRANK = "6B7FNii9032474@sendmail-lab.localdomain"  # a command-line submission: Sendmail made its Message-ID
EXPECTED = [  # recipient, outcome, sender, attempts, queue id, Message-ID
    ("bob@army.ml", "rejected-by-typoguard", "alice@army.mil", 1, "6B7FNilL032467", ""),  # milter, at RCPT
    ("carol@arny.mil", "delivered", "alice@army.mil", 1, "6B7FNiRA032469", "<20261207152344.032468@vm>"),
    ("dave@amry.mil", "delivered", "alice@army.mil", 2, "6B7FNite032473", "<20261207152344.032472@vm>"),
    ("erin@amry.mil", "delivered", "alice@army.mil", 2, "6B7FNite032473", "<20261207152344.032472@vm>"),
    ("frank@arny.mil", "delivered", "alice@army.mil", 1, "6B7FNii9032474", f"<202612071523.{FRANK}>"),
    ("later@arny.mil", "delivered", "alice@army.mil", 2, "6B7FNiRA032469", "<20261207152344.032468@vm>"),
    ("nobody@arny.mil", "bounced", "alice@army.mil", 1, "6B7FNiRA032469", "<20261207152344.032468@vm>"),
    ("gina@amry.mil", "held", "alice@army.mil", 1, "6B7FNk4U032606", "<20261207152346.032605@vm>"),
    ("never@arny.mil", "held", "alice@army.mil", 1, "6B7FNk4U032606", "<20261207152346.032605@vm>"),
]


def events(doc: dict[str, Any]) -> list[tuple[str, str, str, int, str, str]]:
    return [
        (e["recipient"], e["outcome"], e["sender"], e["attempts"], e["queue_id"], e["message_id"])
        for e in doc["events"]
    ]


@pytest.fixture
def maillog(tmp_path: Path) -> Path:
    copy = tmp_path / "maillog"
    shutil.copy(FIXTURES / "sendmail-maillog", copy)
    os.utime(copy, (WRITTEN, WRITTEN))
    return copy


def _log(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "maillog"
    path.write_text(text)
    os.utime(path, (WRITTEN, WRITTEN))
    return path


def test_real_sendmail_lines_give_one_event_per_message_and_lookalike(
    audit_json: Callable[..., dict[str, Any]], maillog: Path
) -> None:
    """Delivery (one of two recipients on one ``to=`` line), deferral then delivery (two attempts), bounce,
    typoguard's milter refusal at RCPT (sender from the ``from=`` line logged after it), quarantine released
    then delivered (two attempts), quarantine of a whole envelope (both look-alike recipients held), and an
    unbracketed ``to=`` of a command-line submission."""
    doc = audit_json(maillog)
    assert events(doc) == EXPECTED
    assert doc["bad_lines"] == 0
    first = doc["events"][0]
    assert first["time"] == "2026-12-07T15:23:44"
    assert first["format"] == "sendmail"
    assert first["detail"].startswith("550 5.1.2 <bob@army.ml>: Not sent: army.ml is not army.mil.")
    by_recipient = {e["recipient"]: e for e in doc["events"]}
    assert by_recipient["nobody@arny.mil"]["detail"] == "550 5.1.1 nobody@arny.mil... User unknown"
    assert by_recipient["gina@amry.mil"]["detail"].startswith("typoguard: amry.mi")


def test_rfc3339_timestamps_give_the_same_events(audit_json: Callable[..., dict[str, Any]]) -> None:
    doc = audit_json(FIXTURES / "sendmail-rfc3339.log")
    assert sorted(events(doc)) == sorted(EXPECTED)
    assert doc["events"][0]["time"] == "2026-12-07T15:23:44.310760+00:00"
    assert doc["bad_lines"] == 0


@pytest.mark.parametrize("shape", ["journalctl-short-unix", "no-host-name"])
def test_epoch_timestamps_and_a_missing_host_name_give_the_same_events(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, shape: str
) -> None:
    # The real lab log as ``journalctl -o short-unix`` writes it, and as a syslog daemon that leaves out
    # the host name does.
    lines = []
    for line in (FIXTURES / "sendmail-maillog").read_text().splitlines():
        month, day, hms, host, rest = line.split(maxsplit=4)
        if shape == "no-host-name":
            lines.append(f"{month} {day:>2} {hms} {rest}")
        else:
            when = datetime.strptime(f"2026 {month} {day} {hms}", "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
            lines.append(f"{when.timestamp():.6f} {host} {rest}")
    log = tmp_path / "maillog"
    log.write_text("\n".join(lines) + "\n")
    assert detect(log) is Format.SENDMAIL
    doc = audit_json(log)
    assert sorted(events(doc)) == sorted(EXPECTED)
    assert doc["bad_lines"] == 0
    assert doc["events"][0]["time"][:19] == "2026-12-07T15:23:44"


def test_the_sendmail_log_is_detected_and_the_others_are_not_taken(fixtures: Path) -> None:
    assert detect(fixtures / "sendmail-maillog") is Format.SENDMAIL
    assert detect(fixtures / "sendmail-rfc3339.log") is Format.SENDMAIL
    assert detect(fixtures / "postfix-syslog.log") is Format.POSTFIX
    assert detect(fixtures / "postfix-rfc3339-mixed.log") is Format.POSTFIX
    assert detect(fixtures / "exim-mainlog") is Format.EXIM


def test_format_sendmail_is_accepted_by_the_cli(
    run_audit: Callable[..., Any], maillog: Path, tmp_path: Path
) -> None:
    renamed = tmp_path / "notes.txt"
    shutil.copy(maillog, renamed)
    result = run_audit("--json", "--no-progress", "--format", "sendmail", renamed)
    assert result.exit_code == 1, result.output
    assert '"format":"sendmail"' in result.stdout.replace(" ", "")


HEAD = "Dec  7 15:30:00 mx sm-mta[100]: "


def test_a_to_list_of_several_recipients_bracketed_or_not(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    log = _log(
        tmp_path,
        f"{HEAD}7B7FU0aa000100: from=<alice@army.mil>, size=9, class=0, nrcpts=4, msgid=<m1@army.mil>, "
        "proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]\n"
        f'{HEAD}7B7FU0aa000100: to=<ok@army.mil>,<a@arny.mil>,<"b,c"@amry.mil>, delay=00:00:01, '
        "xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.arny.mil. [192.0.2.1], dsn=2.0.0, stat=Sent (ok)\n"
        f"{HEAD}7B7FU0aa000100: to=d@arny.mil,e@navy.ml, ctladdr=alice@army.mil (0/0), delay=00:00:01, "
        "xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx [192.0.2.1], dsn=4.4.1, stat=Deferred: Connection "
        "timed out with mx\n",
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["outcome"], e["message_id"]) for e in doc["events"]] == [
        ('"b,c"@amry.mil', "delivered", "<m1@army.mil>"),
        ("a@arny.mil", "delivered", "<m1@army.mil>"),
        ("d@arny.mil", "deferred", "<m1@army.mil>"),
        ("e@navy.ml", "deferred", "<m1@army.mil>"),
    ]


def test_outcomes_of_other_lines(audit_json: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    """A later hop's typoguard refusal in a bounce, a ruleset refusal at RCPT (and two before the
    transaction had an id: two events), a 4xx without ``Deferred``, RFC 5424 lines, and a local submission
    handed to the local MTA (not an outcome: the MTA's line is)."""
    log = _log(
        tmp_path,
        f"{HEAD}7B7FU0bb000101: from=<carol@army.mil>, size=9, class=0, nrcpts=1, msgid=<m2@army.mil>, "
        "proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]\n"
        f"{HEAD}7B7FU0bb000101: to=<x@army.ml>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, "
        "relay=relay.example. [192.0.2.7], dsn=5.1.2, reply=550 5.1.2 <x@army.ml>... Not sent: army.ml is "
        "not army.mil., stat=Service unavailable\n"
        f"{HEAD}7B7FU0cc000102: ruleset=check_rcpt, arg1=<y@army.ml>, relay=client [192.0.2.9], "
        "reject=550 5.7.1 <y@army.ml>... Relaying denied\n"
        f"{HEAD}7B7FU0cc000102: from=<dan@army.mil>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, "
        "relay=client [192.0.2.9]\n"
        "<22>1 2026-12-07T15:31:00.5+00:00 mx sm-mta 102 - - 7B7FU0dd000103: from=<erin@army.mil>, size=9, "
        "class=0, nrcpts=1, msgid=<m3@army.mil>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]\n"
        "<22>1 2026-12-07T15:31:01.5+00:00 mx sm-mta 102 - - 7B7FU0dd000103: to=<z@arny.mil>, "
        "delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx [192.0.2.1], dsn=4.2.0, "
        "stat=Mailbox busy\n"
        f"{HEAD}NOQUEUE: ruleset=check_rcpt, arg1=<v@army.ml>, relay=a [192.0.2.9], reject=550 5.7.1 denied\n"
        f"{HEAD}NOQUEUE: ruleset=check_rcpt, arg1=<v@army.ml>, relay=b [192.0.2.8], reject=550 5.7.1 denied\n"
        "Dec  7 15:32:00 mx sm-msp-queue[200]: 7B7FW0ee000200: from=fred, size=9, class=0, nrcpts=1, "
        "msgid=<m4@army.mil>, relay=fred@localhost\n"
        "Dec  7 15:32:00 mx sm-msp-queue[200]: 7B7FW0ee000200: to=w@arny.mil, ctladdr=fred (1000/1000), "
        "delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=1, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, "
        "stat=Sent (7B7FW0ff000201 Message accepted for delivery)\n",
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["outcome"], e["sender"], e["time"]) for e in doc["events"]] == [
        ("v@army.ml", "rejected", "?", "2026-12-07T15:30:00"),
        ("v@army.ml", "rejected", "?", "2026-12-07T15:30:00"),
        ("x@army.ml", "rejected-by-typoguard", "carol@army.mil", "2026-12-07T15:30:00"),
        ("y@army.ml", "rejected", "dan@army.mil", "2026-12-07T15:30:00"),
        ("z@arny.mil", "deferred", "erin@army.mil", "2026-12-07T15:31:01.500000+00:00"),
    ]
    assert doc["bad_lines"] == 0


# Real Sendmail 8.17 lines (the lab, ``sendmail -q -O Timeout.queuereturn=1s``): a recipient still deferred
# when the message times out in the queue; the sender gets a DSN.
EXPIRY = """\
Dec  7 15:29:54 sendmail-lab sendmail[3827]: 6B7FTsff003827: from=<alice@army.mil>, size=243, class=0, \
nrcpts=2, msgid=<20261207152954.003826@vm>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]
Dec  7 15:29:54 sendmail-lab sendmail[3829]: 6B7FTsff003827: to=<never@arny.mil>, delay=00:00:00, \
xdelay=00:00:00, mailer=esmtp, pri=60243, relay=[127.0.0.1] [127.0.0.1], dsn=4.2.0, reply=450 4.2.0 mailbox \
busy, stat=Deferred: 450 4.2.0 mailbox busy
Dec  7 15:29:54 sendmail-lab sendmail[3829]: 6B7FTsff003827: to=<carol@arny.mil>, delay=00:00:00, \
xdelay=00:00:00, mailer=esmtp, pri=60243, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (2.0.0 kept)
Dec  7 15:29:57 sendmail-lab sendmail[3863]: 6B7FTsff003827: to=<never@arny.mil>, delay=00:00:03, \
xdelay=00:00:00, mailer=esmtp, pri=150243, relay=[127.0.0.1] [127.0.0.1], dsn=4.2.0, reply=450 4.2.0 mailbox \
busy, stat=Deferred: 450 4.2.0 mailbox busy
Dec  7 15:29:57 sendmail-lab sendmail[3863]: 6B7FTsff003827: 6B7FTvGk003863: DSN: Cannot send message for \
1 second
Dec  7 15:29:57 sendmail-lab sendmail[3863]: 6B7FTvGk003863: to=<alice@army.mil>, delay=00:00:00, \
xdelay=00:00:00, mailer=esmtp, pri=31713, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (2.0.0 kept)
"""


def test_a_message_that_times_out_in_the_queue_bounces_its_deferred_recipients(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    doc = audit_json(_log(tmp_path, EXPIRY))
    assert [(e["recipient"], e["outcome"], e["attempts"]) for e in doc["events"]] == [
        ("carol@arny.mil", "delivered", 1),
        ("never@arny.mil", "bounced", 2),
    ]
    warned = EXPIRY.replace(
        "DSN: Cannot send message for 1 second", "DSN: Warning: could not send message for past 4 hours"
    )
    doc = audit_json(_log(tmp_path, warned))  # a delay warning: still deferred
    assert [(e["recipient"], e["outcome"]) for e in doc["events"]][1] == ("never@arny.mil", "deferred")
    assert doc["bad_lines"] == 0


def test_bad_lines_are_counted_and_other_programs_passed_over(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, maillog: Path
) -> None:
    good = maillog.read_text()
    log = _log(
        tmp_path,
        "garbage that is no syslog line\n"
        f"{HEAD}7B7FU0aa000100: to=<a@arny.mil>, delay=00:00:01, mailer=esmtp\n"  # cut before its stat=
        f"{HEAD}7B7FU0aa000100: Milter: to=<a@arny.mil>\n"  # a refusal without its reply
        f"{HEAD}7B7FU0aa000100: from=\n"
        "Dec  7 15:30:00 mx sm-mta: cut short\n"
        "Dec  7 15:30:00 mx dovecot: imap(alice)<12><abc>: Logged out\n"  # another program: not ours
        "Dec  7 15:30:00 mx kernel[0]: something\n" + good,
    )
    doc = audit_json(log)
    assert events(doc) == EXPECTED
    assert doc["bad_lines"] == 5
    assert any("garbage" in example for example in doc["bad_line_examples"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "junk",
    [
        "to=" + "<a@" * 100_000,  # a recipient that never closes
        "to=" + "<a@arny.mil>," * 30_000,  # a list of look-alikes with no field after it
        "to=<a@arny.mil>" + ", stat=" * 50_000,
        "to=<a@arny.mil>, " + "reply=, dsn=4" * 30_000 + ", stat=Bounced",
        "Milter: to=<a@arny.mil>" + ", x" * 100_000,
        "from=<" * 100_000,
        "ruleset=check_rcpt, arg1=<" + "a" * 300_000,
    ],
    ids=["unclosed", "lookalikes", "stats", "fields", "milter", "from", "ruleset"],
)
def test_a_huge_hostile_line_costs_its_length_not_its_square(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, maillog: Path, junk: str
) -> None:
    good = maillog.read_text()
    log = _log(tmp_path, good + f"{HEAD}7B7FU0aa000999: {junk}\n" + f"Dec  7 15:30:00 mx{' x' * 100_000}\n")
    started = time.monotonic()
    doc = audit_json(log)
    assert time.monotonic() - started < 10
    assert events(doc)[: len(EXPECTED)] == EXPECTED


def test_a_log_cut_into_chunks_for_workers_gives_the_serial_answer(
    guard: Any, tmp_path: Path, maillog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split into byte ranges (SPLITTABLE), a message's ``from=`` line may be in an earlier chunk than its
    deliveries (found by looking back, as for Exim), or in the next chunk after a refusal at RCPT (Sendmail
    logs it when the transaction ends: found by looking ahead)."""
    lines = maillog.read_text().splitlines(keepends=True)
    filler = "Dec  7 15:23:45 sendmail-lab sendmail[1]: 6B7FNzzz000001: Milter: connect to filters\n" * 400
    big = _log(tmp_path, "".join(line + filler for line in lines))
    serial = runner.audit([big], guard, jobs=1)
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    cut = runner.audit([big], guard, jobs=2, chunk_bytes=16 << 10)
    assert len(runner.plan([big], Format.AUTO, 16 << 10)[0]) > 10
    assert [e.to_dict() for e in cut.events] == [e.to_dict() for e in serial.events]
    assert [(e.recipient, e.outcome.value, e.sender, e.attempts) for e in cut.events] == [
        (r, outcome, sender, attempts) for r, outcome, sender, attempts, _qid, _mid in EXPECTED
    ]
