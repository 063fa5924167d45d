"""Hot-path snapshots of the store: active overrides and confirmed correspondents.

Each cache holds a plain dict that a background thread replaces every ``interval`` seconds (default 5), so
a change made on any node takes effect everywhere within that time, without a restart. A look-up is a dict
probe per domain label; it never touches the database. If a refresh fails, the last snapshot stays in use
and ``errors`` counts the failure.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Generic, TypeVar

from typoguard.store.correspondents import CorrespondentDomain
from typoguard.store.overrides import Override
from typoguard.store.store import Store, lookup_override

log = logging.getLogger("typoguard.store.cache")

T = TypeVar("T")


class _Refresher:
    """A daemon thread that calls ``refresh()`` every ``interval`` seconds until ``close()``."""

    def __init__(self, store: Store, interval: float | None) -> None:
        self.store = store
        self.interval = interval or store.config.settings.refresh_interval
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        raise NotImplementedError

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"typoguard-{type(self).__name__}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


class _Snapshot(_Refresher, Generic[T]):
    def __init__(self, store: Store, interval: float | None, *, start: bool) -> None:
        super().__init__(store, interval)
        self.snapshot: dict[str, T] = {}
        self.refreshed_at = 0.0
        self.refresh()
        if start:
            self._start()

    def _load(self) -> dict[str, T]:
        raise NotImplementedError

    def refresh(self) -> bool:
        """Reload now; False (and the old snapshot kept) if the database failed."""
        try:
            fresh = self._load()
        except Exception as exc:
            self.errors += 1
            log.warning("%s refresh failed, keeping the last snapshot: %s", type(self).__name__, exc)
            return False
        self.snapshot = fresh  # one reference swap: readers see the old or the new dict, never a mix
        self.refreshed_at = time.time()
        return True


class OverrideCache(_Snapshot[Override]):
    """Active overrides by domain; ``lookup`` also finds a parent domain's override."""

    def __init__(self, store: Store, interval: float | None = None, *, start: bool = True) -> None:
        super().__init__(store, interval, start=start)

    def _load(self) -> dict[str, Override]:
        return self.store.active_overrides()

    def lookup(self, domain: str) -> Override | None:
        """The override for ``domain`` (ASCII, lower case) or its nearest parent; expired ones excluded."""
        found = lookup_override(self.snapshot, domain) if self.snapshot else None
        if found is not None and found.expires_at is not None and found.expires_at <= time.time():
            return None
        return found


class CorrespondentCache(_Snapshot[CorrespondentDomain]):
    """Recipient domains an admin confirmed and people here wrote to at least ``min_count`` times."""

    def __init__(
        self, store: Store, interval: float | None = None, *, min_count: int | None = None, start: bool = True
    ) -> None:
        self.min_count = store.config.settings.confirmed_min_count if min_count is None else min_count
        super().__init__(store, interval, start=start)

    def _load(self) -> dict[str, CorrespondentDomain]:
        return self.store.confirmed_correspondents(self.min_count)

    def lookup(self, domain: str) -> CorrespondentDomain | None:
        return self.snapshot.get(domain)


class KnownPairsCache(_Refresher):
    """Whether a sender domain wrote to a recipient domain before, for the look-alikes mail went to.

    The pairs table can be large; the policy only asks about recipient domains it flagged. So the cache
    *watches*: ``lookup`` of a domain it has not loaded answers None (unknown: no first-contact bump) and
    adds the domain to the watch list; the next refresh (``interval`` seconds) loads every pair for the
    watched domains. At most ``max_watched`` domains are watched.
    """

    def __init__(
        self, store: Store, interval: float | None = None, *, start: bool = True, max_watched: int = 50_000
    ) -> None:
        super().__init__(store, interval)
        self.max_watched = max_watched
        self.watched: set[str] = set()
        self.loaded: frozenset[str] = frozenset()
        self.pairs: frozenset[tuple[str, str]] = frozenset()
        if start:
            self._start()

    def lookup(self, sender_domain: str, recipient_domain: str) -> bool | None:
        if recipient_domain in self.loaded:
            return (sender_domain, recipient_domain) in self.pairs
        if len(self.watched) < self.max_watched:
            self.watched.add(recipient_domain)  # a set.add is atomic under the GIL
        return None

    def refresh(self) -> bool:
        wanted = frozenset(self.watched)
        if not wanted:
            return True
        try:
            pairs = self.store.known_pairs(wanted)
        except Exception as exc:
            self.errors += 1
            log.warning("known-pairs refresh failed, keeping the last snapshot: %s", exc)
            return False
        # Publish the pairs before the domains they answer for: a reader never sees a domain as loaded
        # with the previous pairs (which would say "never written to" for a pair just loaded).
        self.pairs = frozenset(pairs)
        self.loaded = wanted
        return True
