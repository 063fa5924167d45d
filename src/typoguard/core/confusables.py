"""Unicode confusable skeletons (UTS #39 section 4), so homoglyph look-alikes are matched, not enumerated.

``skeleton(s)`` = NFD(map every character of NFD(s) through confusables.txt). Two strings are confusable
when their skeletons are equal. For domain names we go one step further (``domain_skeleton``): case is
folded and combining marks are dropped, so ``àrmy`` and ``аrmy`` (Cyrillic a) both fall onto ``army``, and
``0``/``O``/``o`` become one. The table comes in as text (``parse_confusables``); this module reads no file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from typoguard.core.memo import BoundedMemo, str_bytes

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


_I_AS_L = str.maketrans({"i": "l", "1": "l"})
SKELETON_CACHE_BYTES = 4 << 20


class DomainSkeletons:
    """Skeletons tuned for host names: UTS #39 skeleton, then case folded and combining marks removed."""

    def __init__(self, table: ConfusableTable) -> None:
        self._table = table
        # For ASCII text the skeleton is a per-character mapping: one str.translate does it.
        self._ascii = str.maketrans({chr(c): self._slow(chr(c)) for c in range(128)})
        self.of = BoundedMemo(
            self._of, SKELETON_CACHE_BYTES, lambda text, sk: str_bytes(text) + str_bytes(sk)
        )

    def fold(self, text: str) -> str | None:
        """``fold_to_ascii`` with this table."""
        return fold_to_ascii(text, self._table)

    def _of(self, text: str) -> str:
        if text.isascii():
            return text.translate(self._ascii)
        return self._slow(text)

    def _slow(self, text: str) -> str:
        sk = skeleton(text, self._table).casefold()
        # casefolding can produce characters that themselves have prototypes (e.g. 'O' -> 'o' is fine,
        # but some capitals fold to letters with marks); one more pass settles it.
        sk = skeleton(sk, self._table).casefold()
        # i, l and 1 read alike in most fonts; in a name that is case-insensitive, PAYPAI.COM shows an I.
        return "".join(ch for ch in sk if not unicodedata.combining(ch)).translate(_I_AS_L)


# Lower-case Cyrillic letters that read as Latin ones in a lower-case name. UTS #39 maps several of them to
# small capitals or other shapes (т -> ᴛ, м -> ʍ), which no protected name contains, so we fold them here.
CYRILLIC_AS_LATIN = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d",
    "ԍ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "ү": "y", "г": "r", "и": "u", "л": "n",
}  # fmt: skip
# Letters no rule above reaches that look-alike generators (dnstwist's glyph table) use for Latin ones.
OTHER_AS_LATIN = {"ə": "a", "ǝ": "e", "ŋ": "n", "ĸ": "k", "ƿ": "p", "ɩ": "i", "ɑ": "a", "ß": "b"}
_LATIN_NAME = re.compile(
    r"(?:LATIN|GREEK|CYRILLIC) (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?([A-Z])(?: |\Z)"
)


def fold_to_ascii(text: str, table: ConfusableTable) -> str | None:
    """Fold every character of ``text`` to the ASCII letter it reads as, or None if one has no such letter.

    Beyond UTS #39 this folds what a reader takes for a Latin letter although the standard does not list it:
    small capitals (ᴍ, ʀ, ɪ), letters with hooks, bars and strokes (ƫ, ʉ, ƈ), and Cyrillic letters as they
    look in lower case. Used only after exact skeletons found nothing.
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch.isascii():
            out.append(ch.lower())
            continue
        mapped = CYRILLIC_AS_LATIN.get(ch) or OTHER_AS_LATIN.get(ch)
        if mapped is None:
            # Compatibility forms of ASCII letters and digits (fullwidth ｍ, roman numeral ⅿ, circled ⓜ,
            # mathematical 𝐦) are those letters: UTS #46 maps them there, a reader sees them.
            compat = unicodedata.normalize("NFKC", ch).lower()
            if compat.isascii() and compat.isalnum():
                mapped = compat
        if mapped is None:
            proto = "".join(
                c
                for c in unicodedata.normalize("NFD", table.get(ch, ch)).casefold()
                if not unicodedata.combining(c)
            )
            if proto and proto.isascii() and proto.isalnum():
                mapped = proto
            else:
                m = _LATIN_NAME.match(unicodedata.name(ch, ""))
                if m is None:
                    return None
                mapped = m.group(1).lower()
        out.append(mapped)
    return "".join(out)
