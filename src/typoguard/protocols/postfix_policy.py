"""Postfix SMTPD access policy delegation protocol, sans-IO (Postfix's SMTPD_POLICY_README).

No sockets, no asyncio: bytes go in through ``receive_data()``, events come out of ``next_event()``, and
``send()`` turns a reply into bytes for the caller to write. The same object therefore serves an asyncio
server, a blocking test client or a fuzzer.

The wire format::

    request=smtpd_access_policy\\n        one ``name=value`` per line, ended by "\\n";
    protocol_state=RCPT\\n                 names are ASCII words, values anything but a newline
    recipient=bob@army.ml\\n               (split on the first "=": values may contain "=")
    ...\\n
    \\n                                     an empty line ends the request

    action=550 5.1.2 ...\\n               the reply: one ``action=`` line ...
    \\n                                     ... and an empty line

A connection carries many requests, one after another (smtpd waits for each reply); unknown attributes
are kept but ignored by callers, since each Postfix release adds some.

Server-side state machine (``PolicyServerConnection``)::

    state       input                          -> event / next state
    OPEN        complete request block         -> PolicyRequest, pending += 1
    OPEN        incomplete data                -> NEED_DATA (limits checked on what has arrived)
    OPEN        EOF, nothing buffered          -> ConnectionClosed, CLOSED
    OPEN        EOF inside a request           -> ProtocolError, ERROR
    OPEN        line > max_line, > max_attributes lines, a line without "=",
                no ``request=`` or a request type other than smtpd_access_policy
                                               -> ProtocolError, ERROR
    ERROR       anything                       -> ProtocolError again (the caller must disconnect)

Postfix's rule for trouble is "log and disconnect, never guess": a ``ProtocolError`` means exactly that.

This module is compiled with mypyc at install (setup.py; ADR 0011): the policy service parses every
request through it. Keep it plain, fully typed Python that mypyc accepts (no monkeypatching of its classes,
no dynamic attributes); ``tests/protocols/test_compiled_codec.py`` checks the compiled module against
this source on any input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from typoguard.errors import ProtocolError

__all__ = [
    "NEED_DATA",
    "REQUEST_TYPE",
    "ConnectionClosed",
    "NeedData",
    "PolicyClientConnection",
    "PolicyReply",
    "PolicyRequest",
    "PolicyServerConnection",
    "encode_request",
]

REQUEST_TYPE: Final = "smtpd_access_policy"
DEFAULT_MAX_LINE: Final = 8192
DEFAULT_MAX_ATTRIBUTES: Final = 100
_ALL_BUT_NL_EQ: Final = bytes(c for c in range(256) if c not in b"\n=")
_REQUEST_LINE: Final = b"request=" + REQUEST_TYPE.encode() + b"\n"
_EMPTY_NAME: Final = re.compile(rb"\n=")  # a line "=value" after the first (a regex: faster than `in`)
_NEEDLES: dict[str, str] = {}  # attribute name -> "\nname=", what PolicyRequest.get() searches for


class NeedData(Enum):
    """``next_event()`` has nothing complete yet: feed more bytes."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection cleanly, between requests."""


class PolicyRequest:
    """One request. Attributes are text (invalid UTF-8 kept as surrogates, see ``surrogateescape``).

    Immutable. Parsed lazily: ``get()`` finds one attribute in the request text without building the
    whole mapping (a server reads 5 of the 29 attributes Postfix sends, tens of thousands of times a
    second); ``attributes`` builds the full mapping on first use. A repeated name: the last one wins.
    """

    __slots__ = ("_attributes", "_text")

    def __init__(self, text: str) -> None:
        """``text``: the block as received, without its blank line; see ``from_attributes`` otherwise."""
        self._text = "\n" + text + "\n"
        self._attributes: dict[str, str] | None = None

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, str]) -> PolicyRequest:
        return cls(encode_request(attributes)[:-2].decode("utf-8", "surrogateescape"))

    def get(self, name: str, default: str = "") -> str:
        needle = _NEEDLES.get(name)
        if needle is None:
            needle = "\n" + name + "="
            if len(_NEEDLES) < 1024:
                _NEEDLES[name] = needle
        text = self._text
        i = text.rfind(needle)
        if i < 0:
            return default
        start = i + len(needle)
        return text[start : text.index("\n", start)]

    def rcpt_fields(self) -> tuple[str, str, str, str, str]:
        """(protocol_state, recipient, sender, client_address, queue_id) in one call: what a policy
        server reads on every request ("" for each one missing). Unrolled: it runs on every request."""
        text = self._text
        index = text.index
        i = text.rfind("\nprotocol_state=")
        state = text[i + 16 : index("\n", i + 16)] if i >= 0 else ""
        i = text.rfind("\nrecipient=")
        recipient = text[i + 11 : index("\n", i + 11)] if i >= 0 else ""
        i = text.rfind("\nsender=")
        sender = text[i + 8 : index("\n", i + 8)] if i >= 0 else ""
        i = text.rfind("\nclient_address=")
        client = text[i + 16 : index("\n", i + 16)] if i >= 0 else ""
        i = text.rfind("\nqueue_id=")
        queue_id = text[i + 10 : index("\n", i + 10)] if i >= 0 else ""
        return state, recipient, sender, client, queue_id

    @property
    def attributes(self) -> Mapping[str, str]:
        if self._attributes is None:
            self._attributes = dict(line.split("=", 1) for line in self._text[1:-1].split("\n"))
        return self._attributes

    @property
    def protocol_state(self) -> str:
        return self.get("protocol_state")

    @property
    def recipient(self) -> str:
        return self.get("recipient")

    @property
    def sender(self) -> str:
        return self.get("sender")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyRequest) and self.attributes == other.attributes

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"PolicyRequest({dict(self.attributes)!r})"


@dataclass(frozen=True, slots=True)
class PolicyReply:
    """A reply: ``action`` is what follows ``action=`` (``DUNNO``, ``550 5.1.2 text``, ``HOLD text``...)."""

    action: str
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.action or "\n" in self.action or "\r" in self.action:
            raise ProtocolError(f"a policy reply must be one non-empty line, got {self.action!r}")
        object.__setattr__(
            self, "wire", b"action=" + self.action.encode("utf-8", "surrogateescape") + b"\n\n"
        )

    def to_bytes(self) -> bytes:
        return self.wire


class _Framer:
    """Splits a byte stream into blank-line-terminated blocks, enforcing size limits as bytes arrive."""

    def __init__(self, max_line: int, max_attributes: int) -> None:
        if max_line < 16 or max_attributes < 1:
            raise ValueError("max_line must be >= 16 and max_attributes >= 1")
        self.max_line = max_line
        self.max_attributes = max_attributes
        self._buf = bytearray()
        # Fast path: a chunk arriving while nothing is buffered waits here uncopied; usually it is exactly
        # one whole request (smtpd writes a request at once and waits for the reply).
        self._pending: bytes | None = None
        self._start = 0  # offset of the first byte not yet consumed
        self._held_cr = False  # a chunk ended in "\r": wait for the next one to see if "\n" follows
        self._eof = False
        # Limits on the incomplete tail, checked incrementally so 1-byte chunks cost O(n) overall.
        self._checked = 0
        self._line_start = 0
        self._lines = 0

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a complete block yet."""
        pending = len(self._pending) if self._pending is not None else 0
        return len(self._buf) - self._start + self._held_cr + pending

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise ProtocolError("data received after the end of the connection")
        if not data:
            self._eof = True
            if self._pending is not None:
                self._buf += self._pending
                self._pending = None
            if self._held_cr:
                self._buf += b"\r"
                self._held_cr = False
            return
        if self._held_cr:
            data = b"\r" + data
            self._held_cr = False
        if b"\r" in data:
            # Postfix sends bare LF; people typing into nc/telnet send CRLF. Accept both.
            if data.endswith(b"\r"):
                data = data[:-1]
                self._held_cr = True
            data = data.replace(b"\r\n", b"\n")
        if self._pending is not None:
            self._buf += self._pending
            self._pending = None
        elif not self._buf:
            self._pending = data
            return
        self._buf += data

    def next_block(self) -> bytes | None:
        """The next complete block without its terminating blank line, or None (check limits first)."""
        chunk = self._pending
        if chunk is not None:
            self._pending = None
            end = len(chunk) - 2
            if end > 0 and chunk[0] != 0x0A and chunk.find(b"\n\n") == end:
                return chunk[:-2]  # exactly one request, nothing before or after it
            self._buf += chunk  # anything else: the general path below
        buf, start = self._buf, self._start
        if start == len(buf):  # everything consumed: the usual case between requests
            if start:
                buf.clear()
                self._start = self._checked = self._line_start = 0
            return None
        if buf[start] == 0x0A:
            raise ProtocolError("empty request (a blank line with no attributes)")
        end = buf.find(b"\n\n", start)
        if end >= 0:
            block = bytes(buf[start:end])
            self._start = self._checked = self._line_start = end + 2
            self._lines = 0
            return block
        if start:
            del buf[:start]
            self._checked -= start
            self._line_start -= start
            self._start = 0
        self._check_partial()
        return None

    def _check_partial(self) -> None:
        buf = self._buf
        i = self._checked
        while True:
            nl = buf.find(b"\n", i)
            if nl < 0:
                break
            if nl - self._line_start > self.max_line:
                raise ProtocolError(f"attribute line longer than {self.max_line} bytes")
            self._lines += 1
            self._line_start = i = nl + 1
        if len(buf) - self._line_start > self.max_line:
            raise ProtocolError(f"attribute line longer than {self.max_line} bytes")
        if self._lines > self.max_attributes:
            raise ProtocolError(f"request with more than {self.max_attributes} attributes")
        self._checked = len(buf)

    @property
    def at_eof(self) -> bool:
        return self._eof


class PolicyServerConnection:
    """The policy server's side of one connection (Postfix smtpd is the client)."""

    def __init__(
        self, *, max_line: int = DEFAULT_MAX_LINE, max_attributes: int = DEFAULT_MAX_ATTRIBUTES
    ) -> None:
        self._framer = _Framer(max_line, max_attributes)
        self._error: ProtocolError | None = None
        self._closed = False
        self.pending = 0  # requests handed out and not answered yet
        self.requests = 0  # requests received on this connection

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete request waiting for more data (0 between requests)."""
        return self._framer.buffered

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if self._error is not None:
            raise self._error
        self._framer.feed(data)

    def receive_one(self, data: bytes) -> PolicyRequest | None:
        """The fast path for what smtpd nearly always sends: exactly one whole request in one chunk, with
        nothing buffered before it. Returns the request (as ``receive_data`` + ``next_event`` would), or
        None without consuming anything: then use ``receive_data`` and ``next_event``."""
        framer = self._framer
        end = len(data) - 2
        if (
            self._error is not None
            or self._closed
            or framer._pending is not None
            or framer._held_cr
            or framer._start != len(framer._buf)
            or framer._eof
            or end <= 0
            or data[0] == 0x0A
            or not data.endswith(b"\n\n")
            or b"\r" in data
        ):
            return None
        try:
            request = self._parse(data[:-2], whole_chunk=True)
        except ProtocolError as exc:
            self._error = exc
            raise
        if request is None:
            return None
        self.pending += 1
        self.requests += 1
        return request

    def next_event(self) -> PolicyRequest | ConnectionClosed | NeedData:
        """The next event; raises ``ProtocolError`` when the peer broke the protocol (then disconnect)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            return ConnectionClosed()
        try:
            block = self._framer.next_block()
            if block is None:
                if self._framer.at_eof:
                    if self._framer.buffered:
                        raise ProtocolError("connection closed in the middle of a request")
                    self._closed = True
                    return ConnectionClosed()
                return NEED_DATA
            request = self._parse(block)
            assert request is not None  # only a whole chunk may hold more than one request
        except ProtocolError as exc:
            self._error = exc
            raise
        self.pending += 1
        self.requests += 1
        return request

    def _parse(self, block: bytes, *, whole_chunk: bool = False) -> PolicyRequest | None:
        """Validate and wrap one block (a request without its blank line); ``ProtocolError`` if broken.

        ``whole_chunk``: ``block`` is a whole chunk from the wire less its final blank line, not yet known
        to be one request; None if it holds more (a blank line inside: the caller takes the general path).
        The checks run in C over the block as few times as possible (this is most of a request's cost).
        """
        framer = self._framer
        if len(block) > framer.max_line and max(map(len, block.split(b"\n"))) > framer.max_line:
            raise ProtocolError(f"attribute line longer than {framer.max_line} bytes")
        # Every line must be name=value with a non-empty name. Keep only the "\n" and "=" bytes: a line
        # without "=" shows up as two adjacent newlines (or one at either end), and so does a blank line.
        skeleton = block.translate(None, _ALL_BUT_NL_EQ)
        if b"\n\n" in skeleton and whole_chunk:
            return None
        if skeleton.count(b"\n") >= framer.max_attributes:
            raise ProtocolError(f"request with more than {framer.max_attributes} attributes")
        if b"\n\n" in skeleton or skeleton[:1] == b"\n" or skeleton[-1:] == b"\n" or not skeleton:
            bad = next((line for line in block.split(b"\n") if b"=" not in line), b"")
            raise ProtocolError(f"attribute line without '=': {bad[:60]!r}")
        if block[:1] == b"=" or _EMPTY_NAME.search(block):
            raise ProtocolError("attribute with an empty name")
        request = PolicyRequest(block.decode("utf-8", "surrogateescape"))
        if block.startswith(_REQUEST_LINE) and block.rfind(b"\nrequest=") < 0:
            return request  # what smtpd always sends first (and only once)
        kind = request.get("request", "")
        if kind != REQUEST_TYPE:
            if not kind:
                raise ProtocolError("request without a request= attribute")
            raise ProtocolError(f"unknown request type {kind[:60]!r} (expected {REQUEST_TYPE})")
        return request

    def send(self, reply: PolicyReply) -> bytes:
        """Bytes answering the oldest unanswered request (a local error if there is none)."""
        if self.pending <= 0:
            raise ProtocolError("reply without an outstanding request")
        self.pending -= 1
        return reply.wire


def encode_request(attributes: Mapping[str, str]) -> bytes:
    """A request as Postfix would send it; ``request=smtpd_access_policy`` is added when missing."""
    parts = []
    if "request" not in attributes:
        parts.append(f"request={REQUEST_TYPE}\n")
    for name, value in attributes.items():
        if not name or "=" in name or "\n" in name or "\n" in value:
            raise ProtocolError(f"cannot encode attribute {name!r}={value!r}")
        parts.append(f"{name}={value}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8", "surrogateescape")


class PolicyClientConnection:
    """The client's side (what smtpd does): encode requests, parse ``action=`` replies. For tests and load."""

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._framer = _Framer(max_line, 8)
        self.pending = 0

    def send(self, attributes: Mapping[str, str]) -> bytes:
        self.pending += 1
        return encode_request(attributes)

    def receive_data(self, data: bytes) -> None:
        self._framer.feed(data)

    def next_event(self) -> PolicyReply | ConnectionClosed | NeedData:
        block = self._framer.next_block()
        if block is None:
            if self._framer.at_eof:
                if self._framer.buffered:
                    raise ProtocolError("connection closed in the middle of a reply")
                return ConnectionClosed()
            return NEED_DATA
        name, sep, value = block.decode("utf-8", "surrogateescape").partition("=")
        if name != "action" or not sep or "\n" in value:
            raise ProtocolError(f"malformed policy reply {block[:80]!r}")
        if self.pending <= 0:
            raise ProtocolError("reply without an outstanding request")
        self.pending -= 1
        return PolicyReply(value)


def implementation() -> str:
    """How this module runs: "compiled" (the C extension mypyc built at install, see setup.py) or
    "python" (no compiler there, or ``TYPOGUARD_PURE_PYTHON=1``): same behaviour, slower."""
    return "python" if __file__.endswith(".py") else "compiled"
