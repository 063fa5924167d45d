"""HTTP API latency: ``POST /v1/check`` with 10 recipients at 50 concurrent clients, against a trivial
endpoint on the same server (the baseline: what uvicorn + Starlette + our middleware cost per request).

The server (``create_app`` under uvicorn, one worker, the example config's protected domains, a token
checked on every request) runs in its own process pinned to CPU 0; the load generator (this process,
asyncio, raw HTTP/1.1 keep-alive over loopback, so the client's own cost stays small) on CPU 1. Each
client sends a request, waits for the whole reply, checks its status and sends the next. Bounded: at most
``REQUESTS`` requests or ``MAX_SECONDS`` per run.

    python -c "import benchmarks.bench_http as b; b.main()"      # or: python -m benchmarks --only http

Target (issue 7): POST /v1/check with 10 recipients, p99 <= 5 ms at 50 concurrent clients.
Two loads: *saturated* (closed loop: every client sends again as soon as it has its reply; latency is then
mostly queueing, clients / throughput, for any endpoint) and *paced* (the 50 clients together send
BENCH_HTTP_RATE req/s, default 1000, open loop: latency counted from when each request was due).
Environment knobs: BENCH_HTTP_REQUESTS (default 20000), BENCH_HTTP_CLIENTS (50), BENCH_HTTP_RATE (1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HOST = "127.0.0.1"  # loopback only, by construction
REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "20000"))
CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "50"))
MAX_SECONDS = 20.0  # per run
WARMUP = 500
PACED_RATE = float(os.environ.get("BENCH_HTTP_RATE", "1000"))  # req/s over all clients, the paced run
PACED = int(PACED_RATE * 8)  # 8 s paced
ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "typoguard.toml"

RECIPIENTS = [
    "bob@army.ml",
    "alice@army.mil",
    "carol@navy.mi",
    "dave@gmial.com",
    "eve@state.gov",
    "frank@statte.gov",
    "gina@example.org",
    "hal@outlook.com",
    "ivy@outlok.com",
    "joe@comcast.net",
]

# Runs in the server process: the production app plus one trivial endpoint for the baseline.
SERVER = """
import os, sys
from dataclasses import replace
from starlette.responses import JSONResponse
from typoguard.adapters.http_api import create_app, uvicorn_server
from typoguard.config import load_config
config = load_config(sys.argv[1])
config = replace(config, store=replace(config.store, data_dir=sys.argv[2], url=""))
app = create_app(config)
async def noop(request):
    return JSONResponse({"ok": True})
app.add_route("/bench/noop", noop, methods=["POST"])
server = uvicorn_server(app, "127.0.0.1", int(sys.argv[3]))
server.run()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    """``taskset`` prefix for CPU ``cpu`` when there are at least two CPUs."""
    if (os.cpu_count() or 1) >= 2 and Path("/usr/bin/taskset").exists():
        return ["taskset", "-c", str(cpu)]
    return []


def _request(path: str, body: bytes, token: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _client(  # noqa: PLR0917 - private, called from one place
    port: int, request: bytes, budget: list[int], deadline: float, out: list[float], interval: float
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    next_at = time.perf_counter() + interval * random.random()  # clients spread over the interval
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            if interval:
                # Paced: latency counts from when the request was due (no coordinated omission).
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                started = next_at
                next_at += interval
            else:
                started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected reply: {head[:60]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            out.append(time.perf_counter() - started)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _run(
    port: int, request: bytes, requests: int, clients: int, rate: float = 0.0
) -> tuple[list[float], float]:
    """Closed loop (``rate`` 0: each client sends as soon as its reply arrived) or paced at ``rate`` req/s."""
    latencies: list[float] = []
    budget = [requests]
    started = time.perf_counter()
    deadline = started + MAX_SECONDS
    interval = clients / rate if rate else 0.0
    await asyncio.gather(
        *(_client(port, request, budget, deadline, latencies, interval) for _ in range(clients))
    )
    return latencies, time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def main() -> None:
    from typoguard.config import load_config
    from typoguard.store import open_store
    from typoguard.store.tokens import TokenStore

    with tempfile.TemporaryDirectory(prefix="typoguard-bench-http-") as tmp:
        from dataclasses import replace

        config = load_config(CONFIG)
        config = replace(config, store=replace(config.store, data_dir=tmp, url=""))
        store = open_store(config)
        _, token = TokenStore(store).create("bench", "check", by="bench")
        store.close()
        port = _free_port()
        proc = subprocess.Popen(
            [*_pin(0), sys.executable, "-c", SERVER, str(CONFIG), tmp, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for(port, proc)
            if _pin(1):
                os.sched_setaffinity(0, {1})
            check = _request(
                "/v1/check", orjson.dumps({"sender": "a@army.mil", "recipients": RECIPIENTS}), token
            )
            noop = _request("/bench/noop", b"{}", token)
            rows = []
            loads = (("saturated", 0.0, REQUESTS), (f"{PACED_RATE:.0f}/s", PACED_RATE, PACED))
            for load, rate, requests in loads:
                for name, request in (("trivial (baseline)", noop), ("POST /v1/check x10", check)):
                    asyncio.run(_run(port, request, WARMUP, CLIENTS))
                    latencies, seconds = asyncio.run(_run(port, request, requests, CLIENTS, rate))
                    n = len(latencies)
                    rows.append((load, name, n, n / seconds, _pct(latencies, 0.5), _pct(latencies, 0.99)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"HTTP API, {CLIENTS} concurrent keep-alive clients on loopback, uvicorn (1 worker, 1 CPU):")
    print(f"{'load':<10} {'endpoint':<20} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for load, name, n, rate, p50, p99 in rows:
        print(f"{load:<10} {name:<20} {n:>9} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f}")
    for i in (0, 2):
        base, real = rows[i], rows[i + 1]
        print(f"{base[0]}: check/baseline req/s {real[3] / base[3]:.2f}, p99 {real[5] / base[5]:.2f}x")
    for base, real in ((rows[0], rows[1]), (rows[2], rows[3])):
        verdict = "met" if real[5] <= 5.0 else "NOT met"
        print(
            f"target p99 <= 5 ms, {real[0]}: {verdict} "
            f"(check p99 {real[5]:.2f} ms, baseline {base[5]:.2f} ms)"
        )


if __name__ == "__main__":
    main()
