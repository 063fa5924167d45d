"""Fixtures of the exposure tests: the lab DNS server (zones in ``lab_zones.py``) and a dead one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dns_server import LocalDnsServer
from lab_zones import FAILING, ZONES


@pytest.fixture(scope="session")
def dns_lab() -> Iterator[LocalDnsServer]:
    with LocalDnsServer(ZONES, servfail=FAILING) as server:
        yield server


@pytest.fixture(scope="session")
def dead_dns() -> Iterator[LocalDnsServer]:
    """A server that never answers anything."""
    with LocalDnsServer({}, silent_all=True) as server:
        yield server
