"""What a user gets out: summaries, repeat patterns, the terminal tables, CSV, and the offline HTML page."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result

from typoguard.audit import report_data, runner
from typoguard.audit.aggregate import summarise, week_of
from typoguard.guard import Guard


def test_summaries_per_domain_sender_week(audit_json: Callable[..., dict[str, Any]], fixtures: Path) -> None:
    summary = audit_json(fixtures / "postfix-syslog.log")["summary"]
    by_domain = {d["domain"]: d for d in summary["by_domain"]}
    assert (
        by_domain["army.ml"]["events"],
        by_domain["army.ml"]["leaked"],
        by_domain["army.ml"]["intended"],
    ) == (
        5,
        3,
        "army.mil",
    )
    assert [s["sender"] for s in summary["by_sender"]][:2] == ["alice@army.mil", "dave@navy.mil"]
    assert [(w["week"], w["events"]) for w in summary["by_week"]] == [("2026-W47", 7)]


def test_repeat_pattern_flags_a_sender_who_keeps_mailing_the_same_look_alike(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path
) -> None:
    doc = audit_json(fixtures / "postfix-syslog.log")
    assert [
        (r["sender"], r["domain"], r["events"], r["recipients"]) for r in doc["summary"]["repeat_patterns"]
    ] == [("alice@army.mil", "army.ml", 3, ["bob@army.ml"])]
    flagged = {(e["sender"], e["recipient"], e["repeat_pattern"]) for e in doc["events"]}
    assert ("alice@army.mil", "bob@army.ml", True) in flagged
    assert ("dave@navy.mil", "frank@army.ml", False) in flagged
    # A higher bar: no pattern.
    assert (
        audit_json("--repeat-min", "4", fixtures / "postfix-syslog.log")["summary"]["repeat_patterns"] == []
    )


def test_terminal_summary(run_audit: Callable[..., Result], fixtures: Path) -> None:
    result = run_audit("--no-progress", fixtures / "postfix-syslog.log")
    assert result.exit_code == 1
    out = result.stdout
    assert "7 mail(s) to look-alike domains: 3 leaked" in out
    assert "Repeat patterns (1)" in out
    assert "bad lines: 2" in out
    assert "gmial.com" in out and "gmail.com" in out


def test_csv_has_a_row_per_message_and_recipient(run_audit: Callable[..., Result], fixtures: Path) -> None:
    result = run_audit("--csv", fixtures / "exim-mainlog")
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["recipient"], r["outcome"], r["leaked"]) for r in table] == [
        ("bob@army.ml", "delivered", "true"),
        ("carol@army.ml", "delivered", "true"),
        ("eve@navy.ml", "bounced", "false"),
        ("frank@gmial.com", "rejected-by-typoguard", "false"),
    ]


def test_html_report_is_one_offline_page_with_charts(
    run_audit: Callable[..., Result], fixtures: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    result = run_audit(
        "--no-progress", "--html", page, fixtures / "postfix-syslog.log", fixtures / "sent.mbox"
    )
    assert result.exit_code == 1
    html = page.read_text("utf-8")
    assert html.count("<svg") == 3  # per week, top look-alike domains, top senders
    assert "2026-W47" in html and "army.ml" in html and "alice@army.mil" in html
    # Nothing is fetched: no external scripts, stylesheets, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "@import" not in html


def test_html_escapes_what_the_logs_contain(run_audit: Callable[..., Result], tmp_path: Path) -> None:
    eml = tmp_path / "evil.eml"
    eml.write_text(
        'From: "<script>alert(1)</script>" <x<b>@army.mil>\nTo: bob@army.ml\nMessage-ID: <1@x>\n'
        "Subject: <img src=x onerror=alert(1)>\n\nbody\n"
    )
    page = tmp_path / "r.html"
    run_audit("--no-progress", "--html", page, eml)
    html = page.read_text("utf-8")
    assert "<img" not in html and "<script" not in html


def test_week_of() -> None:
    from datetime import datetime

    assert week_of(datetime(2026, 1, 1)) == "2026-W01"
    assert week_of(datetime(2027, 1, 1)) == "2026-W53"
    assert week_of(None) == "unknown"


def test_weekly_chart_has_a_bar_slot_for_every_week_in_between(
    run_audit: Callable[..., Result], tmp_path: Path
) -> None:
    log = tmp_path / "mail.log"
    line = (
        "2026-{d}T10:00:00+00:00 mx postfix/smtp[1]: Q{n}: to=<bob@army.ml>, relay=mx[192.0.2.1]:25, delay=1,"
        " dsn=2.0.0, status=sent (250 ok)\n"
    )
    log.write_text(line.format(d="11-02", n=1) + line.format(d="11-25", n=2))  # weeks 45 and 48
    page = tmp_path / "r.html"
    run_audit("--no-progress", "--html", page, log)
    html = page.read_text("utf-8")
    assert [w for w in ("2026-W45", "2026-W46", "2026-W47", "2026-W48") if f">{w}</text>" in html] == [
        "2026-W45",
        "2026-W46",
        "2026-W47",
        "2026-W48",
    ]


def test_json_events_are_the_events_to_dict_with_their_repeat_flag(fixtures: Path, guard: Guard) -> None:
    # The --json writer builds each event's object itself (for speed): it must stay AuditEvent.to_dict()
    # plus repeat_pattern, same keys in the same order, for every input format.
    result = runner.audit([fixtures], guard, jobs=1)
    summary = summarise(result.events)
    doc = report_data.document(result.events, summary, result.stats, result.inputs, result.formats)
    expected = [{**e.to_dict(), "repeat_pattern": summary.is_repeat(e)} for e in result.events]
    assert len(expected) > 10
    assert [list(d.items()) for d in doc["events"]] == [list(d.items()) for d in expected]


@pytest.mark.parametrize("per_write", [1, 3, 10_000])
def test_json_is_written_in_batches_byte_for_byte_as_one_document(
    fixtures: Path, guard: Guard, per_write: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --json streams its events a batch at a time (a 200 MB log's 51 MB of JSON): scripts read the same
    # bytes as orjson's one indented document, including the document of a clean log (no events).
    result = runner.audit([fixtures], guard, jobs=1)
    summary = summarise(result.events)
    monkeypatch.setattr(report_data, "EVENTS_PER_WRITE", per_write)
    for events in (result.events, []):
        out = io.BytesIO()
        report_data.write_document(events, summary, result.stats, result.inputs, result.formats, out=out)
        doc = report_data.document(events, summary, result.stats, result.inputs, result.formats)
        assert out.getvalue() == orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
        assert len(orjson.loads(out.getvalue())["events"]) == len(events)
    assert len(result.events) > 10


def test_json_times_in_every_kind_of_zone_are_written_as_isoformat_writes_them(
    fixtures: Path, guard: Guard
) -> None:
    # The --json writer lets orjson format a time where it writes what isoformat() writes; orjson drops the
    # seconds of an offset (+05:30:15 -> +05:30) and a zone's local mean time has them (Paris before 1911).
    from datetime import UTC, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from typoguard.audit.model import AuditEvent

    result = runner.audit([fixtures / "postfix-syslog.log"], guard, jobs=1)
    base = result.events[0]
    times = [
        datetime(2026, 11, 2, 9, 0, 1),
        datetime(2026, 11, 2, 9, 0, 1, 250, tzinfo=UTC),
        datetime(2026, 11, 2, 9, 0, 1, tzinfo=timezone(timedelta(hours=-7))),
        datetime(2026, 11, 2, 9, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))),
        datetime(2026, 11, 2, 9, 0, 1, tzinfo=timezone(timedelta(microseconds=5))),
        datetime(1900, 1, 1, 9, 0, 1, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2026, 11, 2, 9, 0, 1, tzinfo=ZoneInfo("Europe/Paris")),
    ]
    events = [AuditEvent(t, *[getattr(base, f) for f in base.__slots__[1:]]) for t in times * 2]
    summary = summarise(events)
    out = io.BytesIO()
    report_data.write_document(events, summary, result.stats, result.inputs, result.formats, out=out)
    written = [e["time"] for e in orjson.loads(out.getvalue())["events"]]
    assert written == [t.isoformat() for t in times * 2]
    assert "1900-01-01T09:00:01+00:09:21" in written and "2026-11-02T09:00:01+05:30:15" in written
