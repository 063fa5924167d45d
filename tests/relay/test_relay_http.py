"""The HTTP API's held endpoints cover the relay's quarantine: list, release (re-injected), delete."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from http_fixtures import RunningServer
from relay_lab import NextHopSink, RunningRelay, hold_one

from typoguard.store import open_store
from typoguard.store.tokens import TokenStore
from typoguard.web.app import create_app

PLAIN = b"From: alice@army.mil\r\nSubject: lunch\r\n\r\nLunch at noon?\r\n"


def test_held_endpoints_list_release_delete(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(store=True)
    first, second = hold_one(relay, "bob@nvy.mil", PLAIN), hold_one(relay, "dave@nvy.mil", PLAIN)
    store = open_store(relay.config)
    try:
        admin = TokenStore(store).create("admin-user", "admin", by="test")[1]
        auth = {"Authorization": f"Bearer {admin}"}
        app = create_app(relay.config, store=store)  # the default queue: Postfix's and the quarantine
        with RunningServer(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            deadline = time.monotonic() + 15
            while True:
                held: list[dict[str, Any]] = client.get("/v1/held", headers=auth).json()["held"]
                if (all(h["decision"] for h in held) and len(held) == 2) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert {h["queue_id"] for h in held} == {first, second}
            assert all(h["decision"]["action"] == "hold" for h in held)
            assert client.post(f"/v1/held/{first}/release", headers=auth).status_code == 200
            assert client.delete(f"/v1/held/{second}", headers=auth).status_code == 200
            assert client.delete(f"/v1/held/{second}", headers=auth).status_code == 409
            assert client.get("/v1/held", headers=auth).json()["held"] == []
        (got,) = next_hop.wait_for(1)
        assert got.content == PLAIN and got.rcpt_tos == ["bob@nvy.mil"]
        actions = {(a.queue_id, a.action) for a in store.held_actions()}
        assert actions == {(first, "release"), (second, "delete")}
    finally:
        store.close()
