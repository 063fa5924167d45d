"""``typoguard watch --once`` against the lab DNS server whose zone changes between rounds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from dns_server import LocalDnsServer
from receivers import SyslogReceiver, WebhookReceiver
from watch_lab import write_config

from typoguard.cli import main
from typoguard.config import load_config
from typoguard.store import DecisionEvent, open_store

EXIT_DNS_UNUSABLE = 3


def _round(cfg: Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["watch", "--once", "--no-held", "--json", "--config", str(cfg)])
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, doc, result.stderr


def _new(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((e["kind"], e["subject"]) for e in doc["new_events"])


def test_a_lookalike_gaining_an_mx_is_exactly_one_event(
    dns_server: LocalDnsServer, tmp_path: Path, store_url: str
) -> None:
    cfg = write_config(tmp_path, dns_server.port, store_url=store_url)
    code, doc, _ = _round(cfg)  # the first round: every look-alike accepting mail, once
    assert code == 1
    assert _new(doc) == [
        ("lookalike-accepts-mail", "army.il"),
        ("lookalike-accepts-mail", "army.ml"),
        ("lookalike-accepts-mail", "arny.mil"),
    ]
    code, doc, _ = _round(cfg)  # nothing changed: nothing new
    assert (code, doc["new_events"]) == (0, [])

    dns_server.answers.records["amry.mil"] = {
        "NS": ["ns1.parking.example."],
        "MX": ["10 mx.newcomer.example."],
    }
    code, doc, _ = _round(cfg)
    assert code == 1
    (event,) = doc["new_events"]
    assert (event["kind"], event["subject"], event["severity"]) == (
        "lookalike-accepts-mail",
        "amry.mil",
        "critical",
    )
    assert event["details"]["before"] == "unregistered" and event["details"]["mail_hosts"] == [
        "mx.newcomer.example"
    ]
    assert _round(cfg)[1]["new_events"] == []

    # a third look-alike behind the catch-all provider: it joins a squatter cluster (one event, marked so;
    # the two already behind it did not change: no event for them); a null MX dropped
    records = dns_server.answers.records
    records["armymil.com"] = {"NS": ["ns1.parking.example."], "MX": ["10 mx1.catchall.example."]}
    records["army.mit"] = {"NS": ["ns1.parking.example."], "A": ["192.0.2.99"]}
    code, doc, _ = _round(cfg)
    assert _new(doc) == [("lookalike-accepts-mail", "armymil.com"), ("null-mx-dropped", "army.mit")]
    joined = next(e for e in doc["new_events"] if e["subject"] == "armymil.com")
    assert joined["details"]["cluster"] == ["army.ml", "armymil.com", "arny.mil"]
    assert (
        "joins a squatter cluster: catchall.example receives the mail of 3 look-alikes" in joined["summary"]
    )


def test_a_dead_resolver_fails_the_round_with_no_event(tmp_path: Path, store_url: str) -> None:
    with LocalDnsServer({}, silent_all=True) as dead:
        cfg = write_config(tmp_path, dead.port, store_url=store_url)
        cfg.write_text(cfg.read_text().replace("timeout = 10\nretries = 2", "timeout = 0.3\nretries = 0"))
        code, doc, err = _round(cfg)
    assert code == EXIT_DNS_UNUSABLE
    assert "DNS unusable" in err and doc["ok"] is False and doc["new_events"] == []
    store = open_store(load_config(cfg))
    try:
        assert store.events() == [] and store.exposure_runs() == []  # nothing marked safe or unregistered
    finally:
        store.close()


def test_leak_patterns_from_the_decision_log(
    dns_server: LocalDnsServer, tmp_path: Path, store_url: str
) -> None:
    cfg = write_config(tmp_path, dns_server.port, store_url=store_url)
    store = open_store(load_config(cfg))
    now = time.time()
    rows = []

    def hit(sender: str, domain: str, action: str = "hold", mode: str = "enforce") -> None:
        e = DecisionEvent(
            now - 60, f"x@{domain}", action, domain, "army.mil", "deletion", 0.9, sender, mode=mode
        )
        rows.append(e.row(f"{len(rows):032d}"))

    for _ in range(3):
        hit("alice@corp.example", "army.ml")
    for who in ("bob", "carol", "dave"):
        hit(f"{who}@corp.example", "arny.mil")
    hit("erin@corp.example", "amry.mil", action="reject", mode="audit")
    try:
        store.write_decision_rows(rows)
    finally:
        store.close()
    _, doc, _ = _round(cfg)
    kinds = {k: s for k, s in _new(doc) if k != "lookalike-accepts-mail"}
    assert kinds == {
        "repeat-sender": "alice@corp.example",
        "popular-lookalike": "arny.mil",
        "audit-let-through": "amry.mil",
    }
    assert not [k for k, _ in _new(_round(cfg)[1])]  # the same facts again: no new event


def test_webhook_is_signed_retried_and_syslog_gets_rfc5424(
    dns_server: LocalDnsServer, tmp_path: Path
) -> None:
    secret = b"s3cret-key"
    (tmp_path / "hook.key").write_bytes(secret + b"\n")
    syslog = SyslogReceiver(tmp_path / "log.sock")
    try:
        _webhook_and_syslog(dns_server, tmp_path, secret, syslog)
    finally:
        syslog.close()


def _webhook_and_syslog(
    dns_server: LocalDnsServer, tmp_path: Path, secret: bytes, syslog: SyslogReceiver
) -> None:
    with WebhookReceiver(secret, fail_first=1) as hook:
        cfg = write_config(
            tmp_path,
            dns_server.port,
            f"""
[[alert]]
type = "webhook"
url = "{hook.url}"
secret_file = "hook.key"
retries = 2
min_severity = "critical"
[[alert]]
type = "syslog"
socket = "{tmp_path / "log.sock"}"
kinds = ["lookalike-accepts-mail"]
""",
        )
        _round(cfg)  # the first round's three look-alikes
        dns_server.answers.records["amry.mil"] = {"NS": ["ns1.p.example."], "MX": ["10 mx.newcomer.example."]}
        changed = time.time()
        code, doc, _ = _round(cfg)
        assert code == 1
        webhook = next(a for a in doc["alerts"] if a["name"].startswith("webhook"))
        assert (webhook["sent"], webhook["failed"], webhook["dropped"]) == (1, 0, 0)  # this run: amry.mil
        assert hook.requests == 3 and hook.bad_signatures == 0  # one 500, then two signed deliveries
        first, second = hook.received
        assert first["schema"] == second["schema"] == "typoguard-alert/1"
        assert [e["subject"] for e in second["events"]] == ["amry.mil"]
        assert second["events"][0]["reminder"] is False
        print(f"\nalert latency, DNS change -> webhook received: {hook.received_at[1] - changed:.3f} s")
    lines = syslog.lines(4)
    assert lines[0].startswith(b"<130>1 ")  # local0 (16) * 8 + crit (2)
    assert b'[typoguard@32473 id="' in lines[-1] and b'subject="amry.mil"' in lines[-1]
