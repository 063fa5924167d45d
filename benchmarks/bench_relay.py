"""Relay throughput: messages/s through ``typoguard relay`` vs directly into the same next hop, same run.

The next hop is an aiosmtpd server in its own process that accepts and discards (it counts what it got).
``typoguard relay`` runs as a process of its own in front of it (the example's protected domains, content
scanning on, no store). The load generator (this process) runs 4 client threads, each with one persistent
smtplib session sending message after message to one good recipient, first straight to the next hop
("direct"), then through the relay; 10 KB and 1 MB messages of plain text. Each run is bounded in messages
and seconds; the two paths are measured alternately and the median of ``REPEATS`` runs is reported.

    python -m benchmarks --only relay          # or: python -c "import benchmarks.bench_relay as b; b.main()"

Target (issue 8): relay >= 70% of direct messages/s at both sizes.
Environment knobs: BENCH_RELAY_REPEATS (default 3), BENCH_RELAY_SECONDS (per run, default 8).
"""

from __future__ import annotations

import os
import random
import re
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._common import median, start, stop

HOST = "127.0.0.1"  # loopback only, by construction
CLIENTS = 4
REPEATS = int(os.environ.get("BENCH_RELAY_REPEATS", "3"))
MAX_SECONDS = float(os.environ.get("BENCH_RELAY_SECONDS", "8"))
SIZES = ((10 * 1024, 2000), (1024 * 1024, 120))  # (message bytes, at most this many messages per run)
ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "the",
    "meeting",
    "tomorrow",
    "at",
    "noon",
    "about",
    "budget",
    "schedule",
    "for",
    "next",
    "quarter",
    "please",
    "review",
    "attached",
    "draft",
    "and",
    "send",
    "comments",
    "before",
    "friday",
    "regards",
    "logistics",
    "team",
    "motor",
    "pool",
    "inventory",
    "training",
    "range",
    "report",
]

NEXT_HOP = r"""
import asyncio, sys
from aiosmtpd.smtp import SMTP
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 2.0.0 Ok: discarded"
async def main():
    loop = asyncio.get_running_loop()
    handler = Count()
    srv = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, data_size_limit=None, hostname="nexthop.bench"),
        "127.0.0.1", 0)
    print(f"next hop listening on 127.0.0.1:{srv.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def message(size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    head = (
        f"From: Alice <alice@army.mil>\r\nTo: Bob <bob@navy.mil>\r\nSubject: report {seed}\r\n"
        f"Message-ID: <{seed}@bench.army.mil>\r\n\r\n"
    ).encode()
    lines, total = [], len(head)
    while total < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(12)).encode() + b"\r\n"
        lines.append(line)
        total += len(line)
    return head + b"".join(lines)


def measure(port: int, body: bytes, limit: int) -> float:
    """Messages/s of ``CLIENTS`` threads sending ``body`` over persistent sessions, bounded in count/time."""
    sent = [0] * CLIENTS
    errors: list[str] = []
    stop_at = time.monotonic() + MAX_SECONDS
    per_client = max(1, limit // CLIENTS)

    def client(i: int) -> None:
        try:
            with smtplib.SMTP(HOST, port, timeout=60) as s:
                s.ehlo("bench.army.mil")
                while sent[i] < per_client and time.monotonic() < stop_at:
                    refused = s.sendmail("alice@army.mil", ["bob@navy.mil"], body)
                    if refused:
                        errors.append(str(refused))
                        return
                    sent[i] += 1
        except (smtplib.SMTPException, OSError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  errors: {errors[:3]}", file=sys.stderr)
    return sum(sent) / elapsed


def _config(tmp: Path, next_hop: int) -> Path:
    path = tmp / "relay.toml"
    example = ROOT / "examples" / "typoguard.toml"
    text = (
        example.read_text()
        if example.exists()
        else '[protect]\ndomains = ["army.mil", "navy.mil", "gmail.com"]\n'
    )
    # the example's own relay section: replaced by the benchmark's below
    path.write_text(re.sub(r"(?ms)^\[relay\].*?(?=^\[|\Z)", "", text))
    with path.open("a") as f:
        f.write(
            f'\n[relay]\nlisten = "{HOST}:0"\nnext_hop = "{HOST}:{next_hop}"\nnext_hop_tls = "none"\n'
            f'hostname = "relay.bench"\n'
        )
    text = path.read_text()
    if "[store]" in text:  # the example's own store section: point it at the temporary directory
        text = re.sub(r"(?ms)^\[store\].*?(?=^\[|\Z)", "", text)
    text += f'\n[store]\nenabled = false\ndata_dir = "{tmp / "data"}"\n[log]\nlevel = "warning"\n'
    path.write_text(text)
    return path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmpdir:
        tmp = Path(tmpdir)
        hop, hop_port = start(
            [sys.executable, "-c", NEXT_HOP], r"listening on [\d.]+:(\d+)", cwd=tmp, timeout=60, cpu=None
        )
        relay = None
        try:
            relay, relay_port = start(
                [sys.executable, "-c", "from typoguard.cli import main; main()", "relay", "--config",
                 str(_config(tmp, hop_port))], r"typoguard relay: [\d.]+:(\d+)",
                cwd=tmp, timeout=60, cpu=None,
            )  # fmt: skip
            print(
                f"relay over loopback: {CLIENTS} client threads, persistent sessions, one good recipient; "
                f"median of {REPEATS} runs (each at most {MAX_SECONDS:g} s); content scanning on, no store"
            )
            print(f"{'size':>8} {'direct msg/s':>13} {'relay msg/s':>12} {'ratio':>7}  target >= 70%")
            for size, limit in SIZES:
                body = message(size, size)
                measure(hop_port, body, CLIENTS * 2)  # warm up both paths
                measure(relay_port, body, CLIENTS * 2)
                direct, relayed = [], []
                for _ in range(REPEATS):  # alternate, so both see the same machine load
                    direct.append(measure(hop_port, body, limit))
                    relayed.append(measure(relay_port, body, limit))
                d, r = median(direct), median(relayed)
                label = f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"
                verdict = "met" if r >= 0.7 * d else "MISSED"
                print(f"{label:>8} {d:13.1f} {r:12.1f} {r / d:7.0%}  {verdict}")
        finally:
            if relay is not None:
                stop(relay, 30)
            stop(hop, 30)


if __name__ == "__main__":
    main()
