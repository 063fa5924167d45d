"""Inputs: syslog years, inputs named twice, compressed formats other than gzip (bzip2, xz, zstd)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

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


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)  # default level, content size and no checksum


#: A zstd skippable frame (pzstd writes one before each frame; other tools keep metadata in them).
SKIPPABLE = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"pzstd"


def test_a_rotated_set_with_a_zstd_rotation(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # logrotate with ``compresscmd /usr/bin/zstd``, ``compressext .zst`` (Arch, Fedora).
    (tmp_path / "mail.log").write_text(LINE.replace("Q1", "Q0"))
    (tmp_path / "mail.log.1").write_text(LINE)
    (tmp_path / "mail.log.2.zst").write_bytes(_zstd(LINE.replace("Q1", "Q2").encode()))
    doc = audit_json(tmp_path)
    assert sorted(e["queue_id"] for e in doc["events"]) == ["Q0", "Q1", "Q2"]
    assert doc["formats"] == {"postfix": 3}
    assert doc["errors"] == []


def test_zstd_frames_concatenated_and_skippable_frames_are_read_whole(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # ``cat a.zst b.zst > c.zst`` (zstd reads it as one), pzstd's skippable frame before each frame, and a
    # file named like a plain rotation (``mail.log.3``): detected by its magic bytes, not by its name.
    two = [LINE.replace("Q1", f"Q{i}").encode() for i in (3, 4, 5)]
    (tmp_path / "mail.log.2.zst").write_bytes(_zstd(two[0]) + _zstd(two[1]))
    (tmp_path / "mail.log.3").write_bytes(SKIPPABLE + _zstd(two[2]) + SKIPPABLE + _zstd(LINE.encode()))
    doc = audit_json(tmp_path)
    assert sorted(e["queue_id"] for e in doc["events"]) == ["Q1", "Q3", "Q4", "Q5"]
    assert doc["formats"] == {"postfix": 2}
    assert doc["errors"] == []


def test_a_truncated_or_corrupt_zstd_rotation_is_an_error_and_what_came_before_is_read(
    audit_json: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    # The zstd library ends a cut frame in silence, as if the file were whole: the audit must say so.
    lines = "".join(
        LINE.replace("Q1", f"Q{i:04X}")
        .replace("bob", f"carol{i * 7919 % 10007}")
        .replace(":00 ", f":{i % 60:02d} ")
        for i in range(6000)
    ).encode()
    whole = _zstd(lines)
    (tmp_path / "mail.log.2.zst").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "mail.log.3.zst").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(64)))  # a header, then junk
    (tmp_path / "mail.log.4.gz").write_bytes(b"\x1f\x8b" + bytes(range(64)))  # the same for gzip
    (tmp_path / "mail.log.1").write_text(LINE)
    doc = audit_json(tmp_path)
    assert any("mail.log.2.zst: input ends early" in err for err in doc["errors"]), doc["errors"]
    assert any(
        "mail.log.3.zst: compressed with zstd, but its first bytes cannot be decompressed" in err
        for err in doc["errors"]
    ), doc["errors"]
    assert any(
        "mail.log.4.gz: compressed with gzip, but its first bytes cannot be decompressed" in err
        for err in doc["errors"]
    ), doc["errors"]
    carols = [e for e in doc["events"] if e["recipient"].startswith("carol")]
    assert 0 < len(carols) < 6000
    assert [e["queue_id"] for e in doc["events"] if e["recipient"] == "bob@army.ml"] == ["Q1"]


@pytest.mark.parametrize("kind", ["zstd", "gzip"])
def test_a_compressed_bomb_is_read_in_bounded_memory(typoguard_exe: str, tmp_path: Path, kind: str) -> None:
    # Under 1 MB on disk, 1 GiB of one run of bytes once decompressed, between two real lines: both are
    # found, and the audit's memory stays flat (the decompressed data is never held whole). gzip: 1 MiB of
    # it read at a time was decompressed whole (2 GB of memory for this file).
    import zstandard

    bomb = tmp_path / ("mail.log.2." + {"zstd": "zst", "gzip": "gz"}[kind])
    if kind == "zstd":
        with bomb.open("wb") as f, zstandard.ZstdCompressor(level=1).stream_writer(f) as w:
            w.write(LINE.encode())
            zeros = b"\0" * (1 << 20)
            for _ in range(1024):
                w.write(zeros)
            w.write(b"\n" + LINE.replace("Q1", "Q9").encode())
    else:  # gzip members, concatenated: 16 of 64 MiB
        member = gzip.compress(b"\0" * (64 << 20), 9)
        last = gzip.compress(b"\n" + LINE.replace("Q1", "Q9").encode())
        bomb.write_bytes(gzip.compress(LINE.encode()) + member * 16 + last)
    assert bomb.stat().st_size < 1 << 20
    out = tmp_path / "out.json"
    with out.open("wb") as sink:
        child = subprocess.Popen(
            [typoguard_exe, "audit", "--protect", "army.mil", "--json", "--no-progress", str(bomb)],
            stdout=sink, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 1
    doc = orjson.loads(out.read_bytes())
    assert sorted(e["queue_id"] for e in doc["events"]) == ["Q1", "Q9"]
    assert usage.ru_maxrss < 400 << 10  # KiB: under 400 MiB for 1 GiB decompressed


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
