"""``typoguard serve`` with its memory, as an operator runs it: a real process, its writer process, SQLite
or a real PostgreSQL shared by two nodes, the HTTP API in the same process."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from typoguard.config import load_config
from typoguard.protocols.postfix_policy import implementation as codec_implementation
from typoguard.store import DecisionQuery, open_store

from .pgcluster import PgCluster
from .serve_process import ServeProcess


def _eventually(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


def _stored(node: ServeProcess) -> list[tuple[str, str, str, str]]:
    store = open_store(load_config(node.config))
    try:
        rows = store.decisions(DecisionQuery(limit=10_000))
    finally:
        store.close()
    return sorted((r.event.recipient, r.event.action, r.event.node, r.event.queue_id) for r in rows)


@pytest.fixture
def served(typoguard_exe: str, tmp_path: Path) -> Iterator[ServeProcess]:
    node = ServeProcess(typoguard_exe, tmp_path / "a").start()
    yield node
    node.stop()


def test_every_guarded_decision_is_stored_and_the_service_stops_cleanly(served: ServeProcess) -> None:
    assert served.ask("bob@army.ml", queue_id="4Xk1Qz0mKfz3").startswith("550 5.1.2")
    assert served.ask("bob@army.mil") == "DUNNO"
    assert served.ask("bob@army.ml", sender="stranger@example.net") == "DUNNO"  # not guarded: not stored
    assert served.stop() == 0
    assert _stored(served) == [
        ("bob@army.mil", "allow", "node-a", ""),
        ("bob@army.ml", "reject", "node-a", "4Xk1Qz0mKfz3"),
    ]
    events = [r["event"] for r in served.records()]
    assert events.index("decision_writer_stopped") < events.index("stopped")
    assert served.records("listening")[0]["codec"] == codec_implementation()  # what the admin is told
    assert served.records("decision_writer_stopped")[0]["clean"] is True


def test_the_metrics_page_shows_the_writer_and_its_backlog(served: ServeProcess) -> None:
    served.ask("bob@army.ml")
    with urllib.request.urlopen(f"http://127.0.0.1:{served.metrics_port}/metrics", timeout=5) as r:
        page = r.read().decode()
    assert "typoguard_store_writer_up 1.0" in page
    assert "typoguard_store_backlog_bytes" in page and "typoguard_store_writer_restarts_total 0.0" in page


def test_the_writer_process_yields_the_cpu_to_the_policy_service(served: ServeProcess) -> None:
    # At saturation a niced writer that is running when Postfix's next request arrives would keep the core
    # until its slice ends; under SCHED_IDLE the service preempts it at once (docs/store.md).
    served.ask("bob@army.mil")
    writer = served.writer_pid()
    assert writer is not None
    _eventually(lambda: os.sched_getscheduler(writer) == os.SCHED_IDLE, "the writer under SCHED_IDLE")
    assert os.getpriority(os.PRIO_PROCESS, writer) == 19
    assert os.sched_getscheduler(served.proc.pid) == os.SCHED_OTHER  # the service itself: untouched


def test_a_killed_writer_process_is_replaced_and_later_decisions_are_stored(served: ServeProcess) -> None:
    served.ask("carol@army.mil")
    first = served.writer_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    # Decisions keep being answered at once; the feed notices the broken pipe and starts a new writer.
    _eventually(
        lambda: served.ask("dave@army.mil") == "DUNNO" and served.writer_pid() not in (None, first),
        "a new writer process",
    )
    assert served.records("decision_writer_lost")
    with urllib.request.urlopen(f"http://127.0.0.1:{served.metrics_port}/metrics", timeout=5) as r:
        assert "typoguard_store_writer_restarts_total 1.0" in r.read().decode()
    served.ask("erin@arny.mil")
    assert served.stop() == 0
    stored = {r[0] for r in _stored(served)}
    assert "erin@arny.mil" in stored  # after the restart
    assert "dave@army.mil" in stored or len(stored) >= 2


def test_overrides_from_the_command_line_reach_the_running_service(served: ServeProcess) -> None:
    assert served.ask("frank@arny.mil").startswith(("HOLD", "550"))
    served.cli("allow", "arny.mil", "--reason", "a real partner")
    _eventually(lambda: served.ask("frank@arny.mil") == "DUNNO", "the allow override applied")
    served.cli("block", "example.com", "--reason", "never mail them")
    _eventually(lambda: served.ask("gina@example.com").startswith("550"), "the block override applied")
    served.cli("overrides", "remove", "arny.mil", "--reason", "done")
    _eventually(lambda: served.ask("frank@arny.mil") != "DUNNO", "the removal applied")


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-workers"])
def test_the_http_api_is_served_with_the_policy_service_and_follows_reloads(
    typoguard_exe: str, tmp_path: Path, workers: int
) -> None:
    # One worker: uvicorn in the service's own event loop. More: `typoguard http` as a child process
    # (its supervisor and workers), started, reloaded and stopped with the service.
    node = ServeProcess(typoguard_exe, tmp_path / "h", http=True, http_workers=workers).start()
    http_child: set[int] = set()
    try:
        if workers > 1:
            _eventually(lambda: bool(node.records("http_process_ready")), "the API's processes started")
            assert node.proc is not None
            http_child = _children(node.proc.pid) - {node.writer_pid()}
            assert len(http_child) == 1  # the API's supervisor, with its own workers below it
            assert len(_children(next(iter(http_child)))) == workers
        base = f"http://127.0.0.1:{node.http_port}"
        assert f"{base}/" in node.out.read_text()  # the banner names the API's address
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as r:
            assert r.status == 200
        token = node.cli("token", "create", "--scope", "check", "--name", "test").split()[-1]

        def check(rcpt: str) -> str:
            req = urllib.request.Request(
                f"{base}/v1/check",
                data=json.dumps({"sender": "alice@army.mil", "recipients": [rcpt]}).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as r:
                return str(json.load(r)["verdicts"][0]["action"])

        assert check("bob@army.ml") == "reject"
        assert check("bob@exmaple.com") == "allow"
        node.config.write_text(
            node.config.read_text().replace('"army.mil", "navy.mil"', '"army.mil", "navy.mil", "example.com"')
        )
        assert node.proc is not None
        node.proc.send_signal(signal.SIGHUP)
        _eventually(lambda: bool(node.records("reloaded")), "reloaded")
        if workers > 1:  # every worker reloads the file: ask each of them, over fresh connections
            _eventually(lambda: all(check("bob@exmaple.com") != "allow" for _ in range(8)), "reloaded")
        assert check("bob@exmaple.com") != "allow"
        assert node.ask("bob@exmaple.com").startswith("550")
    finally:
        assert node.stop() == 0
    for pid in http_child:  # stopped with the service, not left behind
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_an_api_child_process_that_dies_is_started_again(typoguard_exe: str, tmp_path: Path) -> None:
    node = ServeProcess(typoguard_exe, tmp_path / "k", http=True, http_workers=2).start()
    try:
        _eventually(lambda: bool(node.records("http_process_ready")), "the API's processes started")
        first = node.records("http_process_ready")[0]["pid"]
        os.kill(first, signal.SIGKILL)
        _eventually(lambda: len(node.records("http_process_ready")) == 2, "the API started again", timeout=20)
        assert node.records("http_process_exited")[0]["pid"] == first
        assert node.ask("bob@army.ml").startswith("550")  # the policy service never stopped answering
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        assert node.stop() == 0


def test_two_serve_processes_sharing_postgresql_see_one_history_and_one_set_of_overrides(
    typoguard_exe: str, tmp_path: Path, pg_url: str
) -> None:
    a = ServeProcess(typoguard_exe, tmp_path / "a", node="mx1", url=pg_url).start()
    b = ServeProcess(typoguard_exe, tmp_path / "b", node="mx2", url=pg_url).start()
    try:
        assert a.ask("bob@army.ml").startswith("550")
        assert b.ask("carol@army.ml").startswith("550")
        # One history: each node's decisions are visible from the other's configuration.
        _eventually(
            lambda: {(r[0], r[2]) for r in _stored(b)} >= {("bob@army.ml", "mx1"), ("carol@army.ml", "mx2")},
            "both nodes' decisions in PostgreSQL",
        )
        # One set of overrides: made through node a's config, applied by node b.
        assert b.ask("dave@arny.mil") != "DUNNO"
        a.cli("allow", "arny.mil", "--reason", "shared override")
        _eventually(lambda: b.ask("dave@arny.mil") == "DUNNO", "node b applies node a's override")
        _eventually(lambda: a.ask("dave@arny.mil") == "DUNNO", "node a applies its own override")
    finally:
        assert a.stop() == 0
        assert b.stop() == 0
    assert {r[2] for r in _stored(a)} == {"mx1", "mx2"}


def test_serve_starts_and_answers_with_postgresql_down_and_stores_everything_once_it_is_back(
    typoguard_exe: str, tmp_path: Path, pg_cluster: PgCluster, pg_url: str
) -> None:
    pg_cluster.stop()
    node = None
    try:
        node = ServeProcess(typoguard_exe, tmp_path / "down", node="mx3", url=pg_url).start()
        assert node.records("store_unavailable")  # said loudly, and mail goes on
        assert node.ask("bob@army.ml").startswith("550")
        assert node.ask("bob@army.mil") == "DUNNO"
        time.sleep(1.0)  # the writer process gets the lines while the database is still down: it spools them
    finally:
        pg_cluster.start()
    assert node is not None
    try:
        assert node.ask("carol@army.mil") == "DUNNO"  # after the database came back
        _eventually(lambda: len(_stored(node)) == 3, "the spooled and the new decisions stored", timeout=30)
    finally:
        assert node.stop() == 0
    assert sorted(r[0] for r in _stored(node)) == ["bob@army.mil", "bob@army.ml", "carol@army.mil"]
