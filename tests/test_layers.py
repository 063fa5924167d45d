"""The layout's import rules (DESIGN.md "Layers"), checked by import-linter, the tool ``make lint`` runs.

The contracts live in pyproject.toml (``[tool.importlinter]``): ``layers`` (cli at the top, core and errors at
the bottom, imports only downwards, sibling roles independent) and ``core-pure`` (core imports no I/O, clock,
process, database or framework module). A checker that cannot fail is no check: the second test breaks a
copy of the package in each way and expects the tool to say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import typoguard

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(typoguard.__file__).resolve().parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=ROOT,
    )


def test_the_import_contracts_are_kept() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "core/keyboard.py",
            "import typoguard.store.db",
            "typoguard.core is not allowed to import typoguard.store",
        ),
        ("core/keyboard.py", "import socket", "typoguard.core.keyboard -> socket"),
        (
            "store/db.py",
            "from typoguard.web import auth",
            "typoguard.store is not allowed to import typoguard.web",
        ),
        (
            "sink/limits.py",
            "import typoguard.relay.auth",
            "typoguard.sink is not allowed to import typoguard.relay",
        ),
    ],
)
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    copy = tmp_path / "typoguard"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    with (copy / module).open("a") as f:
        f.write(f"\n{line}  # injected by the test\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
