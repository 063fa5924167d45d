"""Recipient and domain names: parsing, validation and normalisation.

A domain is normalised to its ASCII (A-label) form, lower case, without a trailing dot; Unicode input is
first mapped as UTS #46 says (the ``idna`` package), so ``Army.MIL.``, ``army.mil`` and ``ＡＲＭＹ．ｍｉｌ``
map to the same name. The Unicode (U-label) form is kept next to it: homoglyph detection works on what a
person sees. When the mapping changed what was typed beyond letter case (``gⅿail.com`` with a roman
numeral, fullwidth letters), the name as typed is kept too (``Domain.as_typed``): the detector judges it
as the look-alike it is.

*Valid* means "can exist in DNS" (ADR 0016): lengths (253 octets, labels of 63), no empty label, and
characters a host name label may hold once the user's Unicode input is mapped. A well-formed A-label is
valid whatever it decodes to: IDNA 2008 forbids ``xn--o38h`` (an emoji) or ``xn--gail-0q8a`` (``gⅿail``),
but such names are registered, resolve and receive mail; they are checked for look-alikes, not refused.
Only punycode that does not decode is invalid. Lengths are checked before anything walks the text, so an
8 KB name costs microseconds.

Pure: no I/O. Errors are ``InvalidAddress`` with a sentence a person can act on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import idna

from typoguard.errors import InvalidAddress

MAX_DOMAIN_OCTETS = 253  # RFC 1035 / 5321: 255 on the wire, 253 in text without the trailing dot
MAX_LABEL_OCTETS = 63
MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1; RFC 6531 keeps it in octets of UTF-8, so <= 64 characters
# Typed Unicode is measured after UTS #46 mapping, which drops ignorable characters (soft hyphens,
# variation selectors) and folds combining sequences; allowing four typed characters per octet is room
# for any name a person wrote, and bounds the work done before the real measurement.
MAX_TYPED_DOMAIN_CHARS = 4 * MAX_DOMAIN_OCTETS + 1
# Angle brackets, local part, '@', domain: nothing longer can be an address (measured before any walk).
MAX_RECIPIENT_CHARS = 2 + MAX_LOCAL_OCTETS + 1 + MAX_TYPED_DOMAIN_CHARS

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
    """A validated domain name. ``ascii`` is the canonical key; ``unicode`` what a person reads.

    ``as_typed``: the name exactly as typed (lower-cased), when UTS #46 mapping changed more than case:
    ``gⅿail.com`` maps to ``gmail.com`` but was typed as ``xn--gail-0q8a.com``. Not part of equality.
    """

    ascii: str
    unicode: str
    as_typed: Domain | None = field(default=None, compare=False, repr=False)

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


def domain_of(address: str) -> str:
    """The domain of an address as keys compare it: what follows the last '@', lower case, without the
    root's trailing dot (``alice@Army.MIL.`` -> ``army.mil``); "" when there is no '@'. Cheap and not a
    validation (``normalise_domain`` is): for keys of learned pairs, statistics and log records."""
    at = address.rfind("@")
    return address[at + 1 :].lower().rstrip(".") if at >= 0 else ""


def printable(text: str) -> str:
    """``text`` with undecodable bytes (kept as surrogate escapes) shown as U+FFFD: text that can be
    encoded as UTF-8 (to print it, or to put it in JSON)."""
    if text.isascii() or _SURROGATE.search(text) is None:  # C-speed checks: this runs per invalid name
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _fail(text: str, why: str) -> InvalidAddress:
    shown = printable(text[:80])  # shortened first: the text may be 8 KB long
    shown = shown if len(text) <= 80 else shown[:77] + "..."
    return InvalidAddress(f"{shown!r}: {why}")


_SURROGATE = re.compile("[\ud800-\udfff]")
# str.isspace() characters and category Cc (C0, DEL, C1): what no name or unquoted local part may hold.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _check_text(text: str) -> None:
    if _has_surrogates(text):
        raise _fail(text, "not valid UTF-8")
    if _SPACE_OR_CONTROL.search(text):
        raise _fail(text, "contains white space or control characters")


def _too_long(text: str) -> InvalidAddress:
    return _fail(text, f"{len(text)} characters, longer than any domain name ({MAX_DOMAIN_OCTETS} allowed)")


def normalise_domain(text: str) -> Domain:
    """Validate ``text`` as a mail domain and return it normalised.

    Accepts A-labels (``xn--...``) and U-labels, any case, one trailing dot. Raises ``InvalidAddress``.
    """
    if not text:
        raise InvalidAddress("empty domain")
    ascii_text = text.isascii()
    if len(text) > (MAX_DOMAIN_OCTETS + 1 if ascii_text else MAX_TYPED_DOMAIN_CHARS):
        raise _too_long(text)  # before anything walks the text
    _check_text(text)
    name = text[:-1] if text.endswith(_FULL_STOPS) else text
    if not name:
        raise _fail(text, "empty domain")
    if ascii_text:
        name = name.lower()
        labels = name.split(".")
        _check_lengths(text, name, labels)
        for label in labels:
            if not _LDH_LABEL.match(label):
                raise _fail(text, _ldh_problem(label))
        if "xn--" not in name:
            return Domain(name, name)
        return Domain(name, ".".join(_display_label(text, label) for label in labels))
    try:
        mapped = idna.uts46_remap(name, std3_rules=True, transitional=False)
    except idna.IDNAError as exc:
        raise _fail(text, f"not a valid host name: {_codepoint_problem(exc)}") from None
    ulabels = mapped.split(".")
    alabels = [_label_to_ascii(text, label) for label in ulabels]
    aname = ".".join(alabels)
    _check_lengths(text, aname, alabels)
    for label in alabels:
        if not _LDH_LABEL.match(label):
            raise _fail(text, _ldh_problem(label))
    domain = Domain(aname, ".".join(_display_label(text, label) for label in alabels))
    typed = _as_typed(name, ulabels)
    return domain if typed is None else Domain(domain.ascii, domain.unicode, typed)


def _label_to_ascii(text: str, label: str) -> str:
    """A mapped label's A-label: punycode of the label as it is, IDNA 2008 rules or not (DNS holds it)."""
    if label.isascii():
        return label
    try:
        return "xn--" + label.encode("punycode").decode("ascii")
    except UnicodeError as exc:  # pragma: no cover - punycode encodes every code point
        raise _fail(text, f"not a valid domain name ({exc})") from None


def _display_label(text: str, label: str) -> str:
    """What a person reads for an A-label: its decoded form; the A-label itself if that shows nothing real.

    Punycode that does not decode is no name at all (invalid). A decoded label made of ASCII only, or holding
    characters no name shows (controls, spaces, dots, unassigned or private code points), is displayed as
    the A-label: that is what a mail client shows too.
    """
    if not label.startswith("xn--"):
        return label
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, IndexError, ValueError) as exc:
        raise _fail(text, f"invalid internationalised label {label!r}: malformed punycode ({exc})") from None
    if not decoded or decoded.isascii() or not all(_shows(ch) for ch in decoded):
        return label
    return decoded


def _shows(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMNS" or ch == "-"


def _codepoint_problem(exc: Exception) -> str:
    message = str(exc)
    m = re.search(r"U\+([0-9A-Fa-f]{4,6})", message)
    if m is None:
        return message
    ch = chr(int(m.group(1), 16))
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed').lower()}) is not allowed in a host name"


def _as_typed(name: str, mapped_labels: list[str]) -> Domain | None:
    """The name as typed (only lower-cased), when UTS #46 mapping changed it; None if unchanged or if it
    could not exist in DNS as typed."""
    typed = unicodedata.normalize("NFC", name.lower())
    for stop in _FULL_STOPS[1:]:
        typed = typed.replace(stop, ".")
    labels = typed.split(".")
    if labels == mapped_labels:
        return None
    try:
        alabels = [_label_to_ascii(name, label) for label in labels]
    except InvalidAddress:  # pragma: no cover
        return None
    aname = ".".join(alabels)
    if (
        len(aname) > MAX_DOMAIN_OCTETS
        or not all(label and len(label) <= MAX_LABEL_OCTETS for label in alabels)
        or not all(_LDH_LABEL.match(label) for label in alabels)
    ):
        return None
    return Domain(aname, typed)


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
    if len(text) > MAX_RECIPIENT_CHARS and len(raw := text.strip()) > MAX_RECIPIENT_CHARS:
        raise _fail(raw, f"{len(raw)} characters, longer than any address")
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
    # Every character is at least one octet: count characters first, encode only what may fit.
    if len(local) > MAX_LOCAL_OCTETS or len(local.encode("utf-8", "surrogateescape")) > MAX_LOCAL_OCTETS:
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
