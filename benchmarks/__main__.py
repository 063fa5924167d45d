"""``python -m benchmarks [--only NAME]``: run each ``benchmarks/bench_*.py`` (sorted) through its ``main()``.

Machine information is printed first: a throughput number means nothing without the machine it came from.
Benchmarks report ratios against a baseline measured in the same process and run; they make no assertions and
the test suite never imports them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Benchmark names (``detection`` for ``bench_detection.py``), sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _codec() -> str:
    """How the policy codec runs here: compiled by mypyc at install (setup.py), or as Python."""
    from typoguard.protocols.postfix_policy import implementation

    return implementation()


def machine_info() -> list[tuple[str, str]]:
    """(what, value) rows describing this machine and software."""
    import psutil  # type: ignore[import-untyped]  # bench extra; no stubs installed

    mem = psutil.virtual_memory().total / 2**30
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    freq = psutil.cpu_freq()
    return [
        ("cpu", _cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical, usable {affinity}"),
        ("cpu MHz", f"{freq.current:.0f}" if freq else "unknown"),
        ("memory", f"{mem:.1f} GiB"),
        ("os", platform.platform()),
        ("python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("typoguard", f"{_version('typoguard')} (commit {_git_commit()})"),
        ("policy codec", _codec()),
        ("dnstwist", _version("dnstwist")),
        ("rapidfuzz", _version("rapidfuzz")),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME", help=f"run one benchmark: {', '.join(names)}")
    args = parser.parse_args(argv)
    chosen = names
    if args.only is not None:
        name = args.only.removeprefix("bench_").removesuffix(".py").replace("-", "_")  # milter-postfix
        if name not in names:  # an unknown name is an error, never a silent skip
            parser.error(f"unknown benchmark {args.only!r}; known: {', '.join(names)}")
        chosen = [name]
    print("machine")
    for what, value in machine_info():
        print(f"  {what:<10} {value}")
    print(flush=True)
    for name in chosen:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"== bench_{name} ==", flush=True)
        module.main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
