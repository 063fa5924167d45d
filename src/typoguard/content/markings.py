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


# Every marking holds one of these (a marking is never split across lines): only the lines that do are
# given to the patterns (Prepared.lines_with). Case-insensitive phrases are found by a lower-case word.
_CLASSIFIED_ANCHORS: Final = ("SECRET", "CONFIDENTIAL", "NOFORN", "ORCON", "REL", "(TS", "(S", "(C")
_CUI_ANCHORS: Final = ("CUI", "FOUO", "LIMITED")
_CUI_WORDS: Final = ("official", "unclassified", "enforcement")


def count_classified(p: Prepared) -> int:
    """How many classification markings the text carries."""
    lines = p.lines_with(_CLASSIFIED_ANCHORS)
    return sum(1 for _ in _CLASSIFIED.finditer(lines)) if lines else 0


def count_cui(p: Prepared) -> int:
    """How many CUI / FOUO handling markings the text carries."""
    lines = p.lines_with(_CUI_ANCHORS, _CUI_WORDS)
    return sum(1 for _ in _CUI.finditer(lines)) if lines else 0
