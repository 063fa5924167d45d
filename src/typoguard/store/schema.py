"""The store's tables, in SQLAlchemy Core. Times are UNIX seconds (float, UTC) in every table.

Changing a table means adding a migration in ``migrations.py``; these definitions always describe the
newest schema version.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-increment); PostgreSQL wants BIGINT.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "tg_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)

# One row per recipient decision. Metadata only: never a message body or header.
decisions = Table(
    "tg_decisions",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),  # unique: replaying the spool twice inserts once
    Column("time", Float, nullable=False),
    Column("node", String(255), nullable=False, default=""),
    Column("queue_id", String(64), nullable=False, default=""),
    Column("sender", Text, nullable=False, default=""),
    Column("recipient", Text, nullable=False),
    Column("domain", String(255), nullable=False, default=""),
    Column("action", String(16), nullable=False),
    Column("intended", String(255)),
    Column("kind", String(64)),
    Column("score", Float, nullable=False, default=0.0),
    Column("mode", String(16), nullable=False, default="enforce"),
    Column("reason", Text),  # why, in words, for flagged mail (schema version 2)
    Column("content", Text),  # the relay's content findings: JSON {category: count}, never the text (v2)
    UniqueConstraint("event_id", name="uq_tg_decisions_event_id"),
    Index("ix_tg_decisions_time", "time"),
    Index("ix_tg_decisions_domain", "domain"),
    Index("ix_tg_decisions_queue_id", "queue_id"),
)

# How often mail from one sender domain went to one recipient domain.
correspondent_pairs = Table(
    "tg_correspondent_pairs",
    metadata,
    Column("sender_domain", String(255), primary_key=True),
    Column("recipient_domain", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

# Per recipient domain, all senders together; an admin may confirm it as a real correspondent.
correspondent_domains = Table(
    "tg_correspondent_domains",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("confirmed_by", String(255)),
    Column("confirmed_at", Float),
    Column("confirmed_reason", Text),
)

correspondent_addresses = Table(
    "tg_correspondent_addresses",
    metadata,
    Column("address", String(512), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

# Overrides are never deleted: removal and supersession are recorded on the row (the audit trail).
overrides = Table(
    "tg_overrides",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("domain", String(255), nullable=False),
    Column("action", String(16), nullable=False),  # "allow" or "block"
    Column("reason", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("node", String(255), nullable=False, default=""),
    Column("removed_by", String(255)),
    Column("removed_at", Float),
    Column("removed_reason", Text),
    Index("ix_tg_overrides_domain", "domain"),
    Index("ix_tg_overrides_removed_at", "removed_at"),
)

# What admins did with held mail (release / delete), joined to decisions by queue id.
held_actions = Table(
    "tg_held_actions",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("queue_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # "release" or "delete"
    Column("by", String(255), nullable=False),
    Column("at", Float, nullable=False),
    Column("node", String(255), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_tg_held_actions_queue_id", "queue_id"),
)

# Dashboard sign-ins (schema version 3). The cookie carries a random session id; only its SHA-256 is
# stored, so the table does not hold usable sessions. Revoked (logout, token revoked, signed in again)
# or expired rows are refused; they are deleted once expired.
sessions = Table(
    "tg_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("token_id", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
    Index("ix_tg_sessions_token_id", "token_id"),
    Index("ix_tg_sessions_expires_at", "expires_at"),
)

# What the watch noticed (schema version 4): one row per fact, de-duplicated on (kind, subject, fact).
# ``count`` and ``last_seen`` grow while the fact is seen again; ``last_alerted`` limits reminders.
events = Table(
    "tg_events",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("subject", String(512), nullable=False),  # a look-alike, a sender address, a queue id
    Column("fact", String(512), nullable=False, default=""),  # what is new about it ("mx.bad.example")
    Column("severity", String(16), nullable=False),  # info, warning, critical
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("count", BigInteger, nullable=False, default=1),
    Column("state", String(16), nullable=False, default="open"),  # open or acknowledged
    Column("ack_by", String(255)),
    Column("ack_at", Float),
    Column("ack_reason", Text),
    Column("last_alerted", Float),
    Column("details", Text, nullable=False, default="{}"),  # JSON object
    UniqueConstraint("kind", "subject", "fact", name="uq_tg_events_fact"),
    Index("ix_tg_events_state", "state"),
    Index("ix_tg_events_last_seen", "last_seen"),
)

# Exposure scans (schema version 4): each run's results as the JSON of ``Snapshot.to_dict``, so that
# ``exposure --watch`` and ``typoguard watch`` on every node compare with the same previous run.
exposure_runs = Table(
    "tg_exposure_runs",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("taken_at", String(40), nullable=False),  # ISO 8601, UTC, as in the snapshot
    Column("node", String(255), nullable=False, default=""),
    Column("results", Text, nullable=False),  # JSON list of Exposure.to_dict
)
