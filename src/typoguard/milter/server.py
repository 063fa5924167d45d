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
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, cast

from typoguard.config import Config, UnixSocket
from typoguard.decide import Decider
from typoguard.errors import ConfigError, ProtocolError
from typoguard.obs import JsonLog
from typoguard.protocols import milter as wire

TEMPFAIL_REPLY: Final = wire.reply_code(451, "4.3.0", "typoguard: temporary failure, please try again later")
LOG_FLUSH_SECONDS: Final = 0.005


class Decided:
    """What one RCPT gets: ``reply`` (bytes for the RCPT step), and what end of message adds."""

    __slots__ = ("header", "hold", "reply")

    def __init__(self, reply: bytes, hold: str = "", header: tuple[str, str] | None = None) -> None:
        self.reply = reply
        self.hold = hold
        self.header = header


ALLOW: Final = Decided(wire.CONTINUE)


def decide(decider: Decider, sender: str, recipient: str, macros: dict[str, str], log: JsonLog) -> Decided:
    """The one adapter from the shared decision (``typoguard.decide``) to milter replies."""
    d = decider.decide(
        sender,
        recipient,
        macros.get("{client_addr}", ""),
        macros.get("{auth_authen}", ""),
        macros.get("i", ""),
    )
    if d.record is not None:
        log.record_json(d.record)
    if d.reply:
        return Decided(wire.reply_code(d.code, d.status, d.text))
    if d.hold_reason:
        return Decided(wire.CONTINUE, hold=d.hold_reason)
    if d.header:
        return Decided(wire.CONTINUE, header=(d.header_name, d.header_value))
    return ALLOW


def _address(arg: str) -> str:
    return arg[1:-1] if arg.startswith("<") and arg.endswith(">") else arg


class MilterConnection(asyncio.Protocol):
    __slots__ = ("codec", "headers", "holds", "macros", "sender", "server", "transport")

    def __init__(self, server: MilterServer) -> None:
        self.server = server
        self.codec = wire.MilterServerConnection()
        self.transport: asyncio.Transport | None = None
        self.macros: dict[str, str] = {}
        self.sender = ""
        self.holds: list[str] = []
        self.headers: list[tuple[str, str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self.server.connections.add(self)

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
            while (event := codec.next_event()) is not wire.NEED_DATA:
                if not self._answer(event, out):
                    break
        except ProtocolError as exc:
            self.server.log.event("warning", "milter_protocol_error", error=str(exc))
            out.clear()
            self.close()
            return
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _answer(self, event: object, out: list[bytes]) -> bool:  # one branch per step
        """Append the reply to ``event``; False: the connection is over."""
        if isinstance(event, wire.Macros):
            self.macros.update(event.values)
            return True
        if isinstance(event, wire.RcptTo):
            decided = self.server.decide(self.sender, _address(event.address), self.macros)
            out.append(decided.reply)
            if decided.hold:
                self.holds.append(decided.hold)
            if decided.header is not None and decided.header not in self.headers:
                self.headers.append(decided.header)
            return True
        if isinstance(event, wire.MailFrom):
            self._reset()
            self.sender = _address(event.address)
            out.append(wire.CONTINUE)
            return True
        if isinstance(event, wire.EndOfMessage):
            agreed = self.codec.agreed
            if agreed is not None and agreed.can_add_header:
                out.extend(wire.add_header(name, value) for name, value in self.headers)
            if self.holds and agreed is not None and agreed.can_quarantine:
                out.append(wire.quarantine("; ".join(dict.fromkeys(self.holds))))
            out.append(wire.CONTINUE)
            self._reset()
            return True
        if isinstance(event, wire.OptionNegotiation):
            out.append(self.codec.negotiate(event))
            return True
        if isinstance(event, wire.Abort):
            self._reset()
            return True
        if isinstance(event, wire.QuitNewConnection):
            self._reset()
            self.macros.clear()
            return True
        if isinstance(event, wire.Quit | wire.ConnectionClosed):
            if out and self.transport is not None:
                self.transport.write(b"".join(out))
                out.clear()
            self.close()
            return False
        out.append(wire.CONTINUE)  # a step the MTA sends although we asked it not to
        return True

    def _reset(self) -> None:
        self.sender = ""
        self.holds.clear()
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

    @classmethod
    def build(cls, config: Config, log: JsonLog) -> MilterServer:
        return cls(config, Decider.build(config, names_recipient=True), log)

    def reconfigure(self, config: Config, decider: Decider) -> None:
        """A reload: later decisions (on every connection) use ``decider`` and ``[milter] on_error``."""
        self.config, self.decider = config, decider
        self._on_error = TEMPFAIL_REPLY if config.milter.on_error == "tempfail" else wire.CONTINUE

    def decide(self, sender: str, recipient: str, macros: dict[str, str]) -> Decided:
        try:
            return decide(self.decider, sender, recipient, macros, self.log)
        except Exception as exc:  # any failure: [milter] on_error
            self.log.event(
                "error", "milter_decision_failed", error=repr(exc), on_error=self.config.milter.on_error
            )
            return Decided(self._on_error)

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
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
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
    from typoguard.servers.event_loop import run

    log = JsonLog.for_service(config.log, "typoguard-milter")
    try:
        server = MilterServer.build(config, log)
    except ConfigError as exc:
        print(f"typoguard: {exc}", file=sys.stderr)
        return 2
    return run(server.run())
