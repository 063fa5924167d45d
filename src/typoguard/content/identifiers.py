"""Identity, tax and payment numbers with their validity rules, so random digits rarely count.

* ``ssn``: US Social Security numbers written ``123-45-6789`` or ``123 45 6789`` anywhere, or as nine plain
  digits right after "SSN" / "social security". Valid only if the area is not 000, 666 or 900-999, the
  group not 00, the serial not 0000 (SSA's rules since 2011 randomisation), and not one of the numbers
  known from advertising (078-05-1120, 219-09-9999).
* ``payment_card``: 13 to 19 digits (groups split by single spaces or dashes) that pass the Luhn check and
  start with a card network's prefix (Visa, Mastercard, Amex, Discover, JCB, Diners).
* ``passport``: a 6-9 character passport number (at least one digit) after the word "passport" (with
  "no.", "number", "#"), or the first line of a passport's machine-readable zone (``P<USA...``).

Patterns start with a plain digit class and check their boundaries in Python afterwards: look-behinds
tried at every position of a megabyte cost more than the whole match. Returns counts only: the numbers
themselves never leave this module.
"""

from __future__ import annotations

import re
from typing import Final

from typoguard.content.prepared import Prepared

# (\d\d\d), not (\d{3}): a pattern opening with a digit class is searched for digits first (5x faster)
_SSN_FORMATTED: Final = re.compile(r"(\d\d\d)([- ])(\d\d)\2(\d{4})")
_SSN_KEYWORD: Final = re.compile(
    r"(?:\bssn\b|\bsocial[ \t]+security(?:[ \t]+(?:number|no\.?|#))?)[ \t]*[:#]?[ \t]*(\d{9})(?!\d)"
)
_SSN_EXAMPLES: Final = frozenset({"078051120", "219099999", "123456789"})
_CARD: Final = re.compile(r"\d(?:[ -]?\d){12,18}")
# Over the shape of ASCII windows (digits are "0"): where _CARD can match, this does. It opens with a literal,
# which the regular expression engine looks for quickly; _CARD's digit class is asked at every character.
_CARD_SHAPE: Final = re.compile(r"0(?:[ -]?0){12,18}")
_PASSPORT: Final = re.compile(
    r"passport(?:[ \t]*(?:no\.?|number|num\.?|nr\.?|#))?[ \t]*[:#]?[ \t]*\b([a-z0-9]{6,9})\b"
)
_MRZ: Final = re.compile(r"(?m)^P[A-Z<][A-Z]{3}[A-Z<]{20,}$")
_DIGITS_OR_DASH: Final = frozenset("0123456789-")


def _bounded(text: str, start: int, end: int, stop: frozenset[str] = _DIGITS_OR_DASH) -> bool:
    """Nothing of ``stop`` right before ``start`` or right after ``end``: a number of its own."""
    return (start == 0 or text[start - 1] not in stop) and (end >= len(text) or text[end] not in stop)


def ssn_is_valid(area: str, group: str, serial: str) -> bool:
    """SSA's structural rules (the numbers are random since 2011; these parts were never issued)."""
    a = int(area)
    if a in {0, 666} or a >= 900 or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_EXAMPLES


def count_ssn(p: Prepared) -> int:
    if not p.long_numbers and not (p.has_folded("ssn") or p.has_folded("social security")):
        return 0  # neither written 123-45-6789 / 123 45 6789 nor labelled
    text = p.digit_windows  # an SSN has three digits in a row: it is in one of these windows
    if not text:
        return 0
    low = text.lower()
    shape = p.digit_windows_shape
    n = 0
    if not text.isascii() or "000-00-0000" in shape or "000 00 0000" in shape:
        n = sum(
            1
            for m in _SSN_FORMATTED.finditer(text)
            if _bounded(text, m.start(), m.end()) and ssn_is_valid(m[1], m[3], m[4])
        )
    if "ssn" in low or "social security" in low:
        for m in _SSN_KEYWORD.finditer(low):
            digits = m[1]
            n += ssn_is_valid(digits[:3], digits[3:5], digits[5:])
    return n


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_network(digits: str) -> bool:
    n = len(digits)
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # Amex
    if four == 6011 or two == 65 or 644 <= three <= 649:
        return 16 <= n <= 19  # Discover
    if 3528 <= four <= 3589:
        return 16 <= n <= 19  # JCB
    if two in (36, 38, 39) or 300 <= three <= 305:
        return 14 <= n <= 19  # Diners
    return False


def count_payment_cards(p: Prepared) -> int:
    if not p.long_numbers:
        return 0
    text = p.digit_windows
    if text.isascii() and _CARD_SHAPE.search(p.digit_windows_shape) is None:
        return 0
    n = 0
    for m in _CARD.finditer(text):
        raw = m[0]
        if not _bounded(text, m.start(), m.end(), frozenset("0123456789")):
            continue
        seps = {ch for ch in raw if not ch.isdigit()}
        if len(seps) > 1:
            continue  # "1234-5678 9012..." mixes separators: not how a card number is written
        digits = raw.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _card_network(digits) and luhn_ok(digits):
            n += 1
    return n


def count_passports(p: Prepared) -> int:
    n = 0
    if p.has_folded("passport"):
        n = sum(1 for m in _PASSPORT.finditer(p.low) if any(ch.isdigit() for ch in m[1]))
    if p.has("P<"):
        n += sum(1 for _ in _MRZ.finditer(p.text))
    return n
