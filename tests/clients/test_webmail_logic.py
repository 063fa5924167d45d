"""The webmail extension's pure logic under Node's own test runner (clients/webmail/test/logic.test.mjs):
recipient lists as people type them ("Name <a@b>, c@d"), rewriting one address, and the check of the extra
protected domains set on the options page; build.mjs; and the background's bundle loading."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from typoguard.exposure import client_bundle

ROOT = Path(__file__).resolve().parents[2]
WEBMAIL = ROOT / "clients" / "webmail"


def test_pure_logic_under_node_test(node: str) -> None:
    proc = subprocess.run(
        [node, "--test", str(WEBMAIL / "test" / "logic.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# fail 0" in proc.stdout


def _build(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(WEBMAIL / "build.mjs"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_build_assembles_a_loadable_extension(node: str, export_bundle: Any, tmp_path: Path) -> None:
    bundle = export_bundle(["--protect", "army.mil"])
    out = tmp_path / "ext"
    proc = _build(node, "--bundle", str(bundle), "--out", str(out), "--match", "https://mail.example.org/*")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    matches = manifest["content_scripts"][0]["matches"]
    assert "https://mail.example.org/*" in matches
    assert not any("127.0.0.1" in m for m in matches)  # only the test build runs on loopback
    assert manifest["host_permissions"] == []
    assert (out / "bundle.json").read_bytes() == bundle.read_bytes()
    for name in (
        "detector/detector.mjs",
        "background.mjs",
        "content.js",
        "options.html",
        "managed_schema.json",
    ):
        assert (out / name).is_file(), name
    assert not (out / "detector" / "cli.mjs").exists()

    # A damaged bundle, a bad pattern and a directory that is not an extension are refused, exit 2.
    damaged = tmp_path / "damaged.json"
    damaged.write_text(bundle.read_text().replace("army.mil", "army.mi1", 1))
    bad = _build(node, "--bundle", str(damaged), "--out", str(out))
    assert bad.returncode == 2 and "sha256" in bad.stderr
    bad = _build(node, "--bundle", str(bundle), "--match", "mail.example.org")
    assert bad.returncode == 2 and "match pattern" in bad.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    bad = _build(node, "--bundle", str(bundle), "--out", str(other))
    assert bad.returncode == 2 and (other / "keep.txt").exists()


def _in_audit_mode(text: str) -> str:
    """The bundle as ``[policy] mode = "audit"`` exports it (only the mode differs), re-hashed as the
    exporter hashes it; much faster than a second export."""
    envelope = client_bundle.verify(text)
    envelope["content"]["policy"]["mode"] = "audit"
    body = client_bundle.canonical(envelope["content"])
    head = text[: text.index('"sha256":')]
    out = f'{head}"sha256":"{hashlib.sha256(body).hexdigest()}","content":{body.decode()}}}\n'
    client_bundle.verify(out)
    return out


def test_background_loads_the_packaged_or_managed_bundle(
    node: str, export_bundle: Any, tmp_path: Path
) -> None:
    """background.mjs under Node with the browser's storage API stubbed (managed storage is set only by
    policy files): packaged bundle, bundleUrl fetched from loopback and kept, failed refresh, pinned sha256,
    allowExtraDomains, audit mode, foreign messages (clients/webmail/test/background.test.mjs)."""
    bundle = export_bundle(["--protect", "army.mil"])
    audit = tmp_path / "audit.json"
    audit.write_text(_in_audit_mode(bundle.read_text()), "utf-8")
    out = tmp_path / "ext"
    assert _build(node, "--bundle", str(bundle), "--out", str(out)).returncode == 0
    proc = subprocess.run(
        [node, "--test", str(WEBMAIL / "test" / "background.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TG_WEBMAIL_BUILD": str(out), "TG_WEBMAIL_AUDIT_BUNDLE": str(audit)},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# fail 0" in proc.stdout and "# skipped 0" in proc.stdout


def test_manifest_asks_for_little_and_code_builds_no_html_from_text(node: str) -> None:
    """What docs/clients.md promises: storage only, no host permissions, no web-accessible resources,
    content scripts on the mail sites over HTTPS; no eval, no HTML parsed from strings; every script parses
    (content scripts as classic scripts)."""
    manifest = json.loads((WEBMAIL / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    assert manifest["permissions"] == ["storage"]
    assert manifest["host_permissions"] == []
    assert "web_accessible_resources" not in manifest
    assert "content_security_policy" not in manifest  # the strict MV3 default
    assert manifest["background"]["service_worker"] in manifest["background"]["scripts"]
    gecko = manifest["browser_specific_settings"]["gecko"]
    assert gecko["id"] and gecko["strict_min_version"]
    assert gecko["data_collection_permissions"] == {"required": ["none"]}  # Firefox: collects nothing
    for cs in manifest["content_scripts"]:
        assert all(m.startswith("https://") for m in cs["matches"]), cs["matches"]
    sources = [*WEBMAIL.glob("*.js"), *WEBMAIL.glob("*.mjs"), *WEBMAIL.glob("*.html")]
    for path in sources:
        text = path.read_text()
        for banned in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert banned not in text, f"{path.name}: {banned}"
    for path in WEBMAIL.glob("*.js"):
        proc = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
