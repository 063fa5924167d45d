"""What every request of one app shares (``ApiState``, ``request.app.state.api``): the Guard, the store,
the hold queue, API tokens and dashboard sessions, ``POST /v1/check``'s share of the event loop, metrics.

Tokens (``Authorization: Bearer tg_...``) come from ``typoguard token create``; see ``store/tokens.py``.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from typoguard.config import Config
from typoguard.guard import Guard
from typoguard.held import HoldQueue
from typoguard.store import Store
from typoguard.store.tokens import ApiToken, Revocations, TokenStore
from typoguard.web.admin import RequestError
from typoguard.web.check import CheckReplies, LoopBudget, MalformedCheck
from typoguard.web.sessions import SessionCache, SessionStore

TOKEN_CACHE_SECONDS = 2.0  # a token revoked on another node stops working here within this long


class ApiState:
    """What every request handler shares: the guard, the store, tokens, sessions and metrics. ``guard`` is
    swapped for a new one on reload."""

    def __init__(self, config: Config, guard: Guard, store: Store, queue: HoldQueue) -> None:
        self.config = config
        self.guard = guard
        self.store = store
        self.queue = queue
        self.revocations = Revocations.for_config(config)  # this node's: revocations take effect at once
        self.tokens = TokenStore(store, self.revocations)
        self.sessions = SessionStore(store, self.revocations)
        self.session_cache = SessionCache(self.sessions, self.revocations)
        self.budget = LoopBudget()  # /v1/check's share of each pass of the event loop
        self._token_cache: dict[bytes, tuple[float, ApiToken | None]] = {}  # header -> (when, token)
        self._token_epoch = self.revocations.value()
        self._verify_inline = store.engine.dialect.name == "sqlite"
        self.registry = CollectorRegistry()
        self.requests = PromCounter(
            "typoguard_http_requests", "HTTP API requests", ["endpoint", "status"], registry=self.registry
        )
        self.checks = CheckReplies(self.registry)  # POST /v1/check: replies, verdict counts, latency

    async def authenticate(self, authorization: bytes) -> ApiToken | None:
        """The active token an ``Authorization`` header value names, else ``None``.

        Each header value's answer (a token, or none) is kept for ``TOKEN_CACHE_SECONDS``; a hit is one
        dict look-up. All of them are forgotten at once when this node's revocation counter moves (a
        token revoked by the CLI or a session ended on any worker here), so a revoked token stops at once
        on this node and within ``TOKEN_CACHE_SECONDS`` on others. A miss asks the store: PostgreSQL in a
        worker thread (a network round trip, or a database that does not answer, must not stall the event
        loop); SQLite right here, as its WAL readers never wait for the writer and a look-up takes 0.2-2 ms,
        whereas handing it to a thread stalled the loop for 8-11 ms under load (GIL hand-offs; measured
        with the saturated benchmark)."""
        now = time.monotonic()
        epoch = self.revocations.value()
        if epoch != self._token_epoch:
            self._token_cache.clear()
            self._token_epoch = epoch
        cached = self._token_cache.get(authorization)
        if cached is not None and now - cached[0] < TOKEN_CACHE_SECONDS:
            return cached[1]
        scheme, _, secret = authorization.decode("latin-1").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            return None
        if self._verify_inline:
            # On the loop, and an unknown token is a miss every time: shares /v1/check's budget per pass.
            await self.budget.turn()
            began = time.perf_counter()
            try:
                token = self.tokens.verify(secret)
            finally:
                self.budget.charge(time.perf_counter() - began)
        else:
            token = await asyncio.to_thread(self.tokens.verify, secret)
        if len(self._token_cache) > 10_000:
            self._token_cache.clear()
        if self.revocations.value() == epoch:  # nothing revoked while we asked: the answer is current
            self._token_cache[authorization] = (now, token)
        return token

    async def check_reply(self, body: bytes) -> bytes:
        """``POST /v1/check``'s JSON reply to request body ``body``; ``RequestError`` 400 when it is
        malformed."""
        try:
            return await self.checks.reply(self.guard, body, self.budget, self.config.http.max_recipients)
        except MalformedCheck as exc:
            raise RequestError(400, str(exc)) from None
