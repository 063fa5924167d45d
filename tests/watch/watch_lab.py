"""The config of the watch tests: a store in ``tmp_path`` (or PostgreSQL), the lab DNS server as resolver."""

from __future__ import annotations

from pathlib import Path


def lab_zones() -> dict[str, dict[str, list[str]]]:
    from lab_zones import ZONES

    return {name: dict(types) for name, types in ZONES.items()}


def write_config(tmp_path: Path, port: int, extra: str = "", *, store_url: str = "") -> Path:
    """``store_url``: ``[store] url`` (PostgreSQL); empty: SQLite in ``tmp_path/data``. DNS: 10 s a try and
    two retries: the lab server answers every name at once, but from a thread of the test's process, and a
    busy machine must not turn a look-alike "unknown" in the first round and "new" in the next."""
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(
        f"""
[protect]
domains = ["army.mil"]
[store]
data_dir = "{tmp_path / "data"}"
url = "{store_url}"
[watch]
resolver = ["127.0.0.1:{port}"]
timeout = 10
retries = 2
limit = 100
{extra}
"""
    )
    return cfg
