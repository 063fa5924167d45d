"""Alert delivery: a dead endpoint never blocks and its backlog is bounded and counted; an e-mail digest to
a look-alike is a configuration error (the digest through a real Postfix: test_digest_postfix.py)."""

from __future__ import annotations

import gc
import socket
import time
from pathlib import Path

from click.testing import CliRunner
from dns_server import LocalDnsServer
from watch_lab import write_config

from typoguard.cli import main
from typoguard.config import AlertConfig
from typoguard.store.events import Event
from typoguard.watch.alerts import Alert, Outbox
from typoguard.watch.webhook import WebhookSender


def _event(n: int) -> Event:
    return Event(n, "lookalike-accepts-mail", f"look{n}.example", "", "critical", 0.0, 0.0, 1, "open",
                 None, None, None, None, {"summary": f"look{n}.example accepts mail"})  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_endpoint_never_blocks_and_its_backlog_is_bounded() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hook"  # nothing listens: every attempt is refused
    # Each batch waits 0.5 s between its two attempts: sent in the caller, the three puts would take 1.5 s;
    # queued, they take well under a millisecond (1 s is a hang-guard, not a measurement). The outbox's
    # thread may take the first batch while the caller puts the others (the OS preempts the caller for a
    # few ms on a busy machine): then at most 5 wait and that batch of 4 is in flight. It cannot finish it
    # and take the second before the third is put unless the caller stalls for over 0.5 s.
    box = Outbox(WebhookSender(url, timeout=0.5), AlertConfig(url=url, retries=1, backlog=5), backoff=0.5)
    started = time.perf_counter()
    for batch in range(3):
        box.put([Alert(_event(batch * 4 + i)) for i in range(4)])
    assert time.perf_counter() - started < 1.0  # queued, not sent in the caller
    assert box.backlog <= 5 + 4 and box.dropped >= 3
    box.close(10.0)  # returns as soon as every batch has had its attempts (~1.5 s)
    stats = box.stats()
    assert stats["sent"] == 0 and stats["backlog"] == 0
    assert stats["failed"] + stats["dropped"] == 12  # every event accounted for
    assert stats["attempts"] >= 2  # retried


def test_the_backlog_counts_a_batch_while_it_is_retried() -> None:
    """Work waits while a batch is between attempts: the backlog (the metrics' gauge, ``--json``) must not
    read 0 then."""
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    box = Outbox(WebhookSender(url, timeout=0.5), AlertConfig(url=url, retries=3, backlog=50), backoff=0.3)
    box.put([Alert(_event(i)) for i in range(3)])
    deadline = time.monotonic() + 5
    while box.attempts < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the first attempt was refused: the batch waits for its retry
    assert box.backlog == 3
    box.close(0.0)
    assert box.backlog == 0 and box.stats()["failed"] + box.stats()["dropped"] == 3


def test_a_digest_to_a_lookalike_is_refused(
    dns_server: LocalDnsServer, tmp_path: Path, store_url: str
) -> None:
    alert = '[[alert]]\ntype = "email"\nto = ["soc@army.ml"]\n'
    cfg = write_config(tmp_path, dns_server.port, alert, store_url=store_url)
    result = CliRunner().invoke(main, ["watch", "--once", "--no-held", "--config", str(cfg)])
    code, output = result.exit_code, result.output
    del result  # its traceback would keep what the command left open alive
    gc.collect()  # a store the refused command left open warns here (ResourceWarning: PostgreSQL's session)
    assert code == 2
    assert "soc@army.ml look(s) like a protected domain" in output
