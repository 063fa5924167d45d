"""``typoguard serve``: the process an operator runs - banner, signals, exit codes (no Postfix needed)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from typoguard.policyd.query import query, rcpt_request

CONFIG = """
[protect]
domains = [{domains}]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:0"
[log]
file = "{log}"
[store]
data_dir = "{data}"
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, path.read_text() if path.exists() else "")
        if m:
            return m
        assert proc.poll() is None, f"exited {proc.returncode}"
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not seen in {path}")


@contextlib.contextmanager
def _serving(typoguard_exe: str, config: Path, out: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``typoguard serve --only policyd`` (its output in ``out``) and the address its banner names; stopped
    at the end if still running."""
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [typoguard_exe, "serve", "--config", str(config), "--only", "policyd"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        yield proc, "127.0.0.1:" + _wait_for(out, r"policy service: 127\.0\.0\.1:(\d+)", proc).group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_serve_prints_how_to_wire_postfix_reloads_on_sighup_and_drains_on_sigterm(
    typoguard_exe: str, tmp_path: Path
) -> None:
    config, log, out = tmp_path / "t.toml", tmp_path / "t.jsonl", tmp_path / "out.txt"
    config.write_text(CONFIG.format(domains='"army.mil"', log=log, data=tmp_path / "data"))
    with _serving(typoguard_exe, config, out) as (proc, address):
        banner = out.read_text()
        assert f"check_policy_service {{ inet:{address}, default_action=DUNNO }}" in banner
        assert "-m typoguard.policyd.query " in banner  # how to try it (docs/postfix.md names it so too)
        assert query(address, [rcpt_request("a@army.mil", "b@exmaple.com")]) == ["DUNNO"]
        config.write_text(CONFIG.format(domains='"army.mil", "example.com"', log=log, data=tmp_path / "data"))
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, r'"event":"reloaded"', proc)
        assert query(address, [rcpt_request("a@army.mil", "b@exmaple.com")])[0].startswith("550 5.1.2")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "decision_writer_started" and events[1] == "listening"
    assert events[-3:] == ["stopping", "decision_writer_stopped", "stopped"]


def test_serve_with_an_unusable_config_exits_2(typoguard_exe: str, tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('[protect]\ndomains = ["army.mil"]\n[policyd]\nreject_template = "{nope}"\n')
    result = subprocess.run(
        [typoguard_exe, "serve", "--config", str(config)],
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
        env=_env(),
    )
    assert result.returncode == 2 and "unknown field" in result.stderr


def test_serve_with_nothing_to_protect_exits_2(typoguard_exe: str, tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('[policyd]\nlisten = "127.0.0.1:0"\n')
    result = subprocess.run(
        [typoguard_exe, "serve", "--config", str(config)],
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
        env=_env(),
    )
    assert result.returncode == 2 and "nothing to protect" in result.stderr


def test_serve_on_a_busy_port_exits_1(typoguard_exe: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "t.toml"
        config.write_text(
            f'[protect]\ndomains = ["army.mil"]\n[policyd]\nlisten = "127.0.0.1:{port}"\n'
            f'[store]\ndata_dir = "{tmp_path / "data"}"\n'  # never the machine's /var/lib/typoguard
        )
        result = subprocess.run(
            [typoguard_exe, "serve", "--config", str(config)],
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
            env=_env(),
        )
    assert result.returncode == 1 and "cannot listen" in result.stderr


def test_a_reload_to_nothing_to_protect_keeps_the_running_config(typoguard_exe: str, tmp_path: Path) -> None:
    # An edit that loses the protected domains (a `[protect] files` path mistyped, the list emptied): start
    # refuses such a config, so a SIGHUP must too, or the service goes on answering DUNNO to everything
    # while looking healthy.
    config, log, out = tmp_path / "t.toml", tmp_path / "t.jsonl", tmp_path / "out.txt"
    config.write_text(CONFIG.format(domains='"army.mil"', log=log, data=tmp_path / "data"))
    with _serving(typoguard_exe, config, out) as (proc, address):
        config.write_text(CONFIG.format(domains="", log=log, data=tmp_path / "data"))
        proc.send_signal(signal.SIGHUP)
        failed = _wait_for(log, r'"event":"reload_failed".*', proc).group(0)
        assert "nothing to protect" in failed, failed
        assert query(address, [rcpt_request("a@army.mil", "b@army.ml")])[0].startswith("550 5.1.2")
