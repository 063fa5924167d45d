"""Backups and retention of the store (``typoguard db backup|restore``, ``[store] keep_days``).

0. **baseline**: the stand-in decision writer below (50 decisions every 20 ms), alone for 3 s.
1. **backup**: an SQLite store of ``N_DECISIONS`` decisions (1,000,000: recipients at 5,000 domains, 500
   senders, one in ten flagged with a reason; correspondents learned as the writer does), copied with
   ``store.backup.backup`` while a stand-in decision writer (its own engine, as the writer process has)
   stores 50 decisions every 20 ms: time, size, and the longest the writer waited meanwhile.
2. **restore** of that backup into an empty data directory (copy, integrity_check, rename).
3. **prune**: ``N_OLD`` of those decisions are older than ``keep_days``; ``retention.prune_expired`` deletes
   them in batches while the same writer runs: rows/s (with the pauses between batches, and of the deletes
   alone), the longest batch, the writer's longest wait and its 99th percentile. For contrast the same
   number of rows deleted by one DELETE (``Store.prune``, the path of ``typoguard db prune``).
4. **PostgreSQL** (a throwaway cluster with durable settings, if the server is installed): prune of
   ``N_PG_OLD`` old rows with the writer running.
5. **the real service**: ``typoguard serve`` on an SQLite store holding ``N_SERVE_OLD`` decisions older than
   ``keep_days``, which it prunes at start, under a paced Postfix-like load (8 connections, 1,000
   requests/s): the longest time without an answer and the 99th percentile of the gaps, while it prunes and
   for 3 s after, and whether every answered decision was stored.

Bounded: about two minutes. Run: ``python -m benchmarks --only backup`` (under ``flock -x
/tmp/tg-machine.lock`` on a shared machine).
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from typoguard.config import StoreConfig
from typoguard.store import DecisionEvent, Store, open_store
from typoguard.store.backup import backup, restore
from typoguard.store.retention import BATCH_ROWS, POSTGRESQL_PAUSE, SQLITE_PAUSE, PruneRun, prune_expired

from .bench_store import _pgcluster, _stored_recipients, _tests_module

N_DECISIONS = int(os.environ.get("BENCH_BACKUP_DECISIONS", "1000000"))
N_OLD = int(os.environ.get("BENCH_BACKUP_OLD", "300000"))
N_PG_OLD = int(os.environ.get("BENCH_BACKUP_PG_OLD", "200000"))
N_SERVE_OLD = int(os.environ.get("BENCH_BACKUP_SERVE_OLD", "200000"))
DAY = 86400.0


def fill(store: Store, n: int, *, age_days: float, tag: str, batch: int = 20_000) -> None:
    """``n`` decisions made ``age_days`` ago through the writer's insert path (correspondents learned)."""
    at = time.time() - age_days * DAY
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            flagged = i % 10 == 0
            event = DecisionEvent(
                at + i * 1e-3,
                f"{tag}{i}@d{i % 5000}.example" if not flagged else f"{tag}{i}@arny.mil",
                "warn" if flagged else "allow",
                "arny.mil" if flagged else f"d{i % 5000}.example",
                intended="army.mil" if flagged else None,
                kind="keyboard_substitution" if flagged else None,
                score=0.62 if flagged else 0.0,
                sender=f"user{i % 500}@army.mil",
                node="mx1",
                reason="arny.mil is one keystroke from army.mil (n/m adjacent)" if flagged else None,
            )
            rows.append(event.values(str(uuid.uuid4())))
        store.write_decisions(rows)


class Writer:
    """A stand-in for the decision writer process: 50 decisions every 20 ms, each batch timed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            now = time.time()
            rows = [
                DecisionEvent(now, f"live{n + i}@army.mil", "allow", "army.mil").values(str(uuid.uuid4()))
                for i in range(50)
            ]
            n += 50
            t0 = time.monotonic()
            self.store.write_decisions(rows)
            self.waits.append(time.monotonic() - t0)
            self._stop.wait(0.02)

    def summary(self) -> str:
        if not self.waits:
            return "no writes"
        p99 = statistics.quantiles(self.waits, n=100)[98] if len(self.waits) > 100 else max(self.waits)
        longest = max(self.waits) * 1000
        return f"writer: {len(self.waits)} batches, longest wait {longest:.0f} ms, p99 {p99 * 1000:.0f} ms"


def prune_line(what: str, run: PruneRun, pause: float, writer: Writer) -> str:
    work = run.seconds - (run.decisions // BATCH_ROWS) * pause  # without the pauses between full batches
    return (
        f"{what} prune of {run.decisions:,} old decisions in {run.batches} batches: {run.seconds:.1f} s,"
        f" {run.decisions / run.seconds:,.0f} rows/s ({run.decisions / work:,.0f} rows/s without the pauses),"
        f" longest batch {run.longest_batch * 1000:.0f} ms; {writer.summary()}"
    )


def sqlite_part(tmp: Path) -> list[str]:
    out = []
    cfg = StoreConfig(data_dir=str(tmp / "live"), spool_dir=str(tmp / "spool"))
    store, writer_store = open_store(cfg), open_store(cfg)
    try:
        t0 = time.monotonic()
        fill(store, N_OLD, age_days=500, tag="old")
        fill(store, N_DECISIONS - N_OLD, age_days=30, tag="new")
        out.append(f"filled {N_DECISIONS:,} decisions in {time.monotonic() - t0:.1f} s")
        db = tmp / "live" / "typoguard.db"
        with Writer(writer_store) as w:
            time.sleep(3)
        out.append(f"baseline, nothing else running: {w.summary()}")

        target = tmp / "backup.db"
        with Writer(writer_store) as w:
            t0 = time.monotonic()
            copy = backup(db, target)
            took = time.monotonic() - t0
        size = copy.size
        n = copy.tables["tg_decisions"]
        out.append(
            f"backup of {n:,} decisions: {took:.2f} s, {size / 2**20:.0f} MiB ({size / n:.0f} bytes/decision,"
            f" live file {db.stat().st_size / 2**20:.0f} MiB); {w.summary()}"
        )

        t0 = time.monotonic()
        restore(target, tmp / "restored" / "typoguard.db")
        out.append(f"restore of that backup (copy, integrity_check, rename): {time.monotonic() - t0:.2f} s")

        with Writer(writer_store) as w:
            run = prune_expired(store, 400)
        out.append(prune_line("SQLite", run, SQLITE_PAUSE, w))

        fill(store, N_OLD, age_days=500, tag="again")
        with Writer(writer_store) as w:
            t0 = time.monotonic()
            n = store.prune(400 * DAY)
            took = time.monotonic() - t0
        out.append(
            f"one DELETE of {n:,} instead (db prune): {took:.1f} s, {n / took:,.0f} rows/s; {w.summary()}"
        )
    finally:
        writer_store.close()
        store.close()
    return out


def postgresql_part(tmp: Path) -> list[str]:
    pg = _pgcluster()
    if pg.pg_bin_dir() is None:
        return ["PostgreSQL server binaries not found: skipped (scripts/install-postgres.sh)"]
    cluster = pg.PgCluster(fast=False).init()
    cluster.start()
    try:
        cfg = StoreConfig(url=cluster.create_database("bench"), spool_dir=str(tmp / "pgspool"))
        store, writer_store = open_store(cfg), open_store(cfg)
        try:
            fill(store, N_PG_OLD, age_days=500, tag="old")
            fill(store, 100_000, age_days=30, tag="new")
            with Writer(writer_store) as w:
                run = prune_expired(store, 400)
            return [prune_line("PostgreSQL", run, POSTGRESQL_PAUSE, w)]
        finally:
            writer_store.close()
            store.close()
    finally:
        cluster.destroy()


def _gaps(times: list[float]) -> str:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if len(gaps) < 100:
        return "too few answers"
    p99 = statistics.quantiles(gaps, n=100)[98]
    return f"{len(times):,} answers, longest gap {max(gaps) * 1000:.0f} ms, p99 gap {p99 * 1000:.1f} ms"


def service_part(tmp: Path) -> list[str]:
    from typoguard.config import load_config

    serve_process, policy_load = _tests_module("serve_process"), _tests_module("policy_load")
    exe = str(Path(sys.executable).with_name("typoguard"))
    node = serve_process.ServeProcess(exe, tmp / "serve", store_extra="keep_days = 400")
    store = open_store(load_config(node.config, environ={}))
    fill(store, N_SERVE_OLD, age_days=500, tag="old")
    store.close()
    node.start()
    load = policy_load.PolicyLoad(node.address, conns=8, rate=1000).start()
    try:
        while not node.records("store_pruned"):
            time.sleep(0.05)
        pruned_at = time.monotonic()
        time.sleep(3.0)
        answered = load.stop()
    finally:
        load.stop()
        node.stop()
    (record,) = node.records("store_pruned")
    at = load.answered_at
    during = [t for t in at if t <= pruned_at]
    after = [t for t in at if t > pruned_at]
    lost = len(set(answered) - set(_stored_recipients(node.config)))
    return [
        f"typoguard serve pruning {record['decisions']:,} decisions at start ({record['seconds']} s,"
        f" {record['batches']} batches) under 1,000 requests/s: during {_gaps(during)}; after {_gaps(after)};"
        f" errors {load.errors}, answered but not stored {lost}"
    ]


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-backup-") as tmp:
        for line in sqlite_part(Path(tmp)) + postgresql_part(Path(tmp)) + service_part(Path(tmp)):
            print(line)
    print(f"\n(bench_backup took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
