"""The ASGI app of the JSON API and the dashboard, and how it is served.

    app = create_app(config)                 # Starlette app: routes (web/routes.py), dashboard, middleware
    server = uvicorn_server(app, *config.http.listen_address)
    await server.serve()                     # embedded in another asyncio program (``typoguard serve`` with
                                             # [http] embedded): stop it with server.should_exit = True
    serve_http(config)                       # ``typoguard http``: a program of its own (web/serve.py)

``ApiApp`` answers ``POST /v1/check`` itself, in front of Starlette. A request body over ``[http]
max_body_bytes`` gets 413 (``BodyLimit``), read no further than the limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from typoguard.config import Config, HttpConfig
from typoguard.errors import TypoguardError
from typoguard.guard import Guard
from typoguard.held import HoldQueue, HoldQueues, PostfixQueue
from typoguard.store import Store, open_store
from typoguard.web.admin import RequestError
from typoguard.web.auth import LoginRateLimit
from typoguard.web.dashboard import dashboard_middleware, dashboard_routes
from typoguard.web.routes import ApiJSONResponse, api_routes, failure, unauthorised
from typoguard.web.state import ApiState


class BodyTooLarge(Exception):
    """A request body passed ``[http] max_body_bytes`` (answered 413; the connection is closed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes ([http] max_body_bytes)")


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
            refused = unauthorised(await state.authenticate(authorization), "check")
            if refused is not None:
                raise refused
            body = await read_body(scope, receive, self.max_body)
            if body is None:
                return  # the client went away
            reply = await state.check_reply(body)
        except BodyTooLarge as exc:
            status, reply = 413, orjson.dumps({"error": str(exc)})
            headers.append(_CLOSE)  # the rest of the body is not read: this connection is done
        except (RequestError, TypoguardError) as exc:
            status, message = failure(exc)
            reply = orjson.dumps({"error": message})
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
    ``web/serve.py``.

    To run it inside another asyncio program (``typoguard serve``): ``server = uvicorn_server(create_app(
    config), *config.http.listen_address)`` and ``await server.serve()`` as a task; set
    ``server.should_exit = True`` to stop it (the host program keeps its own signal handlers)."""
    from typoguard.web.serve import serve

    return serve(config, workers=workers)
