"""``typoguard sink report``: counts per day, look-alike and sending domain; the surge rule; the webhook."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from click.testing import CliRunner
from running_sink import write_config

from typoguard.cli import main
from typoguard.config import load_config
from typoguard.sink import report as sink_report
from typoguard.sink.counts import CountStore, Tally, day_of

LAST = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A config whose sink database holds 20 days: gmail.com 2 a day then 40, yahoo.com a steady 30."""
    path = write_config(tmp_path)
    store = CountStore.open(load_config(path))
    tally = Tally()
    for back in range(20):
        t = (LAST - timedelta(days=back)).timestamp()
        for _ in range(40 if back == 0 else 2):
            tally.add(t, "gmial.com", "gmail.com", "gmail.com", None)
        for i in range(30):
            tally.add(t + i, "army.ml", "army.mil", "yahoo.com", f"h{i % 7}")
        tally.add(t, "weird.example", None, "<>", None)
    tally.add((LAST - timedelta(days=500)).timestamp(), "army.ml", "army.mil", "old.example", None)
    store.flush(tally)
    store.close()
    return path


def test_report_counts_and_finds_the_surge(config_path: Path) -> None:
    store = CountStore.open(load_config(config_path))
    try:
        r = sink_report.build(store, days=7, until="2026-11-20", now=LAST)
    finally:
        store.close()
    assert (r.since, r.until) == ("2026-11-14", "2026-11-20")
    assert r.total == 6 * (2 + 30 + 1) + 40 + 30 + 1
    assert r.hinted == r.total - 7
    assert [d["attempts"] for d in r.per_day] == [33] * 6 + [71]
    assert [x["lookalike"] for x in r.per_lookalike] == ["army.ml", "gmial.com", "weird.example"]
    army = r.per_lookalike[0]
    assert army["intended"] == "army.mil" and army["distinct_senders"] == 7 and army["repeat_senders"] == 7
    assert r.per_lookalike[2]["intended"] is None
    assert [x["sender_domain"] for x in r.per_sender_domain] == ["yahoo.com", "gmail.com", "<>"]
    # gmail.com: 40 against a median of 2 -> a finding; yahoo.com's steady 30 is not one
    assert [(s.sender_domain, s.day, s.attempts, s.median_before) for s in r.surges] == [
        ("gmail.com", "2026-11-20", 40, 2.0)
    ]


def test_surge_rule_edges() -> None:
    days = ["2026-01-15"]
    quiet = {f"2026-01-{d:02d}": 0 for d in range(1, 15)}
    assert (
        sink_report.find_surges({"a.example": quiet | {"2026-01-15": 19}}, days, factor=5, minimum=20) == []
    )
    found = sink_report.find_surges({"a.example": quiet | {"2026-01-15": 20}}, days, factor=5, minimum=20)
    assert [s.factor for s in found] == [20.0]  # a median of 0 counts as 1
    busy_once = quiet | {"2026-01-14": 500, "2026-01-15": 25}
    assert sink_report.find_surges(
        {"a.example": busy_once}, days, factor=5, minimum=20
    )  # one busy day is no baseline


def test_cli_formats(config_path: Path) -> None:
    runner = CliRunner()
    args = ["sink", "report", "--config", str(config_path), "--days", "7", "--until", "2026-11-20"]
    text = runner.invoke(main, args, catch_exceptions=False)
    assert text.exit_code == 0, text.output
    assert "FINDING 2026-11-20 gmail.com: 40 attempts" in text.output
    assert "gmial.com" in text.output and "army.mil" in text.output
    doc = orjson.loads(runner.invoke(main, [*args, "--format", "json"]).output)
    assert doc["surges"][0]["sender_domain"] == "gmail.com" and len(doc["per_day"]) == 7
    html = runner.invoke(main, [*args, "--format", "html"]).output
    assert html.count("<svg") == 3 and "gmail.com" in html
    assert "<script" not in html and "src=" not in html and "href=" not in html  # offline, self-contained


def test_cli_writes_a_file_and_rejects_a_bad_day(config_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = ["sink", "report", "--config", str(config_path), "--format", "html", "-o", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert out.read_text().startswith("<!doctype html>")
    bad = CliRunner().invoke(main, ["sink", "report", "--config", str(config_path), "--until", "yesterday"])
    assert bad.exit_code == 2 and "not a day" in bad.output


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.bodies = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/digest"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_webhook_digest_is_posted_as_json(config_path: Path, webhook: str) -> None:
    args = ["sink", "report", "--config", str(config_path), "--until", "2026-11-20", "--webhook", webhook]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "HTTP 204" in result.stderr
    (body,) = _Hook.bodies
    doc = orjson.loads(body)
    assert doc["kind"] == "typoguard.sink.report"
    # over 30 days yahoo.com's first day (30 from nothing) is a surge too; gmail.com's is the last day
    assert ("gmail.com", "2026-11-20") in [(s["sender_domain"], s["day"]) for s in doc["surges"]]
    down = CliRunner().invoke(main, [*args[:-1], "http://127.0.0.1:1/none"])
    assert down.exit_code == 1 and "webhook" in down.output


def test_retention_prunes_old_days(config_path: Path) -> None:
    store = CountStore.open(load_config(config_path))
    try:
        assert any(r.sender_domain == "old.example" for r in store.rows())
        cutoff = day_of((LAST - timedelta(days=400)).timestamp())
        assert store.prune(cutoff) == 1
        assert not any(r.sender_domain == "old.example" for r in store.rows())
    finally:
        store.close()
