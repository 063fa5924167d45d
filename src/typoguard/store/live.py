"""The store as a running server holds it: one ``Store`` (engine), the hot-path snapshot caches, the decision
feed to the writer process, the context rules over those caches, and retention (``[store] keep_days``).

Built once per server process (``typoguard serve``, ``typoguard relay``); ``close()`` stops the caches'
refresh threads, retention and the engine.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typoguard.config import Config
from typoguard.errors import StoreError
from typoguard.obs import JsonLog

if TYPE_CHECKING:
    from typoguard.store.retention import RetentionTask


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
        self.context = LiveContext(
            self.overrides, self.confirmed, self.known, config.policy.thresholds(), clock=time.time
        )
        self.feed = DecisionFeed(
            writer_argv(config_path),
            spool_dir=resolved.spool_dir,
            node=resolved.node,
            queue_size=config.store.queue_size,
            on_event=log.event,
        )
        self._log = log
        self.retention: RetentionTask | None = None  # [store] keep_days = 0: keep forever
        if config.store.keep_days > 0:
            from typoguard.store.retention import RetentionTask

            # The first run once the server's event loop runs (the feed has it then): after start-up, and
            # its log record goes through that loop like every other one.
            self.retention = RetentionTask(
                self.store, config.store.keep_days, on_event=self._event_from_thread, ready=self._serving
            )

    def _serving(self) -> bool:
        loop = self.feed.loop
        return loop is not None and loop.is_running()

    def _event_from_thread(self, level: str, event: str, **fields: Any) -> None:
        """``JsonLog.event`` for another thread: the log belongs to the event loop's thread."""
        loop = self.feed.loop
        if loop is None or not loop.is_running():  # a run cut short by the stop: the JSON log is closing
            logging.getLogger("typoguard.store.retention").info("%s %s", event, fields)
            return
        loop.call_soon_threadsafe(lambda: self._log.event(level, event, **fields))

    def close(self) -> None:
        if self.retention is not None:
            self.retention.close()
        for cache in (self.overrides, self.confirmed, self.known):
            cache.close()
        self.store.close()
