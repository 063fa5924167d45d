"""A message text prepared once for every detector: lower case, and a *shape* that makes prefilters cheap.

CPython's regular expressions cost tens of nanoseconds per character even where nothing matches, so a
megabyte of ordinary prose costs each pattern 5-20 ms. Most mail holds none of what the detectors look for,
so each detector first asks the shape - the text with every digit turned into ``0``, every capital into
``A`` and every whitespace character into a space (one ``str.translate``, about 2 ms per megabyte) - with
plain substring tests (``"000" in shape``: three digits in a row; ``"AAA"``: an acronym or banner) and runs
its patterns only where they can match: on the whole text, or on small windows around digit runs.
"""

from __future__ import annotations

from functools import cached_property
from typing import Final

_SHAPE: Final = str.maketrans(
    {**{c: "0" for c in "0123456789"}, **{chr(c): "A" for c in range(65, 91)},
     "\t": " ", "\n": " ", "\r": " ", "\f": " ", "\v": " "}
)  # fmt: skip
# Whitespace stays, every other printable ASCII character becomes "x": long unbroken runs are "xxxx...".
_GAPS: Final = str.maketrans({**{chr(c): "x" for c in range(33, 127)}, "\t": " ", "\n": " ", "\r": " "})
WINDOW: Final = 40  # characters kept on each side of a digit run: a labelled card or SSN fits
# Characters that case-insensitive patterns match as i, s or k, which str.lower() leaves alone (or, for the
# dotted capital I, turns into two characters): with any of them in the text, folded anchors are not asked.
_FOLD_ODD: Final = "\u0131\u0130\u017f\u212a"


class Prepared:
    """``text`` with its lower-case form, its shape, and derived views computed on first use."""

    __slots__ = ("__dict__", "low", "shape", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = text.lower()
        self.shape = text.translate(_SHAPE)

    # Substring tests several detectors ask: each is a pass over the whole shape (about 0.7 ms per MB).
    @cached_property
    def acronyms(self) -> bool:
        """Three capitals in a row: every banner, acronym, control marking and airport code."""
        return "AAA" in self.shape

    @cached_property
    def capitals(self) -> bool:
        """``acronyms``, or a capital right after "(" (portion marks such as ``(S)``)."""
        return self.acronyms or "(A" in self.shape

    @cached_property
    def digit_windows(self) -> str:
        """Every stretch of ``text`` within ``WINDOW`` characters of three digits in a row, merged, joined by
        blank lines (so no pattern matches across two windows); empty when the text has no such digits."""
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
        return "\n\n".join(text[lo:hi] for lo, hi in spans)

    def lines_with(self, anchors: tuple[str, ...], folded: tuple[str, ...] = ()) -> str:
        """The lines of ``text`` that hold one of ``anchors`` (as written) or of ``folded`` (in lower case),
        in order, joined by newlines: a pattern whose every match lies within one line and contains an
        anchor finds the same matches here as in the whole text, without a pass over every other line
        (a marking pattern costs about 100 ms per MB of ordinary capitalised prose; a find, under 1 ms)."""
        text, low = self.text, self.low
        if folded and (len(low) != len(text) or any(c in text for c in _FOLD_ODD)):
            return text
        starts: dict[int, int] = {}
        for source, needles in ((text, anchors), (low, folded)):
            for needle in needles:
                pos = source.find(needle)
                while pos >= 0:
                    start = text.rfind("\n", 0, pos) + 1
                    end = text.find("\n", pos)
                    end = len(text) if end < 0 else end
                    starts[start] = end
                    pos = source.find(needle, end)
        return "\n".join(text[start : starts[start]] for start in sorted(starts))

    def long_words(self, least: int) -> list[str]:
        """Runs of at least ``least`` non-space ASCII characters (tokens, keys, URLs)."""
        gaps = self.text.translate(_GAPS)
        needle = "x" * least
        out = []
        pos = gaps.find(needle)
        while pos >= 0:
            end = gaps.find(" ", pos)
            end = len(gaps) if end < 0 else end
            out.append(self.text[pos:end])
            pos = gaps.find(needle, end)
        return out
