"""Beyond ``max_sessions`` every client reads ``421`` - from ``typoguard relay`` itself, a process started as
an administrator starts it, on the loop it really runs on (uvloop, servers/event_loop.py). The refusal
once asserted ``asyncio.WriteTransport``, which uvloop's transports are not: clients got EOF and each
refusal logged a traceback. Also: a line that is no reply never goes out (the writer's own check)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from relay_lab import NextHopSink, RunningRelay, free_port, write_config

from typoguard.servers.smtp import BAD_REPLY, reply_problem

MAX_SESSIONS = 3
EXTRA = 5


def greeting(sock: socket.socket) -> bytes:
    """The first line the server sends (b"" at EOF)."""
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(512)
        if not chunk:
            break
        got += chunk
    return got


@pytest.fixture
def relay_process(tmp_path: Path, next_hop: NextHopSink) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    config = write_config(tmp_path, next_hop.port, relay={"listen": f"127.0.0.1:{port}",
                                                          "max_sessions": MAX_SESSIONS})  # fmt: skip
    with config.open("a") as f:
        f.write(f'[log]\nfile = "{tmp_path / "relay.log"}"\n')
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (tmp_path / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "typoguard", "relay", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=stderr, env=env,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once it listens
        assert b"typoguard relay:" in banner, (tmp_path / "stderr").read_text()
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(40)
        assert proc.stdout is not None
        proc.stdout.close()


def test_beyond_max_sessions_every_client_reads_421_and_nothing_crashes(
    relay_process: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = relay_process
    admitted = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(MAX_SESSIONS)]
    for s in admitted:
        assert greeting(s).startswith(b"220 ")
    for _ in range(EXTRA):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
            assert greeting(extra) == b"421 4.3.2 Too many connections, try again later\r\n"
    admitted.pop().close()  # a place is free again
    deadline = time.monotonic() + 5
    while True:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as again:
            line = greeting(again)
        if line.startswith(b"220 ") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert line.startswith(b"220 ")
    for s in admitted:
        s.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    stderr = (tmp_path / "stderr").read_text()
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    events = [orjson.loads(line)["event"] for line in (tmp_path / "relay.log").read_bytes().splitlines()]
    assert "session_error" not in events and "bad_reply" not in events
    assert events[-1] == "stopped"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"", "empty"),
        (b"hello", "no reply code"),
        (b"25", "no reply code"),
        (b"250x", "no reply code"),
        (b"650 nope", "no reply code"),
        (b"250 ok\r\n250 more", "a line end inside"),
        (b"250 ok\x00", "a control character"),
        (b"250 caf\xc3\xa9", "not ASCII"),
        (b"250 " + b"x" * 507, "longer than 510"),
    ],
)
def test_what_is_no_reply_line(line: bytes, problem: str) -> None:
    assert (reply_problem(line) or "").startswith(problem)


@pytest.mark.parametrize("line", [b"250", b"250 2.0.0 Ok", b"250-PIPELINING", b"334 ", b"550 " + b"x" * 506])
def test_what_is_a_reply_line(line: bytes) -> None:
    assert reply_problem(line) is None
    assert reply_problem(b"250 caf\xc3\xa9", utf8=True) is None  # UTF-8 text in an SMTPUTF8 transaction
    assert reply_problem(b"250 caf\xc3", utf8=True) == "not UTF-8"


def test_a_bad_reply_line_is_logged_and_replaced_by_451(
    start_relay: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a handler ever produce an empty line again, the client reads 451 and the log says so."""
    relay: RunningRelay = start_relay()

    async def empty_reply(*_: object) -> str:
        return ""  # what NextHop.rcpt() once returned after a next-hop failure at MAIL

    monkeypatch.setattr(relay.server.handler, "handle_NOOP", empty_reply, raising=False)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        s.sendall(b"NOOP\r\nQUIT\r\n")
        assert f.readline() == BAD_REPLY + b"\r\n"
        assert f.readline().startswith(b"221 ")
    bad = [r for r in relay.log_records() if r["event"] == "bad_reply"]
    assert bad == [{**bad[0], "level": "error", "reply": "b''", "problem": "empty"}]


def test_a_client_echoed_in_a_reply_gets_printable_ascii_and_no_alarm(start_relay: type) -> None:
    """aiosmtpd's ``500 Error: command "..." not recognized`` carries the client's bytes: made printable and
    cut to length, still a 500 (the code is the meaning), and not logged as a bad reply."""
    relay: RunningRelay = start_relay()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        s.sendall(b"\x01FOO\x7f\r\n" + b"X" * 495 + b"\r\nQUIT\r\n")  # aiosmtpd reads up to 512
        assert f.readline() == b'500 Error: command "?FOO?" not recognized\r\n'
        long = f.readline()
        assert long.startswith(b'500 Error: command "XXX') and long.endswith(b"...\r\n") and len(long) == 512
        assert f.readline().startswith(b"221 ")
    assert [r for r in relay.log_records() if r["event"] == "bad_reply"] == []
