"""Retention (``[store] keep_days``): the service deletes old decisions and held-mail actions by itself, in
bounded batches, on SQLite and on a real PostgreSQL, while it keeps answering and storing."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from typoguard.config import load_config
from typoguard.errors import ConfigError
from typoguard.store import DecisionEvent, DecisionQuery, Store, open_store
from typoguard.store.events import Observation
from typoguard.store.retention import RetentionTask, prune_expired
from typoguard.store.schema import decisions as decisions_table
from typoguard.store.schema import events as events_table
from typoguard.store.schema import held_actions

from .conftest import store_config
from .policy_load import PolicyLoad
from .serve_process import ServeProcess

DAY = 86400.0


# Old decisions the prune tests start with: 12 batches of BATCH_ROWS (5000), enough for the writer and the
# service to have to get in between batches, few enough to keep each test to a few seconds.
OLD = 60_000


def add_decisions(store: Store, n: int, *, age_days: float, tag: str = "old", batch: int = 10_000) -> None:
    """``n`` rejected decisions (nothing learned from them) made ``age_days`` ago."""
    at = time.time() - age_days * DAY
    for start in range(0, n, batch):
        rows = [
            DecisionEvent(at + i * 1e-4, f"{tag}{i}@arny.mil", "reject", "arny.mil").values(str(uuid.uuid4()))
            for i in range(start, min(n, start + batch))
        ]
        store.write_decisions(rows)


def add_held_action(store: Store, queue_id: str, *, age_days: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            held_actions.insert().values(
                queue_id=queue_id, action="release", by="alice", at=time.time() - age_days * DAY, reason=""
            )
        )


def count(store: Store, older_than_days: float | None = None) -> int:
    stmt = select(func.count()).select_from(decisions_table)
    if older_than_days is not None:
        stmt = stmt.where(decisions_table.c.time < time.time() - older_than_days * DAY)
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


# --------------------------------------------------------------------------- config
def test_keep_days_defaults_to_400_and_must_not_be_negative(tmp_path: Path) -> None:
    assert load_config().store.keep_days == 400
    cfg = tmp_path / "t.toml"
    cfg.write_text("[store]\nkeep_days = 0\n")
    assert load_config(cfg).store.keep_days == 0  # keep forever
    cfg.write_text("[store]\nkeep_days = -1\n")
    with pytest.raises(ConfigError, match=r"\[store\] keep_days must be a number of days, or 0"):
        load_config(cfg)
    cfg.write_text('[store]\nkeep_days = "90d"\n')
    with pytest.raises(ConfigError, match="keep_days must be an integer"):
        load_config(cfg)


# --------------------------------------------------------------------------- pruning
def test_old_decisions_and_held_actions_go_recent_ones_stay(any_store: Store) -> None:
    add_decisions(any_store, 25, age_days=500)
    add_decisions(any_store, 10, age_days=399, tag="recent")
    add_held_action(any_store, "4Xk1Qz0mKf01", age_days=401)
    add_held_action(any_store, "4Xk1Qz0mKf02", age_days=2)

    run = prune_expired(any_store, 400, batch_rows=7, pause=0.0)

    assert (run.decisions, run.held_actions) == (25, 1)
    assert run.batches >= 4  # 25 rows in batches of at most 7
    left = any_store.decisions(DecisionQuery(limit=100))
    assert sorted(r.event.recipient for r in left) == sorted(f"recent{i}@arny.mil" for i in range(10))
    assert [a.queue_id for a in any_store.held_actions()] == ["4Xk1Qz0mKf02"]
    assert prune_expired(any_store, 400, pause=0.0).decisions == 0  # nothing left to do


def test_acknowledged_events_not_seen_within_keep_days_go_open_ones_never(any_store: Store) -> None:
    """``tg_events``: an acknowledged event is pruned once neither seen nor acknowledged for ``keep_days``;
    an open one never (nobody has looked at it yet); one still seen stays (pruned, the next round would
    raise it again as new and alert)."""
    now = time.time()

    def seen(subject: str, days_ago: float) -> int:
        obs = Observation("lookalike-accepts-mail", subject, "critical", fact=f"mx.{subject}")
        new = any_store.observe_events([obs], now=now - days_ago * DAY)
        return new[0].id if new else 0

    old_acked, old_open, recent_acked, still_seen = (
        seen("old-acked.example", 500), seen("old-open.example", 900),
        seen("recent-acked.example", 10), seen("still-seen.example", 500),
    )  # fmt: skip
    assert seen("still-seen.example", 1) == 0  # seen again yesterday: not new, its last_seen moves
    for event_id in (old_acked, recent_acked, still_seen):
        any_store.acknowledge_event(event_id, by="admin", reason="ours")
    with any_store.engine.begin() as conn:  # acknowledged back then, too
        conn.execute(
            events_table.update()
            .where(events_table.c.id.in_([old_acked, still_seen]))
            .values(ack_at=now - 450 * DAY)
        )

    run = prune_expired(any_store, 400, batch_rows=1, pause=0.0)

    assert (run.decisions, run.events) == (0, 1)
    assert sorted(e.id for e in any_store.events()) == sorted([old_open, recent_acked, still_seen])
    assert prune_expired(any_store, 400, pause=0.0).events == 0
    # `typoguard db prune` ([store] retention) prunes them the same way
    assert any_store.prune_events(5 * DAY) == 0  # recent-acked was acknowledged just now
    with any_store.engine.begin() as conn:
        acked = events_table.update().where(events_table.c.id == recent_acked)
        conn.execute(acked.values(ack_at=now - 20 * DAY))
    assert any_store.prune_events(5 * DAY) == 1
    assert sorted(e.id for e in any_store.events()) == sorted([old_open, still_seen])


def test_keep_days_zero_keeps_everything(sqlite_store: Store) -> None:
    add_decisions(sqlite_store, 5, age_days=5000)
    run = prune_expired(sqlite_store, 0)
    assert (run.decisions, run.held_actions, run.batches) == (0, 0, 0)
    assert count(sqlite_store) == 5


def test_sqlite_keeps_the_newest_decision_so_sequence_numbers_never_start_again(sqlite_store: Store) -> None:
    # SQLite numbers a new row max(seq)+1: deleting every row would hand out seq 1 again, and a client
    # paging or exporting by seq would see "old" numbers for new decisions.
    add_decisions(sqlite_store, 20, age_days=500)
    newest = sqlite_store.decisions(DecisionQuery(limit=1))[0].seq
    assert prune_expired(sqlite_store, 400, pause=0.0).decisions == 19
    add_decisions(sqlite_store, 1, age_days=0, tag="new")
    assert sqlite_store.decisions(DecisionQuery(limit=1))[0].seq > newest


def test_batches_keep_the_sqlite_writer_moving(tmp_path: Path) -> None:
    """A prune in one DELETE holds SQLite's one write lock for as long as it takes (seconds, for a few
    hundred thousand rows); in batches the decision writer gets in between every batch."""
    store = open_store(store_config(tmp_path))
    writer = open_store(store_config(tmp_path))  # the writer process's own connection
    try:
        add_decisions(store, OLD, age_days=500, batch=20_000)
        stalls: list[float] = []
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                row = DecisionEvent(time.time(), f"new{i}@army.mil", "reject", "army.mil")
                writer.write_decisions([row.values(str(uuid.uuid4()))])
                stalls.append(time.monotonic() - t0)
                i += 1
                time.sleep(0.005)

        thread = threading.Thread(target=write)
        thread.start()
        try:
            run = prune_expired(store, 400)
        finally:
            stop.set()
            thread.join()
        assert run.decisions == OLD and run.batches >= OLD // 5000
        assert count(store, older_than_days=400) == 0 and count(store) == len(stalls)
        assert max(stalls) < 1.0, f"the writer waited {max(stalls):.2f} s"
        assert run.longest_batch < 1.0
    finally:
        writer.close()
        store.close()


def test_two_nodes_pruning_one_postgresql_at_once(tmp_path: Path, pg_url: str) -> None:
    nodes = [open_store(store_config(tmp_path / n, pg_url, node=n)) for n in ("a", "b")]
    try:
        add_decisions(nodes[0], 30_000, age_days=500)
        add_decisions(nodes[0], 100, age_days=1, tag="recent")
        barrier = threading.Barrier(2)
        runs: list[object] = []
        errors: list[BaseException] = []

        def prune(store: Store) -> None:
            barrier.wait()
            try:
                runs.append(prune_expired(store, 400, batch_rows=1000, pause=0.0))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=prune, args=(s,)) for s in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert sum(r.decisions for r in runs) == 30_000  # type: ignore[attr-defined]
        assert count(nodes[1]) == 100
    finally:
        for s in nodes:
            s.close()


def test_the_task_prunes_once_at_start_and_then_every_interval(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    events: list[tuple[str, str, dict[str, object]]] = []
    try:
        add_decisions(store, 30, age_days=401)
        add_decisions(store, 1, age_days=0, tag="today")
        task = RetentionTask(store, 400, every=0.3, on_event=lambda lvl, ev, **f: events.append((lvl, ev, f)))
        try:
            deadline = time.monotonic() + 10
            while not events and time.monotonic() < deadline:
                time.sleep(0.02)
            assert events[0][:2] == ("info", "store_pruned")
            assert events[0][2]["decisions"] == 30 and events[0][2]["keep_days"] == 400
            assert {"held_actions", "seconds", "batches", "before"} <= set(events[0][2])
            add_decisions(store, 4, age_days=402, tag="later")
            add_decisions(store, 1, age_days=0, tag="now")
            while task.pruned["decisions"] < 34 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert task.pruned == {"decisions": 34, "held_actions": 0, "events": 0}
            assert task.last_success > 0 and task.failures == 0
        finally:
            task.close()
        assert count(store) == 2
    finally:
        store.close()


def test_a_run_against_a_database_that_is_down_is_reported_and_tried_again(tmp_path: Path) -> None:
    from .pgcluster import free_port

    down = f"postgresql+psycopg://tg@127.0.0.1:{free_port()}/typoguard"  # nothing listens there
    store = open_store(store_config(tmp_path, down), upgrade=False)
    events: list[tuple[str, str, dict[str, object]]] = []
    task = RetentionTask(store, 400, every=0.2, on_event=lambda lvl, ev, **f: events.append((lvl, ev, f)))
    try:
        deadline = time.monotonic() + 30
        while task.failures < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        task.close()
        store.close()
    assert task.failures >= 2 and task.last_success == 0.0  # it kept trying, the thread did not die
    level, event, fields = events[0]
    assert (level, event) == ("error", "store_prune_failed")
    assert "prune expired decisions" in str(fields["error"]) and "next try in" in str(fields["then"])


# --------------------------------------------------------------------------- the real service
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_service_prunes_old_decisions_while_it_answers_and_stores(
    backend: str, typoguard_exe: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else ""
    node = ServeProcess(typoguard_exe, tmp_path / "a", url=url, store_extra="keep_days = 400")
    seed = open_store(load_config(node.config))
    add_decisions(seed, OLD, age_days=500, batch=20_000)
    add_decisions(seed, 50, age_days=30, tag="recent")
    seed.close()
    node.start()
    load = PolicyLoad(node.address, conns=4, rate=400).start()
    try:
        deadline = time.monotonic() + 120
        while not node.records("store_pruned") and time.monotonic() < deadline:
            assert node.proc is not None and node.proc.poll() is None
            time.sleep(0.2)
        (pruned,) = node.records("store_pruned")
        time.sleep(1.0)
        assert node.metric('typoguard_store_pruned_rows_total{table="decisions"}') == OLD
        assert node.metric("typoguard_store_prune_last_success_timestamp_seconds") > 0
    finally:
        answered = load.stop()
        assert node.stop() == 0
    assert pruned["decisions"] == OLD and pruned["level"] == "info" and pruned["keep_days"] == 400
    assert load.errors == 0
    at = load.answered_at
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert max(gaps) < 2.0, f"the service did not answer for {max(gaps):.2f} s"
    store = open_store(load_config(node.config))
    try:
        assert count(store, older_than_days=400) == 0
        recent = DecisionQuery(since=time.time() - DAY, limit=10**6)
        stored = {r.event.recipient for r in store.decisions(recent)}
        assert set(answered) <= stored  # every decision made during the prune was stored
        assert len(store.decisions(DecisionQuery(recipient="recent0@arny.mil"))) == 1
    finally:
        store.close()
