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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
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


def _decoded(payload: bytes, charset: str | None) -> str:
    try:
        return payload.decode(charset or "utf-8", "replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", "replace")


def _parts(msg: email.message.Message) -> Iterator[tuple[bytes, str | None] | None]:
    """(payload, charset) of each ``text/*`` leaf part of ``msg``, None for each other one."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_maintype() != "text":
            yield None
            continue
        # decode=True: without it the package decodes a non-ASCII body with the charset parameter itself,
        # which fails (TypeError) for an RFC 2231 one (charset*=utf-8''...)
        payload = part.get_payload(decode=True)
        yield (payload if isinstance(payload, bytes) else b""), part.get_content_charset()


_PLAIN_ENCODINGS: Final = frozenset({"", "7bit", "8bit", "binary"})
_FIELD: Final = re.compile(r"[!-9;-~]+:")  # a field name (printable ASCII but ":") and its colon
# A Content-Type whose parameters are all plain ``name=token`` or ``name="text"`` (no RFC 2231 ``name*``, no
# escapes, folding allowed): its charset is read here exactly as the ``email`` package reads it.
_TOKEN: Final = r"[!#$%&'+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE: Final = re.compile(
    rf"\s*({_TOKEN}/{_TOKEN})\s*((?:;\s*{_TOKEN}\s*=\s*(?:{_TOKEN}|\"[^\"\\\r\n]*\")\s*)*);?\s*", re.ASCII
)
_PARAM: Final = re.compile(rf";\s*({_TOKEN})\s*=\s*({_TOKEN}|\"[^\"\\\r\n]*\")", re.ASCII)
_WANTED: Final = frozenset({"subject", "content-type", "content-transfer-encoding"})


def _plain_text(raw: bytes) -> tuple[str | None, bytes, str | None] | None:
    """(Subject as the ``email`` package gives it, body, charset) of a message that is one unencoded text
    part under a plain header block (ASCII, CRLF line ends, every line a field or its continuation, a plain
    Content-Type): most mail a relay scans, read without building a message object (the package costs about
    ten times as much for a header block). None for anything else, which goes to the package; a property
    test checks both give the same report."""
    end = raw.find(b"\r\n\r\n")
    if end <= 0:
        return None
    head = raw[:end]
    if not head.isascii():
        return None
    text = head.decode("ascii")
    if not text.count("\r") == text.count("\n") == text.count("\r\n"):
        return None
    fields: dict[str, str] = {}
    current = None  # the field being collected (the first of each wanted name), "" for any other
    for line in text.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if current is None:
                return None  # the block opens with a continuation: a defect to the package
            if current:
                fields[current] += "\r\n" + line
            continue
        m = _FIELD.match(line)
        if m is None:
            return None
        name = line[: m.end() - 1].lower()
        current = name if name in _WANTED and name not in fields else ""
        if current:
            fields[current] = line[m.end() :].lstrip(" \t")
    charset = None
    ctype = fields.get("content-type")
    if ctype is not None:
        m = _CONTENT_TYPE.fullmatch(ctype)
        if m is None or not m[1].lower().startswith("text/"):
            return None
        for name, value in _PARAM.findall(m[2]):
            if name.lower() == "charset":
                charset = value.strip('"').lower() if value[:1] == '"' else value.lower()
                break
    if fields.get("content-transfer-encoding", "").strip().lower() not in _PLAIN_ENCODINGS:
        return None
    return fields.get("subject"), raw[end + 4 :], charset


def _single_text_body(raw: bytes) -> email.message.Message | None:
    """The headers of a message that is one unencoded text part, parsed alone, so a large body is decoded
    once rather than parsed line by line by the ``email`` package; None for anything else."""
    end = raw.find(b"\r\n\r\n")
    if end <= 0:
        return None
    head = BytesHeaderParser().parsebytes(raw[: end + 4])
    if head.get_content_maintype() != "text" or head.defects or head.get_payload():
        return None  # (a payload: the block ended earlier, at a blank line with other line ends)
    if str(head.get("Content-Transfer-Encoding", "")).strip().lower() not in _PLAIN_ENCODINGS:
        return None
    head.set_payload(raw[end + 4 :])
    return head


def _subject_text(subject: str) -> str:
    if "=?" not in subject:  # no encoded word: what decode_header and make_header give back as it is
        return subject
    try:
        return str(make_header(decode_header(subject)))
    except (ValueError, LookupError, UnicodeError):
        return subject


def scan_message(raw: bytes, max_bytes: int = 1 << 20) -> ContentReport:
    """Scan ``raw`` (an RFC 5322 message); never raises on malformed input."""
    plain = _plain_text(raw)
    parts: Iterable[tuple[bytes, str | None] | None]
    if plain is not None:
        subject, payload, charset = plain
        parts = ((payload, charset),)
    else:
        msg = _single_text_body(raw) or email.message_from_bytes(raw)
        found = msg.get("Subject")
        subject = str(found) if found is not None else None
        parts = _parts(msg)
    pieces: list[str] = []
    budget = max_bytes
    truncated = False
    unscanned = 0
    if subject:
        pieces.append(_subject_text(subject))
    for part in parts:
        if part is None:
            unscanned += 1
            continue
        if budget <= 0:
            truncated = True
            continue
        text = _decoded(*part)
        if len(text) > budget:
            text, truncated = text[:budget], True
        budget -= len(text)
        pieces.append(text)
    text = "\n".join(pieces)
    return ContentReport(scan_text(text), len(text), truncated, unscanned)
