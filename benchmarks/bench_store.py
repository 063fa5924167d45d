"""The store: decision-writer throughput into SQLite and PostgreSQL, and what the decision log costs the
policy service.

1. **writer decisions/s**: 200,000 decisions (50,000 recipient addresses at 5,000 domains drawn Zipf-like,
   500 senders) submitted at once to a ``DecisionWriter``, timed until the last is committed, correspondents
   learned in the same transactions. SQLite: a WAL file in a temp dir. PostgreSQL: a throwaway local
   cluster started here with durable settings (fsync, synchronous_commit on), if the server is installed.
2. **policy throughput, store off vs on**: the real ``typoguard serve`` (the example's protected domains,
   JSON decision log) three times - ``[store] enabled = false``, SQLite, PostgreSQL - driven by
   ``bench_policyd``'s load generator (real 29-attribute Postfix requests, 8 and 32 persistent
   connections, servers pinned to CPU 0, generator to CPU 1). One server at a time (a writer process
   draining its backlog must not weigh on another variant's run), the variants in turn, best of ``ROUNDS``.
   With the store on, decisions go through the pipe to the writer process (nice 19): at saturation it gets
   only idle CPU, so the table also shows how long ``SIGTERM`` took to drain the backlog and that every
   decision was stored exactly once.

Bounded: about two minutes. Run: ``python -m benchmarks --only store``.
"""

from __future__ import annotations

import importlib.util
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from typoguard.config import StoreConfig
from typoguard.guard import Guard
from typoguard.store import DecisionEvent, DecisionWriter, Store, open_store

N_WRITER = 200_000
N_SERVER = int(os.environ.get("BENCH_STORE_REQUESTS", "40000"))  # per saturated run (about 1 s)
ROUNDS = 3  # best of
SETTLE_SECONDS = 6.0  # after start, before measuring (every variant alike)
SEED = 20261127
PROTECTED = ("army.mil", "navy.mil", "state.gov", "gmail.com", "outlook.com", "comcast.net", "ca.ibm.com")


def _pgcluster() -> Any:
    """tests/store/pgcluster.py (one copy of the throwaway-cluster code for tests and benchmarks)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "store" / "pgcluster.py"
    spec = importlib.util.spec_from_file_location("typoguard_bench_pgcluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _recipients(n: int, guard: Guard) -> list[str]:
    rng = random.Random(SEED)
    partners = [f"partner{i}.example" for i in range(2000)]
    from typoguard.core.names import normalise_domain

    lookalikes = [
        v for d in PROTECTED for v, _k, _s in list(guard.index.variants_of(normalise_domain(d)))[:40]
    ]
    out = []
    for i in range(n):
        if rng.random() < 0.9:
            out.append(f"user{rng.randrange(5000)}@{rng.choice(partners)}")
        else:
            out.append(f"user{i}@{rng.choice(lookalikes)}")
    return out


def _zipf_pool(rng: random.Random, items: list[str], n: int) -> list[str]:
    """``n`` draws from ``items`` with Zipf-like weights (s = 1.1): a few very common, a long tail."""
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(items))]
    return rng.choices(items, weights=weights, k=n)


def _events(n: int) -> list[DecisionEvent]:
    """Decisions as an organisation makes them: 50,000 recipient addresses at 5,000 domains drawn
    Zipf-like, 500 senders; 95% allowed."""
    rng = random.Random(SEED)
    addresses = [f"user{i}@partner{rng.randrange(5000)}.example" for i in range(50_000)]
    rng.shuffle(addresses)
    recipients = _zipf_pool(rng, addresses, n)
    now = time.time()
    out = []
    for i, rcpt in enumerate(recipients):
        out.append(
            DecisionEvent(
                now + i * 1e-4,
                rcpt,
                "allow" if rng.random() < 0.95 else "hold",
                rcpt.rsplit("@", 1)[1],
                sender=f"user{rng.randrange(500)}@army.mil",
                queue_id=f"{i:011X}",
                node="bench",
            )
        )
    return out


def writer_rate(store: Store, events: list[DecisionEvent]) -> tuple[float, DecisionWriter]:
    writer = DecisionWriter(store, queue_size=len(events) + 1, batch_size=2000, flush_interval=0.01)
    started = time.perf_counter()
    for e in events:
        writer.submit(e)
    writer.flush(300)
    elapsed = time.perf_counter() - started
    writer.close()
    return len(events) / elapsed, writer


def _count_rows(config_path: Path) -> int:
    from typoguard.config import load_config

    store = open_store(load_config(config_path, environ={}))
    try:
        return store.count_decisions()
    finally:
        store.close()


def serve_store_ratio(pg_url: str | None, tmp: Path) -> list[tuple[str, ...]]:
    """Rows for the table: ``typoguard serve`` store off / SQLite / PostgreSQL under the same load."""
    from benchmarks import bench_policyd as pd

    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
    variants = [("off", "off"), ("sqlite", "sqlite")] + ([("postgresql", pg_url)] if pg_url else [])
    rates: dict[tuple[str, int], list[Any]] = {}
    sent = {name: 0 for name, _ in variants}
    drained = {name: 0.0 for name, _ in variants}
    configs = {name: pd._config(tmp, store, name=f"serve-{name}") for name, store in variants}
    # One server at a time (its writer process must not compete with another variant's measurement),
    # the three variants in turn, ROUNDS times; the best run of each counts.
    for _round in range(ROUNDS):
        for name, _store in variants:
            cmd = [sys.executable, "-c", "from typoguard.cli import main; main()", "serve", "--config"]
            proc, port = pd._start([*cmd, str(configs[name])], r"policy service: [\d.]+:(\d+)", env)
            time.sleep(SETTLE_SECONDS)  # a service that runs for days: writer started, first snapshots read
            try:
                for conns in (8, 32):
                    run = pd.measure(port, proc.pid, conns, N_SERVER, True if name == "off" else None)
                    rates.setdefault((name, conns), []).append(run)
                    sent[name] += run.requests + min(N_SERVER, 2000)  # the measured run and its warm-up
            finally:
                t0 = time.perf_counter()
                pd._stop_wait(proc, 120)
                drained[name] = max(drained[name], time.perf_counter() - t0)
    rows: list[tuple[str, ...]] = []
    for conns in (8, 32):
        med = {k: max(v, key=lambda r: r.rate) for (k, c), v in rates.items() if c == conns}  # best of
        base = med["off"].rate
        cells = [
            f"{med[n].rate:,.0f} ({med[n].rate / base:.0%})" if n in med else "n/a"
            for n in ("sqlite", "postgresql")
        ]
        rows.append(
            (
                f"typoguard serve, {conns} conns, saturated: req/s",
                f"{base:,.0f}",
                *cells,
                ">= 90% of store off",
            )
        )
        p99 = [f"{med[n].p99_us:,.0f}" if n in med else "n/a" for n in ("off", "sqlite", "postgresql")]
        rows.append((f"  p99 latency at {conns} conns (us)", *p99, "(shown)"))
        cpu = [f"{med[n].cpu_us:.1f}" if n in med else "n/a" for n in ("off", "sqlite", "postgresql")]
        label = f"  service CPU per request at {conns} conns (us)"
        rows.append((label, *cpu, "(writer process not counted)"))
    stored = []
    for name in ("sqlite", "postgresql"):
        if name not in configs:
            stored.append("n/a")
            continue
        n = _count_rows(configs[name])
        stored.append(f"{n:,} of {sent[name]:,} (longest drain {drained[name]:.1f} s)")
    rows.append(
        ("  stored after SIGTERM drained the writer", f"stop {drained['off']:.1f} s", *stored, "all, once")
    )
    return rows


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="typoguard-bench-store-"))
    events = _events(N_WRITER)

    stores: list[tuple[str, Store]] = []
    sqlite_store = open_store(StoreConfig(data_dir=str(tmp / "sqlite"), spool_dir=str(tmp / "spool1")))
    stores.append(("sqlite", sqlite_store))
    cluster = None
    pg = _pgcluster()
    if pg.pg_bin_dir() is not None:
        cluster = pg.PgCluster(fast=False).init()
        cluster.start()
        pg_store = open_store(
            StoreConfig(url=cluster.create_database("bench"), spool_dir=str(tmp / "spool2"))
        )
        stores.append(("postgresql", pg_store))
    else:
        print("PostgreSQL server binaries not found: PostgreSQL rows skipped (scripts/install-postgres.sh)")

    rows: list[tuple[str, ...]] = [("measurement", "store off", "sqlite", "postgresql", "target")]
    try:
        writer_cells = []
        for _name, store in stores:
            rate, w = writer_rate(store, events)
            writer_cells.append(f"{rate:,.0f}/s (spooled {w.spooled}, dropped {w.dropped})")
        while len(writer_cells) < 2:
            writer_cells.append("n/a")
        rows.append(("writer decisions/s", "-", *writer_cells, ">= 20,000/s on SQLite"))

        pg_url = cluster.create_database("serve") if cluster is not None else None
        rows.extend(serve_store_ratio(pg_url, tmp))
    finally:
        for _name, store in stores:
            store.close()
        if cluster is not None:
            cluster.destroy()
    _table(rows)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(bench_store took {time.perf_counter() - started:.0f} s, peak RSS {rss:.0f} MiB)")


# --------------------------------------------------------------------------- the replay path alone
def _replay_rows(store: Store, rows: list[dict[str, Any]]) -> int:
    from typoguard.store.decisions import ROW_TUPLE

    return store.write_decisions([ROW_TUPLE(r) for r in rows], replay=True)


def replay_main(n: int = 40_000, batch: int = 1000) -> None:
    """``n`` decisions in batches of ``batch`` through each path into a fresh SQLite and PostgreSQL
    database: ``write_decisions`` (the pipe's path), ``write_decisions(replay=True)`` (duplicate check) and
    a spool file replayed (JSON lines read back, then the duplicate check): seconds each."""
    from functools import partial

    from typoguard.store.decisions import row_dict
    from typoguard.store.spool import Spool

    events = _events(n)
    tmp = Path(tempfile.mkdtemp(prefix="typoguard-bench-replay-"))
    pg = _pgcluster()
    cluster = pg.PgCluster(fast=False).init() if pg.pg_bin_dir() is not None else None
    configs = [("sqlite", StoreConfig(data_dir=str(tmp / "sqlite"), spool_dir=str(tmp / "spool-sqlite")))]
    if cluster is not None:
        cluster.start()
        url = cluster.create_database("replay")
        configs.append(("postgresql", StoreConfig(url=url, spool_dir=str(tmp / "spool-pg"))))
    try:
        for name, config in configs:
            store = open_store(config)
            cells = []
            for path in ("direct", "replay", "spool"):
                rows = [e.values(f"{path}-{i:020d}") for i, e in enumerate(events)]
                if path == "spool":
                    spool = Spool(tmp / f"replay-{name}")
                    for i in range(0, n, batch):
                        spool.append([row_dict(r) for r in rows[i : i + batch]])
                    spool.rotate()
                t0 = time.perf_counter()
                if path == "spool":
                    spool.replay(partial(_replay_rows, store), batch)
                else:
                    for i in range(0, n, batch):
                        store.write_decisions(rows[i : i + batch], replay=path == "replay")
                cells.append(f"{path} {time.perf_counter() - t0:.2f} s")
            store.close()
            print(f"{n:,} decisions into {name:10}: {', '.join(cells)}", flush=True)
    finally:
        if cluster is not None:
            cluster.destroy()


# --------------------------------------------------------------------------- the drain alone
def drain_main(backends: list[str], runs: int) -> None:
    """Only the SIGTERM drain: per run a fresh ``typoguard serve`` (one backend), the same saturating load
    as ``serve_store_ratio`` (8 then 32 connections, ``N_SERVER`` requests each after a warm-up), then
    SIGTERM; prints the seconds until the service exited and what was stored. The service's standard error
    (the writer process's log) is kept in the run's directory."""
    import subprocess

    from benchmarks import bench_policyd as pd
    from benchmarks._common import pin

    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
    cluster = None
    pg = _pgcluster()
    if "postgresql" in backends and pg.pg_bin_dir() is not None:
        cluster = pg.PgCluster(fast=False).init()
        cluster.start()
    try:
        for backend in backends:
            for run in range(runs):
                tmp = Path(tempfile.mkdtemp(prefix="typoguard-bench-drain-"))
                store = "sqlite" if backend == "sqlite" else cluster.create_database() if cluster else ""
                if not store:
                    print("PostgreSQL server binaries not found: skipped")
                    break
                config = pd._config(tmp, store, name=f"serve-{backend}")
                cmd = [sys.executable, "-c", "from typoguard.cli import main; main()", "serve", "--config"]
                with (tmp / "stderr.log").open("w") as err:
                    proc = subprocess.Popen(
                        [*cmd, str(config)], stdout=subprocess.PIPE, stderr=err, text=True, env=env
                    )
                    pin(proc.pid, 0)
                    assert proc.stdout is not None
                    port = 0
                    for line in proc.stdout:
                        m = __import__("re").search(r"policy service: [\d.]+:(\d+)", line)
                        if m:
                            port = int(m.group(1))
                            break
                    time.sleep(SETTLE_SECONDS)
                    sent = 0
                    for conns in (8, 32):
                        r = pd.measure(port, proc.pid, conns, N_SERVER, None)
                        sent += r.requests + min(N_SERVER, 2000)
                    t0 = time.perf_counter()
                    pd._stop_wait(proc, 120)
                    drain = time.perf_counter() - t0
                n = _count_rows(config)
                print(
                    f"drain {backend:10} run {run + 1}: {drain:.1f} s, exit {proc.returncode}, "
                    f"stored {n:,} of {sent:,} (log {tmp / 'stderr.log'})",
                    flush=True,
                )
    finally:
        if cluster is not None:
            cluster.destroy()


# --------------------------------------------------------------------------- decisions lost per kill -9
def _tests_module(name: str) -> Any:
    """A helper module from tests/store/ (one copy for tests and benchmarks)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "store" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"typoguard_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _stored_recipients(config_path: Path) -> list[str]:
    from typoguard.config import load_config
    from typoguard.store import DecisionQuery

    store = open_store(load_config(config_path, environ={}))
    try:
        return [r.event.recipient for r in store.decisions(DecisionQuery(limit=10_000_000))]
    finally:
        store.close()


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if stat[0] == "Z":
            return
        time.sleep(0.05)


def kill_loss(target: str, tmp: Path, url: str = "", seconds: float = 3.0) -> tuple[int, int, int]:
    """``kill -9`` the writer process or the service itself in the middle of ``seconds`` of saturating load
    (8 connections, unique recipients), count after a SIGTERM (the service killed: after a restart and a
    SIGTERM): (answered, answered but not stored, stored twice)."""
    import signal

    serve_process = _tests_module("serve_process")
    policy_load = _tests_module("policy_load")
    exe = str(Path(sys.executable).with_name("typoguard"))
    node = serve_process.ServeProcess(exe, tmp, node="kill", url=url).start()
    time.sleep(1.0)
    load = policy_load.PolicyLoad(node.address, conns=8).start()
    try:
        time.sleep(seconds / 2)
        victim = node.writer_pid() if target == "writer" else node.proc.pid
        os.kill(victim, signal.SIGKILL)
        if target == "writer":  # the service answers on and starts a new writer
            time.sleep(seconds / 2)
        answered = load.stop()
    finally:
        load.stop()
    if target == "writer":
        assert node.stop() == 0
    else:
        node.proc.wait(10)
        writer = node.writer_pid()
        if writer is not None:
            _wait_gone(writer, 120)  # the orphaned writer stores what the pipe holds, then exits
        node.start()  # as systemd would (Restart=): the new writer stores what was spilled
        assert node.stop() == 0
    stored = _stored_recipients(node.config)
    lost = len(set(answered) - set(stored))
    return len(answered), lost, len(stored) - len(set(stored))


def kill_main(targets: list[str], runs: int) -> None:
    cluster = None
    pg = _pgcluster()
    if pg.pg_bin_dir() is not None:
        cluster = pg.PgCluster().init()
        cluster.start()
    try:
        for target in targets:
            for backend in ("sqlite", "postgresql"):
                if backend == "postgresql" and cluster is None:
                    continue
                for run in range(runs):
                    tmp = Path(tempfile.mkdtemp(prefix="typoguard-bench-kill-"))
                    url = cluster.create_database() if backend == "postgresql" else ""
                    answered, lost, twice = kill_loss(target, tmp, url)
                    # the service killed half-way: its answers came at about answered / (seconds / 2) per s
                    ms = lost / max(1, answered) * 1500
                    span = f", about {ms:.0f} ms of answers" if target == "service" else ""
                    print(
                        f"kill -9 {target:7} {backend:10} run {run + 1}: answered {answered:,}, "
                        f"lost {lost:,} ({lost / max(1, answered):.2%}{span}), stored twice {twice:,}",
                        flush=True,
                    )
    finally:
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kill", action="append", choices=["writer", "service"], help="kill -9 measurement")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--drain", action="append", choices=["sqlite", "postgresql"], help="only the SIGTERM drain"
    )
    parser.add_argument("--replay", action="store_true", help="only the replay path against the pipe's")
    args = parser.parse_args()
    if args.replay:
        replay_main()
    elif args.drain:
        drain_main(args.drain, args.runs)
    elif args.kill:
        kill_main(args.kill, args.runs)
    else:
        main()
