"""Dashboard sessions kept on the server, so that they can be ended (issue 15 item 9).

The signed cookie (``SessionMiddleware``) carries the CSRF token and a random session id (256 bits); the
store's ``tg_sessions`` table keeps the SHA-256 of that id with the token it signed in with, when it
expires and when it was revoked. A session is refused once

* its user signs out (``/logout``),
* the same browser signs in again (the session it had is revoked; a new id is issued),
* its token is revoked (``typoguard token revoke``: every session of that token),
* ``[http] session_max_age`` has passed since sign-in.

Every worker keeps a small cache of answers (``SessionCache``). Staleness is bounded: a revocation made
on this node (any process that uses the same ``data_dir``: the CLI, another worker) increments the
node's revocation counter (``store.tokens.Revocations``), which every request compares before trusting
a cached answer, so it takes effect at once on every worker here; another node sharing the PostgreSQL
store notices within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import delete, select, update

from typoguard.store.db import translated, write_connection
from typoguard.store.schema import sessions
from typoguard.store.store import Store
from typoguard.store.tokens import Revocations

CACHE_SECONDS = 2.0  # another node's revocation is seen within this long
CACHE_ENTRIES = 4096


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionStore:
    """Create, look up and revoke dashboard sessions in ``store``'s database."""

    def __init__(self, store: Store, revocations: Revocations | None = None) -> None:
        self.store = store
        self.revocations = revocations

    def create(self, token_id: int, max_age: float) -> str:
        """A new session for ``token_id``: its id (goes into the cookie; only its hash is stored).
        Sessions expired since are deleted on the way."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        c = sessions.c
        with translated("create dashboard session"), write_connection(self.store.engine) as conn:
            conn.execute(delete(sessions).where(c.expires_at < now))
            conn.execute(
                sessions.insert().values(
                    id_hash=_hash(session_id), token_id=token_id, created_at=now, expires_at=now + max_age
                )
            )
        return session_id

    def token_id(self, session_id: str) -> int | None:
        """The token the session signed in with, or ``None`` if it is unknown, revoked or expired."""
        c = sessions.c
        stmt = select(c.token_id).where(
            c.id_hash == _hash(session_id), c.revoked_at.is_(None), c.expires_at > time.time()
        )
        with translated("read dashboard session"), self.store.engine.connect() as conn:
            found = conn.execute(stmt).scalar()
        return int(found) if found is not None else None

    def revoke(self, session_id: str) -> bool:
        """End one session (logout, or a new sign-in in the same browser); True if it was active."""
        c = sessions.c
        stmt = (
            update(sessions)
            .where(c.id_hash == _hash(session_id), c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
        with translated("revoke dashboard session"), write_connection(self.store.engine) as conn:
            ended = conn.execute(stmt).rowcount > 0
        if self.revocations is not None:
            self.revocations.bump()
        return ended


class SessionCache:
    """Answers of ``SessionStore.token_id`` for ``CACHE_SECONDS``, forgotten at once when this node's
    revocation counter moves; at most ``CACHE_ENTRIES`` (all are forgotten when it is full)."""

    def __init__(self, sessions_store: SessionStore, revocations: Revocations) -> None:
        self.sessions = sessions_store
        self.revocations = revocations
        self._seen = revocations.value()
        self._answers: dict[str, tuple[float, int | None]] = {}

    def cached(self, session_id: str) -> tuple[bool, int | None]:
        """``(True, token id or None)`` when a fresh answer is known, else ``(False, None)``."""
        current = self.revocations.value()
        if current != self._seen:
            self._seen = current
            self._answers.clear()
            return False, None
        hit = self._answers.get(session_id)
        if hit is None or time.monotonic() - hit[0] >= CACHE_SECONDS:
            return False, None
        return True, hit[1]

    def epoch(self) -> bytes:
        """This node's revocation counter now: take it before asking the store (``remember``)."""
        return self.revocations.value()

    def remember(self, session_id: str, token_id: int | None, asked_at: float, epoch: bytes) -> None:
        """Keep an answer the store gave when asked at ``asked_at`` (``time.monotonic()``) with the
        counter at ``epoch``; not kept if something was revoked meanwhile (it may predate that)."""
        if epoch != self.revocations.value():
            return
        if len(self._answers) >= CACHE_ENTRIES:
            self._answers.clear()
        self._answers[session_id] = (asked_at, token_id)

    def forget(self, session_id: str) -> None:
        self._answers.pop(session_id, None)
