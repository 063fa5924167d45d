"""Inputs: syslog years, inputs named twice, compressed formats other than gzip."""

from __future__ import annotations

import bz2
import lzma
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from typoguard.audit.timeparse import syslog_time

LINE = (
    "Dec 31 23:59:00 mx postfix/smtp[2]: Q1: to=<bob@army.ml>, relay=mx[192.0.2.1]:25, delay=1, dsn=2.0.0,"
    " status=sent (250 ok)\n"
)


def test_syslog_year_comes_from_the_reference_and_rolls_back_over_new_year() -> None:
    january = datetime(2027, 1, 2, 8, 0)
    assert syslog_time(b"Dec", b"31", b"23:59:00", january) == datetime(2026, 12, 31, 23, 59)
    assert syslog_time(b"Jan", b"2", b"07:00:00", january) == datetime(2027, 1, 2, 7, 0)
    assert syslog_time(b"Feb", b"29", b"07:00:00", january) is None  # 2026 has no Feb 29: not a date
    assert syslog_time(b"Foo", b"1", b"07:00:00", january) is None


def test_an_input_named_twice_is_read_once(audit_json: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LINE)
    doc = audit_json(log, tmp_path, tmp_path / "." / "mail.log")
    assert [(e["recipient"], e["attempts"]) for e in doc["events"]] == [("bob@army.ml", 1)]


def test_bzip2_and_xz_rotations(audit_json: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    (tmp_path / "mail.log.1.bz2").write_bytes(bz2.compress(LINE.encode()))
    (tmp_path / "mail.log.2.xz").write_bytes(lzma.compress(LINE.replace("Q1", "Q2").encode()))
    doc = audit_json(tmp_path)
    assert sorted(e["queue_id"] for e in doc["events"]) == ["Q1", "Q2"]
    assert doc["formats"] == {"postfix": 2}


def test_a_zstd_compressed_log_is_named_as_such_not_as_an_unknown_format(
    run_audit: Callable[..., Any], fixtures: Path, tmp_path: Path
) -> None:
    # logrotate with ``compresscmd zstd``: the audit does not read zstd, and says so (not "cannot tell its
    # format"), for a detected and for a forced format alike; the other inputs are still read.
    packed = tmp_path / "mail.log.2.zst"
    packed.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(64)))
    for forced in ((), ("--format", "postfix")):
        result = run_audit("--no-progress", *forced, packed, fixtures / "postfix-syslog.log")
        assert result.exit_code == 1, result.output
        assert f"{packed}: compressed with zstd, which the audit does not read; skipped" in result.output


def test_the_same_lines_in_two_files_count_once(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path, tmp_path: Path
) -> None:
    # Debian's and Ubuntu's rsyslog write mail to mail.log and again, by priority, to mail.info, mail.warn
    # and mail.err; an admin audits /var/log or mail.*. A line found in two files is one event: no refusal
    # counted twice, no attempt added twice. The same refusal logged twice in one file still counts twice.
    alone = audit_json(fixtures / "postfix-syslog.log")
    logs = fixtures.parent / "var-log"
    logs.mkdir()
    for name in ("mail.log", "mail.info", "mail.warn"):
        shutil.copy2(fixtures / "postfix-syslog.log", logs / name)
    both = audit_json(logs)
    assert len(both["inputs"]) == 3
    key = lambda e: (e["recipient"], e["outcome"], e["attempts"], e["queue_id"], e["time"])  # noqa: E731
    assert sorted(map(key, both["events"])) == sorted(map(key, alone["events"]))
    assert both["summary"]["totals"] == alone["summary"]["totals"]
    refusal = next(
        line for line in (fixtures / "postfix-syslog.log").read_text().splitlines() if "NOQUEUE" in line
    )
    twice = tmp_path / "twice.log"
    twice.write_text(f"{refusal}\n{refusal}\n")
    assert audit_json(twice)["summary"]["totals"]["events"] == 2


def test_a_line_of_megabytes_is_cut_and_the_lines_around_it_are_read(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path, tmp_path: Path
) -> None:
    # A damaged log (a run of bytes with no newline: a disk error, a binary written into it) must not be
    # held whole in memory: the reader keeps 1 MiB of such a line, counts it as a bad line, and goes on.
    from typoguard.audit import reading
    from typoguard.audit.model import SourceStats
    from typoguard.audit.sources import Format, plan

    text = (fixtures / "postfix-syslog.log").read_bytes()
    damaged = tmp_path / "mail.log"
    head, tail = text.split(b"\n", 3)[:3], text.split(b"\n", 3)[3]
    damaged.write_bytes(b"\n".join(head) + b"\n" + b"\x00" * (24 << 20) + b"\n" + tail)
    tasks, _problems = plan([damaged], Format.POSTFIX, 64 << 20)
    blocks = [len(b) for t in tasks for b in reading.byte_blocks(t, SourceStats())]
    assert max(blocks) <= reading.BLOCK + reading.MAX_LINE + 1
    plain, cut = audit_json(fixtures / "postfix-syslog.log"), audit_json(damaged)
    assert [e["recipient"] for e in cut["events"]] == [e["recipient"] for e in plain["events"]]
    assert cut["bad_lines"] == plain["bad_lines"] + 1
