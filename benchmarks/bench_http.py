"""HTTP API latency: ``POST /v1/check`` with 10 recipients at 50 concurrent clients, against a trivial
endpoint on the same server in the same run (what uvicorn + Starlette cost per request; ``/v1/check`` is
answered in front of Starlette, so it can cost less than this "baseline").

The server (``typoguard http``'s own ``serve()``: uvloop + httptools, the example config's protected
domains, a bearer token checked on every request) runs in its own process pinned to CPU 0; the load
generator (this process: asyncio on uvloop, raw HTTP/1.1 keep-alive over loopback, so the client's own
cost stays small) on CPU 1. Every run is bounded in requests and seconds.

    python -m benchmarks --only http          # what `make bench` runs; takes about a minute

Target (issue 7): POST /v1/check with 10 recipients, p99 <= 5 ms at 50 concurrent clients. Loads:

* **saturated** (closed loop): each of the 50 clients sends again the moment its reply is in. The server
  is then always busy, and latency is mostly queueing: about 50 x the per-request cost, for any endpoint.
* **open loop at a stated rate** (realistic: a mail client asks once when its user presses Send): the 50
  clients together send RATES req/s on a fixed schedule. Latency counts from when a request was due if the
  server's late reply held it back (no coordinated omission), else from when it was sent (the client's
  own timer lateness is not the server's).
* **2 workers, saturated**: ``typoguard http --workers 2`` (two worker processes, one SO_REUSEPORT
  socket each), unpinned (they share both CPUs with the load generator, as they would share them with the
  policy service in production).

Also reported: a *floor* row per one-worker load (a bare uvloop responder, no HTTP framework: what this
machine's loopback and scheduling give anything, other work on a shared machine included), the server's
CPU time per request (from /proc), and check vs trivial ratios.
Environment knobs: BENCH_HTTP_REQUESTS (saturated, default 20000), BENCH_HTTP_CLIENTS (50), BENCH_HTTP_PIN
(default 1; 0: no CPU pinning),
BENCH_HTTP_RATES (default "1000,4000,7000"), BENCH_HTTP_SECONDS (each open-loop run, default 5).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

HOST = "127.0.0.1"  # loopback only, by construction
REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "20000"))
CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "50"))
RATES = [float(r) for r in os.environ.get("BENCH_HTTP_RATES", "1000,4000,7000").split(",") if r]
OPEN_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "5"))
MAX_SECONDS = 20.0  # per run, whatever the request budget
WARMUP = 500
TARGET_P99_MS = 5.0
NOISY_FLOOR_MS = 1.0  # a bare responder's p99 above this: other work on the machine is in the figures
# Pinning keeps server and load generator apart on an idle machine; on a busy shared one a neighbour on
# the server's CPU hurts more than migration would: BENCH_HTTP_PIN=0 lets the scheduler place both.
PIN = os.environ.get("BENCH_HTTP_PIN", "1") != "0"
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

# The server: `typoguard http` itself (``http_serve.serve``: one process, or with workers > 1 the
# supervisor and its workers on one SO_REUSEPORT socket each), the production app plus one trivial
# endpoint for the baseline, added to the app every worker builds.
SERVER = """
import sys
from dataclasses import replace
from starlette.responses import JSONResponse
from typoguard.web import serve as http_serve
from typoguard.config import load_config
config_path, data_dir, port, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = load_config(config_path)
config = replace(
    config,
    store=replace(config.store, data_dir=data_dir, url=""),
    http=replace(config.http, listen=f"127.0.0.1:{port}"),
    log=replace(config.log, level="warning", file=""),
)
async def noop(request):
    return JSONResponse({"ok": True})
production_app = http_serve.create_app
def create_app(config):
    app = production_app(config)
    app.add_route("/bench/noop", noop, methods=["POST"])
    return app
http_serve.create_app = create_app
sys.exit(http_serve.serve(config, workers=workers))
"""

# The floor: a fixed reply from a bare uvloop protocol, no HTTP framework. Its p99 is what this machine's
# scheduling and loopback give anything at that load right now (other work on a shared machine shows here).
FLOOR = """
import asyncio, sys, uvloop
REPLY = b"HTTP/1.1 200 OK\\r\\ncontent-length: 11\\r\\ncontent-type: application/json\\r\\n\\r\\n"
REPLY += b'{"ok":true}'
class Reply(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\\r\\n\\r\\n")) >= 0:
            length = 0
            for line in self.buffer[:end].lower().split(b"\\r\\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(REPLY)
async def main():
    server = await asyncio.get_running_loop().create_server(Reply, "127.0.0.1", int(sys.argv[3]))
    await server.serve_forever()
uvloop.run(main())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    """``taskset`` prefix for CPU ``cpu`` when there are at least two CPUs (and BENCH_HTTP_PIN is not 0)."""
    if PIN and (os.cpu_count() or 1) >= 2 and Path("/usr/bin/taskset").exists():
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
                due = next_at
                next_at += interval
                now = time.perf_counter()
                if now < due:
                    await asyncio.sleep(due - now)
                    started = time.perf_counter()  # woken late or not: that is the client's own delay
                else:
                    started = due  # the previous reply came after this one was due: the server's delay
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
    """Closed loop (``rate`` 0: each client sends as soon as its reply arrived) or open loop at ``rate``."""
    latencies: list[float] = []
    budget = [requests]
    started = time.perf_counter()
    deadline = started + MAX_SECONDS
    interval = clients / rate if rate else 0.0
    await asyncio.gather(
        *(_client(port, request, budget, deadline, latencies, interval) for _ in range(clients))
    )
    return latencies, time.perf_counter() - started


def _asyncio_run(coro: Any) -> Any:
    """``asyncio.run`` on uvloop when it is installed: a lighter client, less of its own jitter measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _server_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    extra = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [proc.pid, *extra]


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def _server(data_dir: str, workers: int, code: str = SERVER) -> Iterator[tuple[int, list[int]]]:
    port = _free_port()
    pin = _pin(0) if workers == 1 else []
    proc = subprocess.Popen(
        [*pin, sys.executable, "-c", code, str(CONFIG), data_dir, str(port), str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(port, proc)
        time.sleep(0.5 if workers > 1 else 0)  # every worker listening
        yield port, _server_pids(proc)
    finally:
        if proc.poll() is None:
            proc.terminate()  # with workers: the supervisor stops them
        proc.wait(timeout=15)


Row = tuple[str, str, int, float, float, float, float]  # load, endpoint, n, req/s, p50, p99, CPU us/request


Target = tuple[int, list[int], bytes]  # port, server pids, request


def _measure(load: str, targets: dict[str, Target], run: Callable[[int, bytes], Any]) -> list[Row]:
    rows = []
    for name, (port, pids, request) in targets.items():
        _asyncio_run(_run(port, request, WARMUP, CLIENTS))
        cpu = _cpu_seconds(pids)
        latencies, seconds = _asyncio_run(run(port, request))
        cpu_us = (_cpu_seconds(pids) - cpu) / len(latencies) * 1e6
        n = len(latencies)
        rows.append((load, name, n, n / seconds, _pct(latencies, 0.5), _pct(latencies, 0.99), cpu_us))
    return rows


def main() -> None:
    from dataclasses import replace

    from typoguard.config import load_config
    from typoguard.store import open_store
    from typoguard.store.tokens import TokenStore

    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-http-") as tmp:
        config = load_config(CONFIG)
        config = replace(config, store=replace(config.store, data_dir=tmp, url=""))
        store = open_store(config)
        _, token = TokenStore(store).create("bench", "check", by="bench")
        store.close()
        check = orjson.dumps({"sender": "a@army.mil", "recipients": RECIPIENTS})
        trivial, check_x10 = _request("/bench/noop", b"{}", token), _request("/v1/check", check, token)
        affinity = os.sched_getaffinity(0)
        with _server(tmp, 1) as (port, pids), _server(tmp, 1, FLOOR) as (floor_port, floor_pids):
            if _pin(1):
                os.sched_setaffinity(0, {1})
            targets = {
                "floor": (floor_port, floor_pids, trivial),
                "trivial": (port, pids, trivial),
                "check x10": (port, pids, check_x10),
            }
            rows += _measure("saturated", targets, lambda p, r: _run(p, r, REQUESTS, CLIENTS))
            for rate in RATES:
                n = int(rate * OPEN_SECONDS)
                rows += _measure(
                    f"{rate:.0f}/s", targets, lambda p, r, n=n, rate=rate: _run(p, r, n, CLIENTS, rate)
                )
        os.sched_setaffinity(0, affinity)
        with _server(tmp, 2) as (port, pids):
            targets = {"trivial": (port, pids, trivial), "check x10": (port, pids, check_x10)}
            rows += _measure("2 workers", targets, lambda p, r: _run(p, r, REQUESTS, CLIENTS))
    _report(rows, load_before)


def _report(rows: list[Row], load_before: tuple[float, float, float]) -> None:
    print(f"HTTP API, {CLIENTS} concurrent keep-alive clients on loopback; uvicorn (uvloop, httptools);")
    if _pin(0):
        print("one worker pinned to CPU 0 and the load generator on CPU 1, except '2 workers' (unpinned):")
    else:
        print("one worker, except '2 workers'; no CPU pinning:")
    one, five, fifteen = load_before
    print(f"load average before the run (other work here skews p99): {one:.2f} {five:.2f} {fifteen:.2f}")
    head = ("load", "endpoint", "requests", "req/s", "p50 ms", "p99 ms", "CPU us/req")
    print(f"{head[0]:<10} {head[1]:<10} {head[2]:>9} {head[3]:>8} {head[4]:>8} {head[5]:>8} {head[6]:>11}")
    for load, name, n, rate, p50, p99, cpu in rows:
        print(f"{load:<10} {name:<10} {n:>9} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>11.0f}")
    by = {(r[0], r[1]): r for r in rows}
    for load in dict.fromkeys(r[0] for r in rows):
        base, real = by[(load, "trivial")], by[(load, "check x10")]
        verdict = "met" if real[5] <= TARGET_P99_MS else "NOT met"
        print(
            f"{load:<10} check/trivial: req/s {real[3] / base[3]:.2f}, p99 {real[5] / base[5]:.2f}x, "
            f"CPU {real[6] / base[6]:.2f}x; target p99 <= {TARGET_P99_MS:g} ms {verdict} "
            f"(check {real[5]:.2f} ms, trivial {base[5]:.2f} ms"
            + (f", floor {by[(load, 'floor')][5]:.2f} ms)" if (load, "floor") in by else ")")
            + (
                f"; NOISY (floor p99 > {NOISY_FLOOR_MS:g} ms: other work on this machine): rerun when idle"
                if (load, "floor") in by and by[(load, "floor")][5] > NOISY_FLOOR_MS
                else ""
            )
        )


if __name__ == "__main__":
    main()
