"""Shared fixtures for the client tests: Node (skipped with a reason when missing, except under CI=true), the
JavaScript detector's directory, and bundles exported through the installed ``typoguard`` as a user does."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_build import build_clients

ROOT = Path(__file__).resolve().parents[2]
DETECTOR_DIR = ROOT / "clients" / "detector"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def typoguard_server(
    typoguard_exe: str, child_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A real ``typoguard http`` on loopback protecting army.mil AND navy.mil (``built_clients``' bundle
    protects army.mil only, so a navy.ml verdict shows who decided): the add-on's managed settings for it,
    ``{"serverUrl", "token"}`` with a ``check`` token."""
    tmp = tmp_path_factory.mktemp("tb-server")
    config = tmp / "typoguard.toml"
    config.write_text(
        f'[protect]\ndomains = ["army.mil", "navy.mil"]\n[store]\ndata_dir = "{tmp / "data"}"\n'
    )
    token = subprocess.run(
        [
            typoguard_exe,
            "token",
            "create",
            "--config",
            str(config),
            "--scope",
            "check",
            "--name",
            "thunderbird",
        ],
        capture_output=True,
        text=True,
        env=child_env,
        check=True,
    ).stdout.strip()
    url = f"http://127.0.0.1:{free_port()}"
    log = (tmp / "http.log").open("wb")
    proc = subprocess.Popen(
        [typoguard_exe, "http", "--config", str(config), "--listen", url.removeprefix("http://")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"typoguard http exited {proc.returncode}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "typoguard http did not answer within 30 s"
            time.sleep(0.05)
        yield {"serverUrl": url, "token": token}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def extension(node: str, export_bundle: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """clients/webmail's test build (``build.mjs --test``: also runs on http://127.0.0.1:*/) packaging a
    bundle that protects army.mil, built once per session; (its directory, the bundle's sha256)."""
    bundle = export_bundle(["--protect", "army.mil"])
    out = tmp_path_factory.mktemp("webmail") / "ext"
    proc = subprocess.run(
        [node, str(ROOT / "clients/webmail/build.mjs"), "--test", "--bundle", str(bundle), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    return out, json.loads(bundle.read_text())["sha256"]
