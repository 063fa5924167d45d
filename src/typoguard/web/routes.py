"""The JSON API's handlers and route table (``api_routes()``); what they do is in ``web/admin.py``.

    POST /v1/check        scope check   {"sender", "recipients": [...]} -> verdicts (typoguard check JSON)
    GET  /v1/decisions    scope read    filters + pagination (before=<seq>)
    GET  /v1/stats        scope read    per day and action, top look-alike domains, top senders
    GET  /v1/held         scope read    Postfix hold queue + relay quarantine, joined with the decisions
    POST /v1/held/{id}/release, DELETE /v1/held/{id}                 scope admin (recorded with who)
    GET/POST /v1/overrides, DELETE /v1/overrides/{id}                  read / admin / admin
    GET  /v1/events       scope read    what `typoguard watch` noticed; POST /v1/events/{id}/ack: admin
    GET  /metrics         scope read    Prometheus text;   GET /healthz, GET /openapi.json: no token

A request without a valid token gets 401, one whose scope is too small 403, whatever it asks for; every
error is JSON ``{"error": ...}`` with the status ``failure`` gives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from typoguard.errors import ConfigError, InvalidAddress, MailQueueError, StoreError, TypoguardError
from typoguard.store.stats import decision_stats
from typoguard.store.tokens import ApiToken, scope_allows
from typoguard.web import admin
from typoguard.web.admin import RequestError, number_param
from typoguard.web.openapi import document
from typoguard.web.state import ApiState

Handler = Callable[[Request], Awaitable[Response]]


def failure(exc: RequestError | TypoguardError) -> tuple[int, str]:
    """The status and error message a request that failed with ``exc`` is answered with."""
    if isinstance(exc, RequestError):
        return exc.status, exc.message
    if isinstance(exc, ConfigError | InvalidAddress):
        status = 400
    elif isinstance(exc, MailQueueError):
        status = 409 if "no held message" in str(exc) else 502
    elif isinstance(exc, StoreError):
        status = 503
    else:
        status = 500
    return status, str(exc)


def unauthorised(token: ApiToken | None, scope: str) -> RequestError | None:
    """Why a request with ``token`` may not use an endpoint of ``scope`` (401, 403), or ``None``."""
    if token is None:
        return RequestError(401, "a valid API token is required (Authorization: Bearer ...)")
    if not scope_allows(token.scope, scope):
        return RequestError(403, f"this endpoint needs scope {scope!r}; the token has {token.scope!r}")
    return None


def requires(scope: str) -> Callable[[Handler], Handler]:
    """Wrap a handler: 401 without a valid token, 403 if its scope is too small; errors as JSON."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            state: ApiState = request.app.state.api
            try:
                token = await state.authenticate(request.headers.get("authorization", "").encode("latin-1"))
                refused = unauthorised(token, scope)
                if refused is not None:
                    raise refused
                request.scope["typoguard.token"] = token
                return await handler(request)
            except (RequestError, TypoguardError) as exc:
                return _error(*failure(exc))

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def _by(request: Request) -> str:
    """Who makes a change: the token ``requires`` let in."""
    token: ApiToken = request.scope["typoguard.token"]
    return admin.who(token)


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
        raise RequestError(400, "the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    return body


# ---------------------------------------------------------------------------------------------- check
@requires("check")
async def post_check(request: Request) -> Response:
    """Verdicts for a message's recipients, before it is sent. (``ApiApp`` answers most of these itself,
    without this route: same token check, same JSON, same errors.)"""
    state: ApiState = request.app.state.api
    return Response(await state.check_reply(await request.body()), media_type="application/json")


# ---------------------------------------------------------------------------------------------- read
@requires("read")
async def get_decisions(request: Request) -> Response:
    """Decisions, newest first; the next page: ``before=<next_before>``."""
    state: ApiState = request.app.state.api
    query = admin.decision_query(request.query_params)
    page, next_before = await asyncio.to_thread(admin.decision_page, state.store, query)
    return ApiJSONResponse({"decisions": page, "next_before": next_before})


@requires("read")
async def get_stats(request: Request) -> Response:
    """Decision counts per day and action, top look-alike domains and top senders (flagged mail only)."""
    state: ApiState = request.app.state.api
    days = number_param(request.query_params, "days", int, 1, 3660) or 30
    stats = await asyncio.to_thread(decision_stats, state.store, days=days)
    return ApiJSONResponse(stats)


# ---------------------------------------------------------------------------------------------- held
@requires("read")
async def get_held(request: Request) -> Response:
    """Messages in Postfix's hold queue, with the decision that held each."""
    state: ApiState = request.app.state.api
    return JSONResponse({"held": await asyncio.to_thread(admin.held_list, state.store, state.queue)})


@requires("admin")
async def act_on_held(request: Request) -> Response:
    """Release (``POST .../release``) or delete (``DELETE``) a held message, recorded with the token's
    name."""
    state: ApiState = request.app.state.api
    queue_id, by = request.path_params["queue_id"], _by(request)
    action = "delete" if request.method == "DELETE" else "release"
    released = await asyncio.to_thread(
        admin.act_on_held, state.store, state.queue, queue_id, action, by=by, via=admin.VIA_API
    )
    answer: dict[str, Any] = {"queue_id": queue_id, "action": action, "by": by}
    if released is not None:  # a release: was delivery attempted, and where the message is now
        answer["delivery"] = released.as_dict()
    return JSONResponse(answer)


# ---------------------------------------------------------------------------------------------- overrides
@requires("read")
async def get_overrides(request: Request) -> Response:
    """Active overrides (``?all=1``: removed and expired ones too)."""
    state: ApiState = request.app.state.api
    flag = request.query_params.get("all", "0")
    if flag not in ("0", "1", "true", "false"):
        raise RequestError(400, "all must be 0, 1, true or false")
    include = flag in ("1", "true")
    rows = await asyncio.to_thread(state.store.overrides, include_inactive=include)
    return ApiJSONResponse({"overrides": [admin.override_dict(o) for o in rows]})


@requires("admin")
async def post_override(request: Request) -> Response:
    """Allow or block a domain on every node: {"domain", "action": allow|block, "reason", "expires_in"?}."""
    state: ApiState = request.app.state.api
    body = await _json_body(request)
    domain, action, reason = body.get("domain"), body.get("action"), body.get("reason")
    expires_in = body.get("expires_in")
    if not isinstance(domain, str) or not isinstance(action, str) or not isinstance(reason, str):
        raise RequestError(400, "domain, action and reason must be strings")
    if expires_in is not None and (
        not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0
    ):
        raise RequestError(400, "expires_in must be a positive number of seconds")
    added = await asyncio.to_thread(
        state.store.add_override, domain, action, reason=reason, by=_by(request), expires_in=expires_in
    )
    return ApiJSONResponse(admin.override_dict(added), status_code=201)


@requires("admin")
async def delete_override(request: Request) -> Response:
    """Remove an override by id (recorded with the token's name)."""
    state: ApiState = request.app.state.api
    n = await asyncio.to_thread(
        admin.remove_override,
        state.store,
        request.path_params["override_id"],
        by=_by(request),
        via=admin.VIA_API,
    )
    return ApiJSONResponse({"removed": n})


# ---------------------------------------------------------------------------------------------- events
@requires("read")
async def get_events(request: Request) -> Response:
    """Events of ``typoguard watch``, newest activity first (``state``, ``kind``, ``limit``)."""
    state: ApiState = request.app.state.api
    rows = await asyncio.to_thread(admin.event_list, state.store, request.query_params)
    return ApiJSONResponse({"events": rows})


@requires("admin")
async def ack_event(request: Request) -> Response:
    """Acknowledge an event: {"reason": "..."}, recorded with the token's name."""
    state: ApiState = request.app.state.api
    body = await _json_body(request)
    event = await asyncio.to_thread(
        admin.acknowledge_event,
        state.store,
        request.path_params["event_id"],
        body.get("reason"),
        by=_by(request),
    )
    return ApiJSONResponse(event)


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
        Route("/v1/held/{queue_id}/release", act_on_held, methods=["POST"]),
        Route("/v1/held/{queue_id}", act_on_held, methods=["DELETE"]),
        Route("/v1/overrides", by_method(GET=get_overrides, POST=post_override), methods=["GET", "POST"]),
        Route("/v1/overrides/{override_id}", delete_override, methods=["DELETE"]),
        Route("/v1/events", get_events, methods=["GET"]),
        Route("/v1/events/{event_id}/ack", ack_event, methods=["POST"]),
    ]
