"""Held mail against a real Postfix: a private instance (own config and queue directory in a temp dir,
no network listeners) holds a message through header_checks; typoguard lists, releases and deletes it.

Skips with the reason if Postfix is not installed, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from typoguard.cli import main
from typoguard.config import load_config
from typoguard.held import PostfixQueue
from typoguard.store import DecisionEvent, open_store

IN_CI = os.environ.get("CI") == "true"


def _postfix_or_skip() -> None:
    missing = [t for t in ("postfix", "postqueue", "postsuper", "sendmail") if not shutil.which(t)]
    if missing or os.geteuid() != 0:
        reason = f"real Postfix test needs root and {', '.join(missing) or 'postfix'}"
        if IN_CI:
            pytest.fail(
                f"{reason}; under CI=true it must run (scripts/install-system-deps.sh installs postfix)"
            )
        pytest.skip(reason)


def _source(name: str) -> Path:
    for candidate in (Path("/etc/postfix") / name, Path("/usr/share/postfix") / f"{name}.dist"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(name)


@pytest.fixture
def postfix_instance() -> Iterator[Path]:
    _postfix_or_skip()
    # Not under tmp_path: pytest makes its base directory 0700, which the postfix user cannot traverse.
    root = Path(tempfile.mkdtemp(prefix="typoguard-postfix-"))
    conf, queue, data = root / "conf", root / "queue", root / "data"
    for d in (conf, queue, data):
        d.mkdir(parents=True)
    root.chmod(0o755)
    shutil.chown(data, "postfix")
    shutil.copy(_source("master.cf"), conf / "master.cf")
    for extra in ("postfix-files", "dynamicmaps.cf"):
        if (Path("/etc/postfix") / extra).exists():
            shutil.copy(Path("/etc/postfix") / extra, conf / extra)
    for extra_dir in ("postfix-files.d", "dynamicmaps.cf.d"):
        if (Path("/etc/postfix") / extra_dir).is_dir():
            shutil.copytree(Path("/etc/postfix") / extra_dir, conf / extra_dir)
    (conf / "header_checks").write_text("/^Subject: hold me/ HOLD typoguard test\n")
    (conf / "transport").write_text("defer.test retry:4.4.1 typoguard test: try later\n")
    (conf / "main.cf").write_text(
        "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {queue}",
                f"data_directory = {data}",
                "myhostname = typoguard.test",
                "mydomain = typoguard.test",
                "inet_interfaces = loopback-only",
                "inet_protocols = ipv4",
                "master_service_disable = inet",
                "mydestination =",
                # Delivered = logged status=sent and dropped: nothing leaves the machine. defer.test is
                # deferred ("try later"). A released message that is not flushed would wait an hour.
                "default_transport = discard:",
                f"transport_maps = texthash:{conf / 'transport'}",
                "queue_run_delay = 3600s",
                "minimal_backoff_time = 3600s",
                "maximal_backoff_time = 3600s",
                f"header_checks = regexp:{conf / 'header_checks'}",
                f"maillog_file = {root / 'postfix.log'}",
                f"maillog_file_prefixes = {root}",
                "",
            ]
        )
    )
    subprocess.run(["postfix", "-c", str(conf), "start"], check=True, capture_output=True, timeout=60)
    try:
        yield conf
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _send_held(conf: Path, recipient: str) -> None:
    msg = f"From: alice@army.mil\nTo: {recipient}\nSubject: hold me\n\nhello\n".encode()
    subprocess.run(
        ["sendmail", "-C", str(conf), "-f", "alice@army.mil", recipient], input=msg, check=True, timeout=30
    )


def delivered(conf: Path, queue_id: str, timeout: float = 10.0) -> str:
    """The instance's log line saying ``queue_id`` was delivered (``status=sent``: by ``discard:``), waiting
    up to ``timeout`` seconds; an assertion error with the log's tail if it was not."""
    log = conf.parent / "postfix.log"
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        for line in lines:
            if f" {queue_id}: to=<" in line and "status=sent" in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{queue_id} not delivered within {timeout} s; log:\n" + "\n".join(lines[-15:])
            )
        time.sleep(0.1)


def _wait_held(queue: PostfixQueue, n: int) -> list[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = queue.held()
        if len(held) >= n:
            return [m.queue_id for m in held]
        time.sleep(0.2)
    raise AssertionError(f"expected {n} held messages, Postfix shows {queue.messages()}")


def test_held_mail_in_a_real_postfix(postfix_instance: Path, tmp_path: Path) -> None:
    conf = postfix_instance
    queue = PostfixQueue(config_dir=str(conf))
    _send_held(conf, "bob@arrny.mil")
    _send_held(conf, "carol@arrny.mil")
    first, second = _wait_held(queue, 2)
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\nnode = "mx1"\n')
    store = open_store(load_config(cfg))
    store.write_decision_rows(
        [DecisionEvent(time.time(), "bob@arrny.mil", "hold", "arrny.mil", "army.mil", "omission", 0.8,
                       "alice@army.mil", first).row("d1")]
    )  # fmt: skip
    store.close()
    run = CliRunner().invoke
    r = run(main, ["held", "list", "--config", str(cfg), "--postfix-config", str(conf), "--format", "json"])
    assert r.exit_code == 0, r.output
    items = {o["queue_id"]: o for o in map(orjson.loads, r.output.splitlines())}
    assert set(items) == {first, second}
    assert items[first]["decision"]["intended"] == "army.mil" and items[second]["decision"] is None
    r = run(
        main, ["held", "release", first, "--by", "alice", "--config", str(cfg), "--postfix-config", str(conf)]
    )
    assert r.exit_code == 0, r.output
    r = run(
        main, ["held", "delete", second, "--by", "bob", "--config", str(cfg), "--postfix-config", str(conf)]
    )
    assert r.exit_code == 0, r.output
    assert queue.held() == []
    assert second not in {m.queue_id for m in queue.messages()}
    store = open_store(load_config(cfg))
    assert [(a.queue_id, a.action, a.by) for a in store.held_actions()] == [
        (first, "release", "alice"),
        (second, "delete", "bob"),
    ]
    store.close()
