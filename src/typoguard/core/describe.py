"""Human sentences for findings: what changed between what was typed and what was meant."""

from __future__ import annotations

import unicodedata

from typoguard.core.confusables import _LATIN_NAME as LATIN_NAME  # what a character's name says it is
from typoguard.core.confusables import CYRILLIC_AS_LATIN, OTHER_AS_LATIN


def describe_change(typed: str, intended: str, what: str) -> str:
    """A short phrase for the difference between two strings: "the 'i' of .mil dropped"."""
    p = 0
    while p < min(len(typed), len(intended)) and typed[p] == intended[p]:
        p += 1
    q = 0
    while q < min(len(typed), len(intended)) - p and typed[-1 - q] == intended[-1 - q]:
        q += 1
    t_mid, i_mid = typed[p : len(typed) - q], intended[p : len(intended) - q]
    if not t_mid and len(i_mid) == 1:
        return f"the {_ch(i_mid)} of {what} dropped"
    if not i_mid and len(t_mid) == 1:
        before = intended[p - 1] if p > 0 else ""
        if t_mid == before or (len(intended) > p and t_mid == intended[p]):
            return f"the {_ch(t_mid)} of {what} doubled"
        return f"an extra {_ch(t_mid)} in {what}"
    if len(t_mid) == 2 and t_mid == i_mid[::-1]:
        return f"the {_ch(i_mid)} of {what} swapped"
    if t_mid and i_mid:
        return f"the {_ch(i_mid)} of {what} typed as {_ch(t_mid, article=True)}"
    return f"{what} changed"


def _ch(s: str, *, article: bool = False) -> str:
    if s == ".":
        return "a dot" if article else "dot"
    if s == "-":
        return "a hyphen" if article else "hyphen"
    return f"'{s}'"


def glyph_note(typed: str, intended: str) -> str:
    """Why ``typed`` reads as ``intended``: the foreign characters, named, or the ASCII look-alikes."""
    odd = [ch for ch in dict.fromkeys(typed) if not ch.isascii() and ch != "."]
    if not odd:
        return f"characters that read alike ({describe_change(typed, intended, intended)})"
    shown = ", ".join(f"'{ch}' ({unicodedata.name(ch, f'U+{ord(ch):04X}').lower()})" for ch in odd[:3])
    more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
    return f"look-alike characters {shown}{more} in place of {intended}'s own"


# ---------------------------------------------------------------------------------------------- plain words
# What a sender who is no mail expert reads in a bounce, and what the dashboard shows next to a domain.
# ADR 0017: the reply says what happened in words ("army.ml is not army.mil"), names the recipient once
# (Postfix adds it), and is ASCII (a policy request does not say whether the session uses SMTPUTF8).

_SCRIPT_NAMES = {
    "LATIN": "Latin", "CYRILLIC": "Cyrillic", "GREEK": "Greek", "ARMENIAN": "Armenian", "HEBREW": "Hebrew",
    "ARABIC": "Arabic", "CHEROKEE": "Cherokee", "GEORGIAN": "Georgian", "COPTIC": "Coptic",
    "MATHEMATICAL": "mathematical", "FULLWIDTH": "full-width", "SMALL": "", "ROMAN": "", "MODIFIER": "",
}  # fmt: skip


def unicode_of(ascii_name: str) -> str:
    """The Unicode form of a domain written with A-labels (``xn--rmy-5cd.mil`` -> ``аrmy.mil``), for display.

    Every label is decoded on its own by plain Punycode, so a label IDNA 2008 refuses still shows; one that
    is no Punycode at all stays as it is.
    """
    if "xn--" not in ascii_name.lower():
        return ascii_name
    return ".".join(_decode_label(label) for label in ascii_name.split("."))


def _decode_label(label: str) -> str:
    if label[:4].lower() != "xn--":
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def with_unicode(ascii_name: str) -> str:
    """``xn--rmy-5cd.mil`` as ``аrmy.mil (xn--rmy-5cd.mil)``: what it reads as, and what it really is.

    Works for an address too (only the part after the last ``@`` is decoded). Plain names are unchanged.
    """
    local, at, domain = ascii_name.rpartition("@")
    shown = unicode_of(domain)
    if shown == domain:
        return ascii_name
    return f"{local}{at}{shown} ({ascii_name})"


def deceptive(name: str) -> bool:
    """``name`` holds a character a reader may take for an ASCII one: a letter of another script (Cyrillic
    а), or a Latin one without a visible mark (ɑ, ı). Accented letters (ü, ö) read as what they are."""
    for ch in name:
        if ch.isascii():
            continue
        if script_of(ch) != "Latin":
            return True
        if not any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", ch)):
            return True
    return False


def readable_reason(reason: str, ascii_name: str | None) -> str:
    """``reason`` with the A-label form next to the first mention of the Unicode name, when that name is
    ``deceptive``: a homoglyph never reads as "army.mil looks like army.mil" (münchen.de stays as it is)."""
    if not ascii_name:
        return reason
    shown = unicode_of(ascii_name)
    if shown == ascii_name or not deceptive(shown) or f"({ascii_name})" in reason:
        return reason
    at = reason.find(shown)
    if at < 0:
        return reason
    end = at + len(shown)
    return f"{reason[:end]} ({ascii_name}){reason[end:]}"


def script_of(ch: str) -> str:
    """The script a reader would name for ``ch``: "Cyrillic", "Greek", "Latin"; "" when there is none."""
    name = unicodedata.name(ch, "")
    word = name.split(" ", 1)[0]
    if word in _SCRIPT_NAMES:
        return _SCRIPT_NAMES[word]
    return word.capitalize() if word.isalpha() and len(word) > 2 else ""


def lookalike_letters(typed: str, intended: str) -> list[tuple[str, str]]:
    """The non-ASCII characters of ``typed`` with the ASCII letter each stands for in ``intended``.

    Position by position when both have the same length (``аrmy``/``army``), else by what the character is
    commonly read as (Cyrillic lower case, or the Latin letter its Unicode name mentions); a character
    with no such letter is paired with "".
    """
    pairs: dict[str, str] = {}
    same_shape = len(typed) == len(intended)
    for i, ch in enumerate(typed):
        if ch.isascii() or ch in pairs or ch in intended:  # münchen's own ü is no look-alike
            continue
        meant = intended[i] if same_shape and intended[i].isascii() else ""
        if not meant:
            meant = CYRILLIC_AS_LATIN.get(ch) or OTHER_AS_LATIN.get(ch) or ""
        if not meant:
            m = LATIN_NAME.match(unicodedata.name(ch, ""))
            meant = m.group(1).lower() if m else ""
        pairs[ch] = meant
    return list(pairs.items())


def _letter(ch: str, *, ascii_only: bool) -> str:
    script = script_of(ch)
    code = f"U+{ord(ch):04X}"
    if ascii_only:
        return f"a {script} letter ({code})" if script else f"the character {code}"
    return f"a {script} '{ch}'" if script else f"the character '{ch}' ({code})"


def lookalike_sentence(typed: str, intended: str, *, ascii_only: bool = True) -> str:
    """One sentence for a sender: "It contains a Cyrillic 'а' that looks like a Latin 'a'." ("" if
    ``typed`` is all ASCII). ``ascii_only``: the character as U+XXXX (an SMTP reply, a mail header)."""
    pairs = lookalike_letters(typed, intended)
    if not pairs:
        return ""
    shown = [
        f"{_letter(ch, ascii_only=ascii_only)} that looks like a Latin '{meant}'"
        if meant
        else _letter(ch, ascii_only=ascii_only)
        for ch, meant in pairs[:3]
    ]
    more = f", and {len(pairs) - 3} more" if len(pairs) > 3 else ""
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"It contains {listed}{more}."


def ascii_words(text: str) -> str:
    """``text`` with every non-ASCII character written as U+XXXX (a reply or header stays readable)."""
    if text.isascii():
        return text
    return "".join(ch if ch.isascii() else f"U+{ord(ch):04X}" for ch in text)
