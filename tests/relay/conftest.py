"""Fixtures of the relay tests: a next hop (aiosmtpd sink) and ``start_relay(**relay_keys)`` on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# The audit tests' private Postfix instance (tests/audit/audit_postfix_lab.py) and the HTTP tests' uvicorn
# runner (tests/web/http_fixtures.py) are reused, not copied.
for _dir in (HERE, HERE.parent / "audit", HERE.parent / "web"):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

from relay_lab import NextHopSink, RunningRelay, write_config  # noqa: E402 - needs the path above

from typoguard.sink.server import quiet_aiosmtpd  # noqa: E402

quiet_aiosmtpd()


@pytest.fixture
def next_hop() -> Iterator[NextHopSink]:
    sink = NextHopSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def start_relay(tmp_path: Path, next_hop: NextHopSink) -> Iterator[Callable[..., RunningRelay]]:
    """``start_relay(next_hop_port=None, policy="", store=False, **relay_keys)``: a running relay."""
    running: list[RunningRelay] = []

    def start(
        next_hop_port: int | None = None, policy: str = "", store: bool = False, **relay: Any
    ) -> RunningRelay:
        root = tmp_path / f"relay{len(running)}"
        root.mkdir()
        path = write_config(root, next_hop_port or next_hop.port, relay=relay, policy=policy, store=store)
        r = RunningRelay(path)
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop()


@pytest.fixture
def relay(start_relay: Callable[..., RunningRelay]) -> RunningRelay:
    return start_relay()
