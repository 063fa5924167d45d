"""``make clients`` (scripts/build-clients.sh): the Thunderbird .xpi and the webmail extension's .zip in
build/clients/, each with the configuration's bundle packaged in, deterministic archives."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from typoguard.exposure.client_bundle import content_bytes, verify

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.search(r'^version = "(.*)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]


def archives(built: Path) -> dict[str, Path]:
    return {
        "thunderbird": built / f"typoguard-thunderbird-{VERSION}.xpi",
        "webmail": built / f"typoguard-webmail-{VERSION}.zip",
    }


def test_each_archive_holds_its_manifest_and_the_exported_bundle(built_clients: Path) -> None:
    exported = (built_clients / "bundle.json").read_text(encoding="utf-8")
    content = verify(exported)["content"]  # format, schema and sha256 checked as typoguard does
    assert [row[0] for row in content["protected"]] == ["army.mil"]
    sha = json.loads(exported)["sha256"]
    assert sha == hashlib.sha256(content_bytes(exported)).hexdigest()
    for client, path in archives(built_clients).items():
        assert path.exists(), f"make clients did not build {path.name}"
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read("manifest.json"))
            packaged = z.read("bundle.json").decode()
        assert manifest["version"] == VERSION, client
        assert json.loads(packaged)["sha256"] == sha, f"{client}: the packaged bundle is not the exported one"
        assert hashlib.sha256(content_bytes(packaged)).hexdigest() == sha, f"{client}: bundle damaged"


def test_the_xpi_is_the_add_on_with_the_detector_and_nothing_else(built_clients: Path) -> None:
    with zipfile.ZipFile(archives(built_clients)["thunderbird"]) as z:
        names = z.namelist()
        manifest = json.loads(z.read("manifest.json"))
        detector = {n: z.read(n) for n in names if n.startswith("detector/")}
    assert manifest["browser_specific_settings"]["gecko"]["id"] == "thunderbird-addon@typoguard"
    assert manifest["manifest_version"] == 2 and manifest["background"] == {"page": "background.html"}
    for page in ("background.html", "review.html", "options.html", manifest["storage"]["managed_schema"]):
        assert page in names
    shipped = {f"detector/{p.name}": p.read_bytes() for p in (ROOT / "clients" / "detector").glob("*.mjs")}
    del shipped["detector/cli.mjs"]
    assert detector == shipped
    assert not [n for n in names if n.endswith(".md") or n.startswith(".")], names


def test_archives_are_deterministic(built_clients: Path, tmp_path: Path) -> None:
    """Sorted entries, fixed time stamps and modes: zipping the same files again, with other modification
    times, gives the same bytes."""
    for client, path in archives(built_clients).items():
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=str.encode), client
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}, client
        assert {i.external_attr >> 16 for i in infos} == {0o100644}, client
        staged = built_clients / client
        for i, f in enumerate(sorted(staged.rglob("*"))):
            os.utime(f, (1_700_000_000 + i, 1_700_000_000 + i))
        again = tmp_path / path.name
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "zip-deterministic.py"), str(staged), str(again)],
            check=True,
        )
        assert again.read_bytes() == path.read_bytes(), client


def test_make_clients_passes_config_to_the_build_script() -> None:
    dry = subprocess.run(
        ["make", "-n", "clients", "CONFIG=site.toml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "CONFIG=site.toml ADDON_VERSION= bash scripts/build-clients.sh" in dry
    default = subprocess.run(
        ["make", "-n", "clients"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "CONFIG=examples/typoguard.toml ADDON_VERSION= bash scripts/build-clients.sh" in default
