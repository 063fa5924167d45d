"""The milter server: one ``MilterConnection`` (an ``asyncio.Protocol``) per MTA connection, the sans-IO
codec (``protocols.milter``) for the wire, one recipient decision per RCPT.

    MAIL    -> remember the sender                                   CONTINUE
    RCPT    -> decide(sender, recipient, macros)
                 reject  -> SMFIR_REPLYCODE "550 5.1.2 <rcpt>: Not sent: ... Did you mean ...?"
                 hold    -> remembered; at end of message SMFIR_QUARANTINE with the reason
                 warn    -> remembered; at end of message SMFIR_ADDHEADER (the policy service's header)
                 allow   -> CONTINUE
    EOM     -> the header(s), the quarantine, then CONTINUE
    ABORT   -> forget the message;  QUIT -> close

Trouble on the wire (``ProtocolError``: bad lengths, unknown commands, truncated frames) is logged and the
connection closed: the MTA then applies its own default (Postfix ``milter_default_action``, Sendmail's
``F=`` flags; docs/milter.md). An exception inside the decision follows ``[milter] on_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from typoguard.config import Config, UnixSocket, nothing_to_protect
from typoguard.decide import Decider
from typoguard.errors import ConfigError, ProtocolError
from typoguard.obs import JsonLog
from typoguard.protocols import milter as wire
from typoguard.servers import Reloads, building_beside_the_loop, stop_writer_and_metrics

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from typoguard.core.context import LiveContext
    from typoguard.store.feed import DecisionFeed

TEMPFAIL_REPLY: Final = wire.reply_code(451, "4.3.0", "typoguard: temporary failure, please try again later")
CANNOT_HOLD_REPLY: Final = wire.reply_code(
    451,
    "4.7.1",
    "typoguard: this recipient needs a hold for review, which this mail server does not allow"
    " here; please try again later",
)
LOG_FLUSH_SECONDS: Final = 0.005
FRAME_CACHE_ENTRIES: Final = 1024


def _address(arg: str) -> str:
    return arg[1:-1] if arg.startswith("<") and arg.endswith(">") else arg


_RcptTo, _MailFrom, _Macros, _EndOfMessage = wire.RcptTo, wire.MailFrom, wire.Macros, wire.EndOfMessage
_NEED_DATA, _CONTINUE = wire.NEED_DATA, wire.CONTINUE


def _header_frame(line: str) -> bytes:
    name, _, value = line.partition(": ")
    return wire.add_header(name, value)


def quickack_of(transport: asyncio.BaseTransport) -> Callable[[], None] | None:
    """For a TCP connection on Linux, a function that ACKs what was read at once (``TCP_QUICKACK``).

    Why: Postfix writes a command's macros and the command as two small writes, and Nagle holds the second
    until the first is ACKed. Macros get no reply, so no reply carries that ACK, and Linux delays it (up to
    40 ms): every RCPT waited for it. Measured with real Postfix (``benchmarks/bench_milter_postfix.py``):
    a no-op milter let through 36% of Postfix's milter-less rate without this, 77% with it. It is called
    only after a read that needed no reply; the option is not sticky, so it is set each time."""
    sock = transport.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    setsockopt = sock.setsockopt

    def ack_now() -> None:
        with contextlib.suppress(OSError):
            setsockopt(socket.IPPROTO_TCP, quickack, 1)

    return ack_now


class MilterConnection(asyncio.Protocol):
    """One MTA connection. The hot path (MAIL, RCPT with its macros, end of message: what every message
    costs) is inlined in ``data_received`` the way the policy service's is: the shared decision as a plain
    tuple (``Decider.decide_fields``), its record to the log, the reply frame; no object per recipient."""

    __slots__ = (
        "client", "codec", "headers", "holds", "login", "queue_id", "quickack", "sender", "server",
        "transport",
    )  # fmt: skip

    def __init__(self, server: MilterServer) -> None:
        self.server = server
        self.codec = wire.MilterServerConnection()
        self.transport: asyncio.Transport | None = None
        self.sender = ""
        # The macros read ({client_addr} and {auth_authen} at MAIL, i at MAIL, RCPT and end of message)
        self.client = ""
        self.login = ""
        self.queue_id = ""
        self.holds: list[str] = []  # hold reasons, in order
        self.headers: list[str] = []  # warning header lines ("name: value"), each once
        self.quickack: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self.server.connections.add(self)
        self.server.connections_total += 1
        self.quickack = quickack_of(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def eof_received(self) -> bool:
        self.data_received(b"")
        return False

    def data_received(self, data: bytes) -> None:
        out: list[bytes] = []
        codec = self.codec
        try:
            codec.receive_data(data)
            while (event := codec.next_event()) is not _NEED_DATA:
                cls = event.__class__
                if cls is _RcptTo:
                    out.append(self._rcpt(event.address))  # type: ignore[union-attr]
                elif cls is _Macros:
                    self._macros(event.values)  # type: ignore[union-attr]
                elif cls is _MailFrom:
                    self._reset()
                    self.sender = _address(event.address)  # type: ignore[union-attr]
                    out.append(_CONTINUE)
                elif cls is _EndOfMessage:
                    self._end_of_message(out)
                elif not self._answer(event, out):
                    break
        except ProtocolError as exc:
            self.server.errors["protocol"] = self.server.errors.get("protocol", 0) + 1
            self.server.log.event("warning", "milter_protocol_error", error=str(exc))
            out.clear()
            self.close()
            return
        if out:
            if self.transport is not None:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        elif self.quickack is not None:
            self.quickack()

    def _macros(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            if name == "i":
                self.queue_id = value
            elif name == "{client_addr}":
                self.client = value
            elif name == "{auth_authen}":
                self.login = value

    def _rcpt(self, address: str) -> bytes:
        """Decide one recipient: log its record, remember a hold or header, answer the RCPT step."""
        server = self.server
        if address[:1] == "<" and address[-1:] == ">":
            address = address[1:-1]
        try:
            action, reply, hold, header, record, _ = server.decide_fields(
                self.sender, address, self.client, self.login, self.queue_id
            )
        except Exception as exc:  # any failure: [milter] on_error
            return server.decision_failed(exc)
        counted = server.decisions
        counted[action] = counted.get(action, 0) + 1
        if record is not None:
            server.log_record(record)
        if reply:
            frame = server.frames.get(reply)
            return frame if frame is not None else server.frame(reply, wire.reply_line, reply)
        if hold:
            agreed = self.codec.agreed
            if agreed is not None and not agreed.can_quarantine:
                return server.cannot_hold()
            self.holds.append(hold)
        elif header and header not in self.headers:
            self.headers.append(header)
        return _CONTINUE

    def _end_of_message(self, out: list[bytes]) -> None:
        """The header(s), the quarantine, then CONTINUE."""
        agreed = self.codec.agreed
        if agreed is not None:
            frames = self.server.frames
            if self.headers and agreed.can_add_header:
                for line in self.headers:
                    frame = frames.get(line)
                    out.append(frame if frame is not None else self.server.frame(line, _header_frame, line))
            elif self.headers:  # a warning is no reason to stop the mail: delivered, and said
                self.server.cannot_add_header()
            if self.holds and agreed.can_quarantine:
                reason = self.holds[0] if len(self.holds) == 1 else "; ".join(dict.fromkeys(self.holds))
                key = "q:" + reason
                frame = frames.get(key)
                out.append(frame if frame is not None else self.server.frame(key, wire.quarantine, reason))
        out.append(_CONTINUE)
        self._reset()

    def _answer(self, event: object, out: list[bytes]) -> bool:  # the steps of no interest: rare
        """Append the reply to ``event``; False: the connection is over."""
        if isinstance(event, wire.OptionNegotiation):
            out.append(self.codec.negotiate(event))
            return True
        if isinstance(event, wire.Abort):
            self._reset()
            return True
        if isinstance(event, wire.QuitNewConnection):
            self._reset()
            self.client = self.login = self.queue_id = ""
            return True
        if isinstance(event, wire.Quit | wire.ConnectionClosed):
            if out and self.transport is not None:
                self.transport.write(b"".join(out))
                out.clear()
            self.close()
            return False
        out.append(_CONTINUE)  # a step the MTA sends although we asked it not to
        return True

    def _reset(self) -> None:
        self.sender = ""
        if self.holds:
            self.holds.clear()
        if self.headers:
            self.headers.clear()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class MilterServer:
    def __init__(self, config: Config, decider: Decider, log: JsonLog) -> None:
        self.config = config
        self.decider = decider
        self.log = log
        self.connections: set[MilterConnection] = set()
        self.addresses: list[str] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._stop: asyncio.Event | None = None
        self._on_error = TEMPFAIL_REPLY if config.milter.on_error == "tempfail" else wire.CONTINUE
        self.decide_fields = decider.decide_fields
        self.log_record: Callable[[bytes], None] = log.record_json  # under serve: the log and the store
        # Counters for the metrics page (under ``typoguard serve``: ``[policyd] metrics_listen``): decisions
        # by action (of ``decider.mode``), errors by kind, connections accepted.
        self.decisions: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.connections_total = 0
        self.reloads = {"ok": 0, "failed": 0}
        self._cannot_hold_said = self._cannot_add_header_said = -1e9  # when each was last logged
        self.config_loaded_at = time.time()
        self.feed: DecisionFeed | None = None  # ``typoguard milter`` on its own with [store]: its writer
        # ``typoguard milter`` on its own with [milter] metrics_listen: the page's registry, and its server
        self.metrics_registry: CollectorRegistry | None = None
        self._metrics_http: Any = None
        self._pump: asyncio.Task[None] | None = None
        self.config_path: Path | None = None  # ``typoguard milter --config``: SIGHUP reads it again
        # The frames of replies, headers and quarantines already encoded (text -> frame; a quarantine's key
        # is "q:" and its reason): the same recipient's refusal, the same warning, encoded once. At most
        # FRAME_CACHE_ENTRIES of at most a few KB each (the texts are bounded, decide.py), then emptied.
        self.frames: dict[str, bytes] = {}
        self._reloads = Reloads(self.reload)

    def attach_feed(self, feed: DecisionFeed) -> None:
        """Send every decision's log line to the store's writer process too (before ``start``): what the
        policy service does, for ``typoguard milter`` on its own (under ``typoguard serve`` the milter
        records through the policy service's)."""
        self.feed = feed
        line_of, log_line, append = self.log.line, self.log.append_line, feed.append

        def both(body: bytes) -> None:
            line = line_of(body)
            append(line)
            log_line(line)

        self.log_record = both

    async def _pump_feed(self, feed: DecisionFeed) -> None:
        """Hand the writer what gathered since the last batch (``append`` writes full batches itself)."""
        from typoguard.store.feed import FLUSH_SECONDS

        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            feed.flush()

    def reconfigure(self, config: Config, decider: Decider) -> None:
        """A reload: later decisions (on every connection) use ``decider`` and ``[milter] on_error``."""
        self.config, self.decider = config, decider
        self._on_error = TEMPFAIL_REPLY if config.milter.on_error == "tempfail" else wire.CONTINUE
        self.decide_fields = decider.decide_fields

    def request_reload(self) -> None:
        """SIGHUP (``typoguard milter`` on its own; under ``typoguard serve`` the policy service reloads
        it): reopen the log file, then read the config file again, off the loop; one reload at a time."""
        self._reloads.request()

    async def reload(self) -> None:
        """The log reopened (logrotate), a new decision from the config file; on any problem the running
        one stays (``reload_failed``). ``[milter] listen`` itself needs a restart."""
        self.log.reopen()
        if self.config_path is None:
            return
        from typoguard.config import load_config
        from typoguard.errors import TypoguardError

        loop = asyncio.get_running_loop()
        path = self.config_path
        try:
            config = await loop.run_in_executor(None, load_config, path)
            context = self.decider.context  # the same store snapshots, the new thresholds
            if context is not None:
                context = context.with_thresholds(config.policy.thresholds())
            with building_beside_the_loop():
                decider = await loop.run_in_executor(None, _decider, config, context)
            if not decider.protected_domains:  # refused at start: refused here too (the old one stays)
                raise ConfigError(nothing_to_protect(config))
        except (TypoguardError, OSError) as exc:
            self.reloads["failed"] += 1
            self.log.event("error", "reload_failed", error=str(exc), kept="the running config")
            self.log.flush()
            return
        if config.milter.listen != self.config.milter.listen:
            listen = self.config.milter.listen
            self.log.event("warning", "reload_needs_restart", key="[milter] listen", kept=listen)
            config = dataclasses.replace(config, milter=self.config.milter)
        self.reconfigure(config, decider)
        self.reloads["ok"] += 1
        self.config_loaded_at = time.time()
        gc.freeze()  # the new index too, as at start (the old one is freed by reference counting)
        self.log.event("info", "reloaded", protected=decider.protected_domains, mode=decider.mode)
        self.log.flush()

    def frame(self, key: str, encode: Callable[[str], bytes], text: str) -> bytes:
        """``encode(text)``, kept in ``frames`` under ``key``."""
        frame = encode(text)
        frames = self.frames
        if len(frames) >= FRAME_CACHE_ENTRIES:
            frames.clear()
        frames[key] = frame
        return frame

    def cannot_hold(self) -> bytes:
        """The RCPT reply for a hold the MTA did not let this milter apply (no ``SMFIF_QUARANTINE`` in the
        option negotiation): ``[milter] on_error`` (tempfail: 451 4.7.1, the sender's server retries;
        continue: delivered), never delivered as if it were allowed without a word. Logged at most once a
        minute (one line, not one per recipient), counted every time."""
        self.errors["hold_not_applied"] = self.errors.get("hold_not_applied", 0) + 1
        now = time.monotonic()
        if now - self._cannot_hold_said >= 60.0:
            self._cannot_hold_said = now
            on_error = self.config.milter.on_error
            self.log.event(
                "error", "milter_cannot_hold",
                why="the MTA did not allow quarantine (SMFIF_QUARANTINE) in the option negotiation",
                on_error=on_error, then="refused for now (451)" if on_error == "tempfail" else "delivered",
                fix="let the milter quarantine (Postfix: milter_protocol = 6; Sendmail 8.13 or later)",
            )  # fmt: skip
        return CANNOT_HOLD_REPLY if self._on_error is TEMPFAIL_REPLY else self._on_error

    def cannot_add_header(self) -> None:
        """A warning header the MTA did not let this milter add (no ``SMFIF_ADDHDRS``): the message goes on
        without it, counted, and logged at most once a minute."""
        self.errors["header_not_added"] = self.errors.get("header_not_added", 0) + 1
        now = time.monotonic()
        if now - self._cannot_add_header_said >= 60.0:
            self._cannot_add_header_said = now
            self.log.event(
                "error", "milter_cannot_add_header",
                why="the MTA did not allow adding headers (SMFIF_ADDHDRS) in the option negotiation",
                then="delivered without the warning header",
            )  # fmt: skip

    def decision_failed(self, exc: Exception) -> bytes:
        """The RCPT reply when deciding raised: ``[milter] on_error`` (tempfail or continue), logged."""
        on_error = self.config.milter.on_error
        self.errors["decision"] = self.errors.get("decision", 0) + 1
        self.log.event("error", "milter_decision_failed", error=repr(exc), on_error=on_error)
        return self._on_error

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> MilterConnection:
            return MilterConnection(self)

        item = self.config.milter.listen_address
        if isinstance(item, UnixSocket):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(item.path)
            srv = await loop.create_unix_server(factory, item.path, backlog=1024)
            os.chmod(item.path, 0o666)  # access is controlled by the directory
            self.addresses.append(f"unix:{item.path}")
        else:
            srv = await loop.create_server(factory, item.host, item.port, reuse_address=True, backlog=1024)
            self.addresses.extend(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in srv.sockets)
        self._servers.append(srv)

        def flush_soon() -> None:  # at most one write(2) per LOG_FLUSH_SECONDS, whatever the rate
            loop.call_later(LOG_FLUSH_SECONDS, self.log.flush)

        if self.log.flush_soon is None:  # in typoguard serve the policy service already flushes it
            self.log.flush_soon = flush_soon
        if self.feed is not None:
            self.feed.loop = loop
            self._pump = loop.create_task(self._pump_feed(self.feed))

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def close(self) -> None:
        for srv in self._servers:
            srv.close()
        for conn in list(self.connections):
            conn.close()
        for srv in self._servers:
            await srv.wait_closed()
        if self._pump is not None:
            self._pump.cancel()
        # every decision answered is stored or spooled before the exit
        await stop_writer_and_metrics(self.feed, self._metrics_http, self.log)
        self.feed = self._metrics_http = None
        self.log.flush()

    async def run(self, *, on_ready: Callable[[MilterServer], None] | None = None) -> int:
        """Serve until SIGTERM/SIGINT (or ``stop()``). Returns the exit status."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.start()
        except (OSError, ConfigError) as exc:
            print(f"typoguard: milter cannot listen on {self.config.milter.listen}: {exc}", file=sys.stderr)
            return 1
        address = self.config.milter.metrics_address
        if self.metrics_registry is not None and address is not None:
            from prometheus_client import start_http_server

            try:
                self._metrics_http = start_http_server(
                    address.port, addr=address.host, registry=self.metrics_registry
                )
            except OSError as exc:
                listen = self.config.milter.metrics_listen
                print(f"typoguard: [milter] metrics_listen {listen}: {exc.strerror or exc}", file=sys.stderr)
                await self.close()
                return 1
            self.addresses.append(f"metrics=http://{self.config.milter.metrics_listen}/metrics")
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self.log.event("info", "listening", service="milter", addresses=self.addresses, pid=os.getpid())
        self.log.flush()
        if on_ready is not None:
            on_ready(self)
        await self._stop.wait()
        await self.close()
        self.log.event("info", "stopped", service="milter")
        self.log.flush()
        return 0


def serve_milter(config: Config, *, config_path: str | Path | None = None) -> int:
    """``typoguard milter``: build the decision, serve until stopped."""
    from typoguard.errors import TypoguardError
    from typoguard.servers.event_loop import run

    log = JsonLog.for_service(config.log, "typoguard-milter")
    try:
        built = Decider.build(config, names_recipient=True)
    except ConfigError as exc:
        print(f"typoguard: {exc}", file=sys.stderr)
        return 2
    if not built.protected_domains:  # as `typoguard serve` and `typoguard relay`, before anything starts
        print(f"typoguard: {nothing_to_protect(config)}", file=sys.stderr)
        return 2
    parts = None
    if config.store.enabled and config_path is None:  # the writer process reads the config file
        log.event("warning", "store_needs_config", then="deciding without the store: run with --config FILE")
    elif config.store.enabled and config_path is not None:
        try:
            from typoguard.store.live import StoreParts  # SQLAlchemy only when there is a store

            parts = StoreParts(config, Path(config_path), log)
        except TypoguardError as exc:
            print(f"typoguard: [store]: {exc}", file=sys.stderr)
            return 2
    decider = built
    if parts is not None:  # the same compiled guard, with the store's overrides and history
        decider = Decider(config, built.guard, built.senders, context=parts.context, names_recipient=True)
    server = MilterServer(config, decider, log)
    if parts is not None:
        server.attach_feed(parts.feed)
    if config.milter.metrics_address is not None:  # under serve: on the policy service's page instead
        from prometheus_client.registry import CollectorRegistry

        from typoguard.obs import MilterCollector

        server.metrics_registry = CollectorRegistry(auto_describe=False)
        server.metrics_registry.register(
            MilterCollector(server, log, parts.feed if parts else None, parts.retention if parts else None)
        )
    server.config_path = Path(config_path) if config_path is not None else None
    # As the policy service does: the compiled index lives as long as the process, so keep it out of every
    # garbage collection (the per-recipient objects otherwise trigger collections that walk all of it).
    gc.collect()
    gc.freeze()
    try:
        return run(server.run())
    finally:
        if parts is not None:
            with contextlib.suppress(Exception):
                if parts.feed.alive:  # run() stopped before close(): stop the writer
                    parts.feed.close()
            parts.close()


def _decider(config: Config, context: LiveContext | None) -> Decider:
    """The milter's decision: the policy service's, naming the recipient in refusals (no MTA puts
    ``<rcpt>:`` before a milter's reply text)."""
    built = Decider.build(config, names_recipient=True)
    if context is None:
        return built
    return Decider(config, built.guard, built.senders, context=context, names_recipient=True)
