"""JSON API (and the dashboard's mount point) over ASGI: warn before send, let admins see and act.

    app = create_app(config)                 # Starlette app; uvicorn/hypercorn or serve_http(config)
    POST /v1/check        scope check   {"sender", "recipients": [...]} -> verdicts (typoguard check JSON)
    GET  /v1/decisions    scope read    filters + pagination (before=<seq>)
    GET  /v1/stats        scope read    per day and action, top look-alike domains, top senders
    GET  /v1/held         scope read    Postfix hold queue + relay quarantine, joined with the decisions
    POST /v1/held/{id}/release, DELETE /v1/held/{id}                 scope admin (recorded with who)
    GET/POST /v1/overrides, DELETE /v1/overrides/{id}                  read / admin / admin
    GET  /metrics         scope read    Prometheus text;   GET /healthz, GET /openapi.json: no token

Tokens (``Authorization: Bearer tg_...``) come from ``typoguard token create``; see ``store/tokens.py``.
A request without a valid token gets 401, one whose scope is too small 403, whatever it asks for. A
request body over ``[http] max_body_bytes`` gets 413 (``BodyLimit``), read no further than the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import orjson
import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from typoguard.config import Config, HttpConfig
from typoguard.errors import ConfigError, InvalidAddress, MailQueueError, StoreError, TypoguardError
from typoguard.guard import Guard
from typoguard.held import HoldQueue, HoldQueues, PostfixQueue, held_with_decisions
from typoguard.store import (
    DecisionQuery,
    DecisionRecord,
    Override,
    Store,
    open_store,
)
from typoguard.store.schema import decisions as decisions_table
from typoguard.store.store import check_queue_id
from typoguard.store.tokens import ApiToken, Revocations, TokenStore, scope_allows
from typoguard.web.check import ACTION_ORDER, CheckReplies, LoopBudget, MalformedCheck

_ACTION_ORDER = ACTION_ORDER  # mildest first
MAX_PAGE = 1000
TOKEN_CACHE_SECONDS = 2.0  # a token revoked on another node stops working here within this long
Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyTooLarge(Exception):
    """A request body passed ``[http] max_body_bytes`` (answered 413; the connection is closed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes ([http] max_body_bytes)")


class ApiState:
    """What every request handler shares: the guard, the store, tokens, sessions and metrics."""

    def __init__(self, config: Config, guard: Guard, store: Store, queue: HoldQueue) -> None:
        from typoguard.web.sessions import SessionCache, SessionStore

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
        """``POST /v1/check``'s JSON reply to request body ``body``; ``ApiError`` 400 when it is malformed."""
        try:
            return await self.checks.reply(self.guard, body, self.budget, self.config.http.max_recipients)
        except MalformedCheck as exc:
            raise ApiError(400, str(exc)) from None


def _who(request: Request) -> str:
    token: ApiToken | None = request.scope.get("typoguard.token")
    if token is not None:
        return f"token:{token.name}"
    user = request.scope.get("typoguard.user")
    return str(user) if user else "unknown"


def requires(scope: str) -> Callable[[Handler], Handler]:
    """Wrap a handler: 401 without a valid token (or dashboard session), 403 if its scope is too small."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            state: ApiState = request.app.state.api
            try:
                token = await state.authenticate(request.headers.get("authorization", "").encode("latin-1"))
            except StoreError as exc:
                return _error(503, str(exc))
            if token is None:
                return _error(401, "a valid API token is required (Authorization: Bearer ...)")
            if not scope_allows(token.scope, scope):
                return _error(403, f"this endpoint needs scope {scope!r}; the token has {token.scope!r}")
            request.scope["typoguard.token"] = token
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, exc.message)
            except (ConfigError, InvalidAddress) as exc:
                return _error(400, str(exc))
            except MailQueueError as exc:
                return _error(409 if "no held message" in str(exc) else 502, str(exc))
            except StoreError as exc:
                return _error(503, str(exc))
            except TypoguardError as exc:
                return _error(500, str(exc))

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


class ApiJSONResponse(JSONResponse):
    """JSON rendered by orjson: the 10-recipient /v1/check reply takes 1 us instead of the stdlib's 16 us.
    Same output as ``JSONResponse`` for what the API sends (str keys, finite floats, 64-bit ints)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, message: str) -> JSONResponse:
    return ApiJSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _text_param(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None


def _number_param(
    params: Mapping[str, str], name: str, kind: type[int] | type[float], low: float, high: float
) -> Any:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be a number") from exc
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


# ---------------------------------------------------------------------------------------------- check
def check_recipients(guard: Guard, recipients: list[str]) -> list[dict[str, Any]]:
    """Verdicts for each recipient, each exactly the JSON of ``typoguard check --format json``."""
    return [guard.check(r).to_dict() for r in recipients]


@requires("check")
async def post_check(request: Request) -> Response:
    """Verdicts for a message's recipients, before it is sent. (``ApiApp`` answers most of these itself,
    without this route: same token check, same JSON, same errors.)"""
    state: ApiState = request.app.state.api
    return Response(await state.check_reply(await request.body()), media_type="application/json")


# ---------------------------------------------------------------------------------------------- read
def decision_dict(record: DecisionRecord) -> dict[str, Any]:
    e = record.event
    return {
        "seq": record.seq,
        "time": e.time,
        "node": e.node,
        "queue_id": e.queue_id,
        "sender": e.sender,
        "recipient": e.recipient,
        "domain": e.domain,
        "action": e.action,
        "intended": e.intended,
        "kind": e.kind,
        "score": e.score,
        "mode": e.mode,
        "reason": e.reason,
        "content": orjson.loads(e.content) if e.content else None,
    }


def decision_query(params: Mapping[str, str]) -> DecisionQuery:
    """The query for ``GET /v1/decisions``'s parameters; ``ApiError`` 400 when one is malformed."""
    action = params.get("action")
    if action is not None and action not in _ACTION_ORDER:
        raise ApiError(400, f"action must be one of {', '.join(_ACTION_ORDER)}")
    return DecisionQuery(
        since=_number_param(params, "since", float, 0, 1e11),
        until=_number_param(params, "until", float, 0, 1e11),
        domain=_text_param(params, "domain"),
        recipient=_text_param(params, "recipient"),
        sender=_text_param(params, "sender"),
        action=action,
        before_seq=_number_param(params, "before", int, 1, 2**62),
        limit=_number_param(params, "limit", int, 1, MAX_PAGE) or 100,
    )


@requires("read")
async def get_decisions(request: Request) -> Response:
    """Decisions, newest first; the next page: ``before=<next_before>``."""
    state: ApiState = request.app.state.api
    query = decision_query(request.query_params)
    records = await asyncio.to_thread(state.store.decisions, query)
    page = [decision_dict(r) for r in records]
    next_before = records[-1].seq if len(records) == query.limit else None
    return ApiJSONResponse({"decisions": page, "next_before": next_before})


def decision_stats(store: Store, *, days: int, top: int = 10, now: float | None = None) -> dict[str, Any]:
    """Counts for the last ``days`` days: per UTC day and action, top look-alike domains, top senders."""
    since = (time.time() if now is None else now) - days * 86400
    c = decisions_table.c
    stmt = select(c.time, c.action, c.domain, c.intended, c.sender).where(c.time >= since)
    per_day: dict[str, Counter[str]] = {}
    lookalikes: Counter[tuple[str, str]] = Counter()
    senders: Counter[str] = Counter()
    total: Counter[str] = Counter()
    with store.engine.connect() as conn:
        for row in conn.execute(stmt):
            t, action, domain, intended = float(row.time), str(row.action), str(row.domain), row.intended
            sender = str(row.sender)
            day = time.strftime("%Y-%m-%d", time.gmtime(t))
            per_day.setdefault(day, Counter())[action] += 1
            total[action] += 1
            if action != "allow" and intended:
                lookalikes[(domain, str(intended))] += 1
                senders[sender or "<>"] += 1
    return {
        "since": since,
        "days": days,
        "total": {a: total.get(a, 0) for a in _ACTION_ORDER},
        "per_day": [
            {"day": day, **{a: counts.get(a, 0) for a in _ACTION_ORDER}}
            for day, counts in sorted(per_day.items())
        ],
        "top_lookalikes": [
            {"domain": d, "intended": i, "count": n} for (d, i), n in lookalikes.most_common(top)
        ],
        "top_senders": [{"sender": s, "count": n} for s, n in senders.most_common(top)],
    }


@requires("read")
async def get_stats(request: Request) -> Response:
    """Decision counts per day and action, top look-alike domains and top senders (flagged mail only)."""
    state: ApiState = request.app.state.api
    days = _number_param(request.query_params, "days", int, 1, 3660) or 30
    stats = await asyncio.to_thread(decision_stats, state.store, days=days)
    return ApiJSONResponse(stats)


# ---------------------------------------------------------------------------------------------- held
def held_list(state: ApiState) -> list[dict[str, Any]]:
    out = []
    for held in held_with_decisions(state.store, state.queue):
        m = held.message
        out.append(
            {
                "queue_id": m.queue_id,
                "arrival_time": m.arrival_time,
                "size": m.size,
                "sender": m.sender,
                "recipients": list(m.recipients),
                "decision": decision_dict(held.decision) if held.decision else None,
            }
        )
    return out


@requires("read")
async def get_held(request: Request) -> Response:
    """Messages in Postfix's hold queue, with the decision that held each."""
    state: ApiState = request.app.state.api
    return JSONResponse({"held": await asyncio.to_thread(held_list, state)})


def act_on_held(state: ApiState, queue_id: str, action: str, who: str, reason: str) -> None:
    """Release or delete a held message and record who did it. ``ApiError`` 400 for a malformed id."""
    try:
        check_queue_id(queue_id)
    except MailQueueError as exc:
        raise ApiError(400, str(exc)) from exc
    if action == "release":
        state.queue.release(queue_id)
    else:
        state.queue.delete(queue_id)
    state.store.record_held_action(queue_id, action, by=who, reason=reason)


@requires("admin")
async def post_release(request: Request) -> Response:
    """Release a held message for delivery (recorded with the token's name)."""
    state: ApiState = request.app.state.api
    queue_id = request.path_params["queue_id"]
    await asyncio.to_thread(act_on_held, state, queue_id, "release", _who(request), "released via HTTP API")
    return JSONResponse({"queue_id": queue_id, "action": "release", "by": _who(request)})


@requires("admin")
async def delete_held(request: Request) -> Response:
    """Delete a held message (recorded with the token's name)."""
    state: ApiState = request.app.state.api
    queue_id = request.path_params["queue_id"]
    await asyncio.to_thread(act_on_held, state, queue_id, "delete", _who(request), "deleted via HTTP API")
    return JSONResponse({"queue_id": queue_id, "action": "delete", "by": _who(request)})


# ---------------------------------------------------------------------------------------------- overrides
def override_dict(o: Override) -> dict[str, Any]:
    return {
        "id": o.id,
        "domain": o.domain,
        "action": o.action,
        "reason": o.reason,
        "created_by": o.created_by,
        "created_at": o.created_at,
        "expires_at": o.expires_at,
        "removed_by": o.removed_by,
        "removed_at": o.removed_at,
    }


@requires("read")
async def get_overrides(request: Request) -> Response:
    """Active overrides (``?all=1``: removed and expired ones too)."""
    state: ApiState = request.app.state.api
    flag = request.query_params.get("all", "0")
    if flag not in ("0", "1", "true", "false"):
        raise ApiError(400, "all must be 0, 1, true or false")
    include = flag in ("1", "true")
    rows = await asyncio.to_thread(state.store.overrides, include_inactive=include)
    return ApiJSONResponse({"overrides": [override_dict(o) for o in rows]})


@requires("admin")
async def post_override(request: Request) -> Response:
    """Allow or block a domain on every node: {"domain", "action": allow|block, "reason", "expires_in"?}."""
    state: ApiState = request.app.state.api
    body = await _json_body(request)
    domain, action, reason = body.get("domain"), body.get("action"), body.get("reason")
    expires_in = body.get("expires_in")
    if not isinstance(domain, str) or not isinstance(action, str) or not isinstance(reason, str):
        raise ApiError(400, "domain, action and reason must be strings")
    if expires_in is not None and (
        not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0
    ):
        raise ApiError(400, "expires_in must be a positive number of seconds")
    added = await asyncio.to_thread(
        state.store.add_override, domain, action, reason=reason, by=_who(request), expires_in=expires_in
    )
    return ApiJSONResponse(override_dict(added), status_code=201)


@requires("admin")
async def delete_override(request: Request) -> Response:
    """Remove an override by id (recorded with the token's name)."""
    state: ApiState = request.app.state.api
    try:
        override_id = int(request.path_params["override_id"])
    except ValueError as exc:
        raise ApiError(404, "no such override") from exc
    n = await asyncio.to_thread(
        state.store.remove_override, override_id=override_id, by=_who(request), reason="removed via HTTP API"
    )
    if n == 0:
        raise ApiError(404, "no such override")
    return ApiJSONResponse({"removed": n})


# ---------------------------------------------------------------------------------------------- ops
async def healthz(request: Request) -> Response:
    """Liveness: the index is compiled and the store answers."""
    state: ApiState = request.app.state.api
    try:
        await asyncio.to_thread(state.store.schema_version)
    except TypoguardError as exc:
        return ApiJSONResponse({"status": "degraded", "error": str(exc)}, status_code=503)
    return ApiJSONResponse({"status": "ok"})


@requires("read")
async def metrics(request: Request) -> Response:
    state: ApiState = request.app.state.api
    return Response(generate_latest(state.registry), media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    from typoguard.web.openapi import document

    return ApiJSONResponse(document())


def by_method(**handlers: Handler) -> Handler:
    """One endpoint for several methods on a path (so a 405 names every allowed method)."""

    async def endpoint(request: Request) -> Response:
        return await handlers[request.method](request)

    return endpoint


def api_routes() -> list[Route]:
    return [
        Route("/v1/check", post_check, methods=["POST"]),  # first: the router tries routes in order
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/decisions", get_decisions, methods=["GET"]),
        Route("/v1/stats", get_stats, methods=["GET"]),
        Route("/v1/held", get_held, methods=["GET"]),
        Route("/v1/held/{queue_id}/release", post_release, methods=["POST"]),
        Route("/v1/held/{queue_id}", delete_held, methods=["DELETE"]),
        Route("/v1/overrides", by_method(GET=get_overrides, POST=post_override), methods=["GET", "POST"]),
        Route("/v1/overrides/{override_id}", delete_override, methods=["DELETE"]),
    ]


_JSON_HEADERS = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it has one that is a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, read as it arrives; ``None`` if the client went away. ``BodyTooLarge``
    as soon as Content-Length announces more than ``limit`` bytes or more than that has arrived."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts) if len(parts) != 1 else parts[0]


class BodyLimit:
    """ASGI middleware: a request whose body passes ``limit`` bytes gets 413 (JSON ``{"error"}``,
    ``Connection: close``) and is read no further. Announced by Content-Length: refused before the app
    runs. Otherwise the app's ``receive`` raises ``BodyTooLarge`` once more has arrived, which the app's
    exception handler (``_body_too_large``) turns into the same answer."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            await _body_too_large(BodyTooLarge(self.limit))(scope, receive, send)
            return
        size = 0

        async def limited() -> Any:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


async def _body_too_large_handler(request: Request, exc: Exception) -> Response:
    return _body_too_large(exc)


def _body_too_large(exc: Exception) -> Response:
    return ApiJSONResponse({"error": str(exc)}, status_code=413, headers={"connection": "close"})


class ApiApp(Starlette):
    """The Starlette app, with ``POST /v1/check`` answered in front of its middleware and router.

    A mail client asks once per message and the answer is wanted in milliseconds: Starlette's request,
    middleware and routing cost ~45 us of CPU per request here, more than the ten verdicts themselves, and
    under load every microsecond is queueing for the next client. This path is plain ASGI and does what the
    route does (``post_check``): the same token check and cache, the same JSON in and out, the same errors
    and metrics. A cross-origin request (an ``Origin`` header while ``[http] cors_origins`` is set) and
    every other path go through Starlette as before, so CORS, 405s and the dashboard are untouched.

    ``X-Forwarded-For``/``-Proto`` are believed only from ``[http] trusted_proxies`` (default: none; a
    client that may set them could otherwise pick any address, e.g. one per login attempt), and applied
    here, to every request but ``/v1/check``, which uses neither the client's address nor the scheme:
    ``uvicorn_server`` turns uvicorn's own pass off (~2 us a request, and it trusted loopback by default).

    Every request body is limited to ``[http] max_body_bytes`` as it arrives (``BodyLimit``): 413 and the
    connection closed, whether the body is announced by Content-Length, chunked, or longer than announced.
    """

    api: ApiState
    cors: bool = False
    max_body: int = HttpConfig.max_body_bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rest: ASGIApp = self.configure(HttpConfig())

    def configure(self, http: HttpConfig) -> ASGIApp:
        """Apply ``[http]``'s proxy trust and body limit to the requests Starlette answers."""
        app: Any = super().__call__  # uvicorn types ASGI more narrowly than Starlette does
        if http.trusted_proxies:
            app = ProxyHeadersMiddleware(app, trusted_hosts=[p.strip() for p in http.trusted_proxies])
        self.max_body = http.max_body_bytes
        self.rest = BodyLimit(app, http.max_body_bytes)
        return self.rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/v1/check"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            authorization = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value
                elif name == b"origin" and self.cors:
                    break
            else:
                await self._check(scope, authorization, receive, send)
                return
        await self.rest(scope, receive, send)

    async def _check(self, scope: Scope, authorization: bytes, receive: Receive, send: Send) -> None:
        state = self.api
        status = 200
        headers = [_JSON_HEADERS]
        try:
            token = await state.authenticate(authorization)
            if token is None:
                raise ApiError(401, "a valid API token is required (Authorization: Bearer ...)")
            if not scope_allows(token.scope, "check"):
                raise ApiError(403, f"this endpoint needs scope 'check'; the token has {token.scope!r}")
            body = await read_body(scope, receive, self.max_body)
            if body is None:
                return  # the client went away
            reply = await state.check_reply(body)
        except BodyTooLarge as exc:
            status, reply = 413, orjson.dumps({"error": str(exc)})
            headers.append(_CLOSE)  # the rest of the body is not read: this connection is done
        except ApiError as exc:
            status, reply = exc.status, orjson.dumps({"error": exc.message})
        except (ConfigError, InvalidAddress) as exc:
            status, reply = 400, orjson.dumps({"error": str(exc)})
        except StoreError as exc:
            status, reply = 503, orjson.dumps({"error": str(exc)})
        except TypoguardError as exc:
            status, reply = 500, orjson.dumps({"error": str(exc)})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(reply)).encode()), *headers],
            }
        )
        await send({"type": "http.response.body", "body": reply})


def create_app(
    config: Config,
    *,
    guard: Guard | None = None,
    store: Store | None = None,
    queue: HoldQueue | None = None,
) -> ApiApp:
    """The ASGI app. ``guard``/``store`` default to ones built from ``config`` (the store is then closed
    on shutdown); ``queue`` defaults to the Postfix instance of ``[postfix] config_directory`` (else
    ``$MAIL_CONFIG``, else Postfix's default) and the relay's quarantine."""
    owns_store = store is None
    the_store = open_store(config) if store is None else store
    state = ApiState(
        config,
        Guard.from_config(config) if guard is None else guard,
        the_store,
        HoldQueues.from_config(config, PostfixQueue.from_config(config)) if queue is None else queue,
    )
    from typoguard.web.auth import LoginRateLimit
    from typoguard.web.dashboard import dashboard_middleware, dashboard_routes

    routes: list[BaseRoute] = [*api_routes(), *dashboard_routes()]
    middleware = dashboard_middleware(config)
    if config.http.cors_origins:
        # Mail clients' web pages (webmail, add-ins) call /v1/check with a bearer token, never cookies.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.http.cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
                allow_credentials=False,
            )
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if owns_store:
            the_store.close()

    app = ApiApp(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={BodyTooLarge: _body_too_large_handler},
    )
    app.configure(config.http)
    app.state.api = app.api = state
    app.cors = bool(config.http.cors_origins)
    app.state.login_limit = LoginRateLimit(config.http.login_attempts_per_minute)
    return app


DRAIN_SECONDS = 10  # on stop: requests in flight get this long to finish, then their connections close


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host program.

    ``uvicorn.Server.serve`` replaces the process's SIGINT/SIGTERM handlers while it runs and, after a
    graceful stop, raises the signal again with the default handler, so the process dies of it (exit 143
    for SIGTERM). Embedded in ``typoguard serve`` that would take SIGTERM away from the policy service's own
    drain; run by ``typoguard http`` it turns a clean stop into a failure. Here the host decides: it sets
    ``should_exit`` (``serve_http`` does so on SIGTERM/SIGINT)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app`` (not started): ``await server.serve()``, stop with ``should_exit``.

    It installs no signal handlers (``EmbeddedServer``). uvloop and httptools are used when installed
    (they are dependencies); no access log: ``/metrics`` counts requests instead. Proxy headers: never
    uvicorn's (it trusts loopback, or ``$FORWARDED_ALLOW_IPS``, by default); an ``ApiApp`` applies them
    itself, from ``[http] trusted_proxies`` only."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=DRAIN_SECONDS,
    )
    return EmbeddedServer(config)


def serve_http(config: Config, *, workers: int | None = None) -> int:
    """Run the API and dashboard on ``[http] listen`` until SIGTERM or SIGINT, in ``workers`` processes
    (default ``[http] workers``); SIGHUP reloads the config file. Returns an exit code: 0 after a clean
    stop (listener closed, requests in flight finished, store closed), 1 if it never started. See
    ``http_serve``.

    To run it inside another asyncio program (``typoguard serve``): ``server = uvicorn_server(create_app(
    config), *config.http.listen_address)`` and ``await server.serve()`` as a task; set
    ``server.should_exit = True`` to stop it (the host program keeps its own signal handlers)."""
    from typoguard.web.serve import serve

    return serve(config, workers=workers)
