"""Sink throughput: refused RCPTs per second over 32 concurrent SMTP sessions, and its memory.

Two servers, each a separate process pinned to CPU 0; the load generator (this process, asyncio streams) is
pinned to CPU 1:

* **baseline**: a trivial aiosmtpd server whose RCPT hook refuses every recipient with a fixed 550, no
  look-up, no counting: what aiosmtpd's SMTP dialogue costs in this Python on this machine.
* **sink**: ``typoguard sink`` with the example config's protected domains, answering per domain through
  the look-alike index, rendering the hint, counting into the tally and flushing to SQLite every second.

Each of 32 sessions repeats: connect, EHLO, MAIL FROM, ``RCPTS_PER_SESSION`` RCPTs (one at a time, each
reply read and checked), QUIT, until the run's RCPT count or ``MAX_SECONDS`` is reached. Recipients are
fresh local parts at a rotating set of look-alikes (and some domains the sink does not answer for), so the
per-domain cache is exercised as in real traffic but the local parts never repeat. Memory: the sink's RSS
after a warm-up run and after each measured run; flat means no growth per refused recipient.

    python -m benchmarks --only sink

Target (issue 9): >= 2,000 refused RCPTs/s at 32 sessions. Knobs: BENCH_SINK_RCPTS (per run, default
60000), BENCH_SINK_REPEATS (default 3).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import clean_env, cpu_seconds, median, prioritize_and_pin, start, stop

HOST = "127.0.0.1"  # loopback only, by construction
RCPTS = int(os.environ.get("BENCH_SINK_RCPTS", "60000"))
REPEATS = int(os.environ.get("BENCH_SINK_REPEATS", "3"))
SESSIONS = 32
RCPTS_PER_SESSION = 50
MAX_SECONDS = 30.0  # per run
TARGET = 2000.0
ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("army.ml", "gmial.com", "armymil.com", "navy.ml", "hotmial.com", "statee.gov", "example.net")


# --------------------------------------------------------------------------- the baseline server
def _baseline_serve() -> None:
    import logging

    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").disabled = True

    class Refuse:
        async def handle_RCPT(self, server: object, session: object, envelope: object, address: str,  # noqa: N802
                              options: list[str]) -> str:  # fmt: skip
            return "550 5.1.2 Recipient refused"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Refuse(), hostname="baseline", loop=loop), HOST, 0,
                                          backlog=1024)  # fmt: skip
        print(f"baseline listening on {HOST}:{server.sockets[0].getsockname()[1]}", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())


# --------------------------------------------------------------------------- the load generator
@dataclass
class _Counter:
    rcpts: int = 0
    bad: int = 0
    sessions: int = 0
    seq: int = 0


async def _reply(reader: asyncio.StreamReader) -> bytes:
    """One complete (possibly multi-line) reply."""
    while True:
        line = await reader.readline()
        if not line or line[3:4] != b"-":
            return line


async def _session_loop(port: int, quota: int, deadline: float, c: _Counter) -> None:
    while c.rcpts < quota and time.perf_counter() < deadline:
        reader, writer = await asyncio.open_connection(HOST, port)
        await _reply(reader)
        writer.write(b"EHLO load.example\r\n")
        await _reply(reader)
        writer.write(b"MAIL FROM:<sender@provider.example>\r\n")
        await _reply(reader)
        for _ in range(RCPTS_PER_SESSION):
            c.seq += 1
            domain = DOMAINS[c.seq % len(DOMAINS)]
            writer.write(b"RCPT TO:<user%d@%s>\r\n" % (c.seq, domain.encode()))
            line = await _reply(reader)
            c.rcpts += 1
            if not line.startswith(b"550 5."):
                c.bad += 1
                if c.bad <= 2:
                    print(f"  unexpected reply {line[:120]!r}", file=sys.stderr)
        writer.write(b"QUIT\r\n")
        await _reply(reader)
        writer.close()
        await writer.wait_closed()
        c.sessions += 1


async def _load(port: int, total: int) -> _Counter:
    c = _Counter()
    deadline = time.perf_counter() + MAX_SECONDS
    await asyncio.gather(*(_session_loop(port, total, deadline, c) for _ in range(SESSIONS)))
    return c


@dataclass(frozen=True)
class Run:
    rcpts: int
    errors: int
    sessions: int
    seconds: float
    server_cpu: float
    rss_after_mib: float

    @property
    def rate(self) -> float:
        return self.rcpts / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.server_cpu * self.seconds / self.rcpts * 1e6 if self.rcpts else float("nan")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(port: int, pid: int, total: int) -> Run:
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    c = asyncio.run(_load(port, total))
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0) / elapsed
    return Run(c.rcpts, c.bad, c.sessions, elapsed, cpu, _rss_mib(pid))


# --------------------------------------------------------------------------- servers under test
def _config(tmp: Path) -> Path:
    from typoguard.config import load_config

    example = load_config(ROOT / "examples" / "typoguard.toml", environ={})
    quoted = lambda items: ", ".join(f'"{x}"' for x in items)  # noqa: E731
    path = tmp / "sink.toml"
    path.write_text(
        f"[protect]\ndomains = [{quoted(example.protect.domains)}]\n"
        f"trusted = [{quoted(example.protect.trusted)}]\n"
        f'[store]\ndata_dir = "{tmp / "data"}"\n'
        f'[log]\nfile = "{tmp / "sink.log"}"\n'
        f'[sink]\nlisten = ["{HOST}:0"]\ndomains = ["armymil.com"]\nflush_interval = 1.0\n'
        "max_sessions = 1000\nmax_connections_per_network = 1000\n"
        "connections_per_minute_per_network = 10000000\nrcpt_per_minute_per_network = 100000000\n"
    )
    return path


def _counted(tmp: Path) -> int:
    import sqlite3

    con = sqlite3.connect(tmp / "data" / "sink.db")
    try:
        return int(con.execute("SELECT COALESCE(SUM(count), 0) FROM tg_sink_counts").fetchone()[0])
    finally:
        con.close()


def main() -> None:
    priority, pinning = prioritize_and_pin()
    env = clean_env()
    results: dict[str, Run] = {}
    rss: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmpdir:
        tmp = Path(tmpdir)
        servers = {
            "baseline": start([sys.executable, "-m", "benchmarks.bench_sink", "--baseline"],
                              r"listening on [\d.]+:(\d+)", env, cwd=ROOT, timeout=60),
            "sink": start(
                [sys.executable, "-c", "from typoguard.cli import main; main()", "sink", "--config",
                 str(_config(tmp))], r"typoguard sink: [\d.]+:(\d+)", env, timeout=60,
            ),
        }  # fmt: skip
        try:
            runs: dict[str, list[Run]] = {name: [] for name in servers}
            for name, (proc, port) in servers.items():
                measure(port, proc.pid, 3000)  # warm up: caches, first connections
                rss[name] = [_rss_mib(proc.pid)]
            for _ in range(REPEATS):  # interleaved, so both see the same machine load
                for name, (proc, port) in servers.items():
                    run = measure(port, proc.pid, RCPTS)
                    runs[name].append(run)
                    rss[name].append(run.rss_after_mib)
            for name, measured in runs.items():
                results[name] = median(measured, key=lambda r: r.rate)
        finally:
            for proc, _ in servers.values():
                stop(proc, 15)
        counted = _counted(tmp)
    print(
        f"sink over loopback ({pinning}, {priority}); {SESSIONS} concurrent SMTP sessions, "
        f"{RCPTS_PER_SESSION} RCPTs each then QUIT and reconnect; median of {REPEATS} runs of {RCPTS} RCPTs"
    )
    print(
        f"{'server':<9} {'RCPTs':>7} {'errors':>6} {'sessions':>8} {'RCPT/s':>8} {'srv cpu':>7} "
        f"{'cpu us/RCPT':>11} {'vs baseline':>11} {'cpu ratio':>9}  RSS MiB (after warm-up, after each run)"
    )
    base = results["baseline"].rate
    for name in ("baseline", "sink"):
        r = results[name]
        print(
            f"{name:<9} {r.rcpts:>7} {r.errors:>6} {r.sessions:>8} {r.rate:>8.0f} {r.server_cpu:>6.0%} "
            f"{r.cpu_us:>11.1f} {r.rate / base:>11.0%} {results['baseline'].cpu_us / r.cpu_us:>9.0%}  "
            f"{', '.join(f'{m:.1f}' for m in rss[name])}"
        )
    print(
        "cpu ratio: the baseline's server CPU per RCPT / this server's (100% = as cheap);\nwhen 'srv cpu' is "
        "well below 100% the load generator or the machine was the limit; RCPT/s then shows that"
    )
    sink = results["sink"]
    growth = rss["sink"][-1] - rss["sink"][0]
    print(
        f"target >= {TARGET:.0f} refused RCPTs/s: {'met' if sink.rate >= TARGET else 'MISSED'} "
        f"({sink.rate:.0f}/s); sink RSS growth over {REPEATS} runs: {growth:+.1f} MiB; "
        f"attempts counted in the database: {counted}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--baseline"]:
        _baseline_serve()
    else:
        main()
