"""Postfix's policy answers while ``POST /v1/check`` is attacked, in one real ``typoguard serve``.

``typoguard serve`` runs with ``[http] enabled`` (by default the API in a child process; ``[http] embedded``
puts it in the policy loop). A probe
client speaks the policy protocol on one connection, one request every ``PROBE_INTERVAL`` s, and records
each answer's latency; meanwhile ``attackers`` clients with a check token send /v1/check bodies as large
as ``[http] max_body_bytes`` allows, full of recipients that cost the detector most (long names of
look-alike characters in several scripts). Used by ``test_http_limits.py`` and, for the figures in
docs/http-api.md, run on its own (alone on the machine: ``flock -x /tmp/tg-machine.lock``)::

    .venv/bin/python tests/web/policy_under_attack.py [seconds] [attackers]

``ATTACK_BURN=N`` adds a third figure: no attack, N processes that only burn CPU (normal priority,
unpinned) - what the kernel's scheduler alone costs the probe on busy CPUs, a floor the service cannot
beat (ADR 0031).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBE_INTERVAL = 0.003
POLICY_REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=127.0.0.1\n"
    b"sender=alice@army.mil\nrecipient=bob@army.ml\nqueue_id=ABC123\n\n"
)
_SCRIPTS = "абвгдежзийклмнопрстуфхцчшщыэюя" + "αβγδεζηθικλμνξοπρστυφχψω" + "aeopcxy"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hostile_body(max_bytes: int, max_recipients: int, seed: int = 0) -> bytes:
    """A /v1/check body of at most ``max_bytes`` and ``max_recipients``: unique names of look-alike
    letters in several scripts, four labels each (each costs the detector ~1 ms, none is cached)."""
    rnd = random.Random(seed)
    recipients: list[str] = []
    head = len(json.dumps({"sender": "alice@army.mil", "recipients": []}).encode())
    size = head
    while len(recipients) < max_recipients:
        labels = ".".join("".join(rnd.choice(_SCRIPTS) for _ in range(20)) for _ in range(4))
        r = f"b@{labels}.mil"
        size += len(json.dumps(r, ensure_ascii=False).encode()) + (2 if recipients else 0)
        if size > max_bytes:
            break
        recipients.append(r)
    body = json.dumps({"sender": "alice@army.mil", "recipients": recipients}, ensure_ascii=False).encode()
    assert len(body) <= max_bytes, len(body)
    return body


@dataclass
class Figures:
    probes: list[float] = field(default_factory=list)  # seconds per policy answer
    attacks: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    body_bytes: int = 0
    recipients: int = 0

    def summary(self) -> dict[str, float]:
        ms = sorted(p * 1000 for p in self.probes)
        return {
            "probes": len(ms),
            "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 3),
            "max_ms": round(ms[-1], 3),
        }


class ServeProcess:
    """``typoguard serve`` with the policy service and the HTTP API on free loopback ports."""

    def __init__(self, exe: str, root: Path, http_extra: str = "") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.policy_port, self.http_port = _free_port(), _free_port()
        self.config = root / "typoguard.toml"
        self.config.write_text(
            '[protect]\ndomains = ["army.mil", "navy.mil", "state.gov", "gmail.com"]\n'
            f'[policyd]\nlisten = "127.0.0.1:{self.policy_port}"\n'
            f'[store]\ndata_dir = "{root / "data"}"\n'
            f'[log]\nfile = "{root / "serve.jsonl"}"\n'
            f'[http]\nenabled = true\nlisten = "127.0.0.1:{self.http_port}"\n{http_extra}'
        )
        self.token = subprocess.run(
            [exe, "token", "create", "--config", str(self.config), "--scope", "check", "--name", "webmail"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.stderr = root / "serve.stderr"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [exe, "serve", "--config", str(self.config)], stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"typoguard serve exited: {self.stderr.read_text()!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(100).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("typoguard serve did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _probe(port: int, until: float, figures: Figures) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            began = time.perf_counter()
            writer.write(POLICY_REQUEST)
            reply = await reader.readuntil(b"\n\n")
            figures.probes.append(time.perf_counter() - began)
            assert reply.startswith(b"action="), reply
            await asyncio.sleep(PROBE_INTERVAL)
    finally:
        writer.close()


async def _attack(port: int, token: str, bodies: list[bytes], until: float, counts: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            body = bodies.pop() if len(bodies) > 1 else bodies[0]
            writer.write(
                (
                    f"POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            counts[status] = counts.get(status, 0) + 1
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def _attackers(
    *, port: int, token: str, n: int, max_bytes: int, max_recipients: int, seconds: float, sync: Any
) -> None:
    """The attacking process: bodies made before the start (new names for every request: no cache
    hits), then ``n`` connections sending them back to back for ``seconds``."""
    ready, go, out = sync
    bodies = [hostile_body(max_bytes, max_recipients, seed) for seed in range(1, 12 * n + 1)]
    ready.set()
    go.wait()
    counts: dict[int, int] = {}

    async def run() -> None:
        until = time.monotonic() + seconds
        share = len(bodies) // n
        parts = [bodies[i * share : (i + 1) * share] for i in range(n)]
        await asyncio.gather(*(_attack(port, token, part, until, counts) for part in parts))

    asyncio.run(run())
    out.put(counts)


async def _probe_for(port: int, seconds: float, figures: Figures) -> None:
    await _probe(port, time.monotonic() + seconds, figures)


def measure(
    exe: str,
    root: Path,
    *,
    seconds: float = 5.0,
    attackers: int = 4,
    max_bytes: int = 65536,
    max_recipients: int = 1000,
    http_extra: str = "",
    burners: int = 0,
) -> Figures:
    """Probe latencies while ``attackers`` connections (from another process, so that making and
    reading their requests costs the probe nothing) hammer /v1/check with the largest hostile bodies."""
    import multiprocessing

    serve = ServeProcess(exe, root, http_extra)
    body = hostile_body(max_bytes, max_recipients)
    figures = Figures(body_bytes=len(body), recipients=len(json.loads(body)["recipients"]))
    ctx = multiprocessing.get_context("fork")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    attacking = None
    burning = []
    try:
        asyncio.run(_probe_for(serve.policy_port, 0.5, Figures()))  # warm up the probe's path
        burning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
        if attackers:
            kwargs = {
                "port": serve.http_port,
                "token": serve.token,
                "n": attackers,
                "max_bytes": max_bytes,
                "max_recipients": max_recipients,
                "seconds": seconds,
                "sync": (ready, go, out),
            }
            attacking = ctx.Process(target=_attackers, kwargs=kwargs)
            attacking.start()
            ready.wait(60)  # the bodies are made
            go.set()
            time.sleep(0.2)  # the attack is on
        asyncio.run(_probe_for(serve.policy_port, seconds - 0.4 if attackers else seconds, figures))
        if attacking is not None:
            figures.attacks = out.get(timeout=60)
            attacking.join(10)
    finally:
        for burner in burning:
            burner.kill()
            burner.wait()
        if attacking is not None and attacking.is_alive():
            attacking.kill()
        serve.stop()
    return figures


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    attackers = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    max_bytes = int(os.environ.get("ATTACK_BYTES", "65536"))
    exe = shutil.which("typoguard", path=str(Path(sys.executable).parent)) or "typoguard"
    burn = int(os.environ.get("ATTACK_BURN", "0"))
    with tempfile.TemporaryDirectory() as tmp:
        quiet = measure(exe, Path(tmp) / "quiet", seconds=min(seconds, 5), attackers=0, max_bytes=max_bytes)
        burnt = (
            measure(exe, Path(tmp) / "burn", seconds=seconds, attackers=0, max_bytes=max_bytes, burners=burn)
            if burn
            else None
        )
        attacked = measure(
            exe, Path(tmp) / "attacked", seconds=seconds, attackers=attackers, max_bytes=max_bytes
        )
    print(
        json.dumps(
            {
                "no attack": quiet.summary(),
                **({f"no attack, {burn} CPU burners": burnt.summary()} if burnt is not None else {}),
                f"{attackers} attackers": attacked.summary(),
                "attack replies": attacked.attacks,
                "body bytes": attacked.body_bytes,
                "recipients per body": attacked.recipients,
            }
        )
    )


if __name__ == "__main__":
    main()
