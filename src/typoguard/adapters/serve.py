"""``typoguard serve``: the policy service with its memory, and the HTTP API, in one process.

    PolicyServer (asyncio, the hot path)
      |- PolicyDecider -> LiveContext       overrides / confirmed correspondents / known pairs: snapshots
      |                                     refreshed by threads every [store] refresh_interval seconds
      |- decision log line ---> stderr/file (JsonLog)
      |                   \\--> pipe ---> writer process (python -m typoguard.store.feed, nice 19)
      |                                     DecisionWriter: batches, spool, replay, correspondents
      '- HttpCompanion: uvicorn in the same event loop ([http] enabled)

The store never stops mail: a database that is down at start leaves the snapshots empty (retried every
refresh) and the writer process spools decisions until it is back. A ``[store]`` that cannot be used at
all (a bad URL, an unwritable data directory) is a configuration error: exit 2 before listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from typoguard.adapters import event_loop
from typoguard.adapters.policy_decider import PolicyDecider
from typoguard.adapters.policyd import PolicyServer, banner
from typoguard.config import Config
from typoguard.errors import StoreError, TypoguardError
from typoguard.obs import JsonLog

if TYPE_CHECKING:
    import uvicorn

    from typoguard.store import Store

SERVICES = ("policyd", "http")


class HttpCompanion:
    """The HTTP API and dashboard served by uvicorn inside the policy service's event loop."""

    def __init__(self, config: Config, decider: PolicyDecider, store: Store | None, log: JsonLog) -> None:
        from typoguard.adapters.http_api import create_app, parse_listen

        self.config = config
        self.log = log
        self.host, self.port = parse_listen(config.http.listen)
        self.app = create_app(config, guard=decider.guard, store=store)
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, policy: PolicyServer) -> None:
        from typoguard.adapters.http_api import uvicorn_server

        # It installs no signal handlers: the policy service owns SIGTERM/SIGHUP and stops it by should_exit.
        self.server = server = uvicorn_server(self.app, self.host, self.port)
        self.task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if not server.started:
            self.log.event("error", "http_failed", listen=self.config.http.listen)
            return
        policy.addresses.append(f"http://{self.host}:{self.port}/")

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 10)

    def reloaded(self, decider: PolicyDecider) -> None:
        self.app.state.api.guard = decider.guard  # /v1/check answers with the new configuration too


class StoreParts:
    """The parent's side of the store: one ``Store`` (engine), the snapshot caches, the decision feed."""

    def __init__(self, config: Config, config_path: Path, log: JsonLog) -> None:
        from typoguard.store import CorrespondentCache, OverrideCache, open_store
        from typoguard.store.cache import KnownPairsCache
        from typoguard.store.context import LiveContext
        from typoguard.store.feed import DecisionFeed, writer_argv
        from typoguard.store.store import resolve

        resolved = resolve(config)  # ConfigError for a bad [store]
        try:
            self.store = open_store(config)
        except StoreError as exc:  # down now: run, retry the snapshots, let the writer spool
            log.event("error", "store_unavailable", error=str(exc), then="spooling decisions; retrying")
            self.store = open_store(config, upgrade=False)
        self.overrides = OverrideCache(self.store)
        self.confirmed = CorrespondentCache(self.store)
        self.known = KnownPairsCache(self.store)
        self.context = LiveContext(self.overrides, self.confirmed, self.known, config.policy.thresholds())
        self.feed = DecisionFeed(
            writer_argv(config_path),
            spool_dir=resolved.spool_dir,
            node=resolved.node,
            queue_size=config.store.queue_size,
            on_event=log.event,
        )

    def close(self) -> None:
        for cache in (self.overrides, self.confirmed, self.known):
            cache.close()
        self.store.close()


def run(config: Config, *, config_path: Path, only: Iterable[str] = ()) -> int:
    """Run the services ``config`` enables (or ``only`` these); the exit status for ``sys.exit``.

    0 after a clean stop (SIGTERM), 1 if it cannot listen, 2 if the configuration cannot be used.
    """
    wanted = set(only) or set(SERVICES)
    if wanted == {"http"}:
        from typoguard.adapters.http_api import serve_http

        return serve_http(config)
    try:
        log = JsonLog(level=config.log.level, path=config.log.file)
        decider = PolicyDecider.build(config)
    except TypoguardError as exc:
        print(f"typoguard: {exc}", file=sys.stderr)
        return 2
    if not decider.protected_domains:
        print("typoguard: nothing to protect: add [protect] domains or files to the config", file=sys.stderr)
        return 2
    parts: StoreParts | None = None
    if config.store.enabled:
        try:
            parts = StoreParts(config, config_path, log)
        except TypoguardError as exc:
            print(f"typoguard: [store]: {exc}", file=sys.stderr)
            return 2
        decider = PolicyDecider(config, decider.guard, decider.senders, context=parts.context)
    server = PolicyServer(config, decider, log, config_path=config_path)
    if parts is not None:
        server.attach_feed(parts.feed)
    if "http" in wanted and config.http.enabled:
        try:
            server.companions.append(HttpCompanion(config, decider, parts.store if parts else None, log))
        except TypoguardError as exc:
            print(f"typoguard: [http]: {exc}", file=sys.stderr)
            return 2
    # The compiled index lives as long as the process: keep it out of every garbage collection (shorter
    # pauses, so a better p99). Reloads freeze the new index the same way.
    gc.collect()
    gc.freeze()

    def ready(srv: PolicyServer) -> None:
        print(banner(srv), flush=True)

    try:
        return event_loop.run(server.run(on_ready=ready))
    finally:
        if parts is not None:
            with contextlib.suppress(Exception):
                if server.feed is not None and server.feed.alive:  # run() never started: stop the writer
                    server.feed.close()
            parts.close()
        log.close()
