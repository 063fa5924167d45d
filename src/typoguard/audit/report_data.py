"""Machine-readable output: one JSON document, or CSV of the events (one row per message and recipient)."""

from __future__ import annotations

import csv
from typing import IO, Any

import orjson

from typoguard.audit.aggregate import Summary
from typoguard.audit.model import AuditEvent, SourceStats

CSV_COLUMNS = (
    "time", "sender", "recipient", "domain", "intended", "kind", "score", "outcome", "leaked",
    "attempts", "repeat_pattern", "source", "format", "queue_id", "message_id", "detail",
)  # fmt: skip


def document(
    events: list[AuditEvent],
    summary: Summary,
    stats: SourceStats,
    inputs: list[str],
    formats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The --json document: inputs and their formats, counters, the summary, and every event."""
    return {
        "inputs": inputs,
        "formats": formats or {},
        "lines": stats.lines,
        "bytes": stats.nbytes,
        "bad_lines": stats.bad_lines,
        "bad_line_examples": stats.bad_examples,
        "errors": stats.errors,
        "summary": summary.to_dict(),
        "events": [{**e.to_dict(), "repeat_pattern": summary.is_repeat(e)} for e in events],
    }


def write_json(doc: dict[str, Any], out: IO[bytes]) -> None:
    out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    out.flush()


def write_csv(events: list[AuditEvent], summary: Summary, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in events:
        d = e.to_dict()
        d["repeat_pattern"] = summary.is_repeat(e)
        writer.writerow([_cell(d[c]) for c in CSV_COLUMNS])
    out.flush()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
