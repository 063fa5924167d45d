"""The sink's count tables on SQLite and on a real PostgreSQL: upsert, merge after failure, retention.

PostgreSQL: a throwaway cluster (tests/store/pgcluster.py, reused). Skips without the binaries, except
under CI=true, where it must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import PgCluster, pg_bin_dir  # tests/store/pgcluster.py, on the path via conftest.py
from sqlalchemy import create_engine

from typoguard.errors import StoreError
from typoguard.sink.counts import OTHER, CountStore, Tally, sender_domain

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    if pg_bin_dir() is None:
        reason = "PostgreSQL server binaries not found (run scripts/install-postgres.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true these tests must run")
        pytest.skip(reason)
    cluster = PgCluster().init()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sink.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database()
    from typoguard.store.db import make_engine

    s = CountStore(make_engine(url))
    s.create()
    s.create()  # idempotent
    yield s
    s.close()


def test_flushes_add_up(store: CountStore) -> None:
    for offset in (0.0, 10.0):
        tally = Tally()
        tally.add(T0 + offset, "army.ml", "army.mil", "gmail.com", "h1")
        tally.add(T0 + offset + 1, "army.ml", "army.mil", "gmail.com", "h1")
        tally.add(T0 + DAY, "gmial.com", "gmail.com", "<>", None)
        assert store.flush(tally) == 3
    rows = {(r.day, r.lookalike): r for r in store.rows()}
    army = rows[("2026-09-21", "army.ml")]
    assert (army.count, army.first_seen, army.last_seen) == (4, T0, T0 + 11.0)
    assert rows[("2026-09-22", "gmial.com")].count == 2
    assert store.sender_stats() == {"army.ml": (1, 1)}
    assert store.prune("2026-09-22") == 2  # one count row, one sender row
    assert [r.day for r in store.rows()] == ["2026-09-22"]


def test_a_failed_write_is_merged_back_and_floods_are_pooled() -> None:
    tally = Tally()
    tally.add(T0, "army.ml", "army.mil", "a.example", None)
    batch = tally.swap()
    tally.add(T0 + 5, "army.ml", "army.mil", "a.example", None)
    tally.merge(batch)
    assert tally.counts == {("2026-09-21", "army.ml", "army.mil", "a.example"): [2, T0, T0 + 5]}
    from typoguard.sink import counts

    old, counts.MAX_KEYS = counts.MAX_KEYS, 3
    try:
        flood = Tally()
        for i in range(10):
            flood.add(T0, "army.ml", "army.mil", f"d{i}.example", None)
        assert (
            len(flood.counts) == 3 + 1 and flood.counts[("2026-09-21", "army.ml", "army.mil", OTHER)][0] == 7
        )
    finally:
        counts.MAX_KEYS = old


def test_database_trouble_is_a_store_error(tmp_path: Path) -> None:
    s = CountStore(create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    with pytest.raises(StoreError):
        s.create()


def test_sender_domains_keep_no_local_part() -> None:
    assert sender_domain("Alice.Smith@Mail.Example.ORG") == "mail.example.org"
    assert sender_domain("<>") == "<>" and sender_domain("") == "<>"
    assert sender_domain("no-domain") == "(invalid)" and sender_domain("a@bad..example") == "(invalid)"
