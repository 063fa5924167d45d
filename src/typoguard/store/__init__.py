"""The database only: decisions, correspondents, overrides, held-mail actions, tokens (SQLAlchemy 2 Core).

SQLite by default (a WAL file under ``[store] data_dir``), PostgreSQL (psycopg 3) through ``[store] url`` for
several nodes sharing one history. The surface the service uses::

    store = open_store(config)                  # connects, applies migrations
    writer = DecisionWriter(store)              # background batching writer; submit() never blocks
    overrides = OverrideCache(store)            # refreshed every [store] refresh_interval seconds
    confirmed = CorrespondentCache(store)
    LiveContext(overrides, confirmed, ...)      # core.context: the rules that use them (pure)
    writer.submit(DecisionEvent.from_verdict(...))
    ...; writer.close(); overrides.close(); confirmed.close(); store.close()

Also the live parts servers use: the decision feed (a writer process), its spool, the hot-path caches.
May import: ``core``, ``config``, ``obs``, ``errors``. Never ``held``, the servers or ``cli``.
"""

from __future__ import annotations

from typoguard.store.cache import CorrespondentCache, OverrideCache
from typoguard.store.correspondents import CorrespondentDomain
from typoguard.store.decisions import DecisionEvent, DecisionQuery, DecisionRecord
from typoguard.store.overrides import Override
from typoguard.store.store import Store, open_store, parse_duration
from typoguard.store.writer import DecisionWriter

__all__ = [
    "CorrespondentCache",
    "CorrespondentDomain",
    "DecisionEvent",
    "DecisionQuery",
    "DecisionRecord",
    "DecisionWriter",
    "Override",
    "OverrideCache",
    "Store",
    "open_store",
    "parse_duration",
]
