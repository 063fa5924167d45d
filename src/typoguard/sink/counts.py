"""What the sink keeps: counts, never addresses or content.

``Tally`` aggregates attempts in memory on the event loop (a dict increment per refused RCPT);
``CountStore.flush`` writes a swapped-out tally in one transaction from a worker thread, so the database is
never on the SMTP path. Two tables, in their own small schema (own version table, so the sink's database
can be a separate file or share the store's PostgreSQL; see docs/adr):

* ``tg_sink_counts``: per (UTC day, look-alike, intended, sending domain): count, first and last seen;
* ``tg_sink_senders``: per (UTC day, look-alike, HMAC of the sender address): count, first and last seen,
  only when ``[sink] sender_hash_key_file`` is set. Without the key the hash cannot be linked to a person.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    case,
    delete,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from typoguard.config import Config
from typoguard.core.names import normalise_domain
from typoguard.errors import ConfigError, InvalidAddress, StoreError
from typoguard.store.db import make_engine, translated, write_connection

SQLITE_FILE = "sink.db"
SCHEMA_VERSION = 1
NULL_SENDER = "<>"  # the sending "domain" of a bounce (MAIL FROM:<>)
UNPARSEABLE = "(invalid)"
OTHER = "(other)"  # sending domains beyond MAX_KEYS in one flush interval are pooled here
MAX_KEYS = 100_000

metadata = MetaData()
sink_schema_version = Table(
    "tg_sink_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Float, nullable=False),
)
sink_counts = Table(
    "tg_sink_counts",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("lookalike", String(255), primary_key=True),
    Column("intended", String(255), primary_key=True),  # "" when the sink gave the neutral answer
    Column("sender_domain", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)
sink_senders = Table(
    "tg_sink_senders",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("lookalike", String(255), primary_key=True),
    Column("sender_hash", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)


def day_of(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def sender_domain(address: str) -> str:
    """The sending domain of ``MAIL FROM`` (normalised), ``<>`` for bounces; the local part is dropped."""
    if address in ("", "<>"):
        return NULL_SENDER
    _, at, domain = address.rpartition("@")
    if not at:
        return UNPARSEABLE
    try:
        return normalise_domain(domain).ascii
    except InvalidAddress:
        return UNPARSEABLE


class SenderHasher:
    """HMAC-SHA256 of the lower-cased sender address, 128 bits in hex. The key never leaves the process."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigError("[sink] sender_hash_key_file: the key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> SenderHasher:
        try:
            return cls(path.read_bytes().strip())
        except OSError as exc:
            raise ConfigError(f"[sink] sender_hash_key_file {path}: {exc.strerror or exc}") from None

    def __call__(self, address: str) -> str:
        return hmac.new(
            self._key, address.lower().encode("utf-8", "surrogateescape"), hashlib.sha256
        ).hexdigest()[:32]


CountKey = tuple[str, str, str, str]  # day, lookalike, intended ("" if none), sender domain
SenderKey = tuple[str, str, str]  # day, lookalike, sender hash


def _merge_rows(mine: dict[Any, list[float]], theirs: dict[Any, list[float]]) -> None:
    for key, (n, first, last) in theirs.items():
        row = mine.get(key)
        if row is None:
            mine[key] = [n, first, last]
        else:
            row[0] += n
            row[1] = min(row[1], first)
            row[2] = max(row[2], last)


class Tally:
    """Counts since the last flush: key -> [count, first_seen, last_seen]."""

    def __init__(self) -> None:
        self.counts: dict[CountKey, list[float]] = {}
        self.senders: dict[SenderKey, list[float]] = {}

    def add(
        self, now: float, lookalike: str, intended: str | None, sender: str, sender_hash: str | None
    ) -> None:
        day = day_of(now)
        key = (day, lookalike, intended or "", sender)
        row = self.counts.get(key)
        if row is None:
            if len(self.counts) >= MAX_KEYS:
                key = (day, lookalike, intended or "", OTHER)
                row = self.counts.get(key)
            if row is None:
                row = self.counts[key] = [0, now, now]
        row[0] += 1
        row[2] = now
        if sender_hash is not None and len(self.senders) < MAX_KEYS:
            skey = (day, lookalike, sender_hash)
            srow = self.senders.get(skey)
            if srow is None:
                srow = self.senders[skey] = [0, now, now]
            srow[0] += 1
            srow[2] = now

    def swap(self) -> Tally:
        """Hand over what was counted so far and start afresh (O(1): the loop never waits for a copy)."""
        out = Tally()
        out.counts, self.counts = self.counts, {}
        out.senders, self.senders = self.senders, {}
        return out

    def merge(self, other: Tally) -> None:
        """Take back a tally that could not be written (the database was down)."""
        _merge_rows(self.counts, other.counts)
        _merge_rows(self.senders, other.senders)

    def __len__(self) -> int:
        return len(self.counts) + len(self.senders)

    @property
    def attempts(self) -> int:
        return int(sum(r[0] for r in self.counts.values()))


def database_url(config: Config) -> str:
    """``[sink] database``, else ``[store] url``, else ``sink.db`` under ``[store] data_dir``."""
    if config.sink.database:
        return config.sink.database
    if config.store.url:
        return config.store.url
    data_dir = Path(config.store.data_dir)
    if not data_dir.is_absolute():
        data_dir = Path(config.base_dir) / data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create data directory {data_dir}: {exc.strerror or exc}") from None
    return f"sqlite:///{data_dir.resolve() / SQLITE_FILE}"


@dataclass(frozen=True, slots=True)
class CountRow:
    day: str
    lookalike: str
    intended: str
    sender_domain: str
    count: int
    first_seen: float
    last_seen: float


class CountStore:
    """The sink's two tables. Every method is one short transaction; raises ``StoreError``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, config: Config, *, create: bool = True) -> CountStore:
        store = cls(make_engine(database_url(config)))
        if create:
            store.create()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def create(self) -> None:
        with translated("sink schema"), write_connection(self.engine) as conn:
            if inspect(conn).has_table(sink_schema_version.name):
                found: list[int] = list(conn.execute(select(sink_schema_version.c.version)).scalars())
                if found and max(found) > SCHEMA_VERSION:
                    raise StoreError(f"sink schema version {max(found)} is newer than this typoguard knows")
                if found:
                    return
            metadata.create_all(conn, checkfirst=True)
            conn.execute(sink_schema_version.insert().values(version=SCHEMA_VERSION, applied_at=time.time()))

    def _upsert(self, conn: Any, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        ex = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={
                "count": table.c.count + ex.count,
                "first_seen": case(
                    (table.c.first_seen < ex.first_seen, table.c.first_seen), else_=ex.first_seen
                ),
                "last_seen": case((table.c.last_seen > ex.last_seen, table.c.last_seen), else_=ex.last_seen),
            },
        )
        conn.execute(stmt, rows)

    def flush(self, tally: Tally) -> int:
        """Add ``tally`` to the tables in one transaction; returns the attempts written."""
        if not len(tally):
            return 0
        counts = [
            {"day": d, "lookalike": la, "intended": i, "sender_domain": s, "count": int(n), "first_seen": f,
             "last_seen": last}
            for (d, la, i, s), (n, f, last) in tally.counts.items()
        ]  # fmt: skip
        senders = [
            {"day": d, "lookalike": la, "sender_hash": h, "count": int(n), "first_seen": f, "last_seen": last}
            for (d, la, h), (n, f, last) in tally.senders.items()
        ]
        with translated("sink counts"), write_connection(self.engine) as conn:
            if counts:
                self._upsert(conn, sink_counts, ("day", "lookalike", "intended", "sender_domain"), counts)
            if senders:
                self._upsert(conn, sink_senders, ("day", "lookalike", "sender_hash"), senders)
        return tally.attempts

    def prune(self, older_than_day: str) -> int:
        """Delete counts of days before ``older_than_day`` (YYYY-MM-DD); returns rows deleted."""
        with translated("sink retention"), write_connection(self.engine) as conn:
            n = conn.execute(delete(sink_counts).where(sink_counts.c.day < older_than_day)).rowcount
            n += conn.execute(delete(sink_senders).where(sink_senders.c.day < older_than_day)).rowcount
        return int(n)

    def rows(self, since_day: str = "", until_day: str = "9999-99-99") -> Iterator[CountRow]:
        with translated("sink report"), self.engine.connect() as conn:
            q = select(sink_counts).where(sink_counts.c.day >= since_day, sink_counts.c.day <= until_day)
            for r in conn.execute(q.order_by(sink_counts.c.day)):
                m: Any = r._mapping
                yield CountRow(
                    m["day"], m["lookalike"], m["intended"], m["sender_domain"], int(m["count"]),
                    float(m["first_seen"]), float(m["last_seen"]),
                )  # fmt: skip

    def sender_stats(self, since_day: str = "", until_day: str = "9999-99-99") -> dict[str, tuple[int, int]]:
        """Per look-alike: (distinct sender hashes, of which seen on more than one day or more than once)."""
        with translated("sink report"), self.engine.connect() as conn:
            q = select(sink_senders.c.lookalike, sink_senders.c.sender_hash, sink_senders.c.count).where(
                sink_senders.c.day >= since_day, sink_senders.c.day <= until_day
            )
            per: dict[tuple[str, str], int] = {}
            for row in conn.execute(q):
                m: Any = row._mapping
                key = (str(m["lookalike"]), str(m["sender_hash"]))
                per[key] = per.get(key, 0) + int(m["count"])
        out: dict[str, tuple[int, int]] = {}
        for (la, _), n in per.items():
            distinct, repeat = out.get(la, (0, 0))
            out[la] = (distinct + 1, repeat + (n > 1))
        return out
