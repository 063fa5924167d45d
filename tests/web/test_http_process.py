"""``typoguard http`` as a real process: it answers, and SIGTERM or SIGINT stops it cleanly with exit 0.

uvicorn's own ``Server.serve`` re-raises a caught SIGTERM after its graceful stop, so the process died of
the signal (143) even after draining; ``serve_http`` owns the signals instead (see ``EmbeddedServer``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"typoguard http exited {proc.returncode} before answering")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"typoguard http did not answer on {url} within {timeout:.0f} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_typoguard_http_stops_cleanly_on_a_signal(
    sig: signal.Signals, tmp_path: Path, typoguard_exe: str
) -> None:
    config = tmp_path / "typoguard.toml"
    config.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    token = subprocess.run(
        [typoguard_exe, "token", "create", "--config", str(config), "--scope", "check", "--name", "t"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [typoguard_exe, "http", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(url, proc)
        # A keep-alive client that has just been answered: the stop must not wait for it to hang up.
        with httpx.Client(base_url=url, timeout=5) as client:
            r = client.post(
                "/v1/check",
                json={"sender": "a@army.mil", "recipients": ["bob@army.ml"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200 and r.json()["verdicts"][0]["intended"] == "army.mil"
            started = time.monotonic()
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err.decode()
        assert time.monotonic() - started < 5, "the stop waited for an idle keep-alive connection"
        assert b"Traceback" not in err, err.decode()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_typoguard_http_exits_1_when_its_address_is_taken(tmp_path: Path, typoguard_exe: str) -> None:
    config = tmp_path / "typoguard.toml"
    config.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [typoguard_exe, "http", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr.decode()
    assert b"Traceback" not in done.stderr, done.stderr.decode()


def test_an_embedded_server_leaves_the_host_programs_signal_handlers_alone() -> None:
    """``typoguard serve`` runs ``uvicorn_server(...).serve()`` as a task next to the policy service: its
    SIGTERM handler (the drain) must stay in place while the HTTP server runs, and nothing re-raises."""
    import asyncio

    from starlette.applications import Starlette

    from typoguard.web.app import uvicorn_server

    seen: list[str] = []

    async def host() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: seen.append("host drain"))
        server = uvicorn_server(Starlette(), "127.0.0.1", 0)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert seen == ["host drain"] and not server.should_exit
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        loop.remove_signal_handler(signal.SIGTERM)

    asyncio.run(host())
    assert seen == ["host drain"]


# ---------------------------------------------------------------------------------------------- workers
class _Workers:
    """``typoguard http --workers 2`` on an ephemeral port, its config file, JSON log and a check token."""

    def __init__(self, tmp_path: Path, typoguard_exe: str, workers: int = 2) -> None:
        self.count = workers
        self.config = tmp_path / "typoguard.toml"
        self.log = tmp_path / "http.jsonl"
        self.write_config(["army.mil"])
        self.token = subprocess.run(
            [
                typoguard_exe,
                "token",
                "create",
                "--config",
                str(self.config),
                "--scope",
                "check",
                "--name",
                "t",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [typoguard_exe, "http", "--config", str(self.config), "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _wait_healthy(f"http://127.0.0.1:{self.port}", self.proc)
        if workers > 1:
            self.wait_for_workers(workers)

    def write_config(self, protected: list[str]) -> None:
        domains = ", ".join(f'"{d}"' for d in protected)
        self.config.write_text(
            f'[protect]\ndomains = [{domains}]\n[store]\ndata_dir = "{self.config.parent / "data"}"\n'
            f'[log]\nfile = "{self.log}"\n[http]\nworkers = {self.count}\n'
        )

    def workers(self) -> list[int]:
        """The processes answering: the supervisor's children, or with one worker the process itself."""
        if self.count == 1:
            return [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def wait_for_workers(self, n: int, *, other_than: tuple[int, ...] = (), timeout: float = 30) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.workers()
            if len(pids) == n and not set(pids) & set(other_than):
                return pids
            time.sleep(0.05)
        pytest.fail(f"expected {n} workers, have {self.workers()}")

    def events(self, name: str) -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [e for e in map(json.loads, lines) if e.get("event") == name]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def intended(self, conn: socket.socket, recipient: str) -> object:
        """POST /v1/check on this keep-alive connection: the verdict's intended domain."""
        body = json.dumps({"recipients": [recipient]}).encode()
        conn.sendall(
            f"POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            rest += conn.recv(65536)
        return json.loads(rest)["verdicts"][0]["intended"]

    def connections_held_by(self, pid: int) -> int:
        """Established TCP connections to our port whose socket this process holds (Linux /proc)."""
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        count = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == self.port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                count += 1
        return count

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def two_workers(tmp_path: Path, typoguard_exe: str) -> Iterator[_Workers]:
    w = _Workers(tmp_path, typoguard_exe)
    try:
        yield w
    finally:
        w.stop()


def test_workers_share_the_address_reload_on_sighup_and_stop_on_sigterm(two_workers: _Workers) -> None:
    w = two_workers
    pids = w.workers()
    conns = [w.connect() for _ in range(40)]
    try:
        assert all(w.intended(c, "bob@navy.mi") is None for c in conns)  # navy.mil is not protected yet
        held = {pid: w.connections_held_by(pid) for pid in pids}
        assert sum(held.values()) == 40 and all(held.values()), f"connections per worker: {held}"
        # SIGHUP to the supervisor: every worker loads the file again.
        w.write_config(["army.mil", "navy.mil"])
        w.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while {e["pid"] for e in w.events("http_reloaded")} != set(pids):
            assert time.monotonic() < deadline, f"reloaded: {w.events('http_reloaded')}"
            time.sleep(0.05)
        # Every kept connection (on either worker) and every new one answers with the new config.
        assert all(w.intended(c, "bob@navy.mi") == "navy.mil" for c in conns)
        for _ in range(10):
            with w.connect() as fresh:
                assert w.intended(fresh, "bob@navy.mi") == "navy.mil"
        assert w.workers() == pids  # reloaded in place, not restarted
    finally:
        for c in conns:
            c.close()
    started = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    _, err = w.proc.communicate(timeout=20)
    assert w.proc.returncode == 0, err.decode()
    assert time.monotonic() - started < 5
    assert b"Traceback" not in err, err.decode()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "a worker outlived the supervisor"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{w.port}/healthz", timeout=1)


def test_a_worker_that_dies_is_replaced(two_workers: _Workers) -> None:
    w = two_workers
    victim, survivor = w.workers()
    os.kill(victim, signal.SIGKILL)
    replacement = w.wait_for_workers(2, other_than=(victim,))
    assert survivor in replacement
    assert [e["pid"] for e in w.events("http_worker_died")] == [victim]
    # New connections are spread over both slots again; every one is answered.
    conns = [w.connect() for _ in range(40)]
    try:
        assert all(w.intended(c, "bob@army.ml") == "army.mil" for c in conns)
        assert all(w.connections_held_by(pid) for pid in replacement)
    finally:
        for c in conns:
            c.close()


def test_a_bad_workers_setting_is_a_usage_error(tmp_path: Path, typoguard_exe: str) -> None:
    config = tmp_path / "typoguard.toml"
    config.write_text('[protect]\ndomains = ["army.mil"]\n[http]\nworkers = 0\n')
    done = subprocess.run(
        [typoguard_exe, "http", "--config", str(config)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 2 and b"workers" in done.stderr, done.stderr.decode()


def test_one_worker_reloads_on_sighup_and_keeps_its_config_when_the_file_is_bad(
    tmp_path: Path, typoguard_exe: str
) -> None:
    w = _Workers(tmp_path, typoguard_exe, workers=1)
    try:
        with w.connect() as conn:
            assert w.intended(conn, "bob@navy.mi") is None
            w.write_config(["army.mil", "navy.mil"])
            w.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while not w.events("http_reloaded"):
                assert time.monotonic() < deadline, "no reload logged"
                time.sleep(0.05)
            assert w.intended(conn, "bob@navy.mi") == "navy.mil"
            w.config.write_text("[protect\n")  # not TOML
            w.proc.send_signal(signal.SIGHUP)
            while not w.events("http_reload_failed"):
                assert time.monotonic() < deadline, "no failed reload logged"
                time.sleep(0.05)
            assert w.intended(conn, "bob@navy.mi") == "navy.mil"  # still the last good configuration
            # A config that lost its protected domains (refused by the policy service's reload too: under
            # `typoguard serve` the API child and the policy service keep the same config)
            w.write_config([])
            w.proc.send_signal(signal.SIGHUP)
            while len(w.events("http_reload_failed")) < 2:
                assert time.monotonic() < deadline, "a reload to nothing to protect was not refused"
                time.sleep(0.05)
            assert "nothing to protect" in str(w.events("http_reload_failed")[-1]["error"])
            assert w.intended(conn, "bob@navy.mi") == "navy.mil"
        w.proc.send_signal(signal.SIGTERM)
        _, err = w.proc.communicate(timeout=20)
        assert w.proc.returncode == 0, err.decode()
    finally:
        w.stop()


def test_sighups_that_come_fast_leave_the_last_config_in_place(tmp_path: Path, typoguard_exe: str) -> None:
    """Two edits a moment apart, each with its SIGHUP: the first reload (a large list) outlasted the
    second's, the two ran at once, and the worker was left with the older file's config."""
    w = _Workers(tmp_path, typoguard_exe, workers=1)
    try:
        syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
        large = sorted({f"{a}{b}{c}.com" for a in syllables for b in syllables[:20] for c in syllables[:2]})
        w.write_config(["army.mil", *large[:3000]])
        w.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)  # the first reload has read its file and is building
        w.write_config(["army.mil", "navy.mil"])
        w.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while len(w.events("http_reloaded")) < 2:
            assert time.monotonic() < deadline, "two reloads were not logged"
            time.sleep(0.05)
        time.sleep(0.5)  # a reload still running would swap its config in now
        with w.connect() as conn:
            assert w.intended(conn, "bob@navy.mi") == "navy.mil"
    finally:
        w.stop()


@pytest.mark.parametrize("how", ["ctrl-c", "systemctl-stop"])
def test_serve_stops_its_api_child_cleanly_on_ctrl_c_and_on_systemctl_stop(
    how: str, tmp_path: Path, typoguard_exe: str
) -> None:
    # Ctrl-C reaches a terminal's whole foreground process group; `systemctl stop` with the packaged unit
    # signals the main process only (KillMode=mixed). Either way the API child must be stopped once, by
    # serve, and drain: no forced stop, no traceback (it used to get a signal of its own and serve's).
    port, policy = _free_port(), _free_port()
    config = tmp_path / "typoguard.toml"
    config.write_text(
        f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[policyd]\nlisten = "127.0.0.1:{policy}"\nmetrics_listen = ""\n'
        f'[http]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
    )
    proc = subprocess.Popen(
        [typoguard_exe, "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, as a shell gives a foreground job
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err + out, (err + out).decode()
        assert b'"event":"stopped"' in err + out
        unit = (Path(__file__).resolve().parents[2] / "debian/systemd/typoguard.service").read_text()
        assert "\nKillMode=mixed\n" in unit
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
