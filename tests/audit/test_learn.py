"""typoguard learn: correspondents from Postfix logs, in every line format ``typoguard audit`` reads.

Only delivered mail counts (``status=sent``), joined with qmgr's ``from=`` line by queue id; each case
checks the time the correspondents table gets, which is what ``correspondents list`` shows.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from typoguard.audit.learn import LearnReport, learn_files
from typoguard.cli import main
from typoguard.store.correspondents import Tallies

FIXTURES = Path(__file__).parent / "fixtures"
NOVEMBER_30 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()  # when the logs were last written
NOW = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
PLUS_ONE = timezone(timedelta(hours=1))


def local(*fields: int) -> float:
    """UNIX time of a local wall-clock time (syslog lines carry no zone)."""
    return datetime(*fields).timestamp()


def at(t: float) -> object:
    """``t`` to the millisecond (pytest.approx is relative by default: +-30 minutes for a UNIX time)."""
    return pytest.approx(t, abs=1e-3)


Seen = dict[object, tuple[int, float, float]]  # key -> (count, first seen, last seen)


@dataclass
class Learned:
    report: LearnReport
    pairs: Seen  # (sender domain, recipient domain)
    domains: Seen
    addresses: Seen


def learn(
    paths: list[Path],
    *,
    now: float = NOW,
    is_suffix_typo: Callable[[str], bool] = lambda recipient: False,
    flush_every: int = 50_000,
) -> Learned:
    flushed: list[Tallies] = []
    report = learn_files(
        paths, is_suffix_typo=is_suffix_typo, flush=flushed.append, flush_every=flush_every, now=now
    )
    seen: tuple[Seen, Seen, Seen] = ({}, {}, {})
    for tallies in flushed:
        for table, tally in zip(seen, (tallies.pairs, tallies.domains, tallies.addresses), strict=True):
            for key, (count, first, last) in tally.data.items():
                old = table.get(key)
                table[key] = (
                    (int(count), first, last)
                    if old is None
                    else (old[0] + int(count), min(old[1], first), max(old[2], last))
                )
    return Learned(report, *seen)


def log_file(
    tmp_path: Path, content: str | bytes, *, name: str = "mail.log", mtime: float = NOVEMBER_30
) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    os.utime(path, (mtime, mtime))
    return path


# Every line shape audit's Postfix reader accepts: "{s}" is the last digit of the seconds (8 for qmgr's
# from= line, 9 for the deliveries), "{prog}" the Postfix program, "{text}" what it logged. The time is the
# one the delivery at second 39 must be learned with.
FORMATS: dict[str, tuple[str, float]] = {
    "bsd-syslog": ("Nov 26 16:47:3{s} mx postfix/{prog}[10{s}]: {text}", local(2026, 11, 26, 16, 47, 39)),
    "bsd-syslog-space-padded-day": (
        "Nov  6 16:47:3{s} mx postfix/{prog}[10{s}]: {text}",
        local(2026, 11, 6, 16, 47, 39),
    ),
    "bsd-syslog-with-priority": (
        "<22>Nov 26 16:47:3{s} mx postfix/{prog}[10{s}]: {text}",
        local(2026, 11, 26, 16, 47, 39),
    ),
    "bsd-syslog-with-facility": (
        "Nov 26 16:47:3{s} mx mail.info postfix/{prog}[10{s}]: {text}",
        local(2026, 11, 26, 16, 47, 39),
    ),
    "postfix-maillog_file": (
        "Nov 26 16:47:3{s}.250000 mx postfix-out/{prog}[10{s}]: {text}",
        local(2026, 11, 26, 16, 47, 39) + 0.25,
    ),
    "rfc3339-rsyslog-high-precision": (
        "2026-11-26T16:47:3{s}.123456+01:00 mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, 123456, PLUS_ONE).timestamp(),
    ),
    "rfc3339-utc": (
        "2026-11-26T16:47:3{s}Z mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=UTC).timestamp(),
    ),
    "journalctl-short-iso": (
        "2026-11-26T16:47:3{s}+0100 mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=PLUS_ONE).timestamp(),
    ),
    "journalctl-short-iso-precise": (
        "2026-11-26T16:47:3{s}.654321+0100 mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, 654321, PLUS_ONE).timestamp(),
    ),
    "iso-date-space-time": (
        "2026-11-26 16:47:3{s} mx postfix/{prog}[10{s}]: {text}",
        local(2026, 11, 26, 16, 47, 39),
    ),
    "iso-date-space-time-fraction-offset": (
        "2026-11-26 16:47:3{s}.123 +0100 mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, 123000, PLUS_ONE).timestamp(),
    ),
    "iso-date-space-time-comma-fraction": (
        "2026-11-26 16:47:3{s},500 mx postfix/{prog}[10{s}]: {text}",
        local(2026, 11, 26, 16, 47, 39) + 0.5,
    ),
    "iso-date-space-time-offset": (
        "2026-11-26 16:47:3{s}+01:00 mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=PLUS_ONE).timestamp(),
    ),
    "rfc3339-with-priority": (
        "<22>2026-11-26T16:47:3{s}+01:00 mx postfix/{prog}[10{s}]: {text}",
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=PLUS_ONE).timestamp(),
    ),
    "rfc5424": (
        "<22>1 2026-11-26T16:47:3{s}.5Z mx postfix/{prog} 12{s} - - {text}",
        datetime(2026, 11, 26, 16, 47, 39, 500000, UTC).timestamp(),
    ),
    "rfc5424-structured-data": (
        '<22>1 2026-11-26T16:47:3{s}+01:00 mx postfix/{prog} 12{s} - [meta sequenceId="{s}"] {text}',
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=PLUS_ONE).timestamp(),
    ),
    "rfc5424-nil-pid": (
        "<22>1 2026-11-26T16:47:3{s}Z mx postfix/{prog} - - - {text}",
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=UTC).timestamp(),
    ),
    "rfc5424-byte-order-mark": (  # syslog-ng marks a UTF-8 message with a BOM
        "<22>1 2026-11-26T16:47:3{s}Z mx postfix/{prog} 12{s} - - \ufeff{text}",
        datetime(2026, 11, 26, 16, 47, 39, tzinfo=UTC).timestamp(),
    ),
}

MESSAGE = (
    ("8", "qmgr", "4F9D195432C: from=<alice@army.mil>, size=344, nrcpt=2 (queue active)"),
    (
        "9",
        "smtp",
        "4F9D195432C: to=<bob@partner.org>, relay=mx.partner.org[192.0.2.1]:25, delay=1,"
        " delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 77)",
    ),
    (
        "9",
        "smtp",
        "4F9D195432C: to=<carol@partner.org>, relay=none, delay=1, dsn=4.4.1,"
        " status=deferred (connect to mx.partner.org[192.0.2.1]:25: Connection timed out)",
    ),
    ("9", "qmgr", "4F9D195432C: removed"),
)


def in_format(template: str, lines: tuple[tuple[str, str, str], ...] = MESSAGE) -> str:
    return "".join(template.format(s=s, prog=prog, text=text) + "\n" for s, prog, text in lines)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_audit_reads_is_learned_with_the_time_of_the_delivery(tmp_path: Path, fmt: str) -> None:
    template, when = FORMATS[fmt]
    got = learn([log_file(tmp_path, in_format(template))])
    assert (got.report.lines, got.report.delivered, got.report.learned) == (4, 1, 1)
    assert got.report.skipped_no_sender == 0  # joined with the from= line of the same queue id
    assert got.pairs == {("army.mil", "partner.org"): (1, at(when), at(when))}
    assert got.addresses.keys() == {"bob@partner.org"}  # the deferred recipient is not learned


def test_all_formats_in_one_file(tmp_path: Path) -> None:
    """Logs gathered from several hosts (or a logging setup changed midway) mix formats line by line."""
    content = "".join(
        in_format(template, tuple((s, p, t.replace("4F9D195432C", f"Q{i:04d}ABC")) for s, p, t in MESSAGE))
        for i, (template, _when) in enumerate(FORMATS.values())
    )
    got = learn([log_file(tmp_path, content)])
    assert (got.report.delivered, got.report.learned, got.report.skipped_no_sender) == (len(FORMATS),) * 2 + (
        0,
    )
    first, last = min(w for _t, w in FORMATS.values()), max(w for _t, w in FORMATS.values())
    assert got.pairs == {("army.mil", "partner.org"): (len(FORMATS), at(first), at(last))}


def test_the_audit_fixtures(tmp_path: Path) -> None:
    """The logs audit's own tests read: every status=sent line is learned, joined with its sender."""
    syslog = log_file(tmp_path, (FIXTURES / "postfix-syslog.log").read_bytes(), name="syslog.log")
    got = learn([syslog])
    assert (got.report.delivered, got.report.skipped_no_sender) == (4, 1)  # 5E6F708192 has no from= line
    assert got.pairs == {
        ("army.mil", "army.ml"): (
            2,
            at(local(2026, 11, 20, 9, 0, 2)),
            at(local(2026, 11, 21, 10, 45, 2)),
        ),
        ("army.mil", "army.mil"): (
            1,
            at(local(2026, 11, 20, 9, 0, 2)),
            at(local(2026, 11, 20, 9, 0, 2)),
        ),
    }
    mixed = log_file(tmp_path, (FIXTURES / "postfix-rfc3339-mixed.log").read_bytes(), name="mixed.log")
    got = learn([mixed])
    assert got.report.delivered == 3  # smtp to bob@army.ml and jürgen@navy.ml, discard to bob@army.ml
    assert got.addresses["jürgen@navy.ml"][1] == datetime(2026, 11, 26, 16, 47, 41, tzinfo=UTC).timestamp()
    assert got.domains["army.ml"] == (
        2,
        datetime(2026, 11, 26, 16, 47, 39, 1, UTC).timestamp(),
        datetime(2026, 11, 26, 16, 47, 42, tzinfo=UTC).timestamp(),
    )


def test_a_syslog_line_gets_the_year_of_the_file_not_of_today(tmp_path: Path) -> None:
    """A rotated log last written in March 2025 holds November 2024, however long after it is read."""
    march_2025 = local(2025, 3, 1, 12, 0, 0)
    old = log_file(
        tmp_path, in_format(FORMATS["bsd-syslog"][0]).replace("Nov 26", "Nov 20"), mtime=march_2025
    )
    got = learn([old], now=NOW)
    assert got.pairs[("army.mil", "partner.org")][1] == at(local(2024, 11, 20, 16, 47, 39))


def test_a_december_line_read_in_january_is_last_year(tmp_path: Path) -> None:
    january = local(2027, 1, 2, 0, 0, 0)
    log = log_file(tmp_path, in_format(FORMATS["bsd-syslog"][0]).replace("Nov 26", "Dec 31"), mtime=january)
    got = learn([log], now=january)
    assert got.pairs[("army.mil", "partner.org")][1] == at(local(2026, 12, 31, 16, 47, 39))


SYSLOG = """\
Nov 26 16:47:37 mx postfix/smtpd[100]: 4F9D195432C: client=localhost[127.0.0.1]
Nov 26 16:47:38 mx postfix/qmgr[101]: 4F9D195432C: from=<alice@army.mil>, size=344, nrcpt=2 (queue active)
Nov 26 16:47:39 mx postfix/smtp[102]: 4F9D195432C: to=<bob@partner.org>, relay=mx.partner.org[1.2.3.4]:25, \
delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 Ok)
Nov 26 16:47:39 mx postfix/smtp[102]: 4F9D195432C: to=<carol@partner.org>, relay=none, delay=1, \
dsn=4.4.1, status=deferred (connect timed out)
Nov 26 16:47:40 mx postfix/smtp[102]: 4F9D195432C: to=<x@army.ml>, relay=mx.army.ml[5.6.7.8]:25, \
status=sent (250 Ok)
Nov 26 16:47:41 mx postfix/qmgr[101]: 4F9D195432C: removed
Nov 26 16:47:42 mx postfix/smtp[102]: 5A0E295432D: to=<dave@partner.org>, relay=x, status=bounced (550 no)
"""

RFC3339 = """\
2026-11-26T16:47:38.123456+00:00 mx postfix/qmgr[101]: 4Nk2Xb1QZgz9sTk: from=<eve@navy.mil>, size=1, nrcpt=1
2026-11-26T16:47:39.5+00:00 mx postfix/smtp[102]: 4Nk2Xb1QZgz9sTk: to=<frank@other.org>, \
relay=r, status=sent (ok)
"""


def test_only_sent_counts_and_suffix_typos_are_never_learned(tmp_path: Path) -> None:
    got = learn([log_file(tmp_path, SYSLOG)], is_suffix_typo=lambda r: r.endswith("@army.ml"))
    assert (got.report.delivered, got.report.learned, got.report.skipped_suffix_typo) == (2, 1, 1)
    assert got.pairs == {
        ("army.mil", "partner.org"): (1, local(2026, 11, 26, 16, 47, 39), local(2026, 11, 26, 16, 47, 39))
    }


def test_learn_files_plain_gzip_and_truncated_gzip(tmp_path: Path) -> None:
    plain = log_file(tmp_path, SYSLOG)
    gz = log_file(tmp_path, gzip.compress(RFC3339.encode()), name="mail.log.1.gz")
    big = "".join(
        f"Nov 26 10:00:00 mx postfix/qmgr[1]: A{i:09X}: from=<s@army.mil>, size=1\n"
        f"Nov 26 10:00:01 mx postfix/smtp[2]: A{i:09X}: to=<r{i}@fourth.org>, relay=r, status=sent (ok)\n"
        for i in range(3000)
    ).encode()
    whole = gzip.compress(big)
    truncated = log_file(tmp_path, whole[: len(whole) // 2], name="mail.log.2.gz")
    flushed: list[Tallies] = []
    report = learn_files(
        [plain, gz, truncated],
        is_suffix_typo=lambda r: r.endswith("@army.ml"),
        flush=flushed.append,
        flush_every=100,
        now=NOW,
    )
    assert report.files == 3 and report.skipped_suffix_typo == 1
    assert len(report.errors) == 1 and "mail.log.2.gz" in report.errors[0]
    assert report.errors[0].endswith("(learned what was readable before it)")
    assert 0 < report.learned - 2 < 3000  # learned what was readable of the truncated file
    assert len(flushed) > 1  # bounded: counts go out in chunks
    domains: dict[str, float] = {}
    for t in flushed:
        for k, v in t.domains.data.items():
            domains[k] = domains.get(k, 0) + v[0]
    assert domains["partner.org"] == 1 and domains["other.org"] == 1 and "army.ml" not in domains


def test_learn_command_never_learns_a_suffix_typo(tmp_path: Path) -> None:
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    log = tmp_path / "mail.log"
    log.write_text(SYSLOG * 50)
    result = CliRunner().invoke(main, ["learn", "--config", str(cfg), str(log)])
    assert result.exit_code == 0, result.output
    assert "50 suffix typos never learned" in result.output
    out = CliRunner().invoke(main, ["correspondents", "list", "--config", str(cfg), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert '"partner.org"' in out.output and "army.ml" not in out.output


def test_learn_command_reads_rfc5424_syslog(tmp_path: Path) -> None:
    """End to end: rsyslog's RSYSLOG_SyslogProtocol23Format, as `correspondents list` shows it after."""
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    log = log_file(tmp_path, in_format(FORMATS["rfc5424"][0]))
    result = CliRunner().invoke(main, ["learn", "--config", str(cfg), str(log)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "read 4 lines from 1 files: 1 delivered, 1 learned, 0 suffix typos never learned\n"
    )
    out = CliRunner().invoke(main, ["correspondents", "list", "--config", str(cfg), "--format", "json"])
    assert out.exit_code == 0, out.output
    (row,) = [orjson.loads(line) for line in out.output.splitlines()]
    assert (row["domain"], row["count"]) == ("partner.org", 1)
    assert row["first_seen"] == row["last_seen"] == FORMATS["rfc5424"][1]


def test_a_line_of_megabytes_is_cut_and_the_rest_is_learned(tmp_path: Path) -> None:
    # Damage in a log (a run of bytes with no newline) is read up to 1 MiB and skipped: it used to be
    # gathered whole, copied again at each 1 MiB read (a 100 MB line: 4.3 s and 285 MB of memory).
    from typoguard.audit import learn as learn_module
    from typoguard.audit.reading import MAX_LINE

    text = (FIXTURES / "postfix-syslog.log").read_bytes()
    head, tail = text.split(b"\n", 3)[:3], text.split(b"\n", 3)[3]
    damaged = log_file(tmp_path, b"\n".join(head) + b"\n" + b"\x00" * (12 << 20) + b"\n" + tail, name="d.log")
    blocks = list(learn_module.read_blocks(damaged, LearnReport()))
    assert max(map(len, blocks)) <= MAX_LINE + 2 * learn_module._BLOCK
    plain = learn([log_file(tmp_path, text, name="syslog.log")])
    got = learn([damaged])
    assert got.pairs == plain.pairs
    assert got.report.lines == plain.report.lines + 1


@pytest.mark.timeout(30)  # the old reader waited for ever on its second open of the pipe
@pytest.mark.parametrize("compressed", [False, True])
def test_a_pipe_is_learned_whole(tmp_path: Path, compressed: bool) -> None:
    # `typoguard learn <(zcat mail.log.1.gz)` or a pipe of the plain log: the file was opened twice (once to
    # look for gzip's magic bytes), so the pipe lost its first bytes, and with them a line or the gzip
    # header (then nothing at all was learned).
    import threading

    text = (FIXTURES / "postfix-syslog.log").read_bytes()
    plain = learn([log_file(tmp_path, text, name="syslog.log")])
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as w:
            w.write(gzip.compress(text) if compressed else text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    got = learn([fifo])
    writer.join(10)
    assert got.report.errors == []
    assert got.pairs == plain.pairs and got.report.lines == plain.report.lines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compressed", [False, True])
def test_learn_reads_standard_input(typoguard_exe: str, tmp_path: Path, compressed: bool) -> None:
    # `journalctl -u 'postfix*' | typoguard learn -` (Debian 12 keeps the log in the journal only) or
    # `cat mail.log.2.gz | typoguard learn -`: '-' was "No such file or directory".
    import subprocess

    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    text = (SYSLOG * 50).encode()
    done = subprocess.run(
        [typoguard_exe, "learn", "--config", str(cfg), "-"],
        input=gzip.compress(text) if compressed else text, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"from 1 files:" in done.stdout and b"50 suffix typos never learned" in done.stdout
    out = CliRunner().invoke(main, ["correspondents", "list", "--config", str(cfg), "--format", "json"])
    assert '"partner.org"' in out.output and "army.ml" not in out.output


def _journal(text: str) -> bytes:
    """``journalctl -o json`` of BSD syslog lines (the fields learn needs, as journald writes them)."""
    import re

    out = []
    for line in text.splitlines():
        m = re.match(r"(\w+ +\d+ [\d:]+) (\S+) ([^\[]+)\[(\d+)\]: (.*)", line)
        assert m, line
        when = datetime.strptime(f"2026 {m[1]}", "%Y %b %d %H:%M:%S").timestamp()
        out.append(orjson.dumps({
            "__REALTIME_TIMESTAMP": str(int(when * 1e6)), "_HOSTNAME": m[2], "SYSLOG_IDENTIFIER": m[3],
            "_PID": m[4], "SYSLOG_FACILITY": "2", "PRIORITY": "6", "MESSAGE": m[5],
        }))  # fmt: skip
    return b"\n".join(out) + b"\n"


def _compressed(kind: str, data: bytes) -> bytes:
    import bz2
    import lzma

    import zstandard

    return {
        "xz": lzma.compress, "bz2": bz2.compress, "zstd": zstandard.ZstdCompressor().compress,
    }[kind](data)  # fmt: skip


@pytest.mark.parametrize("shape", ["xz", "bz2", "zstd", "journal-json", "compose", "zstd-journal-json"])
def test_every_input_audit_reads_is_learned_too(tmp_path: Path, shape: str) -> None:
    """Rotated logs compressed with xz, bzip2 or zstd, a `journalctl -o json` export and `docker compose
    logs`: audit reads them; learn read each as a line of garbage, learned nothing and said nothing."""
    plain = learn([log_file(tmp_path, SYSLOG, name="plain.log")])
    data = SYSLOG.encode()
    if "journal" in shape:
        data = _journal(SYSLOG)
    if shape == "compose":
        data = b"".join(b"mail-1  | " + line for line in data.splitlines(keepends=True))
    kind = shape.split("-", 1)[0]
    if kind in ("xz", "bz2", "zstd"):
        data = _compressed(kind, data)
    got = learn([log_file(tmp_path, data, name=f"mail.log.{shape}")])
    assert got.report.errors == []
    assert (got.report.delivered, got.report.learned) == (plain.report.delivered, plain.report.learned)
    assert got.pairs == plain.pairs


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["xz", "zstd"])
def test_a_compressed_pipe_is_learned(tmp_path: Path, kind: str) -> None:
    """`typoguard learn <(cat mail.log.2.xz)`: read once, decompressed by its first bytes."""
    import threading

    plain = learn([log_file(tmp_path, SYSLOG, name="plain.log")])
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as w:
            w.write(_compressed(kind, SYSLOG.encode()))

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    got = learn([fifo])
    writer.join(10)
    assert got.report.errors == [] and got.pairs == plain.pairs


def test_a_truncated_xz_rotation_is_an_error_and_what_came_before_is_learned(tmp_path: Path) -> None:
    big = "".join(
        f"Nov 26 10:00:00 mx postfix/qmgr[1]: A{i:09X}: from=<s@army.mil>, size=1\n"
        f"Nov 26 10:00:01 mx postfix/smtp[2]: A{i:09X}: to=<r{i}@fourth.org>, relay=r, status=sent (ok)\n"
        for i in range(3000)
    ).encode()
    whole = _compressed("xz", big)
    got = learn([log_file(tmp_path, whole[: len(whole) // 2], name="mail.log.3.xz")])
    assert len(got.report.errors) == 1 and "mail.log.3.xz" in got.report.errors[0]
    assert 0 < got.report.learned < 3000


def test_a_file_without_a_postfix_line_is_said_and_not_a_plain_nothing_learned(tmp_path: Path) -> None:
    """An Exim log given to learn: "0 learned" and exit 0 read as "nobody here writes to anyone"."""
    exim = log_file(
        tmp_path,
        "2026-11-26 16:47:39 1vQ8Zr-000Abc-4x => bob@partner.org R=dnslookup T=remote_smtp H=mx [1.2.3.4]\n",
        name="mainlog",
    )
    connects = "Nov 26 16:47:37 mx postfix/smtpd[100]: connect from x[1.2.3.4]\n"
    quiet = log_file(tmp_path, connects, name="q.log")  # a Postfix log with nothing delivered: no error
    got = learn([exim, quiet])
    assert len(got.report.errors) == 1 and "mainlog: no Postfix log line in it" in got.report.errors[0]
