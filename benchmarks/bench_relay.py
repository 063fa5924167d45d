"""Relay throughput: messages/s through ``typoguard relay`` vs directly into the same next hop, same run.

The next hop is an aiosmtpd server in its own process that accepts and discards (it counts what it got).
``typoguard relay`` runs as a process of its own in front of it (the example's protected domains, content
scanning on, no store). The load generator (this process) runs 4 client threads, each with one persistent
smtplib session sending message after message to one good recipient, first straight to the next hop
("direct"), then through the relay; 10 KB and 1 MB messages of plain text. Each run is bounded in messages
and seconds; the paths are measured alternately and the median of ``REPEATS`` runs is reported.

Two relay rows per size: mail to an internal recipient (``bob@navy.mil``: no content rule can change its
decision, so with the default ``content_scan = "when-relevant"`` the relay does not scan it), and mail to a
flagged recipient (``joe@gmail.net``, a *warn*: the content decides whether it is held, so it is scanned;
the text has nothing sensitive, so it is delivered with the warning header). CPU per message is the CPU
seconds (from /proc) each process used in a run divided by the messages sent: the load generator (this
process), the next hop and the relay.

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

from benchmarks._common import cpu_seconds, median, start, stop

HOST = "127.0.0.1"  # loopback only, by construction
GOOD = "bob@navy.mil"  # protected and internal: no content rule can change its decision
FLAGGED = "joe@gmail.net"  # warn (gmail.com with .net): sensitive content would hold it
CLIENTS = 4
REPEATS = int(os.environ.get("BENCH_RELAY_REPEATS", "3"))
MAX_SECONDS = float(os.environ.get("BENCH_RELAY_SECONDS", "8"))
# (message bytes, at most this many messages per run: about 2-3 s each; the relay allows 1,000 per session)
SIZES = ((10 * 1024, 3600), (1024 * 1024, 120))
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

ACRONYMS = ["USA", "DoD", "NATO", "HQ", "ASAP", "FYI", "ETA", "POC"]

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
    """Plain-text mail of ``size`` bytes written like prose: capitalised sentences, an acronym in one line of
    five and a number in one of ten (what the content scan's prefilters meet in real mail; all lower-case
    words would let them skip most of their work), nothing sensitive."""
    rnd = random.Random(seed)
    head = (
        f"From: Alice <alice@army.mil>\r\nTo: Bob <bob@navy.mil>\r\nSubject: Report {seed}\r\n"
        f"Message-ID: <{seed}@bench.army.mil>\r\n\r\n"
    ).encode()
    lines, total = [], len(head)
    while total < size:
        words = [rnd.choice(WORDS) for _ in range(12)]
        words[0] = words[0].capitalize()
        if rnd.random() < 0.2:
            words[5] = rnd.choice(ACRONYMS)
        if rnd.random() < 0.1:
            words[7] = str(rnd.randint(1, 9999))
        line = (" ".join(words) + ".\r\n").encode()
        lines.append(line)
        total += len(line)
    return head + b"".join(lines)


def measure(port: int, body: bytes, limit: int, rcpt: str, pids: list[int]) -> tuple[float, list[float]]:
    """Messages/s of ``CLIENTS`` threads sending ``body`` to ``rcpt`` over persistent sessions, bounded in
    count/time, and the CPU milliseconds per message of each process in ``pids``."""
    sent = [0] * CLIENTS
    errors: list[str] = []
    stop_at = time.monotonic() + MAX_SECONDS
    per_client = max(1, limit // CLIENTS)

    def client(i: int) -> None:
        try:
            with smtplib.SMTP(HOST, port, timeout=60) as s:
                s.ehlo("bench.army.mil")
                while sent[i] < per_client and time.monotonic() < stop_at:
                    refused = s.sendmail("alice@army.mil", [rcpt], body)
                    if refused:
                        errors.append(str(refused))
                        return
                    sent[i] += 1
        except (smtplib.SMTPException, OSError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    cpu0 = [cpu_seconds(pid) for pid in pids]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu = [(cpu_seconds(pid) - c) * 1000 / max(1, sum(sent)) for pid, c in zip(pids, cpu0, strict=True)]
    if errors:
        print(f"  errors: {errors[:3]}", file=sys.stderr)
    return sum(sent) / elapsed, cpu


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
    for section in ("store", "log"):  # the example's own: replaced below (the store in the temporary dir)
        text = re.sub(rf"(?ms)^\[{section}\].*?(?=^\[|\Z)", "", text)
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
                f"relay over loopback: {CLIENTS} client threads, persistent sessions, one recipient; median "
                f"of {REPEATS} runs (each at most {MAX_SECONDS:g} s); content_scan default, no store"
            )
            print(
                f"{'size':>6} {'path':<28} {'msg/s':>8} {'ratio':>6} {'(best)':>6}   "
                "CPU ms/msg: generator  next hop  relay"
            )
            pids = [os.getpid(), hop.pid, relay.pid]
            paths = (
                ("direct", hop_port, GOOD),
                ("relay, internal (not scanned)", relay_port, GOOD),
                ("relay, flagged (scanned)", relay_port, FLAGGED),
            )
            for size, limit in SIZES:
                body = message(size, size)
                for _, port, rcpt in paths:  # warm up every path
                    measure(port, body, CLIENTS * 2, rcpt, pids)
                runs: list[list[tuple[float, list[float]]]] = [[] for _ in paths]
                for _ in range(REPEATS):  # alternate, so every path sees the same machine load
                    for i, (_, port, rcpt) in enumerate(paths):
                        runs[i].append(measure(port, body, limit, rcpt, pids))
                label = f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"
                for i, (name, _, _) in enumerate(paths):
                    rate, cpu = median(runs[i], key=lambda run: run[0])
                    # the ratio of each run to the direct run next to it: median and best
                    ratios = [r[0] / d[0] for d, r in zip(runs[0], runs[i], strict=True)]
                    ratio = f"{median(ratios):6.0%} {max(ratios):6.0%}" if i else " " * 13
                    relay_cpu = f"{cpu[2]:6.2f}" if i else "     -"
                    print(
                        f"{label:>6} {name:<28} {rate:8.1f} {ratio}   {'':>11}{cpu[0]:9.2f} {cpu[1]:9.2f} "
                        f"{relay_cpu}"
                    )
                    label = ""
            print("target (issue 8): relay >= 70% of direct at both sizes")
        finally:
            if relay is not None:
                stop(relay, 30)
            stop(hop, 30)


if __name__ == "__main__":
    main()
