"""Several nodes sharing one real PostgreSQL: one history, one set of overrides; database down and up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from sqlalchemy import text

from typoguard.store import DecisionEvent, DecisionWriter, OverrideCache, Store, open_store

from .conftest import store_config
from .pgcluster import PgCluster

_NODE = textwrap.dedent(
    """
    import sys, time
    from typoguard.config import StoreConfig
    from typoguard.store import DecisionEvent, DecisionWriter, open_store
    url, node, spool, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = open_store(StoreConfig(url=url, node=node, spool_dir=spool, flush_interval=0.01))
    writer = DecisionWriter(store, batch_size=200)
    for i in range(n):
        writer.submit(DecisionEvent(time.time(), f"u{i}@shared.org", "allow", "shared.org",
                                    sender=f"a@{node}.army.mil", node=node))
    writer.close()
    assert writer.written + writer.replayed == n and writer.backlog == 0, vars(writer)
    store.close()
    """
)


def test_two_node_processes_share_one_history(pg_url: str, tmp_path: Path) -> None:
    n = 3000
    procs = [
        subprocess.Popen([sys.executable, "-c", _NODE, pg_url, node, str(tmp_path / node), str(n)])
        for node in ("node-a", "node-b")
    ]
    assert [p.wait(60) for p in procs] == [0, 0]
    store = open_store(store_config(tmp_path, pg_url, node="reader"))
    with store.engine.connect() as conn:
        per_node = dict(conn.execute(text("SELECT node, count(*) FROM tg_decisions GROUP BY node")).all())
    assert per_node == {"node-a": n, "node-b": n}
    info = store.correspondent("shared.org")
    assert info is not None and info.count == 2 * n
    assert store.is_known("node-a.army.mil", "shared.org") and store.is_known("node-b.army.mil", "shared.org")
    store.close()


def test_an_override_on_one_node_takes_effect_on_the_other_within_seconds(
    pg_url: str, tmp_path: Path
) -> None:
    a = open_store(store_config(tmp_path / "a", pg_url, node="a"))
    b = open_store(store_config(tmp_path / "b", pg_url, node="b"))
    cache_b = OverrideCache(b, interval=0.2)
    assert cache_b.lookup("partner.org") is None
    a.add_override("partner.org", "block", reason="phishing wave", by="alice")
    deadline = time.monotonic() + 5
    while cache_b.lookup("mail.partner.org") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    found = cache_b.lookup("mail.partner.org")
    assert found is not None and found.action == "block" and found.node == "a"
    a.remove_override(domain="partner.org", by="alice", reason="over")
    deadline = time.monotonic() + 5
    while cache_b.lookup("partner.org") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache_b.lookup("partner.org") is None
    cache_b.close()
    a.close()
    b.close()


def test_concurrent_overrides_from_two_nodes_agree(pg_url: str, tmp_path: Path) -> None:
    nodes = [open_store(store_config(tmp_path / n, pg_url, node=n)) for n in ("a", "b")]
    domains = [f"d{i}.org" for i in range(5)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(store: Store) -> None:
        try:
            start.wait()
            for round_ in range(10):
                for d in domains:
                    action = "allow" if round_ % 2 else "block"
                    store.add_override(d, action, reason=f"{store.node} round {round_}", by=store.node)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    views = [s.active_overrides() for s in nodes]
    assert views[0] == views[1] and set(views[0]) == set(domains)
    trail = nodes[0].overrides(include_inactive=True)
    assert len(trail) == 2 * 10 * len(domains)  # nothing lost: every change is in the audit trail
    for d in domains:
        rows = [o for o in trail if o.domain == d]
        assert views[0][d].id == max(o.id for o in rows)  # the newest wins everywhere
    for s in nodes:
        s.close()


def test_postgres_down_then_up_replays_spool_exactly_once(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path
) -> None:
    store = open_store(store_config(tmp_path, pg_url))
    writer = DecisionWriter(store, batch_size=100, retry_interval=0.2)

    def submit(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            writer.submit(DecisionEvent(time.time(), f"u{i}@p.org", "allow", "p.org", sender="a@army.mil"))

    submit(0, 500)
    assert writer.flush(10) and writer.written == 500
    pg_cluster.stop()
    try:
        submit(500, 1500)  # mail goes on while the database is down
        assert writer.flush(20)
        assert writer.backlog == 1000 and writer.spooled == 1000 and not writer.db_ok
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 20
    while writer.backlog and time.monotonic() < deadline:
        time.sleep(0.05)
    submit(1500, 1600)
    writer.close()
    assert writer.backlog == 0 and writer.dropped == 0
    assert writer.written + writer.replayed == 1600
    with store.engine.connect() as conn:
        n, distinct = conn.execute(text("SELECT count(*), count(DISTINCT event_id) FROM tg_decisions")).one()
    assert n == distinct == 1600
    assert store.pair_count("army.mil", "p.org") == 1600
    store.close()
