"""Shared fixtures for the client tests: Node (skipped with a reason when missing, except under CI=true), the
JavaScript detector's directory, and bundles exported through the installed ``typoguard`` as a user does."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from client_build import build_clients

DETECTOR_DIR = Path(__file__).resolve().parents[2] / "clients" / "detector"
MIN_NODE_MAJOR = 18  # Debian 12 ships 18.13


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    """The environment for child processes, without TYPOGUARD_* (a stray variable must not change what the
    tests see)."""
    return _clean_env()


@pytest.fixture(scope="session")
def detector_cli() -> Path:
    """clients/detector/cli.mjs."""
    return DETECTOR_DIR / "cli.mjs"


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable (Node 18+). Missing: the test is skipped, saying so; under CI=true it fails."""
    found = shutil.which("node") or shutil.which("nodejs")
    problem = None
    if found is None:
        problem = "node is not installed (Debian: apt-get install nodejs; scripts/install-system-deps.sh)"
    else:
        version = subprocess.run([found, "--version"], capture_output=True, text=True, check=False).stdout
        major = int(version.strip().lstrip("v").split(".")[0] or 0)
        if major < MIN_NODE_MAJOR:
            problem = f"node {version.strip()} is older than {MIN_NODE_MAJOR}: the detector needs Node 18+"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; under CI=true the JavaScript detector must be tested")
        pytest.skip(problem)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def export_bundle(
    typoguard_exe: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Sequence[str]], Path]:
    """``export_bundle(args)``: run ``typoguard export --format client-bundle ARGS -o FILE``; the file."""
    made: dict[tuple[str, ...], Path] = {}

    def export(args: Sequence[str]) -> Path:
        key = tuple(args)
        if key not in made:
            out = tmp_path_factory.mktemp("bundle") / "bundle.json"
            proc = subprocess.run(
                [typoguard_exe, "export", "--format", "client-bundle", *args, "-o", str(out)],
                capture_output=True,
                env=_clean_env(),
                timeout=120,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr.decode(errors="replace")
            made[key] = out
        return made[key]

    return export


@pytest.fixture(scope="session")
def built_clients(typoguard_exe: str, node: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/clients/ as ``make clients CONFIG=...`` writes it, for a config protecting army.mil: the
    bundle, each client's loadable directory and its archive (built once per session)."""
    base = tmp_path_factory.mktemp("clients")
    config = base / "typoguard.toml"
    config.write_text('[protect]\ndomains = ["army.mil"]\n')
    done = build_clients(typoguard_exe, config, base / "build" / "clients")
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
    return base / "build" / "clients"
