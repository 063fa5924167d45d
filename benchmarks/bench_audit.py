"""``typoguard audit`` against pflogsumm on the same generated Postfix log, in the same run.

Generates a realistic syslog-format Postfix log (``gen_postfix_log``; ``TYPOGUARD_BENCH_AUDIT_SHARE`` of the
recipients at look-alikes, 0.30 by default, as in issue 15) of ``TYPOGUARD_BENCH_AUDIT_MB`` megabytes
(default 200, about the log of issue 15) in a temporary directory, then times, ``TYPOGUARD_BENCH_AUDIT_RUNS``
times each (default 3, interleaved; the median is reported):

* ``typoguard audit`` on it (all cores) with its default text report, the like-for-like comparison with
  pflogsumm's text summary;
* ``typoguard audit --json`` on it (all cores; every event written out), with ``--jobs 1``, and on an
  eighth of it, to show memory stays flat and that the parallel run is faster than the serial one;
* ``pflogsumm`` (Debian package; ``scripts/install-bench-deps.sh``) on the same file, if installed,
  else skipped with the reason printed.

Prints seconds, MB/s, the peak resident memory of the whole process tree (workers included), and the
ratio pflogsumm / audit (target: >= 5). Bounded: every run has a timeout (~2 min in all at the default
size on 2 cores); the directory is removed.

    python -m benchmarks --only audit
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # bench extra; no stubs installed

from benchmarks.gen_postfix_log import PROTECTED, generate

TIMEOUT = 600.0  # seconds per run


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss: int  # bytes, summed over the process tree at its largest sample
    peak_process_rss: int  # bytes, the largest single process (the parent or one worker)
    returncode: int


def measure(argv: list[str], stdout_path: Path) -> Run:
    """Wall time and peak tree RSS (sampled every 20 ms) of one command."""
    with stdout_path.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE)
        ps = psutil.Process(proc.pid)
        peak = peak_one = 0
        while proc.poll() is None:
            try:
                rss = [p.memory_info().rss for p in [ps, *ps.children(recursive=True)]]
                peak, peak_one = max(peak, sum(rss)), max(peak_one, *rss)
            except psutil.Error:  # a worker ended between listing and measuring
                pass
            if time.perf_counter() - started > TIMEOUT:
                proc.kill()
                break
            time.sleep(0.02)
        proc.wait()
        elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        print(f"  {argv[0]} exited {proc.returncode}: {err[-500:]}")
    return Run(elapsed, peak, peak_one, proc.returncode)


def _line(name: str, run: Run, megabytes: float) -> str:
    return (
        f"  {name:<26} {run.seconds:8.2f} s  {megabytes / run.seconds:8.1f} MB/s"
        f"  peak RSS {run.peak_rss / 2**20:6.0f} MiB"
        f" (largest process {run.peak_process_rss / 2**20:4.0f} MiB)"
    )


def _median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def _all(runs: list[Run]) -> str:
    return " ".join(f"{r.seconds:.2f}" for r in runs) + " s"


def main() -> None:
    megabytes = float(os.environ.get("TYPOGUARD_BENCH_AUDIT_MB", "200"))
    runs = max(1, int(os.environ.get("TYPOGUARD_BENCH_AUDIT_RUNS", "3")))
    share = float(os.environ.get("TYPOGUARD_BENCH_AUDIT_SHARE", "0.3"))
    exe = str(Path(sys.executable).with_name("typoguard"))
    protect = [arg for d in PROTECTED for arg in ("--protect", d)]
    with tempfile.TemporaryDirectory(prefix="typoguard-bench-audit-") as tmp:
        work = Path(tmp)
        log, small = work / "mail.log", work / "mail-small.log"
        started = time.perf_counter()
        truth: dict[tuple[str, str], str] = {}
        size = generate(log, megabytes, truth=truth, lookalike_share=share) / 1e6
        small_size = generate(small, megabytes / 8, seed=2, lookalike_share=share) / 1e6
        took = time.perf_counter() - started
        print(f"  generated {size:.0f} MB (+{small_size:.0f} MB) of Postfix log in {took:.1f} s")
        print(f"  cores: {os.cpu_count()}")

        pflogsumm = shutil.which("pflogsumm")
        audit_small = measure([exe, "audit", *protect, "--json", str(small)], work / "small.json")
        audits, serials, baselines, texts = [], [], [], []
        for _ in range(runs):  # interleaved, so a change in the machine's load touches all four alike
            texts.append(measure([exe, "audit", *protect, str(log)], work / "audit.txt"))
            audits.append(measure([exe, "audit", *protect, "--json", str(log)], work / "audit.json"))
            serial_argv = [exe, "audit", *protect, "--json", "--jobs", "1", str(log)]
            serials.append(measure(serial_argv, work / "serial.json"))
            if pflogsumm is not None:
                baselines.append(measure([pflogsumm, str(log)], work / "pflogsumm.txt"))
        audit, serial, text = _median(audits), _median(serials), _median(texts)
        print(
            f"  {runs} run(s) each, median shown; all: --json {_all(audits)},"
            f" --json --jobs 1 {_all(serials)}, text {_all(texts)}"
        )
        print(_line(f"typoguard audit {small_size:.0f} MB --json", audit_small, small_size))
        print(_line(f"typoguard audit {size:.0f} MB (text)", text, size))
        print(_line(f"typoguard audit {size:.0f} MB --json", audit, size))
        print(_line(f"  ... --jobs 1 {size:.0f} MB", serial, size))
        print(f"  parallel / serial: {serial.seconds / audit.seconds:.2f}x (must be > 1)")
        found = Counter(e["outcome"] for e in json.loads((work / "audit.json").read_bytes())["events"])
        expected = Counter(truth.values())
        check = "exact" if found == expected else "MISMATCH"
        print(f"  outcomes: audit {dict(sorted(found.items()))}")
        print(f"  generated {dict(sorted(expected.items()))}: {check}")
        growth = audit.peak_process_rss / max(audit_small.peak_process_rss, 1)
        scale = size / max(small_size, 1e-9)
        print(
            f"  memory of the largest process: x{growth:.2f} for x{scale:.1f} the input"
            " (flat is ~x1; the tree adds one process per core)"
        )

        if pflogsumm is None:
            print("  pflogsumm: skipped, not installed (bash scripts/install-bench-deps.sh installs it)")
            return
        baseline = _median(baselines)
        print(_line(f"pflogsumm {size:.0f} MB", baseline, size) + f"  (all: {_all(baselines)})")
        for name, run in (("typoguard audit (text report)", text), ("typoguard audit --json", audit)):
            ratio = baseline.seconds / run.seconds
            verdict = "meets" if ratio >= 5 else "MISSES"
            print(f"  {name} is {ratio:.1f}x faster than pflogsumm ({verdict} the >= 5x aim)")
        print(f"  --json --jobs 1: {baseline.seconds / serial.seconds:.1f}x")


if __name__ == "__main__":
    main()
