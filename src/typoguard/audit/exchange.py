"""Exchange Server message-tracking logs (``MSGTRK*.LOG``) and ``Get-MessageTrackingLog | Export-Csv``.

Tracking logs are CSV with a ``#Fields:`` directive naming the columns (date-time, event-id,
recipient-address (``;``-separated), recipient-status, message-id, sender-address, ...). Only events that
end a delivery attempt count: SEND/DELIVER (delivered), FAIL (bounced), DEFER (deferred), DROP (discarded);
RECEIVE, SUBMIT, TRANSFER, EXPAND, ... describe the same message on its way and would count it twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from typoguard.audit.classify import Classifier
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.sources import Task
from typoguard.audit.tabular import csv_header, find_columns, row_partial, rows

ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("datetime", "timestamp"),
    "sender": ("senderaddress", "sender", "returnpath"),
    "recipient": ("recipientaddress", "recipients"),
    "status": ("eventid",),
    "message_id": ("messageid", "internalmessageid"),
    "detail": ("recipientstatus", "messagesubject"),
}

EVENTS = {
    "send": Outcome.DELIVERED,
    "deliver": Outcome.DELIVERED,
    "fail": Outcome.BOUNCED,
    "defer": Outcome.DEFERRED,
    "drop": Outcome.DISCARDED,
}


def _header(line: str) -> list[str] | None:
    if line.startswith("#Fields:"):
        return [f.strip() for f in line[len("#Fields:") :].split(",")]
    if not line.startswith("#") and "," in line and "eventid" in line.lower().replace("-", ""):
        return csv_header(line.lstrip("\ufeff"))
    return None


def read(task: Task, classifier: Classifier, stats: SourceStats) -> Iterator[Partial]:
    for header, row in rows(task, stats, _header):
        cols = find_columns(header, ALIASES)
        if cols.recipient < 0 or cols.status < 0:
            stats.bad(task.name, ",".join(row))
            continue
        outcome = EVENTS.get(row[cols.status].strip().lower())
        if outcome is None:
            continue
        for field in row[cols.recipient].replace(",", ";").split(";"):
            recipient = field.strip().strip("{}").strip()
            if not recipient:
                continue
            hit = classifier.recipient_hit(recipient.encode("utf-8", "surrogateescape"))
            if hit is not None:
                yield row_partial(row, cols, recipient, hit, outcome, task.name, "exchange")
