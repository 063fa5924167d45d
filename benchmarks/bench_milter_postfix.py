"""Messages per second through a real Postfix with and without ``typoguard milter`` (issue 18, section 1).

One private Postfix lab on loopback (``tests/milter/milter_labs.PostfixMilterLab``: its own config, spool and
port; the machine's Postfix is never touched), delivering to ``discard:``. Postfix's own load generator,
``smtp-source``, sends ``MESSAGES`` messages over ``SESSIONS`` parallel SMTP sessions, one message per
session (each session is also one milter connection: what a real client costs), ``RCPTS`` recipients each,
from an internal sender, so every recipient is decided and logged. Runs alternate without/with the milter
(``smtpd_milters`` set or not, ``postfix reload`` between), ``REPEATS`` times; the best of each is
reported and their ratio is the figure. A third mode puts the no-op milter of ``bench_milter`` (the
protocol floor) in typoguard's place: what any milter costs Postfix here, so the part that is typoguard's
own decision shows. Everything shares the machine's CPUs (smtpd, cleanup, qmgr, the
milter, smtp-source), as on a mail server. Bounded: each run is capped at ``MAX_SECONDS``.

    python -m benchmarks --only milter-postfix        # needs root, postfix and smtp-source

Environment knobs: BENCH_MILTER_POSTFIX_MESSAGES (per run, default 400), BENCH_MILTER_POSTFIX_SESSIONS
(default 8), BENCH_MILTER_POSTFIX_RCPTS (default 4), BENCH_MILTER_POSTFIX_REPEATS (default 3).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import ROOT, stop

sys.path[:0] = [str(ROOT / "tests" / "milter"), str(ROOT / "tests" / "e2e")]
from milter_labs import MilterProcess, PostfixMilterLab, free_port  # noqa: E402
from postfix_lab import missing_tools  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_MILTER_POSTFIX_MESSAGES", "400"))
SESSIONS = int(os.environ.get("BENCH_MILTER_POSTFIX_SESSIONS", "8"))
RCPTS = int(os.environ.get("BENCH_MILTER_POSTFIX_RCPTS", "4"))
REPEATS = int(os.environ.get("BENCH_MILTER_POSTFIX_REPEATS", "3"))
MAX_SECONDS = 60.0
MODES = ("without", "no-op milter", "typoguard milter")
SENDER = "alice@army.mil"
RECIPIENT = "bob@army.mil"  # smtp-source numbers them: 1bob@army.mil, 2bob@army.mil, ... (allowed)


def _smtp_source() -> str | None:
    return shutil.which("smtp-source", path=os.environ.get("PATH", "") + ":/usr/sbin")


def _send(exe: str, port: int, messages: int) -> float:
    """Seconds ``smtp-source`` takes to hand ``messages`` messages to the lab's smtpd."""
    started = time.perf_counter()
    done = subprocess.run(
        [exe, "-s", str(SESSIONS), "-m", str(messages), "-r", str(RCPTS), "-f", SENDER, "-t", RECIPIENT,
         "-M", "bench.example.org", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=MAX_SECONDS, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return time.perf_counter() - started


def _decisions(log: Path) -> int:
    try:
        with log.open("rb") as f:
            return sum(1 for line in f if b'"event":"decision"' in line)
    except FileNotFoundError:
        return 0


def main() -> None:
    missing = missing_tools()
    source = _smtp_source()
    if source is None:
        missing.append("smtp-source (Postfix)")
    if missing:
        print(f"skipped: needs {', '.join(missing)} (scripts/install-system-deps.sh)")
        return
    exe = str(Path(sys.executable).with_name("typoguard"))
    with tempfile.TemporaryDirectory(prefix="bench-milter-postfix-") as tmpdir:
        milter = MilterProcess(exe, Path(tmpdir))
        milter.start()
        lab = PostfixMilterLab(free_port(), None, None)
        floor_port = free_port()
        floor = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_milter", "--floor-uvloop", str(floor_port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        ports = {"without": None, "no-op milter": floor_port, "typoguard milter": milter.port}
        logged = 0
        try:
            for _ in range(REPEATS):
                for mode in MODES:
                    port = ports[mode]
                    lab.milter = None if port is None else f"inet:127.0.0.1:{port}"
                    lab.start()  # first a start, then a reload: new smtpd processes with the new main.cf
                    time.sleep(1.0)  # old smtpd processes finish their sessions and exit
                    _send(source, lab.smtp_port, min(40, MESSAGES))  # warm up (processes, caches)
                    time.sleep(0.1)  # the warm-up's decisions are in the log (written every 5 ms)
                    before = _decisions(milter.log)
                    rates[mode].append(MESSAGES / _send(source, lab.smtp_port, MESSAGES))
                    if mode == "typoguard milter":
                        time.sleep(0.1)  # the milter writes its log every 5 ms
                        logged += _decisions(milter.log) - before
                    lab.purge()
        finally:
            lab.stop()
            milter.stop()
            stop(floor)
    best = {mode: max(values) for mode, values in rates.items()}
    print(
        f"real Postfix (private lab, discard:) fed by smtp-source: {MESSAGES} messages per run, "
        f"{SESSIONS} parallel sessions, one message per session, {RCPTS} recipients each; "
        f"best of {REPEATS} alternating runs"
    )
    for mode in MODES:
        runs = ", ".join(f"{r:.0f}" for r in rates[mode])
        print(f"  {mode:<17} {best[mode]:>8.0f} msg/s   runs: {runs}")
    expected = REPEATS * MESSAGES * RCPTS
    print(
        f"with typoguard / without: {best['typoguard milter'] / best['without']:.0%}; no-op milter / "
        f"without: {best['no-op milter'] / best['without']:.0%}; typoguard / no-op milter: "
        f"{best['typoguard milter'] / best['no-op milter']:.0%}; decisions logged by typoguard in the "
        f"measured runs: {logged} of {expected} recipients"
    )


if __name__ == "__main__":
    main()
