"""``DecisionWriter``: gets decisions into the database off the policy hot path.

``submit`` appends to a bounded in-memory queue and returns; it never blocks on the database and never
raises. A background thread takes batches (up to ``batch_size``, or whatever arrived within
``flush_interval``) and writes each in one transaction, learning correspondents from the allowed decisions
in the same transaction. When the database fails the batch goes to the spool (JSON lines on local disk),
and so does everything after it until a retry (every ``retry_interval``) succeeds; then the spool is
replayed. A full queue also spills to the spool rather than block.

The thread runs at a low CPU priority (``writer_nice``, 19 by default, Linux only): when the machine is
saturated, checking mail gets the CPU and the log catches up when it is not; the queue, then the spool, hold
the difference (``backlog`` shows it). Unneeded on a machine with spare cores, harmless there.

Every event gets a unique id before it is first stored or spooled, and inserts ignore ids already present,
so a replay stores each event exactly once.

Metrics are plain attributes for the service to export: ``written``, ``replayed``, ``spooled``,
``dropped`` (lost: the spool itself failed), ``failures`` (failed database writes), ``backlog``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typoguard.errors import StoreError
from typoguard.store.decisions import ROW_TUPLE, DecisionEvent, row_dict
from typoguard.store.spool import Spool
from typoguard.store.store import Store

log = logging.getLogger("typoguard.store.writer")

RowsCallback = Callable[[list[tuple[Any, ...]]], None]
SPOOL_EVERY = 1.0  # seconds between looks for spool files to replay, while the writer is busy or idle


class DecisionWriter:
    """A background thread that stores ``DecisionEvent``s in batches. Start on construction."""

    def __init__(
        self,
        store: Store,
        *,
        spool_dir: Path | None = None,
        batch_size: int | None = None,
        queue_size: int | None = None,
        flush_interval: float | None = None,
        retry_interval: float | None = None,
        on_commit: RowsCallback | None = None,
        nice: int | None = None,
    ) -> None:
        settings = store.config.settings
        self.store = store
        self.batch_size = batch_size or settings.batch_size
        self.queue_size = queue_size or settings.queue_size
        self.flush_interval = flush_interval or settings.flush_interval
        self.retry_interval = retry_interval or settings.retry_interval
        self.nice = settings.writer_nice if nice is None else nice
        self.spool = Spool(spool_dir or store.config.spool_dir)
        self._on_commit = on_commit
        # DecisionEvents (submit), or rows with their ids already given (submit_row: the writer process)
        self._queue: collections.deque[DecisionEvent | tuple[Any, ...]] = collections.deque()
        # Ids: a random 80-bit prefix per writer and a counter, in UUID text form. As unique as uuid4 across
        # writers, and a fraction of its cost per event.
        prefix = uuid.uuid4().hex[:20]
        self._id_prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-"
        self._ids = itertools.count()
        self.written = 0
        self.replayed = 0
        self.spooled = 0
        self.dropped = 0
        self.failures = 0
        self.settled = 0  # queued decisions stored, spooled or dropped (in queue order)
        self.db_ok = True
        self._next_spool_check = 0.0
        self._next_retry = 0.0
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="typoguard-decision-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ hot path
    def submit(self, event: DecisionEvent) -> None:
        """Queue ``event`` for storage. Never blocks on the database, never raises."""
        q = self._queue
        if len(q) < self.queue_size:
            q.append(event)
            return
        self._spill([event])

    def submit_row(self, values: tuple[Any, ...]) -> None:
        """Queue a row (``DecisionEvent.values``) whose id the caller gave; never spills (the caller bounds
        the queue: the writer process reads its pipe only while ``queued`` is short)."""
        self._queue.append(values)

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ metrics
    @property
    def backlog(self) -> int:
        """Decisions not yet in the database: queued in memory plus spooled on disk."""
        return len(self._queue) + self.spool.pending

    # ------------------------------------------------------------------ control
    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far has been written or spooled; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self._idle.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._thread.is_alive():
                return not self._queue
            if self._idle.wait(remaining) and not self._queue:
                return True

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (or spool it) and stop the thread."""
        self._stop.set()
        self._thread.join(timeout)
        self.spool.close()

    def adopt_spool(self, rows: int | None = None) -> None:
        """Notice spool files written by others (the policy service spills there when this writer lags):
        ``rows`` new rows, or count them all again. The thread replays them within ``SPOOL_EVERY`` seconds,
        busy or not."""
        if rows is None:
            self.spool.recount()
        elif rows:
            self.spool.noticed(rows)

    def replay_now(self) -> int:
        """Replay the spool if the database answers (normally the thread does this itself)."""
        return self._replay()

    # ------------------------------------------------------------------ thread
    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):012x}"

    def _rows(self, events: list[DecisionEvent | tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        new_id = self._new_id
        return [e if type(e) is tuple else e.values(new_id()) for e in events]  # type: ignore[union-attr]

    def _spill(self, events: list[DecisionEvent | tuple[Any, ...]]) -> None:
        try:
            self.spool.append([row_dict(r) for r in self._rows(events)], flush=False)
            self.spooled += len(events)
        except Exception:  # the hot path must not raise: count the loss and log it
            self.dropped += len(events)
            log.exception("decision spool failed: %d decisions dropped", len(events))

    def _lower_priority(self) -> None:
        if self.nice <= 0 or not hasattr(os, "setpriority"):
            return
        try:  # on Linux a thread id is a process id for setpriority: this thread only
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        except OSError as exc:
            log.warning("cannot lower the decision writer's priority: %s", exc)

    def _run(self) -> None:
        self._lower_priority()
        if self.spool.has_files():
            self._replay()
        oldest = 0.0  # when the queue was first seen non-empty since the last write
        while True:
            self.spool.flush()  # what submit() spilled since the last round
            queued = len(self._queue)
            if queued:
                now = time.monotonic()
                oldest = oldest or now
                # A transaction costs far more than a row: wait for a full batch, but never let a
                # decision wait longer than flush_interval (nor at all when stopping).
                if queued >= self.batch_size or now - oldest >= self.flush_interval or self._stop.is_set():
                    self._write(self._take())
                    oldest = 0.0
                    # A writer that is never idle replays the spool between batches: not stranded there.
                    self._replay_due(time.monotonic())
                    continue
                self._stop.wait(min(self.flush_interval, oldest + self.flush_interval - now))
                continue
            if self._stop.is_set():
                if self.db_ok and self.spool.has_files():
                    self._replay()  # close() leaves nothing behind that the database could take
                self._idle.set()
                return
            self._idle.set()
            self._replay_due(time.monotonic())  # overflow spilled while busy, or a retry while down
            self._stop.wait(self.flush_interval)

    def _replay_due(self, now: float) -> None:
        """Replay spool files when there are any (a directory listing at most every ``SPOOL_EVERY``
        seconds: the counter may miss files others wrote), and the database answers or a retry is due."""
        if now < self._next_spool_check or not (self.db_ok or now >= self._next_retry):
            return
        self._next_spool_check = now + SPOOL_EVERY
        if self.spool.pending or self.spool.has_files():
            self._replay()

    def _take(self) -> list[DecisionEvent | tuple[Any, ...]]:
        q = self._queue
        n = min(len(q), self.batch_size)
        return [q.popleft() for _ in range(n)]

    def _write(self, batch: list[DecisionEvent | tuple[Any, ...]]) -> None:
        rows = self._rows(batch)
        if not self.db_ok and time.monotonic() < self._next_retry:
            self._spool_rows(rows)
            self.settled += len(rows)
            return
        try:
            self.store.write_decisions(rows)
        except Exception as exc:
            self._failed(exc)
            self._spool_rows(rows)
            self.settled += len(rows)
            return
        self.written += len(rows)
        self.settled += len(rows)
        if self._on_commit is not None:
            self._on_commit(rows)
        if not self.db_ok:
            self.db_ok = True
            log.warning("decision store is back; replaying the spool")
            self._replay()

    def _spool_rows(self, rows: list[tuple[Any, ...]]) -> None:
        try:
            self.spool.append([row_dict(r) for r in rows])
            self.spooled += len(rows)
        except Exception:
            self.dropped += len(rows)
            log.exception("decision spool failed: %d decisions dropped", len(rows))

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self.db_ok:
            level = logging.WARNING if isinstance(exc, StoreError) else logging.ERROR
            log.log(
                level,
                "decision store unavailable, spooling: %s",
                exc,
                exc_info=not isinstance(exc, StoreError),
            )
        self.db_ok = False
        self._next_retry = time.monotonic() + self.retry_interval

    def _replay(self) -> int:
        def write(rows: list[dict[str, Any]]) -> int:
            values = []
            for r in rows:
                try:
                    values.append(ROW_TUPLE(r))
                except (KeyError, TypeError):
                    self.spool.skipped += 1  # not a decision row: never retried forever
            fresh = self.store.write_decisions(values, replay=True)
            if self._on_commit is not None:
                self._on_commit(values)
            return fresh

        try:
            n = self.spool.replay(write, self.batch_size)
        except Exception as exc:
            self._failed(exc)
            return 0
        self.db_ok = True
        self.replayed += n
        return n
