"""``typoguard config show``: the effective configuration as TOML that reads back to the same values, each
line naming where its value came from (``# default``, ``# file:LINE``, ``# env TYPOGUARD_...``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from typoguard.cli import main
from typoguard.config import SECTIONS, load_config
from typoguard.config_text import toml_string

CONFIG = """\
[protect]
domains = [
  "army.mil", "navy.mil",
]
weights = { "army.mil" = 0.5 }
layouts = ["qwerty"]

[policy]
reject_at = 1
help_text = "Questions: \\"help\\" desk \\\\ 555"

[policyd]
listen = "127.0.0.1:10040, unix:/run/typoguard.sock"
reject_template = "Nein: {domain} ist nicht {intended}. Ünïcödé\\tand a tab"

[relay]
content_scan = false

[sink]
lookalikes_of = ["army.mil"]
"""

ENV = {"TYPOGUARD_POLICY__MODE": '"audit"', "TYPOGUARD_STORE__BATCH_SIZE": "50"}


@pytest.fixture(autouse=True)
def _no_typoguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TYPOGUARD_"):
            monkeypatch.delenv(name)


def _plain(value: Any) -> Any:
    """A config value as tomllib reads it back (tuples are lists)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _show(path: Path | None, env: dict[str, str]) -> str:
    args = ["config", "show"] + (["--config", str(path)] if path else [])
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_output_reads_back_as_the_effective_values(tmp_path: Path) -> None:
    path = tmp_path / "typoguard.toml"
    path.write_text(CONFIG, "utf-8")
    output = _show(path, ENV)
    effective = load_config(path, environ=ENV)
    expected = {
        section: {k: _plain(v) for k, v in asdict(getattr(effective, section)).items() if v is not None}
        for section in SECTIONS
    }
    assert tomllib.loads(output) == expected
    assert expected["policy"]["mode"] == "audit" and expected["protect"]["weights"] == {"army.mil": 0.5}


def test_each_value_names_its_source(tmp_path: Path) -> None:
    path = tmp_path / "typoguard.toml"
    path.write_text(CONFIG, "utf-8")
    lines: dict[str, str] = {}  # "section.key" -> its line
    section = ""
    for line in _show(path, ENV).splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line:
            lines[f"{section}.{line.split(' = ', 1)[0].lstrip('# ')}"] = line
    file_lines = CONFIG.splitlines()

    def line_of(start: str) -> int:
        return 1 + next(n for n, text in enumerate(file_lines) if text.startswith(start))

    assert lines["protect.domains"].endswith(
        f"  # file:{line_of('domains = [')}"
    )  # a multi-line value: its first line
    assert lines["policy.reject_at"].endswith(f"  # file:{line_of('reject_at')}")
    assert lines["relay.content_scan"] == f"content_scan = false  # file:{line_of('content_scan')}"
    assert lines["policy.mode"] == 'mode = "audit"  # env TYPOGUARD_POLICY__MODE'
    assert lines["store.batch_size"] == "batch_size = 50  # env TYPOGUARD_STORE__BATCH_SIZE"
    assert lines["policy.hold_at"] == "hold_at = 0.7  # default"
    assert lines["protect.models"] == "# models = (not set)  # default"  # TOML has no "none": a comment


def test_without_a_file_it_shows_the_defaults_and_environment() -> None:
    output = _show(None, ENV)
    assert "# config file: no file" in output
    assert 'mode = "audit"  # env TYPOGUARD_POLICY__MODE' in output
    assert tomllib.loads(output)["store"]["data_dir"] == "/var/lib/typoguard"


def test_a_config_that_does_not_load_is_refused_without_a_usage_banner(tmp_path: Path) -> None:
    path = tmp_path / "typoguard.toml"
    path.write_text("[policy]\nmode = 'block'\n", "utf-8")
    result = CliRunner().invoke(main, ["config", "show", "--config", str(path)])
    assert result.exit_code == 2
    assert "[policy] mode must be" in result.output and "config check" in result.output
    assert "Usage:" not in result.output


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_any_string_round_trips_through_toml(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text
