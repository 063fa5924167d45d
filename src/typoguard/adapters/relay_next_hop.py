"""The relay's session with its next hop (aiosmtplib): MAIL sent ahead, DATA started early, the body
forwarded as it came on the wire. Any failure to reach or keep the next hop is ``NextHopDown`` (the relay
answers 451 4.4.1, so the client retries)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Final

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings

from typoguard.adapters.policy_decider import smtp_text

if TYPE_CHECKING:
    from typoguard.adapters.smtp_proxy import RelayServer

_PERIOD: Final = re.compile(rb"(?m)^\.")


class NextHopDown(Exception):
    """The next hop could not be reached or dropped the session."""


class NextHop:
    """One session with the next hop (aiosmtplib), opened at the client's first MAIL."""

    def __init__(self, relay: RelayServer) -> None:
        self.relay = relay
        self.smtp: aiosmtplib.SMTP | None = None
        # A transaction the client may have abandoned without RSET (aiosmtpd ends one by itself after a
        # refused DATA): the next MAIL resets it at the next hop first.
        self.in_transaction = False
        # MAIL is sent at once but its reply awaited only before the first RCPT (one round trip less per
        # message); DATA is started when the client's DATA arrives and finished when its body is complete.
        self._mail: asyncio.Task[str] | None = None
        self.mail_reply = ""
        self._data: asyncio.Task[str] | None = None

    async def open(self) -> None:
        if self.smtp is not None and self.smtp.is_connected:
            return
        r = self.relay
        smtp = aiosmtplib.SMTP(
            hostname=r.next_hop[0], port=r.next_hop[1], timeout=r.config.relay.next_hop_timeout,
            local_hostname=r.hostname, start_tls=False,
        )  # fmt: skip
        try:
            await smtp.connect()
            await smtp.ehlo()
            policy = r.config.relay.next_hop_tls
            if policy != "none" and smtp.supports_extension("starttls"):
                await smtp.starttls(tls_context=r.next_hop_tls, server_hostname=r.next_hop[0])
                await smtp.ehlo()  # a new session over TLS (commands go out raw, nothing sends it for us)
            elif policy == "required":
                smtp.close()
                raise NextHopDown("the next hop does not offer STARTTLS ([relay] next_hop_tls = required)")
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise NextHopDown(str(exc)) from None
        self.smtp = smtp

    def mail_soon(self, address: str, options: list[str]) -> None:
        self.mail_reply = ""
        self._mail = asyncio.get_running_loop().create_task(
            self.command(b"MAIL", b"FROM:" + _path(address), *_opts(options))
        )

    async def rcpt(self, address: str, options: list[str]) -> str:
        return await self.command(b"RCPT", b"TO:" + _path(address), *_opts(options))

    async def mail_result(self) -> str:
        """The next hop's reply to the MAIL sent by ``mail_soon`` (``NextHopDown`` if it went away)."""
        task, self._mail = self._mail, None
        if task is not None:
            self.mail_reply = await task
        return self.mail_reply

    def data_soon(self) -> None:
        """Send DATA now (the client is about to send its body); ``finish_data`` sends the body."""
        if self.smtp is not None and self.in_transaction and self._mail is None:
            self._data = asyncio.get_running_loop().create_task(self._start_data())

    async def _start_data(self) -> str:
        return await self.command(b"DATA")

    async def finish_data(self, headers: bytes, wire_body: bytes) -> str:
        """``headers`` and the body as the client sent it on the wire (dot-stuffed, ending in CRLF), then
        the end mark; the next hop's reply. The client's own stuffing is valid for the next hop too, so the
        body is forwarded as received: no copy-and-transform pass over a large message."""
        task, self._data = self._data, None
        reply = await task if task is not None else await self._start_data()
        if not reply.startswith("354"):
            self.in_transaction = False
            return reply
        assert self.smtp is not None
        try:
            protocol = self.smtp.protocol
            assert protocol is not None
            # The relay's own header lines are CRLF-ended printable ASCII starting with a field name or a
            # tab: stuffed only if that ever changes. One write, so one send(2) for a message that fits the
            # socket buffer.
            if headers[:1] == b"." or b"\n." in headers or headers.count(b"\n") != headers.count(b"\r\n"):
                headers = stuffed(headers)
            protocol.write(b"".join((headers, wire_body, b".\r\n")))
        except (aiosmtplib.SMTPException, OSError, AttributeError) as exc:
            self.close()
            raise NextHopDown(str(exc)) from None
        return await self.command()

    async def abandon(self) -> None:
        """End the next hop's transaction without delivering: RSET, or drop the session mid-DATA."""
        data, self._data = self._data, None
        if data is not None:
            data.cancel()
            self.close()  # a started DATA cannot be taken back: the next hop discards it when we go
            return
        with contextlib.suppress(NextHopDown):
            if self.smtp is not None:
                await self.mail_result()
                await self.command(b"RSET")

    async def command(self, *words: bytes) -> str:
        """Send one command (``b"RSET"``, ``b"RCPT", b"TO:<bob@navy.mil>"``; none: read the reply to the
        message just sent) and return the reply line to pass back. The addresses come from aiosmtpd's
        parser and go out as they came (aiosmtplib's ``mail()``/``rcpt()`` would parse them once more with
        the ``email`` package); aiosmtplib still refuses control characters in a command."""
        if self.smtp is None:
            raise NextHopDown("not connected")
        verb = words[0] if words else b""
        if verb == b"MAIL" and self.in_transaction:
            await self.command(b"RSET")
        smtp = self.smtp
        try:
            if verb:
                response = await smtp.execute_command(*words)
            else:
                response = await smtp.protocol.read_response(timeout=smtp.timeout)  # type: ignore[union-attr]
            code, message = response.code, response.message
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.close()
            raise NextHopDown(str(exc)) from None
        if code == 421:  # the next hop is closing the session
            self.close()
            raise NextHopDown(f"{code} {message}")
        if verb == b"MAIL":
            self.in_transaction = 200 <= code < 300
        elif verb in (b"", b"RSET") or (verb == b"DATA" and code != 354):
            self.in_transaction = False
        first = (message or "").splitlines()[0] if message else ""
        return smtp_text(f"{code} {first}".rstrip(), 500)

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(Exception):
                self.smtp.close()
            self.smtp = None
        self.in_transaction = False
        for task in (self._mail, self._data):
            if task is not None:
                task.cancel()
        self._mail = self._data = None


def _path(address: str) -> bytes:
    return b"<" + address.encode("utf-8") + b">"


def _opts(options: list[str]) -> list[bytes]:
    return [o.encode("ascii") for o in options]


def stuffed(body: bytes) -> bytes:
    out = _PERIOD.sub(b"..", normalize_message_line_endings(body))
    return out if out.endswith(b"\r\n") or not out else out + b"\r\n"
