"""Beyond ``max_sessions`` every client reads ``421``: from ``typoguard sink`` as an administrator starts
it (its loop: asyncio's), and from the sink on uvloop, whose transports are no ``asyncio.WriteTransport``
(the relay's refusal crashed there: clients got EOF and each refusal logged a traceback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import uvloop
from running_sink import RunningSink, write_config

from typoguard.config import load_config

MAX_SESSIONS = 3
EXTRA = 5
BUSY = b"421 4.3.2 Service busy, try again later\r\n"


def first_line(port: int, keep: list[socket.socket] | None = None) -> bytes:
    """The first line the server sends on a new connection (b"" at EOF); the socket kept open in ``keep``."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(512)
        if not chunk:
            break
        got += chunk
    if keep is None:
        s.close()
    else:
        keep.append(s)
    return got


def saturate(port: int) -> None:
    """MAX_SESSIONS admitted, EXTRA refused with 421, then a place again once one leaves."""
    admitted: list[socket.socket] = []
    for _ in range(MAX_SESSIONS):
        assert first_line(port, admitted).startswith(b"220 ")
    for _ in range(EXTRA):
        assert first_line(port) == BUSY
    admitted.pop().close()
    deadline = time.monotonic() + 5
    while not (line := first_line(port)).startswith(b"220 ") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert line.startswith(b"220 ")
    for s in admitted:
        s.close()


def test_typoguard_sink_beyond_max_sessions_says_421(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, listen=[f"127.0.0.1:{port}"], max_sessions=MAX_SESSIONS,
                          max_connections_per_network=100)  # fmt: skip
    with (tmp_path / "stderr").open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "typoguard", "sink", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=stderr, cwd=tmp_path,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert proc.stdout is not None
    try:
        assert b"typoguard sink:" in proc.stdout.readline(), (tmp_path / "stderr").read_text()
        saturate(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(40)
        proc.stdout.close()
    assert status == 0
    stderr = (tmp_path / "stderr").read_text()
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    events = [orjson.loads(line)["event"] for line in (tmp_path / "sink.log").read_bytes().splitlines()]
    assert "sink_connection_refused" in events and "bad_reply" not in events


@pytest.mark.parametrize("loop_factory", [uvloop.new_event_loop], ids=["uvloop"])
def test_sink_on_uvloop_beyond_max_sessions_says_421(tmp_path: Path, loop_factory: type) -> None:
    path = write_config(tmp_path, max_sessions=MAX_SESSIONS, max_connections_per_network=100)
    sink = RunningSink(load_config(path), path, loop_factory=loop_factory)
    try:
        saturate(sink.port)
    finally:
        sink.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
