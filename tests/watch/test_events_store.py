"""Events in the store: one per fact, seen again only counted, acknowledged with who and why; on SQLite and
PostgreSQL (``store_url``), and by several nodes sharing one database."""

from __future__ import annotations

from pathlib import Path

import pytest

from typoguard.config import StoreConfig
from typoguard.errors import ConfigError
from typoguard.store import open_store
from typoguard.store.events import Observation
from typoguard.store.migrations import LATEST


def test_a_fact_is_one_event_and_reminders_are_daily(tmp_path: Path, store_url: str) -> None:
    store = open_store(StoreConfig(data_dir=str(tmp_path), url=store_url))
    try:
        assert store.schema_version() == LATEST >= 4
        seen = Observation("lookalike-accepts-mail", "army.ml", "critical", fact="mx1.catchall.example")
        new = store.observe_events([seen], now=1000.0)
        assert [(e.kind, e.subject, e.count, e.state) for e in new] == [
            ("lookalike-accepts-mail", "army.ml", 1, "open")
        ]
        assert store.observe_events([seen], now=2000.0) == []  # the same fact: no new event
        (event,) = store.events()
        assert (event.count, event.first_seen, event.last_seen) == (2, 1000.0, 2000.0)

        assert [e.id for e in store.events_due(86400, now=2000.0)] == [event.id]  # never alerted
        store.mark_alerted([event.id], now=2000.0)
        assert store.events_due(86400, now=2000.0 + 3600) == []  # alerted an hour ago
        assert [e.id for e in store.events_due(86400, now=2000.0 + 86400)] == [event.id]  # a day: remind

        other = Observation("lookalike-accepts-mail", "army.ml", "critical", fact="mx.other.example")
        assert len(store.observe_events([other], now=3000.0)) == 1  # a new fact about the same name

        with pytest.raises(ConfigError):
            store.acknowledge_event(event.id, by="admin", reason=" ")
        acked = store.acknowledge_event(event.id, by="admin", reason="registered by us")
        assert acked is not None and (acked.state, acked.ack_by, acked.ack_reason) == (
            "acknowledged",
            "admin",
            "registered by us",
        )
        assert store.events_due(0, now=10**9) and all(
            e.id != event.id for e in store.events_due(0, now=10**9)
        )
        assert store.event_counts() == {"open": 1, "acknowledged": 1}
        assert store.acknowledge_event(999, by="admin", reason="x") is None
    finally:
        store.close()


def test_nodes_sharing_a_store_make_one_event_of_one_fact(tmp_path: Path, store_url: str) -> None:
    """Two nodes (two stores on one database) observe the same facts at once, many times: one event per fact,
    every sighting counted, each fact new to exactly one node (so alerted once)."""
    import threading

    nodes = [open_store(StoreConfig(data_dir=str(tmp_path), url=store_url, node=f"n{i}")) for i in (1, 2)]
    facts = [Observation("lookalike-accepts-mail", f"l{i}.example", "critical", fact="mx") for i in range(20)]
    new: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def observe(i: int) -> None:
        start.wait()
        for _ in range(5):
            new[i] += [e.id for e in nodes[i].observe_events(facts)]

    threads = [threading.Thread(target=observe, args=(i,)) for i in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stored = nodes[0].events(limit=1000)
        assert len(stored) == 20 and {e.count for e in stored} == {10}
        assert sorted(new[0] + new[1]) == sorted(e.id for e in stored)  # each new once, on one node
    finally:
        for node in nodes:
            node.close()
