"""The decision log: one row per recipient decision, metadata only (never a message body).

``DecisionEvent`` is what the policy service hands to the ``DecisionWriter`` on the hot path; it carries no
id, the writer gives each one a unique ``event_id`` before it first tries to store it, so a spooled event
replayed twice is inserted once (``tg_decisions.event_id`` is UNIQUE, inserts ignore conflicts).
"""

from __future__ import annotations

import json
import operator
import time as _time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, column, delete, select, table
from sqlalchemy.dialects import postgresql, sqlite

from typoguard.core.verdict import Verdict
from typoguard.obs import clip_address
from typoguard.store.db import executemany_compiled
from typoguard.store.schema import decisions

# Columns of a decision row, in insert order (``event_id`` first).
ROW_FIELDS = (
    "event_id",
    "time",
    "node",
    "queue_id",
    "sender",
    "recipient",
    "domain",
    "action",
    "intended",
    "kind",
    "score",
    "mode",
    "reason",
    "content",
)


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """One decision as the policy service saw it. ``time`` is UNIX seconds (UTC)."""

    time: float
    recipient: str
    action: str
    domain: str = ""
    intended: str | None = None
    kind: str | None = None
    score: float = 0.0
    sender: str = ""
    queue_id: str = ""
    node: str = ""
    mode: str = "enforce"
    reason: str | None = None  # why, for flagged mail (the log line's "reason")
    content: str | None = None  # the relay's content findings as JSON {category: count}

    @classmethod
    def from_verdict(
        cls,
        verdict: Verdict,
        *,
        sender: str = "",
        queue_id: str = "",
        node: str = "",
        mode: str = "enforce",
        when: float | None = None,
    ) -> DecisionEvent:
        """The event for ``verdict`` (the action actually taken: pass a verdict adjusted by context)."""
        a = verdict.assessment
        finding = a.finding
        return cls(
            _time.time() if when is None else when,
            clip_address(verdict.recipient),  # one too long to be valid: its start, a marker, its length
            a.action.value,
            a.domain or "",
            finding.intended if finding else None,
            finding.kind if finding else None,
            finding.score if finding else 0.0,
            clip_address(sender),
            queue_id,
            node,
            mode,
        )

    def values(self, event_id: str) -> tuple[Any, ...]:
        """The database row as a tuple in ``ROW_FIELDS`` order (the writer's fast path)."""
        return (
            event_id, self.time, self.node, self.queue_id, self.sender, self.recipient, self.domain,
            self.action, self.intended, self.kind, self.score, self.mode, self.reason, self.content,
        )  # fmt: skip

    def row(self, event_id: str) -> dict[str, Any]:
        """The database row (also the spool file's JSON object)."""
        return {
            "event_id": event_id,
            "time": self.time,
            "node": self.node,
            "queue_id": self.queue_id,
            "sender": self.sender,
            "recipient": self.recipient,
            "domain": self.domain,
            "action": self.action,
            "intended": self.intended,
            "kind": self.kind,
            "score": self.score,
            "mode": self.mode,
            "reason": self.reason,
            "content": self.content,
        }


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A stored decision: the event plus its id and log position (``seq``, for pagination)."""

    seq: int
    event_id: str
    event: DecisionEvent


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters for ``Store.decisions``; ``None`` means "any". Results are newest first."""

    since: float | None = None
    until: float | None = None
    domain: str | None = None
    recipient: str | None = None
    sender: str | None = None
    action: str | None = None
    node: str | None = None
    queue_id: str | None = None
    before_seq: int | None = None  # pagination: pass the last page's smallest seq
    limit: int = 100


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(decisions).on_conflict_do_nothing(index_elements=["event_id"])
    return sqlite.insert(decisions).on_conflict_do_nothing(index_elements=["event_id"])


_REQUIRED_TUPLE = operator.itemgetter(*ROW_FIELDS[:-2])
_OPTIONAL = ROW_FIELDS[-2:]  # added in schema version 2: spool rows written before it lack them


def ROW_TUPLE(row: dict[str, Any]) -> tuple[Any, ...]:  # noqa: N802 - was an itemgetter; same use
    """A dict row (``DecisionEvent.row``, a spool line) as a tuple in ``ROW_FIELDS`` order; ``KeyError``
    when a required field is missing."""
    return (*_REQUIRED_TUPLE(row), *(row.get(name) for name in _OPTIONAL))


EVENT_ID, TIME, SENDER, RECIPIENT, DOMAIN, ACTION, KIND = (
    ROW_FIELDS.index(f) for f in ("event_id", "time", "sender", "recipient", "domain", "action", "kind")
)


def row_dict(values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(ROW_FIELDS, values, strict=True))


_PG_STAGE = "tg_decisions_in"  # per-session temp table: this transaction's rows (PostgreSQL)
staged = table(_PG_STAGE, *(column(name) for name in ROW_FIELDS))


def _copy_rows_postgresql(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL: ``COPY`` into a session temp table, then one ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING``. psycopg adapts COPY rows in C; ``executemany`` adapts each parameter in Python."""
    cols = ", ".join(ROW_FIELDS)
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} (event_id text, time double precision, node text, "
            "queue_id text, sender text, recipient text, domain text, action text, intended text, kind text, "
            "score double precision, mode text, reason text, content text) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {_PG_STAGE} ({cols}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        cur.execute(
            f"INSERT INTO {decisions.name} ({cols}) SELECT {cols} FROM {_PG_STAGE} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        # The staged rows stay until commit (ON COMMIT DELETE ROWS): correspondents are counted from them.


def insert_rows(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows (tuples in ``ROW_FIELDS`` order); a duplicate ``event_id`` is ignored, not an error."""
    if rows and conn.dialect.name == "postgresql":
        _copy_rows_postgresql(conn, rows)
    elif rows:
        executemany_compiled(
            conn, "insert_decisions", lambda: _insert_ignoring_duplicates(conn), ROW_FIELDS, rows
        )


def insert_new_rows(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Insert the rows whose ``event_id`` is not stored yet and return them (the spool-replay path).

    Callers hold a write transaction, so the rows found missing are the rows this call inserts.
    """
    if not rows:
        return []
    present: set[str] = set()
    ids = [r[EVENT_ID] for r in rows]
    if conn.dialect.name == "postgresql":
        # One array parameter, one index probe per id: 500-item IN lists cost PostgreSQL a plan each
        # (85 us a row, most of a spool replay; docs/store.md "Drain after SIGTERM").
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur:
            cur.execute(f"SELECT event_id FROM {decisions.name} WHERE event_id = ANY(%s)", (ids,))
            present.update(r[0] for r in cur.fetchall())
        ids = []
    elif conn.dialect.name == "sqlite":  # likewise: one JSON array, not a compiled 500-item IN list each
        stmt = f"SELECT event_id FROM {decisions.name} WHERE event_id IN (SELECT value FROM json_each(?))"
        present.update(r[0] for r in conn.exec_driver_sql(stmt, (json.dumps(ids),)))
        ids = []
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        present.update(
            conn.execute(select(decisions.c.event_id).where(decisions.c.event_id.in_(chunk))).scalars()
        )
    fresh: dict[str, tuple[Any, ...]] = {}
    for r in rows:
        if r[EVENT_ID] not in present:
            fresh.setdefault(r[EVENT_ID], r)
    insert_rows(conn, list(fresh.values()))
    return list(fresh.values())


def query(conn: Connection, q: DecisionQuery) -> list[DecisionRecord]:
    c = decisions.c
    stmt = select(decisions)
    for col, value in (
        (c.domain, q.domain),
        (c.recipient, q.recipient),
        (c.sender, q.sender),
        (c.action, q.action),
        (c.node, q.node),
        (c.queue_id, q.queue_id),
    ):
        if value is not None:
            stmt = stmt.where(col == value)
    if q.since is not None:
        stmt = stmt.where(c.time >= q.since)
    if q.until is not None:
        stmt = stmt.where(c.time < q.until)
    if q.before_seq is not None:
        stmt = stmt.where(c.seq < q.before_seq)
    stmt = stmt.order_by(c.seq.desc()).limit(max(1, q.limit))
    return [record_from_row(r._mapping) for r in conn.execute(stmt)]


def record_from_row(m: Any) -> DecisionRecord:
    event = DecisionEvent(
        time=m["time"],
        recipient=m["recipient"],
        action=m["action"],
        domain=m["domain"],
        intended=m["intended"],
        kind=m["kind"],
        score=m["score"],
        sender=m["sender"],
        queue_id=m["queue_id"],
        node=m["node"],
        mode=m["mode"],
        reason=m.get("reason"),
        content=m.get("content"),
    )
    return DecisionRecord(int(m["seq"]), m["event_id"], event)


def prune(conn: Connection, before: float) -> int:
    """Delete decisions older than ``before`` (UNIX seconds); returns how many."""
    result = conn.execute(delete(decisions).where(decisions.c.time < before))
    return int(result.rowcount or 0)


def hold_for_envelope(
    conn: Connection, sender: str, recipients: Iterable[str], arrival: float, *, window: float = 900.0
) -> DecisionRecord | None:
    """The newest ``hold`` decision for this sender and one of these recipients, made up to ``window``
    seconds before the message arrived (or a minute after: clocks of several nodes).

    Postfix creates the queue file only once the first recipient is accepted, so the policy request for
    that recipient carries no queue id: most messages held by typoguard are found this way.
    """
    rcpts = sorted({r for r in recipients if r})
    if not rcpts:
        return None
    c = decisions.c
    stmt = (
        select(decisions)
        .where(
            c.action == "hold",
            c.queue_id == "",  # a decision with a queue id belongs to that message only
            c.sender == sender,
            c.recipient.in_(rcpts[:500]),
            c.time >= arrival - window,
            c.time <= arrival + 60.0,
        )
        .order_by(c.seq.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    return record_from_row(row._mapping) if row is not None else None


def latest_for_queue_ids(conn: Connection, queue_ids: Iterable[str]) -> dict[str, DecisionRecord]:
    """The newest held/rejected-or-other decision per queue id (for joining held mail)."""
    out: dict[str, DecisionRecord] = {}
    ids = sorted(set(queue_ids))
    for i in range(0, len(ids), 500):
        stmt = select(decisions).where(decisions.c.queue_id.in_(ids[i : i + 500])).order_by(decisions.c.seq)
        for r in conn.execute(stmt):
            rec = record_from_row(r._mapping)
            prev = out.get(rec.event.queue_id)
            # Prefer the decision that held the message; otherwise the newest.
            if prev is None or rec.event.action == "hold" or prev.event.action != "hold":
                out[rec.event.queue_id] = rec
    return out
