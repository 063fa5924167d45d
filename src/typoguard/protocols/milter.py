"""The Sendmail milter protocol (version 6, as Sendmail 8.14+ and Postfix 2.6+ speak it), sans-IO.

No sockets, no asyncio: bytes go in through ``receive_data()``, events come out of ``next_event()``, and
replies are bytes (``CONTINUE``, ``reply_code()``, ``add_header()``, ``quarantine()``, ``negotiate()``) for
the caller to write. The same object serves an asyncio server, a blocking test client or a fuzzer.

The wire format: every message, both ways, is one frame::

    uint32 length (big-endian, counts the command byte) | 1 command byte | length-1 bytes of data

Strings in the data end with NUL. What the MTA sends (``SMFIC_*``) and what typoguard makes of it::

    O  OPTNEG   version, actions, protocol (3 x uint32)    -> OptionNegotiation (reply: negotiate())
    D  MACRO    stage byte, then name NUL value NUL ...    -> Macros (no reply)
    C  CONNECT  host NUL, family, [port uint16, addr NUL]  -> Connect        )
    H  HELO     name NUL                                   -> Helo           )
    M  MAIL     sender NUL, ESMTP args NUL ...             -> MailFrom       )  one reply each
    R  RCPT     recipient NUL, ESMTP args NUL ...          -> RcptTo         )  (CONTINUE, or
    T  DATA                                                -> Data           )   reply_code() ...)
    L  HEADER   name NUL value NUL                         -> Header         )
    N  EOH                                                 -> EndOfHeaders   )
    B  BODY     a chunk of the body                        -> BodyChunk      )
    U  UNKNOWN  an SMTP command the MTA did not know       -> UnknownCommand )
    E  BODYEOB  the last chunk (usually empty)             -> EndOfMessage: modifications (add_header(),
                                                              quarantine()), then one final reply
    A  ABORT    the message is abandoned                   -> Abort (no reply)
    Q  QUIT     close                                      -> Quit (no reply)
    K  QUIT_NC  close this milter session, a new one follows on the same socket (a new OPTNEG)

``negotiate()`` asks for what typoguard needs and nothing else (ADR 0025): only MAIL and RCPT are sent
(connect, HELO, DATA, headers, end of headers, body and unknown commands are skipped with ``SMFIP_NO*``,
when the MTA offers to skip them); the actions are adding a header and quarantine; and with
``SMFIF_SETSYMLIST`` it names the macros it reads (queue id ``i``, ``{auth_authen}``, ``{daemon_name}``,
``{client_addr}``), so the MTA sends those and no others.

Server-side states::

    NEGOTIATE   OPTNEG frame        -> OptionNegotiation, OPEN
    NEGOTIATE   any other command   -> ProtocolError, ERROR
    OPEN        a known command     -> its event (QUIT: CLOSED; QUIT_NC: NEGOTIATE)
    any         EOF, nothing buffered -> ConnectionClosed, CLOSED
    any         EOF inside a frame  -> ProtocolError ("truncated"), ERROR
    any         length 0 or > max_frame (checked on the 4 length bytes, before the data arrives), an
                unknown command, data that does not parse, anything after QUIT -> ProtocolError, ERROR
    ERROR       anything            -> ProtocolError again: the caller must close the connection

Hostile input therefore costs at most ``max_frame`` bytes of buffer: a 1 GB length prefix is refused on
its four bytes, and a peer that sends frames faster than they are read is refused at 4 x ``max_frame``.
A milter that closes the connection leaves the MTA to its own default (Postfix ``milter_default_action``,
Sendmail ``F=T`` / ``F=R``), the milter equivalent of Postfix's "log and disconnect, never guess".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from typing import Final

from typoguard.errors import ProtocolError

__all__ = [
    "CONTINUE",
    "NEED_DATA",
    "Abort",
    "Agreed",
    "BodyChunk",
    "Connect",
    "ConnectionClosed",
    "Data",
    "EndOfHeaders",
    "EndOfMessage",
    "Header",
    "Helo",
    "Macros",
    "MailFrom",
    "MilterServerConnection",
    "OptionNegotiation",
    "Quit",
    "QuitNewConnection",
    "RcptTo",
    "UnknownCommand",
    "add_header",
    "encode_command",
    "encode_macros",
    "encode_optneg",
    "quarantine",
    "reply_code",
    "split_frame",
]

VERSION: Final = 6
# libmilter's default limit is 64 KiB of data; MTAs send body chunks of 64 KiB (skipped, but not by all MTAs).
DEFAULT_MAX_FRAME: Final = 1 << 18

# Actions the milter may take (SMFIF_*), offered by the MTA, chosen in the OPTNEG reply.
SMFIF_ADDHDRS: Final = 0x01
SMFIF_CHGBODY: Final = 0x02
SMFIF_ADDRCPT: Final = 0x04
SMFIF_DELRCPT: Final = 0x08
SMFIF_CHGHDRS: Final = 0x10
SMFIF_QUARANTINE: Final = 0x20
SMFIF_CHGFROM: Final = 0x40
SMFIF_ADDRCPT_PAR: Final = 0x80
SMFIF_SETSYMLIST: Final = 0x100

# Protocol steps (SMFIP_*): NO* = do not send that step, NR_* = it needs no reply.
SMFIP_NOCONNECT: Final = 0x01
SMFIP_NOHELO: Final = 0x02
SMFIP_NOMAIL: Final = 0x04
SMFIP_NORCPT: Final = 0x08
SMFIP_NOBODY: Final = 0x10
SMFIP_NOHDRS: Final = 0x20
SMFIP_NOEOH: Final = 0x40
SMFIP_NR_HDR: Final = 0x80
SMFIP_NOUNKNOWN: Final = 0x100
SMFIP_NODATA: Final = 0x200

# Macro stages for SMFIF_SETSYMLIST (SMFIM_*).
SMFIM_CONNECT: Final = 0
SMFIM_HELO: Final = 1
SMFIM_ENVFROM: Final = 2
SMFIM_ENVRCPT: Final = 3
SMFIM_DATA: Final = 4
SMFIM_EOM: Final = 5
SMFIM_EOH: Final = 6

WANT_ACTIONS: Final = SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST
WANT_SKIPPED: Final = (
    SMFIP_NOCONNECT
    | SMFIP_NOHELO
    | SMFIP_NOBODY
    | SMFIP_NOHDRS
    | SMFIP_NOEOH
    | SMFIP_NOUNKNOWN
    | SMFIP_NODATA
)
# What typoguard reads, per stage. Postfix assigns the queue id late (smtpd_delay_open_until_valid_rcpt):
# ``i`` is asked for again at RCPT and at end of message.
WANT_MACROS: Final = (
    (SMFIM_ENVFROM, "i {auth_authen} {daemon_name} {client_addr}"),
    (SMFIM_ENVRCPT, "i"),
    (SMFIM_EOM, "i"),
)
_LEN: Final = struct.Struct(">I")
_OPTNEG: Final = struct.Struct(">III")
_HEADER_NAME: Final = frozenset(range(33, 127)) - {ord(":")}


class NeedData(Enum):
    """``next_event()`` has nothing complete yet: feed more bytes."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class OptionNegotiation:
    """The MTA's offer: its protocol version, the actions it allows, the steps it can skip."""

    version: int
    actions: int
    protocol: int


@dataclass(frozen=True, slots=True)
class Agreed:
    """What ``negotiate()`` settled on."""

    version: int
    actions: int
    protocol: int

    @property
    def can_quarantine(self) -> bool:
        return bool(self.actions & SMFIF_QUARANTINE)

    @property
    def can_add_header(self) -> bool:
        return bool(self.actions & SMFIF_ADDHDRS)


@dataclass(frozen=True, slots=True)
class Macros:
    """Macro values for the command that follows (``stage`` is that command's byte, e.g. b"R")."""

    stage: bytes
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class Connect:
    hostname: str
    family: str  # "4", "6", "L" (unix socket) or "U" (unknown: no port or address follow)
    port: int
    address: str


@dataclass(frozen=True, slots=True)
class Helo:
    name: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    address: str  # as the MTA passes it, usually with angle brackets
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RcptTo:
    address: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class EndOfHeaders:
    pass


@dataclass(frozen=True, slots=True)
class BodyChunk:
    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    line: str


@dataclass(frozen=True, slots=True)
class Abort:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class QuitNewConnection:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The MTA closed the connection between frames."""


Event = (
    OptionNegotiation | Macros | Connect | Helo | MailFrom | RcptTo | Data | Header | EndOfHeaders
    | BodyChunk | EndOfMessage | UnknownCommand | Abort | Quit | QuitNewConnection | ConnectionClosed
)  # fmt: skip


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _strings(data: bytes, what: str) -> list[str]:
    """NUL-terminated strings; the data must end with NUL."""
    if not data.endswith(b"\0"):
        raise ProtocolError(f"milter {what}: data does not end with NUL")
    return [_text(s) for s in data[:-1].split(b"\0")]


def _connect(data: bytes) -> Connect:
    host, nul, rest = data.partition(b"\0")
    if not nul or not rest:
        raise ProtocolError("milter connect: no host name or family")
    family = chr(rest[0])
    if family == "U":
        return Connect(_text(host), family, 0, "")
    if family not in "46L" or len(rest) < 4 or not rest.endswith(b"\0"):
        raise ProtocolError(f"milter connect: bad family {family!r} or address")
    (port,) = struct.unpack(">H", rest[1:3])
    return Connect(_text(host), family, port, _text(rest[3:-1]))


def _macros(data: bytes) -> Macros:
    if not data:
        raise ProtocolError("milter macro: no stage")
    parts = _strings(data[1:], "macro") if len(data) > 1 else []
    if len(parts) % 2:
        raise ProtocolError("milter macro: a name without a value")
    return Macros(data[:1], dict(zip(parts[::2], parts[1::2], strict=True)))


def _envelope(data: bytes, what: str) -> tuple[str, tuple[str, ...]]:
    parts = _strings(data, what)
    return parts[0], tuple(parts[1:])


def _event(cmd: int, data: bytes) -> Event:  # one return per command, as the table above
    if cmd == 0x44:  # D
        return _macros(data)
    if cmd == 0x52:  # R
        address, args = _envelope(data, "RCPT")
        return RcptTo(address, args)
    if cmd == 0x4D:  # M
        address, args = _envelope(data, "MAIL")
        return MailFrom(address, args)
    if cmd == 0x45:  # E
        return EndOfMessage(data)
    if cmd == 0x41:  # A
        return Abort()
    if cmd == 0x43:  # C
        return _connect(data)
    if cmd == 0x48:  # H
        return Helo(_strings(data, "HELO")[0])
    if cmd == 0x54:  # T
        return Data()
    if cmd == 0x4C:  # L
        parts = _strings(data, "header")
        if len(parts) != 2:
            raise ProtocolError("milter header: not one name and one value")
        return Header(parts[0], parts[1])
    if cmd == 0x4E:  # N
        return EndOfHeaders()
    if cmd == 0x42:  # B
        return BodyChunk(data)
    if cmd == 0x55:  # U
        return UnknownCommand(_strings(data, "unknown")[0])
    if cmd == 0x51:  # Q
        return Quit()
    if cmd == 0x4B:  # K
        return QuitNewConnection()
    raise ProtocolError(f"milter: unknown command {bytes([cmd])!r}")


class MilterServerConnection:
    """One MTA connection, seen from the milter."""

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 64:
            raise ValueError("max_frame must be >= 64")
        self.max_frame = max_frame
        self.agreed: Agreed | None = None
        self._buf = bytearray()
        self._start = 0
        self._state = "NEGOTIATE"  # NEGOTIATE, OPEN, CLOSED, ERROR
        self._eof = False
        self._error = ""

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._start

    def _fail(self, message: str) -> ProtocolError:
        self._state = "ERROR"
        self._error = message
        self._buf.clear()
        self._start = 0
        return ProtocolError(message)

    def receive_data(self, data: bytes) -> None:
        """Bytes from the MTA; ``b""`` means the MTA closed its side."""
        if self._state == "ERROR":
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise self._fail("milter: data after the end of the connection")
        if self.buffered + len(data) > 4 * self.max_frame:
            raise self._fail("milter: the MTA sends faster than it is answered (buffer limit)")
        if self._start and self._start == len(self._buf):
            self._buf.clear()
            self._start = 0
        self._buf += data

    def next_event(self) -> Event | NeedData:
        """The next complete event, ``NEED_DATA``, or ``ProtocolError`` (then close the connection)."""
        if self._state == "ERROR":
            raise ProtocolError(self._error)
        buf, start = self._buf, self._start
        have = len(buf) - start
        if have < 4:
            return self._at_end(have)
        (length,) = _LEN.unpack_from(buf, start)
        if length == 0 or length > self.max_frame:
            raise self._fail(f"milter: a frame of {length} bytes (allowed 1 to {self.max_frame})")
        if have < 4 + length:
            return self._at_end(have)
        cmd = buf[start + 4]
        data = bytes(buf[start + 5 : start + 4 + length])
        self._start = start + 4 + length
        if self._start > 65536:
            del buf[: self._start]
            self._start = 0
        if self._state == "CLOSED":
            raise self._fail("milter: a command after QUIT")
        if self._state == "NEGOTIATE":
            if cmd != 0x4F:  # O
                raise self._fail(f"milter: {bytes([cmd])!r} before option negotiation")
            if len(data) < 12:
                raise self._fail("milter: option negotiation shorter than 12 bytes")
            self._state = "OPEN"
            return OptionNegotiation(*_OPTNEG.unpack_from(data))
        try:
            event = _event(cmd, data)
        except ProtocolError as exc:
            raise self._fail(str(exc)) from None
        if isinstance(event, Quit):
            self._state = "CLOSED"
        elif isinstance(event, QuitNewConnection):
            self._state = "NEGOTIATE"
            self.agreed = None
        return event

    def _at_end(self, have: int) -> ConnectionClosed | NeedData:
        if not self._eof:
            return NEED_DATA
        if have:
            raise self._fail(f"milter: connection closed inside a frame ({have} bytes truncated)")
        self._state = "CLOSED"
        return ConnectionClosed()

    def negotiate(
        self,
        offer: OptionNegotiation,
        *,
        actions: int = WANT_ACTIONS,
        skipped: int = WANT_SKIPPED,
        macros: tuple[tuple[int, str], ...] = WANT_MACROS,
    ) -> bytes:
        """The OPTNEG reply: what we want of what the MTA offers (``self.agreed`` records it)."""
        if offer.version < 2:
            raise self._fail(f"milter: protocol version {offer.version} is too old (2 to {VERSION})")
        version = min(offer.version, VERSION)
        agreed = Agreed(version, actions & offer.actions, skipped & offer.protocol)
        self.agreed = agreed
        wire = _OPTNEG.pack(agreed.version, agreed.actions, agreed.protocol)
        if agreed.actions & SMFIF_SETSYMLIST:
            wire += b"".join(_LEN.pack(stage) + names.encode() + b"\0" for stage, names in macros)
        return encode_command(b"O", wire)


# ---------------------------------------------------------------------------------------------- replies
def encode_command(cmd: bytes, data: bytes = b"") -> bytes:
    """One frame (either direction)."""
    return _LEN.pack(len(data) + 1) + cmd + data


def split_frame(wire: bytes) -> tuple[bytes, bytes]:
    """(command byte, data) of one whole frame; for tests and clients."""
    (length,) = _LEN.unpack_from(wire)
    if length < 1 or len(wire) != 4 + length:
        raise ProtocolError(f"milter: not one whole frame ({len(wire)} bytes, length {length})")
    return wire[4:5], wire[5:]


CONTINUE: Final = encode_command(b"c")
ACCEPT: Final = encode_command(b"a")
TEMPFAIL: Final = encode_command(b"t")
REJECT: Final = encode_command(b"r")


def _one_line(text: str, what: str) -> bytes:
    if "\r" in text or "\n" in text or "\0" in text:
        raise ProtocolError(f"milter {what} must be one line without NUL: {text!r}")
    return text.encode("utf-8", "surrogateescape")


def reply_code(code: int, dsn: str, text: str) -> bytes:
    """``SMFIR_REPLYCODE``: the SMTP reply the MTA gives for this step (4xx or 5xx). "%" is doubled:
    both MTAs read the text as a format (libmilter's smfi_setreply documents the same)."""
    if not 400 <= code <= 599:
        raise ProtocolError(f"milter reply code {code} is not 4xx or 5xx")
    return reply_line(f"{code} {dsn} {text}")


def reply_line(line: str) -> bytes:
    """``SMFIR_REPLYCODE`` for a whole reply line, ``"550 5.1.2 text"`` (``reply_code`` in one string)."""
    if len(line) < 4 or line[0] not in "45" or not line[1:3].isdigit() or line[3] != " ":
        raise ProtocolError(f"milter reply {line[:20]!r} does not start with a 4xx or 5xx code")
    return encode_command(b"y", _one_line(line.replace("%", "%%"), "reply") + b"\0")


def add_header(name: str, value: str) -> bytes:
    """``SMFIR_ADDHEADER`` (only at end of message)."""
    if not name or not set(name.encode()) <= _HEADER_NAME:
        raise ProtocolError(f"milter: {name!r} is not a header name")
    return encode_command(b"h", _one_line(name, "header") + b"\0" + _one_line(value, "header") + b"\0")


def quarantine(reason: str) -> bytes:
    """``SMFIR_QUARANTINE`` (only at end of message): Postfix's hold queue, Sendmail's quarantine."""
    return encode_command(b"q", _one_line(reason or "typoguard", "quarantine reason") + b"\0")


# ---------------------------------------------------------------------------------------------- MTA side
def encode_optneg(version: int, actions: int, protocol: int) -> bytes:
    """The MTA's OPTNEG (tests, benchmarks)."""
    return encode_command(b"O", _OPTNEG.pack(version, actions, protocol))


def encode_macros(stage: bytes, values: dict[str, str]) -> bytes:
    """An MTA's ``SMFIC_MACRO`` for the command ``stage`` (tests, benchmarks)."""
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in values.items())
    return encode_command(b"D", stage + body)
