"""API tokens for the HTTP API: scoped (``check`` < ``read`` < ``admin``), stored only as SHA-256 hashes.

The table ``tg_api_tokens`` lives in its own ``MetaData`` and is created on first use (``CREATE TABLE IF
NOT EXISTS``), additively: no change to the store's numbered migrations. A token is shown once, when it is
created; the database keeps its hash, so a leaked database does not leak usable tokens.

Revoking a token also ends its dashboard sessions (``tg_sessions``) and increments this node's
revocation counter (``Revocations``, a file in ``data_dir``): every API process on the node compares it
on each request and forgets what it had cached, so the token stops working at once here; other nodes
sharing a PostgreSQL store stop accepting it when their cache entry ages out (2 s).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import mmap
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, select, update

from typoguard.config import Config
from typoguard.errors import ConfigError, StoreError
from typoguard.store.db import translated, write_connection
from typoguard.store.schema import sessions
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


class Revocations:
    """This node's revocation counter: 8 bytes in ``<data_dir>/http-revocations``.

    ``bump()`` (after a token or a dashboard session was revoked) increments it under a file lock;
    ``value()`` reads it through a shared memory map, ~0.1 us, so every request can compare it before
    trusting a cached token or session. Processes on one host with one ``data_dir`` share it; that is
    what "this node" means for revocation."""

    SIZE = 8

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"revocation counter {path}: {exc.strerror or exc}") from exc
        try:
            if os.fstat(fd).st_size < self.SIZE:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size < self.SIZE:
                    os.pwrite(fd, bytes(self.SIZE), 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, self.SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)

    @classmethod
    def for_config(cls, config: Config) -> Revocations:
        data_dir = Path(config.store.data_dir)
        if not data_dir.is_absolute():
            data_dir = Path(config.base_dir, data_dir)
        return cls(data_dir / "http-revocations")

    def value(self) -> bytes:
        return self._map[: self.SIZE]

    def bump(self) -> None:
        """Tell every process on this node that something was revoked. ``StoreError`` if it cannot
        (the revocation itself is in the database; other processes would then see it only when their
        cache entries age out)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                n = int.from_bytes(os.pread(fd, self.SIZE, 0).ljust(self.SIZE, b"\0"), "little")
                os.pwrite(fd, ((n + 1) % 2**64).to_bytes(self.SIZE, "little"), 0)
            finally:
                os.close(fd)  # releases the lock
        except OSError as exc:
            raise StoreError(
                f"revoked, but {self.path} could not be updated ({exc.strerror or exc}): "
                "running API processes stop accepting it within 2 s, not at once"
            ) from exc

    def close(self) -> None:
        self._map.close()


class TokenStore:
    """Create, verify, list and revoke API tokens in ``store``'s database. With ``revocations``
    (``Revocations.for_config(config)``) a revocation takes effect at once on this node."""

    def __init__(self, store: Store, revocations: Revocations | None = None) -> None:
        self.store = store
        self.revocations = revocations
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
        """Revoke the token and end its dashboard sessions; False if there was no active token."""
        c = api_tokens.c
        now = time.time()
        stmt = update(api_tokens).where(c.id == token_id, c.revoked_at.is_(None)).values(revoked_at=now)
        s = sessions.c
        end_sessions = (
            update(sessions).where(s.token_id == token_id, s.revoked_at.is_(None)).values(revoked_at=now)
        )
        with translated("revoke API token"), write_connection(self.store.engine) as conn:
            revoked = conn.execute(stmt).rowcount > 0
            conn.execute(end_sessions)
        if revoked and self.revocations is not None:
            self.revocations.bump()
        return revoked

    def active(self, token_id: int) -> ApiToken | None:
        """The token with this id unless it was revoked (dashboard sessions are re-checked with this)."""
        c = api_tokens.c
        stmt = select(c.id, c.name, c.scope, c.created_by, c.created_at, c.revoked_at).where(
            c.id == token_id, c.revoked_at.is_(None)
        )
        with translated("read API token"), self.store.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return ApiToken(**row._mapping) if row is not None else None
