"""The relay's session with its next hop: MAIL sent ahead, DATA started early, the body forwarded as it came
on the wire. Any failure to reach or keep the next hop is ``NextHopDown`` (the relay answers 451 4.4.1, so
the client retries).

The client side of a before-queue proxy says a fixed handful of commands and passes each reply back as one
line, so it is written here on a plain ``asyncio.Protocol`` rather than with aiosmtplib (ADR 0012): a
command costs the write, one future and one timer, where aiosmtplib's command path (a lock, ``wait_for``, a
response object) cost about half as much again as the socket work itself, four times per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from typoguard.config import Config
from typoguard.held.quarantine import next_hop_tls_context
from typoguard.protocols.smtp import dot_stuff, smtp_text

_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")  # never sent on: a command line holds none of these
_CODE: Final = re.compile(rb"[2-5][0-9][0-9](?:[ -]|\Z)")  # a reply line's start (RFC 5321 4.2)

MAX_REPLY_BYTES: Final = 64 * 1024  # a reply longer than this (without its end) is a broken next hop
DATA_RATE: Final = 64 * 1024  # bytes/s a next hop is given to take a message, on top of next_hop_timeout
SYNTAX: Final = "501 5.5.2 Syntax error: control characters in the command"

Reply = tuple[int, list[str]]  # (code, the text of each line)


class NextHopDown(Exception):
    """The next hop could not be reached or dropped the session."""


@dataclass(frozen=True, slots=True)
class NextHopSettings:
    """What a session with the next hop needs: where it is, how long to wait for each reply, whether to
    use STARTTLS, and the name to say EHLO with. Built once per relay (``from_config``), shared by every
    session."""

    host: str
    port: int
    timeout: float  # seconds for each reply ([relay] next_hop_timeout); a message gets more (DATA_RATE)
    tls: str  # [relay] next_hop_tls: "none", "opportunistic" or "required"
    tls_context: ssl.SSLContext | None  # None: never STARTTLS
    helo_name: str  # the relay's own name

    @classmethod
    def from_config(cls, config: Config, *, helo_name: str) -> NextHopSettings:
        """``[relay]``'s next hop; ``ConfigError`` for an address that is not host:port or a CA file that
        cannot be read."""
        relay = config.relay
        host, port = relay.next_hop_address  # parsed and checked when the config was loaded
        context = next_hop_tls_context(relay, Path(config.base_dir))
        return cls(host, port, relay.next_hop_timeout, relay.next_hop_tls, context, helo_name)


class _HopProtocol(asyncio.Protocol):
    """The next hop's side of the session: each complete reply goes to the oldest waiting command."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiters: deque[asyncio.Future[Reply]] = deque()
        self.early: deque[Reply] = deque()  # replies that came before anyone asked (the greeting)
        self.error: NextHopDown | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream (uvloop's is no asyncio subclass)

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return  # the session is over: what still arrives is nobody's
        buffer = self.buffer
        buffer += data
        while True:
            reply = self._take_reply()
            if reply is None:
                break
            if self.waiters:
                waiter = self.waiters.popleft()  # the oldest command's reply, even if nobody awaits it now
                if not waiter.done():
                    waiter.set_result(reply)
            else:
                self.early.append(reply)
        if len(buffer) > MAX_REPLY_BYTES:
            self.fail(NextHopDown("the next hop's reply is too long"))

    def _take_reply(self) -> Reply | None:
        """The first complete reply in the buffer (removed from it), or None."""
        buffer = self.buffer
        lines: list[str] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                return None
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            if _CODE.match(line) is None or (lines and line[:3] != buffer[:3]):
                self.fail(NextHopDown(f"malformed reply from the next hop: {smtp_text(repr(line), 200)}"))
                return None
            code = int(line[:3])
            lines.append(line[4:].strip(b" \t").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                del buffer[:start]
                return code, lines

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fail(NextHopDown(f"connection lost: {exc}" if exc else "the next hop closed the connection"))

    def fail(self, error: NextHopDown) -> None:
        """The session is over: every waiting command gets ``error``, later ones too."""
        if self.error is None:
            self.error = error
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # retrieved: nobody may be awaiting it any more
        self.buffer.clear()
        if self.transport is not None:
            self.transport.abort()

    @property
    def usable(self) -> bool:
        return self.error is None and self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        if self.transport is None or self.transport.is_closing():
            raise NextHopDown("not connected")
        self.transport.write(data)

    def expect(self, timeout: float) -> asyncio.Future[Reply]:
        """The reply to the command just written (replies come in the order commands went out); it fails
        with ``NextHopDown`` if the session ends or nothing comes within ``timeout``."""
        waiter: asyncio.Future[Reply] = self.loop.create_future()
        if self.early:
            waiter.set_result(self.early.popleft())
        elif self.error is not None:
            waiter.set_exception(self.error)
        else:
            self.waiters.append(waiter)
            timer = self.loop.call_later(timeout, self._timed_out, waiter)
            waiter.add_done_callback(lambda _: timer.cancel())
        return waiter

    def _timed_out(self, waiter: asyncio.Future[Reply]) -> None:
        if not waiter.done():
            self.fail(NextHopDown("timed out waiting for the next hop's reply"))


class NextHop:
    """One session with the next hop, opened at the client's first MAIL."""

    def __init__(self, settings: NextHopSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        self.proto: _HopProtocol | None = None
        # A transaction the client may have abandoned without RSET (aiosmtpd ends one by itself after a
        # refused DATA): the next MAIL resets it at the next hop first.
        self.in_transaction = False
        # MAIL is sent at once but its reply awaited only before the first RCPT (one round trip less per
        # message); DATA is started when the client's DATA arrives and finished when its body is complete.
        self._mail: asyncio.Task[str] | None = None
        self.mail_reply = ""
        self._data: asyncio.Task[str] | None = None
        self.pipelining = False  # the next hop offers PIPELINING: RCPT need not wait for MAIL's reply

    async def open(self) -> None:
        if self.proto is not None and self.proto.usable:
            return
        self.close()
        s = self.settings
        host, port = s.host, s.port
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                transport, proto = await loop.create_connection(lambda: _HopProtocol(loop), host, port)
        except (OSError, TimeoutError) as exc:
            raise NextHopDown(f"cannot connect to {host}:{port}: {exc}") from None
        self.proto = proto
        try:
            code, lines = await proto.expect(self.timeout)
            if code != 220:
                raise NextHopDown(f"greeting: {code} {' '.join(lines)}")
            features = await self._hello()
            if s.tls != "none" and "STARTTLS" in features and s.tls_context is not None:
                await self._starttls(transport, s.tls_context, host)
                features = await self._hello()  # a new session over TLS
            elif s.tls == "required":
                raise NextHopDown("the next hop does not offer STARTTLS ([relay] next_hop_tls = required)")
        except NextHopDown:
            self.close()
            raise
        self.pipelining = "PIPELINING" in features

    async def _hello(self) -> set[str]:
        """EHLO (HELO if refused); the extension keywords the next hop offers."""
        name = self.settings.helo_name.encode("ascii", "replace")
        code, lines = await self._ask(b"EHLO " + name)
        if code == 250:
            return {line.split(" ", 1)[0].upper() for line in lines[1:]}
        code, lines = await self._ask(b"HELO " + name)
        if code != 250:
            raise NextHopDown(f"HELO refused: {code} {' '.join(lines)}")
        return set()

    async def _starttls(self, transport: asyncio.Transport, context: ssl.SSLContext, host: str) -> None:
        assert self.proto is not None
        code, lines = await self._ask(b"STARTTLS")
        if code != 220:
            raise NextHopDown(f"STARTTLS refused: {code} {' '.join(lines)}")
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport, self.proto, context, server_hostname=host, ssl_handshake_timeout=self.timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            raise NextHopDown(f"TLS with the next hop failed: {exc}") from None
        if tls is None:
            raise NextHopDown("TLS with the next hop failed: the connection closed")
        self.proto.transport = tls

    async def _ask(self, line: bytes) -> Reply:
        assert self.proto is not None
        self.proto.write(line + b"\r\n")
        return await self.proto.expect(self.timeout)

    def _send(self, *words: bytes) -> asyncio.Future[Reply] | None:
        """Write one command line now; the future of its reply (None: not sent, it holds a control
        character). ``NextHopDown`` if there is no session."""
        if self.proto is None:
            raise NextHopDown("not connected")
        line = b" ".join(words)
        if _CONTROL.search(line) is not None:
            return None
        self.proto.write(line + b"\r\n")
        return self.proto.expect(self.timeout)

    async def _result(self, verb: bytes, reply: asyncio.Future[Reply] | None) -> str:
        """The reply line to pass back for the command ``verb`` (``b""``: the message), its bookkeeping
        done; ``NextHopDown`` if the next hop is going away (421)."""
        if reply is None:
            return SYNTAX
        code, lines = await reply
        if code == 421:  # the next hop is closing the session
            self.close()
            raise NextHopDown(f"{code} {lines[0]}")
        if not (code == 354 if verb == b"DATA" else 200 <= code < 300) and not 400 <= code < 600:
            # RFC 5321 4.3.2: DATA is answered 354, 4xx or 5xx, the rest 2xx, 4xx or 5xx. Anything else (a
            # 354 to RCPT, a 250 to DATA) is a next hop out of step: passed back, it would put the client
            # out of step too (Postfix bounced a recipient on a 354).
            self.close()
            what = verb.decode() or "the message"
            raise NextHopDown(f"out of step: {smtp_text(f'{code} {lines[0]}', 200)} in reply to {what}")
        if verb == b"MAIL":
            self.in_transaction = 200 <= code < 300
        elif verb in (b"", b"RSET") or (verb == b"DATA" and code != 354):
            self.in_transaction = False
        return smtp_text(f"{code} {lines[0]}".rstrip(), 500)

    def mail_soon(self, address: str, options: list[str]) -> None:
        """Send MAIL now; its reply is awaited only by the first RCPT (``NextHopDown``: no session)."""
        self.mail_reply = ""
        sent = self._send(b"MAIL", b"FROM:" + _path(address), *_opts(options))
        self._mail = _background(self._result(b"MAIL", sent))

    async def rcpt(self, address: str, options: list[str]) -> str:
        """The next hop's reply to RCPT, or to the MAIL before it if that was refused (every recipient of
        a refused sender gets the refusal). With PIPELINING the RCPT goes out before MAIL's reply is in."""
        words = (b"RCPT", b"TO:" + _path(address), *_opts(options))
        if self._mail is not None and self.pipelining:
            sent = self._send(*words)
            try:
                mail = await self.mail_result()
            finally:
                reply = await self._result(b"RCPT", sent)  # read in any case: replies pair up in order
            return reply if mail.startswith("2") else mail
        mail = await self.mail_result()
        if not mail.startswith("2"):
            return mail
        return await self.command(*words)

    async def mail_result(self) -> str:
        """The next hop's reply to the MAIL sent by ``mail_soon``; ``NextHopDown`` if there is none: the
        next hop went away (now, or for an RCPT before: every later one is told so too, never ``""``)."""
        task, self._mail = self._mail, None
        if task is not None:
            self.mail_reply = await _outcome(task)
        if not self.mail_reply:
            raise NextHopDown("no transaction with the next hop (it failed at MAIL)")
        return self.mail_reply

    @property
    def gone(self) -> bool:
        """The session with the next hop has ended: a transaction begun in it cannot go on."""
        return self.proto is None or not self.proto.usable

    def data_soon(self) -> None:
        """Send DATA now (the client is about to send its body); ``finish_data`` sends the body."""
        if self.proto is not None and self.in_transaction and self._mail is None:
            try:
                sent = self._send(b"DATA")
            except NextHopDown:
                return  # finish_data finds the session gone
            self._data = _background(self._result(b"DATA", sent))

    async def finish_data(self, headers: bytes, wire_body: bytes) -> str:
        """``headers`` and the body as the client sent it on the wire (dot-stuffed, ending in CRLF), then
        the end mark; the next hop's reply. The client's own stuffing is valid for the next hop too, so the
        body is forwarded as received: no copy-and-transform pass over a large message."""
        task, self._data = self._data, None
        reply = await _outcome(task) if task is not None else await self.command(b"DATA")
        if not reply.startswith("354"):
            self.in_transaction = False
            return reply
        if self.proto is None:
            raise NextHopDown("not connected")
        # The relay's own header lines are CRLF-ended printable ASCII starting with a field name or a tab:
        # stuffed only if that ever changes. One write, so one send(2) for a message that fits the socket
        # buffer.
        if headers[:1] == b"." or b"\n." in headers or headers.count(b"\n") != headers.count(b"\r\n"):
            headers = dot_stuff(headers)
        message = b"".join((headers, wire_body, b".\r\n"))
        self.proto.write(message)
        # the reply comes once the whole message is through: a second more for each 64 KiB it has
        return await self._result(b"", self.proto.expect(self.timeout + len(message) / DATA_RATE))

    async def abandon(self) -> None:
        """End the next hop's transaction without delivering: RSET, or drop the session mid-DATA."""
        data, self._data = self._data, None
        if data is not None:
            data.cancel()
            self.close()  # a started DATA cannot be taken back: the next hop discards it when we go
            return
        with contextlib.suppress(NextHopDown):
            if self.proto is not None:
                await self.mail_result()
                await self.command(b"RSET")

    async def command(self, *words: bytes) -> str:
        """Send one command (``b"RSET"``, ``b"RCPT", b"TO:<bob@navy.mil>"``) and return the reply line to
        pass back. The addresses come from aiosmtpd's parser and go out as they came; a command holding a
        control character is not sent (501)."""
        verb = words[0]
        if verb == b"MAIL" and self.in_transaction:
            await self.command(b"RSET")
        return await self._result(verb, self._send(*words))

    def close(self) -> None:
        """End the session: QUIT between transactions, the connection dropped in the middle of one."""
        proto, self.proto = self.proto, None
        if proto is not None and proto.transport is not None:
            if proto.usable and not proto.waiters and not self.in_transaction:
                with contextlib.suppress(NextHopDown, OSError, RuntimeError):
                    proto.write(b"QUIT\r\n")
                proto.transport.close()
            else:
                proto.transport.abort()
        self.in_transaction = False
        for task in (self._mail, self._data):
            if task is not None:
                task.cancel()
        self._mail = self._data = None


def _background(command: Coroutine[Any, Any, str]) -> asyncio.Task[str]:
    """A command whose reply is awaited later - or never, when its session ends first (a 421 to DATA
    closes the session the DATA task belongs to): its failure is read here, so asyncio does not log it as
    "Task exception was never retrieved" with a traceback; who awaits it still gets it."""
    task = asyncio.get_running_loop().create_task(command)
    task.add_done_callback(_read_failure)
    return task


def _read_failure(task: asyncio.Task[str]) -> None:
    if not task.cancelled():
        task.exception()


async def _outcome(task: asyncio.Task[str]) -> str:
    """``task``'s reply; ``NextHopDown`` if the session was closed under it (``close()`` cancels it), while
    a cancellation of the caller itself (the client went away) goes on as one."""
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            raise NextHopDown("the next-hop session was closed") from None
        raise


def _path(address: str) -> bytes:
    return b"<" + address.encode("utf-8") + b">"


def _opts(options: list[str]) -> list[bytes]:
    return [o.encode("utf-8") for o in options]
