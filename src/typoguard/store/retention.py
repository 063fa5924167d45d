"""Retention: the running service deletes decisions and held-mail actions older than ``[store] keep_days``.

``RetentionTask`` is a thread of each server process that holds the store (``typoguard serve``, ``typoguard
relay``): one run once the server is up, then one every ``EVERY_SECONDS``. A run deletes in batches of at
most ``BATCH_ROWS`` rows, each its own short transaction, oldest first:

* SQLite has one write lock. A batch holds it for tens of milliseconds; between batches the task pauses
  longer than SQLite's longest busy-wait sleep (100 ms), so a decision writer waiting for the lock gets it
  before the next batch: the writer waits at most about one batch, however much there is to delete. (One
  DELETE of 300,000 rows held it for 1.8 s: docs/store.md, "Retention".)
* PostgreSQL: several nodes share one database, and each runs the task. A run holds a session advisory
  lock; a node that finds it taken skips its run (another node is pruning). The batches also take their
  rows ``FOR UPDATE SKIP LOCKED``, so a concurrent `typoguard db prune` is never waited for or deadlocked.

What is pruned: ``tg_decisions`` (by ``time``), ``tg_held_actions`` (by ``at``: who released or deleted
held mail, meaningless once the decisions of that mail are gone) and acknowledged ``tg_events`` neither seen
nor acknowledged since (``last_seen`` and ``ack_at``; ``events.expired``). An open event is never pruned:
nobody has looked at it yet; one still seen by the watch rounds stays too (pruned, it would come back as a
new event and be alerted again). Kept: overrides (the audit trail of
allow/block, small, and an active one must never vanish), correspondents (learned counts, not history:
pruning them would change verdicts), API tokens; expired dashboard sessions are deleted at each sign-in.

On SQLite the newest decision is always kept: SQLite numbers a new row max(seq)+1, so an empty table would
hand out seq 1 again and a client paging or exporting by ``seq`` would see old numbers for new decisions.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Table, delete, func, select, text

from typoguard.store.db import translated, write_connection
from typoguard.store.events import expired as expired_events
from typoguard.store.schema import decisions, events, held_actions
from typoguard.store.store import Store

log = logging.getLogger("typoguard.store.retention")

DAY: Final = 86400.0
BATCH_ROWS: Final = 5000  # rows per DELETE transaction (SQLite: about 50 ms each, docs/store.md)
EVERY_SECONDS: Final = 3600.0  # between runs
SQLITE_PAUSE: Final = 0.15  # between batches: > SQLite's longest busy-handler sleep (100 ms)
POSTGRESQL_PAUSE: Final = 0.01  # row locks: nobody waits for a batch; a breath for the server only
_PG_LOCK_KEY: Final = 0x7479706F + 1  # "typo" + 1: migrations use "typo"

EventSink = Callable[..., None]  # (level, event, **fields): the service's JSON log


@dataclass(frozen=True, slots=True)
class PruneRun:
    """What one run did."""

    before: float  # rows older than this (UNIX seconds) were deleted
    decisions: int = 0
    held_actions: int = 0
    events: int = 0  # acknowledged watch events (tg_events)
    batches: int = 0
    seconds: float = 0.0
    longest_batch: float = 0.0  # seconds: the longest a writer could have waited for SQLite's lock
    skipped: str = ""  # why nothing was done (PostgreSQL: another node is pruning)


def prune_expired(
    store: Store,
    keep_days: int,
    *,
    now: float | None = None,
    batch_rows: int = BATCH_ROWS,
    pause: float | None = None,
    stop: threading.Event | None = None,
) -> PruneRun:
    """Delete decisions, held-mail actions and acknowledged events older than ``keep_days`` (0: keep all), in
    batches of at most
    ``batch_rows`` with ``pause`` seconds between them; ``stop`` ends the run between batches. Raises
    ``StoreError``."""
    before = (time.time() if now is None else now) - keep_days * DAY
    if keep_days <= 0:
        return PruneRun(before)
    sqlite = store.dialect == "sqlite"
    wait = (SQLITE_PAUSE if sqlite else POSTGRESQL_PAUSE) if pause is None else pause
    stop = stop or threading.Event()
    started = time.monotonic()
    counts = {"decisions": 0, "held_actions": 0, "events": 0}
    batches, longest = 0, 0.0
    with translated("prune expired decisions"), _one_node_at_a_time(store) as ours:
        if not ours:
            return PruneRun(before, skipped="another node is pruning")
        work = (
            ("decisions", decisions, "time", sqlite, None),
            ("held_actions", held_actions, "at", False, None),
            ("events", events, "last_seen", False, expired_events(before)),
        )
        for name, table, at, keep_newest, only in work:
            while not stop.is_set():
                t0 = time.monotonic()
                with write_connection(store.engine) as conn:
                    n = _delete_batch(conn, table, at, before, batch_rows, keep_newest=keep_newest, only=only)
                longest = max(longest, time.monotonic() - t0)
                batches += 1
                counts[name] += n
                if n < batch_rows:
                    break
                stop.wait(wait)
    return PruneRun(
        before,
        counts["decisions"],
        counts["held_actions"],
        counts["events"],
        batches,
        time.monotonic() - started,
        longest,
    )


@contextlib.contextmanager
def _one_node_at_a_time(store: Store) -> Iterator[bool]:
    """PostgreSQL: hold the retention advisory lock (session level, on a connection of its own) while the
    run lasts; False if another node holds it. SQLite: always True (one machine, one file)."""
    if store.dialect == "sqlite":
        yield True
        return
    with store.engine.connect() as session:
        got = bool(session.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK_KEY}).scalar())
        session.commit()
        try:
            yield got
        finally:
            if got:
                session.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                session.commit()


def _delete_batch(
    conn: Connection,
    table: Table,
    at: str,
    before: float,
    rows: int,
    *,
    keep_newest: bool,
    only: ColumnElement[bool] | None = None,
) -> int:
    """Delete up to ``rows`` rows of ``table`` with ``at`` < ``before`` (and ``only``), oldest first
    (``keep_newest``: never the row with the highest key, see the module docstring); returns how many."""
    key = table.c.seq if table is decisions else table.c.id
    chosen = select(key).where(table.c[at] < before).order_by(table.c[at]).limit(rows)
    if only is not None:
        chosen = chosen.where(only)
    if keep_newest:
        chosen = chosen.where(key < select(func.max(key)).scalar_subquery())
    if conn.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    result = conn.execute(delete(table).where(key.in_(chosen.scalar_subquery())))
    return int(result.rowcount or 0)


class RetentionTask:
    """A thread that prunes once ``ready()`` (the server is up), then every ``every`` seconds.

    Each run is reported through ``on_event``: ``store_pruned`` (info: rows per table, batches, seconds,
    the longest batch), ``store_prune_skipped`` (another node prunes), ``store_prune_failed`` (error; tried
    again at the next run). Counters for the metrics page: ``pruned`` (rows per table), ``failures``,
    ``last_success`` (UNIX time), ``last_seconds``.
    """

    def __init__(
        self,
        store: Store,
        keep_days: int,
        *,
        on_event: EventSink,
        every: float = EVERY_SECONDS,
        ready: Callable[[], bool] | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.store = store
        self.keep_days = keep_days
        self.every = every
        self.batch_rows = batch_rows
        self._on_event = on_event
        self._ready = ready
        self.pruned = {"decisions": 0, "held_actions": 0, "events": 0}
        self.runs = 0
        self.failures = 0
        self.last_success = 0.0
        self.last_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="typoguard-retention", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop (a batch in progress finishes first)."""
        self._stop.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        while self._ready is not None and not self._ready():
            if self._stop.wait(0.1):
                return
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.every)

    def run_once(self) -> PruneRun | None:
        """One run, reported; None if it failed."""
        try:
            run = prune_expired(self.store, self.keep_days, batch_rows=self.batch_rows, stop=self._stop)
        except Exception as exc:  # a thread must not die of a database outage: report, try next time
            self.failures += 1
            self._event("error", "store_prune_failed", error=str(exc), then=f"next try in {self.every:.0f} s")
            return None
        self.runs += 1
        if run.skipped:
            self._event("info", "store_prune_skipped", reason=run.skipped)
            return run
        self.pruned["decisions"] += run.decisions
        self.pruned["held_actions"] += run.held_actions
        self.pruned["events"] += run.events
        self.last_success = time.time()
        self.last_seconds = run.seconds
        self._event(
            "info",
            "store_pruned",
            decisions=run.decisions,
            held_actions=run.held_actions,
            events=run.events,
            keep_days=self.keep_days,
            before=datetime.fromtimestamp(run.before, UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            batches=run.batches,
            seconds=round(run.seconds, 3),
            longest_batch_seconds=round(run.longest_batch, 3),
        )
        return run

    def _event(self, level: str, event: str, **fields: Any) -> None:
        try:
            self._on_event(level, event, **fields)
        except Exception:  # the log is gone: the metrics still count
            log.exception("cannot report %s", event)
