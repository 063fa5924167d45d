"""The store: decision-writer throughput into SQLite and PostgreSQL, and what the decision log costs the
policy service.

1. **writer decisions/s**: 200,000 decisions (50,000 recipient addresses at 5,000 domains drawn Zipf-like,
   500 senders) submitted at once to a ``DecisionWriter``, timed until the last is committed, correspondents
   learned in the same transactions. SQLite: a WAL file in a temp dir. PostgreSQL: a throwaway local
   cluster started here with durable settings (fsync, synchronous_commit on), if the server is installed.
2. **policy throughput, store off vs on**: an asyncio stand-in for the policy service (read a Postfix policy
   request of 26 attributes, parse it, ``guard.check`` the recipient, reply; with the store also build a
   ``DecisionEvent`` and ``writer.submit`` it) driven over a unix socket by a load-generator process with 16
   connections, each waiting for its reply as smtpd does. Saturated (as fast as it goes: the target is
   >= 90% of store off) and paced at 5,000 req/s (CPU per request, the writer included). Off and on runs are
   interleaved and the best of two kept: the machine may be shared.
3. The same work as a bare loop without I/O, the floor that shows the raw per-decision cost.

Bounded: about two minutes. Run: ``python -m benchmarks --only store``.
"""

from __future__ import annotations

import importlib.util
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from typoguard.config import Config, ProtectConfig, StoreConfig
from typoguard.service import Guard
from typoguard.store import DecisionEvent, DecisionWriter, Store, open_store

N_WRITER = 200_000
N_POLICY = 150_000  # requests in the in-process loop
N_SERVER = 40_000  # requests per saturated socket run
N_PACED = 15_000  # requests per paced socket run (3 s)
REPEAT = 2  # best of
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


_REQUEST = (
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nhelo_name=client.army.mil\n"
    "queue_id=8045F2AB23\nsender=alice@army.mil\nrecipient={rcpt}\nrecipient_count=0\n"
    "client_address=10.1.2.3\nclient_name=client.army.mil\nreverse_client_name=client.army.mil\n"
    "instance=123.456.7\nsasl_method=plain\nsasl_username=alice\nsasl_sender=\nsize=12345\n"
    "ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\netrn_domain=\nstress=\n"
    "server_address=10.0.0.1\n\n"
)

# The load generator: CONNECTIONS connections, each sending one request and waiting for its reply, as
# Postfix's smtpd processes do; requests are read from a file, one per line (the recipient).
_CLIENT = r"""
import asyncio, sys
path, rcpt_file = sys.argv[1], sys.argv[2]
connections, rate, n = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
template = sys.stdin.read()
rcpts = open(rcpt_file).read().split()[:n]
async def conn(part):
    reader, writer = await asyncio.open_unix_connection(path)
    start, per_conn = asyncio.get_running_loop().time(), rate / connections
    for k, r in enumerate(part):
        if rate > 0:
            ahead = start + k / per_conn - asyncio.get_running_loop().time()
            if ahead > 0:
                await asyncio.sleep(ahead)
        writer.write(template.replace("{rcpt}", r).encode())
        await reader.readuntil(b"\n\n")
    writer.close()
async def main():
    await asyncio.gather(*(conn(rcpts[i::connections]) for i in range(connections)))
asyncio.run(main())
"""
CONNECTIONS = 16
_STATS: list[tuple[int, int, int]] = []  # (backlog when the run ended, spooled, dropped) per store-on run
PACED_RATE = 5_000.0  # requests/s offered in the paced run


def _policy_server_rate(
    guard: Guard, store: Store | None, rcpt_file: Path, n: int, tmp: Path, *, rate: float = 0.0
) -> float:
    """An asyncio stand-in for the policy service (read a request, parse its attributes, ``guard.check``,
    reply; with a store also build a ``DecisionEvent`` and ``writer.submit`` it) driven over a unix socket
    by a separate load-generator process. ``rate`` 0: as fast as it goes, returns requests/s. Otherwise the
    load is offered at ``rate`` requests/s and the result is requests per CPU-second of this process (all
    threads: the writer's work counts), measured until the writer has stored everything."""
    import asyncio
    import subprocess

    writer = DecisionWriter(store) if store is not None else None
    submit = writer.submit if writer is not None else None
    check = guard.check
    path = str(tmp / f"policy-{time.monotonic_ns()}.sock")

    async def handle(reader: asyncio.StreamReader, out: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await reader.readuntil(b"\n\n")
                attrs = dict(line.split("=", 1) for line in raw.decode().split("\n") if line)
                verdict = check(attrs["recipient"])
                if submit is not None:
                    submit(
                        DecisionEvent.from_verdict(
                            verdict, sender=attrs["sender"], queue_id=attrs["queue_id"], node="bench"
                        )
                    )
                reply = "action=DUNNO\n\n" if not verdict.flagged else f"action=HOLD {verdict.reason}\n\n"
                out.write(reply.encode())
        except asyncio.IncompleteReadError:
            out.close()

    async def run() -> float:
        server = await asyncio.start_unix_server(handle, path)
        started = time.perf_counter()
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENT, path, str(rcpt_file), str(CONNECTIONS), str(rate), str(n),
            stdin=subprocess.PIPE,
        )  # fmt: skip
        await client.communicate(_REQUEST.encode())
        elapsed = time.perf_counter() - started
        if client.returncode != 0:
            raise RuntimeError(f"load generator failed (exit {client.returncode})")
        server.close()
        await server.wait_closed()
        return elapsed

    cpu0 = time.process_time()
    elapsed = asyncio.run(run())
    if writer is not None:
        backlog_at_end = writer.backlog
        writer.close()
        _STATS.append((backlog_at_end, writer.spooled, writer.dropped))
    cpu = time.process_time() - cpu0
    return n / cpu if rate > 0 else n / elapsed


def _policy_loop_rate(guard: Guard, store: Store | None, requests: list[str]) -> float:
    """Requests/s of the bare in-process loop (parse, check, format; with a store also submit), no I/O."""
    writer = DecisionWriter(store, queue_size=len(requests) + 1) if store is not None else None
    submit = writer.submit if writer is not None else None
    check = guard.check
    started = time.perf_counter()
    for raw in requests:
        attrs = dict(line.split("=", 1) for line in raw.split("\n") if line)
        verdict = check(attrs["recipient"])
        if submit is not None:
            submit(DecisionEvent.from_verdict(verdict, sender=attrs["sender"], queue_id=attrs["queue_id"]))
        _reply = "action=DUNNO\n\n" if not verdict.flagged else f"action=HOLD {verdict.reason}\n\n"
    elapsed = time.perf_counter() - started
    if writer is not None:
        writer.close()
    return len(requests) / elapsed


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:  # noqa: PLR0915 - one linear script: set up, measure, print
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="typoguard-bench-store-"))
    events = _events(N_WRITER)
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=PROTECTED)))
    rcpts = _recipients(N_POLICY, guard)
    requests = [_REQUEST.format(rcpt=r) for r in rcpts]
    for r in rcpts[:20000]:
        guard.check(r)  # warm the detector's cache, as a running server's is

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

        rcpt_file = tmp / "recipients.txt"
        rcpt_file.write_text("\n".join(rcpts[:N_SERVER]))
        runs: list[tuple[str, Any, str]] = [
            (
                "policy over a socket, saturated: req/s",
                lambda st: _policy_server_rate(guard, st, rcpt_file, N_SERVER, tmp),
                ">= 90% of store off",
            ),
            (
                f"policy over a socket at {PACED_RATE:,.0f} req/s: req per CPU-s",
                lambda st: _policy_server_rate(guard, st, rcpt_file, N_PACED, tmp, rate=PACED_RATE),
                "(CPU cost, shown)",
            ),
            (
                "policy loop without I/O: req/s",
                lambda st: _policy_loop_rate(guard, st, requests),
                "(no I/O at all, shown)",
            ),
        ]
        for label, measure, target in runs:
            base = 0.0
            on_rates = [0.0] * len(stores)
            _STATS.clear()
            for _ in range(REPEAT):  # interleaved off/on runs: a busy machine shifts both alike
                base = max(base, measure(None))
                for k, (_name, store) in enumerate(stores):
                    on_rates[k] = max(on_rates[k], measure(store))
            cells = [f"{on:,.0f} ({on / base:.0%})" for on in on_rates]
            while len(cells) < 2:
                cells.append("n/a")
            rows.append((label, f"{base:,.0f}", *cells, target))
            if "saturated" in label:
                per_store = [
                    " / ".join(f"{_STATS[i][0]:,}" for i in range(k, len(_STATS), len(stores)))
                    for k in range(len(stores))
                ]
                while len(per_store) < 2:
                    per_store.append("n/a")
                label2 = f"  decisions not yet stored when those runs ended (of {N_SERVER:,})"
                rows.append((label2, "-", *per_store, "(stored right after)"))
    finally:
        for _name, store in stores:
            store.close()
        if cluster is not None:
            cluster.destroy()
    _table(rows)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(bench_store took {time.perf_counter() - started:.0f} s, peak RSS {rss:.0f} MiB)")


if __name__ == "__main__":
    main()
