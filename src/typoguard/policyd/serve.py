"""``typoguard serve``: the policy service with its memory, and the HTTP API, in one process.

    PolicyServer (asyncio, the hot path)
      |- PolicyDecider -> LiveContext       overrides / confirmed correspondents / known pairs: snapshots
      |                                     refreshed by threads every [store] refresh_interval seconds
      |- decision log line ---> stderr/file (JsonLog)
      |                   \\--> pipe ---> writer process (python -m typoguard.store.feed, nice 19)
      |                                     DecisionWriter: batches, spool, replay, correspondents
      '- HttpCompanion: uvicorn in the same event loop ([http] enabled, one worker), or
         HttpProcessCompanion: `typoguard http` as a child process (the default; [http] embedded = false)

The store never stops mail: a database that is down at start leaves the snapshots empty (retried every
refresh) and the writer process spools decisions until it is back. A ``[store]`` that cannot be used at
all (a bad URL, an unwritable data directory) is a configuration error: exit 2 before listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from typoguard.config import Config
from typoguard.errors import TypoguardError
from typoguard.obs import JsonLog
from typoguard.policyd.decider import PolicyDecider
from typoguard.policyd.server import Companion, PolicyServer, banner
from typoguard.servers import event_loop, print_banner, systemd_notify

if TYPE_CHECKING:
    import uvicorn

    from typoguard.store import Store
    from typoguard.store.live import StoreParts

SERVICES = ("policyd", "http")


class HttpCompanion:
    """The HTTP API and dashboard served by uvicorn inside the policy service's event loop."""

    def __init__(self, config: Config, decider: PolicyDecider, store: Store | None, log: JsonLog) -> None:
        from typoguard.web.app import create_app

        self.config = config
        self.log = log
        self.host, self.port = config.http.listen_address
        self.app = create_app(config, guard=decider.guard, store=store)
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, policy: PolicyServer) -> None:
        from typoguard.web.app import uvicorn_server

        # It installs no signal handlers: the policy service owns SIGTERM/SIGHUP and stops it by should_exit.
        self.server = server = uvicorn_server(self.app, self.host, self.port)
        self.task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if not server.started:
            self.log.event("error", "http_failed", listen=self.config.http.listen)
            return
        policy.addresses.append(f"http://{self.host}:{self.port}/")

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 10)

    def reloaded(self, decider: PolicyDecider) -> None:
        self.app.state.api.guard = decider.guard  # /v1/check answers with the new configuration too


class HttpProcessCompanion:
    """The API as ``typoguard http`` in child processes (one, or with ``[http] workers`` > 1 a supervisor and
    workers on one SO_REUSEPORT address), started, reloaded and stopped with the policy service. The default:
    an HTTP request then never takes the policy service's event loop (ADR 0015); ``[http] embedded = true``
    runs ``HttpCompanion`` instead.

    One event loop cannot be shared by several processes, so the embedded server (``HttpCompanion``) is for
    one worker only. The child reads the same config file: SIGHUP is passed on and every worker reloads it.
    A child that exits while the service runs is logged and started again (after 2 s, doubling while it
    keeps failing, up to a minute).
    """

    STOP_SECONDS = 15.0

    def __init__(self, config: Config, config_path: Path, log: JsonLog) -> None:
        self.config = config
        self.config_path = config_path
        self.log = log
        self.host, self.port = config.http.listen_address
        self.proc: asyncio.subprocess.Process | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.stopping = False

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "typoguard", "http", "--config", str(self.config_path), "--supervised"]

    async def start(self, policy: PolicyServer) -> None:
        if await self._spawn():
            policy.addresses.append(f"http://{self.host}:{self.port}/ ({self.config.http.workers} workers)")
        self.watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _spawn(self) -> bool:
        """Start the child and wait until it answers /healthz (or exits): True if it answers."""
        from typoguard.store.feed import lower_priority

        # A session of its own: a terminal's Ctrl-C reaches this process only, which stops the child once
        # (a signal of its own as well made it force its stop, cutting requests, with a traceback); it
        # dies with this process (--supervised). The packaged unit signals the main process only
        # (KillMode=mixed) for the same reason.
        self.proc = proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.DEVNULL, start_new_session=True
        )
        # Behind the policy service on the CPU, set before the child has started its interpreter (its
        # threads and its workers inherit it): under SCHED_IDLE a policy request preempts it at once.
        priority = lower_priority(self.config.http.process_nice, self.config.http.process_idle, proc.pid)
        deadline = time.monotonic() + 30
        while proc.returncode is None and time.monotonic() < deadline:
            if await self._healthy():
                self.log.event(
                    "info", "http_process_ready", pid=proc.pid, workers=self.config.http.workers,
                    priority=priority,
                )  # fmt: skip
                return True
            await asyncio.sleep(0.05)
        self.log.event("error", "http_failed", listen=self.config.http.listen, exit_code=proc.returncode)
        return False

    async def _healthy(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 1)
        except (TimeoutError, OSError):
            return False
        try:
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n".encode())
            status = await asyncio.wait_for(reader.readline(), 2)
            return status.startswith(b"HTTP/1.1 200")
        except (TimeoutError, OSError):
            return False
        finally:
            writer.close()

    async def _watch(self) -> None:
        delay = 1.0  # doubles while the child keeps failing (e.g. its address is taken), up to a minute
        while not self.stopping:
            proc = self.proc
            if proc is None:
                return
            started = time.monotonic()
            code = await proc.wait()
            if self.stopping:
                return
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 60.0)
            then = f"starting it again in {delay:.0f} s"
            self.log.event("error", "http_process_exited", pid=proc.pid, exit_code=code, then=then)
            await asyncio.sleep(delay)
            if not self.stopping:
                await self._spawn()

    async def stop(self) -> None:
        self.stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.STOP_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher

    def reloaded(self, decider: PolicyDecider) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGHUP)  # every worker reloads the config file itself


def _add_watch(
    server: PolicyServer, config: Config, decider: PolicyDecider, parts: StoreParts | None, log: JsonLog
) -> bool:
    """``[watch] enabled``: rounds beside the policy service (docs/watch.md); False after saying why not."""
    if parts is None:
        print("typoguard: [watch] needs the store ([store] enabled = true)", file=sys.stderr)
        return False
    from typoguard.watch.companion import WatchCompanion

    try:
        companion = WatchCompanion(config, decider.guard, parts.store, log)
    except TypoguardError as exc:
        print(f"typoguard: [watch]: {exc}", file=sys.stderr)
        return False
    server.companions.append(companion)
    server.metrics.watch = companion.watch  # on the metrics page ([policyd] metrics_listen)
    return True


def _milter(decider: PolicyDecider, log: JsonLog) -> Companion:
    from typoguard.milter.companion import MilterCompanion

    return MilterCompanion(decider, log)


def run(config: Config, *, config_path: Path, only: Iterable[str] = ()) -> int:
    """Run the services ``config`` enables (or ``only`` these); the exit status for ``sys.exit``.

    0 after a clean stop (SIGTERM), 1 if it cannot listen, 2 if the configuration cannot be used.
    """
    wanted = set(only) or set(SERVICES)
    if wanted == {"http"}:
        from typoguard.web.app import serve_http

        return serve_http(config)
    try:
        log = JsonLog.for_service(config.log, "typoguard")
        decider = PolicyDecider.build(config)
    except TypoguardError as exc:
        print(f"typoguard: {exc}", file=sys.stderr)
        return 2
    if not decider.protected_domains:
        from typoguard.config import nothing_to_protect

        print(f"typoguard: {nothing_to_protect(config)}", file=sys.stderr)  # which sources were read
        return 2
    parts: StoreParts | None = None
    if config.store.enabled:
        try:
            from typoguard.store.live import StoreParts  # SQLAlchemy only when there is a store

            parts = StoreParts(config, config_path, log)
        except TypoguardError as exc:
            print(f"typoguard: [store]: {exc}", file=sys.stderr)
            return 2
        decider = PolicyDecider(config, decider.guard, decider.senders, context=parts.context)
    server = PolicyServer(config, decider, log, config_path=config_path)
    if parts is not None:
        server.attach_feed(parts.feed)
        server.metrics.retention = parts.retention
    if "http" in wanted and config.http.enabled:
        try:
            if config.http.workers > 1 or not config.http.embedded:
                server.companions.append(HttpProcessCompanion(config, config_path, log))
            else:
                server.companions.append(HttpCompanion(config, decider, parts.store if parts else None, log))
        except TypoguardError as exc:
            print(f"typoguard: [http]: {exc}", file=sys.stderr)
            return 2
    if config.watch.enabled and not _add_watch(server, config, decider, parts, log):
        return 2
    if config.milter.listen and "policyd" in wanted:  # [milter] listen: the milter too (docs/milter.md)
        server.companions.append(_milter(decider, log))
    # The compiled index lives as long as the process: keep it out of every garbage collection (shorter
    # pauses, so a better p99). Reloads freeze the new index the same way.
    gc.collect()
    gc.freeze()

    def ready(srv: PolicyServer) -> None:
        print_banner(banner(srv))
        systemd_notify.ready()  # Type=notify units: listening now (no-op outside systemd)

    try:
        return event_loop.run(server.run(on_ready=ready))
    finally:
        if parts is not None:
            with contextlib.suppress(Exception):
                if server.feed is not None and server.feed.alive:  # run() never started: stop the writer
                    server.feed.close()
            parts.close()
        log.close()
