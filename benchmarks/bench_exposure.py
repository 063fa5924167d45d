"""Exposure scan speed against a real authoritative DNS server on 127.0.0.1 (tests/exposure/dns_server.py,
run as its own process so it does not share the client's event loop).

* DNS queries/s: 20,000 distinct names (NXDOMAIN, the common case for look-alikes), concurrency 200,
  through ``ExposureResolver`` (dnspython's asyncio resolver). Target >= 2,000 queries/s.
* End to end: ``typoguard exposure`` for 100 protected domains (every look-alike, all typo models) with the
  server answering; ~5% of look-alikes registered (MX at one of 8 catch-all providers, A only, null MX, NS
  only). Target: minutes on one machine (< 180 s). The protected domains themselves are served too: the
  scan asks them before and after (ADR 0019), one query each per check.

Run with ``python -m benchmarks --only exposure``. About a minute; bounded by the timeouts below.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.bench_detection import protected_domains
from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.core.names import normalise_domain
from typoguard.exposure.classify import count_by_status, group_by_provider
from typoguard.exposure.model import Exposure
from typoguard.exposure.resolve import ExposureResolver, ResolverSettings
from typoguard.exposure.scan import candidates, scan
from typoguard.guard import Guard

SEED = 20261127
SERVER = Path(__file__).resolve().parent.parent / "tests" / "exposure" / "dns_server.py"
N_QPS = 20_000
N_PROTECTED = 100
CONCURRENCY = 200
PROVIDERS = [f"mx{i}.catchall{i}.example." for i in range(8)]


def _zones(lookalikes: list[str], rng: random.Random) -> dict[str, dict[str, list[str]]]:
    zones: dict[str, dict[str, list[str]]] = {}
    for name in rng.sample(lookalikes, len(lookalikes) // 20):
        roll = rng.random()
        records: dict[str, list[str]] = {"NS": ["ns1.parking.example."]}
        if roll < 0.6:
            records["MX"] = [f"10 {rng.choice(PROVIDERS)}"]
        elif roll < 0.8:
            records["A"] = ["192.0.2.7"]
        elif roll < 0.9:
            records["MX"] = ["0 ."]
        zones[name] = records
    return zones


def _start_server(zones: dict[str, dict[str, list[str]]], tmp: Path) -> tuple[subprocess.Popen[str], int]:
    spec = tmp / "zones.json"
    spec.write_text(json.dumps({"zones": zones}))
    proc = subprocess.Popen([sys.executable, str(SERVER), str(spec)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def bench_qps(port: int) -> tuple[float, int]:
    registrable = resources.model_context().suffixes.registrable
    settings = ResolverSettings(("127.0.0.1",), port=port, timeout=2.0, retries=1, concurrency=CONCURRENCY)

    async def run() -> tuple[float, int]:
        resolver = ExposureResolver(settings, registrable)
        names = [f"q{i}-bench.example" for i in range(N_QPS)]
        started = time.perf_counter()
        answers = await resolver.resolve_many(names)
        elapsed = time.perf_counter() - started
        return resolver.queries / elapsed, sum(1 for a in answers.values() if a.error)

    return asyncio.run(run())


def _diffing(results: list[Exposure]) -> tuple[str, str, str, str]:
    """The watch's comparison with the last run (issue 19): every result against a previous run in which
    5% of them differ, as ``typoguard watch`` does after each scan (the DNS is the round's cost, not this)."""
    from typoguard.exposure.model import Snapshot, Status
    from typoguard.watch.changes import carry_unknown, exposure_observations

    rng = random.Random(SEED + 1)
    flipped = {r.lookalike for r in rng.sample(results, len(results) // 20)}
    before = Snapshot("2026-01-01T00:00:00Z", tuple(
        replace(r, status=Status.UNREGISTERED, mail_hosts=(), provider="") if r.lookalike in flipped else r
        for r in results
    ))  # fmt: skip
    started = time.perf_counter()
    found = exposure_observations(before, carry_unknown(before, results), squatter_min=3)
    elapsed = time.perf_counter() - started
    return ("  diff with the last run (watch)", f"{elapsed * 1000:.0f} ms", "", f"{len(found):,} events")


def main() -> None:
    rng = random.Random(SEED)
    protected = protected_domains(N_PROTECTED, SEED)
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(protected))))
    targets = [normalise_domain(d) for d in protected]
    todo = candidates(guard.index, targets)
    distinct = sorted({c.lookalike for c in todo})
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-") as tmpdir:
        zones = _zones(distinct, rng)
        for d in targets:  # the protected domains exist: the scan checks that before and after (ADR 0019)
            zones[d.ascii] = {"NS": [f"ns1.{d.ascii}."], "MX": [f"10 mx.{d.ascii}."]}
        proc, port = _start_server(zones, Path(tmpdir))
        try:
            qps, errors = bench_qps(port)
            rows.append(
                (
                    "DNS queries/s (NXDOMAIN, concurrency 200)",
                    f"{qps:,.0f}",
                    ">= 2,000",
                    "ok" if qps >= 2000 and not errors else f"MISSED ({errors} errors)",
                )
            )
            settings = ResolverSettings(
                ("127.0.0.1",), port=port, timeout=2.0, retries=1, concurrency=CONCURRENCY
            )
            registrable = resources.model_context().suffixes.registrable
            started = time.perf_counter()
            results, queries = asyncio.run(scan(todo, settings, registrable))
            elapsed = time.perf_counter() - started
        finally:
            proc.kill()
            proc.wait()
    counts = count_by_status(results)
    groups = group_by_provider(results)
    print(f"inputs: {N_PROTECTED} protected domains, {len(todo):,} look-alikes ({len(distinct):,} distinct)")
    print("statuses: " + ", ".join(f"{s.value} {n:,}" for s, n in counts.items()))
    print(
        f"providers receiving mail: {len(groups)}; largest: {groups[0].provider} with "
        f"{len(groups[0].lookalikes)} look-alikes"
        if groups
        else "providers: none"
    )
    rows.append(
        (
            "exposure of 100 domains, end to end",
            f"{elapsed:.1f} s",
            "< 180 s",
            "ok" if elapsed < 180 else "MISSED",
        )
    )
    rows.append(("  its queries/s", f"{queries / elapsed:,.0f}", "", f"{queries:,} queries"))
    rows.append(_diffing(results))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>10}  {'target':>9}  verdict")
    for what, result, target, verdict in rows:
        print(f"{what:<{width}}  {result:>10}  {target:>9}  {verdict}")


if __name__ == "__main__":
    main()
