"""Versioned schema migrations, applied in order at start (``typoguard db upgrade`` does the same).

Each migration is a numbered function run in one transaction together with the row that records it in
``tg_schema_version``. Several nodes starting at once are serialised: PostgreSQL takes a transaction-scoped
advisory lock, SQLite's ``BEGIN IMMEDIATE`` allows one writer. A database newer than this program is an
error (an old node must not write to a schema it does not know).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, select, text

from typoguard.errors import StoreError
from typoguard.store import schema
from typoguard.store.db import translated, write_connection

_ADVISORY_LOCK_KEY = 0x7479706F  # "typo"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    for table in (
        schema.decisions,
        schema.correspondent_pairs,
        schema.correspondent_domains,
        schema.correspondent_addresses,
        schema.overrides,
        schema.held_actions,
    ):
        table.create(conn, checkfirst=True)


def _reason_and_content(conn: Connection) -> None:
    """Decision rows gain ``reason`` and ``content`` (nullable: older rows have neither). A database
    created by this version already has them (``_initial`` creates the current table)."""
    have = {c["name"] for c in inspect(conn).get_columns(schema.decisions.name)}
    for name in ("reason", "content"):
        if name not in have:
            conn.execute(text(f"ALTER TABLE {schema.decisions.name} ADD COLUMN {name} TEXT"))


def _sessions(conn: Connection) -> None:
    """Dashboard sessions, kept on the server so that logout and token revocation end them."""
    schema.sessions.create(conn, checkfirst=True)


def _events_and_exposure(conn: Connection) -> None:
    """The watch's events and the exposure history (until now a JSON file, imported at first use)."""
    schema.events.create(conn, checkfirst=True)
    schema.exposure_runs.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions, correspondents, overrides, held-mail actions", _initial),
    Migration(2, "decision reasons and content findings", _reason_and_content),
    Migration(3, "dashboard sessions", _sessions),
    Migration(4, "watch events and exposure history", _events_and_exposure),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The applied schema version; 0 for an empty database."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(
        select(schema.schema_version.c.version).order_by(schema.schema_version.c.version.desc()).limit(1)
    ).scalar()
    return int(found or 0)


def upgrade(engine: Engine) -> list[Migration]:
    """Apply every migration not yet applied; returns those applied now. Raises ``StoreError``."""
    with translated("schema upgrade"), write_connection(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > LATEST:
            raise StoreError(
                f"database schema version {version} is newer than this typoguard knows ({LATEST}); upgrade it"
            )
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            migration.apply(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=migration.version, description=migration.description, applied_at=time.time()
                )
            )
            applied.append(migration)
        return applied
