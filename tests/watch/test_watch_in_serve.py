"""``[watch] enabled = true``: ``typoguard serve`` runs rounds beside the policy service, which keeps
answering; a look-alike that comes alive between rounds reaches the webhook; the rounds and alerts are
counted on the service's metrics page, a dead endpoint's waiting events included."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

from dns_server import LocalDnsServer
from prometheus_client.parser import text_string_to_metric_families
from receivers import WebhookReceiver
from watch_lab import lab_zones

sys.path.insert(0, str(Path(__file__).parent.parent))

from store.serve_process import ServeProcess


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The metrics page as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


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
timeout = 5
retries = 2
limit = 100
[[alert]]
type = "webhook"
name = "siem"
url = "{hook.url}"
secret_file = "{tmp_path / "hook.key"}"
[[alert]]
type = "webhook"
name = "dead"
url = "http://127.0.0.1:{_closed_port()}/hook"
retries = 20
timeout = 0.5
"""
        node = ServeProcess(typoguard_exe, tmp_path / "a", store_extra=extra).start()
        try:
            deadline = time.monotonic() + 30
            live = {"army.ml", "arny.mil", "army.il"}  # a busy machine may see one a round later

            def received() -> set[str]:
                return {e["subject"] for batch in list(hook.received) for e in batch["events"]}

            while not live <= received() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert live <= received()
            assert node.ask("bob@army.ml").startswith("550 5.1.2")  # the policy service still answers

            # The receiver has the events before its reply reaches the outbox, which counts them sent then:
            # wait for the count (at once, or a little later on a busy machine).
            siem, dead = (("name", "siem"), ("type", "webhook")), (("name", "dead"), ("type", "webhook"))
            while True:
                metrics = scrape(node.metrics_port)  # after the first round
                done = (
                    metrics.get(("typoguard_alerts_sent_total", siem)),
                    metrics.get(("typoguard_alerts_backlog", siem)),
                )
                if done == (3, 0) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert metrics["typoguard_watch_rounds_total", (("result", "ok"),)] >= 1
            assert metrics["typoguard_watch_events_total", (("kind", "lookalike-accepts-mail"),)] == 3
            assert 0 < metrics["typoguard_watch_last_success_timestamp_seconds", ()] <= time.time()
            assert metrics["typoguard_alerts_sent_total", siem] == 3
            assert metrics["typoguard_alerts_backlog", siem] == 0
            assert metrics["typoguard_alerts_sent_total", dead] == 0
            assert metrics["typoguard_alerts_backlog", dead] == 3  # refused, waiting for its retry: not 0
            assert metrics["typoguard_alerts_attempts_total", dead] >= 1
            assert metrics["typoguard_alerts_failed_total", dead] == 0  # still being retried

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
