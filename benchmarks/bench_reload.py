"""A SIGHUP reload of 10,000 protected domains, and the policy answers meanwhile.

``typoguard serve --only policyd`` starts (pinned to CPU 0) with 10,000 generated protected domains (made
deterministically: pronounceable names under real suffixes). One probe connection sends an ordinary
request (``bob@army.ml``, a reject) every 5 ms, as Postfix's smtpd does, and times each answer. After
``BEFORE`` seconds it sends SIGHUP: the service reads the config again and compiles the new index in a
worker thread while the event loop keeps answering. Printed: the probe's p50/p99/max before the SIGHUP
(the baseline, same run) and from the SIGHUP to the end, how many answers took over 4 ms, the pauses over
10 ms (seconds after the SIGHUP, length), and the reload's own time from the service's ``reloaded`` record.

    flock -x /tmp/tg-machine.lock .venv/bin/python -m benchmarks.bench_reload   # or --only reload

``BENCH_RELOAD_DOMAINS`` (default 10000), ``BENCH_RELOAD_SECONDS`` (probe time after the SIGHUP, default 15).
Bounded: the probe stops by itself; the service is stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks._common import clean_env, pin, start, stop

DOMAINS = int(os.environ.get("BENCH_RELOAD_DOMAINS", "10000"))
AFTER = float(os.environ.get("BENCH_RELOAD_SECONDS", "15"))
BEFORE = 3.0
PROBE_EVERY = 0.005
SUFFIXES = ("com", "net", "org", "mil", "gov", "de", "co.uk", "fr", "com.au", "ca", "edu")
REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=127.0.0.1\n"
    b"client_name=unknown\nsender=alice@army.mil\nrecipient=bob@army.ml\nqueue_id=\nsasl_username=\n\n"
)
CONFIG = """
[protect]
domains = ["army.mil", "gmail.com"]
files = ["{domains}"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:0"
metrics_listen = ""
[log]
file = "{log}"
[store]
enabled = false
"""


def domains(n: int) -> list[str]:
    rng = random.Random(5)
    names: set[str] = set()
    while len(names) < n:
        syllables = rng.randint(2, 5)
        label = "".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(syllables))
        names.add(f"{label}.{rng.choice(SUFFIXES)}")
    return sorted(names)


async def probe(port: int, until: float, times: list[tuple[float, float]]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            writer.write(REQUEST)
            reply = await reader.readuntil(b"\n\n")
            times.append((time.monotonic(), time.perf_counter() - t0))
            if not reply.startswith(b"action=550"):
                raise RuntimeError(f"probe got {reply!r}")
            await asyncio.sleep(PROBE_EVERY)
    finally:
        writer.close()


def _summary(values: list[float]) -> str:
    v = sorted(values)
    if not v:
        return "no answers"
    return (
        f"{len(v):,} answers, p50 {v[len(v) // 2] * 1e3:.2f} ms, p99 {v[int(len(v) * 0.99)] * 1e3:.2f} ms, "
        f"max {v[-1] * 1e3:.2f} ms"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="typoguard-reload-") as tmpdir:
        tmp = Path(tmpdir)
        listed = tmp / "protected.txt"
        listed.write_text("\n".join(domains(DOMAINS)) + "\n")
        config = tmp / "t.toml"
        config.write_text(CONFIG.format(domains=listed, log=tmp / "decisions.jsonl"))
        exe = str(Path(sys.executable).with_name("typoguard"))
        proc, port = start(
            [exe, "serve", "--config", str(config), "--only", "policyd"],
            r"policy service: 127\.0\.0\.1:(\d+)",
            clean_env(),
            timeout=180,
        )
        times: list[tuple[float, float]] = []
        try:
            pin(os.getpid(), 1)

            async def run() -> float:
                until = time.monotonic() + BEFORE + AFTER

                async def hangup() -> float:
                    await asyncio.sleep(BEFORE)
                    proc.send_signal(signal.SIGHUP)
                    return time.monotonic()

                task = asyncio.create_task(hangup())
                await probe(port, until, times)
                return await task

            hupped = asyncio.run(run())
        finally:
            stop(proc)
        records = [orjson.loads(line) for line in (tmp / "decisions.jsonl").read_bytes().splitlines()]
    reloads = [r for r in records if r.get("event") in ("reloaded", "reload_failed")]
    before = [t for at, t in times if at < hupped]
    after = [t for at, t in times if at >= hupped]
    pauses = [(round(at - hupped, 2), round(t * 1e3, 1)) for at, t in times if at >= hupped and t > 0.010]
    outcome = ", ".join(
        f"{r['event']} ({r.get('protected', '?')} protected, {r.get('seconds', '?')} s)" for r in reloads
    )
    print(
        f"SIGHUP reload of {DOMAINS:,} protected domains under a probe every {PROBE_EVERY * 1e3:.0f} ms: "
        f"{outcome or 'no reload record'}\n"
        f"  before the SIGHUP (baseline): {_summary(before)}\n"
        f"  from the SIGHUP on:           {_summary(after)}; "
        f"{sum(t > 0.004 for t in after)} over 4 ms\n"
        f"  pauses over 10 ms (s after the SIGHUP, ms): {pauses}",
        flush=True,
    )


if __name__ == "__main__":
    main()
