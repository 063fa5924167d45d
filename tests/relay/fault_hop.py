"""A next hop that fails on purpose, for the relay's fault tests (raw client and real Postfix).

``FaultHop`` is an SMTP server in a thread (its own asyncio loop) that behaves as ``fault`` says at the stage
it names: ``<stage>_<how>`` with stage ``greeting``, ``ehlo``, ``mail``, ``rcpt`` (of ``two@...``),
``data`` (the DATA command) or ``dot`` (the reply after the message), and how ``421`` (then it closes),
``451``, ``5xx``, ``drop`` (closes without a word), ``hang`` (says nothing, keeps the connection),
``garbage`` (a line that is no reply), ``354`` (a reply out of sequence); ``refuse`` stops listening (the
connection is refused); ``ok`` behaves. ``delivered`` keeps the recipients of each message it said 250 to.

``outcome(fault, recipients)`` is what must become of each recipient of one message sent through the relay
to this next hop: ``sent``, ``bounced`` (only where the next hop itself refused with 5xx) or ``deferred``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from relay_lab import free_port

FAULTY_RCPT = "two@"  # the recipient whose RCPT gets the ``rcpt_*`` fault (Postfix sends them in its order)
HOP_NO = "hop says no"  # the text of every 5xx this next hop gives: a bounce must carry it

STAGES = ("greeting", "ehlo", "mail", "rcpt", "data", "dot")
FAULTS = (
    "ok",
    "refuse",
    "greeting_421",
    "greeting_hang",
    "greeting_garbage",
    "greeting_drop",
    "ehlo_421",
    "ehlo_garbage",
    "mail_421",
    "mail_451",
    "mail_5xx",
    "mail_drop",
    "mail_hang",
    "mail_garbage",
    "rcpt_421",
    "rcpt_451",
    "rcpt_5xx",
    "rcpt_drop",
    "rcpt_hang",
    "rcpt_garbage",
    "rcpt_354",
    "data_421",
    "data_451",
    "data_5xx",
    "data_drop",
    "data_hang",
    "data_garbage",
    "dot_421",
    "dot_451",
    "dot_5xx",
    "dot_drop",
    "dot_hang",
    "dot_garbage",
)


def outcome(fault: str, recipients: list[str]) -> dict[str, str]:
    """Each recipient's fate: the next hop's own 5xx bounces (the refused recipient, or every one when MAIL,
    DATA or the message was refused); everything else the next hop did not take is deferred, never bounced."""
    if fault == "ok":
        return dict.fromkeys(recipients, "sent")
    if fault in ("rcpt_5xx", "rcpt_451"):
        fate = "bounced" if fault == "rcpt_5xx" else "deferred"
        return {r: fate if r.startswith(FAULTY_RCPT) else "sent" for r in recipients}
    if fault in ("mail_5xx", "data_5xx", "dot_5xx"):
        return dict.fromkeys(recipients, "bounced")
    return dict.fromkeys(recipients, "deferred")


@dataclass
class Message:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class FaultHop:
    """The next hop; ``fault`` may be changed between messages (``set_fault``)."""

    def __init__(self, *, pipelining: bool = True, choose: Callable[[], str] | None = None) -> None:
        self.port = free_port()
        self.pipelining = pipelining
        self.fault = "ok"
        self.choose = choose  # if given: each session's fault (``refuse`` excepted), instead of ``fault``
        self.delivered: list[Message] = []
        self.sessions = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------------ control (from the test's thread)
    def start(self) -> FaultHop:
        self._thread.start()
        self._call(self._listen())
        return self

    def set_fault(self, fault: str) -> None:
        assert fault in FAULTS, fault
        self.fault = fault
        self._call(self._close_sessions())
        self._call(self._unlisten() if fault == "refuse" else self._listen())

    def stop(self) -> None:
        self._call(self._close_sessions())
        self._call(self._unlisten())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._session, "127.0.0.1", self.port, reuse_address=True
            )

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _close_sessions(self) -> None:
        """The sessions of the fault before (a hanging one would otherwise wait for the relay forever)."""
        for writer in list(self._writers):
            writer.transport.abort()

    # ------------------------------------------------------------------ one session
    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        self._writers.add(writer)
        try:
            await self._converse(reader, writer, self.choose() if self.choose else self.fault)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _fail(self, how: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    stage: str) -> bool:  # fmt: skip
        """Misbehave as ``how`` says; True when the session is over."""
        code5 = b"554" if stage in ("data", "dot") else b"550"
        answer = {
            "421": b"421 4.4.2 hop closing\r\n",
            "451": b"451 4.3.0 hop says later\r\n",
            "5xx": code5 + b" 5.7.1 " + HOP_NO.encode() + b"\r\n",
            "garbage": b"hello there\r\n",
            "354": b"354 go ahead\r\n",
        }.get(how, b"")
        writer.write(answer)
        await writer.drain()
        if how in ("421", "drop"):
            return True
        if how in ("hang", "garbage"):
            with contextlib.suppress(ConnectionError):
                while await reader.read(4096):  # until the relay gives up and closes
                    pass
            return True
        return False

    @staticmethod
    def _fault_at(fault: str, stage: str) -> str | None:
        prefix, _, how = fault.partition("_")
        return how if prefix == stage else None

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: str) -> None:
        how = self._fault_at(fault, "greeting")
        if how is not None:
            await self._fail(how, reader, writer, "greeting")
            return
        writer.write(b"220 hop.test ESMTP\r\n")
        txn = Message("", [], b"")
        while line := await reader.readline():
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd[:4].upper()
            stage = {"EHLO": "ehlo", "HELO": "ehlo", "MAIL": "mail", "RCPT": "rcpt", "DATA": "data"}.get(verb)
            how = self._fault_at(fault, stage) if stage is not None else None
            if how is not None and (stage != "rcpt" or f"<{FAULTY_RCPT}" in cmd):
                if await self._fail(how, reader, writer, stage or ""):
                    return
            elif verb == "EHLO":
                offer = b"250-PIPELINING\r\n" if self.pipelining else b""
                writer.write(b"250-hop.test\r\n" + offer + b"250 8BITMIME\r\n")
            elif verb == "MAIL":
                txn = Message(cmd[10:].strip("<>"), [], b"")
                writer.write(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                txn.rcpt_tos.append(cmd[8:].split(">", 1)[0].strip("<"))
                writer.write(b"250 2.1.5 Ok\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            elif verb == "DATA":
                if not await self._message(reader, writer, txn, fault):
                    return
                txn = Message("", [], b"")
            else:  # HELO, RSET, NOOP
                if verb == "RSET":
                    txn = Message("", [], b"")
                writer.write(b"250 hop.test\r\n" if verb == "HELO" else b"250 2.0.0 Ok\r\n")

    async def _message(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, txn: Message, fault: str
    ) -> bool:
        """354, the message, the reply (or the ``dot`` fault); False when the session is over."""
        writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        body = bytearray()
        while (chunk := await reader.readline()) not in (b".\r\n", b""):
            body += chunk
        if not chunk:
            return False
        how = self._fault_at(fault, "dot")
        if how is not None:
            return not await self._fail(how, reader, writer, "dot")
        self.delivered.append(Message(txn.mail_from, txn.rcpt_tos, bytes(body)))
        writer.write(b"250 2.0.0 Ok: queued by hop\r\n")
        return True
