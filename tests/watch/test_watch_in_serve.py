"""``[watch] enabled = true``: ``typoguard serve`` runs rounds beside the policy service, which keeps
answering; a look-alike that comes alive between rounds reaches the webhook."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dns_server import LocalDnsServer
from receivers import WebhookReceiver
from watch_lab import lab_zones

sys.path.insert(0, str(Path(__file__).parent.parent))

from store.serve_process import ServeProcess


def test_serve_runs_watch_rounds_and_alerts(typoguard_exe: str, tmp_path: Path) -> None:
    zones = lab_zones()
    zones["navy.mil"] = {"NS": ["ns1.navy.mil."], "MX": ["10 mx.navy.mil."]}  # serve_process protects it too
    (tmp_path / "hook.key").write_text("k3y\n")
    with LocalDnsServer(zones) as dns, WebhookReceiver(b"k3y") as hook:
        extra = f"""
[watch]
enabled = true
every = "1s"
resolver = ["127.0.0.1:{dns.port}"]
timeout = 0.3
retries = 0
limit = 100
[[alert]]
type = "webhook"
url = "{hook.url}"
secret_file = "{tmp_path / "hook.key"}"
"""
        node = ServeProcess(typoguard_exe, tmp_path / "a", store_extra=extra).start()
        try:
            deadline = time.monotonic() + 30
            while not hook.received and time.monotonic() < deadline:
                time.sleep(0.1)
            first = {e["subject"] for batch in hook.received for e in batch["events"]}
            assert {"army.ml", "arny.mil", "army.il"} <= first
            assert node.ask("bob@army.ml").startswith("550 5.1.2")  # the policy service still answers

            dns.answers.records["amry.mil"] = {"NS": ["ns1.p.example."], "MX": ["10 mx.newcomer.example."]}
            changed, seen = time.time(), len(hook.received)
            while len(hook.received) == seen and time.monotonic() < deadline + 30:
                time.sleep(0.05)
            (event,) = hook.received[seen]["events"]
            assert (event["kind"], event["subject"]) == ("lookalike-accepts-mail", "amry.mil")
            print(f"\nalert latency in serve (every = 1s): {hook.received_at[seen] - changed:.2f} s")
            assert node.records("watch_round")
        finally:
            assert node.stop() == 0
