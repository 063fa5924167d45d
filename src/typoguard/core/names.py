"""Recipient and domain names: parsing, validation and normalisation.

A domain is normalised to its ASCII (A-label) form, lower case, without a trailing dot, following IDNA 2008
with UTS #46 mapping (the ``idna`` package), so ``Army.MIL.``, ``army.mil`` and ``ＡＲＭＹ．ｍｉｌ`` are
the same name. The Unicode (U-label) form is kept next to it: homoglyph detection works on what a
person sees.

Pure: no I/O. Errors are ``InvalidAddress`` with a sentence a person can act on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import idna

from typoguard.errors import InvalidAddress

MAX_DOMAIN_OCTETS = 253  # RFC 1035 / 5321: 255 on the wire, 253 in text without the trailing dot
MAX_LABEL_OCTETS = 63
MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1

_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# RFC 5322 atext plus '.', and any non-ASCII (RFC 6531 SMTPUTF8); quoted strings are checked separately.
_DOT_ATOM_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\U0010ffff]+\Z")
_ADDRESS_LITERAL = re.compile(r"\[[^\[\]]*\]\Z")

# UTS #39 "highly restrictive": one script per label, or Latin with one of these CJK combinations.
_ALLOWED_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


@dataclass(frozen=True, slots=True)
class Domain:
    """A validated domain name. ``ascii`` is the canonical key; ``unicode`` what a person reads."""

    ascii: str
    unicode: str

    @property
    def is_idn(self) -> bool:
        return self.ascii != self.unicode

    def __str__(self) -> str:
        return self.ascii


@dataclass(frozen=True, slots=True)
class Recipient:
    """A parsed recipient: ``local`` is None when a bare domain was given."""

    local: str | None
    domain: Domain | None  # None for an address literal such as bob@[192.0.2.1]
    literal: str | None = None


# Full stops that IDNA (UTS #46) maps to '.', accepted as the trailing root dot too.
_FULL_STOPS = (".", "\u3002", "\uff0e", "\uff61")


def printable(text: str) -> str:
    """``text`` with undecodable bytes (kept as surrogate escapes) shown as U+FFFD."""
    if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _fail(text: str, why: str) -> InvalidAddress:
    text = printable(text)
    shown = text if len(text) <= 80 else text[:77] + "..."
    return InvalidAddress(f"{shown!r}: {why}")


def _has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def _check_text(text: str) -> None:
    if _has_surrogates(text):
        raise _fail(text, "not valid UTF-8")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in text):
        raise _fail(text, "contains white space or control characters")


def normalise_domain(text: str) -> Domain:
    """Validate ``text`` as a mail domain and return it normalised.

    Accepts A-labels (``xn--...``) and U-labels, any case, one trailing dot. Raises ``InvalidAddress``.
    """
    if not text:
        raise InvalidAddress("empty domain")
    _check_text(text)
    name = text[:-1] if text.endswith(_FULL_STOPS) else text
    if not name:
        raise _fail(text, "empty domain")
    if name.isascii():
        name = name.lower()
        labels = name.split(".")
        _check_lengths(text, name, labels)
        for label in labels:
            if not _LDH_LABEL.match(label):
                raise _fail(text, _ldh_problem(label))
        if "xn--" not in name:
            return Domain(name, name)
        try:
            uname = idna.decode(name)
        except idna.IDNAError as exc:
            raise _fail(text, f"invalid internationalised label ({exc})") from None
        return Domain(name, uname)
    try:
        aname = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise _fail(text, f"not a valid internationalised domain name ({exc})") from None
    except UnicodeError as exc:  # idna raises this for over-long labels in some paths
        raise _fail(text, f"not a valid domain name ({exc})") from None
    _check_lengths(text, aname, aname.split("."))
    return Domain(aname, idna.decode(aname))


def _check_lengths(text: str, name: str, labels: list[str]) -> None:
    if len(name) > MAX_DOMAIN_OCTETS:
        raise _fail(text, f"domain is {len(name)} characters long, more than the {MAX_DOMAIN_OCTETS} allowed")
    if len(labels) < 2:
        raise _fail(text, "a mail domain needs at least two labels (e.g. example.org)")
    for label in labels:
        if not label:
            raise _fail(text, "empty label (two dots in a row, or a leading dot)")
        if len(label) > MAX_LABEL_OCTETS:
            raise _fail(text, f"label of {len(label)} characters, more than the {MAX_LABEL_OCTETS} allowed")


def _ldh_problem(label: str) -> str:
    if label.startswith("-") or label.endswith("-"):
        return f"label {label!r} starts or ends with a hyphen"
    bad = sorted({ch for ch in label if not (ch.isalnum() or ch == "-")})
    return f"label {label!r} contains {''.join(bad)!r}, not allowed in a host name"


def parse_recipient(text: str) -> Recipient:
    """Parse an address (``bob@army.mil``, ``<bob@army.mil>``, ``"j doe"@army.mil``) or a bare domain.

    Raises ``InvalidAddress`` for anything that is neither.
    """
    raw = text.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].strip()
    if not raw:
        raise InvalidAddress("empty recipient")
    if _has_surrogates(raw):
        raise _fail(raw, "not valid UTF-8")
    at = raw.rfind("@")
    if at < 0:
        if "." not in raw.rstrip("."):
            raise _fail(raw, "no '@' and not a domain name")
        return Recipient(None, normalise_domain(raw))
    local, domain_text = raw[:at], raw[at + 1 :]
    check_local_part(local, raw)
    if _ADDRESS_LITERAL.match(domain_text):
        return Recipient(local, None, domain_text)
    if not domain_text:
        raise _fail(raw, "nothing after '@'")
    return Recipient(local, normalise_domain(domain_text))


def check_local_part(local: str, whole: str) -> None:
    """Validate an address's local part (RFC 5321/5322, with RFC 6531 UTF-8)."""
    if not local:
        raise _fail(whole, "nothing before '@'")
    if len(local.encode("utf-8", "surrogateescape")) > MAX_LOCAL_OCTETS:
        raise _fail(whole, f"local part longer than {MAX_LOCAL_OCTETS} octets")
    if local.startswith('"'):
        escaped_end = local.endswith('\\"') and not local.endswith('\\\\"')
        if len(local) < 2 or not local.endswith('"') or escaped_end:
            raise _fail(whole, "unterminated quoted local part")
        if _has_surrogates(local):
            raise _fail(whole, "not valid UTF-8")
        return
    _check_text(local)
    if not _DOT_ATOM_LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise _fail(whole, "local part has characters or dots that need quoting")


def char_script(ch: str) -> str | None:
    """The script of ``ch`` as the first word of its Unicode name; None for digits, hyphen and marks."""
    if ch.isascii():
        return "LATIN" if ch.isalpha() else None
    if unicodedata.category(ch)[0] in "MNPZS":
        return None
    name = unicodedata.name(ch, "")
    if name.startswith("CJK"):
        return "HAN"
    return name.split(" ", 1)[0] or None


def mixed_script_labels(domain: Domain) -> list[str]:
    """Labels of ``domain`` that mix scripts in a way registries forbid (UTS #39 highly restrictive)."""
    bad = []
    for label in domain.unicode.split("."):
        if label.isascii():
            continue
        scripts = {s for s in map(char_script, label) if s is not None}
        if len(scripts) > 1 and not any(scripts <= allowed for allowed in _ALLOWED_SCRIPT_SETS):
            bad.append(label)
    return bad
