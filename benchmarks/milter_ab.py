"""The milter benchmark for two versions of typoguard in one run: ``bench_milter``'s floor and
``typoguard milter``, each started once from another source tree ("before") and once from this one
("after"), measured interleaved round after round, so both versions see the same machine load.

    python -m benchmarks.milter_ab /work/main/src      # under flock -x /tmp/tg-machine.lock

Prints, per connection count, each server's best and median txn/s, the best run's server CPU per
transaction, and the ratio to its own version's floor. ``AB_ROUNDS`` (default 8) rounds; transactions per
run as ``bench_milter`` (``BENCH_MILTER_TRANSACTIONS``, ``BENCH_MILTER_RCPTS``). Not run by
``python -m benchmarks`` (not a ``bench_*.py``).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import bench_milter as bench
from benchmarks._common import clean_env, prioritize_and_pin, stop

CONNECTIONS = (8, 32)
ROUNDS = int(os.environ.get("AB_ROUNDS", "8"))
NAMES = ("floor-before", "typoguard-before", "floor-after", "typoguard-after")


def main(before_src: str) -> None:
    priority, pinning = prioritize_and_pin()
    with tempfile.TemporaryDirectory(prefix="milter-ab-") as tmpdir:
        tmp = Path(tmpdir)
        ports = {name: bench._free_port() for name in NAMES}
        procs = {}
        try:
            for name in NAMES:
                env = clean_env()
                if name.endswith("before"):
                    env["PYTHONPATH"] = before_src
                if name.startswith("floor"):
                    cmd = [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_milter",
                        "--floor-uvloop",
                        str(ports[name]),
                    ]
                else:
                    (tmp / name).mkdir()
                    config = bench._config(tmp / name, ports[name])
                    cli = "from typoguard.cli import main; main()"
                    cmd = [sys.executable, "-c", cli, "milter", "--config", str(config)]
                procs[name] = bench._start(cmd, ports[name], env)
            runs: dict[tuple[str, int], list[bench.Run]] = {}
            for conns in CONNECTIONS:
                for _ in range(ROUNDS):
                    for name, proc in procs.items():
                        check = name.startswith("typoguard")
                        run = bench.measure(ports[name], proc.pid, conns, bench.TRANSACTIONS, check)
                        runs.setdefault((name, conns), []).append(run)
        finally:
            for proc in procs.values():
                stop(proc)
    print(f"milter A/B ({pinning}, {priority}); before = {before_src}, after = this tree; {ROUNDS} rounds")
    print(
        f"{'conns':>5} {'server':<17} {'best':>7} {'median':>7} {'cpu us/txn':>10} {'errors':>6} "
        f"{'% floor':>8}"
    )
    for conns in CONNECTIONS:
        for name in NAMES:
            done = runs[name, conns]
            best = max(done, key=lambda r: r.rate)
            median = statistics.median(r.rate for r in done)
            floor = statistics.median(r.rate for r in runs["floor-" + name.split("-")[1], conns])
            print(
                f"{conns:>5} {name:<17} {best.rate:>7.0f} {median:>7.0f} {best.cpu_us:>10.1f} "
                f"{sum(r.errors for r in done):>6} {median / floor:>8.0%}"
            )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m benchmarks.milter_ab OTHER_SRC_DIR")
    main(sys.argv[1])
