"""The store commands: db, allow/block, overrides, decisions, held (against stand-in Postfix tools)."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from typoguard.cli import main
from typoguard.config import load_config
from typoguard.errors import MailQueueError
from typoguard.held.postfix import parse_postqueue_json
from typoguard.store import DecisionEvent, open_store


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "typoguard.toml"
    path.write_text(
        f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\nnode = "n1"\n'
    )
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_db_upgrade_and_prune(cfg: Path) -> None:
    r = run("db", "upgrade", "--config", str(cfg))
    assert r.exit_code == 0 and "schema version 4 (applied 1, 2, 3, 4)" in r.output
    assert "up to date" in run("db", "upgrade", "--config", str(cfg)).output
    store = open_store(load_config(cfg))
    now = time.time()
    rows = [DecisionEvent(now - 200 * 86400, "a@b.org", "allow", "b.org").row("old")]
    rows.append(DecisionEvent(now, "a@b.org", "allow", "b.org").row("new"))
    store.write_decision_rows(rows)
    store.close()
    r = run("db", "prune", "--older-than", "180d", "--config", str(cfg))
    assert r.exit_code == 0 and "pruned 1 decisions" in r.output
    assert run("db", "prune", "--older-than", "soon", "--config", str(cfg)).exit_code == 2


def test_allow_block_list_remove(cfg: Path) -> None:
    r = run("allow", "Partner.org", "--reason", "contract 7", "--by", "alice", "--config", str(cfg))
    assert r.exit_code == 0 and "override #1: allow partner.org (alice: contract 7)" in r.output
    r = run(
        "block",
        "evil.org",
        "--reason",
        "phish",
        "--expires",
        "30d",
        "--config",
        str(cfg),
        env={"SUDO_USER": "bob"},
    )
    assert r.exit_code == 0 and "until" in r.output
    r = run("overrides", "list", "--config", str(cfg), "--format", "json")
    rows = [orjson.loads(x) for x in r.output.splitlines()]
    assert [(o["domain"], o["action"], o["created_by"]) for o in rows] == [
        ("partner.org", "allow", "alice"),
        ("evil.org", "block", "bob"),
    ]
    assert run("overrides", "remove", "evil.org", "--by", "carol", "--config", str(cfg)).exit_code == 0
    assert run("overrides", "remove", "evil.org", "--config", str(cfg)).exit_code == 1
    assert run("overrides", "remove", "#1", "--config", str(cfg)).exit_code == 0
    listed = run("overrides", "list", "--all", "--config", str(cfg)).output
    assert "removed" in listed and "carol" in listed
    assert run("allow", "x.org", "--config", str(cfg)).exit_code == 2  # --reason is required


def test_decisions_command(cfg: Path) -> None:
    store = open_store(load_config(cfg))
    store.write_decision_rows(
        [
            DecisionEvent(time.time(), f"u{i}@arrny.mil", "hold", "arrny.mil", "army.mil").row(f"e{i}")
            for i in range(5)
        ]
    )
    store.close()
    r = run("decisions", "--config", str(cfg), "--action", "hold", "--limit", "2", "--format", "json")
    assert r.exit_code == 0
    assert [orjson.loads(x)["event_id"] for x in r.output.splitlines()] == ["e4", "e3"]


# ----------------------------------------------------------------------------------- held mail
def _fake_postfix(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """postqueue/postsuper stand-ins over a JSON-lines queue file, first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    queue = tmp_path / "queue.jsonl"
    msgs = [
        {"queue_name": "hold", "queue_id": "4F9D195432C", "arrival_time": 1795700000, "message_size": 344,
         "sender": "alice@army.mil", "recipients": [{"address": "bob@arrny.mil"}]},
        {"queue_name": "deferred", "queue_id": "5A0E295432D", "arrival_time": 1795700001, "message_size": 10,
         "sender": "x@army.mil", "recipients": [{"address": "y@z.org", "delay_reason": "timeout"}]},
    ]  # fmt: skip
    queue.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in msgs))
    (bindir / "postqueue").write_text(f"#!/bin/sh\ncat {queue}\n")
    (bindir / "postsuper").write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"path = {str(queue)!r}\n"
        "flag, qid = sys.argv[1], sys.argv[2]\n"
        "msgs = [json.loads(l) for l in open(path)]\n"
        "out = []\n"
        "for m in msgs:\n"
        "    if m['queue_id'] == qid and flag == '-d':\n"
        "        continue\n"
        "    if m['queue_id'] == qid and flag == '-H':\n"
        "        m['queue_name'] = 'active'\n"
        "    out.append(m)\n"
        "open(path, 'w').write(''.join(json.dumps(m) + '\\n' for m in out))\n"
    )
    for tool in ("postqueue", "postsuper"):
        p = bindir / tool
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}, queue


def test_held_list_show_release_delete(cfg: Path, tmp_path: Path) -> None:
    env, _queue = _fake_postfix(tmp_path)
    store = open_store(load_config(cfg))
    store.write_decision_rows(
        [
            DecisionEvent(time.time(), "bob@arrny.mil", "hold", "arrny.mil", "army.mil", "omission", 0.8,
                          "alice@army.mil", "4F9D195432C").row("held-1")
        ]
    )  # fmt: skip
    store.close()
    r = run("held", "list", "--config", str(cfg), "--format", "json", env=env)
    assert r.exit_code == 0, r.output
    (item,) = [orjson.loads(x) for x in r.output.splitlines()]
    assert item["queue_id"] == "4F9D195432C" and item["decision"]["intended"] == "army.mil"
    r = run("held", "show", "4F9D195432C", "--config", str(cfg), env=env)
    assert r.exit_code == 0 and '"event_id": "held-1"' in r.output
    r = run(
        "held",
        "release",
        "4F9D195432C",
        "--by",
        "alice",
        "--reason",
        "checked",
        "--config",
        str(cfg),
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert run("held", "list", "--config", str(cfg), "--format", "json", env=env).output == ""
    r = run("held", "delete", "4F9D195432C", "--config", str(cfg), env=env)
    assert r.exit_code == 1 and "no held message" in r.output
    store = open_store(load_config(cfg))
    (action,) = store.held_actions("4F9D195432C")
    assert (action.action, action.by, action.reason, action.node) == ("release", "alice", "checked", "n1")
    store.close()


def test_held_delete_is_recorded(cfg: Path, tmp_path: Path) -> None:
    env, queue = _fake_postfix(tmp_path)
    r = run("held", "delete", "4F9D195432C", "--by", "bob", "--config", str(cfg), env=env)
    assert r.exit_code == 0, r.output
    assert b"4F9D195432C" not in queue.read_bytes()
    store = open_store(load_config(cfg))
    assert [a.action for a in store.held_actions()] == ["delete"]
    store.close()


def test_bad_queue_ids_and_output_are_refused(cfg: Path, tmp_path: Path) -> None:
    env, _ = _fake_postfix(tmp_path)
    assert run("held", "release", "-rf", "--config", str(cfg), env=env).exit_code != 0
    assert run("held", "release", "../../etc", "--config", str(cfg), env=env).exit_code == 1
    with pytest.raises(MailQueueError):
        parse_postqueue_json([b"{not json"])


@pytest.mark.parametrize(
    "command", [("decisions",), ("overrides", "list"), ("correspondents", "list")], ids=" ".join
)
def test_a_listing_where_no_store_exists_says_so_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A [store] data_dir with a typo, or a config other than the service's: the listing made a new empty
    database there and answered "nothing" with exit 0, as if the service had stored nothing."""
    data = tmp_path / "no-such-store"
    config = tmp_path / "typoguard.toml"
    config.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{data}"\n')
    r = run(*command, "--config", str(config))
    assert r.exit_code == 1, r.output
    assert f"no store at {data / 'typoguard.db'}" in r.output
    assert not data.exists()
