"""Classification and handling markings: banners and portion marks of classified and controlled mail.

Two categories, by what leaking them means:

* ``classified``: ``TOP SECRET``, ``SECRET`` and ``CONFIDENTIAL`` as *markings* (upper case, and either alone
  on a banner line or followed by ``//`` caveats such as ``SECRET//NOFORN``), portion marks ``(TS)``,
  ``(S//NF)``, ``(C//REL TO USA, GBR)``, and dissemination controls (``NOFORN``, ``ORCON``, ``REL TO``);
* ``cui``: Controlled Unclassified Information and its predecessors: ``CUI`` (``CUI//SP-PRVCY``), ``FOUO``,
  ``For Official Use Only``, ``(U//FOUO)``, ``Law Enforcement Sensitive``, ``Limited Distribution``.

Markings are upper case by rule (DoDM 5200.01 and 32 CFR 2002), so "a secret recipe" or "confidential" in
running text do not count; a plain word "SECRET" shouting in a sentence does not either (it must stand on
its own line or carry ``//``). Returns counts only.
"""

from __future__ import annotations

import re
from typing import Final

_LEVEL = r"(?:TOP[ \t]+SECRET|SECRET|CONFIDENTIAL)"
_CLASSIFIED: Final = re.compile(
    rf"(?m)^[ \t>*]*{_LEVEL}[ \t]*$"  # a banner line: the level alone
    rf"|\b{_LEVEL}//[A-Z]"  # SECRET//NOFORN, TOP SECRET//SI//TK
    r"|\((?:TS|S|C)(?://[A-Z][A-Z ,/-]*)?\)(?=[ \t]+\S)"  # portion marks: (TS) (S//NF) (C//REL TO USA)
    r"|(?<!/)\bNOFORN\b|(?<!/)\bORCON\b|(?<!/)\bREL[ \t]+TO[ \t]+USA\b"
)
_CUI: Final = re.compile(
    r"\bCUI(?://[A-Z-]+)*\b(?![a-z])"
    r"|\(CUI\)|\bFOUO\b|\(U//FOUO\)"
    r"|(?i:\bfor[ \t]+official[ \t]+use[ \t]+only\b)"
    r"|(?i:\bcontrolled[ \t]+unclassified[ \t]+information\b)"
    r"|(?i:\blaw[ \t]+enforcement[ \t]+sensitive\b)"
    r"|\bLIMITED[ \t]+DISTRIBUTION\b"
)


# Substrings one of which any marking contains: a text without them (most mail) costs a few ``in`` tests
# (each a fast substring search) instead of a regular-expression pass over every position.
_CLASSIFIED_ANCHORS: Final = ("SECRET", "CONFIDENTIAL", "NOFORN", "ORCON", "REL TO", "(TS", "(S", "(C")
_CUI_ANCHORS: Final = ("CUI", "FOUO", "official use", "unclassified info", "enforcement sens", "limited dist")


def count_classified(text: str, low: str) -> int:
    """How many classification markings ``text`` (``low``: the same, lower-cased) carries."""
    if not any(a in text for a in _CLASSIFIED_ANCHORS):
        return 0
    return sum(1 for _ in _CLASSIFIED.finditer(text))


def count_cui(text: str, low: str) -> int:
    """How many CUI / FOUO handling markings ``text`` carries."""
    if not any(a in text for a in _CUI_ANCHORS[:2]) and not any(a in low for a in _CUI_ANCHORS[2:]):
        return 0
    return sum(1 for _ in _CUI.finditer(text))
