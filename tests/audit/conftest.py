"""Fixtures of the audit tests: the fixture directory, and running ``typoguard audit`` in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from typoguard.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
PROTECT = ("--protect", "army.mil", "--protect", "navy.mil", "--protect", "gmail.com")


# Syslog lines carry no year; the audit takes it from the file's modification time. The fixtures are copied
# with this one, so the expected years and weeks do not depend on when the repository was checked out.
FIXTURE_MTIME = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A copy of tests/audit/fixtures dated 2026-11-30."""
    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy)
    for path in [copy, *copy.rglob("*")]:
        os.utime(path, (FIXTURE_MTIME, FIXTURE_MTIME))
    return copy


@pytest.fixture
def run_audit() -> Callable[..., Result]:
    """``run_audit(*args)``: the CLI in-process with the protected domains army.mil, navy.mil, gmail.com."""

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(main, ["audit", *PROTECT, *map(str, args)], catch_exceptions=False)

    return run


@pytest.fixture
def audit_json(run_audit: Callable[..., Result]) -> Callable[..., dict[str, Any]]:
    """``audit_json(*inputs)``: the --json document of an audit (exit status 0 or 1 checked)."""

    def run(*args: str | Path) -> dict[str, Any]:
        result = run_audit("--json", "--no-progress", *args)
        assert result.exit_code in (0, 1), result.output
        doc: dict[str, Any] = orjson.loads(result.stdout)
        return doc

    return run
