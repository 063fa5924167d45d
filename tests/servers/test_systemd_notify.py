"""``Type=notify`` readiness: the real servers send ``READY=1`` to ``NOTIFY_SOCKET`` once they listen.

No systemd needed: the test plays systemd's part with a real datagram socket (a file path, and a name in
Linux's abstract namespace, which systemd passes as ``@name``), starts the real console script the units
run, and checks that READY=1 arrives only when the port already answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from typoguard.policyd.query import query, rcpt_request
from typoguard.servers import systemd_notify

READY_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "typoguard.toml"
    config.write_text(
        f"""
[protect]
domains = ["army.mil"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:{port}"
[store]
data_dir = "{tmp_path / "data"}"
[relay]
listen = "127.0.0.1:{port}"
next_hop = "127.0.0.1:9"
[sink]
listen = ["127.0.0.1:{port}"]
domains = ["army-mil.com=army.mil"]
"""
    )
    return config


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:] if address.startswith("@") else address)
    sock.settimeout(READY_TIMEOUT)
    return sock


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("command", ["serve", "relay", "sink"])
@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_server_sends_ready_once_listening(
    typoguard_exe: str, tmp_path: Path, command: str, kind: str
) -> None:
    address = str(tmp_path / "notify") if kind == "path" else f"@typoguard-test-{uuid.uuid4().hex}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
    env["NOTIFY_SOCKET"] = address
    errors = tmp_path / "stderr.txt"
    with _receiver(address) as receiver, errors.open("wb") as stderr:
        started = time.monotonic()
        proc = subprocess.Popen(
            [typoguard_exe, command, "--config", str(_config(tmp_path, port))],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            try:
                message = receiver.recv(4096).decode()
            except TimeoutError:
                proc.kill()
                proc.wait()
                pytest.fail(f"no READY=1 within {READY_TIMEOUT}s: {errors.read_text()[-2000:]}")
            elapsed = time.monotonic() - started
            assert "READY=1" in message.split("\n")
            assert _connects(port), "READY=1 was sent before the port listened"
            if command == "serve":
                reply = query(f"127.0.0.1:{port}", [rcpt_request("alice@army.mil", "bob@army.ml")])
                assert reply[0].startswith("550 5.1.2"), reply
            print(f"{command}: READY=1 {elapsed:.2f}s after exec")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_notify_without_notify_socket_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd_notify.ready() is False


def test_notify_to_a_missing_socket_is_said_and_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert systemd_notify.ready() is False
    assert "cannot notify systemd" in capsys.readouterr().err
