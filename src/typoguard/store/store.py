"""``Store``: the one object the rest of typoguard uses for memory (decisions, correspondents, overrides,
held-mail actions). Every method is one short transaction and raises ``StoreError`` on database trouble.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, select

from typoguard.config import Config, StoreConfig
from typoguard.core.names import normalise_domain
from typoguard.errors import ConfigError, InvalidAddress, MailQueueError
from typoguard.store import correspondents, decisions, events, migrations, overrides
from typoguard.store.correspondents import CorrespondentDomain, Tallies
from typoguard.store.db import hostname, make_engine, sqlite_url, translated, write_connection
from typoguard.store.decisions import DecisionQuery, DecisionRecord
from typoguard.store.events import Event, LookalikeHits, Observation
from typoguard.store.overrides import Override
from typoguard.store.schema import exposure_runs, held_actions

_QUEUE_ID = re.compile(r"[0-9A-Za-z]{5,32}")


class QueuedEnvelope(Protocol):
    """What ``decisions_for_held`` needs of a queued message (``held.QueuedMessage`` has it)."""

    @property
    def queue_id(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def recipients(self) -> tuple[str, ...]: ...
    @property
    def arrival_time(self) -> float: ...


def check_queue_id(queue_id: str) -> str:
    """``queue_id`` if it has the form of a Postfix queue id (or a relay quarantine id); else
    ``MailQueueError``."""
    if not _QUEUE_ID.fullmatch(queue_id):
        raise MailQueueError(f"not a Postfix queue id: {queue_id!r}")
    return queue_id


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNIT = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(text: str) -> float:
    """``"180d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"90s"`` (a bare number is days) -> seconds."""
    m = _DURATION.fullmatch(text.strip().lower())
    if not m:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 180d, 12h, 30m, 2w)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def normal_domain(name: str) -> str:
    """The ASCII, lower-case form used as key everywhere in the store."""
    try:
        return normalise_domain(name.strip()).ascii
    except InvalidAddress as exc:
        raise ConfigError(f"not a domain: {name!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class HeldAction:
    queue_id: str
    action: str
    by: str
    at: float
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class ResolvedStoreConfig:
    """``StoreConfig`` with paths made absolute and defaults filled in."""

    url: str
    spool_dir: Path
    node: str
    settings: StoreConfig


def resolve(config: StoreConfig | Config) -> ResolvedStoreConfig:
    base = Path(".")
    if isinstance(config, Config):
        base = Path(config.base_dir)
        config = config.store
    for name in ("batch_size", "queue_size", "confirmed_min_count"):
        if getattr(config, name) < 1 and name != "confirmed_min_count":
            raise ConfigError(f"[store] {name} must be at least 1")
    for name in ("flush_interval", "retry_interval", "refresh_interval"):
        if not getattr(config, name) > 0:
            raise ConfigError(f"[store] {name} must be positive")
    parse_duration(config.retention)
    data_dir = Path(config.data_dir)
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    url = config.url or sqlite_url(data_dir)
    spool = Path(config.spool_dir) if config.spool_dir else data_dir / "spool"
    if not spool.is_absolute():
        spool = base / spool
    return ResolvedStoreConfig(url, spool, config.node or hostname(), config)


class Store:
    """Decisions, correspondents, overrides and held-mail actions in one database."""

    def __init__(self, engine: Engine, resolved: ResolvedStoreConfig) -> None:
        self.engine = engine
        self.config = resolved
        self.node = resolved.node

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now."""
        return [m.version for m in migrations.upgrade(self.engine)]

    def schema_version(self) -> int:
        with translated("read schema version"), self.engine.connect() as conn:
            return migrations.current_version(conn)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ decisions
    def write_decisions(self, rows: Sequence[tuple[Any, ...]], *, replay: bool = False) -> int:
        """Store decision rows (tuples in ``ROW_FIELDS`` order, see ``DecisionEvent.values``) and learn
        correspondents from the allowed ones, in one transaction; returns the rows inserted now.

        ``replay``: rows may have been stored before (from the spool); those are skipped and not counted
        again. The counting runs inside the database (``correspondents.learn_from_decisions``).
        """
        with translated("write decisions"), write_connection(self.engine) as conn:
            after = correspondents.last_seq(conn) if conn.dialect.name == "sqlite" else 0
            if replay:
                fresh = decisions.insert_new_rows(conn, rows)
            else:
                decisions.insert_rows(conn, rows)
                fresh = list(rows)
            if fresh:
                correspondents.learn_from_decisions(conn, after_seq=after)
            return len(fresh)

    def write_decision_rows(self, rows: Sequence[dict[str, Any]], *, replay: bool = False) -> int:
        """``write_decisions`` for rows as dicts (``DecisionEvent.row``); returns how many were inserted."""
        return self.write_decisions([decisions.ROW_TUPLE(r) for r in rows], replay=replay)

    def decisions(self, query: DecisionQuery | None = None) -> list[DecisionRecord]:
        with translated("query decisions"), self.engine.connect() as conn:
            return decisions.query(conn, query or DecisionQuery())

    def count_decisions(self) -> int:
        from sqlalchemy import func

        from typoguard.store.schema import decisions as table

        with translated("count decisions"), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def prune(self, older_than: float, *, now: float | None = None) -> int:
        """Delete decisions older than ``older_than`` seconds; returns how many."""
        cutoff = (time.time() if now is None else now) - older_than
        with translated("prune decisions"), write_connection(self.engine) as conn:
            return decisions.prune(conn, cutoff)

    def prune_events(self, older_than: float, *, now: float | None = None) -> int:
        """Delete acknowledged watch events neither seen nor acknowledged for ``older_than`` seconds (open
        ones are kept: ``events.expired``); returns how many."""
        cutoff = (time.time() if now is None else now) - older_than
        with translated("prune events"), write_connection(self.engine) as conn:
            return events.prune(conn, cutoff)

    # ------------------------------------------------------------------ correspondents
    def record_sightings(self, tallies: Tallies) -> None:
        with translated("record correspondents"), write_connection(self.engine) as conn:
            correspondents.record(conn, tallies)

    def pair_count(self, sender_domain: str, recipient_domain: str) -> int:
        with translated("read correspondents"), self.engine.connect() as conn:
            return correspondents.pair_count(conn, sender_domain.lower(), recipient_domain.lower())

    def address_count(self, address: str) -> int:
        with translated("read correspondents"), self.engine.connect() as conn:
            return correspondents.address_count(conn, address)

    def is_known(self, sender_domain: str, recipient_domain: str) -> bool:
        """Has mail from ``sender_domain`` to ``recipient_domain`` been allowed before?"""
        return self.pair_count(sender_domain, recipient_domain) > 0

    def known_pairs(self, recipient_domains: Iterable[str]) -> set[tuple[str, str]]:
        """(sender domain, recipient domain) pairs with mail seen, for these recipient domains."""
        with translated("read correspondents"), self.engine.connect() as conn:
            return correspondents.pairs_to(conn, recipient_domains)

    def correspondent(self, domain: str) -> CorrespondentDomain | None:
        with translated("read correspondents"), self.engine.connect() as conn:
            return correspondents.domain_info(conn, normal_domain(domain))

    def correspondents(self, *, confirmed_only: bool = False, limit: int = 100) -> list[CorrespondentDomain]:
        with translated("list correspondents"), self.engine.connect() as conn:
            return correspondents.list_domains(conn, confirmed_only=confirmed_only, limit=limit)

    def confirm_correspondent(self, domain: str, *, by: str, reason: str) -> None:
        with translated("confirm correspondent"), write_connection(self.engine) as conn:
            correspondents.confirm(conn, normal_domain(domain), by, reason, time.time())

    def unconfirm_correspondent(self, domain: str) -> bool:
        with translated("unconfirm correspondent"), write_connection(self.engine) as conn:
            return correspondents.unconfirm(conn, normal_domain(domain))

    def confirmed_correspondents(self, min_count: int | None = None) -> dict[str, CorrespondentDomain]:
        n = self.config.settings.confirmed_min_count if min_count is None else min_count
        with translated("read confirmed correspondents"), self.engine.connect() as conn:
            return correspondents.confirmed_domains(conn, n)

    # ------------------------------------------------------------------ overrides
    def add_override(
        self, domain: str, action: str, *, reason: str, by: str, expires_in: float | None = None
    ) -> Override:
        """Allow or block ``domain`` (and its subdomains) on every node; supersedes older overrides."""
        if action not in overrides.ACTIONS:
            raise ConfigError(f"override action must be allow or block, got {action!r}")
        if not reason.strip():
            raise ConfigError("an override needs a reason")
        now = time.time()
        expires_at = now + expires_in if expires_in is not None else None
        with translated("add override"), write_connection(self.engine) as conn:
            return overrides.add(
                conn,
                normal_domain(domain),
                action,
                reason=reason,
                by=by,
                now=now,
                expires_at=expires_at,
                node=self.node,
            )

    def remove_override(
        self, *, domain: str | None = None, override_id: int | None = None, by: str, reason: str = "removed"
    ) -> int:
        if domain is None and override_id is None:
            raise ConfigError("remove an override by domain or by id")
        name = normal_domain(domain) if domain is not None else None
        with translated("remove override"), write_connection(self.engine) as conn:
            return overrides.remove(
                conn, domain=name, override_id=override_id, by=by, reason=reason, now=time.time()
            )

    def overrides(self, *, include_inactive: bool = False, domain: str | None = None) -> list[Override]:
        name = normal_domain(domain) if domain is not None else None
        with translated("list overrides"), self.engine.connect() as conn:
            return overrides.list_overrides(
                conn, now=time.time(), include_inactive=include_inactive, domain=name
            )

    def active_overrides(self) -> dict[str, Override]:
        """Domain -> the effective override (newest active one)."""
        with translated("read overrides"), self.engine.connect() as conn:
            return overrides.active_by_domain(conn, time.time())

    def override_for(self, domain: str) -> Override | None:
        """The override that applies to ``domain``: its own, else its nearest parent domain's."""
        return lookup_override(self.active_overrides(), normal_domain(domain))

    # ------------------------------------------------------------------ held mail
    def decisions_for_held(self, msgs: Sequence[QueuedEnvelope]) -> dict[str, DecisionRecord]:
        """The decision that held each message, by queue id: logged with its queue id, else found by its
        envelope (sender, recipients, arrival time). Messages with neither are missing from the result."""
        with translated("read decisions for held mail"), self.engine.connect() as conn:
            found = decisions.latest_for_queue_ids(conn, [m.queue_id for m in msgs])
            for m in msgs:
                if m.queue_id not in found:
                    by_envelope = decisions.hold_for_envelope(conn, m.sender, m.recipients, m.arrival_time)
                    if by_envelope is not None:
                        found[m.queue_id] = by_envelope
        return found

    def record_held_action(self, queue_id: str, action: str, *, by: str, reason: str = "") -> None:
        with translated("record held-mail action"), write_connection(self.engine) as conn:
            conn.execute(
                held_actions.insert().values(
                    queue_id=check_queue_id(queue_id),
                    action=action,
                    by=by,
                    at=time.time(),
                    node=self.node,
                    reason=reason,
                )
            )

    def held_actions(self, queue_id: str | None = None) -> list[HeldAction]:
        c = held_actions.c
        stmt = select(c.queue_id, c.action, c.by, c.at, c.node, c.reason).order_by(c.id)
        if queue_id is not None:
            stmt = stmt.where(c.queue_id == queue_id)
        with translated("read held-mail actions"), self.engine.connect() as conn:
            return [HeldAction(**r._mapping) for r in conn.execute(stmt)]

    # ------------------------------------------------------------------ watch events (store/events.py)
    def observe_events(self, observations: Iterable[Observation], *, now: float | None = None) -> list[Event]:
        """Store what a watch round found; returns the events that are new (see ``events.observe``)."""
        with translated("record events"), write_connection(self.engine) as conn:
            return events.observe(conn, observations, time.time() if now is None else now)

    def events_due(self, remind_after: float, *, now: float | None = None) -> list[Event]:
        """Open events to alert about: never alerted, or not for ``remind_after`` seconds."""
        with translated("read events"), self.engine.connect() as conn:
            return events.due(conn, time.time() if now is None else now, remind_after)

    def mark_alerted(self, ids: Sequence[int], *, now: float | None = None) -> None:
        with translated("record alerts"), write_connection(self.engine) as conn:
            events.mark_alerted(conn, ids, time.time() if now is None else now)

    def acknowledge_event(self, event_id: int, *, by: str, reason: str) -> Event | None:
        """Acknowledge an event (who and why); None if it does not exist."""
        if not reason.strip():
            raise ConfigError("acknowledging an event needs a reason")
        with translated("acknowledge event"), write_connection(self.engine) as conn:
            return events.acknowledge(conn, event_id, by=by, reason=reason, now=time.time())

    def events(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Event]:
        with translated("list events"), self.engine.connect() as conn:
            return events.list_events(conn, state=state, kind=kind, since=since, limit=limit)

    def event(self, event_id: int) -> Event | None:
        with translated("read event"), self.engine.connect() as conn:
            found = events.by_ids(conn, [event_id])
        return found[0] if found else None

    def lookalike_hits(self, since: float) -> list[LookalikeHits]:
        """Flagged decisions since ``since``, tallied by sender, look-alike, action and mode."""
        with translated("tally decisions"), self.engine.connect() as conn:
            return events.lookalike_hits(conn, since)

    def event_counts(self) -> dict[str, int]:
        """Events by state: ``{"open": n, "acknowledged": m}``."""
        with translated("count events"), self.engine.connect() as conn:
            return events.count_by_state(conn)

    # ------------------------------------------------------------------ exposure runs (exposure/history.py)
    def exposure_runs(self, limit: int = 1) -> list[tuple[str, str]]:
        """The newest ``limit`` exposure runs as (taken_at, results JSON), newest first."""
        c = exposure_runs.c
        stmt = select(c.taken_at, c.results).order_by(c.id.desc()).limit(limit)
        with translated("read exposure history"), self.engine.connect() as conn:
            return [(str(t), str(r)) for t, r in conn.execute(stmt)]

    def add_exposure_runs(self, runs: Sequence[tuple[str, str]], *, keep: int = 10) -> None:
        """Append runs (taken_at, results JSON), oldest first, and keep only the newest ``keep``."""
        from sqlalchemy import delete

        c = exposure_runs.c
        with translated("write exposure history"), write_connection(self.engine) as conn:
            for taken_at, results in runs:
                conn.execute(
                    exposure_runs.insert().values(taken_at=taken_at, node=self.node, results=results)
                )
            ids = [int(i) for i in conn.execute(select(c.id).order_by(c.id.desc()).offset(keep))]
            if ids:
                conn.execute(delete(exposure_runs).where(c.id.in_(ids)))


def lookup_override(active: dict[str, Override], domain: str) -> Override | None:
    """Exact domain first, then each parent (``mail.partner.org`` -> ``partner.org`` -> ``org``)."""
    found = active.get(domain)
    while found is None:
        dot = domain.find(".")
        if dot < 0:
            return None
        domain = domain[dot + 1 :]
        found = active.get(domain)
    return found


def open_store(config: StoreConfig | Config, *, upgrade: bool = True) -> Store:
    """Connect to the configured database and (by default) bring its schema up to date.

    Raises ``ConfigError`` for an unusable configuration and ``StoreError`` if the database fails.
    """
    resolved = resolve(config)
    store = Store(make_engine(resolved.url), resolved)
    if upgrade:
        try:
            store.upgrade()
        except Exception:
            store.close()
            raise
    return store
