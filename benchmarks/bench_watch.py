"""One ``typoguard watch`` round over 100 protected domains against the benchmark's DNS server
(tests/exposure/dns_server.py as its own process, the zones of ``bench_exposure``), with a SQLite store:

* the first round (no history: every look-alike accepting mail becomes an event) and a second, unchanged
  round (the steady state: no event): seconds, DNS queries, new events, the process's peak memory.

Run with ``python -m benchmarks --only watch``. About a minute (two scans).
"""

from __future__ import annotations

import random
import resource
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmarks.bench_detection import protected_domains
from benchmarks.bench_exposure import N_PROTECTED, SEED, _start_server, _zones
from typoguard.config import Config, ProtectConfig, StoreConfig, WatchConfig
from typoguard.core.names import normalise_domain
from typoguard.exposure.scan import candidates
from typoguard.guard import Guard
from typoguard.store import open_store
from typoguard.watch.round import run_round


def main() -> None:
    rng = random.Random(SEED)
    protected = protected_domains(N_PROTECTED, SEED)
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(protected))))
    targets = [normalise_domain(d) for d in protected]
    distinct = sorted({c.lookalike for c in candidates(guard.index, targets)})
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-") as tmpdir:
        zones = _zones(distinct, rng)
        for d in targets:
            zones[d.ascii] = {"NS": [f"ns1.{d.ascii}."], "MX": [f"10 mx.{d.ascii}."]}
        proc, port = _start_server(zones, Path(tmpdir))
        config = replace(
            guard.config,
            store=StoreConfig(data_dir=str(Path(tmpdir, "data"))),
            watch=WatchConfig(resolver=(f"127.0.0.1:{port}",), retries=1),
        )
        store = open_store(config)
        try:
            reports = [run_round(config, guard, store) for _ in range(2)]
        finally:
            store.close()
            proc.kill()
            proc.wait()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"inputs: {N_PROTECTED} protected domains, {len(distinct):,} distinct look-alikes")
    for name, r in zip(("first round (no history)", "second round (unchanged)"), reports, strict=True):
        assert r.ok, r.failure
        print(
            f"{name:<26} {r.seconds:6.1f} s  {r.queries:>8,} DNS queries  {len(r.new_events):>5,} new events"
        )
    print(f"peak memory (RSS) of the process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
