"""``typoguard learn``: bootstrap correspondents from existing Postfix logs.

Only delivered mail counts: a delivery agent's ``QUEUEID: to=<rcpt>, ..., status=sent`` line, joined with
the queue manager's earlier ``QUEUEID: from=<sender>, ...`` line for the sender. Three line formats are
read: classic syslog (``Nov 26 16:47:38 host postfix/smtp[123]: ...``), RFC 3339
(``2026-11-26T16:47:38.1+00:00 host ...``) and Postfix's own ``maillog_file`` (syslog-like, with
microseconds). Files may be plain or gzip; a truncated gzip file yields what was readable and an error in
the report.

Memory stays constant: the queue-id -> sender map is bounded (oldest entries go first; a message's lines
sit close together in a log) and the counts are written to the store every ``flush_every`` deliveries.
A recipient whose domain is a suffix typo of a protected domain is never learned.
"""

from __future__ import annotations

import gzip
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from typoguard.store.correspondents import Tallies, domain_of

# The part after the timestamp and host: "postfix[/sub]/<service>[pid]: QUEUEID: rest". Multi-instance
# names such as "postfix-out/smtp" are included.
_LINE = re.compile(r"\s(?:[\w.-]+/)*(?P<service>[\w.-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]{5,32}): (?P<rest>.*)$")
_SYSLOG_TS = re.compile(
    r"(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?P<frac>\.\d+)?\s"
)
_RFC3339_TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s")
_TO = re.compile(r"to=<([^>]*)>")
_FROM = re.compile(r"^from=<([^>]*)>")
_STATUS_SENT = re.compile(r"\bstatus=sent\b")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_DELIVERY_AGENTS = frozenset({"smtp", "lmtp", "local", "virtual", "pipe", "relay", "error", "discard"})


@dataclass
class LearnReport:
    files: int = 0
    lines: int = 0
    delivered: int = 0
    learned: int = 0
    skipped_suffix_typo: int = 0
    skipped_no_sender: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A ``status=sent`` delivery: sender ('' if its from= line was not seen), recipient, UNIX time."""

    sender: str
    recipient: str
    time: float


def parse_time(line: str, *, year: int, now: float) -> float | None:
    """UNIX time of a log line's leading timestamp; syslog times (no year, local time) get ``year``."""
    m = _RFC3339_TS.match(line)
    if m:
        text = m.group(1).replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    m = _SYSLOG_TS.match(line)
    if not m:
        return None
    month = _MONTHS.get(m.group("mon"))
    if month is None:
        return None
    h, mi, s = (int(x) for x in m.group("hms").split(":"))
    try:
        t = time.mktime((year, month, int(m.group("day")), h, mi, s, 0, 0, -1))
    except (OverflowError, ValueError):
        return None
    if t > now + 86400:  # a December line read in January
        t = time.mktime((year - 1, month, int(m.group("day")), h, mi, s, 0, 0, -1))
    return t + (float(m.group("frac")) if m.group("frac") else 0.0)


def deliveries(
    lines: Iterable[str], *, year: int, now: float, max_pending: int = 200_000
) -> Iterator[Delivery]:
    """The deliveries in a stream of Postfix log lines (one pass, bounded memory)."""
    senders: dict[str, str] = {}
    for line in lines:
        m = _LINE.search(line)
        if m is None:
            continue
        service, qid, rest = m.group("service"), m.group("qid"), m.group("rest")
        if service == "qmgr":
            f = _FROM.match(rest)
            if f:
                senders[qid] = f.group(1)
                if len(senders) > max_pending:
                    del senders[next(iter(senders))]
            elif rest.startswith("removed"):
                senders.pop(qid, None)
            continue
        if service not in _DELIVERY_AGENTS or not _STATUS_SENT.search(rest):
            continue
        t = _TO.search(rest)
        if t is None or "@" not in t.group(1):
            continue
        when = parse_time(line, year=year, now=now) or now
        yield Delivery(senders.get(qid, ""), t.group(1), when)


def read_lines(path: Path, report: LearnReport) -> Iterator[str]:
    """Lines of a plain or gzip file; a read error ends the file and is added to ``report.errors``."""
    try:
        with path.open("rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rb") as f:
            for raw in f:
                report.lines += 1
                yield raw.decode("utf-8", "replace").rstrip("\r\n")
    except (OSError, EOFError, zlib.error) as exc:
        report.errors.append(f"{path}: {exc} (learned what was readable before it)")


def learn_files(
    paths: Iterable[Path],
    *,
    is_suffix_typo: Callable[[str], bool],
    flush: Callable[[Tallies], None],
    flush_every: int = 50_000,
    now: float | None = None,
) -> LearnReport:
    """Read Postfix logs and hand correspondent counts to ``flush`` in bounded chunks.

    ``is_suffix_typo(recipient)`` says whether the recipient's domain must never be learned.
    """
    now = time.time() if now is None else now
    report = LearnReport()
    tallies = Tallies.new()
    pending = 0
    for path in paths:
        report.files += 1
        try:
            year = datetime.fromtimestamp(path.stat().st_mtime).year
        except OSError:
            year = datetime.fromtimestamp(now).year
        for d in deliveries(read_lines(path, report), year=year, now=now):
            report.delivered += 1
            if is_suffix_typo(d.recipient):
                report.skipped_suffix_typo += 1
                continue
            if not d.sender or "@" not in d.sender:
                report.skipped_no_sender += 1  # bounces (from=<>) and messages whose from= line we missed
            tallies.add(d.sender, d.recipient, d.time)
            if domain_of(d.recipient):
                report.learned += 1
                pending += 1
            if pending >= flush_every:
                flush(tallies)
                tallies, pending = Tallies.new(), 0
    if pending:
        flush(tallies)
    return report
