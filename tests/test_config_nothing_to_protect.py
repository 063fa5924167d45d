""" "nothing to protect" says which sources were read (issue 17 §2), keeping the text scripts grep for.

Each command is the installed console script in a real process, as an admin or a unit runs it; each stops
before listening, so no port is taken.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}


def _run(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *args], capture_output=True, check=False, text=True, timeout=60, env=_env())


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    config = tmp_path / "typoguard.toml"
    config.write_text(
        f'[protect]\ndomains = []\n\n[store]\ndata_dir = "{tmp_path / "state"}"\n\n'
        '[policyd]\nlisten = "127.0.0.1:0"\n\n[relay]\nlisten = "127.0.0.1:0"\n\n'
        '[sink]\nlisten = ["127.0.0.1:0"]\n',
        "utf-8",
    )
    return config


@pytest.mark.parametrize("command", [["serve"], ["relay"], ["milter"]])
def test_a_service_names_the_file_that_protects_nothing(
    typoguard_exe: str, empty_config: Path, command: list[str]
) -> None:
    result = _run(typoguard_exe, *command, "--config", str(empty_config))
    assert result.returncode == 2
    # the text scripts and docs grep for is still there, and the detail follows it
    assert "nothing to protect: add [protect] domains or files to the config" in result.stderr
    assert f"{empty_config} has [protect] domains = [] and no files" in result.stderr


def test_a_file_of_domains_without_any_is_named(typoguard_exe: str, tmp_path: Path) -> None:
    listing = tmp_path / "domains.txt"
    listing.write_text("# nothing yet\n", "utf-8")
    config = tmp_path / "typoguard.toml"
    config.write_text(
        '[protect]\nfiles = ["domains.txt"]\n[store]\nenabled = false\n[policyd]\nlisten = "127.0.0.1:0"\n'
    )
    result = _run(typoguard_exe, "serve", "--config", str(config))
    assert result.returncode == 2
    assert f"files {listing} with no domain in them" in result.stderr


def test_check_names_what_it_read(typoguard_exe: str, empty_config: Path) -> None:
    with_file = _run(typoguard_exe, "check", "--config", str(empty_config), "bob@army.ml")
    assert with_file.returncode == 2
    assert (
        "nothing to protect: give --config FILE, --protect DOMAIN or --protect-file FILE" in with_file.stderr
    )
    assert f"{empty_config} has [protect] domains = [] and no files" in with_file.stderr
    without = _run(typoguard_exe, "check", "bob@army.ml")
    assert without.returncode == 2 and "no config file was read" in without.stderr


def test_the_sink_names_what_it_would_answer_for(typoguard_exe: str, empty_config: Path) -> None:
    result = _run(typoguard_exe, "sink", "--config", str(empty_config))
    assert result.returncode == 2
    assert "[sink] answers for nothing" in result.stderr
    assert f"{empty_config} has [protect] domains = [] and no files, and no [sink] domains" in result.stderr
