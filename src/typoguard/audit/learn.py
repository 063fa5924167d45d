"""``typoguard learn``: bootstrap correspondents from existing Postfix logs.

Only delivered mail counts: a delivery agent's ``QUEUEID: to=<rcpt>, ..., status=sent`` line, joined with
the queue manager's earlier ``QUEUEID: from=<sender>, ...`` line for the sender. Lines are read by the
audit's Postfix line reader (``postfix_lines``), so every format ``typoguard audit`` reads is learned, with
the same times: BSD syslog, ISO 8601 / RFC 3339, RFC 5424 and Postfix's own ``maillog_file`` (whose
microseconds are kept). Files may be plain or compressed (gzip, bzip2, xz, zstd: told by their first
bytes, as the audit tells them), pipes too, and ``-`` is standard input; a ``journalctl -o json`` export and
``docker compose logs`` are unwrapped as the audit unwraps them. A truncated compressed file yields what
was readable and an error in the report.

Memory stays constant: the queue-id -> sender map is bounded (oldest entries go first; a message's lines
sit close together in a log) and the counts are written to the store every ``flush_every`` deliveries.
A recipient whose domain is a suffix typo of a protected domain is never learned.

Speed: a block of lines is searched for ``status=sent`` with ``bytes.find`` and for qmgr's lines with
``postfix_lines.qmgr_lines``, so no Python code runs for the other lines. Within a block, senders are
collected before deliveries are read and removals applied after, which keeps the log's order for every
message whose queue id is not used twice within one block.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from typoguard.audit.classify import decode
from typoguard.audit.postfix_lines import PostfixLineReader, has_priority_lines, qmgr_lines
from typoguard.audit.reading import whole_lines
from typoguard.audit.sources import POSTFIX_LINE, STDIN, STDIN_LABEL, STREAM_ERRORS, decompressing, stdin_fd
from typoguard.audit.timeparse import reference_time
from typoguard.audit.unwrap import Unwrapper, wrapper_of
from typoguard.store.correspondents import Tallies, domain_of

_BLOCK = 1 << 20  # bytes read at a time
_DELIVERY_AGENTS = frozenset(
    {b"smtp", b"lmtp", b"local", b"virtual", b"pipe", b"relay", b"error", b"discard"}
)


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


def deliveries(
    blocks: Iterable[bytes], reference: datetime, *, now: float, max_pending: int = 200_000
) -> Iterator[Delivery]:
    """The deliveries in blocks of whole Postfix log lines (one pass, bounded memory).

    ``reference``: when the log was last written (the year of syslog lines); a line whose time is not a
    real date (``Feb 29`` of another year) counts at ``now``.
    """
    reader = PostfixLineReader(reference, fractions=True)
    senders: OrderedDict[bytes, bytes] = OrderedDict()  # oldest first: dropping it is O(1)
    for block in blocks:
        general = has_priority_lines(block)
        froms, removed = qmgr_lines(block, general)
        senders.update(froms)
        for _ in range(len(senders) - max_pending):
            senders.popitem(last=False)
        pos = block.find(b"status=sent")
        while pos >= 0:
            start = block.rfind(b"\n", 0, pos) + 1
            end = block.find(b"\n", pos)
            if end < 0:
                end = len(block)
            line = reader.delivery(block, start, end, general)
            if line is not None:
                t, _host, program, qid, recipient, status, _detail = line
                if (
                    status == b"sent"
                    and program[program.rfind(b"/") + 1 :] in _DELIVERY_AGENTS
                    and b"@" in recipient
                ):
                    when = t.timestamp() if t is not None else now
                    yield Delivery(decode(senders.get(qid, b"")), decode(recipient), when)
            pos = block.find(b"status=sent", end)
        for gone in removed:
            senders.pop(gone, None)


def read_blocks(path: Path, report: LearnReport, postfix_seen: list[bool] | None = None) -> Iterator[bytes]:
    """Blocks of whole log lines of a file, counted in ``report.lines``: plain or compressed (gzip, bzip2,
    xz, zstd, told by the first bytes), a journal export or container logs (unwrapped as the audit does);
    a read error ends the file and is added to ``report.errors``."""
    stdin = path == STDIN
    try:
        # One open, the magic bytes peeked, not read: a pipe (``<(zcat mail.log.gz)``) loses nothing.
        with (
            os.fdopen(stdin_fd(), "rb") if stdin else path.open("rb") as raw,
            decompressing(raw) as f,
        ):
            unwrap: Callable[[bytes], bytes] | None = None
            for n, block in enumerate(whole_lines(iter(lambda: f.read1(_BLOCK), b""))):  # type: ignore[attr-defined]
                if n == 0 and (wrapper := wrapper_of(block[:65536])) is not None:
                    unwrap = Unwrapper(wrapper, "postfix").block
                report.lines += block.count(b"\n") + (not block.endswith(b"\n"))
                lines = block if unwrap is None else unwrap(block)
                if postfix_seen is not None and not postfix_seen[0] and POSTFIX_LINE.search(lines):
                    postfix_seen[0] = True
                yield lines
    except STREAM_ERRORS as exc:
        name = STDIN_LABEL if stdin else str(path)
        report.errors.append(f"{name}: {exc} (learned what was readable before it)")


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
    stdin_read = False
    for path in paths:
        if path == STDIN:  # '-': standard input, read once however often it is named
            if stdin_read:
                continue
            stdin_read = True
        report.files += 1
        reference = reference_time(path, now)
        delivered, lines, errors, postfix_seen = report.delivered, report.lines, len(report.errors), [False]
        for d in deliveries(read_blocks(path, report, postfix_seen), reference, now=now):
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
        # An Exim or Sendmail log, a config file: never a plain "0 learned" for it
        unread = report.lines > lines and report.delivered == delivered and not postfix_seen[0]
        if unread and len(report.errors) == errors:
            name = STDIN_LABEL if path == STDIN else str(path)
            report.errors.append(
                f"{name}: no Postfix log line in it, nothing learned (learn reads Postfix logs; "
                "typoguard audit reads Exim and Sendmail logs too)"
            )
    if pending:
        flush(tallies)
    return report
