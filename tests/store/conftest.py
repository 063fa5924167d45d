"""Store fixtures: a SQLite store per test, and a real PostgreSQL server for the multi-node tests.

PostgreSQL: one throwaway cluster per session (``scripts/install-postgres.sh`` installs the binaries). If
they are missing, the tests that need it skip with the reason, except under ``CI=true``, where they fail:
CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from typoguard.config import StoreConfig
from typoguard.store import Store, open_store

from .pgcluster import PgCluster, pg_bin_dir

IN_CI = os.environ.get("CI") == "true"


def store_config(tmp_path: Path, url: str = "", **kwargs: object) -> StoreConfig:
    return StoreConfig(
        url=url,
        data_dir=str(tmp_path / "data"),
        spool_dir=str(tmp_path / "spool"),
        node=str(kwargs.pop("node", "test-node")),
        flush_interval=0.02,
        retry_interval=0.2,
        refresh_interval=0.2,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(store_config(tmp_path))
    yield store
    store.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if pg_bin_dir() is None:
        reason = "PostgreSQL server binaries not found (run scripts/install-postgres.sh)"
        if IN_CI:
            pytest.fail(f"{reason}; under CI=true these tests must run")
        print(f"\nskipping PostgreSQL tests: {reason}")
        pytest.skip(reason)
    cluster = PgCluster().init()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh database in the session cluster."""
    return pg_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same test on SQLite and on PostgreSQL."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(store_config(tmp_path, url))
    yield store
    store.close()
