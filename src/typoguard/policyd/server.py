"""``typoguard serve``: the Postfix policy service (check_policy_service), asyncio, TCP and UNIX sockets.

One ``PolicyConnection`` (an ``asyncio.Protocol``: about three times the throughput of asyncio streams
for this request/reply pattern) per Postfix smtpd connection; the sans-IO codec frames requests, the
``PolicyDecider`` answers them. Replies are written synchronously, so a connection never has more than
the client's own pipelining in flight.

Operations:

* **SIGHUP** reloads the config file: the new ``PolicyDecider`` (Guard, index, matchers) is built in a
  worker thread while the loop keeps answering, then swapped in with one assignment; every request is
  answered by exactly one configuration. A config that fails to load is logged and the old one stays.
  The log file is reopened (logrotate). ``listen``, ``metrics_listen`` and ``[log]`` need a restart.
* **SIGTERM/SIGINT** drain: stop listening, close idle connections, let connections in the middle of a
  request finish it (up to ``DRAIN_SECONDS``), flush the log, exit 0.
* **Trouble** (garbage, over-long lines, too many attributes, no ``request=``, EOF mid-request, a client
  idle past ``idle_timeout``): log, count, disconnect - never a guessed reply; Postfix then applies
  ``smtpd_policy_service_default_action``. An exception inside the decision itself follows
  ``[policyd] on_error``.
* **Full** (``max_connections_per_client`` from one address, or ``max_connections`` in all): a new
  connection closes the longest-idle one of that client (or of all) and is served, so idle connections
  cannot lock Postfix out (Postfix reconnects by itself); a connection in the middle of a request is
  never closed; only when all are, the new one is closed at once (ADR 0017).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import os
import resource
import signal
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from typoguard.config import Config, UnixSocket, load_config, nothing_to_protect
from typoguard.errors import ConfigError, ProtocolError, TypoguardError
from typoguard.obs import JsonLog, PolicydMetrics, metrics_registry
from typoguard.policyd.decider import DUNNO, PolicyDecider
from typoguard.protocols.postfix_policy import PolicyReply, PolicyRequest, PolicyServerConnection
from typoguard.protocols.postfix_policy import implementation as codec_implementation
from typoguard.servers import ListenError, Reloads, building_beside_the_loop, stop_writer_and_metrics

if TYPE_CHECKING:
    from typoguard.store.feed import DecisionFeed

DRAIN_SECONDS: Final = 5.0
LOG_FLUSH_SECONDS: Final = 0.005  # decision log lines reach the file at most this late
# Loop time the queued (pipelined) requests of all connections together may take before the loop reads its
# sockets again: a request that arrives alone waits for at most one such turn (ADR 0031).
TURN_SECONDS: Final = 0.0002
MAX_REQUEST_SECONDS: Final = 10.0  # a started request must be complete by then (slow-loris guard)
TEMPFAIL: Final = PolicyReply("451 4.3.0 typoguard: temporary failure, please try again later")
# Postfix's protocol_state values (SMTPD_POLICY_README); a request at one of these other than RCPT has no
# recipient typoguard can judge. VRFY and ETRN reach smtpd_recipient_restrictions by design.
_POSTFIX_STAGES: Final = frozenset(
    {"CONNECT", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "END-OF-MESSAGE", "VRFY", "ETRN"}
)
_EXPECTED_IGNORED: Final = frozenset({"RCPT", "VRFY", "ETRN"})
NOT_AT_RCPT_WARN_SECONDS: Final = 60.0
_perf = time.perf_counter
_mono = time.monotonic


class PolicyConnection(asyncio.Protocol):
    """One connection from a Postfix smtpd process: many requests, answered in order."""

    def __init__(self, server: PolicyServer) -> None:
        self.server = server
        self.codec = PolicyServerConnection(
            max_line=server.config.policyd.max_line, max_attributes=server.config.policyd.max_attributes
        )
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.client = ""  # the peer's address without port ("" on a UNIX socket: no per-client cap)
        self.last_activity = _mono()
        self.partial_since: float | None = None
        self.closing = False
        self.paused = False  # the client does not read its replies: reading paused until it does
        self.yielded = False  # requests left for a later loop turn: reading paused until answered

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it: no isinstance check
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        self.client = str(peer[0]) if isinstance(peer, tuple) else ""
        self.server.connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connection_lost(self)

    def pause_writing(self) -> None:  # the client does not read its replies: stop reading its requests
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closing and not self.yielded:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        codec = self.codec
        try:
            event = codec.receive_one(data)
        except ProtocolError as exc:
            self.abort("protocol", str(exc))
            return
        if event is None:
            self._data_received(data)
            return
        # The hot path: one whole request in this chunk (what smtpd sends). Decide, log, count, reply.
        self.last_activity = _mono()
        server = self.server
        decider = server.decider
        started = _perf()
        try:
            reply, action, record = decider.decide(event)
        except Exception as exc:  # a bug in deciding: declared fail-safe, never a guess
            try:
                reply = server.decision_failed(exc, self)
            except _Disconnect:
                self.close()
                return
        else:
            if record is not None:
                record_decision = server.record_decision
                if record_decision is not None:
                    record_decision(record)
            elif action == "ignored":
                server.not_at_rcpt(event)
            server.metrics.decision(action, decider.mode, _perf() - started)
        transport = self.transport
        if transport is not None:
            transport.write(codec.send(reply))
        self.partial_since = None
        if server.draining:
            self.close()

    def _data_received(self, data: bytes) -> None:
        """The general path: requests split across chunks, several in one chunk, CRLF, the end."""
        self.last_activity = _mono()
        try:
            self.codec.receive_data(data)
        except ProtocolError as exc:
            self.abort("protocol", str(exc))
            return
        if not self.yielded:  # else it is in the server's queue already: its turns answer them, in order
            self.server.enqueue(self)

    def answer_one(self, decider: PolicyDecider, out: list[bytes]) -> bool:
        """Answer the next complete request buffered, its reply appended to ``out`` (written by the
        caller): True if one was answered (more may follow), False if none is complete. Raises
        ``ProtocolError`` (garbage) and ``_Disconnect`` (``on_error = "disconnect"``)."""
        event = self.codec.next_event()
        # Also when nothing is left: next_event() then empties the codec's buffer (a chunk that ended
        # exactly at a request's end otherwise stayed, and every later one was appended).
        if event.__class__ is not PolicyRequest:  # NEED_DATA, or ConnectionClosed after EOF
            return False
        server = self.server
        started = _perf()
        try:
            reply, action, record = decider.decide(event)
        except Exception as exc:  # a bug in deciding: declared fail-safe, never a guess
            reply = server.decision_failed(exc, self)
        else:
            if record is not None:
                log_record = server.record_decision
                if log_record is not None:
                    log_record(record)
            elif action == "ignored":
                server.not_at_rcpt(event)
            server.metrics.decision(action, decider.mode, _perf() - started)
        out.append(self.codec.send(reply))
        return True

    def end_turn(self) -> None:
        """Out of the server's queue: resume reading; note a partial request; close if draining and idle.
        (While queued, reading is paused, so no partial request can linger: none is noted.)"""
        self.yielded = False
        transport = self.transport
        if transport is not None and not self.closing and not self.paused:
            transport.resume_reading()
        if self.codec.buffered:
            if self.partial_since is None:
                self.partial_since = self.last_activity
        else:
            self.partial_since = None
            if self.server.draining:
                self.close()

    def eof_received(self) -> bool:
        try:
            self.codec.receive_data(b"")
            self.codec.next_event()
        except ProtocolError as exc:
            self.abort("protocol", str(exc))
        return False  # close our side too

    # ------------------------------------------------------------------ helpers
    def write(self, out: list[bytes]) -> None:
        if self.transport is not None and out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self, kind: str, why: str) -> None:
        """Log, count and disconnect (Postfix's rule: never guess an answer)."""
        self.server.metrics.error(kind)
        self.server.log.event("warning", "disconnect", reason=kind, detail=why, peer=self.peer)
        self.close()


class Companion(Protocol):
    """A service run in the policy service's event loop (the HTTP API): started after the listeners,
    stopped while draining, told about reloads."""

    async def start(self, server: PolicyServer) -> None: ...

    async def stop(self) -> None: ...

    def reloaded(self, decider: PolicyDecider) -> None: ...


class _Disconnect(Exception):
    """Raised inside the request loop when ``on_error = "disconnect"`` and a decision failed."""


class PolicyServer:
    """Listeners, connections, the current decider, reload and drain."""

    def __init__(
        self,
        config: Config,
        decider: PolicyDecider,
        log: JsonLog,
        *,
        config_path: str | Path | None = None,
        metrics: PolicydMetrics | None = None,
    ) -> None:
        self.config = config
        self.decider = decider
        self.log = log
        self.config_path = config_path
        self.metrics = metrics or PolicydMetrics()
        self.metrics.protected_domains = decider.protected_domains
        self.log_decisions = log.enabled("info")
        self.feed: DecisionFeed | None = None  # decisions to the store's writer process
        self.record_decision: Callable[[bytes], None] | None = log.record_json if self.log_decisions else None
        self.companions: list[Companion] = []  # services run beside this one (the HTTP API)
        self.connections: set[PolicyConnection] = set()
        self.by_client: dict[str, set[PolicyConnection]] = {}  # open connections per client address
        self.draining = False
        self.addresses: list[str] = []  # what we actually listen on, e.g. "127.0.0.1:40123"
        self._servers: list[asyncio.Server] = []
        # Connections with requests waiting (pipelined, or split across chunks), answered in turns, one
        # request per connection in round robin (``_turn``); reading from them is paused meanwhile.
        self._queue: collections.deque[PolicyConnection] = collections.deque()
        self._turn_scheduled = False
        self._unix_paths: list[str] = []
        self._stop: asyncio.Event | None = None
        self._reloads = Reloads(self.reload)  # one at a time; a SIGHUP meanwhile runs one more after it
        self._last_warning: dict[str, float] = {}  # event -> when it was last logged (warn_rarely)
        self._not_at_rcpt: dict[str, int] = {}  # stage -> requests not yet in a warning (not_at_rcpt)
        self._metrics_http: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ decisions
    def attach_feed(self, feed: DecisionFeed) -> None:
        """Send every decision's log line to the store's writer process too (before ``start``)."""
        self.feed = feed
        self.metrics.feed = feed
        log, append = self.log, feed.append
        if self.log_decisions:
            line_of, log_line = log.line, log.append_line

            def both(body: bytes) -> None:
                line = line_of(body)
                append(line)
                log_line(line)

            self.record_decision = both
        else:
            line_of = log.line

            def feed_only(body: bytes) -> None:
                append(line_of(body))

            self.record_decision = feed_only

    def decision_failed(self, exc: Exception, conn: PolicyConnection) -> PolicyReply:
        on_error = self.config.policyd.on_error
        self.metrics.error("internal")
        self.log.event(
            "error",
            "decision_failed",
            error=f"{type(exc).__name__}: {exc}",
            on_error=on_error,
            peer=conn.peer,
        )
        if on_error == "dunno":
            return DUNNO
        if on_error == "tempfail":
            return TEMPFAIL
        raise _Disconnect from exc

    # ------------------------------------------------------------------ fair turns
    def enqueue(self, conn: PolicyConnection) -> None:
        """Queue ``conn``'s buffered requests for the next turn (reading from it paused until answered)."""
        conn.yielded = True
        if conn.transport is not None:
            conn.transport.pause_reading()
        self._queue.append(conn)
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        """Answer the queued connections, one request each in round robin, for at most ``TURN_SECONDS``;
        what is left waits for the next loop turn, after the loop has read its sockets again.

        A connection that sends one request at a time, as Postfix's smtpd does, is answered in
        ``data_received`` as soon as its request is read; it waits for at most one turn, however many
        connections pipeline how many costly requests (issue 15 item 6): one pipelining client gets one
        request's share of a turn per other client waiting, not a turn of its own. A connection's replies
        stay in order (one codec, answered in sequence) and are written once per turn."""
        self._turn_scheduled = False
        queue = self._queue
        decider = self.decider  # once per turn: a reload takes effect between turns, never within one
        turn_ends = _perf() + TURN_SECONDS
        outs: dict[PolicyConnection, list[bytes]] = {}
        finished: list[PolicyConnection] = []
        while queue:
            conn = queue.popleft()
            if conn.closing:
                conn.yielded = False
                continue
            out = outs.get(conn)
            if out is None:
                out = outs[conn] = []
            try:
                if conn.answer_one(decider, out):
                    queue.append(conn)
                else:
                    finished.append(conn)
            except ProtocolError as exc:
                conn.write(out)
                out.clear()
                conn.abort("protocol", str(exc))
            except _Disconnect:
                conn.write(out)
                out.clear()
                conn.close()
            if _perf() > turn_ends:
                break
        for conn, out in outs.items():
            if out:
                conn.write(out)
        for conn in finished:
            conn.end_turn()
        if queue:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)

    # ------------------------------------------------------------------ connections
    def connection_made(self, conn: PolicyConnection) -> None:
        self.metrics.connections_total += 1
        pd = self.config.policyd
        client = conn.client
        mine = self.by_client.get(client) if client else None
        if (
            self.draining
            or (
                mine is not None
                and len(mine) >= pd.max_connections_per_client
                and not self._shed(mine, "per_client", client)
            )
            or (
                len(self.connections) >= pd.max_connections
                and not self._shed(self.connections, "max_connections", client)
            )
        ):
            self._refuse(conn)
            return
        self.connections.add(conn)
        if client:
            if mine is None:
                mine = self.by_client[client] = set()
            mine.add(conn)
        self.metrics.connections_open = len(self.connections)

    def _refuse(self, conn: PolicyConnection) -> None:
        """Draining, or full of connections that are all in the middle of a request: close at once."""
        self.metrics.connections_refused += 1
        self.warn_rarely(
            "connection_refused",
            open=len(self.connections),
            max_connections=self.config.policyd.max_connections,
            refused=self.metrics.connections_refused,
            client=conn.client or "unix",
        )
        conn.close()

    def _shed(self, pool: set[PolicyConnection], reason: str, client: str) -> bool:
        """Close the longest-idle connection of ``pool`` to make room; False if every one is in the
        middle of a request (those are never closed). One scan of at most the cap, only when full."""
        idle = [c for c in pool if not c.closing and not c.codec.buffered]
        if not idle:
            return False
        victim = min(idle, key=_last_activity)
        self.connection_lost(victim)  # out of the counts now: its transport closes on the next loop turn
        victim.close()
        metrics = self.metrics
        metrics.connections_shed[reason] = metrics.connections_shed.get(reason, 0) + 1
        self.warn_rarely(
            "connection_shed",
            reason=reason,
            client=client or "unix",
            peer=victim.peer,
            idle_seconds=round(_mono() - victim.last_activity, 3),
            open=len(self.connections),
            shed=sum(metrics.connections_shed.values()),
        )
        return True

    def not_at_rcpt(self, request: PolicyRequest) -> None:
        """A request typoguard answered DUNNO without judging a recipient: said in the log once a minute per
        protocol stage, with how many there were, unless the stage is one where that is expected (VRFY,
        ETRN). What it means: ``check_policy_service`` is under the wrong restriction list, and look-alikes
        go through unchecked while the service looks healthy."""
        state = request.rcpt_fields()[0]
        if state in _EXPECTED_IGNORED:
            return
        stage = state if state in _POSTFIX_STAGES else "other"  # never a client's text in the log
        counts = self._not_at_rcpt
        counts[stage] = counts.get(stage, 0) + 1
        now = _mono()
        if now - self._last_warning.get("not_at_rcpt:" + stage, -1e9) >= NOT_AT_RCPT_WARN_SECONDS:
            self._last_warning["not_at_rcpt:" + stage] = now
            self.log.event(
                "warning", "policy_request_not_at_rcpt", protocol_state=stage, requests=counts.pop(stage),
                answered="DUNNO",
                fix="typoguard judges recipients at RCPT: put check_policy_service under "
                "smtpd_recipient_restrictions (docs/postfix.md); until then look-alikes are not checked",
            )  # fmt: skip

    def warn_rarely(self, event: str, **fields: Any) -> None:
        """Log ``event`` as a warning at most once a second (one line a second, not one per connection:
        an attacker's flood must not flood the log); the metrics count every occurrence."""
        now = _mono()
        if now - self._last_warning.get(event, -1e9) >= 1.0:
            self._last_warning[event] = now
            self.log.event("warning", event, **fields)

    def connection_lost(self, conn: PolicyConnection) -> None:
        self.connections.discard(conn)
        mine = self.by_client.get(conn.client)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_client[conn.client]
        self.metrics.connections_open = len(self.connections)

    async def _sweep(self) -> None:
        """Close connections idle past ``idle_timeout`` and requests started too long ago."""
        idle = self.config.policyd.idle_timeout
        partial = min(idle, MAX_REQUEST_SECONDS)
        interval = max(0.05, min(1.0, partial / 4))
        while True:
            await asyncio.sleep(interval)
            now = _mono()
            for conn in list(self.connections):
                if conn.closing:
                    continue
                if conn.partial_since is not None and now - conn.partial_since > partial:
                    conn.abort("request_timeout", f"request not complete after {partial:g}s")
                elif now - conn.last_activity > idle:
                    conn.abort("idle_timeout", f"no request for {idle:g}s")

    # ------------------------------------------------------------------ listening
    async def start(self) -> None:
        """Listen on every ``[policyd] listen`` address (comma-separated); raises ConfigError, OSError."""
        loop = asyncio.get_running_loop()
        _raise_fd_limit(self.config.policyd.max_connections + 64)

        def factory() -> PolicyConnection:
            return PolicyConnection(self)

        for item in self.config.policyd.listen_addresses:
            if isinstance(item, UnixSocket):
                path = item.path
                _remove_stale_socket(path)
                srv = await loop.create_unix_server(factory, path, backlog=1024)
                os.chmod(path, 0o666)  # access is controlled by the directory (e.g. Postfix's private/)
                self._unix_paths.append(path)
                self.addresses.append(f"unix:{path}")
            else:
                host, port = item
                srv = await loop.create_server(factory, host, port, reuse_address=True, backlog=1024)
                for sock in srv.sockets:
                    name = sock.getsockname()
                    self.addresses.append(
                        f"[{name[0]}]:{name[1]}" if ":" in name[0] else f"{name[0]}:{name[1]}"
                    )
            self._servers.append(srv)
        if not self._servers:
            raise ConfigError("[policyd] listen is empty")

        def flush_soon() -> None:  # at most one write(2) per LOG_FLUSH_SECONDS, whatever the rate
            loop.call_later(LOG_FLUSH_SECONDS, self.log.flush)

        self.log.flush_soon = flush_soon
        feed = self.feed
        if feed is not None:
            feed.loop = loop
            self._spawn(self._pump_feed(feed))
        self._spawn(self._sweep())
        self._start_metrics_http()
        for companion in self.companions:
            await companion.start(self)

    async def _pump_feed(self, feed: DecisionFeed) -> None:
        """Hand the writer process what gathered since the last batch (``DecisionFeed.append`` writes
        full batches itself)."""
        from typoguard.store.feed import FLUSH_SECONDS

        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            feed.flush()

    def _start_metrics_http(self) -> None:
        listen = self.config.policyd.metrics_listen
        address = self.config.policyd.metrics_address
        if address is None:
            return
        from prometheus_client import start_http_server

        host, port = address
        self._metrics_http = start_http_server(
            port, addr=host, registry=metrics_registry(self.metrics, self.log)
        )
        self.addresses.append(f"metrics=http://{listen}/metrics")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ reload and stop
    def request_reload(self) -> None:
        """SIGHUP: reload in the background; a SIGHUP during a reload queues one more."""
        self._reloads.request()

    async def reload(self) -> bool:
        """Load the config file again and swap in a new decider (True), or keep the old one (False)."""
        loop = asyncio.get_running_loop()
        self.log.reopen()
        if self.config_path is None:
            self.log.event("warning", "reload_skipped", reason="no config file")
            return False
        started = _perf()
        try:
            config = await loop.run_in_executor(None, load_config, self.config_path)
            with building_beside_the_loop():
                decider = await loop.run_in_executor(None, PolicyDecider.build, config)
            if not decider.protected_domains:  # refused at start: refused here too (the old one stays)
                raise ConfigError(nothing_to_protect(config))
        except TypoguardError as exc:
            self.metrics.reloads["failed"] += 1
            self.log.event(
                "error", "reload_failed", config=str(self.config_path), error=str(exc), kept="old config"
            )
            self._hangup_companions()
            return False
        except Exception as exc:  # never let a reload bug take the service down
            self.metrics.reloads["failed"] += 1
            self.log.event(
                "error", "reload_failed", config=str(self.config_path), error=repr(exc), kept="old config"
            )
            self._hangup_companions()
            return False
        ignored = [
            key
            for key, old, new in (
                ("[policyd] listen", self.config.policyd.listen, config.policyd.listen),
                (
                    "[policyd] metrics_listen",
                    self.config.policyd.metrics_listen,
                    config.policyd.metrics_listen,
                ),
                ("[log]", self.config.log, config.log),
                ("[policyd] max_line", self.config.policyd.max_line, config.policyd.max_line),
                (
                    "[policyd] max_attributes",
                    self.config.policyd.max_attributes,
                    config.policyd.max_attributes,
                ),
            )
            if old != new
        ]
        # Keep what cannot change at run time, so the running server and its config agree.
        old = self.config.policyd
        policyd = replace(
            config.policyd,
            listen=old.listen,
            metrics_listen=old.metrics_listen,
            max_line=old.max_line,
            max_attributes=old.max_attributes,
        )
        config = replace(config, policyd=policyd, log=self.config.log)
        context = self.decider.context
        if context is not None:  # the same store snapshots, the new thresholds
            context = context.with_thresholds(config.policy.thresholds())
        decider = PolicyDecider(config, decider.guard, decider.senders, context=context)
        self.config, self.decider = config, decider  # the swap: every later request sees the new one
        gc.freeze()  # the new index too (the old one is freed by reference counting as it goes)
        self.metrics.reloads["ok"] += 1
        self.metrics.config_loaded_at = time.time()
        self.metrics.protected_domains = decider.protected_domains
        for companion in self.companions:
            companion.reloaded(decider)
        self.log.event(
            "info", "reloaded", config=str(self.config_path), protected=decider.protected_domains,
            mode=decider.mode, seconds=round(_perf() - started, 3),
            **({"needs_restart": ignored} if ignored else {}),
        )  # fmt: skip
        return True

    def _hangup_companions(self) -> None:
        """A failed reload keeps the decider, but the API child still gets its SIGHUP: it reopens the log
        file it shares with this process (logrotate) and keeps its own config as this one does."""
        for companion in self.companions:
            companion.reloaded(self.decider)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Stop listening, close idle connections, wait for requests in progress, then close the rest."""
        self.draining = True
        for srv in self._servers:
            srv.close()
        for conn in list(self.connections):
            if not conn.codec.buffered:
                conn.close()
        deadline = _mono() + timeout
        while self.connections and _mono() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.abort("drain_timeout", "request still incomplete at shutdown")
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 1.0)
        for path in self._unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        for task in list(self._tasks):
            task.cancel()
        for companion in reversed(self.companions):
            with contextlib.suppress(Exception):
                await companion.stop()
        await stop_writer_and_metrics(self.feed, self._metrics_http, self.log)
        self.log.flush()

    async def run(self, *, on_ready: Callable[[PolicyServer], None] | None = None) -> int:
        """Start, serve until SIGTERM/SIGINT (or ``stop()``), drain. Returns the exit status."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Before start(), which starts the companions (the API child): a SIGHUP from logrotate in that
        # window would otherwise end the process (its default action), not reload it.
        installed = []
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            installed = [signal.SIGHUP, signal.SIGTERM, signal.SIGINT]
        try:
            await self.start()
        except (OSError, ConfigError) as exc:
            listen = exc.listen if isinstance(exc, ListenError) else self.config.policyd.listen
            self.log.event("error", "listen_failed", listen=listen, error=str(exc))
            self.log.flush()
            print(f"typoguard: cannot listen on {listen}: {exc}", file=sys.stderr)
            return 1
        self.log.event(
            "info", "listening", addresses=self.addresses, protected=self.decider.protected_domains,
            mode=self.decider.mode, pid=os.getpid(), config=str(self.config_path or ""),
            codec=_codec(),
        )  # fmt: skip
        self.log.flush()
        if on_ready is not None:
            on_ready(self)
        await self._stop.wait()
        self.log.event("info", "stopping", open_connections=len(self.connections))
        await self.drain()
        for sig in installed:
            loop.remove_signal_handler(sig)
        self.log.event("info", "stopped", decisions=sum(self.metrics.decisions.values()))
        self.log.flush()
        return 0


def _last_activity(conn: PolicyConnection) -> float:
    return conn.last_activity


def _codec() -> str:
    """Which policy codec runs (for the ``listening`` line): "compiled" or "python"; a compiled one
    older than its source (an edit without a reinstall, in a development checkout) says so."""
    import typoguard.protocols.postfix_policy as codec

    found = codec_implementation()
    source = Path(codec.__file__).with_name("postfix_policy.py")
    with contextlib.suppress(OSError):
        if found == "compiled" and source.stat().st_mtime > Path(codec.__file__).stat().st_mtime:
            return "compiled, older than postfix_policy.py: reinstall (make install)"
    return found


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a previous run would make bind() fail; anything else there is an error."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"[policyd] listen: {path} exists and is not a socket")
    os.unlink(path)


def banner(server: PolicyServer) -> str:
    """How to wire Postfix to this server and how to try it (printed at start on standard output)."""
    first = server.addresses[0]
    service = first if first.startswith("unix:") else f"inet:{first}"
    try_it = f"{sys.executable} -m typoguard.policyd.query {first} alice@army.mil bob@army.ml bob@army.mil"
    mode = server.decider.mode
    return "\n".join(
        [
            f"typoguard policy service: {', '.join(server.addresses)}  (mode {mode}, "
            f"{server.decider.protected_domains} protected domains, pid {os.getpid()})",
            "Wire Postfix (main.cf), then `postfix reload`:",
            "  smtpd_recipient_restrictions =",
            f"      check_policy_service {{ {service}, default_action=DUNNO }},",
            "      permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
            "  (that is fail-open; fail-closed: { default_action = 451 4.3.5 typoguard unavailable } in",
            "   inner braces; the submission service needs the same: see docs/postfix.md)",
            f"Try it:  {try_it}",
            "  -> action=550 5.1.2 Not sent: army.ml is not army.mil. Did you mean bob@army.mil? ...",
            "Reload: kill -HUP <pid>   Stop: kill -TERM <pid>   Logs: JSON lines on stderr or [log] file",
        ]
    )
