"""``typoguard http`` as a program: one process, or ``[http] workers`` processes under a supervisor.

    workers = 1    this process: uvicorn on [http] listen (signals below handled in its event loop)
    workers = N    supervisor (no event loop, no requests): binds N SO_REUSEPORT sockets on [http] listen,
                   one per worker slot, keeps them open, forks a worker per slot, and:
      |- worker 1   uvicorn on socket 1; its own store connection, Guard, token cache, login rate limit
      |- ...
      '- worker N

Signals (send them to the supervisor, or to the one process):

* SIGTERM, SIGINT: stop. Each worker closes its listener and idle connections, lets requests in flight
  finish (at most ``DRAIN_SECONDS``; a second signal stops waiting), closes its store; then exit 0.
* SIGHUP: each worker loads the config file again and swaps in a new Guard (protected domains, models,
  thresholds); a file that does not load is logged and the old configuration kept. ``listen`` and
  ``workers`` stay as started.
* A worker that dies is replaced on the same slot (the supervisor holds the slot's socket, so connections
  waiting in its accept queue are answered by the new worker, not reset); one that keeps dying within
  seconds of starting is restarted at most every 30 s.

Why one socket per worker rather than one shared socket: the kernel spreads new connections evenly over
SO_REUSEPORT sockets, whereas on one shared socket whichever worker is idle first takes the next
connection and keep-alive clients pile up on one of them. Start-up and reload events are JSON lines on
``[log] file`` (standard error by default), one per worker, with its ``pid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

import uvicorn

from typoguard.config import Config, HostPort, load_config, nothing_to_protect
from typoguard.errors import ConfigError, TypoguardError
from typoguard.guard import Guard
from typoguard.obs import JsonLog
from typoguard.servers import Reloads, building_beside_the_loop
from typoguard.web.app import ApiApp, create_app, uvicorn_server

_STOP = (signal.SIGTERM, signal.SIGINT)
RESPAWN_MAX_DELAY = 30.0  # seconds between restarts of a worker that keeps dying at start
_STAYED_UP = 10.0  # a worker that ran this long before dying is restarted at once


def config_file(config: Config) -> Path | None:
    """The file ``config`` was loaded from (what SIGHUP reloads), if any."""
    return None if config.source == "<defaults>" else Path(config.source)


def serve(config: Config, *, workers: int | None = None) -> int:
    """Run until SIGTERM or SIGINT; the exit code: 0 after a clean stop, 1 if it could not listen."""
    count = config.http.workers if workers is None else workers
    if count > 1:
        return _Supervisor(config, count).run()
    return run_worker(config, None)


def run_worker(config: Config, sock: socket.socket | None) -> int:
    """One worker: the app on ``sock`` (a supervisor's slot) or on ``[http] listen``, until signalled."""
    log = JsonLog.for_service(config.log, "typoguard-http")
    app = create_app(config)
    host, port = config.http.listen_address
    server = uvicorn_server(app, host, port)
    # The compiled index lives as long as the process (or until a reload): keep it out of every garbage
    # collection, as the policy service does: shorter pauses, a better p99.
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        try:
            runner.run(_serve_until_signalled(server, app, config, log, sock))
        except SystemExit:
            # uvicorn logs why it could not start (address in use) and exits 3; ours is 1: it failed.
            if server.started:
                raise
        finally:
            log.close()
    return 0 if server.started else 1


async def _serve_until_signalled(
    server: uvicorn.Server, app: ApiApp, config: Config, log: JsonLog, sock: socket.socket | None
) -> None:
    loop = asyncio.get_running_loop()
    reloads = Reloads(lambda: _reload(app, config, log))  # one at a time; a SIGHUP meanwhile: one more

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True  # a second signal: stop waiting for requests in flight
        server.should_exit = True

    def hangup() -> None:
        reloads.request()

    for sig in _STOP:
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        await server.serve(sockets=[sock] if sock is not None else None)
    finally:
        for sig in (*_STOP, signal.SIGHUP):
            loop.remove_signal_handler(sig)


async def _reload(app: ApiApp, started_with: Config, log: JsonLog) -> None:
    """SIGHUP: the config file again, a new Guard; the old one stays if either fails."""
    log.reopen()
    path = config_file(started_with)
    began = time.perf_counter()
    try:
        config = await asyncio.to_thread(load_config, path)
        with building_beside_the_loop():
            guard = await asyncio.to_thread(Guard.from_config, config)
        if app.api.guard.index.protected and not guard.index.protected:  # as the policy service refuses it
            raise ConfigError(nothing_to_protect(config))
    except TypoguardError as exc:
        log.event("error", "http_reload_failed", pid=os.getpid(), error=str(exc), then="kept the old config")
        log.flush()
        return
    app.api.guard = guard
    gc.collect()
    gc.freeze()  # the new index too; the old one goes by reference counting
    log.event(
        "info",
        "http_reloaded",
        pid=os.getpid(),
        config=str(path) if path else "<defaults>",
        domains=len(config.protect.domains),
        seconds=round(time.perf_counter() - began, 3),
    )
    log.flush()


def _listeners(listen: HostPort, count: int) -> list[socket.socket]:
    """``count`` listening SO_REUSEPORT sockets on one address (port 0: the first one's ephemeral port)."""
    host, port = listen
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    out: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(2048)
            address = sock.getsockname()  # the same port for every slot
    except OSError:
        for sock in out:
            sock.close()
        raise
    return out


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM if its parent (the supervisor, ``typoguard serve``) dies, even of
    SIGKILL: no orphaned workers."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Supervisor:
    """Forks and watches the workers; passes stop and reload signals on. Runs no event loop."""

    def __init__(self, config: Config, count: int) -> None:
        self.config = config
        self.count = count
        self.log = JsonLog.for_service(config.log, "typoguard-http")
        self.pids: dict[int, int] = {}  # pid -> slot
        self.started: dict[int, float] = {}  # slot -> when its current worker was forked
        self.delay: dict[int, float] = {}  # slot -> seconds to wait before the next restart
        self.due: dict[int, float] = {}  # slot -> when to restart it
        self.stopping = False
        self.sockets: list[socket.socket] = []

    def run(self) -> int:
        # What every worker would otherwise race to create: the store's tables, the session key file.
        # It also checks the configuration once (ConfigError: exit 2 from the CLI).
        create_app(self.config).api.store.close()
        try:
            self.sockets = _listeners(self.config.http.listen_address, self.count)
        except OSError as exc:
            print(
                f"typoguard http: cannot listen on {self.config.http.listen}: {exc.strerror}", file=sys.stderr
            )
            return 1
        watched = {*_STOP, signal.SIGHUP, signal.SIGCHLD}
        signal.signal(signal.SIGCHLD, lambda *_: None)  # not ignored: a blocked SIGCHLD stays pending
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        try:
            for slot in range(self.count):
                self._fork(slot, old_mask)
            self.log.event(
                "info", "http_started", listen=self.config.http.listen, workers=self.count, pid=os.getpid()
            )
            self.log.flush()
            while self.pids or not self.stopping:
                info = signal.sigtimedwait(watched, 1.0)
                self._reap()
                if info is not None and info.si_signo in _STOP:
                    self.stopping = True
                    self._send(signal.SIGTERM)  # a second one makes the workers stop waiting
                elif info is not None and info.si_signo == signal.SIGHUP:
                    self.log.reopen()  # logrotate: the supervisor's own lines go to the new file too
                    self._reload_config()
                    self._send(signal.SIGHUP)
                now = time.monotonic()
                for slot, when in list(self.due.items()):
                    if not self.stopping and now >= when:
                        del self.due[slot]
                        self._fork(slot, old_mask)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            for sock in self.sockets:
                sock.close()
        self.log.event("info", "http_stopped", pid=os.getpid())
        self.log.close()
        return 0

    def _fork(self, slot: int, mask: set[int | signal.Signals]) -> None:
        self.log.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                supervisor = os.getppid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the supervisor only, which passes it on
                die_with_parent()
                if os.getppid() != supervisor:  # it died before PDEATHSIG was set
                    os._exit(1)
                for other in self.sockets:
                    if other is not self.sockets[slot]:
                        other.close()
                code = run_worker(self.config, self.sockets[slot])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # a worker must never return into the supervisor's code
                print(f"typoguard http: worker {os.getpid()}: {exc!r}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.pids[pid] = slot
        self.started[slot] = time.monotonic()

    def _reap(self) -> None:
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.pids.pop(pid, None)
            if slot is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            lived = time.monotonic() - self.started[slot]
            delay = (
                0.0 if lived >= _STAYED_UP else min(RESPAWN_MAX_DELAY, max(0.5, 2 * self.delay.get(slot, 0)))
            )
            self.delay[slot] = delay
            self.due[slot] = time.monotonic() + delay
            self.log.event(
                "error", "http_worker_died", pid=pid, exit=code, after=round(lived, 1), restart_in=delay
            )
            self.log.flush()

    def _send(self, sig: signal.Signals) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _reload_config(self) -> None:
        """Workers started from now on (replacing dead ones) use the file as it is now."""
        path = config_file(self.config)
        try:
            config = load_config(path)
        except TypoguardError:
            return  # each worker logs why
        self.config = replace(config, http=self.config.http)  # listen and workers stay as started
