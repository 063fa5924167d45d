"""``exposure --watch`` keeps its history in the store now, and imports the JSON file it kept before."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from click.testing import CliRunner
from dns_server import LocalDnsServer

from typoguard.cli import main
from typoguard.config import load_config
from typoguard.store import open_store


def _exposure(cfg: Path, port: int, *extra: str) -> tuple[int, str]:
    args = ["exposure", "--config", str(cfg), "--limit", "100", "--timeout", "10", "--retries", "0"]
    args += ["--no-progress", "--resolver", f"127.0.0.1:{port}", "--watch", *extra]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    gc.collect()  # a database connection the command left open warns now (ResourceWarning), in this test
    return result.exit_code, result.stdout


def _config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "typoguard.toml"
    store = f'data_dir = "{tmp_path / "data"}"\nurl = "{url}"\n'
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\n{store}')
    return cfg


def test_the_old_json_history_is_imported_once_then_the_store_is_used(
    dns_server: LocalDnsServer, tmp_path: Path, store_url: str
) -> None:
    cfg = _config(tmp_path, store_url)
    legacy = tmp_path / "data" / "exposure-history.json"
    code, _ = _exposure(cfg, dns_server.port, "--history", str(legacy))  # as earlier versions kept it
    assert code == 1 and legacy.exists()  # first run: everything accepting mail is new

    code, out = _exposure(cfg, dns_server.port)  # the store is empty: the JSON file's run is the last
    assert code == 0 and "no change since the last run" in out
    legacy.unlink()
    dns_server.answers.records["amry.mil"] = {"NS": ["ns1.parking.example."], "MX": ["10 mx.new.example."]}
    code, out = _exposure(cfg, dns_server.port, "--json")
    assert code == 1
    assert [(c["lookalike"], c["before"], c["after"]) for c in json.loads(out)["changes"]] == [
        ("amry.mil", "unregistered", "accepts-mail")
    ]
    store = open_store(load_config(cfg))
    try:
        assert len(store.exposure_runs(limit=50)) == 3  # the imported run and the two since
    finally:
        store.close()
