"""``[postfix] config_directory`` (else ``$MAIL_CONFIG``) names the Postfix instance held mail is read from,
and a queue that cannot be read is said so with the reason - by the CLI, the API and the dashboard - never
an empty list or "No held mail." while mail is held.

A real private Postfix (``test_held_postfix.postfix_instance``: own config and queue directory in a temp dir)
holds a message. The wrong instance is a directory without main.cf; the relay's quarantine directory exists,
which is where an unreadable Postfix queue used to turn into a warning and an empty list.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from test_held_postfix import _send_held, _wait_held, postfix_instance  # noqa: F401 - the fixture

from typoguard.config import load_config
from typoguard.held import PostfixQueue
from typoguard.store import open_store
from typoguard.store.tokens import TokenStore


@pytest.fixture
def held_one(postfix_instance: Path) -> Iterator[tuple[Path, str]]:  # noqa: F811 - the fixture, imported
    conf = postfix_instance
    _send_held(conf, "bob@arrny.mil")
    (queue_id,) = _wait_held(PostfixQueue(config_dir=str(conf)), 1)
    yield conf, queue_id


def _config(tmp_path: Path, config_directory: str | None) -> Path:
    data = tmp_path / "data"
    (data / "quarantine" / "msg").mkdir(parents=True)  # the relay's quarantine is in use on this host
    text = f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{data}"\nnode = "mx1"\n'
    if config_directory is not None:
        text += f'[postfix]\nconfig_directory = "{config_directory}"\n'
    path = tmp_path / "typoguard.toml"
    path.write_text(text)
    return path


def _exe() -> str:
    return str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "typoguard")


def _env(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_") and k != "MAIL_CONFIG"}
    return {**clean, **env}


def _held_list(cfg: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_exe(), "held", "list", "--config", str(cfg), "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False, env=_env(**env),
    )  # fmt: skip


def test_the_cli_reads_the_configured_instance(held_one: tuple[Path, str], tmp_path: Path) -> None:
    conf, queue_id = held_one
    done = _held_list(_config(tmp_path, str(conf)))
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["queue_id"] for line in done.stdout.splitlines()] == [queue_id]


def test_mail_config_names_the_instance_when_the_key_is_unset(
    held_one: tuple[Path, str], tmp_path: Path
) -> None:
    conf, queue_id = held_one
    done = _held_list(_config(tmp_path, None), MAIL_CONFIG=str(conf))
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["queue_id"] for line in done.stdout.splitlines()] == [queue_id]


def test_the_cli_says_it_cannot_read_a_wrong_instance(held_one: tuple[Path, str], tmp_path: Path) -> None:
    wrong = tmp_path / "not-postfix"
    wrong.mkdir()
    done = _held_list(_config(tmp_path, str(wrong)))
    assert done.returncode != 0, f"exit 0 with {done.stdout!r} while mail is held"
    assert f"cannot read the queue of Postfix instance {wrong}" in done.stderr
    assert "main.cf" in done.stderr  # Postfix's own reason


def _signed_in(client: httpx.Client, secret: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    assert client.post("/login", data={"token": secret, "csrf": csrf.group(1)}).status_code == 303


@contextlib.contextmanager
def _served(cfg: Path) -> Iterator[tuple[httpx.Client, str]]:
    """``typoguard http --config cfg`` (the real process) on an ephemeral loopback port, an admin token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg.write_text(cfg.read_text() + f'[http]\nlisten = "127.0.0.1:{port}"\n')
    store = open_store(load_config(cfg))
    secret = TokenStore(store).create("admin-user", "admin", by="test")[1]
    store.close()
    log = cfg.parent / "http.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_exe(), "http", "--config", str(cfg)], stdout=out, stderr=subprocess.STDOUT, env=_env()
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client, secret
    finally:
        proc.terminate()
        proc.wait(15)


def test_the_api_and_dashboard_read_the_configured_instance(
    held_one: tuple[Path, str], tmp_path: Path
) -> None:
    conf, queue_id = held_one
    with _served(_config(tmp_path, str(conf))) as (client, secret):
        r = client.get("/v1/held", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200, r.text
        assert [m["queue_id"] for m in r.json()["held"]] == [queue_id]
        _signed_in(client, secret)
        page = client.get("/dashboard/held")
        assert queue_id in page.text and "No held mail." not in page.text


def test_the_api_and_dashboard_say_they_cannot_read_a_wrong_instance(
    held_one: tuple[Path, str], tmp_path: Path
) -> None:
    wrong = tmp_path / "not-postfix"
    wrong.mkdir()
    with _served(_config(tmp_path, str(wrong))) as (client, secret):
        r = client.get("/v1/held", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 502, f"{r.status_code} {r.text} while mail is held"
        assert f"cannot read the queue of Postfix instance {wrong}" in r.json()["error"]
        _signed_in(client, secret)
        started = time.monotonic()
        page = client.get("/dashboard/held")
        assert time.monotonic() - started < 30
        assert "No held mail." not in page.text
        assert f"cannot read the queue of Postfix instance {wrong}" in page.text


def test_the_key_wins_over_mail_config_and_must_be_absolute(tmp_path: Path) -> None:
    from typoguard.config import Config, PostfixConfig
    from typoguard.errors import ConfigError
    from typoguard.held.postfix import postfix_config_directory

    named = Config(postfix=PostfixConfig(config_directory="/etc/postfix-out"))
    assert postfix_config_directory(named, {"MAIL_CONFIG": "/etc/postfix-in"}) == "/etc/postfix-out"
    assert postfix_config_directory(Config(), {"MAIL_CONFIG": "/etc/postfix-in"}) == "/etc/postfix-in"
    assert postfix_config_directory(Config(), {}) is None  # Postfix's own default: no -c at all
    assert PostfixQueue.from_config(named, config_dir="/opt/pf").config_dir == "/opt/pf"  # --postfix-config
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text('[postfix]\nconfig_directory = "etc/postfix"\n')
    with pytest.raises(ConfigError, match=r"\[postfix\] config_directory must be an absolute path"):
        load_config(cfg)
