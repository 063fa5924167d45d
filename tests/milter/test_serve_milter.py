"""``typoguard serve`` starts the milter when ``[milter] listen`` is set, beside the policy service, and a
SIGHUP reloads the milter's decision with the policy service's (a domain added to the config file is
protected by the milter too)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from milter_labs import MilterClient, free_port

CONFIG = """
[protect]
domains = [{domains}]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:{policy_port}"
[milter]
listen = "127.0.0.1:{milter_port}"
[http]
enabled = false
[log]
file = "{log}"
[store]
data_dir = "{data}"
"""


def _wait_port(port: int, proc: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}: {out.read_text()}")


ENV = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}


@contextlib.contextmanager
def _running(typoguard_exe: str, command: str, config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``typoguard COMMAND --config CONFIG`` until ``port`` listens; SIGTERM and its exit at the end (its
    output in ``<config>.out``)."""
    out = config.with_suffix(".out")
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [typoguard_exe, command, "--config", str(config)], stdout=sink, stderr=sink, env=ENV
        )
    try:
        _wait_port(port, proc, out)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def serve(
    typoguard_exe: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path, dict[str, object]]]:
    values: dict[str, object] = {
        "domains": '"army.mil"', "policy_port": free_port(), "milter_port": free_port(),
        "log": tmp_path / "serve.jsonl", "data": tmp_path / "data",
    }  # fmt: skip
    config = tmp_path / "typoguard.toml"
    config.write_text(CONFIG.format(**values))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
    out = tmp_path / "serve.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [typoguard_exe, "serve", "--config", str(config)], stdout=sink, stderr=sink, env=env
        )
    try:
        _wait_port(int(str(values["policy_port"])), proc, out)
        yield proc, config, values
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_serve_starts_the_milter_and_sighup_reloads_it(
    serve: tuple[subprocess.Popen[bytes], Path, dict[str, object]],
) -> None:
    proc, config, values = serve
    port = int(str(values["milter_port"]))
    _wait_port(port, proc, config.parent / "serve.out")
    client = MilterClient(port)
    cmd, data = client.rcpt("alice@army.mil", "bob@army.ml")
    assert cmd == b"y"
    assert data.startswith(b"550 5.1.2 <bob@army.ml>: Not sent: army.ml is not army.mil."), data
    assert client.rcpt("alice@army.mil", "bob@gmial.com") == (b"c", b"")  # gmail.com not protected yet
    client.close()

    config.write_text(CONFIG.format(**{**values, "domains": '"army.mil", "gmail.com"'}))
    proc.send_signal(signal.SIGHUP)
    log = Path(str(values["log"]))
    deadline = time.monotonic() + 20
    while '"reloaded"' not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    client = MilterClient(port)
    cmd, data = client.rcpt("alice@army.mil", "bob@gmial.com")
    assert cmd == b"y", data
    assert data.startswith(b"550 5.1.2 <bob@gmial.com>: Not sent: gmial.com is not gmail.com."), data
    client.close()


STANDALONE = """
[protect]
domains = [{domains}]
[policy]
internal_senders = ["army.mil"]
[milter]
listen = "127.0.0.1:{milter_port}"
[store]
enabled = false
[log]
file = "{log}"
"""


def _wait_for(path: Path, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} x{count} not in {path}: {path.read_text() if path.exists() else '-'}")


def test_typoguard_milter_on_its_own_reloads_on_sighup_and_reopens_its_log(
    typoguard_exe: str, tmp_path: Path
) -> None:
    # What an admin does to any daemon: edit the config, kill -HUP (or logrotate's postrotate). The
    # standalone milter must reload (the signal's default would end it: the MTA's default action then
    # lets mail through unchecked), keep the old config when the new one is broken, and write to the
    # new log file after a rotation.
    log = tmp_path / "milter.jsonl"
    values: dict[str, object] = {"domains": '"army.mil"', "milter_port": free_port(), "log": log}
    config = tmp_path / "milter.toml"
    config.write_text(STANDALONE.format(**values))
    port = int(str(values["milter_port"]))
    with _running(typoguard_exe, "milter", config, port) as proc:
        client = MilterClient(port)
        assert client.rcpt("alice@army.mil", "bob@gmial.com") == (b"c", b"")  # gmail.com not protected
        client.close()

        config.write_text(STANDALONE.format(**{**values, "domains": '"army.mil", "gmail.com"'}))
        log.rename(tmp_path / "milter.jsonl.1")  # logrotate
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, '"reloaded"')
        assert proc.poll() is None
        client = MilterClient(port)
        cmd, data = client.rcpt("alice@army.mil", "bob@gmial.com")
        assert cmd == b"y" and data.startswith(b"550 5.1.2 <bob@gmial.com>: Not sent: gmial.com"), data
        client.close()
        _wait_for(log, '"recipient":"bob@gmial.com"')

        config.write_text("[protect\n")  # broken: the running config stays
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, '"reload_failed"')
        client = MilterClient(port)
        assert client.rcpt("alice@army.mil", "bob@gmial.com")[0] == b"y"
        client.close()
        # Nothing to protect (the domain list lost in an edit): refused as at start, the running one stays
        config.write_text(STANDALONE.format(**{**values, "domains": ""}))
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, '"reload_failed"', count=2)
        assert "nothing to protect" in log.read_text().splitlines()[-1]
        client = MilterClient(port)
        assert client.rcpt("alice@army.mil", "bob@gmial.com")[0] == b"y"
        client.close()
        assert proc.poll() is None


def test_the_milters_decisions_are_stored_and_counted_as_the_policy_services_are(
    typoguard_exe: str, tmp_path: Path
) -> None:
    # "Remember": every enforcement point's decisions reach the store (the dashboard, `typoguard decisions`,
    # correspondents learnt from them, `typoguard held` matching a held message to its decision), not only
    # the decision log file. The milter under `typoguard serve` shares the policy service's store.
    values: dict[str, object] = {
        "domains": '"army.mil"', "policy_port": free_port(), "milter_port": free_port(),
        "log": tmp_path / "serve.jsonl", "data": tmp_path / "data",
    }  # fmt: skip
    config = tmp_path / "typoguard.toml"
    metrics = free_port()
    text = CONFIG.format(**values).replace(
        "[policyd]\n", f'[policyd]\nmetrics_listen = "127.0.0.1:{metrics}"\n'
    )
    config.write_text(text)
    env = ENV
    with _running(typoguard_exe, "serve", config, int(str(values["milter_port"]))):
        client = MilterClient(int(str(values["milter_port"])))
        assert client.rcpt("alice@army.mil", "bob@army.ml")[0] == b"y"
        assert client.rcpt("alice@army.mil", "carol@army.mil") == (b"c", b"")
        client.close()
        deadline, stored = time.monotonic() + 20, []
        while time.monotonic() < deadline:
            listed = subprocess.run(
                [typoguard_exe, "decisions", "--config", str(config), "--format", "json"],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            stored = [json.loads(line) for line in listed.stdout.splitlines()]
            if len(stored) >= 2:
                break
            time.sleep(0.2)
        assert sorted((d["recipient"], d["action"]) for d in stored) == [
            ("bob@army.ml", "reject"),
            ("carol@army.mil", "allow"),
        ], config.with_suffix(".out").read_text()
        # ... and counted on the metrics page, as the policy service's are
        page = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10).read().decode()
        for line in (
            'typoguard_milter_decisions_total{action="reject",mode="enforce"} 1.0',
            'typoguard_milter_decisions_total{action="allow",mode="enforce"} 1.0',
            "typoguard_milter_connections_accepted_total 2.0",  # the wait for the port, the client
            "typoguard_milter_connections 0.0",
        ):
            assert line in page.splitlines(), page
        assert 'typoguard_policyd_decisions_total{action="reject"' not in page  # the milter's, not Postfix's


def test_typoguard_milter_on_its_own_has_the_store(typoguard_exe: str, tmp_path: Path) -> None:
    # `typoguard milter --config FILE` (a Sendmail host runs only that): an admin's override changes its
    # answer, and its decisions are stored, as under `typoguard serve`; a clean stop stores them all.
    data = tmp_path / "data"
    values: dict[str, object] = {
        "domains": '"army.mil"',
        "milter_port": free_port(),
        "log": tmp_path / "m.jsonl",
    }
    config = tmp_path / "milter.toml"
    metrics = free_port()
    config.write_text(
        STANDALONE.format(**values)
        .replace("enabled = false", f'data_dir = "{data}"\nrefresh_interval = 0.2')
        .replace("[milter]\n", f'[milter]\nmetrics_listen = "127.0.0.1:{metrics}"\n')
    )
    env = ENV
    port = int(str(values["milter_port"]))
    with _running(typoguard_exe, "milter", config, port) as proc:
        client = MilterClient(port)
        assert client.rcpt("alice@army.mil", "bob@army.ml")[0] == b"y"
        client.close()
        subprocess.run(
            [typoguard_exe, "allow", "army.ml", "--config", str(config), "--reason", "partner"],
            check=True, env=env, capture_output=True,
        )  # fmt: skip
        deadline, answer = time.monotonic() + 20, b""
        while time.monotonic() < deadline:
            client = MilterClient(port)
            answer = client.rcpt("alice@army.mil", "bob@army.ml")[0]
            client.close()
            if answer == b"c":
                break
            time.sleep(0.1)
        assert answer == b"c", "the override did not reach the milter"
        proc.send_signal(signal.SIGHUP)  # a reload keeps the store's context: the override still holds
        _wait_for(Path(str(values["log"])), '"reloaded"')
        client = MilterClient(port)
        assert client.rcpt("alice@army.mil", "bob@army.ml")[0] == b"c"
        client.close()
        # its own metrics page: its counters, the reload, what it protects, the store's writer
        page = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10).read().decode()
        for line in (
            'typoguard_milter_reloads_total{result="ok"} 1.0',
            "typoguard_protected_domains 1.0",
            "typoguard_store_writer_up 1.0",
        ):
            assert line in page.splitlines(), page
        for action in ("reject", "allow"):  # how many of each: as many as the override took to arrive
            assert f'typoguard_milter_decisions_total{{action="{action}",mode="enforce"}}' in page
    assert proc.returncode == 0, config.with_suffix(".out").read_text()
    stored = [typoguard_exe, "decisions", "--config", str(config), "--format", "json"]
    listed = subprocess.run(
        [*stored, "--recipient", "bob@army.ml"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    actions = [json.loads(line)["action"] for line in listed.stdout.splitlines()]
    assert actions[-1] == "reject" and actions[0] == "allow" and set(actions) == {"reject", "allow"}, actions
    assert '"decision_writer_stopped"' in values["log"].read_text()  # type: ignore[attr-defined]


def test_typoguard_milter_whose_metrics_port_is_taken_says_so_and_exits_1(
    typoguard_exe: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = tmp_path / "milter.toml"
        config.write_text(
            STANDALONE.format(
                domains='"army.mil"', milter_port=free_port(), log=tmp_path / "m.jsonl"
            ).replace("[milter]\n", f'[milter]\nmetrics_listen = "127.0.0.1:{busy}"\n')
        )
        done = subprocess.run(
            [typoguard_exe, "milter", "--config", str(config)],
            check=False, capture_output=True, text=True, env=ENV, timeout=30,
        )  # fmt: skip
    assert done.returncode == 1, done
    assert f"[milter] metrics_listen 127.0.0.1:{busy}: Address already in use" in done.stderr, done.stderr


def _many_domains(path: Path, n: int) -> Path:
    """``n`` made-up protected domains (the slow build of a large list), one per line."""
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    names = sorted({f"{a}{b}{c}.com" for a in syllables for b in syllables for c in syllables[:8]})[:n]
    path.write_text("\n".join(names) + "\n")
    return path


def test_sighups_that_come_fast_leave_the_last_config_in_place(typoguard_exe: str, tmp_path: Path) -> None:
    # Two edits a moment apart (a config-management run, a logrotate), each with its SIGHUP. The first
    # reload builds a large list and outlasts the second's small one: the two ran at once, the first
    # finished last, and the milter was left with the older file's config (navy.mil unprotected).
    log = tmp_path / "milter.jsonl"
    values: dict[str, object] = {"domains": '"army.mil"', "milter_port": free_port(), "log": log}
    config = tmp_path / "milter.toml"
    config.write_text(STANDALONE.format(**values))
    large = _many_domains(tmp_path / "large.txt", 3000)
    port = int(str(values["milter_port"]))
    with _running(typoguard_exe, "milter", config, port) as proc:
        config.write_text(STANDALONE.format(**values).replace("[policy]", f'files = ["{large}"]\n[policy]'))
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)  # the first reload has read its file and is building
        config.write_text(STANDALONE.format(**{**values, "domains": '"navy.mil"'}))
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, '"reloaded"', count=2)
        time.sleep(0.5)  # a reload still running would swap its config in now
        client = MilterClient(port)
        assert client.rcpt("alice@army.mil", "bob@navy.ml")[0] == b"y", log.read_text()
        assert client.rcpt("alice@army.mil", "bob@army.ml")[0] == b"c"
        client.close()
        assert proc.poll() is None


def test_serve_whose_milter_port_is_taken_names_the_milter_and_exits_1(
    typoguard_exe: str, tmp_path: Path
) -> None:
    # The policy service's own address was named ("cannot listen on 127.0.0.1:10040"), which was free: an
    # admin looked at the wrong port.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        values: dict[str, object] = {
            "domains": '"army.mil"', "policy_port": free_port(), "milter_port": port,
            "log": tmp_path / "serve.jsonl", "data": tmp_path / "data",
        }  # fmt: skip
        config = tmp_path / "typoguard.toml"
        config.write_text(CONFIG.format(**values))
        done = subprocess.run(
            [typoguard_exe, "serve", "--config", str(config)], capture_output=True, text=True, timeout=60,
            env=ENV, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"[milter] listen 127.0.0.1:{port}" in done.stderr, done.stderr
