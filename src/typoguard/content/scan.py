"""A message's text, and what sensitive content it carries, as categories and counts.

The Subject and every ``text/*`` part (bodies and text attachments, quoted-printable and base64 decoded, in
their declared charset) are scanned, up to ``max_bytes`` characters in all. Plain, cleanly delimited mail
(one text part, or Outlook's ``multipart/alternative``) is read here directly; anything else is parsed
with the standard library's ``email`` package, which the fast path matches exactly (property-tested).
Other attachments (PDF, Office, images, archives) are counted as ``unscanned_parts``, not opened: that is a
different product.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.message
import itertools
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


def _parts(msg: email.message.Message) -> Iterator[Part]:
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
# escapes, folding allowed): its parameters are read here exactly as the ``email`` package reads them.
_TOKEN: Final = r"[!#$%&'+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE: Final = re.compile(
    rf"\s*({_TOKEN})/({_TOKEN})\s*((?:;\s*{_TOKEN}\s*=\s*(?:{_TOKEN}|\"[^\"\\\r\n]*\")\s*)*);?\s*", re.ASCII
)
_PARAM: Final = re.compile(rf";\s*({_TOKEN})\s*=\s*({_TOKEN}|\"[^\"\\\r\n]*\")", re.ASCII)
_WANTED: Final = frozenset({"subject", "content-type", "content-transfer-encoding"})
# What may follow "--boundary" on a line the ``email`` package takes for a delimiter
_DELIMITER_END: Final = re.compile(rb"(--)?[ \t]*(\r\n|\r|\n)?$")
MAX_DEPTH: Final = 16  # multiparts nested deeper go to the ``email`` package

Part = tuple[bytes, str | None] | None  # a text part's decoded payload and charset; None: another part


def _head_fields(head: bytes) -> dict[str, str] | None:
    """Subject, Content-Type and Content-Transfer-Encoding (the first of each, as the ``email`` package
    gives them: folds kept) of a plain header block - ASCII, CRLF line ends, every line a field or its
    continuation, no blank line; None for any other block."""
    if not head.isascii():
        return None
    text = head.decode("ascii")
    if not text.count("\r") == text.count("\n") == text.count("\r\n"):
        return None
    fields: dict[str, str] = {}
    if not text:
        return fields
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
    return fields


def _content_type(fields: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """(type/subtype in lower case, parameters by lower-case name) of a plain Content-Type; text/plain
    with none when there is no such field; None for one that is not plain."""
    value = fields.get("content-type")
    if value is None:
        return "text/plain", {}
    m = _CONTENT_TYPE.fullmatch(value)
    if m is None:
        return None
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(m[3]):
        params.setdefault(name.lower(), raw[1:-1] if raw[:1] == '"' else raw)
    return f"{m[1]}/{m[2]}".lower(), params


def _decode_transfer(payload: bytes, cte: str) -> bytes | None:
    """``payload`` decoded as ``get_payload(decode=True)`` decodes it (``cte`` as the field is written);
    None where that takes the package's own lenient rules (bad base64, uuencode)."""
    cte = cte.lower()
    if cte == "quoted-printable":
        return binascii.a2b_qp(payload)
    if cte == "base64":
        joined = b"".join(payload.splitlines())
        if len(joined) % 4:
            return None
        try:
            return base64.b64decode(joined, validate=True)
        except binascii.Error:
            return None
    if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        return None
    return payload


def _walk(fields: dict[str, str], body: bytes, out: list[Part], depth: int) -> bool:
    """Append the leaf parts of the entity (``fields``, ``body``) to ``out`` in the order ``walk()`` gives
    them; False where the entity is not plain enough to read here (the caller falls back)."""
    ctype = _content_type(fields)
    if ctype is None:
        return False
    kind, params = ctype
    if not kind.startswith("multipart/"):
        if kind.startswith("message/"):
            return False  # an attached message: the package parses it as one
        if not kind.startswith("text/"):
            out.append(None)
            return True
        payload = _decode_transfer(body, fields.get("content-transfer-encoding", ""))
        if payload is None:
            return False
        charset = params.get("charset")
        out.append((payload, charset.lower() if charset is not None else None))
        return True
    boundary = params.get("boundary", "").rstrip()
    if not boundary or depth >= MAX_DEPTH or kind == "multipart/digest" or not boundary.isascii():
        return False
    delimiter = b"--" + boundary.encode("ascii")
    # The delimiters: at the start of the body or of a CRLF-ended line; anything the package would also
    # take for one (transport padding, other line ends) sends the message to it.
    starts = [0] if body.startswith(delimiter) else []
    pos = body.find(b"\n" + delimiter)
    while pos >= 0:
        if body[pos - 1 : pos] != b"\r":
            return False
        starts.append(pos + 1)
        pos = body.find(b"\n" + delimiter, pos + 1)
    if body.count(b"\r") != body.count(b"\r\n"):
        return False  # a bare CR is a line end to the package
    lines: list[tuple[int, bytes]] = []  # the delimiter lines: (start, what follows "--boundary")
    for start in starts:
        rest = _line_rest(body, start, len(delimiter))
        if _DELIMITER_END.match(rest) is None:
            continue  # "--boundaryX...": not a delimiter, a line of some part
        if rest not in (b"\r\n", b"--\r\n", b"--"):
            return False  # transport padding, another line end, or the end of the data without "--"
        lines.append((start, rest))
        if rest != b"\r\n":
            break  # the close delimiter: what follows is the epilogue, which is not scanned
    else:
        return False  # no close delimiter: the package reports a defect
    for (start, rest), (following, _) in itertools.pairwise(lines):
        # (the CRLF before a delimiter belongs to the delimiter)
        region = body[start + len(delimiter) + len(rest) : following - 2]
        if not region:
            return False  # delimiters in a row: the package skips them
        if region.startswith(b"\r\n"):
            head, part_body = b"", region[2:]
        else:
            end = region.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, part_body = region[:end], region[end + 4 :]
        part_fields = _head_fields(head)
        if part_fields is None or not _walk(part_fields, part_body, out, depth + 1):
            return False
    return len(lines) > 1


def _line_rest(body: bytes, start: int, skip: int) -> bytes:
    """The rest of the line starting at ``start``, after its first ``skip`` bytes, with its line end."""
    end = body.find(b"\n", start + skip)
    return body[start + skip : end + 1 if end >= 0 else len(body)]


def _fast_parts(raw: bytes) -> tuple[str | None, list[Part]] | None:
    """(Subject as the ``email`` package gives it, the leaf parts as ``walk()`` gives them) of a message
    whose every header block is plain (ASCII, CRLF line ends, plain Content-Type) and whose multiparts are
    cleanly delimited: most mail a relay scans (one text part, or Outlook's ``multipart/alternative``),
    read without building message objects, at a tenth of the package's cost. None for anything else,
    which goes to the package; a property test checks both give the same report."""
    end = raw.find(b"\r\n\r\n")
    if end <= 0:
        return None
    fields = _head_fields(raw[:end])
    if fields is None:
        return None
    parts: list[Part] = []
    if not _walk(fields, raw[end + 4 :], parts, 0):
        return None
    return fields.get("subject"), parts


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
    fast = _fast_parts(raw)
    parts: Iterable[Part]
    if fast is not None:
        subject, parts = fast
    else:
        try:
            msg = _single_text_body(raw) or email.message_from_bytes(raw)
            found = msg.get("Subject")
            subject = str(found) if found is not None else None
            parts = list(_parts(msg))  # walk() recurses too: all of it inside the try
        except RecursionError:
            # Multiparts nested deeper than the email package recurses (~300+ levels; no mail client
            # writes that): the raw message is scanned as text, Subject and undecoded parts included.
            subject, parts = None, [(raw, None)]
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
