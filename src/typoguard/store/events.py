"""Events: what ``typoguard watch`` noticed, one row per fact, kept until a person acknowledges it.

A watch round reports ``Observation`` values; ``observe`` stores them. An observation is identified by
``(kind, subject, fact)``: seen for the first time it becomes a new open event (alerted at once); seen again
it only raises ``count`` and ``last_seen`` on the row it already has, so a fact that holds for days (a
sender who keeps mistyping, mail that stays held) is one event, not one a round. ``due`` gives the open
events to alert about: never alerted, or alerted longer ago than the reminder interval (a day by default).

Several nodes may observe the same fact at once: the insert ignores a conflict on the unique key, and the
node that lost the race counts it as seen again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from typoguard.store.schema import decisions, events

SEVERITIES = ("info", "warning", "critical")  # from the mildest
STATES = ("open", "acknowledged")


def severity_rank(severity: str) -> int:
    """0 for info, 1 warning, 2 critical; ``ValueError`` for anything else."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact a watch round found: ``kind`` (``lookalike-accepts-mail``, ``repeat-sender``, ...), what it
    is about (``subject``), what is new (``fact``, part of its identity), and how bad it is."""

    kind: str
    subject: str
    severity: str
    fact: str = ""
    summary: str = ""  # one line for people ("army.ml now accepts mail at mx.squat.example")
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event (``tg_events``)."""

    id: int
    kind: str
    subject: str
    fact: str
    severity: str
    first_seen: float
    last_seen: float
    count: int
    state: str
    ack_by: str | None
    ack_at: float | None
    ack_reason: str | None
    last_alerted: float | None
    details: dict[str, Any]

    @property
    def summary(self) -> str:
        return str(self.details.get("summary") or f"{self.kind}: {self.subject}")

    def to_dict(self) -> dict[str, Any]:
        """The event as the API, the webhook and the syslog line show it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "fact": self.fact,
            "severity": self.severity,
            "summary": self.summary,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "state": self.state,
            "ack_by": self.ack_by,
            "ack_at": self.ack_at,
            "ack_reason": self.ack_reason,
            "details": self.details,
        }


def _from_row(m: Any) -> Event:
    try:
        details = json.loads(m["details"] or "{}")
    except ValueError:
        details = {}
    return Event(
        id=int(m["id"]),
        kind=m["kind"],
        subject=m["subject"],
        fact=m["fact"],
        severity=m["severity"],
        first_seen=float(m["first_seen"]),
        last_seen=float(m["last_seen"]),
        count=int(m["count"]),
        state=m["state"],
        ack_by=m["ack_by"],
        ack_at=m["ack_at"],
        ack_reason=m["ack_reason"],
        last_alerted=m["last_alerted"],
        details=details if isinstance(details, dict) else {},
    )


def observe(conn: Connection, observations: Iterable[Observation], now: float) -> list[Event]:
    """Store ``observations`` (inside a write transaction); returns the events that are new now."""
    c = events.c
    new_ids: list[int] = []
    for o in observations:
        key = (c.kind == o.kind, c.subject == o.subject, c.fact == o.fact)
        found = conn.execute(select(c.id).where(*key)).scalar()
        if found is None:
            details = json.dumps({"summary": o.summary, **o.details}, sort_keys=True, default=str)
            values = {
                "kind": o.kind,
                "subject": o.subject,
                "fact": o.fact,
                "severity": o.severity,
                "first_seen": now,
                "last_seen": now,
                "count": 1,
                "state": "open",
                "details": details,
            }
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(events).values(**values).on_conflict_do_nothing().returning(c.id)
            inserted = conn.execute(stmt).scalar()
            if inserted is not None:
                new_ids.append(int(inserted))
                continue
        conn.execute(update(events).where(*key).values(count=c.count + 1, last_seen=now))
    return by_ids(conn, new_ids)


def by_ids(conn: Connection, ids: Sequence[int]) -> list[Event]:
    if not ids:
        return []
    rows = conn.execute(select(events).where(events.c.id.in_(list(ids))).order_by(events.c.id))
    return [_from_row(r._mapping) for r in rows]


def due(conn: Connection, now: float, remind_after: float) -> list[Event]:
    """Open events never alerted, or last alerted ``remind_after`` seconds ago or more."""
    c = events.c
    stmt = (
        select(events)
        .where(c.state == "open", (c.last_alerted.is_(None)) | (c.last_alerted <= now - remind_after))
        .order_by(c.id)
    )
    return [_from_row(r._mapping) for r in conn.execute(stmt)]


def mark_alerted(conn: Connection, ids: Sequence[int], now: float) -> None:
    if ids:
        conn.execute(update(events).where(events.c.id.in_(list(ids))).values(last_alerted=now))


def acknowledge(conn: Connection, event_id: int, *, by: str, reason: str, now: float) -> Event | None:
    """Mark an event acknowledged (who, when, why); None if there is no such event. Acknowledging twice
    keeps the first acknowledgement."""
    c = events.c
    conn.execute(
        update(events)
        .where(c.id == event_id, c.state == "open")
        .values(state="acknowledged", ack_by=by, ack_reason=reason, ack_at=now)
    )
    found = by_ids(conn, [event_id])
    return found[0] if found else None


def list_events(
    conn: Connection,
    *,
    state: str | None = None,
    kind: str | None = None,
    since: float | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events, newest activity first."""
    c = events.c
    stmt = select(events)
    if state is not None:
        stmt = stmt.where(c.state == state)
    if kind is not None:
        stmt = stmt.where(c.kind == kind)
    if since is not None:
        stmt = stmt.where(c.first_seen >= since)
    stmt = stmt.order_by(c.last_seen.desc(), c.id.desc()).limit(limit)
    return [_from_row(r._mapping) for r in conn.execute(stmt)]


def expired(before: float) -> ColumnElement[bool]:
    """The events retention may delete: acknowledged, and neither seen nor acknowledged since ``before``.
    Never an open event (nobody has looked at it), never one the rounds still see (deleted, it would be
    raised and alerted again as new)."""
    c = events.c
    return (c.state == "acknowledged") & (c.last_seen < before) & (c.ack_at < before)


def prune(conn: Connection, before: float) -> int:
    """Delete the ``expired`` events at once (``typoguard db prune``); returns how many."""
    return int(conn.execute(delete(events).where(expired(before))).rowcount or 0)


def count_by_state(conn: Connection) -> dict[str, int]:
    out = dict.fromkeys(STATES, 0)
    for row in conn.execute(select(events.c.state, func.count()).group_by(events.c.state)):
        out[str(row[0])] = int(row[1])
    return out


@dataclass(frozen=True, slots=True)
class LookalikeHits:
    """Flagged decisions (a finding, not allowed) of one sender to one look-alike in one mode: ``count``
    of them, the last at ``last``."""

    sender: str
    domain: str
    intended: str
    action: str
    mode: str
    count: int
    last: float


def lookalike_hits(conn: Connection, since: float) -> list[LookalikeHits]:
    """The decision log since ``since``, tallied in the database by (sender, look-alike, action, mode)."""
    c = decisions.c
    stmt = (
        select(c.sender, c.domain, c.intended, c.action, c.mode, func.count(), func.max(c.time))
        .where(c.time >= since, c.intended.is_not(None), c.action.not_in(("allow", "invalid")))
        .group_by(c.sender, c.domain, c.intended, c.action, c.mode)
    )
    return [
        LookalikeHits(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), float(r[6]))
        for r in conn.execute(stmt)
    ]
