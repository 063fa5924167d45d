"""The dashboard: server-rendered pages over the same state and operations as the JSON API (web/admin.py).

    /login, /logout            sign in with a read or admin token (rate-limited per client address)
    /dashboard                 overview: decisions per day by action, top look-alike domains, top senders
    /dashboard/decisions       the decision log with filters and pagination
    /dashboard/held            held mail; release / delete (admin)
    /dashboard/overrides       overrides; add / remove (admin)
    /dashboard/try             "try an address": the verdict and why
    /dashboard/alerts          watch events, open / acknowledged; acknowledge with a reason (admin)

Every POST checks the session's CSRF token; admin actions are recorded with the signed-in token's name.
Sessions are kept on the server (``web/sessions.py``): logout, a new sign-in and token revocation end them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from typoguard import charts
from typoguard.config import Config
from typoguard.core.describe import readable_reason, with_unicode
from typoguard.errors import ConfigError, InvalidAddress, MailQueueError, TypoguardError
from typoguard.store.stats import decision_stats
from typoguard.store.tokens import ApiToken, scope_allows
from typoguard.web.admin import (
    VIA_DASHBOARD,
    RequestError,
    acknowledge_event,
    act_on_held,
    decision_page,
    decision_query,
    held_list,
    remove_override,
    who,
)
from typoguard.web.auth import LoginRateLimit, client_address, csrf_ok, csrf_token, session_secret
from typoguard.web.state import ApiState

_WEB = files("typoguard.web")
templates = Jinja2Templates(directory=str(_WEB / "templates"))
templates.env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else ""
# A homoglyph reads exactly like what it imitates: show the A-label next to it (ADR 0017).
templates.env.filters["idn"] = lambda name: with_unicode(name) if name else ""
templates.env.filters["why"] = lambda reason, domain: readable_reason(reason, domain) if reason else ""
Page = Callable[[Request, ApiToken], Awaitable[Response]]


# The JSON API authenticates with bearer tokens only: its requests skip the session cookie's parsing and
# signature check (a few microseconds on every /v1/check), and no API reply can set a cookie.
_API_PATHS = ("/v1/", "/metrics", "/healthz", "/openapi.json")


class PageSessions:
    """``SessionMiddleware`` for the dashboard's pages only; API paths go straight to the app."""

    def __init__(self, app: ASGIApp, /, **session_options: Any) -> None:
        self.app = app
        self.sessions = SessionMiddleware(app, **session_options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_API_PATHS):
            await self.app(scope, receive, send)
        else:
            await self.sessions(scope, receive, send)


def dashboard_middleware(config: Config) -> list[Middleware]:
    return [
        Middleware(
            PageSessions,
            secret_key=session_secret(config),
            session_cookie="typoguard_session",
            max_age=config.http.session_max_age,
            same_site="strict",
            https_only=False,  # loopback by default; behind TLS the proxy sets Secure
        )
    ]


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _render(
    request: Request, name: str, token: ApiToken | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    context.update(
        user=token.name if token else None,
        is_admin=token is not None and scope_allows(token.scope, "admin"),
        csrf=csrf_token(request),
        message=request.query_params.get("msg", ""),
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'msg': message})}", status_code=303)


async def _session_token(request: Request, session_id: str) -> ApiToken | None:
    """The active token a session cookie's id signed in with, if the session is still on."""
    state = _state(request)
    known, token_id = state.session_cache.cached(session_id)
    if not known:
        epoch, asked = state.session_cache.epoch(), time.monotonic()
        token_id = await asyncio.to_thread(state.sessions.token_id, session_id)
        state.session_cache.remember(session_id, token_id, asked, epoch)
    if token_id is None:
        return None
    token: ApiToken | None = await asyncio.to_thread(state.tokens.active, token_id)
    return token


def _start_session(state: ApiState, token_id: int, max_age: int, previous: object) -> str:
    """A new session for a sign-in; the one this browser had (if any) ends."""
    if isinstance(previous, str):
        state.sessions.revoke(previous)
    session_id: str = state.sessions.create(token_id, max_age)
    return session_id


def signed_in(admin: bool = False) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A page for signed-in users (admins only with ``admin``); POSTs must carry the CSRF token."""

    def wrap(page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session_id = request.session.get("sid")
            token = None
            if isinstance(session_id, str):
                token = await _session_token(request, session_id)
            if token is None or not scope_allows(token.scope, "read"):
                request.session.pop("sid", None)
                return RedirectResponse("/login", status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not csrf_ok(request, form.get("csrf")):
                    return HTMLResponse("CSRF token missing or wrong; reload the page.", status_code=403)
            if admin and not scope_allows(token.scope, "admin"):
                return HTMLResponse("This needs an admin token.", status_code=403)
            return await page(request, token)

        endpoint.__name__ = page.__name__
        return endpoint

    return wrap


# ---------------------------------------------------------------------------------------------- login
async def login(request: Request) -> Response:
    if request.method == "GET":
        return _render(request, "login.html", None, error="")
    limiter: LoginRateLimit = request.app.state.login_limit
    if not limiter.allow(client_address(request)):
        return _render(
            request, "login.html", None, error="Too many attempts; wait a minute.", status_code=429
        )
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return _render(request, "login.html", None, error="The form expired; try again.", status_code=403)
    secret = form.get("token")
    token = (
        await asyncio.to_thread(_state(request).tokens.verify, secret) if isinstance(secret, str) else None
    )
    if token is None or not scope_allows(token.scope, "read"):
        return _render(
            request, "login.html", None, error="That token is not valid for the dashboard.", status_code=401
        )
    session_id = await asyncio.to_thread(
        _start_session, _state(request), token.id, request.app.state.api.config.http.session_max_age,
        request.session.get("sid"),
    )  # fmt: skip
    request.session.clear()  # a new session on sign-in (no fixation)
    request.session["sid"] = session_id
    return RedirectResponse("/dashboard", status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if csrf_ok(request, form.get("csrf")):
        session_id = request.session.get("sid")
        if isinstance(session_id, str):  # ended on the server: a copy of the cookie is refused too
            state = _state(request)
            await asyncio.to_thread(state.sessions.revoke, session_id)
            state.session_cache.forget(session_id)
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def root(request: Request) -> Response:
    return RedirectResponse("/dashboard", status_code=303)


# ---------------------------------------------------------------------------------------------- pages
@signed_in()
async def overview(request: Request, token: ApiToken) -> Response:
    days = 30
    stats = await asyncio.to_thread(decision_stats, _state(request).store, days=days)
    per_day = charts.stacked_bars(stats["per_day"], ["allow", "warn", "hold", "reject"])
    lookalikes = charts.horizontal_bars(
        [(f"{with_unicode(r['domain'])} → {r['intended']}", r["count"]) for r in stats["top_lookalikes"]],
        label="top look-alike domains",
    )
    senders = charts.horizontal_bars(
        [(r["sender"], r["count"]) for r in stats["top_senders"]], label="top senders of flagged mail"
    )
    todo = await asyncio.to_thread(_todo, _state(request))
    return _render(
        request,
        "overview.html",
        token,
        todo=todo,
        stats=stats,
        days=days,
        per_day=per_day,
        lookalikes=lookalikes,
        senders=senders,
    )


WEEK = 7 * 86400


def _todo(state: ApiState) -> dict[str, Any]:
    """The overview's "to do" panel: held mail waiting (count, oldest), open alerts, look-alikes that came
    alive this week. A hold queue that cannot be read is said so, never shown as empty."""
    now = time.time()
    held: dict[str, Any] = {"count": 0, "oldest": None, "error": ""}
    try:
        msgs = state.queue.held()
        held["count"] = len(msgs)
        if msgs:
            held["oldest"] = _age(now - min(m.arrival_time for m in msgs))
    except TypoguardError as exc:
        held["error"] = str(exc)
    alive = state.store.events(kind="lookalike-accepts-mail", since=now - WEEK, limit=50)
    return {"held": held, "open": state.store.event_counts()["open"], "alive": alive}


def _age(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{max(0, int(seconds / 60))} min"


@signed_in()
async def alerts_page(request: Request, token: ApiToken) -> Response:
    shown = request.query_params.get("state", "open")
    if shown not in ("open", "acknowledged"):
        shown = "open"
    store = _state(request).store
    rows = await asyncio.to_thread(store.events, state=shown, limit=500)
    counts = await asyncio.to_thread(store.event_counts)
    return _render(request, "alerts.html", token, events=rows, shown=shown, counts=counts)


@signed_in(admin=True)
async def alert_ack(request: Request, token: ApiToken) -> Response:
    form = await request.form()
    try:
        event = await asyncio.to_thread(
            acknowledge_event,
            _state(request).store,
            request.path_params["event_id"],
            str(form.get("reason", "")),
            by=who(token),
        )
    except RequestError as exc:
        return _back("/dashboard/alerts", exc.message)
    return _back("/dashboard/alerts", f"#{event['id']} {event['subject']}: acknowledged")


@signed_in()
async def decisions_page(request: Request, token: ApiToken) -> Response:
    filters = {k: v for k, v in request.query_params.items() if k != "msg" and v}  # empty: any
    try:
        query = decision_query(filters)
    except RequestError as exc:
        return _back("/dashboard/decisions", exc.message)
    rows, next_before = await asyncio.to_thread(decision_page, _state(request).store, query)
    filters.pop("before", None)
    next_url = None
    if next_before is not None:
        next_url = "/dashboard/decisions?" + urlencode({**filters, "before": next_before})
    return _render(request, "decisions.html", token, rows=rows, filters=filters, next_url=next_url)


@signed_in()
async def held_page(request: Request, token: ApiToken) -> Response:
    state = _state(request)
    try:
        held = await asyncio.to_thread(held_list, state.store, state.queue)
        error = ""
    except TypoguardError as exc:
        held, error = [], str(exc)
    return _render(request, "held.html", token, held=held, error=error)


@signed_in(admin=True)
async def held_action(request: Request, token: ApiToken) -> Response:
    state = _state(request)
    queue_id = request.path_params["queue_id"]
    action = request.path_params["action"]
    try:
        released = await asyncio.to_thread(
            act_on_held,
            state.store,
            state.queue,
            queue_id,
            action,
            by=who(token),
            via=VIA_DASHBOARD,
        )
    except RequestError as exc:
        return _back("/dashboard/held", exc.message)
    except (MailQueueError, ConfigError) as exc:
        return _back("/dashboard/held", str(exc))
    if released is not None:
        return _back("/dashboard/held", f"{queue_id}: released, {released.outcome()}")
    return _back("/dashboard/held", f"{queue_id}: {action}d")


@signed_in()
async def overrides_page(request: Request, token: ApiToken) -> Response:
    rows = await asyncio.to_thread(_state(request).store.overrides)
    return _render(request, "overrides.html", token, overrides=rows)


@signed_in(admin=True)
async def override_add(request: Request, token: ApiToken) -> Response:
    form = await request.form()
    domain, action, reason = (str(form.get(k, "")).strip() for k in ("domain", "action", "reason"))
    try:
        added = await asyncio.to_thread(
            _state(request).store.add_override, domain, action, reason=reason, by=who(token)
        )
    except (ConfigError, InvalidAddress) as exc:
        return _back("/dashboard/overrides", str(exc))
    return _back("/dashboard/overrides", f"{added.action} {added.domain}: added")


@signed_in(admin=True)
async def override_remove(request: Request, token: ApiToken) -> Response:
    try:
        await asyncio.to_thread(
            remove_override,
            _state(request).store,
            request.path_params["override_id"],
            by=who(token),
            via=VIA_DASHBOARD,
        )
    except RequestError as exc:
        return _back("/dashboard/overrides", exc.message)
    return _back("/dashboard/overrides", "removed")


@signed_in()
async def try_page(request: Request, token: ApiToken) -> Response:
    address = ""
    verdict: dict[str, Any] | None = None
    if request.method == "POST":
        form = await request.form()
        address = str(form.get("address", "")).strip()
        if address:
            verdict = _state(request).guard.check(address).to_dict()
    return _render(request, "try.html", token, address=address, verdict=verdict)


async def _overrides(request: Request) -> Response:
    return await (override_add if request.method == "POST" else overrides_page)(request)


class StaticDirectory(StaticFiles):
    """``StaticFiles`` that answers 404 for a path no file can have (a NUL byte made it answer 500)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if "\x00" in path:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def dashboard_routes() -> list[Route | Mount]:
    return [
        Route("/", root, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/dashboard", overview, methods=["GET"]),
        Route("/dashboard/decisions", decisions_page, methods=["GET"]),
        Route("/dashboard/held", held_page, methods=["GET"]),
        Route("/dashboard/held/{queue_id}/{action}", held_action, methods=["POST"]),
        Route("/dashboard/overrides", _overrides, methods=["GET", "POST"]),
        Route("/dashboard/overrides/{override_id}/remove", override_remove, methods=["POST"]),
        Route("/dashboard/try", try_page, methods=["GET", "POST"]),
        Route("/dashboard/alerts", alerts_page, methods=["GET"]),
        Route("/dashboard/alerts/{event_id}/ack", alert_ack, methods=["POST"]),
        Mount("/static", app=StaticDirectory(directory=str(_WEB / "static")), name="static"),
    ]
