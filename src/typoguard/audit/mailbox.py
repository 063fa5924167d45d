"""Mailboxes of sent mail: mbox, Maildir and single ``.eml`` files.

Only headers are read (never bodies, which stay on disk): the recipients are To/Cc/Bcc, or, when the
message was re-sent, the topmost Resent-To/Resent-Cc/Resent-Bcc block with its Resent-From and
Resent-Date. Every recipient at a look-alike domain is an event with outcome ``sent``: it left, and the
mailbox cannot tell whether it arrived. Copies of one message (same Message-ID and recipient) count once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.sources import STREAM_ERRORS, Task, open_bytes

MAX_HEADER = 256 << 10  # a header block longer than this is not mail; the rest is skipped
MAX_LINE = 64 << 10  # an mbox is read in pieces of lines of at most this
_PARSER = HeaderParser()
# Addresses by pattern, for a header that Python's address parser cannot take apart (it recurses once per
# nested comment: "(((...a@b" 1,000 deep raised RecursionError and ended the audit).
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"@\\]+@[^\s<>()\[\],;:\"@\\]+")


def _addresses(values: list[str]) -> list[str]:
    """The addresses of address-list header values (To, Cc, From, ...): Python's parser, or the pattern
    when the parser gives up on a hostile value."""
    try:
        return [address for _name, address in getaddresses(values)]
    except RecursionError:
        return _BARE_ADDRESS.findall(" ".join(values))


def _text(value: object) -> str:
    """A header value as text; RFC 2047 encoded words decoded; never raises."""
    raw = str(value)
    if "=?" not in raw:
        return raw
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):
        return raw


def events_of(msg: Message, source: str, classifier: Classifier, fmt: str) -> Iterator[Partial]:
    resent = any(msg.get(h) is not None for h in ("Resent-To", "Resent-Cc", "Resent-Bcc"))
    prefix = "Resent-" if resent else ""
    # With several Resent- blocks, the topmost (first in the header) is the latest re-sending.
    values = [
        _text(v)
        for h in ("To", "Cc", "Bcc")
        for v in (msg.get_all(prefix + h) or [])[: 1 if resent else None]
    ]
    if not values:
        return
    sender_field = msg.get(prefix + "From") or msg.get(prefix + "Sender") or ""
    senders = _addresses([_text(sender_field)])
    sender = senders[0] if senders and senders[0] else "?"
    date = msg.get(prefix + "Date")
    try:
        when = parsedate_to_datetime(str(date)) if date else None
    except (TypeError, ValueError, IndexError):
        when = None
    mid = str(msg.get("Resent-Message-ID" if resent else "Message-ID") or "").strip()
    for address in _addresses(values):
        if "@" not in address:
            continue
        hit = classifier.recipient_hit(address.encode("utf-8", "surrogateescape"))
        if hit is None:
            continue
        yield Partial(
            key=(mid, address.lower()) if mid else None,
            time=when,
            sender=sender,
            recipient=address,
            hit=hit,
            outcome=Outcome.SENT,
            attempts=1,
            source=source,
            fmt=fmt,
            queue_id="",
            message_id=mid,
            detail=_text(msg.get("Subject", ""))[:200],
        )


def _parse(head: bytes, where: str, stats: SourceStats) -> Message | None:
    stats.lines += 1
    if not head.strip():
        stats.bad(where, "empty message")
        return None
    # Raw 8-bit headers are common in old mail: each line is UTF-8 if valid, else Latin-1 (never U+FFFD).
    msg = _PARSER.parsestr("".join(decode(line) for line in head.splitlines(keepends=True)))
    if not msg.keys():
        stats.bad(where, head[:160])
        return None
    return msg


def read_eml(
    path: Path, source: str, classifier: Classifier, stats: SourceStats, fmt: str
) -> Iterator[Partial]:
    """One message file (``.eml``, or a file of a Maildir)."""
    lines: list[bytes] = []
    size = 0
    try:
        with open_bytes(path) as f:
            starts_line = True  # as in read_mbox: lines in pieces of at most MAX_LINE bytes
            for line in iter(lambda: f.readline(MAX_LINE), b""):
                if (starts_line and line in (b"\n", b"\r\n")) or size > MAX_HEADER:
                    break
                lines.append(line)
                size += len(line)
                starts_line = line.endswith(b"\n")
    except STREAM_ERRORS as exc:
        stats.errors.append(f"{path}: cannot read ({str(exc)[:120]})")
        return
    stats.nbytes += size
    msg = _parse(b"".join(lines), str(path), stats)
    if msg is not None:
        yield from events_of(msg, source, classifier, fmt)


def read_mbox(task: Task, classifier: Classifier, stats: SourceStats) -> Iterator[Partial]:
    """An mbox, streamed: a message starts at a ``From `` line after a blank line (or at the top)."""
    head: list[bytes] | None = None  # header lines of the current message while in its header
    size = 0
    blank_before = True
    count = 0
    try:
        with open_bytes(task.path) as f:
            # Lines of at most MAX_LINE bytes: a longer one comes in pieces, so a body line of megabytes is
            # never held whole. A piece that does not start a line is never a blank line.
            starts_line = True
            for line in iter(lambda: f.readline(MAX_LINE), b""):
                stats.nbytes += len(line)
                if blank_before and line.startswith(b"From "):
                    if head is not None:  # header with no body at all
                        yield from _emit(head, task, classifier, stats, count)
                    head, size, count = [], 0, count + 1
                    blank_before = False
                    starts_line = line.endswith(b"\n")
                    continue
                blank_before = starts_line and line in (b"\n", b"\r\n")
                starts_line = line.endswith(b"\n")
                if head is None:
                    continue
                if blank_before or size > MAX_HEADER:
                    yield from _emit(head, task, classifier, stats, count)
                    head = None
                else:
                    head.append(line)
                    size += len(line)
    except STREAM_ERRORS as exc:
        stats.errors.append(f"{task.name}: input ends early ({str(exc)[:120] or type(exc).__name__})")
    if head is not None:
        yield from _emit(head, task, classifier, stats, count)


def _emit(
    head: list[bytes], task: Task, classifier: Classifier, stats: SourceStats, n: int
) -> Iterator[Partial]:
    msg = _parse(b"".join(head), f"{task.name} message {n}", stats)
    if msg is not None:
        yield from events_of(msg, task.name, classifier, "mbox")


def read_maildir(task: Task, classifier: Classifier, stats: SourceStats) -> Iterator[Partial]:
    for sub in ("cur", "new"):
        folder = task.path / sub
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it if e.is_file() and not e.name.startswith("."))
        for name in names:
            yield from read_eml(folder / name, task.name, classifier, stats, "maildir")
