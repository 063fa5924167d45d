"""logrotate's way with every server: rename the log file, send SIGHUP, while the server is under load.

Each server is the real command (``typoguard serve``, ``relay``, ``sink``, ``http`` with two workers) with
``[log] file``. Under load, the file is renamed (what logrotate does) and the process gets SIGHUP (what the
snippet's ``postrotate`` sends). Once the new file shows the reload, the old one must not grow any more
(nothing is written to it after the HUP was handled), and every record the load caused is in one of the
two files, exactly once (no line lost).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from typoguard.policyd.query import query, rcpt_request

BATCH = 20  # records one step of the load causes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


class Service:
    """One ``typoguard <command> --config FILE`` process, started until its port answers."""

    def __init__(self, exe: str, command: str, root: Path, config: str, port: int) -> None:
        self.config = root / "typoguard.toml"
        self.config.write_text(config)
        self.log = root / "typoguard.log"
        self.port = port
        self.err = (root / "stderr").open("wb")
        self.proc = subprocess.Popen(
            [exe, command, "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.err,
            start_new_session=True,  # its children (the API of serve) are killed with it if a test fails
        )
        wait_until(f"typoguard {command} to listen", lambda: listening(port) or self.proc.poll() is not None)
        if self.proc.poll() is not None:
            self.err.close()
            raise AssertionError((root / "stderr").read_text())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@contextlib.contextmanager
def service(exe: str, command: str, root: Path, config: str, port: int) -> Iterator[Service]:
    svc = Service(exe, command, root, config, port)
    try:
        yield svc
    finally:
        if svc.proc.poll() is None:  # still running (not reaped: its pid is still its own)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(svc.proc.pid, signal.SIGKILL)
        svc.proc.wait(10)
        svc.err.close()


class Load:
    """``step(i)`` over and over in a thread (each causes ``BATCH`` records), counting the steps done."""

    def __init__(self, step: Callable[[int], None]) -> None:
        self.step = step
        self.done = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(self.done)
                self.done += 1
        except BaseException as exc:
            self.error = exc

    def wait_for(self, steps: int) -> None:
        target = self.done + steps
        wait_until(f"{steps} more load steps", lambda: self.done >= target or self.error is not None)
        assert self.error is None, repr(self.error)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        assert self.error is None, repr(self.error)
        return self.done


def rotate(svc: Service, reloaded: str, load: Load | None) -> tuple[Path, int]:
    """logrotate: rename, then SIGHUP; returns the old file and its size once the HUP was handled (the
    ``reloaded`` event is in the new file)."""
    if load is not None:
        load.wait_for(10)
    old = svc.log.with_name(svc.log.name + ".1")
    os.rename(svc.log, old)
    svc.proc.send_signal(signal.SIGHUP)
    wait_until(
        f"{reloaded} in the new log file",
        lambda: svc.log.exists() and any(r.get("event") == reloaded for r in records(svc.log)),
    )
    handled = old.stat().st_size
    if load is not None:
        load.wait_for(10)  # more records, after the HUP
    return old, handled


POLICYD = """
[protect]
domains = ["army.mil", "navy.mil"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:{port}"
[store]
enabled = false
[http]
enabled = false
[log]
file = "{log}"
"""


def test_policy_service_reopens_its_log_on_sighup_without_losing_a_decision(
    typoguard_exe: str, tmp_path: Path
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"

    def step(i: int) -> None:
        answers = query(address, [rcpt_request("alice@army.mil", f"u{i}.{k}@army.ml") for k in range(BATCH)])
        assert len(answers) == BATCH

    config = POLICYD.format(port=port, log=tmp_path / "typoguard.log")
    with service(typoguard_exe, "serve", tmp_path, config, port) as svc:
        load = Load(step)
        old, handled = rotate(svc, "reloaded", load)
        steps = load.stop()
        assert svc.stop() == 0
    assert old.stat().st_size == handled, "written to the old file after the HUP was handled"
    before, after = records(old), records(svc.log)
    decided = [r["recipient"] for r in before + after if r.get("event") == "decision"]
    assert sorted(decided) == sorted(f"u{i}.{k}@army.ml" for i in range(steps) for k in range(BATCH))
    assert any(r.get("event") == "decision" for r in after), "no decision after the rotation"
    assert after[-1]["event"] == "stopped"


RELAY = """
[protect]
domains = ["army.mil", "navy.mil"]
[store]
enabled = false
data_dir = "{data}"
[relay]
listen = "127.0.0.1:{port}"
next_hop = "127.0.0.1:{next_hop}"
next_hop_tls = "none"
hostname = "relay.test"
[log]
file = "{log}"
"""


def test_relay_reopens_its_log_on_sighup_without_losing_a_decision(
    typoguard_exe: str, tmp_path: Path
) -> None:
    port = free_port()

    def step(i: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("client.test")
            smtp.mail("alice@army.mil")
            for k in range(BATCH):
                assert smtp.rcpt(f"u{i}.{k}@army.ml")[0] == 550

    next_hop = Controller(object(), hostname="127.0.0.1", port=free_port())  # answers 250 to everything
    next_hop.start()
    config = RELAY.format(
        port=port, next_hop=next_hop.port, data=tmp_path / "data", log=tmp_path / "typoguard.log"
    )
    try:
        with service(typoguard_exe, "relay", tmp_path, config, port) as svc:
            load = Load(step)
            old, handled = rotate(svc, "reloaded", load)
            steps = load.stop()
            assert svc.stop() == 0
    finally:
        next_hop.stop()
    assert old.stat().st_size == handled, "written to the old file after the HUP was handled"
    before, after = records(old), records(svc.log)
    decided = [r["recipient"] for r in before + after if r.get("event") == "decision"]
    assert sorted(decided) == sorted(f"u{i}.{k}@army.ml" for i in range(steps) for k in range(BATCH))
    assert any(r.get("event") == "decision" for r in after), "no decision after the rotation"


SINK = """
[protect]
domains = ["army.mil", "navy.mil"]
[store]
data_dir = "{data}"
[sink]
listen = ["127.0.0.1:{port}"]
domains = ["army-mil.com"]
hostname = "sink.test"
flush_interval = 0.05
[log]
file = "{log}"
"""


def test_sink_reopens_its_log_on_sighup_without_losing_a_count(typoguard_exe: str, tmp_path: Path) -> None:
    port = free_port()

    def step(i: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("client.test")
            smtp.mail("bob@example.org")
            for k in range(BATCH):
                assert smtp.rcpt(f"u{i}.{k}@army-mil.com")[0] == 550

    config = SINK.format(port=port, data=tmp_path / "data", log=tmp_path / "typoguard.log")
    with service(typoguard_exe, "sink", tmp_path, config, port) as svc:
        load = Load(step)
        old, handled = rotate(svc, "sink_reloaded", load)
        steps = load.stop()
        time.sleep(0.3)  # the last counts are written (every 0.05 s)
        assert svc.stop() == 0
    assert old.stat().st_size == handled, "written to the old file after the HUP was handled"
    before, after = records(old), records(svc.log)
    # Every refused RCPT is counted once, in one "sink_counts_written" record of one of the two files.
    written = [r["attempts"] for r in before + after if r.get("event") == "sink_counts_written"]
    assert sum(written) == steps * BATCH
    assert any(r.get("event") == "sink_counts_written" for r in after), "no counts after the rotation"
    assert any(r.get("event") == "sink_stopped" for r in after)


HTTP = """
[protect]
domains = ["army.mil", "navy.mil"]
[store]
data_dir = "{data}"
[http]
listen = "127.0.0.1:{port}"
workers = 2
[log]
file = "{log}"
"""


def test_http_supervisor_and_workers_reopen_their_log_on_sighup(typoguard_exe: str, tmp_path: Path) -> None:
    port = free_port()
    config = HTTP.format(port=port, data=tmp_path / "data", log=tmp_path / "typoguard.log")
    with service(typoguard_exe, "http", tmp_path, config, port) as svc:
        children = Path(f"/proc/{svc.proc.pid}/task/{svc.proc.pid}/children")
        wait_until("two workers", lambda: len(children.read_text().split()) == 2)
        for _ in range(20):  # new connections, spread over both workers: both run their event loop
            wait_until("an answer", lambda: healthy(port))
        old, _ = rotate(svc, "http_reloaded", None)
        wait_until(
            "both workers' reloads",
            lambda: sum(r.get("event") == "http_reloaded" for r in records(svc.log)) == 2,
        )
        handled = old.stat().st_size
        assert svc.stop() == 0
    assert old.stat().st_size == handled, "written to the old file after the HUP was handled"
    after = records(svc.log)
    # The supervisor's own last record goes to the new file too.
    assert [r["event"] for r in after if r["event"] == "http_stopped"] == ["http_stopped"]


def test_a_log_file_that_cannot_be_reopened_keeps_the_old_one(typoguard_exe: str, tmp_path: Path) -> None:
    """The log's directory is gone at SIGHUP: the service keeps logging to the file it has, says why, and
    goes on answering."""
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    config = POLICYD.format(port=port, log=logs / "typoguard.log")
    with service(typoguard_exe, "serve", tmp_path, config, port) as svc:
        moved = tmp_path / "moved"
        os.rename(logs, moved)  # the open file moves with it
        svc.proc.send_signal(signal.SIGHUP)
        log = moved / "typoguard.log"
        wait_until("the reload", lambda: any(r.get("event") == "reloaded" for r in records(log)))
        [answer] = query(f"127.0.0.1:{port}", [rcpt_request("alice@army.mil", "bob@army.ml")])
        assert answer.startswith("550 5.1.2 ")
        assert svc.stop() == 0
    events = [r["event"] for r in records(log)]
    assert "log_reopen_failed" in events
    assert events[-1] == "stopped"
    failed = next(r for r in records(log) if r["event"] == "log_reopen_failed")
    assert failed["level"] == "warning" and "No such file or directory" in failed["error"]
    assert not logs.exists()


SERVE_WITH_API = """
[protect]
domains = ["army.mil", "navy.mil"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:{port}"
[store]
data_dir = "{data}"
[http]
enabled = true
listen = "127.0.0.1:{http}"
[log]
file = "{log}"
"""


def test_the_api_child_of_serve_reopens_its_log_even_when_the_reload_fails(
    typoguard_exe: str, tmp_path: Path
) -> None:
    """logrotate's HUP goes to ``typoguard serve`` only; it passes it on to its ``typoguard http`` child
    (which appends to the same file) also when the new config does not load, or the child would write to
    the renamed file until the next rotation deleted it."""
    port, http = free_port(), free_port()
    config = SERVE_WITH_API.format(
        port=port, http=http, data=tmp_path / "data", log=tmp_path / "typoguard.log"
    )
    with service(typoguard_exe, "serve", tmp_path, config, port) as svc:
        wait_until("the API", lambda: healthy(http))
        svc.config.write_text("[protect\n")  # logrotate runs while the file is being edited
        old = svc.log.with_name(svc.log.name + ".1")
        os.rename(svc.log, old)
        svc.proc.send_signal(signal.SIGHUP)
        wait_until("reload_failed", lambda: svc.log.exists() and
                   any(r.get("event") == "reload_failed" for r in records(svc.log)))  # fmt: skip
        wait_until("the API's own reload_failed in the new file",
                   lambda: any(r.get("event") == "http_reload_failed" for r in records(svc.log)))  # fmt: skip
        handled = old.stat().st_size
        assert svc.stop() == 0
    assert old.stat().st_size == handled
