"""Helpers the server benchmarks share: priority and CPU pinning, starting and stopping the servers under
test, their CPU seconds from /proc, and the median of repeated runs. (Not a ``bench_*`` module: the runner
does not run it.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def pin(pid: int, cpu: int) -> None:
    """Run ``pid`` (0: this process) on ``cpu`` only, where there is more than one CPU."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


def prioritize_and_pin() -> tuple[str, str]:
    """A shared machine makes loopback numbers swing with everyone else's load; when allowed (root), run
    this benchmark and its servers (children inherit it) at a higher priority, and the load generator on
    CPU 1 (the servers go on CPU 0). Best effort; says what it got: (priority, pinning)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
        priority = "nice -10"
    except (OSError, AttributeError):
        priority = "default priority"
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        pin(0, 1)
        pinning = "servers on CPU 0, load generator on CPU 1"
    else:
        pinning = "not pinned (one CPU)"
    return priority, pinning


def clean_env() -> dict[str, str]:
    """This environment without ``TYPOGUARD_*`` (the servers read only their config file)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}


def start(
    cmd: list[str],
    pattern: str,
    env: dict[str, str] | None = None,
    *,
    cwd: Path | None = None,
    timeout: float = 30.0,
    cpu: int | None = 0,
) -> tuple[subprocess.Popen[str], int]:
    """Start ``cmd`` (pinned to ``cpu`` unless None) and wait for the stdout line where ``pattern``'s group
    1 is the port it listens on: (the process, the port)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd
    )
    if cpu is not None:
        pin(proc.pid, cpu)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise RuntimeError(f"{cmd[:3]} did not start")


def stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[T], key: Callable[[T], float] | None = None) -> T:
    """The middle of ``values`` (the upper one of an even count), by ``key``."""
    ordered = sorted(values, key=key) if key is not None else sorted(values)  # type: ignore[type-var]
    return ordered[len(ordered) // 2]
