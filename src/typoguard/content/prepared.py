"""A message text prepared once for every detector: lower case, its anchor words found in one pass, and a
*shape* that makes digit prefilters cheap.

CPython's regular expressions cost tens of nanoseconds per character even where nothing matches, so a
megabyte of ordinary prose costs each pattern 5-20 ms. Most mail holds none of what the detectors look for,
so each detector first asks whether its *anchor words* occur (``SECRET``, "password", "flight" ...: every
match of its patterns holds one) and runs its patterns only where they can match: on the lines holding an
anchor, or on small windows around digit runs.

The anchors of every detector are listed here (``ANCHORS``) and found together by one Aho-Corasick pass over
the lower-case text (ahocorasick-rs, about 2 ms per megabyte; forty ``str.find`` passes cost about 25 ms).
An anchor written in capitals (``SECRET``, ``P<``) is a lower-case hit checked against the text as written.
The *shape* - the text with every digit turned into ``0``, every capital into ``A`` and every whitespace
character into a space (one ``str.translate``, about 0.5 ms per megabyte; other text than ASCII goes through
bytes) - answers "three digits in a row" (``"000"``), "an acronym" (``"AAA"``) and whether a card-length
number can be there.
"""

from __future__ import annotations

import codecs
import re
from functools import cache, cached_property
from typing import Final

import ahocorasick_rs

# Every anchor a detector asks about, as it asks: capitals are matched as written (``Prepared.occurrences``),
# lower-case words in the lower-case text (``Prepared.folded_occurrences``). Asking about a word not listed
# here is a KeyError (a test checks that each detector's anchors are).
ANCHORS: Final = (
    # markings.py: classification and CUI markings, and the phrases written in any case
    "SECRET", "CONFIDENTIAL", "NOFORN", "ORCON", "REL", "(TS", "(S", "(C", "CUI", "FOUO", "LIMITED",
    "official", "unclassified", "enforcement",
    # credentials.py: private-key blocks, and the keyword plugin's lines
    "PRIVATE KEY", "pass", "pwd", "secret", "token", "api",
    # identifiers.py: SSNs by keyword, passports and their machine-readable zone
    "ssn", "social security", "passport", "P<",
    # itinerary.py: travel words
    "itinerar", "flight", "depart", "arriv", "boarding", "locator", "booking", "ticket", "layover",
    "terminal",
)  # fmt: skip
_WORDS: Final = tuple(sorted({a.lower() for a in ANCHORS}))
_FOLDED: Final = frozenset(_WORDS)
_LOWER: Final = {a: a.lower() for a in ANCHORS}

# Translation tables (index: ASCII code) for ``Prepared._translated``; NUL (any non-ASCII character) stays.
_SHAPE: Final = bytes(
    48 if 48 <= c <= 57 else 65 if 65 <= c <= 90 else 32 if c in b"\t\n\r\f\v" else c for c in range(256)
)
# Whitespace stays, every other printable ASCII character becomes "x": long unbroken runs are "xxxx...".
_GAPS: Final = bytes(120 if 33 <= c <= 126 else 32 if c in b"\t\n\r" else c for c in range(256))
_NON_ASCII: Final = "typoguard-nul"  # the codec error handler that writes NUL for each non-ASCII character
# Over the shape: every card number (13 or more digits, split by single spaces or dashes) and every SSN
# written 123-45-6789 or 123 45 6789 matches this. It opens with a literal, which the regular expression
# engine looks for quickly (0.6 ms per MB); a pattern opening with a digit class costs 5 ms per MB.
_NUMBER_SHAPE: Final = re.compile(r"0(?:[ -]?0){12}|000[- ]00[- ]0000")
WINDOW: Final = 40  # characters kept on each side of a digit run: a labelled card or SSN fits
# Characters that case-insensitive patterns match as i, s or k, which str.lower() leaves alone (or, for the
# dotted capital I, turns into two characters): with any of them in the text, folded anchors are not asked.
_FOLD_ODD: Final = "\u0131\u0130\u017f\u212a"


def _nul_each(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "\0" * (error.end - error.start), error.end


@cache
def _one_byte_each_registered() -> None:
    codecs.register_error(_NON_ASCII, _nul_each)


@cache
def _automata() -> tuple[ahocorasick_rs.BytesAhoCorasick, ahocorasick_rs.AhoCorasick]:
    """The anchor words' automata (for ASCII text as bytes, for any text as str). Built once per process."""
    dfa = ahocorasick_rs.Implementation.DFA
    return (
        ahocorasick_rs.BytesAhoCorasick([w.encode() for w in _WORDS], implementation=dfa),
        ahocorasick_rs.AhoCorasick(_WORDS, implementation=dfa),
    )


class Prepared:
    """``text`` with its lower-case form and its anchors' places; derived views computed on first use."""

    __slots__ = ("__dict__", "_hits", "low", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = text.lower()
        self._hits = self._find_anchors()

    @cached_property
    def shape(self) -> str:
        """Digits ``0``, capitals ``A``, whitespace a space; other ASCII as it is (other characters: NUL)."""
        return self._translated(_SHAPE)

    def _translated(self, table: bytes) -> str:
        """``text`` with each ASCII character replaced by ``table``'s (indexed by code), any other by NUL.
        ASCII text is translated as a string (the fastest); other text through bytes, one per character, as
        ``str.translate`` looks every non-ASCII character up in a dict (40 ms per MB for one curly quote)."""
        if self.text.isascii():
            return self.text.translate(table)
        return self._one_byte_each.translate(table).decode("ascii")

    @cached_property
    def _one_byte_each(self) -> bytes:
        _one_byte_each_registered()
        return self.text.encode("ascii", _NON_ASCII)

    def _find_anchors(self) -> dict[str, list[int]]:
        """Lower-case anchor word -> where it starts in ``low``: every occurrence (overlapping too)."""
        as_bytes, as_str = _automata()
        low = self.low
        # ASCII text: the bytes are the characters, and the bytes automaton needs no index conversion
        found = (
            as_bytes.find_matches_as_indexes(low.encode("ascii"), overlapping=True)
            if low.isascii()
            else as_str.find_matches_as_indexes(low, overlapping=True)
        )
        hits: dict[str, list[int]] = {}
        for i, start, _ in found:
            hits.setdefault(_WORDS[i], []).append(start)
        for positions in hits.values():
            positions.sort()
        return hits

    def folded_occurrences(self, word: str) -> list[int]:
        """Where ``word`` (one of ``ANCHORS``, lower case) starts in ``low``, in order."""
        if word not in _FOLDED:
            raise KeyError(word)
        return self._hits.get(word, [])

    def occurrences(self, anchor: str) -> list[int]:
        """Where ``anchor`` (one of ``ANCHORS``) starts in ``text`` as written, in order."""
        positions = self._hits.get(_LOWER[anchor], ())  # KeyError: not one of ANCHORS
        if not positions:
            return []
        text = self.text
        if len(self.low) != len(text):  # a character lower-cased to two: positions in low are not in text
            out, pos = [], text.find(anchor)
            while pos >= 0:
                out.append(pos)
                pos = text.find(anchor, pos + 1)
            return out
        return [pos for pos in positions if text.startswith(anchor, pos)]

    def has(self, anchor: str) -> bool:
        """``anchor in text`` (one of ``ANCHORS``, as written)."""
        return bool(self.occurrences(anchor))

    def has_folded(self, word: str) -> bool:
        """``word in low`` (one of ``ANCHORS``, lower case)."""
        return bool(self.folded_occurrences(word))

    # Substring tests on the shape (a pass each, about 0.7 ms per MB): asked only after an anchor was found.
    @cached_property
    def acronyms(self) -> bool:
        """Three capitals in a row: every banner, acronym, control marking and airport code."""
        return "AAA" in self.shape

    @cached_property
    def long_numbers(self) -> bool:
        """False when the text certainly holds neither a card-length number nor an SSN written with
        separators (``_NUMBER_SHAPE``). Only ASCII text is asked: ``\\d`` matches other scripts' digits too,
        which the shape does not turn into ``0``."""
        return not self.text.isascii() or _NUMBER_SHAPE.search(self.shape) is not None

    @property
    def digit_windows(self) -> str:
        """Every stretch of ``text`` within ``WINDOW`` characters of three digits in a row, merged, joined by
        blank lines (so no pattern matches across two windows); empty when the text has no such digits."""
        return self._windows[0]

    @property
    def digit_windows_shape(self) -> str:
        """The same stretches of ``shape``, joined the same way: for ASCII ``digit_windows``, a substring test
        here that a pattern's every match passes (``"000-00-0000"``) tells whether to run the pattern."""
        return self._windows[1]

    @cached_property
    def _windows(self) -> tuple[str, str]:
        shape, text = self.shape, self.text
        spans: list[list[int]] = []
        pos = shape.find("000")
        while pos >= 0:
            lo, hi = max(0, pos - WINDOW), min(len(text), pos + 3 + WINDOW)
            if spans and lo <= spans[-1][1]:
                spans[-1][1] = hi
            else:
                spans.append([lo, hi])
            pos = shape.find("000", hi - WINDOW + 1 if hi < len(text) else len(text))
        return "\n\n".join(text[lo:hi] for lo, hi in spans), "\n\n".join(shape[lo:hi] for lo, hi in spans)

    @cached_property
    def _folding_odd(self) -> bool:
        """Positions in ``low`` are not those of ``text``, or a character of ``_FOLD_ODD`` is in it."""
        text = self.text
        return len(self.low) != len(text) or (not text.isascii() and any(c in text for c in _FOLD_ODD))

    def lines_with(self, anchors: tuple[str, ...], folded: tuple[str, ...] = ()) -> str:
        """The lines of ``text`` that hold one of ``anchors`` (as written) or of ``folded`` (in lower case),
        in order, joined by newlines: a pattern whose every match lies within one line and contains an
        anchor finds the same matches here as in the whole text, without a pass over every other line
        (a marking pattern costs about 100 ms per MB of ordinary capitalised prose)."""
        text = self.text
        if folded and self._folding_odd:
            return text
        hits = [pos for a in anchors for pos in self.occurrences(a)]
        hits += [pos for w in folded for pos in self.folded_occurrences(w)]
        lines, end = [], -1
        for pos in sorted(hits):
            if pos < end:
                continue  # on the line already taken
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            lines.append(text[start:end])
        return "\n".join(lines)

    def long_words(self, least: int) -> list[str]:
        """Runs of at least ``least`` non-space ASCII characters (tokens, keys, URLs)."""
        gaps = self._translated(_GAPS)
        needle = "x" * least
        out = []
        pos = gaps.find(needle)
        while pos >= 0:
            end = gaps.find(" ", pos)
            end = len(gaps) if end < 0 else end
            out.append(self.text[pos:end])
            pos = gaps.find(needle, end)
        return out
