"""The decision feed: log lines -> pipe -> writer process; overflow spilled and adopted exactly once."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from typoguard.config import Config, PolicyConfig, ProtectConfig
from typoguard.obs import JsonLog
from typoguard.policyd.decider import PolicyDecider
from typoguard.protocols.postfix_policy import PolicyRequest
from typoguard.store import DecisionWriter, Store
from typoguard.store.feed import DecisionFeed, adopt_raw_spills, event_from_line, write_raw_spill

from .conftest import store_config

CONFIG = Config(
    protect=ProtectConfig(domains=("army.mil",)), policy=PolicyConfig(internal_senders=("army.mil",))
)


@functools.cache
def _decider() -> PolicyDecider:
    return PolicyDecider.build(CONFIG)


def _line(recipient: str, sender: str = "alice@army.mil", queue_id: str = "") -> bytes:
    request = PolicyRequest.from_attributes(
        {
            "request": "smtpd_access_policy",
            "protocol_state": "RCPT",
            "sender": sender,
            "recipient": recipient,
            "client_address": "192.0.2.7",
            "queue_id": queue_id,
        }
    )
    _reply, _action, record = _decider().decide(request)
    assert record is not None
    log = JsonLog(level="info", path="/dev/null")
    try:
        return log.line(record)
    finally:
        log.close()


def test_a_decision_log_line_is_the_stored_event() -> None:
    event = event_from_line(_line("bob@army.ml", queue_id="4Xk1Qz0mKfz3"), "mx1")
    assert event is not None
    assert (event.recipient, event.action, event.domain, event.intended, event.kind) == (
        "bob@army.ml", "reject", "army.ml", "army.mil", "suffix_typo",
    )  # fmt: skip
    assert (event.sender, event.queue_id, event.node, event.mode) == (
        "alice@army.mil", "4Xk1Qz0mKfz3", "mx1", "enforce",
    )  # fmt: skip
    assert abs(event.time - time.time()) < 60
    assert event_from_line(_line("bob@army.ml", sender="x@example.net"), "mx1") is None  # not guarded
    assert event_from_line(b'{"time":"2026-11-27T00:00:00.000Z","event":"reloaded"}', "mx1") is None


@pytest.mark.parametrize("in_loop", [False, True], ids=["no-loop", "event-loop"])
def test_what_a_stalled_writer_cannot_take_is_spilled_and_stored_exactly_once(
    sqlite_store: Store, tmp_path: Path, in_loop: bool
) -> None:
    spool = tmp_path / "spool"
    stalled = [sys.executable, "-c", "import time; time.sleep(60)"]  # never reads its pipe
    feed = DecisionFeed(stalled, spool_dir=spool, node="mx1", queue_size=100)
    loop = asyncio.new_event_loop() if in_loop else None
    feed.loop = loop  # with a loop: waits for the pipe with add_writer, spills from a worker thread
    line = _line("bob@army.ml")
    try:
        for _ in range(6000):  # about 2.4 MB: more than the pipe and the 100-line memory allowance
            feed.append(line)
        feed.flush()
        if loop is None:
            assert sorted(spool.glob("feed-*.lines")), "nothing spilled"
        deadline = time.monotonic() + 10  # with a loop: once the spill thread has written what it was given
        while feed.pending_bytes > 100 * 512 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert feed.pending_bytes <= 100 * 512
    finally:
        assert feed.close(timeout=0.5) is False  # the stalled writer took nothing: the rest is spilled too
        if loop is not None:
            loop.close()
    raw = b"".join(p.read_bytes() for p in spool.glob("feed-*.lines"))
    total_lines = sum(1 for x in raw.splitlines() if x.startswith(b"{"))
    # What the pipe took is kept until the writer reports it stored: a writer that never read it loses
    # nothing, it is spilled with its stream offsets (a header line) like the rest.
    assert raw.count(b"\n") - total_lines == 1 and raw.count(b"\n#") + raw.startswith(b"#") == 1
    assert total_lines == 6000
    assert adopt_raw_spills(spool, "mx1") == total_lines
    assert adopt_raw_spills(spool, "mx1") == 0  # idempotent: converted once
    writer = DecisionWriter(sqlite_store, spool_dir=spool)
    writer.adopt_spool()
    writer.replay_now()
    writer.close()
    assert sqlite_store.count_decisions() == total_lines


def test_a_spill_thread_that_falls_behind_is_bounded_counted_and_loses_nothing(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spill thread held back (a slow disk): what it was given counts as unsaved and backlog (a metric
    never reads 0 while work waits), memory stays bounded (the loop then writes the spills itself: before,
    they queued without limit), and once it goes on every decision is stored exactly once."""
    import threading

    from typoguard.store import feed as feed_module

    spool = tmp_path / "spool"
    held = threading.Event()
    given: list[int] = []
    real_write = feed_module.write_raw_spill

    def slow_write(spool_dir: Path, data: Any, pid: int, serial: int) -> Path:
        if threading.current_thread().name.startswith("typoguard-spill"):
            given.append(len(data) if isinstance(data, bytes) else sum(map(len, data)))
            held.wait(30)  # the disk does not take it yet
        return real_write(spool_dir, data, pid, serial)

    monkeypatch.setattr(feed_module, "write_raw_spill", slow_write)
    stalled = [sys.executable, "-c", "import time; time.sleep(60)"]  # never reads its pipe
    feed = DecisionFeed(stalled, spool_dir=spool, node="mx1", queue_size=100)
    loop = asyncio.new_event_loop()
    feed.loop = loop
    line = _line("bob@army.ml")
    bound = 100 * 512
    try:
        for _ in range(40):  # 40 x 300 lines, ~4.8 MB: each flush spills (more than queue_size's worth)
            for _ in range(300):
                feed.append(line)
            feed.flush()
            assert feed.pending_bytes <= 2 * bound + 300 * len(line)  # queue + what the thread was given
        assert len(given) == 1  # one spill handed over; it waits, the loop wrote the rest
        assert feed.pending_bytes >= given[0] > 0  # counted while it waits: a kill -9 would lose it
        assert feed.backlog_bytes >= feed.pending_bytes + feed.spool_bytes()
        assert len(list(spool.glob("feed-*.lines"))) >= 30
    finally:
        held.set()
        assert feed.close(timeout=0.5) is False
        loop.close()
    assert adopt_raw_spills(spool, "mx1") == 12_000
    writer = DecisionWriter(sqlite_store, spool_dir=spool)
    writer.adopt_spool()
    writer.replay_now()
    writer.close()
    assert sqlite_store.count_decisions() == 12_000


def test_the_real_writer_process_stores_what_it_is_fed(tmp_path: Path) -> None:
    from typoguard.store import open_store
    from typoguard.store.feed import writer_argv

    config = tmp_path / "t.toml"
    cfg = store_config(tmp_path)
    config.write_text(f'[store]\ndata_dir = "{cfg.data_dir}"\nspool_dir = "{cfg.spool_dir}"\nnode = "mx9"\n')
    feed = DecisionFeed(writer_argv(config), spool_dir=Path(cfg.spool_dir), node="mx9")
    for i in range(1000):
        feed.append(_line(f"user{i}@army.ml"))
    # What the service spilled while the writer lagged is stored too, by the time the writer exits.
    spilled = b"".join(_line(f"late{i}@army.ml") for i in range(50))
    write_raw_spill(Path(cfg.spool_dir), spilled, 1, 1)
    assert feed.close() is True
    assert not list(Path(cfg.spool_dir).glob("*.lines")) and not list(Path(cfg.spool_dir).glob("*.jsonl"))
    store = open_store(cfg)
    try:
        assert store.count_decisions() == 1050
    finally:
        store.close()


def test_a_spill_the_killed_service_was_writing_is_adopted(tmp_path: Path) -> None:
    import subprocess

    from typoguard.store.feed import process_gone, recover_partial_spills

    spool = tmp_path / "spool"
    spool.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lines = b"".join(_line(f"part{i}@army.ml") for i in range(10))
    (spool / f"feed-20261206T000000-{dead.pid}-3.lines.part").write_bytes(lines + lines[:40])  # torn end
    (spool / f"feed-20261206T000000-{os.getpid()}-4.lines.part").write_bytes(lines)  # still being written
    assert recover_partial_spills(spool, process_gone) == 1
    assert adopt_raw_spills(spool, "mx1") == 10  # the torn last line skipped
    assert [p.name.endswith(".part") for p in spool.iterdir() if "-4." in p.name] == [True]
