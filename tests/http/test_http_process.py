"""``typoguard http`` as a real process: it answers, and SIGTERM or SIGINT stops it cleanly with exit 0.

uvicorn's own ``Server.serve`` re-raises a caught SIGTERM after its graceful stop, so the process died of
the signal (143) even after draining; ``serve_http`` owns the signals instead (see ``EmbeddedServer``).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
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

    from typoguard.adapters.http_api import uvicorn_server

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
