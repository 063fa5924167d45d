"""Mail logs inside another format: ``journalctl -o json`` exports and ``docker compose logs`` output.

The journal records are made as journald stores and ``journalctl -o json`` prints them: every field a string
(a byte array where the value is not UTF-8), the time in microseconds since the epoch, the program and pid
from the syslog call, and the many fields journald adds.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from typoguard.audit import runner
from typoguard.audit.sources import Format, detect
from typoguard.guard import Guard

_SYSLOG = re.compile(r"^(\w{3}) +(\d+) (\d\d:\d\d:\d\d) (\S+) ([\w./-]+)\[(\d+)\]: (.*)$", re.S)
_MONTHS = {datetime(2026, i, 1).strftime("%b"): i for i in range(1, 13)}
FIXTURE_MTIME = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()  # as conftest dates the fixtures
_EXE = {"smtp": "/usr/lib/postfix/sbin/smtp", "sm-mta": "/usr/sbin/sendmail-mta", "exim4": "/usr/sbin/exim4"}


def record(  # noqa: PLR0917 - the fields of one syslog line
    when: datetime, host: str, ident: str, pid: str, message: str | bytes, n: int
) -> dict[str, Any]:
    """One journal entry as ``journalctl -o json`` prints it (``when``: naive local time)."""
    us = int(when.timestamp()) * 1_000_000 + 123_456
    comm = ident.rsplit("/", 1)[-1]
    unit = "exim4.service" if comm.startswith("exim") else "postfix@-.service"
    return {
        "__CURSOR": f"s=6c1f3b2a9e8d4c7b;i={n:x};b=0f1e2d3c4b5a;m={n * 1000:x};t={us:x};x=9a8b7c6d5e4f",
        "__REALTIME_TIMESTAMP": str(us),
        "__MONOTONIC_TIMESTAMP": str(5_000_000 + n * 1000),
        "_BOOT_ID": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "_MACHINE_ID": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "_HOSTNAME": host,
        "PRIORITY": "6",
        "SYSLOG_FACILITY": "2",
        "_UID": "107",
        "_GID": "114",
        "_CAP_EFFECTIVE": "0",
        "_TRANSPORT": "syslog",
        "SYSLOG_IDENTIFIER": ident,
        "SYSLOG_PID": pid,
        "SYSLOG_TIMESTAMP": when.strftime("%b %e %H:%M:%S "),
        "MESSAGE": list(message) if isinstance(message, bytes) else message,
        "_PID": pid,
        "_COMM": comm,
        "_EXE": _EXE.get(comm, f"/usr/lib/postfix/sbin/{comm}"),
        "_CMDLINE": f"{comm} -n {comm} -t unix -u -c",
        "_SYSTEMD_CGROUP": f"/system.slice/system-postfix.slice/{unit}",
        "_SYSTEMD_UNIT": unit,
        "_SYSTEMD_SLICE": "system.slice",
        "_SYSTEMD_INVOCATION_ID": "5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
        "_SOURCE_REALTIME_TIMESTAMP": str(us - 40),
    }


def from_syslog(line: bytes, n: int, year: int = 2026) -> dict[str, Any] | None:
    """The journal entry of a BSD syslog line (None for a line that is not one); a MESSAGE that is not
    UTF-8 becomes a byte array, as journald stores it."""
    m = _SYSLOG.match(line.decode("latin-1"))
    if m is None:
        return None
    month, day, hms, host, ident, pid, text = m.groups()
    when = datetime(year, _MONTHS[month], int(day), *map(int, hms.split(":")))
    raw = text.encode("latin-1")
    try:
        message: str | bytes = raw.decode("utf-8")
    except UnicodeDecodeError:
        message = raw
    return record(when, host, ident, pid, message, n)


_SYSTEMD = record(datetime(2026, 11, 20, 8, 0), "mx1", "systemd", "1", "Started postfix@-.service.", 0) | {
    "_SYSTEMD_UNIT": "init.scope",
    "UNIT": "postfix@-.service",
    "CODE_FILE": "src/core/job.c",
    "MESSAGE_ID": "39f53479d3a045ac8e11786248231fbf",
}
_KERNEL_NO_MESSAGE = {
    "__CURSOR": "s=1;i=2",
    "__REALTIME_TIMESTAMP": "1795000000000000",
    "_TRANSPORT": "kernel",
}
# Journald stores a value that is not UTF-8 as bytes; journalctl prints it as an array of numbers.
_LATIN1_LINE = (
    b"Nov 23 08:30:01 mx1 postfix/smtp[109]: 6F708192AB: to=<h\xe9l\xe8ne@army.ml>,"
    b" relay=mx.army.ml[192.0.2.10]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)\n"
)
_LATIN1_FROM = (
    b"Nov 23 08:30:00 mx1 postfix/qmgr[103]: 6F708192AB: from=<alice@army.mil>, size=9, nrcpt=1"
    b" (queue active)\n"
)


def dumps(entry: dict[str, Any], style: str) -> bytes:
    if style == "spaced":  # journalctl before systemd 246: `{ "KEY" : "value", ... }`
        return (
            b"{ " + ", ".join(f"{json.dumps(k)} : {json.dumps(v)}" for k, v in entry.items()).encode() + b" }"
        )
    return json.dumps(entry, separators=(",", ":")).encode()


def journal_of(plain: bytes, style: str = "compact", *, cut_last: bool = True, year: int = 2026) -> bytes:
    """The lines of ``plain`` as ``journalctl -o json`` (``json-seq``: each record after an RS) prints
    them, with records of other units among them and, if ``cut_last``, a last record cut short."""
    entries: list[dict[str, Any]] = [_SYSTEMD, _KERNEL_NO_MESSAGE]
    for n, line in enumerate(plain.splitlines(), 1):
        entry = from_syslog(line, n, year)
        if entry is not None:
            entries.append(entry)
    out = [(b"\x1e" if style == "json-seq" else b"") + dumps(e, style) + b"\n" for e in entries]
    if cut_last:
        out.append(
            out[-1][: len(out[-1]) // 2]
        )  # journalctl killed while writing (a full disk, a pipe closed)
    return b"".join(out)


def comparable(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The events, times as local wall-clock seconds (syslog's are naive local, the journal's have a zone)."""
    out = []
    for e in doc["events"]:
        t = datetime.fromisoformat(e["time"])
        if t.tzinfo is not None:
            t = t.astimezone().replace(tzinfo=None)
        out.append((
            t.replace(microsecond=0), e["sender"], e["recipient"], e["outcome"], e["attempts"],
            e["queue_id"], e["message_id"], e["detail"],
        ))  # fmt: skip
    return out


@pytest.fixture
def postfix_plain(fixtures: Path) -> Path:
    """The Postfix fixture with a delivery to a recipient whose name is Latin-1 bytes (not UTF-8)."""
    log = fixtures / "mail.log"
    log.write_bytes((fixtures / "postfix-syslog.log").read_bytes() + _LATIN1_FROM + _LATIN1_LINE)
    os.utime(log, (FIXTURE_MTIME, FIXTURE_MTIME))
    return log


@pytest.mark.parametrize("style", ["compact", "spaced", "json-seq"])
def test_journalctl_json_export_of_postfix_is_read_like_its_syslog_lines(
    audit_json: Callable[..., dict[str, Any]], postfix_plain: Path, tmp_path: Path, style: str
) -> None:
    # `journalctl -o json -u 'postfix*' > postfix.json` (Debian 12 keeps Postfix's log in the journal only),
    # or what a log shipper stored. Today: "cannot tell its format; skipped".
    plain = audit_json(postfix_plain)
    journal = tmp_path / "postfix.json"
    # journalctl prints a field longer than 4096 bytes as null without --all: a line not read, so a bad one
    long_reject = record(datetime(2026, 11, 22, 11, 4), "mx1", "postfix/smtpd", "107", "x", 99) | {
        "MESSAGE": None
    }
    journal.write_bytes(dumps(long_reject, style) + b"\n" + journal_of(postfix_plain.read_bytes(), style))
    doc = audit_json(journal)
    assert doc["formats"] == {"postfix": 1}
    assert doc["errors"] == []
    assert comparable(doc) == comparable(plain)
    assert "hélène@army.ml" in {e["recipient"] for e in doc["events"]}  # the byte array, read as Latin-1
    # The syslog fixture's garbage line has no journal record; the record cut short is one bad line. The
    # records of systemd and the kernel (one without a MESSAGE) are passed over.
    assert doc["bad_lines"] == plain["bad_lines"] - 1 + 2
    assert (
        sum(
            "postfix/smtpd: a record whose MESSAGE the export left out" in x for x in doc["bad_line_examples"]
        )
        == 1
    )
    assert datetime.fromisoformat(doc["events"][0]["time"]).tzinfo is not None  # the year is the journal's
    assert doc["events"][0]["time"].startswith(datetime(2026, 11, 20, 9, 0, 2).astimezone().isoformat()[:19])


def test_journal_export_with_format_named_and_compressed(
    audit_json: Callable[..., dict[str, Any]], postfix_plain: Path, tmp_path: Path
) -> None:
    # `--format postfix` names the log inside the export; a rotated export is gzip-compressed.
    plain = comparable(audit_json(postfix_plain))
    body = journal_of(postfix_plain.read_bytes(), cut_last=False)
    journal = tmp_path / "postfix.json"
    journal.write_bytes(body)
    assert comparable(audit_json("--format", "postfix", journal)) == plain
    packed = tmp_path / "postfix.json.1.gz"
    packed.write_bytes(gzip.compress(body))
    assert comparable(audit_json(packed)) == plain
    assert detect(journal) is Format.POSTFIX and detect(packed) is Format.POSTFIX


def test_a_big_journal_export_cut_for_workers_gives_the_serial_answer(
    guard: Guard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A big export is cut into byte ranges for worker processes: a message's qmgr line may sit in the range
    # before its delivery, or far back in the same range (found by looking back in converted lines).
    lines = []
    for i in range(600):
        qid, ts = f"{0x100000 + i:X}", f"Nov 20 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        rcpt = f"user{i % 97}@" + (
            ("army.ml", "navy.ml", "gmial.com")[i % 3] if i % 5 == 0 else "example.org"
        )
        lines.append(f"{ts} mx postfix/cleanup[1]: {qid}: message-id=<{i}@army.mil>\n")
        lines.append(
            f"{ts} mx postfix/qmgr[2]: {qid}: from=<sender{i % 13}@army.mil>, size=1, nrcpt=1"
            " (queue active)\n"
        )
        lines.extend(f"{ts} mx postfix/smtpd[4]: connect from unknown[10.0.0.{k}]\n" for k in range(i % 40))
        lines.append(
            f"{ts} mx postfix/smtp[3]: {qid}: to=<{rcpt}>, relay=mx[192.0.2.1]:25, delay=1, dsn=2.0.0,"
            " status=sent (250 ok)\n"
        )
    plain = tmp_path / "mail.log"
    plain.write_text("".join(lines))
    os.utime(plain, (FIXTURE_MTIME, FIXTURE_MTIME))
    journal = tmp_path / "mail.json"
    journal.write_bytes(journal_of(plain.read_bytes(), cut_last=False))

    def key(result: runner.AuditResult) -> list[tuple[Any, ...]]:
        return sorted((e.recipient, e.outcome.value, e.attempts, e.sender, e.message_id, e.queue_id)
                      for e in result.events)  # fmt: skip

    expected = key(runner.audit([plain], guard, jobs=1))
    assert len(expected) == 120 and all(e[3] != "?" and e[4] for e in expected)
    assert key(runner.audit([journal], guard, jobs=1)) == expected
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    parallel = runner.audit([journal], guard, jobs=2, chunk_bytes=64 << 10)
    assert key(parallel) == expected
    assert parallel.stats.bad_lines == 0


def test_journal_export_through_standard_input(
    typoguard_exe: str, postfix_plain: Path, tmp_path: Path
) -> None:
    # `journalctl -o json -u 'postfix*' | typoguard audit -`
    journal = journal_of(postfix_plain.read_bytes())
    piped = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--protect", "gmail.com", "--json", "--no-progress",
         "-"],
        input=journal, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert piped.returncode == 1, piped.stderr
    doc = json.loads(piped.stdout)
    assert doc["formats"] == {"postfix": 1} and doc["inputs"] == ["(standard input)"]
    assert {e["recipient"] for e in doc["events"]} >= {"bob@army.ml", "eve@gmial.com", "hélène@army.ml"}


def test_journal_export_of_sendmail_and_of_exim_through_syslog(
    audit_json: Callable[..., dict[str, Any]], fixtures: Path, tmp_path: Path
) -> None:
    # Sendmail always logs through syslog; Exim with log_file_path = syslog: its line, with its own time,
    # is the MESSAGE (SYSLOG_IDENTIFIER exim4 on Debian).
    sendmail = fixtures / "sendmail-maillog"
    journal = tmp_path / "sendmail.json"
    journal.write_bytes(journal_of(sendmail.read_bytes(), year=2025))  # December, before 2026-11-30
    plain, doc = audit_json(sendmail), audit_json(journal)
    assert doc["formats"] == {"sendmail": 1}
    assert comparable(doc) == comparable(plain) and len(plain["events"]) > 3

    exim = fixtures / "exim-mainlog"
    entries = []
    for n, line in enumerate(exim.read_text().splitlines(), 1):
        if line[:4].isdigit():
            when = datetime.fromisoformat(line[:19])
            entries.append(record(when, "mx1", "exim4", str(4000 + n), line, n))
    entries.insert(1, _SYSTEMD)
    journal = tmp_path / "exim.json"
    journal.write_bytes(b"".join(dumps(e, "compact") + b"\n" for e in entries))
    plain, doc = audit_json(exim), audit_json(journal)
    assert doc["formats"] == {"exim": 1}
    assert [e[1:] for e in comparable(doc)] == [e[1:] for e in comparable(plain)]
    assert doc["bad_lines"] == 0  # the garbage line of the fixture is not in the journal; systemd's is passed


def test_a_journal_export_without_mail_is_named_as_such(
    run_audit: Callable[..., Any], tmp_path: Path
) -> None:
    journal = tmp_path / "system.json"
    records = (_SYSTEMD | {"__REALTIME_TIMESTAMP": str(1795000000000000 + i)} for i in range(50))
    journal.write_bytes(b"".join(dumps(e, "compact") + b"\n" for e in records))
    result = run_audit("--no-progress", journal)
    assert result.exit_code == 2
    assert "journal export (journalctl -o json) with no Postfix, Exim or Sendmail" in result.output


def _compose(plain: bytes, names: tuple[str, ...], timestamps: str, color: bool = False) -> bytes:
    """``docker compose logs`` of ``plain``: each line behind its service's name padded to the longest name
    plus one, then `` | `` (in the service's colour on a terminal), and with ``--timestamps`` an RFC 3339
    time in nanoseconds (Docker's, in UTC with trailing zeros cut, or Compose's own with the local offset)."""
    width = max(map(len, names)) + 1
    out = []
    for n, line in enumerate(plain.splitlines(keepends=True)):
        prefix = f"{names[n % len(names)]:<{width}s} | ".encode()
        if color:
            prefix = b"\x1b[36m" + prefix + b"\x1b[0m"
        stamp = f"2026-11-{20 + n // 8:02d}T09:00:{n % 60:02d}.{123456780 + n}".encode()
        stamp = stamp + timestamps.encode() + b" " if timestamps else b""
        out.append(prefix + stamp + line)
    return b"".join(out)


@pytest.mark.parametrize(
    ("names", "timestamps", "color"),
    [
        (("mail-1",), "", False),  # docker compose (v2) logs, docker-mailserver
        (("mail_1",), "", False),  # docker-compose (v1)
        (
            ("postfix-mailcow-1", "postfix-mailcow-2"),
            "",
            False,
        ),  # mailcow: docker compose logs postfix-mailcow
        (("mail-1",), "Z", False),  # docker compose logs --timestamps
        (("mail-1",), "+01:00", True),  # a later Compose v2, written to a terminal and copied
    ],
    ids=["compose-v2", "compose-v1", "mailcow-scaled", "timestamps", "local-offset-in-colour"],
)
def test_docker_compose_logs_are_read_like_the_log_inside(  # noqa: PLR0917 - fixtures and parameters
    audit_json: Callable[..., dict[str, Any]], postfix_plain: Path, tmp_path: Path,
    names: tuple[str, ...], timestamps: str, color: bool,
) -> None:  # fmt: skip
    plain = audit_json(postfix_plain)
    log = tmp_path / "compose.log"
    log.write_bytes(_compose(postfix_plain.read_bytes(), names, timestamps, color))
    os.utime(log, (FIXTURE_MTIME, FIXTURE_MTIME))
    doc = audit_json(log)
    assert doc["formats"] == {"postfix": 1}
    assert comparable(doc) == comparable(plain)
    # Behind Docker's time, the fixture's garbage line starts like a log line: another program's, passed over
    assert doc["bad_lines"] == plain["bad_lines"] - (1 if timestamps else 0)


def test_docker_logs_timestamps_before_a_syslog_line(
    audit_json: Callable[..., dict[str, Any]], postfix_plain: Path, tmp_path: Path
) -> None:
    # `docker logs --timestamps mailserver`: docker-mailserver's container writes syslog lines, with their own
    # time, behind docker's. Today the deliveries are bad lines.
    plain = audit_json(postfix_plain)
    log = tmp_path / "docker.log"
    log.write_bytes(
        b"".join(
            line.split(b"| ", 1)[1]
            for line in _compose(postfix_plain.read_bytes(), ("m",), "Z").splitlines(True)
        )
    )
    os.utime(log, (FIXTURE_MTIME, FIXTURE_MTIME))
    doc = audit_json(log)
    assert comparable(doc) == comparable(plain)
    # Behind Docker's time, the fixture's garbage line starts like a log line: another program's, passed over
    assert doc["bad_lines"] == plain["bad_lines"] - 1
