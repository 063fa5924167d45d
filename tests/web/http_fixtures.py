"""HTTP API test helpers: an app over a fresh SQLite store per test, tokens of each scope, a fake hold queue.

The fake queue stands in for Postfix's ``postqueue``/``postsuper`` in these HTTP-layer unit tests only;
the browser test releases a message from a real private Postfix (``audit_postfix_lab``), and the store's
``PostfixQueue`` itself is tested against a real Postfix in tests/store.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from starlette.applications import Starlette

from typoguard.config import Config, HttpConfig, ProtectConfig, StoreConfig
from typoguard.errors import MailQueueError
from typoguard.guard import Guard
from typoguard.held import QueuedMessage, Released
from typoguard.store import DecisionEvent, Store, open_store
from typoguard.store.tokens import TokenStore
from typoguard.web.app import create_app, uvicorn_server


@dataclass
class FakeHoldQueue:
    """Postfix's hold queue as a list; release/delete remove the message, as postsuper does."""

    messages: list[QueuedMessage] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def held(self) -> list[QueuedMessage]:
        return list(self.messages)

    def _take(self, queue_id: str) -> None:
        if not any(m.queue_id == queue_id for m in self.messages):
            raise MailQueueError(f"no held message with queue id {queue_id}")
        self.messages = [m for m in self.messages if m.queue_id != queue_id]

    def release(self, queue_id: str) -> Released:
        self._take(queue_id)
        self.released.append(queue_id)
        return Released(queue_id, attempted=True, queue_state="gone")  # as a delivered message is

    def delete(self, queue_id: str) -> None:
        self._take(queue_id)
        self.deleted.append(queue_id)


class RunningServer:
    """``app`` served by uvicorn on 127.0.0.1 (an ephemeral port) in a thread, as in production."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.server = uvicorn_server(app, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.run, name="http-test-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def http_config(tmp_path: Path, protected: tuple[str, ...]) -> Config:
    return Config(
        protect=ProtectConfig(domains=protected),
        store=StoreConfig(data_dir=str(tmp_path / "data"), node="test-node", refresh_interval=0.2),
        http=HttpConfig(login_attempts_per_minute=5),
        base_dir=str(tmp_path),
    )


@contextlib.contextmanager
def served(
    tmp_path: Path, guard: Guard, protected: tuple[str, ...], **http: Any
) -> Iterator[tuple[str, dict[str, str]]]:
    """The app with these ``[http]`` settings on a fresh store, served on loopback: its URL and a token
    of each scope."""
    config = http_config(tmp_path, protected)
    config = replace(config, http=replace(config.http, **http))
    store = open_store(config)
    tokens = TokenStore(store)
    secrets = {s: tokens.create(f"{s}-user", s, by="test")[1] for s in ("check", "read", "admin")}
    try:
        with RunningServer(create_app(config, guard=guard, store=store, queue=FakeHoldQueue())) as url:
            yield url, secrets
    finally:
        store.close()


def csrf_field(html: str) -> str:
    """The CSRF token of the form in a dashboard page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def log_in(client: httpx.Client, secret: str) -> httpx.Response:
    """Sign in to the dashboard with ``secret``, as the login form does; the reply."""
    page = client.get("/login")
    return client.post("/login", data={"token": secret, "csrf": csrf_field(page.text)})


def revoke_with_cli(typoguard_exe: str, config: Config, token_id: int) -> None:
    """``typoguard token revoke ID``, as an administrator runs it: another process on this node, with a
    config file naming the same store."""
    import subprocess

    path = Path(config.base_dir) / "revoke.toml"
    path.write_text(f'[store]\ndata_dir = "{config.store.data_dir}"\nnode = "{config.store.node}"\n')
    done = subprocess.run(
        [typoguard_exe, "token", "revoke", "--config", str(path), str(token_id)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def seed_decisions(store: Store, guard: Guard) -> None:
    """A few days of decisions: allowed mail, and look-alikes warned, held and rejected."""
    now = time.time()
    rows = [
        ("alice@army.mil", "bob@army.mil", "", 0),
        ("alice@army.mil", "bob@army.ml", "AAAA1", 0),
        ("alice@army.mil", "carol@army.ml", "", 1),
        ("dave@army.mil", "eve@gmial.com", "", 1),
        ("dave@army.mil", "frank@navy.mi", "BBBB2", 2),
        ("alice@army.mil", "gina@state.gov", "", 2),
    ]
    events = []
    for sender, recipient, queue_id, days_ago in rows:
        verdict = guard.check(recipient)
        events.append(
            DecisionEvent.from_verdict(
                verdict, sender=sender, queue_id=queue_id, node="test-node", when=now - days_ago * 86400
            )
        )
    store.write_decision_rows([e.row(f"e{i}") for i, e in enumerate(events)])


@dataclass
class Api:
    client: httpx.Client
    base_url: str
    store: Store
    queue: FakeHoldQueue
    tokens: dict[str, str]
    config: Config

    def headers(self, scope: str | None) -> dict[str, str]:
        return {} if scope is None else {"Authorization": f"Bearer {self.tokens[scope]}"}


def audit_postfix_lab() -> ModuleType:
    """tests/audit/audit_postfix_lab.py (a throw-away Postfix instance in a temp dir: own config, queue and
    port), imported rather than copied. Neither test directory is a package, hence the import by path."""
    name = "audit_postfix_lab"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "audit" / "audit_postfix_lab.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
