"""HTTP test fixtures. Helpers live in http_fixtures.py: ``tests/http`` is no package (``http`` is stdlib)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_fixtures import Api, FakeHoldQueue, RunningServer, http_config, seed_decisions

from typoguard.guard import Guard
from typoguard.held import QueuedMessage
from typoguard.store import open_store
from typoguard.store.tokens import TokenStore
from typoguard.web.app import create_app


@pytest.fixture
def api(tmp_path: Path, guard: Guard, protected: tuple[str, ...]) -> Iterator[Api]:
    config = http_config(tmp_path, protected)
    store = open_store(config)
    tokens = TokenStore(store)
    secrets = {
        scope: tokens.create(f"{scope}-user", scope, by="test")[1] for scope in ("check", "read", "admin")
    }
    seed_decisions(store, guard)
    queue = FakeHoldQueue(
        [QueuedMessage("BBBB2", "hold", time.time() - 60, 1234, "dave@army.mil", ("frank@navy.mi",))]
    )
    app = create_app(config, guard=guard, store=store, queue=queue)
    with RunningServer(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        yield Api(client, base_url, store, queue, secrets, config)
    store.close()


CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright drives it, never a downloaded browser
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium under Playwright, one per test module; skips without it, except under CI=true."""
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed (run scripts/install-chromium.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the browser tests must run")
        print(f"\nskipping browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()
