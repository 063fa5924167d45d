"""``typoguard watch`` without ``--once``: a round every ``[watch] every`` give or take 10%, a metrics page
(``[watch] metrics_listen``), SIGHUP reads the config again (a bad one is refused and the old one kept, as
``typoguard serve`` does), SIGTERM stops it cleanly: exit 0, no traceback."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from dns_server import LocalDnsServer
from test_watch_in_serve import scrape
from watch_lab import lab_zones, write_config

from store.serve_process import free_port


class _Watch:
    """The command as a process; its JSON log lines (standard error) as they come, with when they came."""

    def __init__(self, exe: str, cfg: Path) -> None:
        self.proc = subprocess.Popen(
            [exe, "watch", "--no-held", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append((time.monotonic(), raw.decode(errors="replace")))

    def records(self, event: str) -> list[tuple[float, dict[str, Any]]]:
        out = []
        for at, line in list(self.lines):
            if line.startswith("{"):
                doc = json.loads(line)
                if doc.get("event") == event:
                    out.append((at, doc))
        return out

    def wait_for(self, event: str, n: int, timeout: float = 20) -> list[tuple[float, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while len(found := self.records(event)) < n:
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, f"no {n} x {event} in {timeout} s:\n{self.text()}"
            time.sleep(0.02)
        return found

    def text(self) -> str:
        return "".join(line for _, line in self.lines)


def test_rounds_on_schedule_reload_on_sighup_stop_on_sigterm(typoguard_exe: str, tmp_path: Path) -> None:
    zones = lab_zones()
    zones["navy.mil"] = {"NS": ["ns1.navy.mil."], "MX": ["10 mx.navy.mil."]}
    port = free_port()
    with LocalDnsServer(zones) as dns:
        extra = f'every = "1s"\nmetrics_listen = "127.0.0.1:{port}"\n'
        cfg = write_config(tmp_path, dns.port)
        text = cfg.read_text().replace("limit = 100", "limit = 10\n" + extra)
        cfg.write_text(text)
        watch = _Watch(typoguard_exe, cfg)
        try:
            rounds = watch.wait_for("watch_round", 3)
            # every 1 s give or take 10%: the delay each round announces, and the gaps between rounds
            delays = [doc["next_round_in"] for _, doc in rounds]
            assert all(0.9 <= d <= 1.1 for d in delays) and len(set(delays)) > 1, delays  # jittered
            for (t0, first), (t1, _) in itertools.pairwise(rounds):
                assert first["next_round_in"] - 0.05 <= t1 - t0 <= first["next_round_in"] + 3, t1 - t0
            first_new = rounds[0][1]["new_events"]
            assert rounds[0][1]["lookalikes"] == 10 and first_new >= 1  # the first round: what is live
            metrics = scrape(port)
            assert metrics["typoguard_watch_rounds_total", (("result", "ok"),)] >= 3
            assert metrics["typoguard_watch_events_total", (("kind", "lookalike-accepts-mail"),)] == first_new

            # SIGHUP: the config file again (navy.mil protected too: its look-alikes scanned from now)
            cfg.write_text(text.replace('domains = ["army.mil"]', 'domains = ["army.mil", "navy.mil"]'))
            watch.proc.send_signal(signal.SIGHUP)
            ((_, reloaded),) = watch.wait_for("watch_reloaded", 1)
            assert reloaded["protected"] == 2
            seen = len(watch.records("watch_round"))
            (_, after) = watch.wait_for("watch_round", seen + 1)[-1]
            assert after["lookalikes"] == 20

            # a config that cannot be used: refused, the old one kept, rounds go on
            cfg.write_text(text.replace('every = "1s"', 'every = "soon"'))
            watch.proc.send_signal(signal.SIGHUP)
            ((_, failed),) = watch.wait_for("watch_reload_failed", 1)
            assert "[watch] every must be a duration" in failed["error"] and failed["kept"] == "old config"
            seen = len(watch.records("watch_round"))
            watch.wait_for("watch_round", seen + 1)
        finally:
            if watch.proc.poll() is None:
                watch.proc.send_signal(signal.SIGTERM)
            code = watch.proc.wait(15)
            watch.thread.join(5)
            assert watch.proc.stderr is not None
            watch.proc.stderr.close()
    assert code == 0, watch.text()
    assert "Traceback" not in watch.text()
    assert watch.records("watch_stopped")
