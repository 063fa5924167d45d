"""A service started with its standard streams closed (an init script, a supervisor that closes them):
descriptors 0-2 are then free, and the first sockets the service opens took them. libuv refuses to close a
descriptor <= 2 (an assertion): the service aborted (SIGABRT, exit 134) when such a connection closed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _close_std_streams() -> None:
    for fd in (0, 1, 2):
        os.close(fd)


REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n"
    b"sender=alice@army.mil\nrecipient=bob@army.ml\n\n"
)


@pytest.mark.timeout(120)
def test_a_service_started_without_standard_streams_serves_and_stops_cleanly(
    typoguard_exe: str, tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "typoguard.log"
    config = tmp_path / "typoguard.toml"
    config.write_text(
        f'[protect]\ndomains = ["army.mil"]\n[policy]\ninternal_senders = ["army.mil"]\n'
        f'[policyd]\nlisten = "127.0.0.1:{port}"\n[log]\nfile = "{log}"\n[store]\nenabled = false\n'
    )
    proc = subprocess.Popen(
        [typoguard_exe, "serve", "--config", str(config)], preexec_fn=_close_std_streams,  # noqa: PLW1509
        env={k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"exited {proc.returncode}"
                assert time.monotonic() < deadline, "did not listen"
                time.sleep(0.1)
        for _ in range(20):  # connections opened and closed: any of them may have had a descriptor <= 2
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(REQUEST)
                reply = conn.recv(4096)
                assert reply.startswith(b"action=550 5.1.2"), reply
        time.sleep(0.5)
        assert proc.poll() is None, f"the service died: exit {proc.returncode}"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0
    assert '"event":"stopped"' in log.read_text() or '"stopped"' in log.read_text()
