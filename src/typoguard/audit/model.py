"""The values an audit produces: one ``AuditEvent`` per message-and-recipient sent to a look-alike domain.

Readers do not build ``AuditEvent`` directly: they emit ``Partial`` records (one per log line that matters),
because the lines of one message may sit in different files or in different chunks of one file that were
read by different processes. ``merge_partials`` joins them on their key once everything has been read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What became of one message to one recipient, as far as the log tells."""

    DELIVERED = "delivered"  # a server at the look-alike domain accepted it: leaked
    SENT = "sent"  # found in a mailbox of sent mail: it left, delivery unknown: counted as leaked
    BOUNCED = "bounced"  # permanently failed (bounced, expired, returned to sender)
    DEFERRED = "deferred"  # still being retried when the log ends
    HELD = "held"  # put on hold by a policy (typoguard or other) and not released in the log
    DISCARDED = "discarded"  # accepted, then dropped (discard transport/action): sender not told
    REJECTED = "rejected"  # refused at SMTP time by something other than typoguard
    REJECTED_BY_TYPOGUARD = "rejected-by-typoguard"  # stopped by typoguard: refused/bounced with its text


#: Outcomes where the mail reached (or is believed to have reached) the look-alike domain.
LEAKED: frozenset[Outcome] = frozenset({Outcome.DELIVERED, Outcome.SENT})
#: Outcomes where nothing reached the look-alike domain and the sender knows it (a refusal or a bounce).
STOPPED: frozenset[Outcome] = frozenset(
    {Outcome.BOUNCED, Outcome.HELD, Outcome.REJECTED, Outcome.REJECTED_BY_TYPOGUARD}
)
#: Outcomes where the mail was accepted from the sender and then thrown away: nothing reached the
#: look-alike, but the sender was told it went (a ``discard:`` transport, a DISCARD action). Neither leaked
#: nor stopped: the mail is lost without a word to the sender, who will not send it again correctly.
DROPPED: frozenset[Outcome] = frozenset({Outcome.DISCARDED})

# When several lines speak of one message and recipient, the strongest outcome wins: a deferral followed
# by a delivery is a delivery; a deferral followed by expiry is a bounce.
_RANK = {
    Outcome.DELIVERED: 0,
    Outcome.SENT: 1,
    Outcome.BOUNCED: 2,
    Outcome.DISCARDED: 3,
    Outcome.REJECTED_BY_TYPOGUARD: 4,
    Outcome.REJECTED: 5,
    Outcome.HELD: 6,
    Outcome.DEFERRED: 7,
}


def stronger(a: Outcome, b: Outcome) -> Outcome:
    """The outcome that describes the message better once both are known."""
    return a if _RANK[a] <= _RANK[b] else b


@dataclass(frozen=True, slots=True)
class Hit:
    """What the Guard said about a recipient domain that is a look-alike of a protected one."""

    domain: str
    intended: str
    kind: str
    score: float
    action: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One message to one recipient at a look-alike domain, with everything the logs say about it."""

    time: datetime | None  # first time the log mentions the attempt; None when the source has no date
    sender: str  # envelope sender ("<>" for bounces); "?" when the log lost it
    recipient: str
    domain: str
    intended: str
    kind: str
    score: float
    outcome: Outcome
    attempts: int  # delivery attempts seen (deferrals + the final one)
    source: str  # the file (or mailbox) it was found in
    fmt: str  # the input format
    queue_id: str  # the MTA's id of the message (Postfix queue id, Exim message id), else ""
    message_id: str  # the Message-ID header (``<...>``) when the source has it, else ""
    detail: str = ""  # the server's reply or the rejection text, shortened

    @property
    def leaked(self) -> bool:
        return self.outcome in LEAKED

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat() if self.time else None,
            "sender": self.sender,
            "recipient": self.recipient,
            "domain": self.domain,
            "intended": self.intended,
            "kind": self.kind,
            "score": self.score,
            "outcome": self.outcome._value_,
            "leaked": self.outcome in LEAKED,
            "attempts": self.attempts,
            "source": self.source,
            "format": self.fmt,
            "queue_id": self.queue_id,
            "message_id": self.message_id,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Partial:
    """What one log line says about one message and recipient; joined with others of the same ``key``.

    ``key`` is None for self-contained lines (an SMTP-time rejection, a mailbox message).
    """

    key: tuple[str, ...] | None
    time: datetime | None
    sender: str | None
    recipient: str
    hit: Hit
    outcome: Outcome
    attempts: int
    source: str
    fmt: str
    queue_id: str
    message_id: str
    detail: str = ""

    def __reduce__(self) -> tuple[type[Partial], tuple[Any, ...]]:
        # Workers send their partials to the parent: as one tuple each, which pickles ~6x faster than a
        # slotted dataclass's default (a Python __getstate__ that calls fields() for every object).
        return Partial, (
            self.key, self.time, self.sender, self.recipient, self.hit, self.outcome, self.attempts,
            self.source, self.fmt, self.queue_id, self.message_id, self.detail,
        )  # fmt: skip


@dataclass(slots=True)
class SourceStats:
    """Counters for one input (or one chunk of one); summed over all inputs for the report."""

    lines: int = 0
    bad_lines: int = 0
    nbytes: int = 0  # bytes read (decompressed)
    bad_examples: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # e.g. "mail.log.3.gz: truncated gzip stream"

    MAX_EXAMPLES = 5

    def bad(self, where: str, line: bytes | str) -> None:
        """Count a line that could not be parsed; keep the first few as examples for the report."""
        self.bad_lines += 1
        if len(self.bad_examples) < self.MAX_EXAMPLES:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            self.bad_examples.append(f"{where}: {text[:160]!r}")

    def add(self, other: SourceStats) -> None:
        self.lines += other.lines
        self.bad_lines += other.bad_lines
        self.nbytes += other.nbytes
        room = self.MAX_EXAMPLES - len(self.bad_examples)
        if room > 0:
            self.bad_examples.extend(other.bad_examples[:room])
        self.errors.extend(other.errors)


def merge_partials(partials: list[Partial], expired: set[tuple[str, ...]] | None = None) -> list[AuditEvent]:
    """Join partial records by key into events, sorted by time (undated last).

    ``expired`` holds message keys (without the recipient) whose remaining deferred recipients were given up
    and returned to the sender: those become bounces.
    """
    joined: dict[tuple[str, ...], Partial] = {}
    singles: list[Partial] = []
    if len({p.source for p in partials}) > 1:
        partials = _once_across_files(partials)
    for p in partials:
        if p.key is None:
            singles.append(p)
            continue
        seen = joined.get(p.key)
        if seen is None:
            joined[p.key] = p
            continue
        if p.outcome is not Outcome.SENT:  # another copy of a sent message is not another attempt
            seen.attempts += p.attempts
        if p.outcome is not seen.outcome:
            best = stronger(seen.outcome, p.outcome)
            if best is p.outcome:
                seen.detail = p.detail
            seen.outcome = best
        if seen.sender is None:
            seen.sender = p.sender
        if not seen.message_id:
            seen.message_id = p.message_id
        if p.time is not None and (seen.time is None or _before(p.time, seen.time)):
            seen.time = p.time
    _drop_hops(joined)
    events: list[AuditEvent] = []
    append = events.append
    new, fill = object.__new__, _EVENT_SLOTS
    for p in [*joined.values(), *singles]:
        outcome = p.outcome
        if expired and outcome is Outcome.DEFERRED and p.key is not None and p.key[:-1] in expired:
            outcome = Outcome.BOUNCED
        hit = p.hit
        event = new(AuditEvent)
        fill(
            event,
            (
                p.time, p.sender if p.sender is not None else "?", p.recipient, hit.domain, hit.intended,
                hit.kind, hit.score, outcome, p.attempts, p.source, p.fmt, p.queue_id, p.message_id, p.detail,
            ),
        )  # fmt: skip
        append(event)
    events.sort(key=_sort_key)
    return events


def _once_across_files(partials: list[Partial]) -> list[Partial]:
    """``partials`` without the lines read again from another file: Debian's and Ubuntu's rsyslog write
    mail to ``mail.log`` and, by priority, to ``mail.info``/``mail.warn``/``mail.err`` too, and an audit
    of ``/var/log`` reads them all. A partial with the same time, message key, outcome, addresses and text
    as one from another file is that line again; from the same file it is a line logged twice (a client
    that sent the same refusal twice in a second), which counts. Undated partials (mailboxes) are left to
    the Message-ID."""
    first: dict[tuple[Any, ...], str] = {}
    out = []
    for p in partials:
        if p.time is not None:
            sender = p.sender if p.key is None else None  # a keyed line's sender may be found later
            line = (p.key, p.time, p.outcome, sender, p.recipient, p.queue_id, p.detail)
            if first.setdefault(line, p.source) != p.source:
                continue
        out.append(p)
    return out


_QUEUED_AS = "queued as "


def _drop_hops(joined: dict[tuple[str, ...], Partial]) -> None:
    """Postfix deliveries that were hops, not deliveries: the reply said ``queued as X`` and X is a queue id
    of this same log holding the same recipient (a content filter on this machine, such as amavis on
    127.0.0.1:10024 re-injecting on :10025; another server of a central log). The message goes on as X: one
    event, X's, which keeps the earliest time and what the first leg knew of the sender.

    Most ``queued as X`` replies come from a smarthost whose log is not read: the map of onward legs is
    built only for the ids that are queue ids here (a 200 MB log: 84k such deliveries, 0.1 s -> 0.04 s)."""
    delivered, postfix = Outcome.DELIVERED, "postfix"
    queue_ids: set[str] | None = None
    candidates: list[tuple[tuple[str, ...], Partial, str]] = []
    for key, p in joined.items():
        if p.outcome is not delivered or p.fmt != postfix:
            continue
        detail = p.detail
        at = detail.rfind(_QUEUED_AS)
        if at < 0:
            continue
        new_id = detail[at + len(_QUEUED_AS) :].split(" ", 1)[0].rstrip(")")
        if queue_ids is None:
            queue_ids = {k[1] for k, q in joined.items() if q.fmt == postfix}
        if new_id in queue_ids and new_id != key[1]:
            candidates.append((key, p, new_id))
    if not candidates:
        return
    wanted = {new_id for _key, _p, new_id in candidates}
    onward = {(k[1], k[2]): q for k, q in joined.items() if k[1] in wanted and q.fmt == postfix}
    for key, p, new_id in candidates:
        then = onward.get((new_id, key[2]))
        if then is None:
            continue
        del joined[key]
        if p.time is not None and (then.time is None or _before(p.time, then.time)):
            then.time = p.time
        if then.sender is None:
            then.sender = p.sender
        if not then.message_id:
            then.message_id = p.message_id


def _slot_filler(cls: type, order: tuple[str, ...]) -> Callable[[object, tuple[Any, ...]], None]:
    """A function that sets every slot of a new ``cls`` object, in field order: what the frozen dataclass's
    ``__init__`` does (it has no validation), ~2x faster (``merge_partials`` makes one event per message
    and recipient, 88k for a 200 MB log). Written out one call per slot, as ``dataclasses`` writes
    ``__init__``: a loop over the slots costs as much as the ``__init__``."""
    names = [f.name for f in fields(cls)]
    if tuple(names) != order:  # the caller passes values by position: a moved field must not go unnoticed
        raise TypeError(f"{cls.__name__} fields are {names}, the filler was written for {list(order)}")
    scope: dict[str, Any] = {f"set_{name}": getattr(cls, name).__set__ for name in names}
    body = "".join(f"    set_{name}(obj, values[{i}])\n" for i, name in enumerate(names))
    exec(f"def fill(obj, values):\n{body}", scope)  # code made from the field names only
    fill: Callable[[object, tuple[Any, ...]], None] = scope["fill"]
    return fill


_EVENT_SLOTS = _slot_filler(
    AuditEvent,
    ("time", "sender", "recipient", "domain", "intended", "kind", "score", "outcome", "attempts", "source",
     "fmt", "queue_id", "message_id", "detail"),
)  # fmt: skip


def _before(a: datetime, b: datetime) -> bool:
    try:
        return a < b
    except TypeError:  # naive vs aware: compare wall clocks
        return a.replace(tzinfo=None) < b.replace(tzinfo=None)


_EPOCH = datetime(1970, 1, 1)


def _sort_key(e: AuditEvent) -> tuple[int, float, str]:
    t = e.time
    if t is None:
        return (1, 0.0, e.recipient)
    # A time without a zone is taken as UTC (subtraction, not timestamp(): no local-time conversion).
    return (0, t.timestamp() if t.tzinfo is not None else (t - _EPOCH).total_seconds(), e.recipient)
