"""One watch round: DNS sanity, the exposure scan against the stored history, leak patterns, events, alerts.

1. **DNS sanity first.** The scan (``exposure.scan``) asks the protected domains before any look-alike and
   again after (``exposure.health``). If they do not resolve, the round **fails** ("DNS unusable: ..."):
   nothing is classified, no history is written, no event is raised, and ``watch --once`` exits non-zero.
2. **Exposure changes**: this scan against the last one in the store (``changes``).
3. **Leak patterns** in the decision log of the last ``[watch] window``, and held mail older than
   ``held_max_age`` (``leaks``).
4. **Events**: every observation is stored (``Store.observe_events``: one event per fact), then every open
   event that is new or due a reminder (``remind_every``) is alerted once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typoguard.config import Config, WatchConfig
from typoguard.errors import ConfigError, TypoguardError
from typoguard.exposure.health import DnsUnusable, ProtectedDomainMissing
from typoguard.exposure.history import LEGACY_FILE, StoreHistory
from typoguard.exposure.model import Snapshot
from typoguard.exposure.resolve import ResolverSettings, parse_resolver
from typoguard.store.events import Event, Observation
from typoguard.store.store import parse_duration
from typoguard.watch.alerts import Alert, Dispatcher
from typoguard.watch.changes import carry_unknown, exposure_observations
from typoguard.watch.leaks import held_observations, leak_observations

if TYPE_CHECKING:
    from typoguard.guard import Guard
    from typoguard.held import HoldQueue
    from typoguard.store import Store


@dataclass
class RoundReport:
    """What a round did: ``ok`` false with ``failure`` when DNS was unusable (nothing else happened)."""

    ok: bool
    failure: str = ""
    started: float = 0.0
    seconds: float = 0.0
    lookalikes: int = 0
    queries: int = 0
    observations: int = 0
    new_events: list[Event] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failure": self.failure,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "lookalikes": self.lookalikes,
            "queries": self.queries,
            "observations": self.observations,
            "new_events": [e.to_dict() for e in self.new_events],
            "alerted": len(self.alerts),
            "notes": self.notes,
        }


def resolver_settings(w: WatchConfig) -> ResolverSettings:
    """``[watch] resolver`` etc. as ``exposure --resolver`` reads them (one port for all)."""
    parsed = [parse_resolver(r) for r in w.resolver]
    ports = {p for _, p in parsed}
    if len(ports) > 1:
        raise ConfigError("[watch] resolver: every resolver must use the same port")
    port = next(iter(ports)) if ports else None
    return ResolverSettings(
        nameservers=tuple(a for a, _ in parsed),
        port=port or 53,
        timeout=w.timeout,
        retries=w.retries,
        concurrency=w.concurrency,
    )


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _exposure(
    config: Config, guard: Guard, store: Store, now: float, report: RoundReport
) -> list[Observation]:
    from typoguard import resources
    from typoguard.core.names import normalise_domain
    from typoguard.exposure.scan import candidates, scan

    w = config.watch
    domains = [normalise_domain(p.domain) for p in guard.index.protected]
    todo = candidates(guard.index, domains, min_score=w.min_score, limit=w.limit or None)
    history = StoreHistory(store, Path(config.base_dir, config.store.data_dir, LEGACY_FILE))
    before = history.last()
    registrable = resources.model_context().suffixes.registrable
    results, report.queries = asyncio.run(scan(todo, resolver_settings(w), registrable))
    report.lookalikes = len({c.lookalike for c in todo})
    known = carry_unknown(before, results)
    found = exposure_observations(before, known, squatter_min=w.squatter_min)
    history.append(Snapshot(_iso(now), known))
    return found


def _held(queue: HoldQueue, max_age: float, now: float, report: RoundReport) -> list[Observation]:
    try:
        msgs = queue.held()
    except TypoguardError as exc:
        report.notes.append(f"held mail not checked: {exc}")
        return []
    return held_observations(
        ((m.queue_id, m.arrival_time, m.sender, m.recipients) for m in msgs), max_age=max_age, now=now
    )


def run_round(
    config: Config,
    guard: Guard,
    store: Store,
    *,
    dispatcher: Dispatcher | None = None,
    queue: HoldQueue | None = None,
    now: float | None = None,
) -> RoundReport:
    """One round (blocking: run it in a thread next to an event loop). Raises ``ConfigError`` for a
    configuration that cannot be used and ``StoreError`` if the database fails; DNS trouble is a failed
    round, not an exception."""
    w = config.watch
    now = time.time() if now is None else now
    report = RoundReport(ok=True, started=now)
    clock = time.perf_counter()
    try:
        found = _exposure(config, guard, store, now, report)
    except DnsUnusable as exc:
        report.ok, report.failure = False, f"DNS unusable: {exc}"
    except ProtectedDomainMissing as exc:
        report.ok, report.failure = False, str(exc)
    if not report.ok:
        report.seconds = time.perf_counter() - clock
        return report
    window = parse_duration(w.window)
    found += leak_observations(
        store.lookalike_hits(now - window), repeat_min=w.repeat_min, popular_min=w.popular_min, window=window
    )
    if queue is not None:
        found += _held(queue, parse_duration(w.held_max_age), now, report)
    report.observations = len(found)
    report.new_events = store.observe_events(found, now=now)
    due = store.events_due(parse_duration(w.remind_every), now=now)
    if dispatcher is not None and dispatcher.outboxes:
        report.alerts = [Alert(e, reminder=e.last_alerted is not None) for e in due]
        dispatcher.send(report.alerts)
        store.mark_alerted([e.id for e in due], now=now)
    report.seconds = time.perf_counter() - clock
    return report
