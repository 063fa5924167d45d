"""Shared reader for the CSV-shaped Microsoft logs (Microsoft 365 message trace, Exchange tracking).

Columns are found by name (exports differ by tool, version and locale), the text encoding by its BOM
(PowerShell writes UTF-16). A row that does not fit the header is a bad line; the reader goes on.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from typoguard.audit.model import Hit, Outcome, Partial, SourceStats
from typoguard.audit.sources import STREAM_ERRORS, Task, open_bytes
from typoguard.audit.timeparse import loose_time

csv.field_size_limit(1 << 20)
MAX_LINE = 1 << 20  # characters of one line; the rest of a longer one (damage) is skipped
MAX_RECORD_LINES = 64  # lines a quoted field may run on over before the record is taken for damage


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Columns:
    """Indexes of the columns a reader needs; -1 when absent."""

    time: int
    sender: int
    recipient: int
    status: int
    message_id: int
    detail: int


def find_columns(header: Sequence[str], aliases: dict[str, tuple[str, ...]]) -> Columns:
    normed = [_norm(h) for h in header]

    def index(field: str) -> int:
        for alias in aliases[field]:
            if alias in normed:
                return normed.index(alias)
        return -1

    return Columns(*(index(f) for f in ("time", "sender", "recipient", "status", "message_id", "detail")))


def _text_lines(task: Task, stats: SourceStats) -> Iterator[str]:
    """Decoded lines; the encoding is fixed by the BOM, else UTF-8 with undecodable bytes replaced."""
    try:
        with open_bytes(task.path) as raw:
            head = raw.read(4)
            encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
            decoder = codecs.getincrementaldecoder(encoding)("replace")
            pending = decoder.decode(head)
            skipping = False  # in the rest of a line cut at MAX_LINE characters
            while True:
                block = raw.read(1 << 20)
                stats.nbytes += len(block)
                text = decoder.decode(block, final=not block)
                if skipping:
                    end = text.find("\n")
                    if end < 0 and block:
                        continue
                    text, skipping = text[end + 1 :] if end >= 0 else "", False
                lines = (pending + text).split("\n")
                pending = lines.pop()
                if len(pending) > MAX_LINE:  # damage (a run with no newline): keep its start, skip the rest
                    lines.append(pending[:MAX_LINE])
                    pending, skipping = "", True
                yield from (line.rstrip("\r") for line in lines)
                if not block:
                    break
            if pending:
                yield pending.rstrip("\r")
    except STREAM_ERRORS as exc:
        stats.errors.append(f"{task.name}: input ends early ({str(exc)[:120] or type(exc).__name__})")


def rows(
    task: Task,
    stats: SourceStats,
    header_of: Callable[[str], list[str] | None],
) -> Iterator[tuple[list[str], list[str]]]:
    """(header, row) pairs. ``header_of(line)`` returns the column names when a line declares them (a CSV
    header, or a ``#Fields:`` directive), else None; ``#`` lines that are not headers are skipped."""
    header: list[str] | None = None
    source = _text_lines(task, stats)
    again: collections.deque[str] = collections.deque()  # lines to read again (after a damaged one)

    def next_line() -> str | None:
        return again.popleft() if again else next(source, None)

    while (line := next_line()) is not None:
        stats.lines += 1
        if not line.strip():
            continue
        declared = header_of(line) if (header is None or line.startswith("#")) else None
        if declared is not None:
            header = declared
            continue
        if line.startswith("#") or header is None:
            continue
        text, quotes, more = line, line.count('"'), list[str]()
        # A quoted field may hold a newline (subjects): read on until the quotes balance, for a few lines.
        while quotes % 2 == 1 and len(more) < MAX_RECORD_LINES and len(text) <= MAX_LINE:
            following = next_line()
            if following is None:
                break
            more.append(following)
            quotes += following.count('"')
            text += "\n" + following
        try:
            records = list(csv.reader(io.StringIO(text)))
        except csv.Error:
            records = []
        if more and (len(records) != 1 or len(records[0]) != len(header)):
            # Not one record: a damaged line (a stray quote) that would have swallowed the rows after it.
            # It is read on its own; the lines read after it are read again as rows of their own.
            again.extendleft(reversed(more))
            more, text = [], line
            try:
                records = list(csv.reader([line]))
            except csv.Error:
                records = []
        row = records[0] if len(records) == 1 else []
        stats.lines += len(more)
        if len(row) != len(header):
            stats.bad(task.name, text)
            continue
        yield header, row


def csv_header(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


def row_partial(  # noqa: PLR0917 - one row, its columns and what the format's reader made of it
    row: list[str], cols: Columns, recipient: str, hit: Hit, outcome: Outcome, source: str, fmt: str
) -> Partial:
    """One recipient of an export row: no queue id; the Message-ID, when the export has it, joins the rows
    of one message and recipient."""
    mid = row[cols.message_id].strip() if cols.message_id >= 0 else ""
    return Partial(
        key=(mid, recipient.lower()) if mid else None,
        time=loose_time(row[cols.time]) if cols.time >= 0 else None,
        sender=(row[cols.sender].strip() or "<>") if cols.sender >= 0 else "?",
        recipient=recipient,
        hit=hit,
        outcome=outcome,
        attempts=1,
        source=source,
        fmt=fmt,
        queue_id="",
        message_id=mid,
        detail=row[cols.detail][:200] if cols.detail >= 0 else "",
    )
