"""Fixtures of the watch tests: the exposure lab's DNS server (``tests/exposure/dns_server.py``) with zones
that every test may change, a config file whose store lives in ``tmp_path``, and ``store_url``: the store
on SQLite and on a real PostgreSQL (a throwaway cluster per session, ``tests/store/pgcluster.py``; without
the server binaries those cases skip with the reason, except under ``CI=true``, where they fail)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "exposure"))
sys.path.insert(0, str(Path(__file__).parent.parent))

from dns_server import LocalDnsServer
from lab_zones import ZONES

from store.pgcluster import PgCluster, pg_bin_dir


def lab_zones() -> dict[str, dict[str, list[str]]]:
    """The exposure lab's zones (army.mil and its look-alikes), every name answered."""
    return {name: dict(types) for name, types in ZONES.items()}


@pytest.fixture
def dns_server() -> Iterator[LocalDnsServer]:
    """A lab server of its own per test: the test edits ``dns_server.answers.records`` between rounds."""
    with LocalDnsServer(lab_zones()) as server:
        yield server


@pytest.fixture(scope="session")
def watch_pg_cluster() -> Iterator[PgCluster]:
    if pg_bin_dir() is None:
        reason = "PostgreSQL server binaries not found (run scripts/install-postgres.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true these tests must run")
        print(f"\nskipping PostgreSQL watch tests: {reason}")
        pytest.skip(reason)
    cluster = PgCluster().init()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """``[store] url``: empty (SQLite in the test's data_dir) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    cluster: PgCluster = request.getfixturevalue("watch_pg_cluster")
    return cluster.create_database()
