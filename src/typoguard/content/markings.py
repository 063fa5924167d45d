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

from typoguard.content.prepared import Prepared

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


# Every marking has capitals (see ``_capitals``) or is one of these phrases (any case): a text without
# them - most mail - costs a few substring tests instead of a regular-expression pass (prepared.py).
_CUI_PHRASES: Final = ("official use", "unclassified info", "enforcement sens")


def _capitals(p: Prepared) -> bool:
    """Three capitals in a row (every banner, acronym and control) or a capital after "(" (portion marks)."""
    return p.capitals


def count_classified(p: Prepared) -> int:
    """How many classification markings the text carries."""
    if not _capitals(p):
        return 0
    return sum(1 for _ in _CLASSIFIED.finditer(p.text))


def count_cui(p: Prepared) -> int:
    """How many CUI / FOUO handling markings the text carries."""
    if not _capitals(p) and not any(a in p.low for a in _CUI_PHRASES):
        return 0
    return sum(1 for _ in _CUI.finditer(p.text))
