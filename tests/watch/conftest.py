"""Fixtures of the watch tests: the exposure lab's DNS server (``tests/exposure/dns_server.py``) with zones
that every test may change, a config file whose store lives in ``tmp_path``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "exposure"))

from dns_server import LocalDnsServer
from lab_zones import ZONES


def lab_zones() -> dict[str, dict[str, list[str]]]:
    """The exposure lab's zones (army.mil and its look-alikes), every name answered."""
    return {name: dict(types) for name, types in ZONES.items()}


@pytest.fixture
def dns_server() -> Iterator[LocalDnsServer]:
    """A lab server of its own per test: the test edits ``dns_server.answers.records`` between rounds."""
    with LocalDnsServer(lab_zones()) as server:
        yield server
