"""What the two aiosmtpd servers (``typoguard sink`` and ``typoguard relay``) share: session admission and
its bookkeeping across STARTTLS, closing a session with a reply, listener addresses, the TLS context, and
the signal handlers of ``run()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Final

from aiosmtpd.smtp import SMTP

from typoguard.errors import ConfigError

SHUTTING_DOWN: Final = b"421 4.3.2 Service shutting down\r\n"


def quiet_aiosmtpd() -> None:
    """aiosmtpd logs every command (addresses included) at INFO and tracebacks with arguments: off."""
    logging.getLogger("mail.log").disabled = True


class AdmittedSMTP(SMTP):
    """An SMTP session that is admitted (or refused) once at connect, not again after STARTTLS.

    Subclasses decide in ``admit()`` (refusing with ``refuse()``) and undo their bookkeeping in
    ``release()``, called once when an admitted session ends.
    """

    _admitted = False

    def admit(self, transport: asyncio.BaseTransport) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def refuse(transport: asyncio.BaseTransport, reply: bytes) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(reply)
        transport.close()

    def close_with(self, reply: bytes) -> None:
        """Send ``reply`` (a 421) and close, unless the session is already closing."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.refuse(transport, reply)

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


def peer_ip(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def listen_addresses(server: asyncio.Server) -> list[str]:
    """``host:port`` (``[v6]:port``) of each socket ``server`` listens on."""
    addresses = []
    for sock in server.sockets:
        name = sock.getsockname()
        addresses.append(f"[{name[0]}]:{name[1]}" if ":" in name[0] else f"{name[0]}:{name[1]}")
    return addresses


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


__all__ = [
    "SHUTTING_DOWN",
    "AdmittedSMTP",
    "install_signals",
    "listen_addresses",
    "peer_ip",
    "quiet_aiosmtpd",
    "remove_signals",
    "server_tls_context",
]
