"""ascii_lookalike: ASCII that reads as other ASCII (``rn``/``m``, ``vv``/``w``, ``0``/``o``, ``1``/``l``).

Visual similarity outweighs keyboard distance (Szurdi & Christin 2017), so the prior is high.
"""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel

PAIRS: tuple[tuple[str, str], ...] = (
    ("m", "rn"),
    ("rn", "m"),
    ("w", "vv"),
    ("vv", "w"),
    ("d", "cl"),
    ("cl", "d"),
    ("m", "nn"),
    ("o", "0"),
    ("0", "o"),
    ("l", "1"),
    ("1", "l"),
    ("i", "1"),
    ("l", "i"),
    ("i", "l"),
    ("g", "q"),
    ("q", "g"),
    ("u", "v"),
    ("v", "u"),
    ("b", "6"),
    ("s", "5"),
    ("k", "lc"),
    ("h", "lh"),
    ("b", "lb"),
    ("e", "3"),
    ("a", "4"),
)


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for src, dst in PAIRS:
        start = core.find(src)
        if start < 0:
            continue
        yield core.replace(src, dst)  # every occurrence
        while start >= 0:  # and each occurrence alone
            yield core[:start] + dst + core[start + len(src) :]
            start = core.find(src, start + 1)


MODEL = SimpleModel("ascii_lookalike", 0.95, "characters that look like others", _edits)
