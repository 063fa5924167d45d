"""The store as a running server holds it: one ``Store`` (engine), the hot-path snapshot caches, the decision
feed to the writer process, and the context rules over those caches.

Built once per server process (``typoguard serve``, ``typoguard relay``); ``close()`` stops the caches'
refresh threads and the engine.
"""

from __future__ import annotations

from pathlib import Path

from typoguard.config import Config
from typoguard.errors import StoreError
from typoguard.obs import JsonLog


class StoreParts:
    """The parent's side of the store: one ``Store`` (engine), the snapshot caches, the decision feed."""

    def __init__(self, config: Config, config_path: Path, log: JsonLog) -> None:
        from typoguard.core.context import LiveContext
        from typoguard.store import CorrespondentCache, OverrideCache, open_store
        from typoguard.store.cache import KnownPairsCache
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
