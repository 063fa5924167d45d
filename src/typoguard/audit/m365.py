"""Microsoft 365 message-trace CSV exports.

Accepted shapes (columns found by name, any order):

* ``Get-MessageTrace | Export-Csv``: Received, SenderAddress, RecipientAddress, Subject, Status, ...,
  MessageId, MessageTraceId (Status: Delivered, Failed, Pending, Quarantined, FilteredAsSpam, Expanded, ...);
* the admin centre's downloadable report: "Date (UTC)"/date_time_utc, "Sender address", "Recipient address",
  "Status"; and the extended/historical report's ``recipient_status`` column
  (``bob@army.ml##Receive, Send;carol@x.org##Receive, Fail``), whose last event gives the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

from typoguard.audit.classify import Classifier
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.sources import Task
from typoguard.audit.tabular import csv_header, find_columns, row_partial, rows

ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("received", "datetimeutc", "dateutc", "date", "origintimestamputc", "timestamp", "receivedtime"),
    "sender": ("senderaddress", "sender", "senderaddressdisplay", "from", "fromaddress"),
    "recipient": ("recipientaddress", "recipient", "recipients", "recipientstatus", "to"),
    "status": ("status", "deliverystatus", "event"),
    "message_id": ("messageid", "internetmessageid", "networkmessageid", "messagetraceid"),
    "detail": ("detail", "details", "subject", "messagesubject"),
}

_STATUS = {
    "delivered": Outcome.DELIVERED,
    "send": Outcome.DELIVERED,
    "deliver": Outcome.DELIVERED,
    "failed": Outcome.BOUNCED,
    "fail": Outcome.BOUNCED,
    "pending": Outcome.DEFERRED,
    "defer": Outcome.DEFERRED,
    "deferred": Outcome.DEFERRED,
    "quarantined": Outcome.HELD,
    "filteredasspam": Outcome.HELD,
    "drop": Outcome.DISCARDED,
}


def _header(line: str) -> list[str] | None:
    if "," not in line or "recipient" not in line.lower():
        return None
    return csv_header(line.lstrip("\ufeff"))


def outcome_of(status: str) -> Outcome | None:
    """Outcome for a status word or an event list (``Receive, Send``: the last event counts)."""
    last = status.replace(";", ",").split(",")[-1]
    return _STATUS.get(last.strip().lower().replace(" ", ""))


def read(task: Task, classifier: Classifier, stats: SourceStats) -> Iterator[Partial]:
    for header, row in rows(task, stats, _header):
        cols = find_columns(header, ALIASES)
        if cols.recipient < 0:
            stats.bad(task.name, ",".join(row))
            continue
        status_field = row[cols.status] if cols.status >= 0 else ""
        for recipient, outcome in _recipients(row[cols.recipient], status_field):
            hit = classifier.recipient_hit(recipient.encode("utf-8", "surrogateescape"))
            if hit is not None and outcome is not None:
                yield row_partial(row, cols, recipient, hit, outcome, task.name, "m365")


def _recipients(field: str, status: str) -> Iterator[tuple[str, Outcome | None]]:
    for raw in field.split(";"):
        part = raw.strip()
        if not part:
            continue
        if "##" in part:  # recipient_status: address##events
            address, events = part.split("##", 1)
            yield address.strip(), outcome_of(events)
        else:
            yield part, outcome_of(status)
