"""``web-ext lint`` (Mozilla's addons-linter) on every client under clients/ that has a manifest.json, as
checked in and as ``make clients`` packages it. web-ext comes from scripts/install-web-ext.sh (locked
versions); without it these tests skip saying so, except under CI=true, where they fail."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_EXT = ROOT / "build" / "tools" / "web-ext" / "node_modules" / ".bin" / "web-ext"
CLIENT_DIRS = sorted(p.parent for p in (ROOT / "clients").glob("*/manifest.json"))

# What addons-linter (which knows Firefox's APIs) says about a Thunderbird add-on that is right for
# Thunderbird: its mail permissions are unknown to Firefox. Anything else it warns about is a finding.
THUNDERBIRD_PERMISSIONS = {"compose", "addressBooksRead"}


@pytest.fixture(scope="session")
def web_ext() -> Path:
    if not WEB_EXT.exists():
        reason = f"web-ext is not installed in {WEB_EXT.parents[2]} (run scripts/install-web-ext.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the add-ons must be linted")
        print(f"\nskipping web-ext lint: {reason}")
        pytest.skip(reason)
    return WEB_EXT


def lint(web_ext: Path, source: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(web_ext), "lint", "--source-dir", str(source), "--output", "json", "--no-config-discovery"],
        capture_output=True,
        timeout=120,
        check=False,
        cwd=source,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"web-ext lint {source}: exit {done.returncode}\n{done.stdout.decode()}\n{done.stderr.decode()}"
        )
    for kind in ("errors", "warnings", "notices"):
        for item in report[kind]:
            print(f"{source.name}: {kind[:-1]} {item['code']}: {item['message']} ({item.get('file')})")
    assert report["errors"] == [], f"web-ext lint found errors in {source}"
    assert done.returncode == 0, done.stderr.decode()
    return report


def thunderbird_only(report: dict[str, Any]) -> list[str]:
    """The warnings that are not about Thunderbird's own permissions."""
    left = []
    for w in report["warnings"]:
        if w["code"] == "MANIFEST_PERMISSIONS" and any(
            f'"{p}"' in w["message"] for p in THUNDERBIRD_PERMISSIONS
        ):
            continue
        left.append(f"{w['code']}: {w['message']}")
    return left


def test_every_client_directory_is_found() -> None:
    assert ROOT / "clients" / "thunderbird" in CLIENT_DIRS


@pytest.mark.parametrize("source", CLIENT_DIRS, ids=[p.name for p in CLIENT_DIRS])
def test_web_ext_lint_passes_on_the_checked_in_client(web_ext: Path, source: Path) -> None:
    report = lint(web_ext, source)
    if source.name == "thunderbird":
        assert thunderbird_only(report) == []


def test_web_ext_lint_passes_on_the_packaged_clients(web_ext: Path, built_clients: Path) -> None:
    """What ``make clients`` packages (the detector's modules and the bundle included) lints too."""
    built = sorted(p.parent for p in built_clients.glob("*/manifest.json"))
    expected = {p.name for p in CLIENT_DIRS}
    assert {p.name for p in built} == expected, "make clients must build every client under clients/"
    for source in built:
        report = lint(web_ext, source)
        if source.name == "thunderbird":
            assert thunderbird_only(report) == []
