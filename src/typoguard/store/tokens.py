"""API tokens for the HTTP API: scoped (``check`` < ``read`` < ``admin``), stored only as SHA-256 hashes.

The table ``tg_api_tokens`` lives in its own ``MetaData`` and is created on first use (``CREATE TABLE IF
NOT EXISTS``), additively: no change to the store's numbered migrations. A token is shown once, when it is
created; the database keeps its hash, so a leaked database does not leak usable tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, select, update

from typoguard.errors import ConfigError
from typoguard.store.db import translated, write_connection
from typoguard.store.store import Store

SCOPES = ("check", "read", "admin")  # each scope includes the ones before it
PREFIX = "tg_"

_metadata = MetaData()
api_tokens = Table(
    "tg_api_tokens",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored token (never the secret itself)."""

    id: int
    name: str
    scope: str
    created_by: str
    created_at: float
    revoked_at: float | None = None


def scope_allows(granted: str, needed: str) -> bool:
    """True when a token of scope ``granted`` may call an endpoint that needs ``needed``."""
    return SCOPES.index(granted) >= SCOPES.index(needed)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Create, verify, list and revoke API tokens in ``store``'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with translated("create API token table"):
            _metadata.create_all(store.engine, checkfirst=True)

    def create(self, name: str, scope: str, *, by: str) -> tuple[ApiToken, str]:
        """A new token: returns its record and the secret (shown once)."""
        if scope not in SCOPES:
            raise ConfigError(f"token scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if not name.strip():
            raise ConfigError("a token needs a name")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with translated("create API token"), write_connection(self.store.engine) as conn:
            result = conn.execute(
                api_tokens.insert().values(
                    name=name, scope=scope, token_hash=hash_token(secret), created_by=by, created_at=now
                )
            )
            (token_id,) = result.inserted_primary_key or (0,)
        return ApiToken(int(token_id), name, scope, by, now), secret

    def verify(self, secret: str) -> ApiToken | None:
        """The active token whose secret this is, else ``None``."""
        digest = hash_token(secret)
        c = api_tokens.c
        stmt = select(api_tokens).where(c.token_hash == digest, c.revoked_at.is_(None))
        with translated("verify API token"), self.store.engine.connect() as conn:
            row = conn.execute(stmt).first()
        # The look-up is by hash (an index probe); compare again in constant time all the same.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return ApiToken(row.id, row.name, row.scope, row.created_by, row.created_at, row.revoked_at)

    def list(self, *, include_revoked: bool = False) -> list[ApiToken]:
        c = api_tokens.c
        stmt = select(c.id, c.name, c.scope, c.created_by, c.created_at, c.revoked_at).order_by(c.id)
        if not include_revoked:
            stmt = stmt.where(c.revoked_at.is_(None))
        with translated("list API tokens"), self.store.engine.connect() as conn:
            return [ApiToken(**r._mapping) for r in conn.execute(stmt)]

    def revoke(self, token_id: int) -> bool:
        c = api_tokens.c
        stmt = (
            update(api_tokens).where(c.id == token_id, c.revoked_at.is_(None)).values(revoked_at=time.time())
        )
        with translated("revoke API token"), write_connection(self.store.engine) as conn:
            return conn.execute(stmt).rowcount > 0

    def active(self, token_id: int) -> ApiToken | None:
        """The token with this id unless it was revoked (dashboard sessions are re-checked with this)."""
        c = api_tokens.c
        stmt = select(c.id, c.name, c.scope, c.created_by, c.created_at, c.revoked_at).where(
            c.id == token_id, c.revoked_at.is_(None)
        )
        with translated("read API token"), self.store.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return ApiToken(**row._mapping) if row is not None else None
