"""A message's text, and what sensitive content it carries, as categories and counts.

The message is parsed with the standard library's ``email`` package; the Subject and every ``text/*`` part
(bodies and text attachments, quoted-printable and base64 decoded, in their declared charset) are scanned,
up to ``max_bytes`` characters in all. Other attachments (PDF, Office, images, archives) are counted as
``unscanned_parts``, not opened: that is a different product.
"""

from __future__ import annotations

import email
import email.message
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, Final

from typoguard.content.credentials import count_credentials
from typoguard.content.identifiers import count_passports, count_payment_cards, count_ssn
from typoguard.content.itinerary import count_itinerary
from typoguard.content.markings import count_classified, count_cui
from typoguard.content.prepared import Prepared

# Each detector: the prepared text -> count.
DETECTORS: Final[tuple[tuple[str, Callable[[Prepared], int]], ...]] = (
    ("classified", count_classified),
    ("cui", count_cui),
    ("credential", count_credentials),
    ("ssn", count_ssn),
    ("payment_card", count_payment_cards),
    ("passport", count_passports),
    ("itinerary", count_itinerary),
)
CATEGORIES: Final = tuple(name for name, _ in DETECTORS)


@dataclass(frozen=True, slots=True)
class ContentReport:
    """What a message carries: category -> count (only categories found), and how much was looked at."""

    counts: Mapping[str, int] = field(default_factory=dict)
    scanned_chars: int = 0
    truncated: bool = False  # more text than ``max_bytes``: the rest was not scanned
    unscanned_parts: int = 0  # non-text attachments

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(self.counts)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "scanned_chars": self.scanned_chars,
            "truncated": self.truncated,
            "unscanned_parts": self.unscanned_parts,
        }


def scan_text(text: str) -> dict[str, int]:
    """Category -> count for one piece of text (categories with a count of 0 left out)."""
    out = {}
    prepared = Prepared(text)
    for name, detector in DETECTORS:
        n = detector(prepared)
        if n:
            out[name] = n
    return out


def _texts(msg: email.message.Message) -> Iterator[tuple[str | None, email.message.Message]]:
    for part in msg.walk():
        if part.is_multipart():
            continue
        yield part.get_content_maintype(), part


def _decode_part(part: email.message.Message) -> str:
    raw = part.get_payload()
    payload = raw if isinstance(raw, bytes) else part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", "replace")


_PLAIN_ENCODINGS: Final = frozenset({"", "7bit", "8bit", "binary"})
_FIELD: Final = re.compile(r"[!-9;-~]+:")  # a field name (printable ASCII but ":") and its colon


def _parse_head(head: bytes) -> email.message.Message:
    """The header block ``head`` (ending in an empty line) as ``BytesHeaderParser`` parses it. A simple block
    (ASCII, CRLF line ends, one line per field) is split here, at a fifth of the ``email`` package's cost
    (a property test compares the two); anything else is given to the package."""
    text = head.decode("ascii", "replace")
    fields = text[:-4].split("\r\n")
    if (
        text.endswith("\r\n\r\n")
        and "\ufffd" not in text
        and text.count("\r") == text.count("\n") == text.count("\r\n")
        and all(_FIELD.match(line) for line in fields)
    ):
        msg = email.message.Message()
        for line in fields:
            msg.set_raw(*compat32.header_source_parse([line + "\r\n"]))
        msg.set_payload("")  # the empty body after the blank line, as the parser leaves it
        return msg
    return BytesHeaderParser().parsebytes(head)


def _single_text_body(raw: bytes) -> email.message.Message | None:
    """The headers of a message that is one unencoded text part (most mail), parsed alone, so a large body
    is decoded once rather than parsed line by line by the ``email`` package; None for anything else."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = _parse_head(raw[: end + 4])
    if head.get_content_maintype() != "text" or head.defects:
        return None
    if str(head.get("Content-Transfer-Encoding", "")).strip().lower() not in _PLAIN_ENCODINGS:
        return None
    head.set_payload(raw[end + 4 :])
    return head


def scan_message(raw: bytes, max_bytes: int = 1 << 20) -> ContentReport:
    """Scan ``raw`` (an RFC 5322 message); never raises on malformed input."""
    msg = _single_text_body(raw) or email.message_from_bytes(raw)
    pieces: list[str] = []
    budget = max_bytes
    truncated = False
    unscanned = 0
    subject = msg.get("Subject")
    if subject:
        try:
            pieces.append(str(make_header(decode_header(str(subject)))))
        except (ValueError, LookupError, UnicodeError):
            pieces.append(str(subject))
    for maintype, part in _texts(msg):
        if maintype != "text":
            unscanned += 1
            continue
        if budget <= 0:
            truncated = True
            continue
        text = _decode_part(part)
        if len(text) > budget:
            text, truncated = text[:budget], True
        budget -= len(text)
        pieces.append(text)
    text = "\n".join(pieces)
    return ContentReport(scan_text(text), len(text), truncated, unscanned)
