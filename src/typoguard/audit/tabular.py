"""Shared reader for the CSV-shaped Microsoft logs (Microsoft 365 message trace, Exchange tracking).

Columns are found by name (exports differ by tool, version and locale), the text encoding by its BOM
(PowerShell writes UTF-16). A row that does not fit the header is a bad line; the reader goes on.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from typoguard.audit.model import Hit, Outcome, Partial, SourceStats
from typoguard.audit.sources import STREAM_ERRORS, Task, open_bytes
from typoguard.audit.timeparse import loose_time

csv.field_size_limit(1 << 20)


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
            while True:
                block = raw.read(1 << 20)
                stats.nbytes += len(block)
                pending += decoder.decode(block, final=not block)
                lines = pending.split("\n")
                pending = lines.pop()
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
    lines = _text_lines(task, stats)
    for line in lines:
        stats.lines += 1
        if not line.strip():
            continue
        declared = header_of(line) if (header is None or line.startswith("#")) else None
        if declared is not None:
            header = declared
            continue
        if line.startswith("#") or header is None:
            continue
        text = line
        # A quoted field may hold a newline (subjects): read on until the quotes balance.
        while text.count('"') % 2 == 1:
            more = next(lines, None)
            if more is None:
                break
            stats.lines += 1
            text += "\n" + more
        try:
            row = next(csv.reader(io.StringIO(text)))
        except (csv.Error, StopIteration):
            stats.bad(task.name, text)
            continue
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
