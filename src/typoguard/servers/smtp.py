"""What the two aiosmtpd servers (``typoguard sink`` and ``typoguard relay``) share: session admission and
its bookkeeping across STARTTLS, closing a session with a reply, the one place every reply line is written
and checked (``AdmittedSMTP``); listeners, the TLS context and the run loop with its signal handlers
(``SMTPService``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, AnyStr, ClassVar, Final, Self, cast

from aiosmtpd.smtp import SMTP

from typoguard.config import HostPort
from typoguard.errors import ConfigError
from typoguard.obs import JsonLog
from typoguard.protocols.smtp import REPLY_LINE, repaired_reply, reply_problem

SHUTTING_DOWN: Final = b"421 4.3.2 Service shutting down\r\n"
# What goes out instead of a line that is no reply: a client that reads an empty or garbled line loses
# step with its commands (Postfix then takes the next reply for the wrong command and may bounce).
BAD_REPLY: Final = b"451 4.3.0 Local error, try again later"
# A plain ``<local@domain>`` path - dot-atoms of ASCII atext, the argument of nearly every real MAIL and
# RCPT - and, when parameters follow, the one space before them. Anything else (quoted local parts, domain
# literals, non-ASCII, comments, odd spacing) goes to aiosmtpd's own parser.
_PLAIN_PATH: Final = re.compile(
    r"<((?:[\w!#$%&'*+/=?^`{|}~-]+\.)*[\w!#$%&'*+/=?^`{|}~-]+@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>"
    r"(?: (?=[^\s(]))?",
    re.ASCII,
)


def quiet_aiosmtpd() -> None:
    """aiosmtpd logs every command (addresses included) at INFO and tracebacks with arguments: off."""
    logging.getLogger("mail.log").disabled = True


class AdmittedSMTP(SMTP):
    """An SMTP session that is admitted (or refused) once at connect, not again after STARTTLS.

    Subclasses decide in ``admit()`` (refusing with ``refuse()``) and undo their bookkeeping in
    ``release()``, called once when an admitted session ends. Every reply line goes out through ``push()``
    (aiosmtpd's own replies too) or ``refuse()``, and both check it (``reply_problem``): a line that is no
    reply (no code, empty, a line end inside) is logged as ``bad_reply`` to ``service_log`` and replaced by
    ``BAD_REPLY``; odd text after a good code is made printable ASCII and cut to 512 octets.
    """

    _admitted = False
    service_log: JsonLog | None = None

    def admit(self, transport: asyncio.BaseTransport) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def refuse(self, transport: asyncio.BaseTransport, reply: bytes) -> None:
        """Write ``reply`` (one CRLF-ended line) and close: a session refused at connect, or ended."""
        # Any stream transport, not only asyncio's own classes: uvloop's TCPTransport is no
        # asyncio.WriteTransport subclass, and an isinstance assertion here left every client beyond
        # max_sessions with EOF instead of 421 (and a traceback per refusal).
        stream = cast(asyncio.WriteTransport, transport)
        stream.write(self._checked(reply.removesuffix(b"\r\n"), utf8=False) + b"\r\n")
        stream.close()

    async def push(self, status: AnyStr) -> None:
        """Write one reply line (CRLF added), checked first: never an empty or garbled line."""
        line = status.encode("utf-8") if isinstance(status, str) else bytes(status)
        envelope = self.envelope
        await super().push(self._checked(line, utf8=envelope is not None and envelope.smtp_utf8))

    def _checked(self, line: bytes, *, utf8: bool) -> bytes:
        """``line`` if it is a reply line. Odd text after an intact code (aiosmtpd's ``500 Error: command
        "..." not recognized`` echoes what the client sent) is made printable ASCII and cut to length: the
        code is the meaning. Without a code, empty or with a line end inside: ``BAD_REPLY``, said loudly."""
        problem = reply_problem(line, utf8=utf8)
        if problem is None:
            return line
        fixed = repaired_reply(line)
        if fixed is not None:
            return fixed
        self.bad_reply(line, problem)
        return BAD_REPLY

    def bad_reply(self, line: bytes, problem: str) -> None:
        """Say loudly that ``line`` was about to go out as a reply (a bug: it never should)."""
        fields = {"reply": repr(line[:300]), "problem": problem, "sent_instead": BAD_REPLY.decode()}
        if self.service_log is not None:
            self.service_log.event("error", "bad_reply", **fields)
            self.service_log.flush()
        else:
            print(f"typoguard: bad_reply {fields}", file=sys.stderr, flush=True)

    @staticmethod
    def peer_ip(transport: asyncio.BaseTransport) -> str:
        peer = transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    def close_with(self, reply: bytes) -> None:
        """Send ``reply`` (a 421) and close, unless the session is already closing."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.refuse(transport, reply)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's MAIL/RCPT address parser, with a fast path for a plain ``<local@domain>``: the same
        answer (a property test compares them) without the ``email`` header parser and the class that
        aiosmtpd's version defines on every call - about a fifth of the relay's CPU per message."""
        m = _PLAIN_PATH.match(arg)
        if m is None:
            return super()._getaddr(arg)
        rest = arg[m.end() :]
        if rest[:1] in (" ", "\t", "("):  # more spacing or a comment: the full parser's business
            return super()._getaddr(arg)
        address = m.group(1)
        if self.local_part_limit and address.index("@") > self.local_part_limit:
            return None, None
        return address, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is not None:  # the TLS transport after STARTTLS: same session
            super().connection_made(transport)
            return
        if not self.admit(transport):
            return
        self._admitted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._admitted:
            return
        if self._original_transport is not None and self.transport is None:
            return  # the TLS layer's second notice for the same session
        self._admitted = False
        self.release()
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if not self._admitted:
            return False
        return super().eof_received()


def listen_addresses(server: asyncio.Server) -> list[str]:
    """``host:port`` (``[v6]:port``) of each socket ``server`` listens on."""
    return [str(HostPort(*sock.getsockname()[:2])) for sock in server.sockets]


def server_tls_context(section: str, cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context with ``cert``/``key``; ``ConfigError`` naming ``[section]`` when unusable."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        tls.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[{section}] tls_cert/tls_key: {exc}") from None
    return tls


def install_signals(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None], reload: Callable[[], None]
) -> list[signal.Signals]:
    """SIGTERM/SIGINT -> ``stop``, SIGHUP -> ``reload``; the signals installed (none off the main
    thread, as in tests: RuntimeError from asyncio's loop, ValueError from uvloop's)."""
    installed: list[signal.Signals] = []
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
            installed.append(sig)
        loop.add_signal_handler(signal.SIGHUP, reload)
        installed.append(signal.SIGHUP)
    return installed


def remove_signals(loop: asyncio.AbstractEventLoop, installed: list[signal.Signals]) -> None:
    for sig in installed:
        loop.remove_signal_handler(sig)


class SMTPService:
    """A server process: its listeners and ``run()``, serving until SIGTERM/SIGINT (SIGHUP: reload).

    Subclasses provide ``start()``, ``drain()``, ``request_reload()``, what is logged and printed when
    it cannot listen (``listen_failed()``), and the listening/stopping/stopped log events.
    """

    START_ERRORS: ClassVar[tuple[type[Exception], ...]] = (OSError,)
    log: JsonLog
    addresses: list[str]
    sessions: set[Any]
    _stop: asyncio.Event | None
    tls_context: ssl.SSLContext | None
    tls_files: tuple[str, Path, Path] | None = None  # (section, cert, key) the context was read from

    server_tls_context = staticmethod(server_tls_context)

    async def reload_tls(self) -> None:
        """SIGHUP: the certificate and key read again from the files read at start (certbot and the like
        renew them in place, then reload the service), for the sessions that start from now on; sessions
        already under way keep theirs. A pair that cannot be loaded (a renewal half written, a key that
        does not match) keeps the running one, loudly: ``tls_reload_failed``."""
        if self.tls_files is None:
            return
        section, cert, key = self.tls_files
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.run_in_executor(None, server_tls_context, section, cert, key)
        except ConfigError as exc:
            self.log.event("error", "tls_reload_failed", error=str(exc), kept="the certificate in use")
            return
        self.tls_context = tls
        self.log.event("info", "tls_reloaded", cert=str(cert))

    async def add_listener(
        self, factory: Callable[[], asyncio.BaseProtocol], host: str, port: int
    ) -> asyncio.Server:
        """Listen on ``host``:``port``; its addresses are added to ``self.addresses``."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host, port, backlog=1024, reuse_address=True)
        self.addresses.extend(listen_addresses(server))
        return server

    async def start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def drain(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def request_reload(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def listen_failed(self, exc: Exception) -> str:  # pragma: no cover - abstract
        """Log that ``start()`` failed; the line for stderr."""
        raise NotImplementedError

    def log_listening(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_stopping(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_stopped(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, *, on_ready: Callable[[Self], None] | None = None) -> int:
        """Serve until SIGTERM/SIGINT (or ``stop()``); returns the exit status (1: cannot listen)."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.start()
        except self.START_ERRORS as exc:
            message = self.listen_failed(exc)
            self.log.flush()
            print(message, file=sys.stderr)
            return 1
        installed = install_signals(loop, self.stop, self.request_reload)
        self.log_listening()
        self.log.flush()
        if on_ready is not None:
            on_ready(self)
        await self._stop.wait()
        self.log_stopping()
        await self.drain()
        remove_signals(loop, installed)
        self.log_stopped()
        self.log.flush()
        return 0


__all__ = [
    "BAD_REPLY",
    "REPLY_LINE",
    "SHUTTING_DOWN",
    "AdmittedSMTP",
    "SMTPService",
    "install_signals",
    "listen_addresses",
    "quiet_aiosmtpd",
    "remove_signals",
    "reply_problem",
    "server_tls_context",
]
