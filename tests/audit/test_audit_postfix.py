"""Postfix logs: what a user auditing a mail server's log sees."""

from __future__ import annotations

import gzip
import os
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from typoguard.audit.postfix_lines import PostfixLineReader


def outcomes(doc: dict[str, Any]) -> Counter[str]:
    return Counter(e["outcome"] for e in doc["events"])


def test_syslog_log_every_outcome_and_the_sender_from_the_queue_id(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    doc = audit_json(fixtures / "postfix-syslog.log")
    assert outcomes(doc) == {
        "delivered": 3,
        "bounced": 1,
        "deferred": 1,
        "rejected": 1,
        "rejected-by-typoguard": 1,
    }
    first = doc["events"][0]
    assert (first["sender"], first["recipient"], first["intended"], first["kind"]) == (
        "alice@army.mil",
        "bob@army.ml",
        "army.mil",
        "suffix_typo",
    )
    # A deferral then a delivery of the same queue id and recipient is one delivered mail with 2 attempts.
    retried = [e for e in doc["events"] if e["queue_id"] == "2B3C4D5E6F"]
    assert [(e["outcome"], e["attempts"]) for e in retried] == [("delivered", 2)]
    # The legitimate recipient of the same message (carol@army.mil) is not reported.
    assert all(e["domain"] != "army.mil" for e in doc["events"])
    totals = doc["summary"]["totals"]
    assert (totals["events"], totals["leaked"], totals["stopped"], totals["pending"]) == (7, 3, 3, 1)


def test_bad_lines_are_counted_and_shown_never_fatal(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    doc = audit_json(fixtures / "postfix-syslog.log")
    assert doc["bad_lines"] == 2
    assert any("garbage" in x for x in doc["bad_line_examples"])


def test_rfc3339_timestamps_mixed_encodings_and_discard(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    doc = audit_json(fixtures / "postfix-rfc3339-mixed.log")
    by_rcpt = {e["recipient"]: e for e in doc["events"] if e["outcome"] != "discarded"}
    assert by_rcpt["bob@army.ml"]["sender"] == "hélène@army.mil"  # Latin-1 bytes in the log
    assert by_rcpt["bob@army.ml"]["time"] == "2026-11-26T16:47:39.000001+00:00"
    assert "jürgen@navy.ml" in by_rcpt  # UTF-8 (SMTPUTF8) address
    # A header_checks warning mentioning a look-alike recipient is not a send; binary junk is a bad line.
    assert outcomes(doc) == {"delivered": 2, "discarded": 1}
    assert doc["bad_lines"] == 1


def test_rfc5424_syslog_lines(audit_json: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    """rsyslog's and syslog-ng's RFC 5424 format: program and pid as fields, structured data, a BOM."""
    log = tmp_path / "mail.log"
    log.write_bytes(
        b"<22>1 2026-11-26T16:47:38.123456+00:00 mx1 postfix/qmgr 1234 - - 7F2A1C3D4E: from=<alice@army.mil>,"
        b" size=1234, nrcpt=2 (queue active)\n"
        b'<22>1 2026-11-26T16:47:39.5Z mx1 postfix/smtp 1235 - [meta sequenceId="7"] \xef\xbb\xbf7F2A1C3D4E:'
        b" to=<bob@army.ml>, relay=mx.army.ml[192.0.2.1]:25, delay=1, dsn=2.0.0, status=sent (250 Ok)\n"
        b"<22>1 2026-11-26T16:47:40Z mx1 postfix/smtpd 1236 - - NOQUEUE: reject: RCPT from x[192.0.2.9]:"
        b" 550 5.1.2 <carol@navy.ml>: typoguard: navy.ml looks like navy.mil; from=<dan@army.mil>"
        b" to=<carol@navy.ml> proto=ESMTP helo=<x>\n"
    )
    doc = audit_json(log)
    events = {e["recipient"]: e for e in doc["events"]}
    assert (
        events["bob@army.ml"]["sender"] == "alice@army.mil"
        and events["bob@army.ml"]["outcome"] == "delivered"
    )
    assert events["bob@army.ml"]["time"] == "2026-11-26T16:47:39.500000+00:00"
    assert events["carol@navy.ml"]["outcome"] == "rejected-by-typoguard"
    assert doc["bad_lines"] == 0


def test_rfc5424_byte_order_mark_on_every_line(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """syslog-ng marks every UTF-8 message with a BOM: the queue id after it still joins the lines."""
    bom = b"\xef\xbb\xbf"
    log = tmp_path / "mail.log"
    log.write_bytes(
        b"<22>1 2026-11-26T16:47:37Z mx1 postfix/cleanup 1233 - - "
        + bom
        + b"7F2A1C3D4E: message-id=<m1@army.mil>\n"
        b"<22>1 2026-11-26T16:47:38Z mx1 postfix/qmgr 1234 - - " + bom + b"7F2A1C3D4E: from=<alice@army.mil>,"
        b" size=1234, nrcpt=1 (queue active)\n"
        b"<22>1 2026-11-26T16:47:39Z mx1 postfix/smtp 1235 - - " + bom + b"7F2A1C3D4E: to=<bob@army.ml>,"
        b" relay=mx.army.ml[192.0.2.1]:25, delay=1, dsn=2.0.0, status=sent (250 Ok)\n"
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["sender"], e["message_id"], e["queue_id"]) for e in doc["events"]] == [
        ("bob@army.ml", "alice@army.mil", "<m1@army.mil>", "7F2A1C3D4E")
    ]


def test_iso_dates_with_a_space_before_the_time(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """What syslog-ng and rsyslog templates write with a date-and-time field: no "T", maybe an offset."""
    log = tmp_path / "mail.log"
    log.write_bytes(
        b"2026-11-26 16:47:38 mx1 postfix/qmgr[1]: Q1: from=<alice@army.mil>, size=1, nrcpt=1 (active)\n"
        b"2026-11-26 16:47:39.123 +0100 mx1 postfix/smtp[2]: Q1: to=<bob@army.ml>, relay=mx[192.0.2.1]:25,"
        b" delay=1, dsn=2.0.0, status=sent (250 Ok)\n"
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["sender"], e["time"]) for e in doc["events"]] == [
        ("bob@army.ml", "alice@army.mil", "2026-11-26T16:47:39.123000+01:00")
    ]
    assert doc["bad_lines"] == 0


_ONE_MESSAGE = (
    (b"37", b"cleanup[1233]: 7F2A1C3D4E: message-id=<m1@army.mil>"),
    (b"38", b"qmgr[1234]: 7F2A1C3D4E: from=<alice@army.mil>, size=1234, nrcpt=1 (queue active)"),
    (b"39", b"smtp[1235]: 7F2A1C3D4E: to=<bob@army.ml>, relay=mx.army.ml[192.0.2.1]:25, delay=1, dsn=2.0.0,"
     b" status=sent (250 Ok)"),
)  # fmt: skip


@pytest.mark.parametrize(
    ("stamp", "host", "when"),
    [
        # journalctl -o short-unix (seconds since the epoch): 2026-11-26 16:47:xx UTC
        (b"%d.123456", b"mx1 ", "2026-11-26T16:47:39+00:00"),
        # a syslog daemon configured to leave out the host name (a container's own log, busybox syslogd)
        (b"Nov 26 16:47:%d", b"", "2026-11-26T16:47:39"),
        # docker logs --timestamps, Go's RFC 3339 with nanoseconds
        (b"2026-11-26T16:47:%d.123456789Z", b"mx1 ", "2026-11-26T16:47:39.123456+00:00"),
    ],
    ids=["journalctl-short-unix", "no-host-name", "nanoseconds"],
)
def test_other_timestamps_and_a_missing_host_name(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, stamp: bytes, host: bytes, when: str
) -> None:
    log = tmp_path / "mail.log"
    epoch = 1795711620 if stamp.startswith(b"%d") else 0  # 2026-11-26 16:47:00 UTC
    log.write_bytes(
        b"".join(
            stamp % (epoch + int(s)) + b" " + host + b"postfix/" + rest + b"\n" for s, rest in _ONE_MESSAGE
        )
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["sender"], e["message_id"], e["outcome"]) for e in doc["events"]] == [
        ("bob@army.ml", "alice@army.mil", "<m1@army.mil>", "delivered")
    ]
    assert doc["events"][0]["time"][:19] == when[:19] and doc["bad_lines"] == 0


def test_a_hop_through_a_content_filter_or_another_server_is_one_message_not_two(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # content_filter = amavis (127.0.0.1:10024), re-injected on :10025 under a new queue id: the first
    # "delivery" is a hand-off on the same machine. And a central log of two servers, mx1 relaying to
    # mx2, which delivers. Each is one message to the look-alike, counted once, with its final outcome.
    log = tmp_path / "mail.log"
    log.write_bytes(
        b"Nov 26 16:47:37 mx1 postfix/cleanup[1]: 7F2A1C3D4E: message-id=<m1@army.mil>\n"
        b"Nov 26 16:47:38 mx1 postfix/qmgr[2]: 7F2A1C3D4E: from=<alice@army.mil>, nrcpt=1 (queue active)\n"
        b"Nov 26 16:47:39 mx1 postfix/smtp[3]: 7F2A1C3D4E: to=<bob@army.ml>, relay=127.0.0.1[127.0.0.1]:10024"
        b", delay=1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok:"
        b" queued as 8E3B2D4F5A)\n"
        b"Nov 26 16:47:39 mx1 postfix/cleanup[1]: 8E3B2D4F5A: message-id=<m1@army.mil>\n"
        b"Nov 26 16:47:39 mx1 postfix/qmgr[2]: 8E3B2D4F5A: from=<alice@army.mil>, nrcpt=1 (queue active)\n"
        b"Nov 26 16:47:40 mx1 postfix/smtp[4]: 8E3B2D4F5A: to=<bob@army.ml>, relay=mx.army.ml[192.0.2.1]:25,"
        b" delay=1, dsn=5.1.1, status=bounced (host mx.army.ml[192.0.2.1] said: 550 5.1.1 no such user)\n"
        b"Nov 26 16:50:00 mx1 postfix/qmgr[2]: A1B2C3D4E5: from=<carol@army.mil>, nrcpt=1 (queue active)\n"
        b"Nov 26 16:50:01 mx1 postfix/smtp[5]: A1B2C3D4E5: to=<dave@army.ml>, relay=mx2.army.mil[10.0.0.2]:25"
        b", delay=1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ1)\n"
        b"Nov 26 16:50:01 mx2 postfix/qmgr[9]: 4XyZ1: from=<carol@army.mil>, nrcpt=1 (queue active)\n"
        b"Nov 26 16:50:02 mx2 postfix/smtp[8]: 4XyZ1: to=<dave@army.ml>, relay=mx.army.ml[192.0.2.1]:25,"
        b" delay=1, dsn=2.0.0, status=sent (250 Ok: queued as REMOTE1)\n"
        # relayed to a smarthost whose own log is not here: that delivery is the only one this log knows
        b"Nov 26 16:51:00 mx1 postfix/qmgr[2]: B1B2C3D4E5: from=<erin@army.mil>, nrcpt=1 (queue active)\n"
        b"Nov 26 16:51:01 mx1 postfix/smtp[5]: B1B2C3D4E5: to=<frank@army.ml>, relay=smarthost[192.0.2.9]:25,"
        b" delay=1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 8E3B2D4F5B)\n"
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["queue_id"], e["outcome"], e["message_id"]) for e in doc["events"]] == [
        ("bob@army.ml", "8E3B2D4F5A", "bounced", "<m1@army.mil>"),
        ("dave@army.ml", "4XyZ1", "delivered", ""),
        ("frank@army.ml", "B1B2C3D4E5", "delivered", ""),
    ]


def test_a_content_filter_that_discarded_or_bounced_the_message_is_not_a_leak(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # amavisd-new's answers to Postfix for blocked mail (a virus, a banned file): accepted and dropped
    # ("discarded"), or accepted and returned to the sender ("BOUNCE"). Nothing went on.
    log = tmp_path / "mail.log"
    log.write_bytes(
        b"Nov 26 16:47:38 mx1 postfix/qmgr[2]: 7F2A1C3D4E: from=<alice@army.mil>, nrcpt=2 (queue active)\n"
        b"Nov 26 16:47:39 mx1 postfix/smtp[3]: 7F2A1C3D4E: to=<bob@army.ml>, relay=127.0.0.1[127.0.0.1]:10024"
        b", delay=1, dsn=2.7.0, status=sent (250 2.7.0 Ok, discarded, id=00900-01 - INFECTED: Eicar)\n"
        b"Nov 26 16:47:39 mx1 postfix/smtp[3]: 7F2A1C3D4E: to=<carol@army.ml>, relay=127.0.0.1[127.0.0.1]"
        b":10024"
        b", delay=1, dsn=2.5.0, status=sent (250 2.5.0 Ok, id=00900-02, BOUNCE)\n"
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["outcome"], e["leaked"]) for e in doc["events"]] == [
        ("bob@army.ml", "discarded", False),
        ("carol@army.ml", "bounced", False),
    ]


def test_rotated_set_joins_a_queue_id_across_files_and_survives_a_truncated_gz(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    older = (
        "Nov 24 23:59:58 mx1 postfix/qmgr[1]: Q1: from=<alice@army.mil>, nrcpt=1 (queue active)\n"
        "Nov 24 23:59:59 mx1 postfix/smtp[2]: Q1: to=<bob@army.ml>, relay=none, delay=1, dsn=4.4.1,"
        " status=deferred (connect to mx.army.ml[192.0.2.1]:25: Connection timed out)\n"
    )
    newer = (
        "Nov 25 00:30:00 mx1 postfix/smtp[2]: Q1: to=<bob@army.ml>, relay=mx.army.ml[192.0.2.1]:25, delay=1,"
        " dsn=2.0.0, status=sent (250 ok)\n"
    )
    with gzip.open(tmp_path / "mail.log.2.gz", "wb") as f:
        f.write(older.encode())
    (tmp_path / "mail.log.1").write_text(newer)
    # A truncated rotation: the compressed stream is cut in the middle.
    lines = "".join(
        older.replace("Q1", f"Q{i:04X}")
        .replace("bob", f"carol{i * 7919 % 1000}")
        .replace(":58", f":{i % 60:02d}")
        for i in range(300)
    )
    whole = gzip.compress(lines.encode())
    (tmp_path / "mail.log.3.gz").write_bytes(whole[: len(whole) // 2])
    for p in tmp_path.iterdir():
        os.utime(p, (1796000000, 1796000000))  # 2026-11-30: the year of the syslog lines
    doc = audit_json(tmp_path)
    bob = [e for e in doc["events"] if e["recipient"] == "bob@army.ml"]
    assert [(e["outcome"], e["attempts"], e["sender"]) for e in bob] == [("delivered", 2, "alice@army.mil")]
    assert any("mail.log.3.gz" in err and "ends early" in err for err in doc["errors"])
    # What came before the cut is read: some, not all, of the 300 deferred carols.
    carols = [e for e in doc["events"] if e["recipient"].startswith("carol")]
    assert 50 < len(carols) < 300
    assert {e["outcome"] for e in carols} == {"deferred"}


def test_expired_mail_counts_as_bounced(audit_json: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text(
        "Nov 20 10:00:00 mx postfix/qmgr[1]: E1: from=<alice@army.mil>, nrcpt=1 (queue active)\n"
        "Nov 20 10:00:01 mx postfix/smtp[2]: E1: to=<bob@army.ml>, relay=none, delay=1, dsn=4.4.1,"
        " status=deferred (connect to mx.army.ml[192.0.2.1]:25: Connection timed out)\n"
        "Nov 25 10:00:01 mx postfix/qmgr[1]: E1: from=<alice@army.mil>, status=expired, returned to sender\n"
    )
    doc = audit_json(log)
    assert outcomes(doc) == {"bounced": 1}


def test_format_can_be_forced(run_audit: Callable[..., Any], fixtures: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    shutil.copy(fixtures / "postfix-syslog.log", odd)
    result = run_audit("--format", "postfix", "--csv", odd)
    assert result.exit_code == 1
    assert result.stdout.count("\n") == 1 + 7


def test_header_and_body_check_actions_are_not_bad_lines(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    log = tmp_path / "maillog"
    log.write_text(
        "Nov 20 10:00:00 mx postfix/cleanup[3]: H1: hold: header Subject: budget from unknown[10.0.0.5];"
        " from=<alice@army.mil> to=<bob@army.ml> proto=ESMTP helo=<ws1>: typoguard: army.ml looks like"
        " army.mil\n"
        "Nov 20 10:01:00 mx postfix/cleanup[3]: H2: reject: body secret from unknown[10.0.0.5];"
        " from=<alice@army.mil> to=<carol@army.ml> proto=ESMTP helo=<ws1>: 5.7.1 no secrets\n"
        "Nov 20 10:02:00 mx postfix/smtpd[4]: NOQUEUE: reject: RCPT from mail.example[2001:db8::1]:4567:"
        " 554 5.7.1 <dan@navy.ml>: Relay access denied; from=<alice@army.mil> to=<dan@navy.ml>"
        " proto=ESMTP helo=<ws1>\n"
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["outcome"]) for e in doc["events"]] == [
        ("bob@army.ml", "held"),
        ("carol@army.ml", "rejected"),
        ("dan@navy.ml", "rejected"),
    ]
    assert doc["events"][2]["detail"].startswith("554 5.7.1 <dan@navy.ml>: Relay access denied")
    assert doc["bad_lines"] == 0


def test_a_milters_hold_discard_and_reject_at_end_of_message_count(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # The lines real Postfix 3.7 writes when a milter (typoguard's, or any other) acts at end of message.
    # Cleanup names only the message's last recipient there (the first message had carol@army.mil first).
    eom = "END-OF-MESSAGE from unknown[127.0.0.1]:"
    head = "Dec 07 15:1{} lab postfix/{}: {}:"
    tail = "proto=ESMTP helo=<client.example.org>"
    log = tmp_path / "maillog"
    log.write_text(
        f"{head.format('1:32', 'cleanup[9]', 'F2FD0EA214A')} milter-hold: {eom} milter triggers HOLD action;"
        f" from=<alice@army.mil> to=<erin@arny.mil> {tail}\n"
        f"{head.format('2:00', 'cleanup[9]', 'A1B2C3D4E5F')} milter-discard: {eom} milter triggers DISCARD"
        f" action; from=<alice@army.mil> to=<bob@army.ml> {tail}\n"
        f"{head.format('3:00', 'cleanup[9]', 'B1B2C3D4E5F')} milter-reject: {eom} 5.7.1 Command rejected;"
        f" from=<alice@army.mil> to=<carl@army.ml> {tail}\n"
        # held, then released (postsuper -H) and delivered: one event, delivered, two lines about it
        f"{head.format('4:00', 'cleanup[9]', 'C1B2C3D4E5F')} milter-hold: {eom} milter triggers HOLD action;"
        f" from=<alice@army.mil> to=<dave@amry.mil> {tail}\n"
        f"{head.format('8:00', 'qmgr[8]', 'C1B2C3D4E5F')} from=<alice@army.mil>, size=450, nrcpt=1"
        " (queue active)\n"
        f"{head.format('8:01', 'smtp[7]', 'C1B2C3D4E5F')} to=<dave@amry.mil>,"
        " relay=mx.amry.mil[192.0.2.9]:25, delay=361, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
    )
    doc = audit_json(log)
    got = [(e["recipient"], e["outcome"], e["sender"], e["attempts"]) for e in doc["events"]]
    assert sorted(got) == [
        ("bob@army.ml", "discarded", "alice@army.mil", 1),
        ("carl@army.ml", "rejected", "alice@army.mil", 1),
        ("dave@amry.mil", "delivered", "alice@army.mil", 2),
        ("erin@arny.mil", "held", "alice@army.mil", 1),
    ]
    assert doc["bad_lines"] == 0


def test_a_before_queue_filters_reject_counts_and_a_reject_warning_does_not(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # proxy-reject: smtpd_proxy_filter refused the message at end of data (nothing was queued);
    # reject_warning: warn_if_reject, the mail was accepted and goes on to delivery.
    log = tmp_path / "maillog"
    log.write_text(
        "Dec  7 10:00:09 mx postfix/smtpd[5]: 5E: proxy-reject: END-OF-MESSAGE: 550 5.7.1 not sent: army.ml"
        " is not army.mil; from=<a@army.mil> to=<jo@army.ml> proto=ESMTP helo=<x>\n"
        "Dec  7 10:00:10 mx postfix/smtpd[5]: NOQUEUE: reject_warning: RCPT from x[192.0.2.4]: 550 5.1.2"
        " <ian@army.ml>: Recipient address rejected: army.ml looks like army.mil; from=<a@army.mil>"
        " to=<ian@army.ml> proto=ESMTP helo=<x>\n"
    )
    doc = audit_json(log)
    assert [(e["recipient"], e["outcome"], e["sender"]) for e in doc["events"]] == [
        ("jo@army.ml", "rejected-by-typoguard", "a@army.mil")
    ]
    assert doc["bad_lines"] == 0


def test_syslog_year_is_decided_per_line_in_the_minute_it_changes() -> None:
    # Syslog lines carry no year: a line more than a day after the file's time is from the year before.
    # Times are worked out once per minute; in the minute where that limit falls, line by line.
    reader = PostfixLineReader(datetime(2027, 1, 1, 0, 0, 30))
    lines = [
        b"Jan  2 00:00:10 mx postfix/smtp[3]: 1A2B3C: to=<a@army.ml>, relay=mx[192.0.2.1]:25, dsn=2.0.0,"
        b" status=sent (250 ok)",
        b"Jan  2 00:00:50 mx postfix/smtp[3]: 1A2B3C: to=<b@army.ml>, relay=mx[192.0.2.1]:25, dsn=2.0.0,"
        b" status=sent (250 ok)",
        b"Jan  2 00:01:10 mx postfix/smtp[3]: 1A2B3C: to=<c@army.ml>, relay=mx[192.0.2.1]:25, dsn=2.0.0,"
        b" status=sent (250 ok)",
        b"Dec 31 23:59:59 mx postfix/smtp[3]: 1A2B3C: to=<d@army.ml>, relay=mx[192.0.2.1]:25, dsn=2.0.0,"
        b" status=deferred (451 later)",
    ]
    found = [reader.delivery(line, 0, len(line), general=False) for line in lines]
    assert [f[0] if f else None for f in found] == [
        datetime(2027, 1, 2, 0, 0, 10),
        datetime(2026, 1, 2, 0, 0, 50),
        datetime(2026, 1, 2, 0, 1, 10),
        datetime(2026, 12, 31, 23, 59, 59),
    ]
    assert [f[5:] if f else None for f in found] == [
        (b"sent", b"250 ok"), (b"sent", b"250 ok"), (b"sent", b"250 ok"), (b"deferred", b"451 later"),
    ]  # fmt: skip


_GOOD = (
    "Nov 20 10:00:00 mx postfix/qmgr[1]: E1: from=<alice@army.mil>, nrcpt=1 (queue active)\n"
    "Nov 20 10:00:01 mx postfix/smtp[2]: E1: to=<bob@army.ml>, relay=mx.army.ml[192.0.2.1]:25, delay=1,"
    " dsn=2.0.0, status=sent (250 ok)\n"
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "junk",
    [
        " to=<a@" * 40_000,  # recipient fields that never close, one after the other
        " to=<a<" * 40_000,  # the same with a "<" in each
        ": to=<a@army.ml>," * 20_000,  # look-alike recipients, all in one line
        "> to=<a@army.ml> ; from=<x@army.mil>" * 10_000,
        ": from=<a@army.mil>, status=expired" * 10_000,
    ],
    ids=["unclosed", "unclosed-lt", "lookalikes", "actions", "expired"],
)
def test_a_huge_hostile_line_costs_its_length_not_its_square(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path, junk: str
) -> None:
    """A log is input like any other: one line of a few hundred KB of recipient fields (corrupt, or written
    by something else than Postfix) must not stall the audit (each field used to rescan the rest of the
    line: minutes for 300 KB). No real log line is that long; it is counted as a bad line, and the good
    lines around it are read."""
    log = tmp_path / "maillog"
    log.write_text(_GOOD + f"Nov 20 10:00:02 mx postfix/smtp[2]: E2:{junk}\n" + _GOOD.replace("E1", "E3"))
    doc = audit_json(log)
    found = [(e["queue_id"], e["outcome"]) for e in doc["events"]]
    assert found == [("E1", "delivered"), ("E3", "delivered")]
    assert doc["bad_lines"] <= 1


def test_a_quoted_local_part_with_angle_brackets_is_read(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """``"a<b"@army.ml`` is a valid address (RFC 5321 quoted string), logged as Postfix received it."""
    log = tmp_path / "maillog"
    log.write_text(_GOOD.replace("bob@army.ml", '"a<b>c"@army.ml'))
    doc = audit_json(log)
    assert [(e["recipient"], e["domain"], e["outcome"]) for e in doc["events"]] == [
        ('"a<b>c"@army.ml', "army.ml", "delivered")
    ]


@pytest.mark.timeout(30)  # ~3 s here; the old way took over a minute
def test_a_log_filtered_down_to_its_delivery_lines_is_read_in_one_pass(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """``grep army.ml mail.log > subset; typoguard audit subset``: no qmgr or cleanup line, so no delivery's
    sender is in the log. Each delivery used to search the whole block and the one before for it (45 s for
    30,000 lines); the block's queue ids are listed once instead. Senders are unknown ("?"), never guessed."""
    log = tmp_path / "subset"
    with log.open("w") as out:
        for i in range(100_000):
            out.write(
                f"Nov 20 10:{i // 1000 % 60:02d}:{i % 60:02d} mx postfix/smtp[2]: {0x100000 + i:X}:"
                f" to=<user{i}@army.ml>, relay=mx.army.ml[192.0.2.1]:25, delay=1, dsn=2.0.0,"
                " status=sent (250 ok)\n"
            )
    doc = audit_json(log)
    assert len(doc["events"]) == 100_000
    assert {e["sender"] for e in doc["events"]} == {"?"}
