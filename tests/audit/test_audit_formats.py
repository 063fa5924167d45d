"""Exim, Microsoft 365, Exchange and mailboxes: detected automatically, read into the same events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from typoguard.audit.sources import Format, detect


def rows(doc: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [(e["sender"], e["recipient"], e["outcome"], e["attempts"]) for e in doc["events"]]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("postfix-syslog.log", Format.POSTFIX),
        ("postfix-rfc3339-mixed.log", Format.POSTFIX),
        ("exim-mainlog", Format.EXIM),
        ("sendmail-maillog", Format.SENDMAIL),
        ("sendmail-rfc3339.log", Format.SENDMAIL),
        ("m365-trace.csv", Format.M365),
        ("m365-trace-utf16.csv", Format.M365),
        ("MSGTRK20261125-1.LOG", Format.EXCHANGE),
        ("sent.mbox", Format.MBOX),
        ("Maildir", Format.MAILDIR),
        ("sent.eml", Format.EML),
    ],
)
def test_format_is_detected(fixtures: Path, name: str, fmt: Format) -> None:
    assert detect(fixtures / name) is fmt


def test_exim(audit_json: Callable[..., dict[str, Any]], fixtures: Path) -> None:
    doc = audit_json(fixtures / "exim-mainlog")
    assert rows(doc) == [
        ("alice@army.mil", "bob@army.ml", "delivered", 1),
        ("alice@army.mil", "carol@army.ml", "delivered", 1),
        ("dave@navy.mil", "eve@navy.ml", "bounced", 2),  # deferred, then bounced
        ("dave@navy.mil", "frank@gmial.com", "rejected-by-typoguard", 1),
    ]
    assert doc["bad_lines"] == 1


@pytest.mark.parametrize(
    ("own_stamp", "iso"),
    [(True, False), (False, False), (False, True)],
    ids=["syslog_timestamp", "no_syslog_timestamp", "rfc3339-syslog-no_syslog_timestamp"],
)
def test_exim_logging_to_syslog_gives_the_same_events(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path, tmp_path: Path, own_stamp: bool, iso: bool
) -> None:
    # log_file_path = syslog: each line behind syslog's time, host and exim[pid]; Exim's own time stays
    # unless syslog_timestamp = false. A line longer than syslog takes is cut into "[1\\2] ..." pieces.
    lines = []
    for line in (fixtures / "exim-mainlog").read_text().splitlines():
        if not line[:4].isdigit():
            lines.append(line)
            continue
        day, hms = line[8:10], line[11:19]
        text = line if own_stamp else line[20:].removeprefix("+0100 ")
        when = f"2026-11-{day}T{hms}.000123+00:00" if iso else f"Nov {day} {hms}"
        lines.append(f"{when} mx1 exim[4242]: {text}")
    long_one = lines[1].replace('C="250 OK id=77"', 'C="250 OK id=77" ' + "x" * 900)
    head, tail = long_one[: long_one.index(": ") + 2], long_one[long_one.index(": ") + 2 :]
    lines[1] = head + "[1\\2] " + tail[:500]
    lines.insert(2, head + "[2\\2] " + tail[500:])
    log = tmp_path / "mainlog"
    log.write_text("\n".join(lines) + "\n")
    doc = audit_json(log)
    assert doc["formats"] == {"exim": 1}
    assert rows(doc) == [
        ("alice@army.mil", "bob@army.ml", "delivered", 1),
        ("alice@army.mil", "carol@army.ml", "delivered", 1),
        ("dave@navy.mil", "eve@navy.ml", "bounced", 2),
        ("dave@navy.mil", "frank@gmial.com", "rejected-by-typoguard", 1),
    ]
    assert doc["bad_lines"] == 1
    assert doc["events"][0]["time"].startswith("2026-11-23T08:00:01")


def test_exim_holds_of_the_shipped_acl_are_joined_with_their_message(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # Exim's default log_selector: no [pid], no client port. The RCPT-time hold line has no message id: it
    # takes the next message of the same client (its id, sender, and a later release joins it).
    reason = "typoguard: arny.mil looks like army.mil (with the 'm' of army typed as 'n')"
    hold = "Warning: typoguard: hold"
    log = tmp_path / "mainlog"
    log.write_text(
        f"2026-12-07 10:00:00 H=(ws1) [10.0.0.5] Warning: typoguard: hold <bob@arny.mil>: {reason}\n"
        "2026-12-07 10:00:00 H=(ws9) [10.0.0.9] F=<x@army.mil> rejected RCPT <y@army.ml>: typoguard: no\n"
        "2026-12-07 10:00:01 1xaaRo-0006s3-2Y <= alice@army.mil H=(ws1) [10.0.0.5] P=esmtp S=430"
        " id=m1@army.mil\n"
        "2026-12-07 10:00:01 1xaaRo-0006s3-2Y frozen by ACL\n"
        # released by the postmaster (exim -M) an hour later: delivered, the same event
        "2026-12-07 11:00:00 1xaaRo-0006s3-2Y => bob@arny.mil R=dnslookup T=remote_smtp H=mx.arny.mil"
        ' [192.0.2.9] C="250 OK"\n'
        # with +pid: joined by process; a transaction the client abandoned joins nothing later
        f"2026-12-07 12:00:00 [501] H=(ws2) [10.0.0.6]:4000 {hold} <carl@arny.mil>: {reason}\n"
        "2026-12-07 12:00:01 [501] SMTP connection from (ws2) [10.0.0.6]:4000 closed by QUIT\n"
        f"2026-12-07 12:00:02 [502] H=(ws2) [10.0.0.6]:4001 {hold} <dora@arny.mil>: {reason}\n"
        "2026-12-07 12:00:02 [503] 1xaaSl-0006zF-0r <= eve@army.mil H=(ws3) [10.0.0.7]:5000 P=esmtp S=9\n"
        "2026-12-07 12:00:03 [502] 1xaaSl-0006zG-0s <= fay@army.mil H=(ws2) [10.0.0.6]:4001 P=esmtp S=9\n"
        "2026-12-07 12:30:00 [501] 1xaaSl-0006zH-0t <= gus@army.mil H=(ws4) [10.0.0.8]:6000 P=esmtp S=9\n"
        # non-SMTP (exim -t): the message id is on the line, every recipient of the message is named
        "2026-12-07 13:00:00 [601] 1xaaSl-0006zJ-0v U=root Warning: typoguard: hold <olga@army.mil,"
        f" dave@amry.mil>: {reason}\n"
        "2026-12-07 13:00:00 [601] 1xaaSl-0006zJ-0v <= hal@army.mil U=root P=local S=321\n"
    )
    doc = audit_json(log)
    got = [(e["recipient"], e["outcome"], e["sender"], e["queue_id"], e["attempts"]) for e in doc["events"]]
    assert sorted(got) == [
        ("bob@arny.mil", "delivered", "alice@army.mil", "1xaaRo-0006s3-2Y", 2),
        ("carl@arny.mil", "held", "?", "", 1),  # its client quit: never a message; not gus's
        ("dave@amry.mil", "held", "hal@army.mil", "1xaaSl-0006zJ-0v", 1),
        ("dora@arny.mil", "held", "fay@army.mil", "1xaaSl-0006zG-0s", 1),
        ("y@army.ml", "rejected-by-typoguard", "x@army.mil", "", 1),
    ]
    assert next(e for e in doc["events"] if e["recipient"] == "bob@arny.mil")["message_id"] == "<m1@army.mil>"
    assert doc["bad_lines"] == 0


_EXIM_GOOD = (
    "2026-12-07 10:00:00 {mid} <= alice@army.mil H=ws1 [10.0.0.5] P=esmtp S=812\n"
    "2026-12-07 10:00:01 {mid} => bob@army.ml R=dnslookup T=remote_smtp H=mx.army.ml [192.0.2.10]"
    ' C="250 OK"\n'
)


@pytest.mark.timeout(20)  # a hang guard: each case takes well under a second
@pytest.mark.parametrize(
    "junk",
    [
        "Warning: typoguard: hold <" * 20_000,  # hold lines that never close
        "F=<" * 100_000 + " rejected RCPT <a@army.ml",  # senders that never close, then a refusal
        "F=<a> " * 50_000 + "rejected RCPT <a@army.ml" + ">" * 10,
        "H=" * 150_000 + "Warning: typoguard: hold <a@arny.mil>: x",  # clients that never close
        "H=(" + "[" * 150_000 + " Warning: typoguard: hold <a@arny.mil>: x",
    ],
    ids=["hold-unclosed", "reject-senders", "reject-fields", "hold-clients", "hold-brackets"],
)
def test_a_huge_hostile_exim_line_costs_its_length_not_its_square(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, junk: str
) -> None:
    """One line of a few hundred KB (Exim itself cuts its log lines at 8 KB) must not stall the audit: the
    good lines around it are read, and it costs at most one bad line or one event."""
    log = tmp_path / "mainlog"
    log.write_text(
        _EXIM_GOOD.format(mid="1vOt3y-000Abc-Xy")
        + f"2026-12-07 10:00:02 {junk}\n"
        + _EXIM_GOOD.format(mid="1vOt3y-000Abd-Xy")
    )
    doc = audit_json(log, "--format", "exim")
    delivered = [e["queue_id"] for e in doc["events"] if e["outcome"] == "delivered"]
    assert delivered == ["1vOt3y-000Abc-Xy", "1vOt3y-000Abd-Xy"]
    assert doc["bad_lines"] + len(doc["events"]) <= 3


@pytest.mark.parametrize("name", ["m365-trace.csv", "m365-trace-utf16.csv"])
def test_m365_message_trace(audit_json: Callable[..., dict[str, Any]], fixtures: Path, name: str) -> None:
    doc = audit_json(fixtures / name)
    assert rows(doc) == [
        ("alice@army.mil", "bob@army.ml", "delivered", 1),
        ("dave@navy.mil", "eve@navy.ml", "bounced", 1),
        ("dave@navy.mil", "x@gmial.com", "deferred", 1),
    ]
    assert doc["events"][0]["time"] == "2026-11-24T16:47:38+00:00"
    assert doc["bad_lines"] == 1


def test_m365_recipient_status_column(audit_json: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    report = tmp_path / "historical.csv"
    report.write_text(
        "origin_timestamp_utc,sender_address,recipient_status,message_subject,network_message_id\n"
        "2026-11-24T16:47:38.1234567Z,alice@army.mil,"
        '"bob@army.ml##Receive, Send;ok@example.org##Receive, Send",Hi,nm-1\n'
        '2026-11-24T17:00:00Z,alice@army.mil,"x@navy.ml##Receive, Fail",Hi,nm-2\n'
    )
    assert rows(audit_json(report)) == [
        ("alice@army.mil", "bob@army.ml", "delivered", 1),
        ("alice@army.mil", "x@navy.ml", "bounced", 1),
    ]


def test_exchange_tracking_log(audit_json: Callable[..., dict[str, Any]], fixtures: Path) -> None:
    doc = audit_json(fixtures / "MSGTRK20261125-1.LOG")
    # RECEIVE is the same message on its way in: only SEND counts; DEFER then FAIL is one bounce.
    assert rows(doc) == [
        ("alice@army.mil", "bob@army.ml", "delivered", 1),
        ("dave@navy.mil", "eve@navy.ml", "bounced", 2),
    ]
    assert doc["bad_lines"] == 1


def test_mbox_headers_only_with_resent_and_bcc(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    doc = audit_json(fixtures / "sent.mbox")
    assert rows(doc) == [
        ("alice@army.mil", "bob@army.ml", "sent", 1),  # not the address quoted in the body
        ("alice@army.mil", "dan@navy.ml", "sent", 1),  # Resent-To, not the original To
        ("alice@army.mil", "hidden@gmial.com", "sent", 1),  # Bcc
    ]
    assert doc["summary"]["totals"]["leaked"] == 3


@pytest.mark.timeout(20)  # a hang guard: it takes well under a second
@pytest.mark.parametrize(
    ("to", "found"),
    [
        (
            "(" * 5_000 + "dan@navy.ml",
            ["dan@navy.ml"],
        ),  # comments nested 5,000 deep: Python's parser recursed
        ('"' + 'a\\"' * 50_000 + '" <eve@navy.ml>', ["eve@navy.ml"]),  # one quoted name of 100 KB
        (", ".join(f"u{i}@navy.ml" for i in range(3_000)), [f"u{i}@navy.ml" for i in range(3_000)]),
    ],
    ids=["nested-comments", "long-quoted-name", "many-recipients"],
)
def test_a_hostile_recipient_header_never_stops_the_audit(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, to: str, found: list[str]
) -> None:
    """A mailbox is input like any other. A To: header that Python's address parser cannot take apart must
    not end the audit (it did, with RecursionError): its addresses are still found, and the next message
    is read."""
    box = tmp_path / "sent.mbox"
    box.write_text(
        f"From alice@army.mil Mon Dec  7 10:00:00 2026\nFrom: alice@army.mil\nTo: {to}\nSubject: x\n"
        "Message-ID: <1@army.mil>\n\nbody\n\n"
        "From alice@army.mil Mon Dec  7 10:00:01 2026\nFrom: alice@army.mil\nTo: bob@army.ml\nSubject: y\n"
        "Message-ID: <2@army.mil>\n\nbody\n"
    )
    doc = audit_json(box)
    assert sorted(e["recipient"] for e in doc["events"]) == sorted([*found, "bob@army.ml"])


def test_maildir_counts_a_copied_message_once(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    assert rows(audit_json(fixtures / "Maildir")) == [("dave@navy.mil", "eve@navy.ml", "sent", 1)]


def test_eml_and_a_directory_of_mixed_inputs(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    eml = audit_json(fixtures / "sent.eml")
    assert [(e["recipient"], e["intended"], e["detail"]) for e in eml["events"]] == [
        ("bob@armymil.com", "army.mil", "café")
    ]
    everything = audit_json(fixtures)
    # The UTF-16 export is the same trace as the UTF-8 one: same message ids, so counted once.
    # The two Sendmail logs are one log in two timestamp formats: same queue ids, so counted once.
    assert len(everything["events"]) == 7 + 3 + 4 + 3 + 2 + 3 + 1 + 1 + 9
    assert everything["errors"] == []


def test_unknown_file_is_reported_and_skipped(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path, tmp_path: Path
) -> None:
    odd = tmp_path / "notes.txt"
    odd.write_text("shopping list\nmilk\n")
    doc = audit_json(odd, fixtures / "sent.eml")
    assert len(doc["events"]) == 1
    assert any("notes.txt" in e and "format" in e for e in doc["errors"])


def test_raw_8bit_headers_are_read_as_utf8_or_latin1(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    eml = tmp_path / "raw.eml"
    eml.write_bytes(
        b"From: J\xc3\xbcrgen <j\xc3\xbcrgen@army.mil>\nTo: b\xc3\xb6b@army.ml\nSubject: caf\xe9\n"
        b"Message-ID: <u1@x>\n\nbody\n"
    )
    doc = audit_json(eml)
    assert [(e["sender"], e["recipient"], e["detail"]) for e in doc["events"]] == [
        ("jürgen@army.mil", "böb@army.ml", "café")
    ]


def test_an_mbox_body_line_of_megabytes_is_not_held_whole(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # Only headers matter; a body of one 32 MB line (an attachment not wrapped, damage) was read as one
    # line, then dropped: memory grew with the line (a 150 MB line: 352 MB of RSS).
    import tracemalloc

    from typoguard.audit import mailbox
    from typoguard.audit.classify import Classifier
    from typoguard.audit.model import SourceStats
    from typoguard.audit.sources import plan
    from typoguard.config import Config, ProtectConfig
    from typoguard.guard import Guard

    def message(to: str, body: bytes) -> bytes:
        return (
            (
                f"From alice@army.mil Mon Nov 30 10:00:00 2026\nFrom: alice@army.mil\nTo: {to}\n"
                f"Subject: s\nDate: Mon, 30 Nov 2026 10:00:00 +0000\nMessage-ID: <{to}>\n\n"
            ).encode()
            + body
            + b"\n\n"
        )

    box = tmp_path / "sent.mbox"
    # The second body has a line of exactly the piece size: the newline that ends it, read on its own, is
    # not a blank line, so the unescaped "From " line after it starts no message.
    spoof = b"a" * mailbox.MAX_LINE + b"\nFrom eve@x Mon Nov 30 10:00:00 2026\nTo: eve@army.ml\n"
    box.write_bytes(
        message("zed@army.ml", b"a" * (32 << 20)) + message("amy@army.ml", spoof) + message("bo@navy.ml", b"")
    )
    tasks, _problems = plan([box], Format.MBOX, 64 << 20)
    classifier = Classifier(Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil",)))))
    tracemalloc.start()
    try:
        partials = list(mailbox.read_mbox(tasks[0], classifier, SourceStats()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sorted(p.recipient for p in partials) == ["amy@army.ml", "zed@army.ml"]  # navy.ml: not protected
    assert peak < 4 << 20


def test_an_eml_without_a_newline_is_not_read_whole(tmp_path: Path) -> None:
    # A message file is read up to the end of its header (256 KiB at most): a file of one 32 MB line (no
    # header, a binary saved as .eml) was read whole to find its first newline.
    import tracemalloc

    from typoguard.audit import mailbox
    from typoguard.audit.classify import Classifier
    from typoguard.audit.model import SourceStats
    from typoguard.config import Config, ProtectConfig
    from typoguard.guard import Guard

    eml = tmp_path / "odd.eml"
    eml.write_bytes(b"To: bob@army.ml\nSubject: " + b"x" * (32 << 20))
    classifier = Classifier(Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil",)))))
    tracemalloc.start()
    try:
        partials = list(mailbox.read_eml(eml, "odd.eml", classifier, SourceStats(), "eml"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p.recipient for p in partials] == ["bob@army.ml"]
    assert peak < 4 << 20


def test_a_damaged_csv_row_does_not_swallow_the_rows_after_it(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path, tmp_path: Path
) -> None:
    # A stray quote (a cut export, a hand edit) made the reader join every line after it into one "quoted
    # field" to the end of the file: the leak rows after it were lost as one bad line. A quoted field may
    # still run over several lines (a subject with a line break).
    lines = (fixtures / "m365-trace.csv").read_text("utf-8").splitlines()
    damaged = lines[2].replace('"Budget"', '"Bud"get"')
    multi = lines[1].replace('"Budget"', '"Budget\nQ4, part 2"').replace("bob@army.ml", "carol@army.ml")
    trace = tmp_path / "trace.csv"
    trace.write_text("\n".join([lines[0], damaged, *lines[1:], multi]) + "\n", "utf-8")
    plain = audit_json(fixtures / "m365-trace.csv")
    doc = audit_json(trace)
    assert sorted(e["recipient"] for e in doc["events"]) == sorted(
        [*(e["recipient"] for e in plain["events"]), "carol@army.ml"]
    )
    assert doc["bad_lines"] == plain["bad_lines"]  # the damaged row read alone is a row (to a legit domain)
