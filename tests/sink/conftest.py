"""Fixtures of the sink tests: ``start_sink(**keys)`` and ``sink``, real servers on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from typoguard.config import load_config

HERE = Path(__file__).resolve().parent
# Helpers here, the audit tests' private Postfix instance (tests/audit/audit_postfix_lab.py) and the
# store tests' throwaway PostgreSQL cluster (tests/store/pgcluster.py) are reused, not copied.
for _dir in (HERE, HERE.parent / "audit", HERE.parent / "store"):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

from running_sink import RunningSink, write_config  # noqa: E402 - needs the path above


@pytest.fixture
def start_sink(tmp_path: Path) -> Iterator[Callable[..., RunningSink]]:
    """``start_sink(**sink_keys)``: a running sink with ``[sink]`` keys overridden."""
    running: list[RunningSink] = []

    def start(**sink: Any) -> RunningSink:
        root = tmp_path / f"sink{len(running)}"
        root.mkdir()
        path = write_config(root, **sink)
        s = RunningSink(load_config(path), path)
        running.append(s)
        return s

    yield start
    for s in running:
        s.stop()


@pytest.fixture
def sink(start_sink: Callable[..., RunningSink]) -> RunningSink:
    return start_sink()
